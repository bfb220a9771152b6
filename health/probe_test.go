package health

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

func TestHTTP(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			io.WriteString(w, "status: ok\n")
		case "/starting":
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, "starting")
		case "/degraded":
			io.WriteString(w, "degraded")
		case "/created":
			w.WriteHeader(http.StatusCreated)
		}
	}))
	t.Cleanup(srv.Close)
	closed := "http://" + closedAddr(t) + "/healthz"
	tests := []struct {
		name, path  string
		url         string
		status      int
		bodyMatches string
		want        string // "" = healthy
	}{
		{name: "ok", path: "/ok", status: 200, bodyMatches: "ok"},
		{name: "default status", path: "/ok", bodyMatches: `(?m)^status: (ok|fine)$`},
		{name: "status", path: "/starting", status: 200, want: "GET URL: status 503, want 200"},
		{name: "body", path: "/degraded", status: 200, bodyMatches: "ok", want: `GET URL: body "degraded" does not match "ok"`},
		{name: "other status wanted", path: "/created", status: 201},
		{name: "refused", url: closed, want: "GET " + closed + ": dial tcp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := tt.url
			if url == "" {
				url = srv.URL + tt.path
			}
			p, err := HTTP(nil, url, tt.status, tt.bodyMatches)
			if err != nil {
				t.Fatal(err)
			}
			err = p.Probe(context.Background())
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			want := strings.ReplaceAll(tt.want, "URL", url)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("err = %v, want it to contain %q", err, want)
			}
		})
	}
}

func TestHTTPBadInput(t *testing.T) {
	if _, err := HTTP(nil, "http://127.0.0.1:1/", 200, "ok("); err == nil || !strings.Contains(err.Error(), "body_matches") {
		t.Errorf("bad regexp: err = %v", err)
	}
	if _, err := HTTP(nil, "http://[::1", 200, ""); err == nil {
		t.Error("bad url accepted")
	}
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	if err := TCP(nil, ln.Addr().String()).Probe(context.Background()); err != nil {
		t.Errorf("open port: %v", err)
	}
	closed := closedAddr(t)
	err = TCP(nil, closed).Probe(context.Background())
	if err == nil || !strings.HasPrefix(err.Error(), "tcp "+closed+": ") || !strings.Contains(err.Error(), "refused") {
		t.Errorf("closed port: err = %v", err)
	}
	// The dialer is used as given (through SSH in real runs).
	var gotNet, gotAddr string
	dial := func(_ context.Context, network, addr string) (net.Conn, error) {
		gotNet, gotAddr = network, addr
		return nil, errors.New("ssh: tunnel refused")
	}
	if err := TCP(dial, "10.0.0.5:8080").Probe(context.Background()); err == nil || gotNet != "tcp" || gotAddr != "10.0.0.5:8080" {
		t.Errorf("dialer saw %s %s, err %v", gotNet, gotAddr, err)
	}
}

func TestCommand(t *testing.T) {
	tests := []struct {
		name           string
		stdout, stderr string
		exit           int
		want           string
	}{
		{name: "exit 0", stdout: "fine\n"},
		{name: "stderr wins", stdout: "checking\n", stderr: "warming up\nappd: not ready: db down\n", exit: 1, want: "appd-ping: exit status 1: appd: not ready: db down"},
		{name: "stdout when stderr empty", stdout: "a\nlast line\n\n", exit: 2, want: "exit status 2: last line"},
		{name: "silent", exit: 3, want: "appd-ping: exit status 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &cmdRunner{fn: func(string, int) (string, string, int) { return tt.stdout, tt.stderr, tt.exit }}
			err := Command(r, "appd-ping").Probe(context.Background())
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.HasSuffix(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to end with %q", err, tt.want)
			}
			var es interface{ ExitStatus() int }
			if !errors.As(err, &es) || es.ExitStatus() != tt.exit {
				t.Errorf("exit status not reachable: %v", err)
			}
		})
	}
}

func TestServingProbe(t *testing.T) {
	tests := []struct {
		ok     bool
		detail string
		err    error
		want   string
	}{
		{ok: true, detail: "lb1 UP, lb2 UP"},
		{ok: false, detail: "lb1 UP, lb2 DOWN 1/2", want: "load balancer reports lb1 UP, lb2 DOWN 1/2"},
		{err: errors.New("haproxy lb2: connection refused"), want: "load balancer: haproxy lb2: connection refused"},
	}
	for _, tt := range tests {
		err := Serving(func(context.Context) (bool, string, error) { return tt.ok, tt.detail, tt.err }).Probe(context.Background())
		if (err == nil) != (tt.want == "") || (err != nil && err.Error() != tt.want) {
			t.Errorf("err = %v, want %q", err, tt.want)
		}
	}
}

// checkGuard checks a flap guard's baseline error (containing wantBase, or
// nil) and then, when the baseline was taken, its check error (exactly want,
// or nil).
func checkGuard(t *testing.T, g Guard, baseErr error, wantBase, want string) {
	t.Helper()
	if wantBase != "" {
		if baseErr == nil || !strings.Contains(baseErr.Error(), wantBase) {
			t.Fatalf("baseline err = %v, want %q", baseErr, wantBase)
		}
		return
	}
	if baseErr != nil {
		t.Fatal(baseErr)
	}
	err := g.Check(context.Background())
	if want == "" {
		if err != nil {
			t.Fatal(err)
		}
		return
	}
	if err == nil || err.Error() != want {
		t.Fatalf("check err = %v, want %q", err, want)
	}
}

func TestPidFileOutputs(t *testing.T) {
	tests := []struct {
		name     string
		baseline string
		check    string
		exit     int
		stderr   string
		wantBase string
		want     string
	}{
		{name: "same", baseline: "4121\nrunning\n", check: "4121\nrunning\n"},
		{name: "changed", baseline: "4121\nrunning\n", check: "4188\nrunning\n", want: "pid 4121 → 4188"},
		{name: "changed and dead", baseline: "4121\nrunning\n", check: "4188\nstopped\n", want: "pid 4121 → 4188"},
		{name: "dead", baseline: "4121\nrunning\n", check: "4121\nstopped\n", want: "pid 4121 is not running"},
		{name: "file gone", baseline: "4121\nrunning\n", exit: 1, stderr: "cat: /run/appd.pid: No such file or directory\n", want: "pid file /run/appd.pid: exit status 1: cat: /run/appd.pid: No such file or directory"},
		{name: "garbage", baseline: "4121\nrunning\n", check: "appd\nunknown\n", want: `pid file /run/appd.pid holds "appd", want a pid`},
		{name: "baseline dead", baseline: "4121\nstopped\n", wantBase: "pid 4121 (from /run/appd.pid) is not running"},
		{name: "baseline empty file", baseline: "\nunknown\n", wantBase: `holds ""`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &cmdRunner{fn: func(_ string, n int) (string, string, int) {
				if n == 0 {
					return tt.baseline, "", 0
				}
				return tt.check, tt.stderr, tt.exit
			}}
			g := PidFile(r, "/run/appd.pid")
			checkGuard(t, g, g.Baseline(context.Background()), tt.wantBase, tt.want)
		})
	}
}

func TestPidFileQuotesPath(t *testing.T) {
	r := &cmdRunner{fn: seq("1\nrunning\n")}
	g := PidFile(r, "/run/app d/$(reboot).pid")
	if err := g.Baseline(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.ran[0], `cat -- '/run/app d/$(reboot).pid'`) {
		t.Errorf("path not quoted: %s", r.ran[0])
	}
}

func TestSystemdUnitOutputs(t *testing.T) {
	tests := []struct {
		name     string
		baseline string
		check    string
		wantBase string
		want     string
	}{
		{name: "same", baseline: "MainPID=4121\nNRestarts=0\n", check: "NRestarts=0\nMainPID=4121\n"},
		{name: "one restart", baseline: "MainPID=4121\nNRestarts=0\n", check: "MainPID=4130\nNRestarts=1\n", want: "unit appd restarted 1 time"},
		{name: "restarts", baseline: "MainPID=4121\nNRestarts=5\n", check: "MainPID=4130\nNRestarts=7\n", want: "unit appd restarted 2 times"},
		{name: "pid change", baseline: "MainPID=4121\nNRestarts=0\n", check: "MainPID=4188\nNRestarts=0\n", want: "unit appd: pid 4121 → 4188"},
		{name: "stopped", baseline: "MainPID=4121\nNRestarts=0\n", check: "MainPID=0\nNRestarts=0\n", want: "unit appd: pid 4121 is not running"},
		{name: "no NRestarts (old systemd)", baseline: "MainPID=4121\nNRestarts=\n", check: "MainPID=4121\nNRestarts=\n"},
		{name: "no NRestarts, pid change", baseline: "MainPID=4121\n", check: "MainPID=99\n", want: "unit appd: pid 4121 → 99"},
		{name: "baseline not running", baseline: "MainPID=0\nNRestarts=0\n", wantBase: "unit appd is not running (MainPID=0)"},
		{name: "baseline garbage", baseline: "Failed to connect to bus\n", wantBase: "printed no MainPID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &cmdRunner{fn: func(_ string, n int) (string, string, int) {
				if n == 0 {
					return tt.baseline, "", 0
				}
				return tt.check, "", 0
			}}
			g := SystemdUnit(r, "appd")
			err := g.Baseline(context.Background())
			if r.ran[0] != "systemctl show -p NRestarts -p MainPID appd" {
				t.Errorf("ran %q", r.ran[0])
			}
			checkGuard(t, g, err, tt.wantBase, tt.want)
		})
	}
}

// shRunner runs commands with the local sh, like a remote host would.
type shRunner struct{}

func (shRunner) Run(ctx context.Context, cmd string, stdin io.Reader, stdout, stderr io.Writer) error {
	c := exec.CommandContext(ctx, "sh", "-c", cmd)
	c.Stdin, c.Stdout, c.Stderr = stdin, stdout, stderr
	err := c.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return exitError(ee.ExitCode())
	}
	return err
}

// startSleeper starts a real process and writes its pid to path.
func startSleeper(t *testing.T, path string) *exec.Cmd {
	t.Helper()
	c := exec.Command("sleep", "300")
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	pid := c.Process.Pid
	t.Cleanup(func() {
		syscall.Kill(pid, syscall.SIGKILL)
		c.Wait()
	})
	if err := os.WriteFile(path, []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestPidFileRealProcess(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "appd.pid")
	first := startSleeper(t, path)
	g := PidFile(shRunner{}, path)
	if err := g.Baseline(ctx); err != nil {
		t.Fatal(err)
	}
	if err := g.Check(ctx); err != nil {
		t.Fatalf("unchanged process: %v", err)
	}

	// The process dies (and is reaped); the pid file still names it.
	syscall.Kill(first.Process.Pid, syscall.SIGKILL)
	first.Wait()
	want := fmt.Sprintf("pid %d is not running", first.Process.Pid)
	if err := g.Check(ctx); err == nil || err.Error() != want {
		t.Fatalf("after kill: err = %v, want %q", err, want)
	}

	// A supervisor starts a new one.
	second := startSleeper(t, path)
	want = fmt.Sprintf("pid %d → %d", first.Process.Pid, second.Process.Pid)
	if err := g.Check(ctx); err == nil || err.Error() != want {
		t.Fatalf("after replace: err = %v, want %q", err, want)
	}

	// The pid file disappears.
	os.Remove(path)
	if err := g.Check(ctx); err == nil || !strings.Contains(err.Error(), "No such file") {
		t.Fatalf("after rm: err = %v", err)
	}
}
