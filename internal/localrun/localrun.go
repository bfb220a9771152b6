// Package localrun runs shell commands on this machine. It satisfies the
// same small Runner interface as the SSH client, so code written against
// that interface can be tested against local directories, and the local
// test fleet can be driven without SSH.
package localrun

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Grace is how long a cancelled command's process group has between
// SIGTERM and SIGKILL.
const Grace = 3 * time.Second

// stderrTail is how much of a command's stderr an ExitError keeps.
const stderrTail = 4096

// Runner runs commands with sh -c on the local machine. The zero value is
// ready to use.
type Runner struct{}

// ExitError reports a command that exited with a non-zero status.
type ExitError struct {
	Status int    // exit status; 128+N when killed by signal N
	Stderr string // the last few KiB of stderr, trimmed
}

func (e *ExitError) Error() string {
	if e.Stderr == "" {
		return fmt.Sprintf("exit status %d", e.Status)
	}
	return fmt.Sprintf("exit status %d: %s", e.Status, e.Stderr)
}

// ExitStatus returns the command's exit status.
func (e *ExitError) ExitStatus() int { return e.Status }

// Run runs cmd with sh -c in a process group of its own. stdin, stdout and
// stderr may be nil. A non-zero exit returns *ExitError. When ctx ends, the
// group gets SIGTERM, then SIGKILL after Grace, and Run returns an error
// wrapping ctx.Err().
func (Runner) Run(ctx context.Context, cmd string, stdin io.Reader, stdout, stderr io.Writer) error {
	var mu sync.Mutex // stdout and stderr may be the same writer
	tail := &tailBuffer{max: stderrTail}
	c := exec.Command("sh", "-c", cmd)
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	c.Stdin = stdin
	if stdout != nil {
		c.Stdout = &lockedWriter{mu: &mu, w: stdout}
	}
	errw := io.Writer(tail)
	if stderr != nil {
		errw = io.MultiWriter(stderr, tail)
	}
	c.Stderr = &lockedWriter{mu: &mu, w: errw}
	// A background process that keeps stdout open must not hang Run.
	c.WaitDelay = Grace

	if err := ctx.Err(); err != nil {
		return fmt.Errorf("localrun: not started: %w", err)
	}
	if err := c.Start(); err != nil {
		return fmt.Errorf("localrun: start sh: %w", err)
	}
	pgid := c.Process.Pid
	done := make(chan struct{})
	killed := make(chan struct{})
	go func() {
		defer close(killed)
		select {
		case <-done:
			return
		case <-ctx.Done():
		}
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		t := time.NewTimer(Grace)
		defer t.Stop()
		select {
		case <-done:
		case <-t.C:
		}
		// Whatever of the group is left (the shell may have exited on
		// SIGTERM while a child ignored it) is killed now.
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	}()
	err := c.Wait()
	close(done)
	<-killed

	if ctx.Err() != nil {
		return fmt.Errorf("localrun: command interrupted: %w", ctx.Err())
	}
	if errors.Is(err, exec.ErrWaitDelay) {
		// The command succeeded; something it left running held the
		// output open.
		return nil
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		status := ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			status = 128 + int(ws.Signal())
		}
		mu.Lock()
		msg := strings.TrimSpace(tail.String())
		mu.Unlock()
		return &ExitError{Status: status, Stderr: msg}
	}
	if err != nil {
		return fmt.Errorf("localrun: %w", err)
	}
	return nil
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return string(t.buf) }
