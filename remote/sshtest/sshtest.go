// Package sshtest runs an in-process SSH server for tests: a pinned host
// key, public-key authentication for a generated client key, "exec" requests
// run as `sh -c CMD` on this machine, signals forwarded to the command's
// process group, and direct-tcpip / direct-streamlocal@openssh.com
// forwarding. It listens on 127.0.0.1 only and shuts down in t.Cleanup.
//
// Commands run as the test process's user whatever user name the client
// sends, in a scratch working directory, with the test process's
// environment (plus WithEnv). Unlike OpenSSH 9.2's sshd, which ignores
// signal requests on root sessions, this server always delivers them.
package sshtest

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/rollout-sh/rollout/remote"
)

// Server is a running test SSH server.
type Server struct {
	Addr           string     // 127.0.0.1:PORT
	Port           int        // the listening port
	HostKey        ssh.Signer // the server's pinned host key
	ClientKeyFile  string     // private key file (0600) authorized on this server
	KnownHostsFile string     // a known_hosts file holding this server's key

	opts     options
	ln       net.Listener
	config   *ssh.ServerConfig
	dir      string // working directory of commands
	conns    atomic.Int64
	execs    atomic.Int64
	shutdown chan struct{}
	wg       sync.WaitGroup

	mu      sync.Mutex
	closers map[io.Closer]struct{}
	pgids   map[int]struct{}
}

type options struct {
	hostKeys         []ssh.Signer
	authorized       []ssh.PublicKey
	noKeepaliveReply bool
	handshakeDelay   time.Duration
	env              []string
}

// Option configures New.
type Option func(*options)

// WithHostKey makes the server use these host keys instead of a generated
// one. The first becomes Server.HostKey and goes into KnownHostsFile; the
// others are offered too, as sshd offers all of its host keys.
func WithHostKey(keys ...ssh.Signer) Option {
	return func(o *options) { o.hostKeys = append(o.hostKeys, keys...) }
}

// WithAuthorizedKey authorizes another client key besides the generated one.
func WithAuthorizedKey(key ssh.PublicKey) Option {
	return func(o *options) { o.authorized = append(o.authorized, key) }
}

// WithoutKeepaliveReplies makes the server ignore keepalive@openssh.com
// requests, like a peer that has silently gone away.
func WithoutKeepaliveReplies() Option { return func(o *options) { o.noKeepaliveReply = true } }

// WithHandshakeDelay makes the server stay silent for d after accepting a
// connection before it starts the SSH handshake.
func WithHandshakeDelay(d time.Duration) Option { return func(o *options) { o.handshakeDelay = d } }

// WithEnv adds "NAME=value" entries to the environment of every command
// (after the test process's own, so they win).
func WithEnv(kv ...string) Option { return func(o *options) { o.env = append(o.env, kv...) } }

// NewSigner returns a fresh ed25519 signer, for host or client keys.
func NewSigner(t testing.TB) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatalf("sshtest: generate key: %v", err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatalf("sshtest: signer: %v", err)
	}
	return s
}

// WriteKey writes a new ed25519 private key in OpenSSH format to path (mode
// 0600), encrypted when passphrase is not empty, and returns its public key.
func WriteKey(t testing.TB, path, passphrase string) ssh.PublicKey {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatalf("sshtest: generate key: %v", err)
	}
	var block *pem.Block
	if passphrase == "" {
		block, err = ssh.MarshalPrivateKey(priv, "sshtest")
	} else {
		block, err = ssh.MarshalPrivateKeyWithPassphrase(priv, "sshtest", []byte(passphrase))
	}
	if err != nil {
		t.Fatalf("sshtest: marshal key: %v", err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatalf("sshtest: %v", err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatalf("sshtest: %v", err)
	}
	return k
}

// New starts a server on 127.0.0.1:0. It stops in t.Cleanup, killing
// commands still running.
func New(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s := &Server{
		shutdown: make(chan struct{}),
		closers:  map[io.Closer]struct{}{},
		pgids:    map[int]struct{}{},
	}
	for _, o := range opts {
		o(&s.opts)
	}
	dir := t.TempDir()
	s.dir = filepath.Join(dir, "home")
	if err := os.Mkdir(s.dir, 0o755); err != nil {
		t.Fatalf("sshtest: %v", err)
	}

	if len(s.opts.hostKeys) == 0 {
		s.opts.hostKeys = []ssh.Signer{NewSigner(t)}
	}
	s.HostKey = s.opts.hostKeys[0]
	s.ClientKeyFile = filepath.Join(dir, "id_ed25519")
	clientPub := WriteKey(t, s.ClientKeyFile, "")
	authorized := append([]ssh.PublicKey{clientPub}, s.opts.authorized...)

	s.config = &ssh.ServerConfig{
		PublicKeyCallback: func(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			for _, k := range authorized {
				if string(k.Marshal()) == string(key.Marshal()) {
					return &ssh.Permissions{}, nil
				}
			}
			return nil, errors.New("sshtest: key not authorized")
		},
	}
	for _, k := range s.opts.hostKeys {
		s.config.AddHostKey(k)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("sshtest: listen: %v", err)
	}
	s.ln = ln
	s.Addr = ln.Addr().String()
	s.Port = ln.Addr().(*net.TCPAddr).Port

	s.KnownHostsFile = filepath.Join(dir, "known_hosts")
	line := knownhosts.Line([]string{knownhosts.Normalize(s.Addr)}, s.HostKey.PublicKey()) + "\n"
	if err := os.WriteFile(s.KnownHostsFile, []byte(line), 0o600); err != nil {
		t.Fatalf("sshtest: %v", err)
	}

	s.wg.Add(1)
	go s.serve()
	t.Cleanup(s.close)
	return s
}

// Target returns a remote.Target for this server.
func (s *Server) Target() remote.Target {
	return remote.Target{
		Name:          "sshtest",
		Address:       "127.0.0.1",
		Port:          s.Port,
		IdentityFiles: []string{s.ClientKeyFile},
	}
}

// Connections returns how many connections completed the SSH handshake.
func (s *Server) Connections() int { return int(s.conns.Load()) }

// DropConnections closes every open connection abruptly, as a network
// failure would; the server keeps accepting new ones.
func (s *Server) DropConnections() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.closers {
		// Accepted connections are the ones whose local end is the listener.
		if nc, ok := c.(net.Conn); ok && nc.LocalAddr().String() == s.Addr {
			nc.Close()
		}
	}
}

// Execs returns how many exec requests the server received.
func (s *Server) Execs() int { return int(s.execs.Load()) }

func (s *Server) close() {
	close(s.shutdown)
	s.ln.Close()
	s.mu.Lock()
	for c := range s.closers {
		c.Close()
	}
	for pgid := range s.pgids {
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
	}
}

func (s *Server) track(c io.Closer) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.shutdown:
		c.Close()
		return false
	default:
	}
	s.closers[c] = struct{}{}
	return true
}

func (s *Server) untrack(c io.Closer) {
	s.mu.Lock()
	delete(s.closers, c)
	s.mu.Unlock()
	c.Close()
}

func (s *Server) serve() {
	defer s.wg.Done()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.wg.Add(1)
		go s.handleConn(nc)
	}
}

func (s *Server) handleConn(nc net.Conn) {
	defer s.wg.Done()
	if !s.track(nc) {
		return
	}
	defer s.untrack(nc)
	if d := s.opts.handshakeDelay; d > 0 {
		select {
		case <-time.After(d):
		case <-s.shutdown:
			return
		}
	}
	sc, chans, reqs, err := ssh.NewServerConn(nc, s.config)
	if err != nil {
		return
	}
	defer sc.Close()
	s.conns.Add(1)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for r := range reqs {
			if r.Type == "keepalive@openssh.com" && s.opts.noKeepaliveReply {
				continue
			}
			if r.WantReply {
				r.Reply(false, nil)
			}
		}
	}()
	for nch := range chans {
		s.wg.Add(1)
		switch nch.ChannelType() {
		case "session":
			go s.session(nch)
		case "direct-tcpip":
			go s.direct(nch, "direct-tcpip", &tcpipPayload{})
		case "direct-streamlocal@openssh.com":
			go s.direct(nch, "direct-streamlocal", &streamLocalPayload{})
		default:
			s.wg.Done()
			nch.Reject(ssh.UnknownChannelType, "sshtest: unsupported channel type")
		}
	}
}

var signals = map[string]syscall.Signal{
	"ABRT": syscall.SIGABRT, "ALRM": syscall.SIGALRM, "FPE": syscall.SIGFPE,
	"HUP": syscall.SIGHUP, "ILL": syscall.SIGILL, "INT": syscall.SIGINT,
	"KILL": syscall.SIGKILL, "PIPE": syscall.SIGPIPE, "QUIT": syscall.SIGQUIT,
	"SEGV": syscall.SIGSEGV, "TERM": syscall.SIGTERM, "USR1": syscall.SIGUSR1,
	"USR2": syscall.SIGUSR2,
}

func signalName(sig syscall.Signal) string {
	for n, s := range signals {
		if s == sig {
			return n
		}
	}
	return "SIG" + strconv.Itoa(int(sig))
}

func (s *Server) session(nch ssh.NewChannel) {
	defer s.wg.Done()
	ch, reqs, err := nch.Accept()
	if err != nil {
		return
	}
	if !s.track(ch) {
		return
	}
	defer s.untrack(ch)
	var (
		env  []string
		proc *os.Process
		done chan struct{}
	)
	for req := range reqs {
		switch req.Type {
		case "env":
			var kv struct{ Name, Value string }
			if ssh.Unmarshal(req.Payload, &kv) == nil {
				env = append(env, kv.Name+"="+kv.Value)
			}
			req.Reply(true, nil)
		case "exec":
			var p struct{ Command string }
			if proc != nil || ssh.Unmarshal(req.Payload, &p) != nil {
				req.Reply(false, nil)
				continue
			}
			s.execs.Add(1)
			var (
				err    error
				report func()
			)
			proc, report, err = s.start(ch, p.Command, env)
			req.Reply(err == nil, nil)
			if err == nil {
				// Only after the reply: the exit status must not overtake it.
				done = make(chan struct{})
				s.wg.Add(1)
				go func() {
					defer s.wg.Done()
					defer close(done)
					report()
				}()
			}
		case "signal":
			var p struct{ Signal string }
			if ssh.Unmarshal(req.Payload, &p) == nil && proc != nil {
				if sig, ok := signals[p.Signal]; ok {
					_ = syscall.Kill(-proc.Pid, sig)
				}
			}
			if req.WantReply {
				req.Reply(true, nil)
			}
		default:
			if req.WantReply {
				req.Reply(false, nil)
			}
		}
	}
	// The client closed the channel. Like sshd, leave a running command
	// alone (only its pipes are gone); Cleanup kills what is left.
	if done != nil {
		select {
		case <-done:
		case <-s.shutdown:
		}
	}
}

// start starts command. report waits for it to exit, then sends its exit
// status on ch and closes ch.
func (s *Server) start(ch ssh.Channel, command string, env []string) (*os.Process, func(), error) {
	cmd := exec.Command("sh", "-c", command)
	cmd.Dir = s.dir
	cmd.Env = append(append(os.Environ(), s.opts.env...), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stdout = ch
	cmd.Stderr = ch.Stderr()
	cmd.WaitDelay = 2 * time.Second
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(ch.Stderr(), "sshtest: %v\n", err)
		return nil, nil, err
	}
	pgid := cmd.Process.Pid
	s.mu.Lock()
	s.pgids[pgid] = struct{}{}
	s.mu.Unlock()

	go func() {
		_, _ = io.Copy(stdin, ch)
		stdin.Close()
	}()
	report := func() {
		_ = cmd.Wait()
		s.mu.Lock()
		delete(s.pgids, pgid)
		s.mu.Unlock()
		_ = ch.CloseWrite()
		ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
		if ws.Signaled() {
			msg := struct {
				Signal     string
				CoreDumped bool
				Error      string
				Lang       string
			}{Signal: signalName(ws.Signal())}
			_, _ = ch.SendRequest("exit-signal", false, ssh.Marshal(&msg))
		} else {
			status := struct{ Status uint32 }{uint32(cmd.ProcessState.ExitCode())}
			_, _ = ch.SendRequest("exit-status", false, ssh.Marshal(&status))
		}
		ch.Close()
	}
	return cmd.Process, report, nil
}

// directPayload is a direct channel's request: where to connect.
type directPayload interface {
	target() (network, addr string)
}

// tcpipPayload is a direct-tcpip request (RFC 4254, 7.2).
type tcpipPayload struct {
	Host     string
	Port     uint32
	OrigHost string
	OrigPort uint32
}

func (p *tcpipPayload) target() (string, string) {
	return "tcp", net.JoinHostPort(p.Host, strconv.Itoa(int(p.Port)))
}

// streamLocalPayload is a direct-streamlocal@openssh.com request
// (OpenSSH's PROTOCOL, 2.4).
type streamLocalPayload struct {
	SocketPath string
	Reserved0  string
	Reserved1  uint32
}

func (p *streamLocalPayload) target() (string, string) { return "unix", p.SocketPath }

// direct forwards a direct channel (kind names it in a rejection) to the
// target its payload p names.
func (s *Server) direct(nch ssh.NewChannel, kind string, p directPayload) {
	defer s.wg.Done()
	if err := ssh.Unmarshal(nch.ExtraData(), p); err != nil {
		nch.Reject(ssh.ConnectionFailed, "sshtest: bad "+kind+" payload")
		return
	}
	network, addr := p.target()
	s.forward(nch, network, addr)
}

func (s *Server) forward(nch ssh.NewChannel, network, addr string) {
	local, err := net.DialTimeout(network, addr, 5*time.Second)
	if err != nil {
		nch.Reject(ssh.ConnectionFailed, err.Error())
		return
	}
	ch, reqs, err := nch.Accept()
	if err != nil {
		local.Close()
		return
	}
	go ssh.DiscardRequests(reqs)
	if !s.track(local) {
		ch.Close()
		return
	}
	defer s.untrack(local)
	if !s.track(ch) {
		return
	}
	defer s.untrack(ch)

	var both sync.WaitGroup
	both.Add(2)
	go func() {
		defer both.Done()
		_, _ = io.Copy(local, ch)
		if cw, ok := local.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
	}()
	go func() {
		defer both.Done()
		_, _ = io.Copy(ch, local)
		_ = ch.CloseWrite()
	}()
	both.Wait()
}
