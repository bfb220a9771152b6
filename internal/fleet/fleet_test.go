package fleet

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestFleetEndToEnd(t *testing.T) {
	app, restart := DemoPaths(t)
	f := StartT(t, Options{Hosts: 2, HAProxy: 1, AppBinary: app, RestartScript: restart})

	if len(f.Hosts) != 2 || f.Hosts[0].Name != "web1" || f.Hosts[1].Name != "web2" {
		t.Fatalf("hosts = %+v", f.Hosts)
	}

	// OpenSSH with StrictHostKeyChecking=yes proves known_hosts is right.
	for _, h := range f.Hosts {
		out, err := f.SSHCommand(h, "echo $USER; cat "+h.ConfigPath()).CombinedOutput()
		if err != nil {
			t.Fatalf("ssh %s: %v\n%s", h.Name, err, out)
		}
		if !strings.Contains(string(out), "listen = 127.0.0.1:"+strconv.Itoa(h.AppPort)) {
			t.Errorf("ssh %s: config not visible: %s", h.Name, out)
		}
	}

	// A wrong known_hosts entry must be refused: swap the two hosts' keys.
	lines := strings.Split(strings.TrimSpace(readFile(t, f.KnownHosts)), "\n")
	if len(lines) != 2 {
		t.Fatalf("known_hosts has %d lines", len(lines))
	}
	_, key0, _ := strings.Cut(lines[0], " ")
	host1, _, _ := strings.Cut(lines[1], " ")
	wrong := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(wrong, []byte(host1+" "+key0+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := *f
	bad.KnownHosts = wrong
	if out, err := bad.SSHCommand(f.Hosts[1], "true").CombinedOutput(); err == nil {
		t.Errorf("ssh with a wrong host key succeeded:\n%s", out)
	}

	// HAProxy forwards GET / to both apps (round robin).
	seen := map[string]int{}
	for range 6 {
		seen[httpGet(t, f.FrontendURL(0)+"/")]++
	}
	if len(seen) != 2 || seen["version=0 initial config of web1\n"] == 0 || seen["version=0 initial config of web2\n"] == 0 {
		t.Errorf("frontend answers = %v, want both hosts", seen)
	}
	st, err := f.ServerStatus(0)
	if err != nil || st["web1"] != "UP" || st["web2"] != "UP" {
		t.Errorf("ServerStatus = %v, %v", st, err)
	}

	// The runtime API is admin level.
	if out, err := f.Admin(0, "set server web/web1 state drain"); err != nil || strings.TrimSpace(out) != "" {
		t.Errorf("drain: %q, %v", out, err)
	}
	st, _ = f.ServerStatus(0)
	if st["web1"] != "DRAIN" {
		t.Errorf("after drain web1 is %q", st["web1"])
	}

	// Save/Load round trip, and Stop through a loaded copy (like `fleet down`).
	loaded, err := Load(f.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if loaded.Hosts[1] != f.Hosts[1] || loaded.HAProxySockets[0] != f.HAProxySockets[0] || len(loaded.Processes) != 3 {
		t.Errorf("Load = %+v", loaded)
	}
	inv := filepath.Join(f.Dir, "inventory.ini")
	if err := f.WriteInventory(inv); err != nil {
		t.Fatal(err)
	}
	wantLine := "web2 ansible_host=127.0.0.1 ansible_port=" + strconv.Itoa(f.Hosts[1].SSHPort) +
		" ansible_user=root ansible_ssh_private_key_file=" + f.ClientKey +
		" root=" + f.Hosts[1].Root + " app_port=" + strconv.Itoa(f.Hosts[1].AppPort) + "\n"
	if got := readFile(t, inv); !strings.Contains(got, "[web]\n") || !strings.Contains(got, wantLine) {
		t.Errorf("inventory:\n%s\nwant line %q", got, wantLine)
	}

	apps := f.appProcesses()
	if len(apps) != 4 {
		t.Fatalf("app processes = %+v, want a supervisor and an app per host", apps)
	}
	for _, p := range apps {
		if !p.Running() {
			t.Errorf("%s (pid %d) is not running or not recognised", p.Name, p.PID)
		}
	}
	if err := loaded.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	for _, p := range append(f.Processes, apps...) {
		if pidRunning(p.PID, "") {
			t.Errorf("%s (pid %d) still running after Stop", p.Name, p.PID)
		}
	}
	if _, err := f.Admin(0, "show info"); err == nil {
		t.Error("haproxy still answers after Stop")
	}
}

// TestRestartScriptCrashLoop checks the contract the pid_file flap guard
// relies on: a config that exits makes the supervisor start the app again
// with a new pid.
func TestRestartScriptCrashLoop(t *testing.T) {
	app, restart := DemoPaths(t)
	f := StartT(t, Options{Hosts: 1, AppBinary: app, RestartScript: restart,
		InitialConfig: func(h Host) string {
			return "version = 9\nlisten = 127.0.0.1:" + strconv.Itoa(h.AppPort) + "\nexit_after = 300ms\n"
		}})
	h := f.Hosts[0]
	first, err := f.AppPID(h)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = poll(ctx, "pid change", nil, 50*time.Millisecond, func() error {
		if pid, _ := f.AppPID(h); pid == first || pid == 0 {
			return os.ErrNotExist
		}
		return nil
	})
	if err != nil {
		t.Fatalf("app pid never changed from %d: %v", first, err)
	}
}

func TestStartValidatesOptions(t *testing.T) {
	for _, opts := range []Options{
		{},
		{Dir: t.TempDir()},
		{Dir: t.TempDir(), Hosts: 2, Names: []string{"a"}},
		{Dir: t.TempDir(), Names: []string{"a", "a"}},
		{Dir: t.TempDir(), Names: []string{"bad name"}},
		{Dir: t.TempDir(), Hosts: 1, AppBinary: "/bin/true"},
	} {
		if f, err := Start(context.Background(), opts); err == nil {
			f.Stop()
			t.Errorf("Start(%+v) succeeded", opts)
		}
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s %v", url, resp.Status, err)
	}
	return string(b)
}
