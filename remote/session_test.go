package remote_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rollout-sh/rollout/internal/shell"
	"github.com/rollout-sh/rollout/internal/transport"
	"github.com/rollout-sh/rollout/remote"
	"github.com/rollout-sh/rollout/remote/sshtest"
)

// sessionProtocol checks the host session against a connected client: the
// same cases run against the in-process server and against OpenSSH's sshd.
// sessions returns how many SSH sessions the server has seen.
func sessionProtocol(t *testing.T, c *remote.Client) {
	t.Run("output larger than pipe buffers on both streams", func(t *testing.T) {
		ctx := testCtx(t)
		var out, errb bytes.Buffer
		// 8 MiB on stdout, 2 MiB on stderr, interleaved: far beyond any
		// pipe or channel window, so neither stream may wait for the other.
		cmd := `i=0; while [ $i -lt 64 ]; do head -c 131072 /dev/zero | tr '\0' o; head -c 32768 /dev/zero | tr '\0' e >&2; i=$((i+1)); done`
		if err := c.Run(ctx, cmd, nil, &out, &errb); err != nil {
			t.Fatal(err)
		}
		if out.Len() != 8<<20 || errb.Len() != 2<<20 {
			t.Fatalf("got %d bytes of stdout and %d of stderr, want %d and %d", out.Len(), errb.Len(), 8<<20, 2<<20)
		}
		if strings.Trim(out.String(), "o") != "" || strings.Trim(errb.String(), "e") != "" {
			t.Error("the streams were mixed or carry marker bytes")
		}
	})

	t.Run("binary output and input stay byte exact and apart", func(t *testing.T) {
		ctx := testCtx(t)
		all := make([]byte, 0, 256*3)
		for i := range 256 {
			all = append(all, byte(i))
		}
		all = append(all, all...)
		random := make([]byte, 200000)
		rand.Read(random)
		in := append(append([]byte{}, all...), random...)
		var out, errb bytes.Buffer
		// stdin goes to stdout untouched; stderr gets it reversed in order
		// of streams, and no trailing newline anywhere.
		if err := c.Run(ctx, "cat; printf '\\000\\377no newline' >&2", bytes.NewReader(in), &out, &errb); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out.Bytes(), in) {
			t.Errorf("stdout: %d bytes back for %d sent, or different bytes", out.Len(), len(in))
		}
		if errb.String() != "\x00\xffno newline" {
			t.Errorf("stderr = %q", errb.String())
		}
		// A leading dash, percent signs, backslashes and quotes in stdin.
		odd := []byte("-n %s %% \\c 'x' \"y\"\n")
		out.Reset()
		if err := c.Run(ctx, "cat", bytes.NewReader(odd), &out, nil); err != nil || !bytes.Equal(out.Bytes(), odd) {
			t.Errorf("cat of %q = %q, %v", odd, out.Bytes(), err)
		}
		// Empty stdin is an empty stream, not the shell's.
		out.Reset()
		if err := c.Run(ctx, "wc -c", bytes.NewReader(nil), &out, nil); err != nil || strings.TrimSpace(out.String()) != "0" {
			t.Errorf("wc -c of empty stdin = %q, %v", out.String(), err)
		}
	})

	t.Run("hostile values stay data", func(t *testing.T) {
		ctx := testCtx(t)
		dir := t.TempDir()
		canary := filepath.Join(dir, "pwned")
		hostile := "a'b\"c $(touch " + canary + ") `touch " + canary + "`; touch " + canary + "\n' R x y z\nrollout-00000000000000000000000000000000E0\n"
		out, err := c.Output(ctx, "printf '%s' "+shell.Quote(hostile))
		if err != nil || string(out) != hostile {
			t.Errorf("Output = %q, %v; want the value verbatim", out, err)
		}
		if _, err := os.Stat(canary); err == nil {
			t.Error("a hostile value was executed")
		}
		// The shell still serves the next command.
		if out, err := c.Output(ctx, "echo next"); err != nil || string(out) != "next\n" {
			t.Errorf("next command = %q, %v", out, err)
		}
	})

	t.Run("a command that never ends stops at its deadline", func(t *testing.T) {
		pidFile := filepath.Join(t.TempDir(), "pid")
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		// The command ignores TERM and has a child: KILL must follow, and
		// the child must go too.
		err := c.Run(ctx, "trap '' TERM; sleep 300 & echo $! >"+pidFile+"; while :; do sleep 1; done", nil, nil, nil)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("want context.DeadlineExceeded, got %v", err)
		}
		b, rerr := os.ReadFile(pidFile)
		child, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		if rerr != nil || child <= 0 {
			t.Fatalf("the command did not record its child: %v", rerr)
		}
		eventually(t, "the command's child to be killed", func() bool { return syscall.Kill(child, 0) == syscall.ESRCH })
		if out, err := c.Output(testCtx(t), "echo alive"); err != nil || string(out) != "alive\n" {
			t.Errorf("command after the deadline = %q, %v", out, err)
		}
	})

	t.Run("a shell that dies mid-command is a lost host session", func(t *testing.T) {
		ctx := testCtx(t)
		var out bytes.Buffer
		// $PPID of the command is the session's shell.
		err := c.Run(ctx, "echo partial; kill -9 $PPID; sleep 5", nil, &out, nil)
		if !errors.Is(err, transport.ErrLost) {
			t.Fatalf("want transport.ErrLost, got %v", err)
		}
		var ee *remote.ExitError
		if errors.As(err, &ee) {
			t.Errorf("a dead shell must not look like the command's exit status: %v", err)
		}
		if !strings.Contains(err.Error(), "kill -9") {
			t.Errorf("error %q should name the command", err)
		}
		// The connection is fine: the next command gets a new shell.
		if out, err := c.Output(ctx, "echo again"); err != nil || string(out) != "again\n" {
			t.Errorf("command after the shell died = %q, %v", out, err)
		}
	})

	t.Run("concurrent commands on one host keep their output", func(t *testing.T) {
		ctx := testCtx(t)
		before := c.Stats().Sessions
		var wg sync.WaitGroup
		errs := make(chan error, 16)
		for i := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				want := strings.Repeat(fmt.Sprintf("<%d>", i), 5000)
				var out, errb bytes.Buffer
				err := c.Run(ctx, fmt.Sprintf("printf '%%s' %s; printf '%d' >&2; exit %d", shell.Quote(want), i, i%3), nil, &out, &errb)
				var ee *remote.ExitError
				switch {
				case i%3 != 0 && (!errors.As(err, &ee) || ee.Status != i%3):
					errs <- fmt.Errorf("command %d: want exit %d, got %.300v", i, i%3, err)
				case i%3 == 0 && err != nil:
					errs <- fmt.Errorf("command %d: %.300v", i, err)
				case out.String() != want || errb.String() != strconv.Itoa(i):
					errs <- fmt.Errorf("command %d: got %d bytes of stdout, stderr %q", i, out.Len(), errb.String())
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if opened := c.Stats().Sessions - before; opened > 4 {
			t.Errorf("%d sessions opened for 16 concurrent commands, want at most 4 shells", opened)
		}
	})
}

func TestSessionProtocolInProcess(t *testing.T) {
	noAgent(t)
	s := sshtest.New(t)
	c := dial(t, s, config(s))
	sessionProtocol(t, c)
}

func TestSessionProtocolOpenSSH(t *testing.T) {
	noAgent(t)
	d := startSSHD(t)
	tg := remote.Target{Name: "real", Address: "127.0.0.1", Port: d.port, User: "root", IdentityFiles: []string{d.clientKey}}
	c, err := remote.Dial(testCtx(t), tg, remote.Config{KnownHostsFile: d.knownHosts, ConnectTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sessionProtocol(t, c)
}

// A connection that drops under a command is transport.ErrLost, as is the
// next command on the dead client.
func TestDroppedConnectionIsLost(t *testing.T) {
	noAgent(t)
	s := sshtest.New(t)
	c := dial(t, s, config(s))
	ctx := testCtx(t)
	if _, err := c.Output(ctx, "true"); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- c.Run(ctx, "sleep 20", nil, nil, nil) }()
	time.Sleep(200 * time.Millisecond)
	s.DropConnections()
	select {
	case err := <-errc:
		if !errors.Is(err, transport.ErrLost) {
			t.Fatalf("want transport.ErrLost, got %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a dropped connection hung the command")
	}
	if err := c.Run(ctx, "true", nil, nil, nil); !errors.Is(err, transport.ErrLost) {
		t.Errorf("next command on a dead connection: want transport.ErrLost, got %v", err)
	}
}
