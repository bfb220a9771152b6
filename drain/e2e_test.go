package drain

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rollout-sh/rollout/internal/fleet"
)

const haproxyBin = "/usr/sbin/haproxy"

func requireHAProxy(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(haproxyBin); err != nil {
		if os.Getenv("ROLLOUT_E2E") == "1" {
			t.Fatalf("ROLLOUT_E2E=1 but %s is missing: %v", haproxyBin, err)
		}
		t.Skipf("%s not installed", haproxyBin)
	}
}

// app is one backend server: a tiny HTTP server on 127.0.0.1 that answers
// its name, and holds /slow requests until release is closed.
type app struct {
	name    string
	addr    string
	release chan struct{}
	started chan struct{}
}

func startApp(t *testing.T, name string) *app {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := &app{name: name, addr: ln.Addr().String(), release: make(chan struct{}), started: make(chan struct{}, 16)}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			a.started <- struct{}{}
			<-a.release
		}
		io.WriteString(w, a.name)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return a
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// lb is one real HAProxy started for a test.
type lb struct {
	endpoint string // runtime API
	front    string // http frontend host:port
}

// startHAProxy runs haproxy -db with a backend "web" of apps (weight 100,
// health checks, retries 0). tcpSocket exposes the runtime API on a
// loopback TCP port instead of a unix socket.
func startHAProxy(t *testing.T, apps []*app, tcpSocket bool) lb {
	t.Helper()
	dir := t.TempDir()
	sock := filepath.Join(dir, "admin.sock")
	stats := sock
	endpoint := "unix:" + sock
	if tcpSocket {
		p := freePort(t)
		stats = fmt.Sprintf("ipv4@127.0.0.1:%d", p)
		endpoint = fmt.Sprintf("tcp:127.0.0.1:%d", p)
	}
	front := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	var servers strings.Builder
	for _, a := range apps {
		fmt.Fprintf(&servers, "  server %s %s weight 100 check inter 100ms\n", a.name, a.addr)
	}
	cfg := fmt.Sprintf(`global
  stats socket %s mode 600 level admin
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
%s`, stats, front, servers.String())
	path := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(haproxyBin, "-db", "-f", path)
	logf, err := os.Create(filepath.Join(dir, "haproxy.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	t.Cleanup(func() {
		if p, err := os.FindProcess(pid); err == nil {
			p.Kill()
		}
		cmd.Wait()
		logf.Close()
	})
	api, err := NewRuntimeAPI(endpoint, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Ready when the runtime API answers and every server is UP.
	deadline := time.Now().Add(10 * time.Second)
	for {
		rows, err := api.Stat(context.Background(), "web")
		up := err == nil && len(rows) == len(apps)
		for _, r := range rows {
			up = up && r.Status == "UP"
		}
		if up {
			break
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "haproxy.log"))
			t.Fatalf("haproxy not ready: %v %+v\n%s", err, rows, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return lb{endpoint: endpoint, front: front}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func statOf(t *testing.T, endpoint, server string) Stat {
	t.Helper()
	api, err := NewRuntimeAPI(endpoint, nil)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := api.Stat(context.Background(), "web")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if r.Server == server {
			return r
		}
	}
	t.Fatalf("%s not in show stat", server)
	return Stat{}
}

// eventually polls cond until it holds; the bound only turns a hang into a
// failure, it is not a timing assertion.
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ok, detail := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never happened: %s", what, detail)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestE2EHAProxyDrainCycle(t *testing.T) {
	requireHAProxy(t)
	ctx := context.Background()
	web1, web2 := startApp(t, "web1"), startApp(t, "web2")
	l := startHAProxy(t, []*app{web1, web2}, false)
	h, err := NewHAProxy("web1", []string{l.endpoint}, nil, "web", "web1")
	if err != nil {
		t.Fatal(err)
	}
	other, _ := NewRuntimeAPI(l.endpoint, nil)
	if err := h.Check(ctx); err != nil {
		t.Fatal(err)
	}

	// Hold one slow request open on web1: take web2 out so it lands there.
	if err := other.SetState(ctx, "web", "web2", "maint"); err != nil {
		t.Fatal(err)
	}
	slow := make(chan string, 1)
	go func() {
		resp, err := http.Get("http://" + l.front + "/slow")
		if err != nil {
			slow <- "error: " + err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		slow <- string(b)
	}()
	<-web1.started
	if err := other.SetState(ctx, "web", "web2", "ready"); err != nil {
		t.Fatal(err)
	}

	if err := h.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if st := statOf(t, l.endpoint, "web1"); st.Status != "DRAIN" {
		t.Errorf("after drain: status %q, want DRAIN", st.Status)
	}
	n, err := h.Sessions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("sessions with one slow request open = %d, want 1", n)
	}
	// New traffic goes to web2 only.
	for i := range 6 {
		if got := get(t, "http://"+l.front+"/"); got != "web2" {
			t.Fatalf("request %d after drain went to %q", i, got)
		}
	}
	// The drained server finishes what it had.
	close(web1.release)
	if got := <-slow; got != "web1" {
		t.Fatalf("slow request = %q, want it answered by web1", got)
	}
	// sessions reach zero once the slow request is done (bounded poll)
	var seen []int
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		n, err := h.Sessions(ctx)
		if err != nil {
			t.Fatalf("sessions: %v", err)
		}
		seen = append(seen, n)
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sessions never reached 0: %v", seen)
		}
	}

	if err := h.Settle(ctx); err != nil {
		t.Fatal(err)
	}
	if st := statOf(t, l.endpoint, "web1"); st.Status != "MAINT" {
		t.Errorf("after settle: status %q, want MAINT", st.Status)
	}
	if ok, detail, err := h.Serving(ctx); err != nil || ok {
		t.Errorf("serving in maint = %v %q %v, want false", ok, detail, err)
	}

	// Ramp: the first step is set before the server is back in service.
	if err := h.SetWeight(ctx, 10); err != nil {
		t.Fatal(err)
	}
	if err := h.Undrain(ctx); err != nil {
		t.Fatal(err)
	}
	st := statOf(t, l.endpoint, "web1")
	if st.Weight != 10 || !strings.HasPrefix(st.Status, "UP") {
		t.Errorf("after weight 10%% + undrain: status %q weight %d, want UP weight 10", st.Status, st.Weight)
	}
	if err := h.SetWeight(ctx, 100); err != nil {
		t.Fatal(err)
	}
	if st := statOf(t, l.endpoint, "web1"); st.Weight != 100 {
		t.Errorf("after weight 100%%: weight %d", st.Weight)
	}
	eventually(t, "web1 serving", func() (bool, string) {
		ok, detail, err := h.Serving(ctx)
		return ok && err == nil, fmt.Sprint(detail, err)
	})
	// And it takes traffic again.
	eventually(t, "a request answered by web1", func() (bool, string) {
		got := get(t, "http://"+l.front+"/")
		return got == "web1", got
	})
}

func TestE2EHAProxyPair(t *testing.T) {
	requireHAProxy(t)
	ctx := context.Background()
	web1, web2 := startApp(t, "web1"), startApp(t, "web2")
	lb1 := startHAProxy(t, []*app{web1, web2}, false)
	lb2 := startHAProxy(t, []*app{web1, web2}, true) // runtime API over TCP
	h, err := NewHAProxy("web1", []string{lb1.endpoint, lb2.endpoint}, nil, "web", "web1")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Check(ctx); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name string
		do   func(context.Context) error
		want string
	}{
		{"drain", h.Drain, "DRAIN"},
		{"settle", h.Settle, "MAINT"},
		{"undrain", h.Undrain, "UP"},
	}
	for _, s := range steps {
		if err := s.do(ctx); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		for _, ep := range []string{lb1.endpoint, lb2.endpoint} {
			// Back from maint HAProxy shows "UP 1/3" until the next check.
			if st := statOf(t, ep, "web1"); !strings.HasPrefix(st.Status, s.want) {
				t.Errorf("after %s: %s web1 = %q, want %q", s.name, ep, st.Status, s.want)
			}
			if st := statOf(t, ep, "web2"); st.Status != "UP" {
				t.Errorf("after %s: %s web2 = %q, want UP (untouched)", s.name, ep, st.Status)
			}
		}
	}
	ok, detail, err := h.Serving(ctx)
	if err != nil || !ok {
		t.Fatalf("serving = %v %q %v", ok, detail, err)
	}
	if !strings.HasPrefix(detail, lb1.endpoint+" UP") || !strings.Contains(detail, ", "+lb2.endpoint+" UP") {
		t.Errorf("detail = %q, want both LBs UP", detail)
	}
}

func TestE2EHAProxyUnknownServerAndPool(t *testing.T) {
	requireHAProxy(t)
	ctx := context.Background()
	apps := []*app{startApp(t, "web1"), startApp(t, "web2"), startApp(t, "web3")}
	l := startHAProxy(t, apps, false)

	h, err := NewHAProxy("web9", []string{l.endpoint}, nil, "web", "web9")
	if err != nil {
		t.Fatal(err)
	}
	err = h.Check(ctx)
	if err == nil || !strings.Contains(err.Error(), "No such server") || !strings.Contains(err.Error(), "web/web9") {
		t.Fatalf("check of an unknown server: %v", err)
	}
	if err := h.Drain(ctx); err == nil || !strings.Contains(err.Error(), "No such server") {
		t.Fatalf("drain of an unknown server: %v", err)
	}

	h3, err := NewHAProxy("web3", []string{l.endpoint}, nil, "web", "web3")
	if err != nil {
		t.Fatal(err)
	}
	if err := h3.Settle(ctx); err != nil {
		t.Fatal(err)
	}
	pool, err := h3.Pool(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]ServerState{}
	for _, s := range pool {
		got[s.Server] = s
	}
	if len(got) != 3 {
		t.Fatalf("pool = %+v", pool)
	}
	if s := got["web3"]; s.Serving || s.Status != "MAINT" {
		t.Errorf("web3 = %+v, want MAINT, not serving", s)
	}
	for _, name := range []string{"web1", "web2"} {
		if s := got[name]; !s.Serving || s.Status != "UP" {
			t.Errorf("%s = %+v, want UP, serving", name, s)
		}
	}
}

// 100 hosts' drivers share one run client of a stock stats socket (10
// connections at most), and all of them go through a whole drain cycle at
// once, as a batch of 100 with --forks 100 does: no error, every server
// back UP at full weight, and never more than 3 connections.
func TestE2EHAProxySharedClientHundredHosts(t *testing.T) {
	requireHAProxy(t)
	const n = 100
	var apps []*app
	for i := 1; i <= n; i++ {
		apps = append(apps, startApp(t, fmt.Sprintf("web%d", i)))
	}
	l := startHAProxy(t, apps, false)
	api, err := NewRuntimeAPIOptions(l.endpoint, nil, RunOptions)
	if err != nil {
		t.Fatal(err)
	}
	defer api.Close()
	var hs []*HAProxy
	for i := 1; i <= n; i++ {
		h, err := NewHAProxyClients(fmt.Sprintf("web%d", i), []*RuntimeAPI{api}, "web", fmt.Sprintf("web%d", i))
		if err != nil {
			t.Fatal(err)
		}
		hs = append(hs, h)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cycle := func(h *HAProxy) error {
		if err := h.Check(ctx); err != nil {
			return err
		}
		if err := h.Drain(ctx); err != nil {
			return err
		}
		for {
			s, err := h.Sessions(ctx)
			if err != nil {
				return err
			}
			if s == 0 {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err := h.Settle(ctx); err != nil {
			return err
		}
		if err := h.SetWeight(ctx, 50); err != nil {
			return err
		}
		if err := h.Drain(ctx); err != nil { // checks resume in drain
			return err
		}
		for {
			up, _, err := h.Serving(ctx)
			if err != nil {
				return err
			}
			if up {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err := h.Undrain(ctx); err != nil {
			return err
		}
		return h.SetWeight(ctx, 100)
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, h := range hs {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = cycle(h) }()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	u := api.Usage()
	if u.PeakConns > 3 {
		t.Errorf("usage %+v: more than 3 connections at once", u)
	}
	if u.Lines >= u.Commands {
		t.Errorf("usage %+v: no line carried more than one command", u)
	}
	t.Logf("usage: %+v", u)
	// HAProxy shows "UP 1/3" until the checks after maint have passed
	eventually(t, "every server UP at weight 100", func() (bool, string) {
		rows, err := api.Stat(ctx, "web")
		if err != nil {
			return false, err.Error()
		}
		for _, r := range rows {
			if r.Status != "UP" || r.Weight != 100 {
				return false, fmt.Sprintf("%s %s weight %d", r.Server, r.Status, r.Weight)
			}
		}
		return len(rows) == n, fmt.Sprintf("%d rows", len(rows))
	})
}

// Other clients fill the stats socket (its 10 connections and its accept
// backlog, so connecting fails with EAGAIN); the run's client waits and
// retries, and goes through once they let go.
func TestE2EHAProxyFullSocketIsRetried(t *testing.T) {
	requireHAProxy(t)
	l := startHAProxy(t, []*app{startApp(t, "web1")}, false)
	sock := strings.TrimPrefix(l.endpoint, "unix:")
	held := fillSocket(t, sock)
	release := time.AfterFunc(300*time.Millisecond, func() {
		for _, c := range held {
			c.Close()
		}
	})
	defer release.Stop()
	api, err := NewRuntimeAPIOptions(l.endpoint, nil, RunOptions)
	if err != nil {
		t.Fatal(err)
	}
	defer api.Close()
	h, err := NewHAProxyClients("web1", []*RuntimeAPI{api}, "web", "web1")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.Check(ctx); err != nil {
		t.Fatalf("check once the socket frees up: %v", err)
	}
	if u := api.Usage(); u.Attempts < 2 {
		t.Errorf("usage %+v: the first connect went through a full socket", u)
	}

	// a socket that stays full: the deadline ends it, and the error says why
	again := fillSocket(t, sock)
	defer func() {
		for _, c := range again {
			c.Close()
		}
	}()
	api2, _ := NewRuntimeAPIOptions(l.endpoint, nil, RunOptions)
	defer api2.Close()
	h2, _ := NewHAProxyClients("web1", []*RuntimeAPI{api2}, "web", "web1")
	sctx, scancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer scancel()
	err = h2.Check(sctx)
	// refused at connect (EAGAIN), or queued in the accept backlog and
	// never answered, depending on how full the backlog is
	var ce *ConnectError
	if !errors.As(err, &ce) || ce.Cause != CauseConnLimit && ce.Cause != CauseNoAnswer || !strings.Contains(err.Error(), "connection limit") || !strings.Contains(Hint(err), "stats maxconn") {
		t.Fatalf("err = %v, hint %q: want the connection-limit error and hint", err, Hint(err))
	}
}

func fillSocket(t *testing.T, sock string) []net.Conn {
	t.Helper()
	held, err := fleet.FillStatsSocket(sock)
	if err != nil {
		t.Fatal(err)
	}
	return held
}
