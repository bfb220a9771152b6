// Package systemd_test checks the systemd example as far as a machine
// without systemd allows: the commands the plan generates for each host,
// and the unit flap guard reading `systemctl show` from a fake systemctl
// on PATH (these test machines have no systemd; see README.md).
package systemd_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rollout-sh/rollout/health"
	"github.com/rollout-sh/rollout/internal/localrun"
	"github.com/rollout-sh/rollout/inventory"
	"github.com/rollout-sh/rollout/plan"
)

const rev = "9fceb02d0ae598e95dc970b74767f19372d61af8"

func TestPlanGeneratesSystemctlCommands(t *testing.T) {
	p, diags := plan.Load("rollout.hcl")
	if diags.HasErrors() {
		t.Fatalf("rollout.hcl: %v", diags)
	}
	inv, err := inventory.Load("inventory.ini")
	if err != nil {
		t.Fatal(err)
	}
	hosts, err := inv.Select(p.Hosts)
	if err != nil || len(hosts) != 3 {
		t.Fatalf("hosts = %v, %v", hosts, err)
	}
	for _, h := range hosts {
		spec, diags := p.ForHost(h, rev)
		if diags.HasErrors() {
			t.Fatalf("%s: %v", h.Name, diags)
		}
		if spec.Restart != "systemctl restart app" {
			t.Errorf("%s: restart = %q", h.Name, spec.Restart)
		}
		if len(spec.Health) != 1 || spec.Health[0].Unit != "app" || spec.Health[0].URL != "http://"+h.Address+":8080/healthz" {
			t.Errorf("%s: health = %+v", h.Name, spec.Health)
		}
		if want := []string{"systemctl status --no-pager app", "journalctl -u app -n 30 --no-pager"}; strings.Join(spec.Diagnostics, "|") != strings.Join(want, "|") {
			t.Errorf("%s: diagnostics = %q", h.Name, spec.Diagnostics)
		}
		if got := spec.Files[0].ValidateCommand("/etc/app/.app.conf.rollout-stage-r1"); got != "/usr/local/bin/app -check -config /etc/app/.app.conf.rollout-stage-r1" {
			t.Errorf("%s: validate = %q", h.Name, got)
		}
	}

	// a unit name from the inventory is data, never shell code
	hostile, err := inventory.ParseINI("hostile.ini", []byte("[web]\napp1 unit='app; touch /tmp/pwned' app_port=8080\napp2 unit=app app_port=8080\n"))
	if err != nil {
		t.Fatal(err)
	}
	spec, diags := p.ForHost(hostile.Host("app1"), rev)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if spec.Restart != `systemctl restart 'app; touch /tmp/pwned'` {
		t.Errorf("restart with a hostile unit = %q", spec.Restart)
	}
}

// fakeSystemctl answers `systemctl show -p NRestarts -p MainPID UNIT` from
// files in dir the test writes (nrestarts, mainpid), in the format systemd
// prints, and records every invocation.
const fakeSystemctl = `#!/bin/sh
dir=$(dirname "$0")
echo "$*" >>"$dir/calls"
[ "$1" = show ] || { echo "fake systemctl: only show" >&2; exit 1; }
[ -f "$dir/fail" ] && { echo "Failed to connect to bus: No such file or directory" >&2; exit 1; }
printf 'NRestarts=%s\nMainPID=%s\n' "$(cat "$dir/nrestarts")" "$(cat "$dir/mainpid")"
`

func TestUnitGuardReadsSystemctlShow(t *testing.T) {
	dir := t.TempDir()
	write := func(name, v string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write("systemctl", fakeSystemctl)
	t.Setenv("PATH", dir+":"+os.Getenv("PATH"))
	ctx := context.Background()
	newGuard := func(nrestarts, pid string) health.Guard {
		t.Helper()
		write("nrestarts", nrestarts)
		write("mainpid", pid)
		g := health.SystemdUnit(localrun.Runner{}, "app")
		if err := g.Baseline(ctx); err != nil {
			t.Fatalf("baseline (NRestarts=%s MainPID=%s): %v", nrestarts, pid, err)
		}
		return g
	}

	g := newGuard("0", "4242")
	if err := g.Check(ctx); err != nil {
		t.Fatalf("unchanged unit: %v", err)
	}
	write("nrestarts", "2") // systemd restarted the crashing app twice
	if err := g.Check(ctx); err == nil || !strings.Contains(err.Error(), "unit app restarted 2 times") {
		t.Errorf("NRestarts 0 → 2: %v", err)
	}

	g = newGuard("3", "4242")
	write("mainpid", "5151") // restarted by something else: same NRestarts, new pid
	if err := g.Check(ctx); err == nil || !strings.Contains(err.Error(), "pid 4242 → 5151") {
		t.Errorf("MainPID change: %v", err)
	}
	write("mainpid", "0") // stopped
	if err := g.Check(ctx); err == nil || !strings.Contains(err.Error(), "not running") {
		t.Errorf("MainPID=0: %v", err)
	}

	// older systemd prints an empty NRestarts: the pid still guards
	g = newGuard("", "4242")
	if err := g.Check(ctx); err != nil {
		t.Errorf("empty NRestarts, same pid: %v", err)
	}
	write("mainpid", "4343")
	if err := g.Check(ctx); err == nil {
		t.Error("empty NRestarts, new pid: passed")
	}

	// a unit that is not running cannot be a baseline
	write("nrestarts", "0")
	write("mainpid", "0")
	if err := health.SystemdUnit(localrun.Runner{}, "app").Baseline(ctx); err == nil || !strings.Contains(err.Error(), "not running") {
		t.Errorf("baseline of a stopped unit: %v", err)
	}
	// no systemd on the host (this machine): a clear error, not a pass
	write("fail", "")
	if err := g.Check(ctx); err == nil || !strings.Contains(err.Error(), "Failed to connect to bus") {
		t.Errorf("systemctl failing: %v", err)
	}

	calls, _ := os.ReadFile(filepath.Join(dir, "calls"))
	for _, line := range strings.Split(strings.TrimSpace(string(calls)), "\n") {
		if line != "show -p NRestarts -p MainPID app" {
			t.Errorf("systemctl called as %q", line)
		}
	}
}
