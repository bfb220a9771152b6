package drain

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// defaultTimeout bounds one runtime API command when ctx has no deadline.
const defaultTimeout = 10 * time.Second

// maxReply bounds what one command line may answer (a show stat of a huge
// config is well below this).
const maxReply = 16 << 20

// maxLine bounds one line of ';'-separated commands sent together: HAProxy
// reads a CLI line into one buffer (tune.bufsize, 16 kB by default).
const maxLine = 4096

// RuntimeAPI is a client of one HAProxy runtime API socket ("stats socket
// ... level admin"). It speaks the CLI's interactive mode ("prompt", with
// "set severity-output number"), so every command's reply is framed on its
// own and several commands travel on one line separated by ';'.
//
// It never holds more than Options.MaxConns connections (HAProxy's stats
// socket accepts 10 at a time by default, "stats maxconn"): callers queue,
// and whoever gets a connection sends every queued command on one line.
// Concurrent Stat calls for one backend share one "show stat" read. A dial
// refused because the socket is full (EAGAIN) or has no listener
// (ECONNREFUSED) is retried with backoff until the caller's deadline.
type RuntimeAPI struct {
	endpoint string // as written: unix:/path or tcp:host:port
	network  string
	addr     string
	dial     Dialer
	opt      Options

	mu      sync.Mutex
	queue   []*call
	workers int
	idle    []*cliConn
	open    int
	closed  bool
	gen     uint64 // bumped when a state change is queued and when it is answered
	snaps   map[string]*snapshot
	use     Usage
	dialErr *ConnectError // the last failed connect attempt, until one succeeds

	// following the serving process (Options.Track, process.go)
	checking   chan struct{} // one process check at a time
	stateMu    sync.RWMutex  // shared by state changes, exclusive for a re-apply
	proc       Process       // the process last seen serving
	procGen    uint64        // bumped when the serving process changed
	checked    time.Time     // when the last successful check started
	checkConn  *cliConn      // the last check's connection, kept for the next
	wanted     map[string]*wanted
	reapplyErr map[string]error
	watching   bool
	reloads    int
}

// Options tune a RuntimeAPI. The zero value is a one-off client: at most
// one connection, closed after each line, every Stat reads afresh unless a
// read for the same backend is already under way.
type Options struct {
	// MaxConns bounds the connections open at once (default 1).
	MaxConns int
	// Keep keeps connections open between lines, closing one that has been
	// idle for IdleClose (default 5s; HAProxy's own "stats timeout" is 10s
	// by default). Call Close when done.
	Keep      bool
	IdleClose time.Duration
	// StatMaxAge lets Stat answer from a "show stat" reply this young, as
	// long as no state change was sent through this client since.
	StatMaxAge time.Duration
	// Via names the inventory host the endpoint is reached through, for
	// messages.
	Via string
	// Track follows the process that serves the socket across HAProxy
	// reloads and restarts (see process.go): checked before a state change
	// or "show stat" read when the last check is older than CheckEvery,
	// and every Watch while a server is out of service; OnReload hears of
	// every change, after the states were re-applied.
	Track      bool
	CheckEvery time.Duration
	Watch      time.Duration
	OnReload   func(Reload)
}

// RunOptions are the options of the one client per endpoint that a whole
// run shares: 3 connections at most (HAProxy accepts 10 by default, leaving
// room for operators and monitoring), kept open, and one "show stat" read
// per 100ms for every host polling its sessions or status.
// It follows the serving process across reloads, checking it at most every
// 100ms before a command and every 200ms while a host is out of service.
var RunOptions = Options{MaxConns: 3, Keep: true, IdleClose: 5 * time.Second, StatMaxAge: 100 * time.Millisecond,
	Track: true, CheckEvery: 100 * time.Millisecond, Watch: 200 * time.Millisecond}

// Usage counts what a RuntimeAPI did, for tests and benchmarks.
type Usage struct {
	Dials     int // connections opened (retries not counted)
	Attempts  int // connect attempts, retries included
	Lines     int // command lines sent
	Commands  int // commands sent (not counting the prompt preamble)
	StatReads int // "show stat" commands sent
	PeakConns int // most connections open at once
	Checks    int // connections opened to check which process serves (in Dials too)
}

// NewRuntimeAPI parses endpoint ("unix:/run/haproxy/admin.sock" or
// "tcp:HOST:PORT") and returns a one-off client. dial nil means the local
// machine.
func NewRuntimeAPI(endpoint string, dial Dialer) (*RuntimeAPI, error) {
	return NewRuntimeAPIOptions(endpoint, dial, Options{})
}

// NewRuntimeAPIOptions is NewRuntimeAPI with options (see RunOptions).
func NewRuntimeAPIOptions(endpoint string, dial Dialer, opt Options) (*RuntimeAPI, error) {
	network, addr, ok := strings.Cut(endpoint, ":")
	switch {
	case !ok || addr == "":
		return nil, fmt.Errorf("haproxy endpoint %q: want unix:/path/to/admin.sock or tcp:HOST:PORT", endpoint)
	case network == "unix":
		if !strings.HasPrefix(addr, "/") {
			return nil, fmt.Errorf("haproxy endpoint %q: the socket path must be absolute", endpoint)
		}
	case network == "tcp":
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("haproxy endpoint %q: %w", endpoint, err)
		}
		if p, err := strconv.Atoi(port); host == "" || err != nil || p < 1 || p > 65535 {
			return nil, fmt.Errorf("haproxy endpoint %q: want tcp:HOST:PORT", endpoint)
		}
	default:
		return nil, fmt.Errorf("haproxy endpoint %q: unknown kind %q, want unix:PATH or tcp:HOST:PORT", endpoint, network)
	}
	if dial == nil {
		dial = LocalDialer()
	}
	if opt.MaxConns < 1 {
		opt.MaxConns = 1
	}
	if opt.IdleClose <= 0 {
		opt.IdleClose = 5 * time.Second
	}
	return &RuntimeAPI{endpoint: endpoint, network: network, addr: addr, dial: dial, opt: opt, snaps: map[string]*snapshot{},
		checking: make(chan struct{}, 1), wanted: map[string]*wanted{}, reapplyErr: map[string]error{}}, nil
}

// Endpoint returns the endpoint as it was given.
func (a *RuntimeAPI) Endpoint() string { return a.endpoint }

// where names the endpoint in messages: "unix:/x" or "unix:/x (via lb1)".
func (a *RuntimeAPI) where() string {
	if a.opt.Via != "" {
		return a.endpoint + " (via " + a.opt.Via + ")"
	}
	return a.endpoint
}

// Usage returns the counters so far.
func (a *RuntimeAPI) Usage() Usage {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.use
}

// Close closes the idle connections; lines in flight finish and close
// theirs. The client stays usable, one connection per line.
func (a *RuntimeAPI) Close() error {
	a.mu.Lock()
	a.closed = true
	idle := a.idle
	a.idle = nil
	a.open -= len(idle)
	if a.checkConn != nil {
		idle = append(idle, a.checkConn)
		a.checkConn = nil
		a.open--
	}
	a.mu.Unlock()
	for _, c := range idle {
		if c.timer != nil {
			c.timer.Stop()
		}
		c.conn.Close()
	}
	return nil
}

// Exec sends one command line (commands separated by ';') and returns the
// replies, one after the other, without HAProxy's severity prefixes. It
// does not judge them: see SetState and Stat for that.
func (a *RuntimeAPI) Exec(ctx context.Context, line string) (string, error) {
	if strings.ContainsAny(line, "\r\n") {
		return "", fmt.Errorf("haproxy %s: command %q spans lines", a.where(), line)
	}
	replies, err := a.do(ctx, splitCommands(line)...)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, r := range replies {
		b.WriteString(r.text)
	}
	return b.String(), nil
}

// splitCommands splits a CLI line where HAProxy does: on ';' not escaped
// by a backslash.
func splitCommands(line string) []string {
	var out []string
	start := 0
	for i := 0; i < len(line); i++ {
		switch line[i] {
		case '\\':
			i++
		case ';':
			out = append(out, line[start:i])
			start = i + 1
		}
	}
	return append(out, line[start:])
}

// cliReply is one command's answer: its text (without the trailing empty
// line) and the severity HAProxy tagged it with (0: none).
type cliReply struct {
	text     string
	severity int
}

// call is one caller's commands, waiting in the queue or in flight.
type call struct {
	ctx     context.Context
	cmds    []string
	writes  bool
	taken   bool
	replies []cliReply
	err     error
	done    chan struct{}
}

func (c *call) finish(replies []cliReply, err error) {
	c.replies, c.err = replies, err
	close(c.done)
}

// readOnly: a command that changes nothing (snapshots stay valid).
func readOnly(cmd string) bool {
	return strings.HasPrefix(cmd, "show ") || strings.HasPrefix(cmd, "get ") || cmd == "help"
}

// do sends cmds on one line, possibly together with other callers'
// commands, and returns their replies in order.
func (a *RuntimeAPI) do(ctx context.Context, cmds ...string) ([]cliReply, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultTimeout)
		defer cancel()
	}
	c := &call{ctx: ctx, cmds: cmds, done: make(chan struct{})}
	for _, cmd := range cmds {
		if !readOnly(cmd) {
			c.writes = true
		}
	}
	a.mu.Lock()
	if c.writes {
		a.gen++
	}
	a.queue = append(a.queue, c)
	if a.workers < a.dataConns() {
		a.workers++
		go a.work()
	}
	a.mu.Unlock()
	select {
	case <-c.done:
		return c.replies, c.err
	case <-ctx.Done():
		a.mu.Lock()
		taken := c.taken
		a.mu.Unlock()
		if taken {
			// in flight, with a deadline no earlier than ours: its own
			// error says more than "deadline exceeded" (no answer, say)
			t := time.NewTimer(50 * time.Millisecond)
			defer t.Stop()
			select {
			case <-c.done:
				return c.replies, c.err
			case <-t.C:
			}
		}
		a.mu.Lock()
		if !c.taken {
			for i, q := range a.queue {
				if q == c {
					a.queue = append(a.queue[:i], a.queue[i+1:]...)
					break
				}
			}
		}
		dialErr := a.dialErr
		a.mu.Unlock()
		if dialErr != nil {
			// still trying to get through: say why rather than just "deadline exceeded"
			return nil, dialErr
		}
		return nil, fmt.Errorf("haproxy %s: %s: %w", a.where(), strings.Join(cmds, ";"), ctx.Err())
	}
}

// work sends queued calls, a line at a time, until the queue is empty.
func (a *RuntimeAPI) work() {
	for {
		a.mu.Lock()
		var batch []*call
		size := 0
		for len(a.queue) > 0 {
			c := a.queue[0]
			n := len(strings.Join(c.cmds, ";")) + 1
			if len(batch) > 0 && size+n > maxLine {
				break
			}
			a.queue = a.queue[1:]
			if c.ctx.Err() != nil {
				continue // its caller is gone and got ctx.Err()
			}
			c.taken = true
			batch = append(batch, c)
			size += n
		}
		if len(batch) == 0 {
			a.workers--
			a.mu.Unlock()
			return
		}
		a.mu.Unlock()
		a.send(batch)
	}
}

// send runs one batch of calls on one line, bounded by the latest of their
// deadlines (a caller that gives up earlier has already returned).
func (a *RuntimeAPI) send(batch []*call) {
	var deadline time.Time
	var cmds []string
	writes := false
	for _, c := range batch {
		if dl, _ := c.ctx.Deadline(); dl.After(deadline) {
			deadline = dl
		}
		cmds = append(cmds, c.cmds...)
		writes = writes || c.writes
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	replies, err := a.roundTrip(ctx, cmds)
	if writes {
		a.mu.Lock()
		a.gen++
		a.mu.Unlock()
	}
	for _, c := range batch {
		if err != nil {
			c.finish(nil, err)
			continue
		}
		c.finish(replies[:len(c.cmds)], nil)
		replies = replies[len(c.cmds):]
	}
}

// roundTrip sends cmds on one line and reads their replies. A kept
// connection that HAProxy closed while idle ("stats timeout") is replaced
// once; every command rollout sends is idempotent.
func (a *RuntimeAPI) roundTrip(ctx context.Context, cmds []string) ([]cliReply, error) {
	line := strings.Join(cmds, ";")
	for attempt := 0; ; attempt++ {
		cc, reused, err := a.conn(ctx)
		if err != nil {
			return nil, err
		}
		fresh := cc.fresh
		replies, err := cc.exchange(ctx, cmds)
		if err != nil && fresh && cc.read == 0 && (ctx.Err() != nil || isTimeout(err)) {
			err = &ConnectError{Endpoint: a.where(), Cause: CauseNoAnswer, Attempts: 1, Err: ctx.Err()}
		}
		a.mu.Lock()
		a.use.Lines++
		a.use.Commands += len(cmds)
		for _, c := range cmds {
			if strings.HasPrefix(c, "show stat ") {
				a.use.StatReads++
			}
		}
		a.mu.Unlock()
		if err == nil {
			a.release(cc)
			return replies, nil
		}
		cc.conn.Close()
		a.mu.Lock()
		a.open--
		a.mu.Unlock()
		if reused && attempt == 0 && ctx.Err() == nil {
			continue
		}
		var ce *ConnectError
		if errors.As(err, &ce) {
			return nil, err
		}
		return nil, fmt.Errorf("haproxy %s: %s: %w", a.where(), line, ctxErr(ctx, err))
	}
}

func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// conn returns an idle connection (reused) or a new one.
func (a *RuntimeAPI) conn(ctx context.Context) (*cliConn, bool, error) {
	a.mu.Lock()
	if n := len(a.idle); n > 0 {
		cc := a.idle[n-1]
		a.idle = a.idle[:n-1]
		cc.timer.Stop()
		a.mu.Unlock()
		return cc, true, nil
	}
	a.mu.Unlock()
	cc, err := a.dialNew(ctx, false)
	return cc, false, err
}

// dialNew opens a new connection, counted in Usage (and as a check of the
// serving process when check is set).
func (a *RuntimeAPI) dialNew(ctx context.Context, check bool) (*cliConn, error) {
	a.mu.Lock()
	a.open++
	a.use.Dials++
	if check {
		a.use.Checks++
	}
	a.use.PeakConns = max(a.use.PeakConns, a.open)
	gen := a.procGen
	a.mu.Unlock()
	c, err := a.connect(ctx)
	if err != nil {
		a.mu.Lock()
		a.open--
		a.mu.Unlock()
		return nil, err
	}
	cc := &cliConn{conn: c, fresh: true, procGen: gen}
	cc.r = newCountingReader(cc)
	return cc, nil
}

func newCountingReader(cc *cliConn) *bufio.Reader {
	return bufio.NewReader(readCounter{cc.conn, &cc.read})
}

// release keeps cc for the next line, or closes it (also when it was opened
// before the serving process changed).
func (a *RuntimeAPI) release(cc *cliConn) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.opt.Keep || a.closed || cc.procGen != a.procGen {
		cc.conn.Close()
		a.open--
		return
	}
	a.idle = append(a.idle, cc)
	cc.timer = time.AfterFunc(a.opt.IdleClose, func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		for i, c := range a.idle {
			if c == cc {
				a.idle = append(a.idle[:i], a.idle[i+1:]...)
				a.open--
				cc.conn.Close()
				return
			}
		}
	})
}

// Backoff between connect attempts, and how long a socket without a
// listener (ECONNREFUSED: HAProxy restarting), or one the via host's sshd
// could not open (it does not say why; the socket may be full), is retried
// at most.
const (
	firstBackoff  = 5 * time.Millisecond
	maxBackoff    = 250 * time.Millisecond
	refusedBudget = 5 * time.Second
)

// connect dials, retrying a full socket (EAGAIN) until ctx's deadline, and
// a socket without a listener (ECONNREFUSED) or an sshd refusal for
// refusedBudget.
func (a *RuntimeAPI) connect(ctx context.Context) (net.Conn, error) {
	start := time.Now()
	wait := firstBackoff
	var last *ConnectError
	for attempt := 1; ; attempt++ {
		a.mu.Lock()
		a.use.Attempts++
		a.mu.Unlock()
		c, err := a.dial(ctx, a.network, a.addr)
		if err == nil {
			a.mu.Lock()
			a.dialErr = nil
			a.mu.Unlock()
			return c, nil
		}
		cause := dialCause(err)
		// the dial's own deadline (ctx's) can fire a moment before ctx
		// reports it: that is the deadline too
		dl, hasDL := ctx.Deadline()
		expired := ctx.Err() != nil || hasDL && !time.Now().Before(dl)
		if expired && last != nil {
			// the deadline cut this attempt short: what kept us out is the
			// error before it (a full socket, say), not the timeout
			cause, err = last.Cause, last.Err
		}
		ce := &ConnectError{Endpoint: a.where(), Cause: cause, Attempts: attempt, Since: time.Since(start), Err: err}
		last = ce
		a.mu.Lock()
		a.dialErr = ce
		a.mu.Unlock()
		retry := cause == CauseConnLimit || (cause == CauseRefused || cause == CauseSSHRejected) && time.Since(start) < refusedBudget
		if retry && ctx.Err() == nil {
			// full jitter keeps many waiting clients from dialing in step
			d := wait/2 + rand.N(wait/2+1)
			wait = min(2*wait, maxBackoff)
			t := time.NewTimer(d)
			select {
			case <-t.C:
				continue
			case <-ctx.Done():
				t.Stop()
			}
		}
		return nil, ce
	}
}

// cliConn is one connection in interactive ("prompt") mode.
type cliConn struct {
	conn  net.Conn
	r     *bufio.Reader
	read  int64 // bytes received so far
	fresh bool  // the prompt preamble has not been sent yet
	timer *time.Timer
	// procGen is the client's procGen when it was opened: one opened
	// before a reload was seen is closed instead of kept
	procGen uint64
}

func isTimeout(err error) bool {
	var ne interface{ Timeout() bool }
	return errors.As(err, &ne) && ne.Timeout()
}

// readCounter counts the bytes a connection delivered.
type readCounter struct {
	r io.Reader
	n *int64
}

func (c readCounter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	*c.n += int64(n)
	return n, err
}

// preamble turns on interactive mode (every reply ends with an empty line
// and a "> " prompt, and the connection stays open) and severity prefixes
// ("[3]: No such server."). HAProxy versions without severity-output
// answer "Unknown command", which is ignored.
var preamble = []string{"prompt", "set severity-output number"}

func (cc *cliConn) exchange(ctx context.Context, cmds []string) ([]cliReply, error) {
	if dl, ok := ctx.Deadline(); ok {
		_ = cc.conn.SetDeadline(dl) // a Dialer through SSH may not support deadlines
	}
	stop := context.AfterFunc(ctx, func() { cc.conn.Close() })
	defer stop()
	all := cmds
	if cc.fresh {
		all = append(append([]string(nil), preamble...), cmds...)
	}
	if _, err := io.WriteString(cc.conn, strings.Join(all, ";")+"\n"); err != nil {
		return nil, err
	}
	budget := maxReply
	replies := make([]cliReply, 0, len(all))
	for range all {
		r, err := readReply(cc.r, &budget)
		if err != nil {
			return nil, err
		}
		replies = append(replies, r)
	}
	cc.fresh = false
	return replies[len(all)-len(cmds):], nil
}

// readReply reads one interactive-mode reply: lines up to an empty line
// followed by the "> " prompt. An empty line not followed by the prompt is
// part of the reply.
func readReply(r *bufio.Reader, budget *int) (cliReply, error) {
	var b strings.Builder
	for {
		line, err := r.ReadString('\n')
		*budget -= len(line)
		if *budget < 0 {
			return cliReply{}, fmt.Errorf("reply longer than %d bytes", maxReply)
		}
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return cliReply{}, err
		}
		if line == "\n" {
			p, err := r.Peek(2)
			if err == nil && string(p) == "> " {
				_, _ = r.Discard(2)
				return parseSeverity(b.String()), nil
			}
			if err != nil && len(p) == 0 {
				return cliReply{}, fmt.Errorf("no prompt after a reply: %w", err)
			}
		}
		b.WriteString(line)
	}
}

// parseSeverity strips "[N]: " from the start of a reply.
func parseSeverity(text string) cliReply {
	if len(text) >= 5 && text[0] == '[' && text[2] == ']' && text[3] == ':' && text[4] == ' ' && text[1] >= '0' && text[1] <= '9' {
		return cliReply{text: text[5:], severity: int(text[1] - '0')}
	}
	return cliReply{text: text}
}

// ReplyError is a runtime API command that HAProxy refused.
type ReplyError struct {
	Endpoint string
	Command  string
	Reply    string // trimmed, e.g. "No such server."
}

func (e *ReplyError) Error() string {
	return fmt.Sprintf("haproxy %s: %s: %s", e.Endpoint, e.Command, e.Reply)
}

// Stat is one row of "show stat": a server (or the BACKEND aggregate).
type Stat struct {
	Proxy  string // pxname
	Server string // svname
	Status string // UP, UP 1/3, DOWN, DOWN 1/2, NOLB, DRAIN, MAINT, MAINT (via ...), no check
	Scur   int    // current sessions
	Qcur   int    // queued requests
	Weight int    // current effective weight
	Fields map[string]string
}

// Stat returns the server rows of backend ("show stat BACKEND 4 -1"),
// reading columns by their header names (Fields has every column). Callers
// asking at the same time share one read, and with Options.StatMaxAge a
// read that young is reused, unless a state change went through this
// client since it started. The rows are shared: do not modify them.
func (a *RuntimeAPI) Stat(ctx context.Context, backend string) ([]Stat, error) {
	if err := checkName("backend", backend); err != nil {
		return nil, fmt.Errorf("haproxy %s: %w", a.where(), err)
	}
	if err := a.Verify(ctx, a.opt.CheckEvery); err != nil {
		return nil, err
	}
	for joined := 0; ; joined++ {
		a.mu.Lock()
		s := a.snaps[backend]
		usable := s != nil && s.gen == a.gen
		if usable {
			select {
			case <-s.done:
				usable = s.err == nil && time.Since(s.start) <= a.opt.StatMaxAge
			default: // a read under way
			}
		}
		if !usable || joined > 0 {
			s = &snapshot{gen: a.gen, start: time.Now(), done: make(chan struct{})}
			a.snaps[backend] = s
			a.mu.Unlock()
			s.rows, s.err = a.readStat(ctx, backend)
			close(s.done)
			return s.rows, s.err
		}
		a.mu.Unlock()
		select {
		case <-s.done:
		case <-ctx.Done():
			return nil, fmt.Errorf("haproxy %s: show stat %s 4 -1: %w", a.where(), backend, ctx.Err())
		}
		if s.err == nil {
			return s.rows, nil
		}
		// the read we joined failed (perhaps its caller's deadline was
		// shorter than ours): read once ourselves
	}
}

// snapshot is one "show stat" read of a backend, shared by the callers
// that asked for it while it was under way or fresh.
type snapshot struct {
	gen   uint64 // the client's state-change generation when it started
	start time.Time
	done  chan struct{}
	rows  []Stat
	err   error
}

func (a *RuntimeAPI) readStat(ctx context.Context, backend string) ([]Stat, error) {
	cmd := "show stat " + backend + " 4 -1"
	replies, err := a.do(ctx, cmd)
	if err != nil {
		return nil, err
	}
	rows, err := parseStat(replies[0].text)
	if err != nil {
		var re *ReplyError
		if errors.As(err, &re) {
			re.Endpoint, re.Command = a.where(), cmd
			return nil, re
		}
		return nil, fmt.Errorf("haproxy %s: %s: %w", a.where(), cmd, err)
	}
	out := rows[:0]
	for _, r := range rows {
		if r.Proxy == backend && r.Server != "BACKEND" && r.Server != "FRONTEND" {
			out = append(out, r)
		}
	}
	return out, nil
}

// parseStat parses a "show stat" CSV reply. Anything that does not start
// with the "# pxname," header is HAProxy refusing the command; it comes back
// as a *ReplyError without endpoint and command.
func parseStat(reply string) ([]Stat, error) {
	body := strings.TrimLeft(reply, "\r\n")
	if !strings.HasPrefix(body, "# ") {
		msg := strings.TrimSpace(reply)
		if msg == "" {
			msg = "empty reply"
		}
		return nil, &ReplyError{Reply: oneLine(msg)}
	}
	r := csv.NewReader(strings.NewReader(strings.TrimPrefix(body, "# ")))
	r.FieldsPerRecord = -1
	r.ReuseRecord = false
	header, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("stat header: %w", err)
	}
	col := make(map[string]int, len(header))
	for i, name := range header {
		name = strings.TrimSpace(name)
		if name != "" {
			col[name] = i
		}
	}
	for _, need := range []string{"pxname", "svname", "status"} {
		if _, ok := col[need]; !ok {
			return nil, fmt.Errorf("stat header has no %q column", need)
		}
	}
	var rows []Stat
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("stat csv: %w", err)
		}
		fields := make(map[string]string, len(col))
		for name, i := range col {
			if i < len(rec) {
				fields[name] = rec[i]
			}
		}
		s := Stat{Proxy: fields["pxname"], Server: fields["svname"], Status: fields["status"], Fields: fields}
		for _, n := range []struct {
			name string
			dst  *int
		}{{"scur", &s.Scur}, {"qcur", &s.Qcur}, {"weight", &s.Weight}} {
			v := fields[n.name]
			if v == "" {
				continue
			}
			x, err := strconv.Atoi(v)
			if err != nil {
				return nil, fmt.Errorf("stat %s/%s: column %s: %q is not a number", s.Proxy, s.Server, n.name, v)
			}
			*n.dst = x
		}
		rows = append(rows, s)
	}
	return rows, nil
}

// SetState sets a server's admin state: "ready", "drain" or "maint".
func (a *RuntimeAPI) SetState(ctx context.Context, backend, server, state string) error {
	return a.setState(ctx, "", backend, server, state)
}

func (a *RuntimeAPI) setState(ctx context.Context, host, backend, server, state string) error {
	switch state {
	case "ready", "drain", "maint":
	default:
		return fmt.Errorf("haproxy %s: server state %q: want ready, drain or maint", a.where(), state)
	}
	return a.set(ctx, host, backend, server, "state "+state, state, -1)
}

// SetWeight sets a server's weight to pct percent of its configured weight.
// With HAProxy's default weight 1 anything below 100% rounds to 0: configure
// "weight 100" on servers that ramp.
func (a *RuntimeAPI) SetWeight(ctx context.Context, backend, server string, pct int) error {
	return a.setWeight(ctx, "", backend, server, pct)
}

func (a *RuntimeAPI) setWeight(ctx context.Context, host, backend, server string, pct int) error {
	if pct < 0 || pct > 100 {
		return fmt.Errorf("haproxy %s: weight %d%%: want 0..100", a.where(), pct)
	}
	return a.set(ctx, host, backend, server, "weight "+strconv.Itoa(pct)+"%", "", pct)
}

// set runs "set server B/S ARGS"; success is an empty reply. With
// Options.Track it first checks which process serves, remembers what
// HAProxy accepted (to re-apply it after a reload), and a reply from a
// process that a reload stopped ("Proxy is disabled.") makes it check
// again and send the command once more, to the process that serves.
func (a *RuntimeAPI) set(ctx context.Context, host, backend, server, args, state string, weight int) error {
	if err := checkName("backend", backend); err != nil {
		return fmt.Errorf("haproxy %s: %w", a.where(), err)
	}
	if err := checkName("server", server); err != nil {
		return fmt.Errorf("haproxy %s: %w", a.where(), err)
	}
	cmd := "set server " + backend + "/" + server + " " + args
	if !a.opt.Track {
		return a.expectEmpty(ctx, cmd)
	}
	for attempt := 0; ; attempt++ {
		maxAge := a.opt.CheckEvery
		if attempt > 0 {
			maxAge = 0
		}
		if err := a.verify(ctx, maxAge); err != nil {
			return err
		}
		a.stateMu.RLock()
		err := a.expectEmpty(ctx, cmd)
		if err == nil {
			a.remember(host, backend, server, state, weight)
		}
		a.stateMu.RUnlock()
		if isDisabled(err) && attempt == 0 {
			continue
		}
		return err
	}
}

func (a *RuntimeAPI) expectEmpty(ctx context.Context, cmd string) error {
	replies, err := a.do(ctx, cmd)
	if err != nil {
		return err
	}
	if msg := strings.TrimSpace(replies[0].text); msg != "" {
		return &ReplyError{Endpoint: a.where(), Command: cmd, Reply: oneLine(msg)}
	}
	return nil
}

// oneLine keeps the first line of a long reply ("Unknown command, but maybe
// one of the following..." lists every command).
func oneLine(s string) string {
	first, rest, _ := strings.Cut(s, "\n")
	if rest != "" {
		return strings.TrimSpace(first) + " …"
	}
	return s
}

// checkName refuses names that would change the meaning of a runtime API
// line: HAProxy splits commands on ';' and arguments on blanks, so a server
// name taken from inventory data must not contain them.
func checkName(kind, name string) error {
	if name == "" {
		return fmt.Errorf("empty %s name", kind)
	}
	for _, r := range name {
		if r <= ' ' || r == 0x7f || r == ';' || r == '\\' || r == '/' || r == '#' {
			return fmt.Errorf("%s name %q: HAProxy names cannot contain %q", kind, name, r)
		}
	}
	return nil
}
