package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/user"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/rollout-sh/rollout/internal/shell"
	"github.com/rollout-sh/rollout/internal/transport"
)

// Client is one SSH connection to one host. Commands run through the host's
// long-lived shell (up to maxShells of them for concurrent callers); a
// Client is safe for concurrent use.
type Client struct {
	name   string
	target Target
	cfg    Config
	conn   *ssh.Client
	jump   *Client // jump client owned by this one (closed with it); nil if none or shared

	done      chan struct{} // closed when the connection has ended
	lostWhy   atomic.Value  // string: why the connection ended, when not by Close
	closing   atomic.Bool
	closeOnce sync.Once
	closeErr  error

	idle      chan *hostShell // shells waiting for a command
	slots     chan struct{}   // one per shell started (at most maxShells)
	nSessions atomic.Int64
	nCommands atomic.Int64
}

// jumpFunc returns a client for a jump host. Dial dials (and owns) it; the
// Pool shares one per jump host.
type jumpFunc func(ctx context.Context, t Target) (c *Client, owned bool, err error)

// Dial connects to t, verifies its host key, authenticates and starts the
// keepalive. The returned Client must be closed.
func Dial(ctx context.Context, t Target, cfg Config) (*Client, error) {
	return dial(ctx, t, cfg, func(ctx context.Context, j Target) (*Client, bool, error) {
		c, err := Dial(ctx, j, cfg)
		return c, true, err
	})
}

func normalizeTarget(t Target) Target {
	if t.Port == 0 {
		t.Port = 22
	}
	if t.User == "" {
		t.User = currentUser()
	}
	if t.Name == "" {
		t.Name = t.Address
	}
	return t
}

func currentUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return os.Getenv("USER")
}

func dial(ctx context.Context, t Target, cfg Config, viaJump jumpFunc) (*Client, error) {
	t = normalizeTarget(t)
	if t.Address == "" {
		return nil, fmt.Errorf("ssh %s: no address to connect to", t.Name)
	}
	addr := net.JoinHostPort(t.Address, strconv.Itoa(t.Port))
	userHost := t.User + "@" + addr

	creds, err := loadCredentials(t, userHost)
	if err != nil {
		return nil, fmt.Errorf("ssh %s: %w", t.Name, err)
	}
	defer creds.close()

	khFile := ""
	if cfg.HostKeyCallback == nil {
		if khFile, err = knownHostsPath(cfg); err != nil {
			return nil, fmt.Errorf("ssh %s: %w", t.Name, err)
		}
	}
	verifier := &hostKeyVerifier{
		hostport:  addr,
		file:      khFile,
		acceptNew: cfg.AcceptNewHostKeys,
		override:  cfg.HostKeyCallback,
	}
	clientConfig := &ssh.ClientConfig{
		User:              t.User,
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(creds.signers...)},
		HostKeyCallback:   verifier.callback,
		HostKeyAlgorithms: verifier.hostKeyAlgorithms(),
		ClientVersion:     "SSH-2.0-rollout",
	}

	timeout := cfg.connectTimeout()
	var (
		conn      net.Conn
		jump      *Client
		ownedJump bool
	)
	if t.Jump != nil {
		jump, ownedJump, err = viaJump(ctx, *t.Jump)
		if err != nil {
			return nil, fmt.Errorf("ssh %s: via jump host: %w", t.Name, err)
		}
		dctx, cancel := context.WithTimeout(ctx, timeout)
		conn, err = jump.conn.DialContext(dctx, "tcp", addr)
		cancel()
		if err != nil {
			if ownedJump {
				jump.Close()
			}
			if ctx.Err() != nil {
				return nil, fmt.Errorf("ssh %s: %w", t.Name, ctx.Err())
			}
			return nil, fmt.Errorf("ssh %s: connect to %s through %s: %w", t.Name, addr, jump.name, err)
		}
	} else {
		d := net.Dialer{Timeout: timeout}
		conn, err = d.DialContext(ctx, "tcp", addr)
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("ssh %s: %w", t.Name, ctx.Err())
			}
			return nil, fmt.Errorf("ssh %s: connect to %s: %w", t.Name, addr, err)
		}
	}
	closeAll := func() {
		conn.Close()
		if ownedJump {
			jump.Close()
		}
	}

	// Bound the handshake: a deadline on TCP connections, and a timer and
	// the context closing the connection for any kind (a tunnelled
	// connection through a jump host has no deadlines).
	_ = conn.SetDeadline(time.Now().Add(timeout))
	var timedOut atomic.Bool
	timer := time.AfterFunc(timeout, func() {
		timedOut.Store(true)
		conn.Close()
	})
	stopCtx := context.AfterFunc(ctx, func() { conn.Close() })
	sc, chans, reqs, err := ssh.NewClientConn(conn, addr, clientConfig)
	timer.Stop()
	stopCtx()
	if err == nil && ctx.Err() != nil {
		sc.Close()
		err = ctx.Err()
	}
	if err != nil {
		closeAll()
		return nil, handshakeError(ctx, t, userHost, err, timedOut.Load(), timeout, verifier, creds)
	}
	_ = conn.SetDeadline(time.Time{})

	c := &Client{
		name:   t.Name,
		target: t,
		cfg:    cfg,
		conn:   ssh.NewClient(sc, chans, reqs),
		done:   make(chan struct{}),
		idle:   make(chan *hostShell, maxShells),
		slots:  make(chan struct{}, maxShells),
	}
	if ownedJump {
		c.jump = jump
	}
	go func() {
		err := c.conn.Wait()
		if !c.closing.Load() {
			why := "connection closed by the remote host"
			if err != nil {
				why = err.Error()
			}
			c.lostWhy.CompareAndSwap(nil, why)
		}
		close(c.done)
	}()
	go c.keepalive(cfg.keepaliveInterval(), cfg.keepaliveCountMax())
	return c, nil
}

func handshakeError(ctx context.Context, t Target, userHost string, err error, timedOut bool, timeout time.Duration, v *hostKeyVerifier, creds *credentials) error {
	switch {
	case v.refused != nil:
		return fmt.Errorf("ssh %s: %w", t.Name, v.refused)
	case ctx.Err() != nil:
		return fmt.Errorf("ssh %s: %w", t.Name, ctx.Err())
	case timedOut || errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Errorf("ssh %s: handshake with %s: no answer within %s: %w", t.Name, userHost, timeout, os.ErrDeadlineExceeded)
	}
	msg := err.Error()
	if strings.Contains(msg, "unable to authenticate") || strings.Contains(msg, "too many authentication failures") {
		return fmt.Errorf("ssh %s: %w: %s accepted none of the offered keys (tried: %s)", t.Name, ErrAuth, userHost, creds.tried())
	}
	return fmt.Errorf("ssh %s: handshake with %s: %w", t.Name, userHost, err)
}

// keepalive sends keepalive@openssh.com every interval and closes the
// connection when maxMissed requests in a row went unanswered.
func (c *Client) keepalive(every time.Duration, maxMissed int) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	var pending atomic.Int32
	for {
		select {
		case <-c.done:
			return
		case <-tick.C:
		}
		if pending.Load() >= int32(maxMissed) {
			c.lostWhy.CompareAndSwap(nil, fmt.Sprintf("no reply to %d keepalives sent %s apart", maxMissed, every))
			c.conn.Close()
			return
		}
		pending.Add(1)
		go func() {
			// Any reply, even a refusal, proves the peer is alive.
			if _, _, err := c.conn.SendRequest("keepalive@openssh.com", true, nil); err == nil {
				pending.Store(0)
			}
		}()
	}
}

// Name returns the inventory name of the host.
func (c *Client) Name() string { return c.name }

// Close closes the connection (and a jump connection this client opened).
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.closing.Store(true)
		err := c.conn.Close()
		if errors.Is(err, net.ErrClosed) {
			err = nil
		}
		if c.jump != nil {
			if jerr := c.jump.Close(); jerr != nil {
				err = errors.Join(err, jerr)
			}
		}
		if err != nil {
			c.closeErr = fmt.Errorf("ssh %s: close: %w", c.name, err)
		}
	})
	return c.closeErr
}

// alive reports whether the connection is still up.
func (c *Client) alive() bool {
	select {
	case <-c.done:
		return false
	default:
		return true
	}
}

// lostError describes a connection that ended underneath an operation.
func (c *Client) lostError(what string, err error) error {
	select {
	case <-c.done:
	case <-time.After(100 * time.Millisecond):
		// the connection may still be closing; report what we know
	}
	if c.closing.Load() {
		return fmt.Errorf("ssh %s: %s: client closed: %w: %w", c.name, what, transport.ErrLost, net.ErrClosed)
	}
	if why, ok := c.lostWhy.Load().(string); ok {
		return fmt.Errorf("ssh %s: %s: %w (%s): %w", c.name, what, transport.ErrLost, why, err)
	}
	if errors.Is(err, transport.ErrLost) {
		return fmt.Errorf("ssh %s: %s: %w", c.name, what, err)
	}
	return fmt.Errorf("ssh %s: %s: %w: %w", c.name, what, transport.ErrLost, err)
}

// wrap applies become.
func (c *Client) wrap(cmd string) string {
	if !c.cfg.Become {
		return cmd
	}
	return shell.Sudo(c.cfg.BecomeUser) + shell.Quote(cmd)
}

// Run runs cmd on the host through the host's long-lived shell (see
// session.go), feeding it stdin (may be nil) and its output to stdout and
// stderr (either may be nil). A non-zero exit is an *ExitError. When ctx
// ends first, the command and everything it started are killed (TERM, then
// KILL) and the error wraps ctx.Err(); nothing is written to stdout or
// stderr after Run returns. A connection or shell that ends underneath the
// command is an error wrapping transport.ErrLost. Stdin larger than 1 MiB
// is streamed through a session of its own.
func (c *Client) Run(ctx context.Context, cmd string, stdin io.Reader, stdout, stderr io.Writer) error {
	return c.shellRun(ctx, cmd, cmd, stdin, stdout, stderr)
}

// shellRun is Run with display naming the command in errors.
func (c *Client) shellRun(ctx context.Context, display, cmd string, stdin io.Reader, stdout, stderr io.Writer) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: command %s not started: %w", c.name, abbreviate(display, 160), err)
	}
	var in []byte
	if stdin != nil {
		b, err := io.ReadAll(io.LimitReader(stdin, maxInlineStdin+1))
		if err != nil {
			return fmt.Errorf("%s: command %s: reading its input: %w", c.name, abbreviate(display, 160), err)
		}
		if len(b) > maxInlineStdin {
			return c.run(ctx, display, c.wrap(cmd), io.MultiReader(bytes.NewReader(b), stdin), stdout, stderr)
		}
		in = b
	}
	sh, err := c.acquireShell(ctx, display)
	if err != nil {
		return err
	}
	defer c.releaseShell(sh)
	return sh.run(ctx, display, cmd, in, stdin != nil, stdout, stderr)
}

// Output runs cmd and returns its standard output. Standard error ends up in
// the *ExitError when the command fails.
func (c *Client) Output(ctx context.Context, cmd string) ([]byte, error) {
	var out bytes.Buffer
	err := c.Run(ctx, cmd, nil, &out, nil)
	return out.Bytes(), err
}

func (c *Client) run(ctx context.Context, display, wire string, stdin io.Reader, stdout, stderr io.Writer) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: command %s not started: %w", c.name, abbreviate(display, 160), err)
	}
	sess, err := c.conn.NewSession()
	if err != nil {
		return c.lostError("open session", err)
	}
	c.nSessions.Add(1)
	defer sess.Close()

	tail := &tailBuffer{max: 8 << 10}
	var errw io.Writer = tail
	if stderr != nil {
		errw = io.MultiWriter(tail, stderr)
	}
	g := &gate{}
	sess.Stdout = g.writer(stdout)
	sess.Stderr = g.writer(errw)
	sess.Stdin = stdin
	if err := sess.Start(wire); err != nil {
		return c.lostError(fmt.Sprintf("start %s", abbreviate(display, 160)), err)
	}
	waited := make(chan error, 1)
	go func() { waited <- sess.Wait() }()

	select {
	case err := <-waited:
		g.shut()
		return c.exitError(display, err, tail.String())
	case <-ctx.Done():
		_ = sess.Signal(ssh.SIGTERM)
		g.shut()
		sess.Close()
		return fmt.Errorf("%s: command %s interrupted: %w", c.name, abbreviate(display, 160), ctx.Err())
	}
}

func (c *Client) exitError(display string, err error, stderr string) error {
	if err == nil {
		return nil
	}
	var ee *ssh.ExitError
	if errors.As(err, &ee) {
		return c.failed(&ExitError{Host: c.name, Cmd: display, Status: ee.ExitStatus(), Signal: ee.Signal(), Stderr: stderr})
	}
	return c.lostError(fmt.Sprintf("run %s", abbreviate(display, 160)), err)
}

// failed returns x, explained when it is sudo asking for a password.
func (c *Client) failed(x *ExitError) error {
	if c.cfg.Become && strings.Contains(x.Stderr, "a password is required") {
		return fmt.Errorf("%s: %w: sudo -n would prompt; give %s passwordless sudo (NOPASSWD in sudoers) or connect as root: %w",
			c.name, ErrSudoPassword, c.target.User, x)
	}
	return x
}

// gate passes writes through until shut, and drops them afterwards, so a
// session abandoned on cancellation cannot write into the caller's buffers.
type gate struct {
	mu     sync.Mutex
	closed bool
}

type gatedWriter struct {
	g *gate
	w io.Writer
}

func (g *gate) writer(w io.Writer) io.Writer {
	if w == nil {
		w = io.Discard
	}
	return &gatedWriter{g: g, w: w}
}

func (g *gate) shut() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}

func (gw *gatedWriter) Write(p []byte) (int, error) {
	gw.g.mu.Lock()
	defer gw.g.mu.Unlock()
	if gw.g.closed {
		return len(p), nil
	}
	return gw.w.Write(p)
}

// Dial opens a connection from the host to addr: network "tcp" uses
// direct-tcpip, "unix" uses direct-streamlocal@openssh.com.
func (c *Client) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	switch network {
	case "tcp", "tcp4", "tcp6", "unix":
	default:
		return nil, fmt.Errorf("ssh %s: dial %s %s: unsupported network", c.name, network, addr)
	}
	conn, err := c.conn.DialContext(ctx, network, addr)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("ssh %s: dial %s %s: %w", c.name, network, addr, ctx.Err())
		}
		if !c.alive() {
			return nil, c.lostError(fmt.Sprintf("dial %s %s", network, addr), err)
		}
		return nil, fmt.Errorf("ssh %s: dial %s %s: %w", c.name, network, addr, err)
	}
	return conn, nil
}
