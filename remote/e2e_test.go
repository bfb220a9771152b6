package remote_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/rollout-sh/rollout/remote"
	"github.com/rollout-sh/rollout/remote/sshtest"
)

const sshdPath = "/usr/sbin/sshd"

// missing skips the test, or fails it when ROLLOUT_E2E=1 demands the real thing.
func missing(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("ROLLOUT_E2E") == "1" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

type realSSHD struct {
	port       int
	clientKey  string
	knownHosts string
	log        string
}

// startSSHD runs OpenSSH's sshd on a free loopback port with an ed25519 and
// an ecdsa host key, authorizing a fresh client key. known_hosts records
// only the ed25519 key, so the client must ask for that algorithm.
func startSSHD(t *testing.T) *realSSHD {
	t.Helper()
	if _, err := os.Stat(sshdPath); err != nil {
		missing(t, "OpenSSH server not installed (%s): %v", sshdPath, err)
	}
	if os.Geteuid() != 0 {
		missing(t, "sshd end-to-end test needs root")
	}
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		missing(t, "privilege separation directory: %v", err)
	}
	dir := t.TempDir()
	edKey := filepath.Join(dir, "ssh_host_ed25519_key")
	edPub := sshtest.WriteKey(t, edKey, "")
	ecKey := filepath.Join(dir, "ssh_host_ecdsa_key")
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(ec, "")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(ecKey, pem.EncodeToMemory(block), 0o600)

	d := &realSSHD{clientKey: filepath.Join(dir, "id_ed25519"), log: filepath.Join(dir, "sshd.log")}
	clientPub := sshtest.WriteKey(t, d.clientKey, "")
	authorized := filepath.Join(dir, "authorized_keys")
	os.WriteFile(authorized, ssh.MarshalAuthorizedKey(clientPub), 0o644)

	for attempt := 0; attempt < 3; attempt++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		d.port = ln.Addr().(*net.TCPAddr).Port
		ln.Close()

		conf := filepath.Join(dir, "sshd_config")
		os.WriteFile(conf, []byte(fmt.Sprintf(`Port %d
ListenAddress 127.0.0.1
HostKey %s
HostKey %s
PidFile %s
AuthorizedKeysFile %s
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
LogLevel DEBUG1
`, d.port, edKey, ecKey, filepath.Join(dir, "sshd.pid"), authorized)), 0o600)

		cmd := exec.Command(sshdPath, "-D", "-f", conf, "-E", d.log)
		if err := cmd.Start(); err != nil {
			t.Fatalf("start sshd: %v", err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		t.Cleanup(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(5 * time.Second):
				_ = cmd.Process.Kill()
				<-exited
			}
		})
		if d.waitListening(exited) {
			d.knownHosts = filepath.Join(dir, "known_hosts")
			line := knownhosts.Line([]string{knownhosts.Normalize("127.0.0.1:" + strconv.Itoa(d.port))}, edPub)
			os.WriteFile(d.knownHosts, []byte(line+"\n"), 0o600)
			return d
		}
	}
	logText, _ := os.ReadFile(d.log)
	t.Fatalf("sshd did not start:\n%s", logText)
	return nil
}

func (d *realSSHD) waitListening(exited <-chan struct{}) bool {
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		select {
		case <-exited:
			return false
		default:
		}
		if c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(d.port)); err == nil {
			c.Close()
			return true
		}
	}
	return false
}

func TestEndToEndOpenSSH(t *testing.T) {
	noAgent(t)
	d := startSSHD(t)
	tg := remote.Target{Name: "real", Address: "127.0.0.1", Port: d.port, User: "root", IdentityFiles: []string{d.clientKey}}
	cfg := remote.Config{KnownHostsFile: d.knownHosts, ConnectTimeout: 10 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// Unknown host against the real server.
	bad := cfg
	bad.KnownHostsFile = filepath.Join(t.TempDir(), "empty")
	if _, err := remote.Dial(ctx, tg, bad); !errors.Is(err, remote.ErrHostKeyUnknown) {
		t.Fatalf("want ErrHostKeyUnknown, got %v", err)
	}

	c, err := remote.Dial(ctx, tg, cfg)
	if err != nil {
		logText, _ := os.ReadFile(d.log)
		t.Fatalf("Dial: %v\nsshd log:\n%s", err, logText)
	}
	defer c.Close()

	out, err := c.Output(ctx, "echo hello; id -un")
	if err != nil || !strings.HasSuffix(string(out), "hello\nroot\n") {
		t.Errorf("Output = %q, %v", out, err)
	}
	err = c.Run(ctx, "echo boom >&2; exit 7", nil, nil, nil)
	var ee *remote.ExitError
	if !errors.As(err, &ee) || ee.Status != 7 || !strings.Contains(ee.Stderr, "boom") {
		t.Errorf("want exit 7 with stderr boom, got %v", err)
	}

	dir := t.TempDir()
	dest := filepath.Join(dir, "app.conf")
	data := bytes.Repeat([]byte("line of config\n"), 100000)
	if err := c.WriteFile(ctx, dest, data, 0o640, "root"); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(dest)
	st, _ := os.Stat(dest)
	if sha256.Sum256(got) != sha256.Sum256(data) || st.Mode().Perm() != 0o640 {
		t.Errorf("uploaded file: %d bytes, mode %v", len(got), st.Mode().Perm())
	}
	if l := leftovers(t, dir); len(l) != 0 {
		t.Errorf("temporary files left: %v", l)
	}

	sock := filepath.Join(t.TempDir(), "admin.sock")
	echoServer(t, "unix", sock)
	conn, err := c.Dial(ctx, "unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, conn, "show servers state\n")

	// Cancellation really stops the command.
	pidFile := filepath.Join(t.TempDir(), "pid")
	rctx, rcancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() { errc <- c.Run(rctx, "echo $$ >"+pidFile+"; exec sleep 30", nil, nil, nil) }()
	var pid int
	eventually(t, "the remote command to start", func() bool {
		b, err := os.ReadFile(pidFile)
		pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil && pid > 0
	})
	rcancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("want context.Canceled, got %v", err)
	}
	// OpenSSH 9.2 refuses signal requests for sessions of root ("session
	// signalling requires privilege separation"), so the cancel must not
	// rely on one: the command is killed through a session of its own.
	eventually(t, "the remote process to exit", func() bool { return syscall.Kill(pid, 0) == syscall.ESRCH })
	// The connection survives the cancelled session.
	if out, err := c.Output(ctx, "echo still"); err != nil || !strings.HasSuffix(string(out), "still\n") {
		t.Errorf("command after cancel: %q, %v", out, err)
	}
}
