package localrun

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestRunExitStatus(t *testing.T) {
	tests := []struct {
		name       string
		cmd        string
		stdin      string
		wantOut    string
		wantStatus int // 0: no error expected
		wantStderr string
	}{
		{name: "success", cmd: "echo hi", wantOut: "hi\n"},
		{name: "exit 3 keeps stderr", cmd: "echo oops >&2; exit 3", wantStatus: 3, wantStderr: "oops"},
		{name: "stdin reaches the command", cmd: "tr a-z A-Z", stdin: "hello world", wantOut: "HELLO WORLD"},
		{name: "killed by signal", cmd: "kill -9 $$", wantStatus: 128 + 9},
		{name: "command not found", cmd: "no-such-command-xyz", wantStatus: 127, wantStderr: "not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			err := Runner{}.Run(context.Background(), tt.cmd, strings.NewReader(tt.stdin), &out, &errb)
			if tt.wantStatus == 0 {
				if err != nil {
					t.Fatalf("Run: %v", err)
				}
				if out.String() != tt.wantOut {
					t.Errorf("stdout = %q, want %q", out.String(), tt.wantOut)
				}
				return
			}
			var st interface{ ExitStatus() int }
			if !errors.As(err, &st) {
				t.Fatalf("Run error %v (%T) has no ExitStatus", err, err)
			}
			if st.ExitStatus() != tt.wantStatus {
				t.Errorf("ExitStatus = %d, want %d", st.ExitStatus(), tt.wantStatus)
			}
			var ee *ExitError
			if !errors.As(err, &ee) {
				t.Fatalf("error is %T, want *ExitError", err)
			}
			if !strings.Contains(ee.Stderr, tt.wantStderr) {
				t.Errorf("ExitError.Stderr = %q, want it to contain %q", ee.Stderr, tt.wantStderr)
			}
			if !strings.Contains(errb.String(), tt.wantStderr) {
				t.Errorf("stderr writer got %q, want it to contain %q", errb.String(), tt.wantStderr)
			}
		})
	}
}

func TestRunSameWriterForStdoutAndStderr(t *testing.T) {
	var b bytes.Buffer
	if err := (Runner{}).Run(context.Background(), "echo a; echo b >&2; echo c", nil, &b, &b); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"a\n", "b\n", "c\n"} {
		if !strings.Contains(b.String(), w) {
			t.Errorf("output %q lacks %q", b.String(), w)
		}
	}
}

// readyWriter closes ready when it has seen the word "ready".
type readyWriter struct {
	buf   bytes.Buffer
	ready chan struct{}
	seen  bool
}

func (w *readyWriter) Write(p []byte) (int, error) {
	w.buf.Write(p)
	if !w.seen && strings.Contains(w.buf.String(), "ready") {
		w.seen = true
		close(w.ready)
	}
	return len(p), nil
}

func TestRunCancelKillsProcessGroup(t *testing.T) {
	tests := []struct {
		name string
		cmd  string
	}{
		// The shell and a background child both get SIGTERM.
		{name: "sigterm", cmd: `sleep 300 & echo $! > "$PIDFILE"; echo ready; wait`},
		// A child that ignores SIGTERM is killed after the grace period.
		{name: "sigkill after grace", cmd: `(trap '' TERM; echo $$ > /dev/null; sleep 300) & echo $! > "$PIDFILE"; trap '' TERM; echo ready; wait`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pidfile := filepath.Join(t.TempDir(), "pid")
			t.Setenv("PIDFILE", pidfile)
			ctx, cancel := context.WithCancel(context.Background())
			w := &readyWriter{ready: make(chan struct{})}
			errc := make(chan error, 1)
			go func() { errc <- Runner{}.Run(ctx, tt.cmd, nil, w, nil) }()
			select {
			case <-w.ready:
			case err := <-errc:
				t.Fatalf("command ended before it was ready: %v", err)
			}
			cancel()
			err := <-errc
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Run error = %v, want context.Canceled", err)
			}
			b, err := os.ReadFile(pidfile)
			if err != nil {
				t.Fatal(err)
			}
			pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil {
				t.Fatal(err)
			}
			// Death after SIGKILL is not instant; wait for it, bounded.
			for i := 0; alive(pid); i++ {
				if i == 500 {
					t.Fatalf("background child %d still running after cancel", pid)
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}

func TestRunCancelledBeforeStart(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dir := t.TempDir()
	err := Runner{}.Run(ctx, "touch "+filepath.Join(dir, "x"), nil, nil, nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "x")); err == nil {
		t.Error("command ran although ctx was already cancelled")
	}
}

// alive reports whether pid exists and is not a zombie waiting for a
// reaper that never comes (PID 1 in a container may not reap).
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return !(i > 0 && len(s) > i+2 && s[i+2] == 'Z')
}
