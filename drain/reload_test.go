package drain

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// mwLB is a real HAProxy in master-worker mode (-W, as Debian's unit runs
// it), whose runtime API socket passes its listeners on at a reload.
type mwLB struct {
	t       *testing.T
	dir     string
	cfg     string
	sock    string
	front   string
	servers []string // "name addr"
	cmd     *exec.Cmd
	done    chan struct{}
}

func startMasterWorker(t *testing.T, apps []*app) *mwLB {
	t.Helper()
	requireHAProxy(t)
	dir, err := os.MkdirTemp("", "rl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	l := &mwLB{t: t, dir: dir, cfg: filepath.Join(dir, "haproxy.cfg"), sock: filepath.Join(dir, "admin.sock"),
		front: fmt.Sprintf("127.0.0.1:%d", freePort(t))}
	for _, a := range apps {
		l.servers = append(l.servers, a.name+" "+a.addr)
	}
	l.write(l.servers)
	l.start()
	t.Cleanup(l.stop)
	return l
}

func (l *mwLB) write(servers []string) {
	var b strings.Builder
	for _, s := range servers {
		fmt.Fprintf(&b, "  server %s weight 100 check inter 100ms\n", s)
	}
	cfg := fmt.Sprintf(`global
  stats socket %s mode 600 level admin expose-fd listeners
defaults
  mode http
  timeout connect 1s
  timeout client 30s
  timeout server 30s
  retries 0
frontend fe
  bind %s
  default_backend web
backend web
  balance roundrobin
%s`, l.sock, l.front, b.String())
	if err := os.WriteFile(l.cfg, []byte(cfg), 0o600); err != nil {
		l.t.Fatal(err)
	}
}

func (l *mwLB) start() {
	l.t.Helper()
	l.cmd = exec.Command(haproxyBin, "-W", "-db", "-f", l.cfg)
	logf, err := os.OpenFile(filepath.Join(l.dir, "haproxy.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		l.t.Fatal(err)
	}
	l.cmd.Stdout, l.cmd.Stderr = logf, logf
	l.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := l.cmd.Start(); err != nil {
		l.t.Fatal(err)
	}
	logf.Close()
	l.done = make(chan struct{})
	go func(c *exec.Cmd, done chan struct{}) { _ = c.Wait(); close(done) }(l.cmd, l.done)
	l.waitPid(0)
}

// stop ends the master (which stops its workers) and waits for it.
func (l *mwLB) stop() {
	if l.cmd == nil || l.cmd.Process == nil {
		return
	}
	_ = l.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-l.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-l.cmd.Process.Pid, syscall.SIGKILL)
		<-l.done
	}
	l.cmd = nil
}

// reload is what `systemctl reload haproxy` does: USR2 to the master.
// It returns once a fresh connection reaches the new worker.
func (l *mwLB) reload() {
	l.t.Helper()
	old := l.pid()
	// a master that has just started ignores USR2 for a moment: send it
	// again until the master says it reloads
	n := l.reloadsLogged()
	for i := 0; l.reloadsLogged() == n; i++ {
		if i == 50 {
			l.t.Fatal("HAProxy's master never reloaded")
		}
		if err := l.cmd.Process.Signal(syscall.SIGUSR2); err != nil {
			l.t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	l.waitPid(old)
}

func (l *mwLB) reloadsLogged() int {
	b, _ := os.ReadFile(filepath.Join(l.dir, "haproxy.log"))
	return strings.Count(string(b), "Reloading HAProxy")
}

func (l *mwLB) statusLine(key string) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", l.cmd.Process.Pid))
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, key) {
			return line
		}
	}
	return ""
}

// pid is the worker a fresh connection reaches (0 when none answers).
func (l *mwLB) pid() int {
	out, err := l.admin("show info")
	if err != nil {
		return 0
	}
	p, stopping := parseInfo(out)
	if stopping {
		return 0
	}
	return p.Pid
}

func (l *mwLB) waitPid(not int) {
	l.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if p := l.pid(); p != 0 && p != not {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	b, _ := os.ReadFile(filepath.Join(l.dir, "haproxy.log"))
	l.t.Fatalf("HAProxy did not come up with a new worker (%s %s); log:\n%s", l.statusLine("SigBlk"), l.statusLine("SigCgt"), b)
}

func (l *mwLB) admin(cmd string) (string, error) {
	c, err := net.DialTimeout("unix", l.sock, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := c.Write([]byte(cmd + "\n")); err != nil {
		return "", err
	}
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			return b.String(), nil
		}
	}
}

// serving runs cmd on the process that serves: a connection can still reach
// the old one for a moment after a reload (both accept on the socket they
// share), so "show info" goes first on the same line.
func (l *mwLB) serving(cmd string) string {
	l.t.Helper()
	for i := 0; i < 100; i++ {
		out, err := l.admin("show info;" + cmd)
		if err != nil {
			l.t.Fatal(err)
		}
		if _, stopping := parseInfo(out); !stopping {
			return out
		}
		time.Sleep(10 * time.Millisecond)
	}
	l.t.Fatal("only a stopping HAProxy process answers")
	return ""
}

// adminState is the server's admin state in the process that serves, from
// "show servers state": 0 in service, 1 maint (forced), 8 drain (forced).
func (l *mwLB) adminState(server string) string {
	l.t.Helper()
	out := l.serving("show servers state web")
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) > 6 && f[3] == server {
			return f[6]
		}
	}
	l.t.Fatalf("no server %s in:\n%s", server, out)
	return ""
}

type reloadLog struct {
	mu  sync.Mutex
	got []Reload
}

func (r *reloadLog) add(x Reload) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, x)
}

func (r *reloadLog) all() []Reload {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Reload(nil), r.got...)
}

// trackedClient is the run's client (RunOptions); watch false turns the
// watcher off, to see what the commands alone do.
func trackedClient(t *testing.T, l *mwLB, log *reloadLog, watch bool) (*RuntimeAPI, *HAProxy, *HAProxy) {
	t.Helper()
	opt := RunOptions
	opt.OnReload = log.add
	if !watch {
		opt.Watch = 0
	}
	api, err := NewRuntimeAPIOptions("unix:"+l.sock, nil, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { api.Close() })
	h1, err := NewHAProxyClients("h1", []*RuntimeAPI{api}, "web", "s1")
	if err != nil {
		t.Fatal(err)
	}
	h2, err := NewHAProxyClients("h2", []*RuntimeAPI{api}, "web", "s2")
	if err != nil {
		t.Fatal(err)
	}
	return api, h1, h2
}

// The measured fault (issue 22): a kept connection stays with the old
// worker after a reload, and the new worker has every server in service.
// The client notices at its next command, re-applies the drain on the new
// worker before that command, and says so.
func TestReloadReappliesDrainBeforeTheNextCommand(t *testing.T) {
	apps := []*app{startApp(t, "s1"), startApp(t, "s2")}
	l := startMasterWorker(t, apps)
	var log reloadLog
	api, h1, h2 := trackedClient(t, l, &log, false)
	ctx := context.Background()
	if err := h1.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if err := h2.SetWeight(ctx, 25); err != nil {
		t.Fatal(err)
	}
	before := l.pid()
	l.reload()
	if got := l.adminState("s1"); got != "0" {
		t.Fatalf("after the reload the new worker has s1 in admin state %s; the test expects HAProxy to reset it to 0", got)
	}
	time.Sleep(2 * RunOptions.CheckEvery) // let the last check age
	if _, err := h1.Sessions(ctx); err != nil {
		t.Fatal(err)
	}
	if got := l.adminState("s1"); got != "8" {
		t.Errorf("after the next sessions poll s1 is in admin state %s on the serving worker, want 8 (drain)", got)
	}
	out := l.serving("get weight web/s2")
	if !strings.Contains(out, "\n25 (initial 100)") {
		t.Errorf("s2's weight on the serving worker is %q, want 25 (re-applied)", out)
	}
	rs := log.all()
	if len(rs) != 1 || rs[0].From.Pid != before || rs[0].To.Pid != l.pid() || rs[0].Err() != nil {
		t.Fatalf("reloads reported: %+v; want one, pid %d → %d, no error", rs, before, l.pid())
	}
	sum := rs[0].Summary()
	for _, want := range []string{"web/s1 drain", "web/s2 weight 25%", fmt.Sprintf("pid %d → pid %d", before, l.pid())} {
		if !strings.Contains(sum, want) {
			t.Errorf("summary %q does not say %q", sum, want)
		}
	}
	if api.Reloads() != 1 {
		t.Errorf("Reloads() = %d", api.Reloads())
	}
	// put back: nothing left to re-apply at the next reload
	if err := h1.Undrain(ctx); err != nil {
		t.Fatal(err)
	}
	if err := h2.SetWeight(ctx, 100); err != nil {
		t.Fatal(err)
	}
	l.reload()
	time.Sleep(2 * RunOptions.CheckEvery)
	if _, err := h1.Sessions(ctx); err != nil {
		t.Fatal(err)
	}
	rs = log.all()
	if len(rs) != 2 || len(rs[1].Servers) != 0 {
		t.Errorf("second reload: %+v; want one with nothing re-applied", rs)
	}
}

// While a host restarts rollout sends HAProxy nothing: the watcher catches
// a reload then, and Hold (right before a restart) checks afresh.
func TestReloadWhileOutOfServiceIsCaughtWithoutACommand(t *testing.T) {
	apps := []*app{startApp(t, "s1"), startApp(t, "s2")}
	l := startMasterWorker(t, apps)
	var log reloadLog
	_, h1, _ := trackedClient(t, l, &log, true)
	ctx := context.Background()
	if err := h1.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if err := h1.Settle(ctx); err != nil {
		t.Fatal(err)
	}
	if err := h1.Hold(ctx); err != nil {
		t.Fatalf("Hold of a server in maint: %v", err)
	}
	l.reload()
	deadline := time.Now().Add(5 * time.Second)
	// the state is re-applied first, then reported
	for l.adminState("s1") != "1" || len(log.all()) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the watcher did not re-apply maint on the new worker and report it within 5s (reloads seen: %+v)", log.all())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := len(log.all()); n != 1 {
		t.Errorf("%d reloads reported, want 1", n)
	}
	// a full restart: the socket goes away, state is lost
	l.stop()
	l.start()
	if err := h1.Hold(ctx); err != nil {
		t.Fatalf("Hold after a restart: %v", err)
	}
	if got := l.adminState("s1"); got != "1" {
		t.Errorf("after a restart and Hold, s1 is in admin state %s, want 1 (maint)", got)
	}
	if n := len(log.all()); n != 2 {
		t.Errorf("%d reloads reported after the restart, want 2", n)
	}
}

// A reload whose new configuration lost the server: the drain cannot be
// re-applied, and Hold refuses (the host must not be restarted).
func TestReloadThatCannotBeReappliedFailsHold(t *testing.T) {
	apps := []*app{startApp(t, "s1"), startApp(t, "s2")}
	l := startMasterWorker(t, apps)
	var log reloadLog
	_, h1, _ := trackedClient(t, l, &log, true)
	ctx := context.Background()
	if err := h1.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	l.write([]string{"s2 " + apps[1].addr, "s3 " + apps[0].addr})
	l.reload()
	err := h1.Hold(ctx)
	if err == nil || !strings.Contains(err.Error(), "could not be taken out of service again") {
		t.Fatalf("Hold = %v, want the re-apply failure", err)
	}
	rs := log.all()
	if len(rs) != 1 || rs[0].Err() == nil || !strings.Contains(rs[0].Summary(), "could not re-apply web/s1 drain") {
		t.Errorf("reloads: %+v", rs)
	}
}
