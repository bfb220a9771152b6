// Package bench measures rollout on a real local fleet. Numbers are
// recorded in docs/benchmarks.md with the command that produced them; no
// test asserts a duration.
//
//	make bench   # = go test -run '^$' -bench . -benchtime 1x ./bench/
package bench

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/rollout-sh/rollout/internal/fleet"
	"github.com/rollout-sh/rollout/rollout/event"
)

func root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(file))
}

// BenchmarkApply4HostsBatch1 rolls a new revision over 4 hosts behind
// HAProxy, one host per batch, with healthy_for = "0s", and reports:
//
//	wall-s      the whole apply as the user waits for it
//	waits-s     the unavoidable waits: sessions reaching zero, the
//	            restart command, the health gate, and the ramp/UP wait
//	overhead-s  wall - waits: SSH, locks, state reads, staging,
//	            validation, preflight, journal
func BenchmarkApply4HostsBatch1(b *testing.B) {
	bin := filepath.Join(b.TempDir(), "rollout")
	if out, err := exec.Command("go", "build", "-o", bin, filepath.Join(root(), "cmd", "rollout")).CombinedOutput(); err != nil {
		b.Fatalf("build: %v\n%s", err, out)
	}
	app, restart := fleet.DemoPaths(b)
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		dir, err := os.MkdirTemp("", "rb")
		if err != nil {
			b.Fatal(err)
		}
		f := fleet.StartT(b, fleet.Options{Dir: filepath.Join(dir, "f"), Hosts: 4, HAProxy: 1, AppBinary: app, RestartScript: restart})
		repo := filepath.Join(dir, "repo")
		fleet.DemoRepo(b, repo)
		if err := f.WriteInventory(filepath.Join(dir, "inventory.ini")); err != nil {
			b.Fatal(err)
		}
		plan := fmt.Sprintf(`plan "bench" {
  inventory = "inventory.ini"
  hosts     = "web"
  repo      = %q
  revision  = "v2"
  state_dir = "${host.vars.root}/state"
  drain "haproxy" {
    endpoints = ["unix:%s"]
    backend   = "web"
    ramp      = ["50%%", "100%%"]
  }
  file "app.conf" {
    source   = "conf/app.conf.tmpl"
    template = true
    dest     = "${host.vars.root}/etc/app.conf"
    validate = "%s -check -config %%s"
  }
  restart = "DEMO_APP=%s %s ${host.vars.root}"
  health "http" {
    url         = "http://127.0.0.1:${host.vars.app_port}/healthz"
    interval    = "100ms"
    healthy_for = "0s"
    deadline    = "20s"
  }
}
`, repo, f.HAProxySockets[0], app, app, restart)
		if err := os.WriteFile(filepath.Join(dir, "rollout.hcl"), []byte(plan), 0o644); err != nil {
			b.Fatal(err)
		}
		cmd := exec.Command(bin, "apply", "--batch", "1", "--yes", "--ui", "json", "--known-hosts", f.KnownHosts)
		cmd.Dir = dir
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		b.StartTimer()
		start := time.Now()
		err = cmd.Run()
		wall := time.Since(start)
		b.StopTimer()
		if err != nil {
			b.Fatalf("apply: %v\n%s\n%s", err, out.String(), errb.String())
		}
		waits := unavoidable(b, out.Bytes())
		b.ReportMetric(wall.Seconds(), "wall-s")
		b.ReportMetric(waits.Seconds(), "waits-s")
		b.ReportMetric((wall - waits).Seconds(), "overhead-s")
		_ = f.Stop()
		_ = os.RemoveAll(dir)
	}
}

// unavoidable sums, per host, the time spent in the phases that wait on the
// world rather than on rollout: drain (sessions → 0), restart, health, and
// undrain (ramp, the LB's own check reporting UP).
func unavoidable(b *testing.B, stream []byte) time.Duration {
	type open struct {
		phase event.Phase
		at    time.Time
	}
	cur := map[string]open{}
	var total time.Duration
	waiting := map[event.Phase]bool{event.PhaseDrain: true, event.PhaseRestart: true, event.PhaseHealth: true, event.PhaseUndrain: true}
	sc := bufio.NewScanner(bytes.NewReader(stream))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e event.Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			b.Fatalf("event %q: %v", sc.Text(), err)
		}
		if e.Host == "" || (e.Event != event.HostPhase && e.Event != event.HostDone) {
			continue
		}
		if o, ok := cur[e.Host]; ok && waiting[o.phase] && (e.Event == event.HostDone || e.Phase != o.phase) {
			total += e.Time.Sub(o.at)
		}
		if e.Event == event.HostDone {
			delete(cur, e.Host)
			continue
		}
		if o, ok := cur[e.Host]; !ok || o.phase != e.Phase {
			cur[e.Host] = open{e.Phase, e.Time}
		}
	}
	if total == 0 && !strings.Contains(string(stream), "host_phase") {
		b.Fatal("no host phases in the event stream")
	}
	return total
}
