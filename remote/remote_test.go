package remote_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/rollout-sh/rollout/remote"
	"github.com/rollout-sh/rollout/remote/sshtest"
)

// noAgent hides any ssh-agent of the machine running the tests.
func noAgent(t *testing.T) { t.Setenv("SSH_AUTH_SOCK", "") }

func config(s *sshtest.Server) remote.Config {
	return remote.Config{KnownHostsFile: s.KnownHostsFile, ConnectTimeout: 5 * time.Second}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func dial(t *testing.T, s *sshtest.Server, cfg remote.Config) *remote.Client {
	t.Helper()
	c, err := remote.Dial(testCtx(t), s.Target(), cfg)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// eventually polls cond until it holds or the bound passes (30s: on a
// loaded 2-core CI machine sshd took more than 10s to reap a cancelled
// upload's shell once).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("gave up waiting: %s", what)
}

func TestRunReportsExitStatusAndStderr(t *testing.T) {
	noAgent(t)
	s := sshtest.New(t)
	c := dial(t, s, config(s))
	ctx := testCtx(t)

	var out, errOut bytes.Buffer
	err := c.Run(ctx, "echo out; echo first >&2; echo 'it broke' >&2; exit 3", nil, &out, &errOut)
	var ee *remote.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("want *ExitError, got %T %v", err, err)
	}
	if ee.ExitStatus() != 3 || ee.Host != "sshtest" {
		t.Errorf("status %d host %q, want 3 sshtest", ee.ExitStatus(), ee.Host)
	}
	if out.String() != "out\n" || errOut.String() != "first\nit broke\n" {
		t.Errorf("stdout %q stderr %q", out.String(), errOut.String())
	}
	if !strings.Contains(ee.Stderr, "it broke") {
		t.Errorf("ExitError.Stderr = %q", ee.Stderr)
	}
	for _, want := range []string{"sshtest", "status 3", "it broke"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}

	got, err := c.Output(ctx, "printf '%s|' hello 'a b'")
	if err != nil || string(got) != "hello|a b|" {
		t.Errorf("Output = %q, %v", got, err)
	}
	_, err = c.Output(ctx, "echo only-in-stderr >&2; false")
	if !errors.As(err, &ee) || !strings.Contains(ee.Stderr, "only-in-stderr") || ee.Status != 1 {
		t.Errorf("Output failure: %v", err)
	}
	if err := c.Run(ctx, "true", nil, nil, nil); err != nil {
		t.Errorf("true: %v", err)
	}
	// One long-lived shell runs all four commands on one connection.
	if s.Execs() != 1 || s.Connections() != 1 {
		t.Errorf("one shell for every command on one connection: execs %d conns %d", s.Execs(), s.Connections())
	}
	if st := c.Stats(); st.Sessions != 1 || st.Commands != 4 || st.RoundTrips() != 5 {
		t.Errorf("stats %+v, want 1 session and 4 commands", st)
	}
}

func TestExitErrorShowsLastStderrLines(t *testing.T) {
	e := &remote.ExitError{Host: "web1", Cmd: "systemctl restart appd", Status: 1,
		Stderr: "noise 1\nnoise 2\nline a\nline b\nline c\n"}
	msg := e.Error()
	if !strings.Contains(msg, "web1") || !strings.Contains(msg, "status 1") || !strings.Contains(msg, "line c") {
		t.Errorf("message %q", msg)
	}
	if strings.Contains(msg, "noise 1") {
		t.Errorf("message %q should keep only the last lines", msg)
	}
}

func TestRunStreamsStdin(t *testing.T) {
	noAgent(t)
	s := sshtest.New(t)
	c := dial(t, s, config(s))
	in := make([]byte, 3<<20)
	rand.Read(in)
	var out bytes.Buffer
	if err := c.Run(testCtx(t), "cat", bytes.NewReader(in), &out, nil); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), in) {
		t.Errorf("echoed %d bytes, sent %d (or content differs)", out.Len(), len(in))
	}
}

func TestAuthFailureWithWrongKey(t *testing.T) {
	noAgent(t)
	s := sshtest.New(t)
	wrong := filepath.Join(t.TempDir(), "id_wrong")
	sshtest.WriteKey(t, wrong, "")
	tg := s.Target()
	tg.User = "deploy"
	tg.IdentityFiles = []string{wrong}
	_, err := remote.Dial(testCtx(t), tg, config(s))
	if !errors.Is(err, remote.ErrAuth) {
		t.Fatalf("want ErrAuth, got %v", err)
	}
	for _, want := range []string{"deploy@127.0.0.1:" + strconv.Itoa(s.Port), wrong} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestUnknownHostIsRefused(t *testing.T) {
	noAgent(t)
	s := sshtest.New(t)
	cfg := config(s)
	cfg.KnownHostsFile = filepath.Join(t.TempDir(), "known_hosts") // does not exist
	_, err := remote.Dial(testCtx(t), s.Target(), cfg)
	if !errors.Is(err, remote.ErrHostKeyUnknown) || errors.Is(err, remote.ErrHostKeyChanged) {
		t.Fatalf("want ErrHostKeyUnknown, got %v", err)
	}
	for _, want := range []string{"--accept-new-host-keys", "ssh-keyscan", "[127.0.0.1]:" + strconv.Itoa(s.Port)} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if _, statErr := os.Stat(cfg.KnownHostsFile); !os.IsNotExist(statErr) {
		t.Errorf("known_hosts written without --accept-new-host-keys")
	}
	if s.Execs() != 0 {
		t.Errorf("commands ran on an unverified host")
	}
}

func TestAcceptNewRecordsKeyOnce(t *testing.T) {
	noAgent(t)
	s := sshtest.New(t)
	cfg := config(s)
	cfg.KnownHostsFile = filepath.Join(t.TempDir(), "new", "known_hosts")
	cfg.AcceptNewHostKeys = true

	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := remote.Dial(testCtx(t), s.Target(), cfg)
			if err == nil {
				c.Close()
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("Dial with AcceptNewHostKeys: %v", err)
		}
	}
	data, err := os.ReadFile(cfg.KnownHostsFile)
	if err != nil {
		t.Fatal(err)
	}
	want := knownhosts.Line([]string{"[127.0.0.1]:" + strconv.Itoa(s.Port)}, s.HostKey.PublicKey()) + "\n"
	if string(data) != want {
		t.Errorf("known_hosts = %q, want exactly %q", data, want)
	}
	if st, _ := os.Stat(cfg.KnownHostsFile); st.Mode().Perm() != 0o600 {
		t.Errorf("known_hosts mode %v, want 0600", st.Mode().Perm())
	}

	cfg.AcceptNewHostKeys = false
	c, err := remote.Dial(testCtx(t), s.Target(), cfg)
	if err != nil {
		t.Fatalf("second Dial without accept-new: %v", err)
	}
	c.Close()
}

func TestChangedHostKeyIsRefusedEvenWithAcceptNew(t *testing.T) {
	noAgent(t)
	s := sshtest.New(t)
	other := sshtest.NewSigner(t)
	entry := "[127.0.0.1]:" + strconv.Itoa(s.Port)
	file := filepath.Join(t.TempDir(), "known_hosts")
	before := "# comment\n" + knownhosts.Line([]string{entry}, other.PublicKey()) + "\n"
	os.WriteFile(file, []byte(before), 0o600)

	cfg := config(s)
	cfg.KnownHostsFile = file
	cfg.AcceptNewHostKeys = true
	_, err := remote.Dial(testCtx(t), s.Target(), cfg)
	if !errors.Is(err, remote.ErrHostKeyChanged) {
		t.Fatalf("want ErrHostKeyChanged, got %v", err)
	}
	for _, want := range []string{"man-in-the-middle", "ssh-keygen -R '" + entry + "' -f " + file, file + ":2"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if after, _ := os.ReadFile(file); string(after) != before {
		t.Errorf("known_hosts modified on a changed key: %q", after)
	}
}

func TestRevokedHostKeyIsRefused(t *testing.T) {
	noAgent(t)
	s := sshtest.New(t)
	file := filepath.Join(t.TempDir(), "known_hosts")
	revoked := "@revoked * " + string(ssh.MarshalAuthorizedKey(s.HostKey.PublicKey()))
	os.WriteFile(file, []byte(revoked), 0o600)
	cfg := config(s)
	cfg.KnownHostsFile = file
	cfg.AcceptNewHostKeys = true
	_, err := remote.Dial(testCtx(t), s.Target(), cfg)
	if !errors.Is(err, remote.ErrHostKeyChanged) || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("want a refusal for a revoked key, got %v", err)
	}
}

// A server offering several host keys must be asked for the kind that
// known_hosts records, not the client's default favourite.
func TestHostKeyAlgorithmFollowsKnownHosts(t *testing.T) {
	noAgent(t)
	_, ecPriv, _ := func() (any, *ecdsa.PrivateKey, error) {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		return nil, k, err
	}()
	ecSigner, err := ssh.NewSignerFromKey(ecPriv)
	if err != nil {
		t.Fatal(err)
	}
	ed := sshtest.NewSigner(t)
	// ed25519 is recorded; x/crypto would otherwise pick ecdsa first.
	s := sshtest.New(t, sshtest.WithHostKey(ed, ecSigner))
	c := dial(t, s, config(s))
	if _, err := c.Output(testCtx(t), "true"); err != nil {
		t.Fatal(err)
	}
}

func TestPassphraseKeyWithoutAgentIsAClearError(t *testing.T) {
	noAgent(t)
	s := sshtest.New(t)
	locked := lockedKey(t)
	tg := s.Target()
	tg.IdentityFiles = []string{locked}
	_, err := remote.Dial(testCtx(t), tg, config(s))
	var pm *ssh.PassphraseMissingError
	if !errors.As(err, &pm) || !errors.Is(err, remote.ErrAuth) {
		t.Fatalf("want ErrAuth wrapping PassphraseMissingError, got %v", err)
	}
	if !strings.Contains(err.Error(), locked) || !strings.Contains(err.Error(), "ssh-add") {
		t.Errorf("error %q should name the file and suggest ssh-add", err)
	}
	if s.Connections() != 0 {
		t.Errorf("connected although no key was usable")
	}
}

// lockedPEM is one passphrase-protected key, made once: encrypting is slow
// (bcrypt) and every test only needs it to be locked.
var lockedPEM = sync.OnceValues(func() ([]byte, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	block, err := ssh.MarshalPrivateKeyWithPassphrase(priv, "locked", []byte("secret"))
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(block), nil
})

func lockedKey(t *testing.T) string {
	t.Helper()
	b, err := lockedPEM()
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "id_locked")
	os.WriteFile(f, b, 0o600)
	return f
}

// startAgent serves an in-memory agent holding key on a unix socket and
// points SSH_AUTH_SOCK at it.
func startAgent(t *testing.T, key any) {
	t.Helper()
	keyring := agent.NewKeyring()
	if err := keyring.Add(agent.AddedKey{PrivateKey: key}); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "agent.sock")
	serve(t, "unix", sock, func(conn net.Conn) { agent.ServeAgent(keyring, conn) })
	t.Setenv("SSH_AUTH_SOCK", sock)
}

func TestAgentAuth(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	sshPub, _ := ssh.NewPublicKey(pub)
	startAgent(t, priv)
	s := sshtest.New(t, sshtest.WithAuthorizedKey(sshPub))

	// Only the agent holds an authorized key; the listed file is a
	// passphrase-protected key that cannot be opened, which must not stop
	// the agent from being used.
	locked := lockedKey(t)
	tg := s.Target()
	tg.IdentityFiles = []string{locked}
	c, err := remote.Dial(testCtx(t), tg, config(s))
	if err != nil {
		t.Fatalf("Dial with agent: %v", err)
	}
	defer c.Close()
	if out, err := c.Output(testCtx(t), "echo via-agent"); err != nil || string(out) != "via-agent\n" {
		t.Errorf("Output = %q, %v", out, err)
	}
}

func TestHandshakeTimeout(t *testing.T) {
	noAgent(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var held []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept() // accept and never speak
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		for _, c := range held {
			c.Close()
		}
		mu.Unlock()
	}()

	s := sshtest.New(t) // only for a key file
	tg := s.Target()
	tg.Port = ln.Addr().(*net.TCPAddr).Port
	cfg := config(s)
	cfg.ConnectTimeout = 300 * time.Millisecond

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err = remote.Dial(ctx, tg, cfg)
	if err == nil {
		t.Fatal("Dial to a silent server succeeded")
	}
	if ctx.Err() != nil {
		t.Fatalf("Dial was stopped by the test bound, not by ConnectTimeout: %v", err)
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("want a deadline error, got %v", err)
	}
}

func TestHandshakeStopsOnContextCancel(t *testing.T) {
	noAgent(t)
	s := sshtest.New(t, sshtest.WithHandshakeDelay(time.Hour))
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	_, err := remote.Dial(ctx, s.Target(), config(s)) // ConnectTimeout 5s
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("want context.Canceled, got %v", err)
	}
}

func TestCancelStopsRemoteCommand(t *testing.T) {
	noAgent(t)
	s := sshtest.New(t)
	c := dial(t, s, config(s))
	pidFile := filepath.Join(t.TempDir(), "pid")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	var out bytes.Buffer
	go func() {
		errc <- c.Run(ctx, "echo $$ >"+pidFile+"; echo started; exec sleep 30", nil, &out, nil)
	}()
	var pid int
	eventually(t, "the remote command to start", func() bool {
		b, err := os.ReadFile(pidFile)
		if err != nil || !strings.HasSuffix(string(b), "\n") {
			return false
		}
		pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		return pid > 0
	})
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("want context.Canceled, got %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	eventually(t, "the remote process to exit", func() bool {
		return syscall.Kill(pid, 0) == syscall.ESRCH
	})
	// The connection is still usable for the next command.
	if _, err := c.Output(testCtx(t), "true"); err != nil {
		t.Errorf("command after cancel: %v", err)
	}
}

func TestKeepaliveDetectsDeadPeer(t *testing.T) {
	noAgent(t)
	s := sshtest.New(t, sshtest.WithoutKeepaliveReplies())
	cfg := config(s)
	cfg.KeepaliveInterval = 50 * time.Millisecond
	c := dial(t, s, cfg)
	err := c.Run(testCtx(t), "sleep 30", nil, nil, nil)
	if err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want a lost-connection error, got %v", err)
	}
	if !strings.Contains(err.Error(), "keepalive") || !strings.Contains(err.Error(), "sshtest") {
		t.Errorf("error %q should say the keepalives went unanswered", err)
	}
}

// The count of unanswered keepalives that closes a connection is the
// configured one (OpenSSH's ServerAliveCountMax), and the error says it.
func TestKeepaliveCountMaxIsConfigurable(t *testing.T) {
	noAgent(t)
	s := sshtest.New(t, sshtest.WithoutKeepaliveReplies())
	cfg := config(s)
	cfg.KeepaliveInterval, cfg.KeepaliveCountMax = 30*time.Millisecond, 5
	c := dial(t, s, cfg)
	err := c.Run(testCtx(t), "sleep 30", nil, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "no reply to 5 keepalives sent 30ms apart") {
		t.Fatalf("want the connection lost after 5 unanswered keepalives, got %v", err)
	}
}

func TestKeepaliveKeepsLivePeer(t *testing.T) {
	noAgent(t)
	s := sshtest.New(t)
	cfg := config(s)
	cfg.KeepaliveInterval = 20 * time.Millisecond
	c := dial(t, s, cfg)
	// Many keepalive rounds pass during the command; answered ones must not
	// close the connection.
	if err := c.Run(testCtx(t), "sleep 0.5", nil, nil, nil); err != nil {
		t.Fatal(err)
	}
}

func leftovers(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, ".rollout.*"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestWriteFileLarge(t *testing.T) {
	noAgent(t)
	s := sshtest.New(t)
	c := dial(t, s, config(s))
	dir := t.TempDir()
	dest := filepath.Join(dir, "app conf's.bin") // needs quoting
	os.WriteFile(dest, []byte("old"), 0o600)

	data := make([]byte, 8<<20)
	rand.Read(data)
	if err := c.WriteFile(testCtx(t), dest, data, 0o640, ""); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(dest)
	if err != nil {
		t.Fatal(err)
	}
	if sha256.Sum256(got) != sha256.Sum256(data) {
		t.Errorf("content differs: %d bytes written, %d read", len(data), len(got))
	}
	st, _ := os.Stat(dest)
	if st.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640", st.Mode().Perm())
	}
	if l := leftovers(t, dir); len(l) != 0 {
		t.Errorf("temporary files left: %v", l)
	}
}

func TestWriteFileOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chown needs root")
	}
	noAgent(t)
	s := sshtest.New(t)
	c := dial(t, s, config(s))
	dest := filepath.Join(t.TempDir(), "owned")
	if err := c.WriteFile(testCtx(t), dest, []byte("x"), 0o644, "nobody"); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(dest)
	if uid := st.Sys().(*syscall.Stat_t).Uid; uid == 0 {
		t.Errorf("owner still root")
	}
}

func TestWriteFileFailureKeepsPreviousContent(t *testing.T) {
	noAgent(t)
	s := sshtest.New(t)
	c := dial(t, s, config(s))
	dir := t.TempDir()
	dest := filepath.Join(dir, "app.conf")
	os.WriteFile(dest, []byte("previous"), 0o644)

	err := c.WriteFile(testCtx(t), dest, []byte("new content"), 0o644, "no-such-user-rollout")
	var ee *remote.ExitError
	if !errors.As(err, &ee) || !strings.Contains(err.Error(), dest) {
		t.Fatalf("want an ExitError naming %s, got %v", dest, err)
	}
	if got, _ := os.ReadFile(dest); string(got) != "previous" {
		t.Errorf("destination is %q after a failed write", got)
	}
	if l := leftovers(t, dir); len(l) != 0 {
		t.Errorf("temporary files left: %v", l)
	}

	err = c.WriteFile(testCtx(t), filepath.Join(dir, "missing-dir", "x"), []byte("x"), 0o644, "")
	if err == nil {
		t.Error("write into a missing directory succeeded")
	}
}

// failingReader yields n bytes and then an error, like a source that breaks
// mid-stream.
type failingReader struct{ n int }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, errors.New("source broke")
	}
	k := min(len(p), r.n)
	for i := range p[:k] {
		p[i] = 'x'
	}
	r.n -= k
	return k, nil
}

func TestWriteFileCutShortKeepsPreviousContent(t *testing.T) {
	noAgent(t)
	s := sshtest.New(t)
	c := dial(t, s, config(s))
	dir := t.TempDir()
	dest := filepath.Join(dir, "app.conf")
	os.WriteFile(dest, []byte("previous"), 0o644)

	err := remote.WriteFrom(testCtx(t), c, dest, &failingReader{n: 1 << 20}, 8<<20, 0o644)
	if err == nil {
		t.Fatal("a stream cut short was reported as written")
	}
	if got, _ := os.ReadFile(dest); string(got) != "previous" {
		t.Errorf("destination has %d bytes after a cut-short write", len(got))
	}
	eventually(t, "the temporary file to be removed", func() bool { return len(leftovers(t, dir)) == 0 })
}

// blockingReader yields n bytes, then blocks until released.
type blockingReader struct {
	n       int
	sent    chan struct{}
	release chan struct{}
}

func (r *blockingReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		close(r.sent)
		<-r.release
		return 0, io.EOF
	}
	k := min(len(p), r.n)
	r.n -= k
	return k, nil
}

func TestWriteFileInterruptedKeepsPreviousContent(t *testing.T) {
	noAgent(t)
	s := sshtest.New(t)
	c := dial(t, s, config(s))
	dir := t.TempDir()
	dest := filepath.Join(dir, "app.conf")
	os.WriteFile(dest, []byte("previous"), 0o644)

	r := &blockingReader{n: 1 << 20, sent: make(chan struct{}), release: make(chan struct{})}
	defer close(r.release)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- remote.WriteFrom(ctx, c, dest, r, 4<<20, 0o644) }()
	select {
	case <-r.sent:
	case <-time.After(10 * time.Second):
		t.Fatal("upload did not start")
	}
	eventually(t, "the temporary file to appear", func() bool { return len(leftovers(t, dir)) == 1 })
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("want context.Canceled, got %v", err)
	}
	eventually(t, "the temporary file to be removed", func() bool { return len(leftovers(t, dir)) == 0 })
	if got, _ := os.ReadFile(dest); string(got) != "previous" {
		t.Errorf("destination has %d bytes after an interrupted write", len(got))
	}
}

func echoServer(t *testing.T, network, addr string) net.Listener {
	t.Helper()
	return serve(t, network, addr, func(conn net.Conn) { io.Copy(conn, conn) })
}

// serve listens on addr until the test ends and runs handle for each
// connection, closing it afterwards.
func serve(t *testing.T, network, addr string, handle func(net.Conn)) net.Listener {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				handle(conn)
			}()
		}
	}()
	return ln
}

func roundTrip(t *testing.T, conn net.Conn, msg string) {
	t.Helper()
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, msg); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(conn, buf); err != nil || string(buf) != msg {
		t.Errorf("echo = %q, %v", buf, err)
	}
}

func TestDialForwardsTCPAndUnix(t *testing.T) {
	noAgent(t)
	s := sshtest.New(t)
	c := dial(t, s, config(s))
	ctx := testCtx(t)

	tcp := echoServer(t, "tcp", "127.0.0.1:0")
	conn, err := c.Dial(ctx, "tcp", tcp.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, conn, "over tcp")

	sock := filepath.Join(t.TempDir(), "admin.sock")
	echoServer(t, "unix", sock)
	conn, err = c.Dial(ctx, "unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, conn, "show stat\n")

	_, err = c.Dial(ctx, "unix", filepath.Join(t.TempDir(), "nothing.sock"))
	if err == nil || !strings.Contains(err.Error(), "sshtest") {
		t.Errorf("dial to a missing socket: %v", err)
	}
}

func bothKnown(t *testing.T, servers ...*sshtest.Server) string {
	t.Helper()
	var b []byte
	for _, s := range servers {
		d, err := os.ReadFile(s.KnownHostsFile)
		if err != nil {
			t.Fatal(err)
		}
		b = append(b, d...)
	}
	f := filepath.Join(t.TempDir(), "known_hosts")
	os.WriteFile(f, b, 0o600)
	return f
}

func TestProxyJump(t *testing.T) {
	noAgent(t)
	bastion := sshtest.New(t)
	inner := sshtest.New(t)
	jump := bastion.Target()
	jump.Name = "bastion"
	tg := inner.Target()
	tg.Jump = &jump

	cfg := config(inner)
	cfg.KnownHostsFile = bothKnown(t, bastion, inner)
	c, err := remote.Dial(testCtx(t), tg, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := c.Output(testCtx(t), "echo inside"); err != nil || string(out) != "inside\n" {
		t.Errorf("Output = %q, %v", out, err)
	}
	if bastion.Connections() != 1 || inner.Connections() != 1 || bastion.Execs() != 0 || inner.Execs() != 1 {
		t.Errorf("bastion conns %d execs %d, inner conns %d execs %d",
			bastion.Connections(), bastion.Execs(), inner.Connections(), inner.Execs())
	}
	c.Close()

	// The jump host's key is verified too.
	cfg.KnownHostsFile = inner.KnownHostsFile
	_, err = remote.Dial(testCtx(t), tg, cfg)
	if !errors.Is(err, remote.ErrHostKeyUnknown) || !strings.Contains(err.Error(), strconv.Itoa(bastion.Port)) {
		t.Errorf("want ErrHostKeyUnknown for the bastion, got %v", err)
	}
}

func TestPoolDialsOncePerHost(t *testing.T) {
	noAgent(t)
	a := sshtest.New(t)
	b := sshtest.New(t)
	cfg := config(a)
	cfg.KnownHostsFile = bothKnown(t, a, b)
	p := remote.NewPool(cfg)
	ta := a.Target()
	ta.Name = "a"
	tb := b.Target()
	tb.Name = "b"

	ctx := testCtx(t)
	clients := make([]*remote.Client, 16)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tg := ta
			if i%2 == 1 {
				tg = tb
			}
			c, err := p.Get(ctx, tg)
			if err != nil {
				t.Error(err)
				return
			}
			if _, err := c.Output(ctx, "true"); err != nil {
				t.Error(err)
			}
			clients[i] = c
		}()
	}
	wg.Wait()
	if a.Connections() != 1 || b.Connections() != 1 {
		t.Errorf("connections a=%d b=%d, want 1 each", a.Connections(), b.Connections())
	}
	for i := 2; i < len(clients); i++ {
		if clients[i] != clients[i%2] {
			t.Errorf("Get %d returned a different client", i)
		}
	}
	if clients[0].Name() != "a" || clients[1].Name() != "b" {
		t.Errorf("names %q %q", clients[0].Name(), clients[1].Name())
	}

	// A dead connection is replaced on the next Get.
	a.DropConnections()
	eventually(t, "a fresh connection", func() bool {
		c, err := p.Get(ctx, ta)
		return err == nil && c != clients[0]
	})
	// The server counts a connection once its side of the handshake is done.
	eventually(t, "the server to count the new connection", func() bool { return a.Connections() >= 2 })
	if a.Connections() != 2 {
		t.Errorf("connections to a = %d after a drop, want 2", a.Connections())
	}

	if err := p.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if _, err := p.Get(ctx, ta); err == nil {
		t.Error("Get after Close succeeded")
	}
	if _, err := clients[1].Output(ctx, "true"); err == nil {
		t.Error("client still usable after Pool.Close")
	}
}

func TestPoolDoesNotCacheFailures(t *testing.T) {
	noAgent(t)
	s := sshtest.New(t)
	cfg := config(s)
	cfg.KnownHostsFile = filepath.Join(t.TempDir(), "known_hosts")
	p := remote.NewPool(cfg)
	defer p.Close()
	if _, err := p.Get(testCtx(t), s.Target()); !errors.Is(err, remote.ErrHostKeyUnknown) {
		t.Fatalf("want ErrHostKeyUnknown, got %v", err)
	}
	data, _ := os.ReadFile(s.KnownHostsFile)
	os.WriteFile(cfg.KnownHostsFile, data, 0o600)
	if _, err := p.Get(testCtx(t), s.Target()); err != nil {
		t.Fatalf("Get after fixing known_hosts: %v", err)
	}
}

func fakeSudo(t *testing.T, script string) sshtest.Option {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "sudo"), []byte("#!/bin/sh\n"+script), 0o755); err != nil {
		t.Fatal(err)
	}
	return sshtest.WithEnv("PATH=" + dir + ":" + os.Getenv("PATH"))
}

func TestBecomeWithoutPasswordlessSudo(t *testing.T) {
	noAgent(t)
	s := sshtest.New(t, fakeSudo(t, "echo 'sudo: a password is required' >&2\nexit 1\n"))
	cfg := config(s)
	cfg.Become = true
	c := dial(t, s, cfg)
	err := c.Run(testCtx(t), "systemctl restart appd", nil, nil, nil)
	if !errors.Is(err, remote.ErrSudoPassword) {
		t.Fatalf("want ErrSudoPassword, got %v", err)
	}
	var ee *remote.ExitError
	if !errors.As(err, &ee) || ee.Cmd != "systemctl restart appd" {
		t.Errorf("want the ExitError for the original command inside, got %v", err)
	}
	if !strings.Contains(err.Error(), "NOPASSWD") {
		t.Errorf("error %q should say how to fix it", err)
	}
}

func TestBecomeWrapsCommandInSudo(t *testing.T) {
	noAgent(t)
	// The fake sudo insists on -n and then runs the rest as given.
	s := sshtest.New(t, fakeSudo(t, "[ \"$1\" = -n ] || { echo 'sudo: no -n' >&2; exit 99; }\nshift\nexec \"$@\"\n"))
	cfg := config(s)
	cfg.Become = true
	c := dial(t, s, cfg)
	out, err := c.Output(testCtx(t), `printf '%s|' "a b" "it's" $((1+1))`)
	if err != nil || string(out) != "a b|it's|2|" {
		t.Errorf("Output through sudo = %q, %v", out, err)
	}
	dest := filepath.Join(t.TempDir(), "f")
	if err := c.WriteFile(testCtx(t), dest, []byte("through sudo"), 0o600, ""); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(dest); string(got) != "through sudo" {
		t.Errorf("content %q", got)
	}
}
