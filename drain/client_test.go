package drain

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// runConnBound is the documented bound on connections per endpoint for a
// run (docs/drain-and-health.md); HAProxy accepts 10 by default.
const runConnBound = 3

// fleetLB is a fake LB with n servers s1..sn, all UP at weight 100.
func fleetLB(t *testing.T, n int) *fakeLB {
	var servers []*fakeServer
	for i := 1; i <= n; i++ {
		servers = append(servers, &fakeServer{name: fmt.Sprintf("s%d", i), status: "UP", wght: 100})
	}
	return newFakeLB(t, "web", servers...)
}

// shared returns one run client for lb and a driver per server using it.
func shared(t *testing.T, lb *fakeLB, n int, opt Options, dial Dialer) (*RuntimeAPI, []*HAProxy) {
	t.Helper()
	api, err := NewRuntimeAPIOptions(lb.endpoint(), dial, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { api.Close() })
	var hs []*HAProxy
	for i := 1; i <= n; i++ {
		h, err := NewHAProxyClients(fmt.Sprintf("host%d", i), []*RuntimeAPI{api}, "web", fmt.Sprintf("s%d", i))
		if err != nil {
			t.Fatal(err)
		}
		hs = append(hs, h)
	}
	return api, hs
}

// all runs f for every driver at once and fails on any error.
func all(t *testing.T, hs []*HAProxy, step string, f func(*HAProxy) error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, len(hs))
	start := make(chan struct{})
	for i, h := range hs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = f(h)
		}()
	}
	close(start)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("%s: %v", step, err)
	}
}

// 100 hosts' drivers on one shared client, every step at once: never more
// than MaxConns connections, the commands of many hosts on one line, every
// server where it should be.
func TestSharedClientBoundsConnectionsAndBatches(t *testing.T) {
	const n = 100
	lb := fleetLB(t, n)
	lb.delay = 2 * time.Millisecond // a line takes a moment, as on a busy LB
	api, hs := shared(t, lb, n, RunOptions, nil)
	ctx := context.Background()

	all(t, hs, "check", func(h *HAProxy) error { return h.Check(ctx) })
	linesBefore := lb.lineCount()
	all(t, hs, "drain", func(h *HAProxy) error { return h.Drain(ctx) })
	drainLines := lb.lineCount() - linesBefore
	all(t, hs, "sessions", func(h *HAProxy) error { _, err := h.Sessions(ctx); return err })
	all(t, hs, "settle", func(h *HAProxy) error { return h.Settle(ctx) })
	all(t, hs, "weight", func(h *HAProxy) error { return h.SetWeight(ctx, 50) })
	all(t, hs, "undrain", func(h *HAProxy) error { return h.Undrain(ctx) })
	all(t, hs, "serving", func(h *HAProxy) error {
		up, detail, err := h.Serving(ctx)
		if err == nil && !up {
			err = fmt.Errorf("%s not serving: %s", h.server, detail)
		}
		return err
	})

	if p := lb.peak(); p > runConnBound {
		t.Errorf("the LB saw %d connections at once, want at most %d", p, runConnBound)
	}
	if u := api.Usage(); u.PeakConns > runConnBound {
		t.Errorf("client peak %d connections", u.PeakConns)
	}
	if got := lb.count("set server web/"); got != 4*n {
		t.Errorf("%d set server commands reached the LB, want %d", got, 4*n)
	}
	// 100 drains arrive together and leave on a few lines
	if drainLines > n/4 {
		t.Errorf("100 drains took %d lines, want them batched (≤ %d)", drainLines, n/4)
	}
	for i := 1; i <= n; i++ {
		s := lb.server(fmt.Sprintf("s%d", i))
		if s.status != "UP" || s.wght != 50 {
			t.Errorf("s%d = %s weight %d, want UP 50", i, s.status, s.wght)
		}
	}
}

// Callers arriving one after the other while lines are slow: an unbounded
// client would open a connection for each; this one stays at MaxConns.
func TestSharedClientNeverExceedsMaxConns(t *testing.T) {
	const n = 100
	lb := fleetLB(t, n)
	lb.delay = 10 * time.Millisecond
	api, hs := shared(t, lb, n, RunOptions, nil)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, h := range hs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(i) * 300 * time.Microsecond)
			if errs[i] = h.Drain(ctx); errs[i] == nil {
				_, errs[i] = h.Sessions(ctx)
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if p, u := lb.peak(), api.Usage(); p > runConnBound || u.PeakConns > runConnBound {
		t.Errorf("peak connections: LB saw %d, client counted %d; want at most %d", p, u.PeakConns, runConnBound)
	}
}

// Concurrent Sessions/Serving calls of many hosts share one show stat; a
// state change through the client makes the next call read afresh.
func TestStatReadsCoalesce(t *testing.T) {
	const n = 100
	lb := fleetLB(t, n)
	lb.servers[6].scur = 3
	opt := RunOptions
	opt.StatMaxAge = time.Minute // every call in this test falls in one poll
	api, hs := shared(t, lb, n, opt, nil)
	ctx := context.Background()
	var total atomic.Int64
	all(t, hs, "sessions", func(h *HAProxy) error {
		s, err := h.Sessions(ctx)
		total.Add(int64(s))
		return err
	})
	all(t, hs, "serving", func(h *HAProxy) error { _, _, err := h.Serving(ctx); return err })
	if got := lb.count("show stat"); got != 1 {
		t.Fatalf("%d show stat reads for 200 calls of 100 hosts, want 1", got)
	}
	if total.Load() != 3 {
		t.Errorf("sessions summed to %d, want 3 (s7)", total.Load())
	}
	if u := api.Usage(); u.StatReads != 1 {
		t.Errorf("usage counted %d stat reads", u.StatReads)
	}
	// after a drain, the same fresh-enough snapshot must not be trusted
	if err := hs[0].Drain(ctx); err != nil {
		t.Fatal(err)
	}
	_, detail, err := hs[0].Serving(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := lb.count("show stat"); got != 2 || !strings.HasSuffix(detail, " DRAIN") {
		t.Errorf("after a drain: %d show stat reads, status %q; want a second read showing DRAIN", got, detail)
	}
}

// eagainDialer fails the first n dials the way a full stats socket does.
func eagainDialer(n int, errno syscall.Errno) (Dialer, *atomic.Int64) {
	var calls atomic.Int64
	local := LocalDialer()
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if calls.Add(1) <= int64(n) {
			return nil, &net.OpError{Op: "dial", Net: network, Addr: &net.UnixAddr{Name: addr, Net: network}, Err: os.NewSyscallError("connect", errno)}
		}
		return local(ctx, network, addr)
	}, &calls
}

func TestConnectRetriesFullAndRefusedSocket(t *testing.T) {
	for _, errno := range []syscall.Errno{syscall.EAGAIN, syscall.ECONNREFUSED} {
		t.Run(errno.Error(), func(t *testing.T) {
			lb := fleetLB(t, 2)
			dial, calls := eagainDialer(5, errno)
			api, hs := shared(t, lb, 2, RunOptions, dial)
			if err := hs[0].Check(context.Background()); err != nil {
				t.Fatalf("check after 5 refused dials: %v", err)
			}
			if calls.Load() != 6 || api.Usage().Attempts != 6 || api.Usage().Dials != 1 {
				t.Errorf("dial calls %d, usage %+v; want 6 attempts for 1 connection", calls.Load(), api.Usage())
			}
		})
	}
}

func TestConnectGivesUpAtDeadlineWithAHint(t *testing.T) {
	lb := fleetLB(t, 1)
	dial, _ := eagainDialer(1<<30, syscall.EAGAIN)
	_, hs := shared(t, lb, 1, RunOptions, dial)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := hs[0].Drain(ctx)
	var ce *ConnectError
	if !errors.As(err, &ce) || ce.Cause != CauseConnLimit || ce.Attempts < 2 {
		t.Fatalf("err = %v, want a ConnectError (connection limit) after several attempts", err)
	}
	for _, want := range []string{"drain host1: haproxy " + lb.endpoint(), "resource temporarily unavailable", "connection limit", "attempts"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("err %q lacks %q", err, want)
		}
	}
	if h := Hint(err); !strings.Contains(h, "stats maxconn") || !strings.Contains(h, "ss -xp | grep "+lb.path) {
		t.Errorf("hint = %q", h)
	}
}

func TestConnectDoesNotRetryAMissingSocket(t *testing.T) {
	path := t.TempDir() + "/missing.sock"
	var calls atomic.Int64
	local := LocalDialer()
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		calls.Add(1)
		return local(ctx, network, addr)
	}
	api, err := NewRuntimeAPIOptions("unix:"+path, dial, RunOptions)
	if err != nil {
		t.Fatal(err)
	}
	_, err = api.Exec(context.Background(), "show info")
	var ce *ConnectError
	if !errors.As(err, &ce) || ce.Cause != CauseMissing || calls.Load() != 1 {
		t.Fatalf("err = %v after %d dials, want one dial and a missing-socket error", err, calls.Load())
	}
	if h := Hint(err); !strings.Contains(h, "echo 'show info' | socat stdio unix-connect:"+path) {
		t.Errorf("hint = %q", h)
	}
}

// HAProxy closes an idle CLI connection after "stats timeout": the client
// reconnects and the command still goes through.
func TestKeptConnectionClosedByHAProxyIsReplaced(t *testing.T) {
	lb := fleetLB(t, 2)
	lb.closeAfter = 1
	api, hs := shared(t, lb, 2, RunOptions, nil)
	ctx := context.Background()
	for i := 0; i < 5; i++ {
		if err := hs[0].Drain(ctx); err != nil {
			t.Fatalf("drain %d: %v", i, err)
		}
		time.Sleep(5 * time.Millisecond) // let the close reach the client's socket
	}
	if u := api.Usage(); u.Dials < 5 {
		t.Errorf("usage %+v: want a new connection per line", u)
	}
	if got := lb.count("set server"); got != 5 {
		t.Errorf("%d set commands reached the LB, want 5", got)
	}
}

// A kept connection serves many lines: one dial for a whole sequence.
func TestKeptConnectionIsReused(t *testing.T) {
	lb := fleetLB(t, 1)
	api, hs := shared(t, lb, 1, RunOptions, nil)
	ctx := context.Background()
	for _, f := range []func() error{
		func() error { return hs[0].Check(ctx) },
		func() error { return hs[0].Drain(ctx) },
		func() error { _, err := hs[0].Sessions(ctx); return err },
		func() error { return hs[0].Undrain(ctx) },
	} {
		if err := f(); err != nil {
			t.Fatal(err)
		}
	}
	// besides the connections that checked which process serves (Track)
	if u := api.Usage(); u.Dials-u.Checks != 1 || u.Lines != 4 || lb.acceptedCount() != u.Dials {
		t.Errorf("usage %+v, LB accepted %d: want 1 connection for 4 lines", u, lb.acceptedCount())
	}
	api.Close()
	time.Sleep(10 * time.Millisecond)
	lb.mu.Lock()
	open := lb.conns
	lb.mu.Unlock()
	if open != 0 {
		t.Errorf("%d connections left open after Close", open)
	}
}

// One-off clients (NewRuntimeAPI) close their connection after each line.
func TestOneOffClientClosesItsConnection(t *testing.T) {
	lb := fleetLB(t, 1)
	api, err := NewRuntimeAPI(lb.endpoint(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if _, err := api.Stat(context.Background(), "web"); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(10 * time.Millisecond)
	lb.mu.Lock()
	defer lb.mu.Unlock()
	if lb.accepted != 3 || lb.conns != 0 {
		t.Errorf("accepted %d, open %d: want 3 connections, all closed", lb.accepted, lb.conns)
	}
}

// A batched line where one host's command fails: only that host gets the
// error, with its own command and reply.
func TestBatchedLineAttributesReplies(t *testing.T) {
	lb := fleetLB(t, 3)
	lb.delay = 20 * time.Millisecond
	api, err := NewRuntimeAPIOptions(lb.endpoint(), nil, Options{MaxConns: 1, Keep: true})
	if err != nil {
		t.Fatal(err)
	}
	defer api.Close()
	ctx := context.Background()
	servers := []string{"s1", "s1", "nope", "s2", "s3"}
	errs := make([]error, len(servers))
	var wg sync.WaitGroup
	for i, s := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i > 0 {
				time.Sleep(5 * time.Millisecond) // queue behind the first line
			}
			errs[i] = api.SetState(ctx, "web", s, "drain")
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if servers[i] == "nope" {
			if err == nil || !strings.HasSuffix(err.Error(), "set server web/nope state drain: No such server.") {
				t.Errorf("nope: err = %v", err)
			}
		} else if err != nil {
			t.Errorf("%s: %v", servers[i], err)
		}
	}
	if lb.lineCount() > 3 {
		t.Errorf("%d lines for 5 commands queued behind one, want them batched", lb.lineCount())
	}
}

func TestReadReplyFraming(t *testing.T) {
	stream := "\n> " + // prompt
		"\n> " + // severity-output
		"[6]: admin\n\n> " +
		"# pxname,svname\nweb,a\n\n> " +
		"[3]: No such server.\n\n> " +
		"line one\n\nafter an empty line\n\n> "
	r := bufio.NewReader(strings.NewReader(stream))
	budget := maxReply
	want := []cliReply{{"", 0}, {"", 0}, {"admin\n", 6}, {"# pxname,svname\nweb,a\n", 0}, {"No such server.\n", 3}, {"line one\n\nafter an empty line\n", 0}}
	for i, w := range want {
		got, err := readReply(r, &budget)
		if err != nil {
			t.Fatalf("reply %d: %v", i, err)
		}
		if got != w {
			t.Errorf("reply %d = %+v, want %+v", i, got, w)
		}
	}
	if _, err := readReply(r, &budget); err == nil {
		t.Error("read past the end without an error")
	}
}

func TestSplitCommands(t *testing.T) {
	got := splitCommands(`show info;set map x a\;b c;help`)
	want := []string{"show info", `set map x a\;b c`, "help"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("got %q", got)
	}
}

func TestHintsByCause(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"limit", &ConnectError{Endpoint: "unix:/run/haproxy/admin.sock", Cause: CauseConnLimit, Err: syscall.EAGAIN}, "stats maxconn"},
		{"refused via", &ConnectError{Endpoint: "unix:/run/haproxy/admin.sock (via lb1)", Cause: CauseRefused, Err: syscall.ECONNREFUSED}, `ssh lb1 "echo 'show info' | socat stdio unix-connect:/run/haproxy/admin.sock"`},
		{"tcp", &ConnectError{Endpoint: "tcp:10.0.0.5:9999", Cause: CauseTimeout, Err: errors.New("i/o timeout")}, "socat stdio tcp:10.0.0.5:9999"},
		{"tcp limit", &ConnectError{Endpoint: "tcp:10.0.0.5:9999", Cause: CauseConnLimit, Err: syscall.EAGAIN}, "ss -tnp dst 10.0.0.5:9999"},
		{"sshd", &ConnectError{Endpoint: "unix:/s (via lb1)", Cause: CauseSSHRejected, Err: errors.New("ssh: rejected: connect failed (\"open failed\")")}, "AllowStreamLocalForwarding"},
		{"permission", &ConnectError{Endpoint: "unix:/s", Cause: CausePermission, Err: syscall.EACCES}, "`user`/`group`/`mode`"},
		{"level", &LevelError{Endpoint: "unix:/s", Level: "operator"}, "add `level admin`"},
		{"names", fmt.Errorf("check h: %w", &ReplyError{Endpoint: "unix:/s", Command: "get weight web/x", Reply: "No such server."}), "show servers state"},
		{"joined: reachability first", errors.Join(&ReplyError{Endpoint: "unix:/s", Reply: "No such server."}, &ConnectError{Endpoint: "unix:/t", Cause: CauseConnLimit}), "stats maxconn"},
		{"other", errors.New("boom"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := Hint(tt.err)
			if tt.want == "" && h != "" || !strings.Contains(h, tt.want) {
				t.Errorf("Hint = %q, want it to contain %q", h, tt.want)
			}
		})
	}
}

func TestDialCause(t *testing.T) {
	tests := []struct {
		err  error
		want Cause
	}{
		{&net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.EAGAIN)}, CauseConnLimit},
		{&net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, CauseRefused},
		{&net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ENOENT)}, CauseMissing},
		{&net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.EACCES)}, CausePermission},
		{context.DeadlineExceeded, CauseTimeout},
		// through SSH: the channel rejection carries the remote strerror
		{errors.New("ssh lb1: dial unix /run/haproxy/admin.sock: ssh: rejected: connect failed (Resource temporarily unavailable)"), CauseConnLimit},
		{errors.New("ssh lb1: dial unix /x: ssh: rejected: connect failed (Connection refused)"), CauseRefused},
		{errors.New("ssh lb1: dial unix /x: ssh: rejected: connect failed (No such file or directory)"), CauseMissing},
		// OpenSSH's sshd, whatever went wrong with a stream-local channel
		{errors.New("ssh lb1: dial unix /x: ssh: rejected: connect failed (\"open failed\")"), CauseSSHRejected},
		{errors.New("ssh: handshake failed"), CauseOther},
	}
	for _, tt := range tests {
		if got := dialCause(tt.err); got != tt.want {
			t.Errorf("dialCause(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}
