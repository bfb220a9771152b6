package fleet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Process is one long-running process the fleet started and will stop.
type Process struct {
	Name string `json:"name"` // "sshd web1", "haproxy 1"
	PID  int    `json:"pid"`
	// Marker is a string the process's command line contains (its config
	// path). Stop and Running check it, so a recycled PID is never killed.
	Marker string `json:"marker"`
	Log    string `json:"log"`
}

// Running reports whether the process is alive (not a zombie) and still the
// one the fleet started.
func (p Process) Running() bool { return pidRunning(p.PID, p.Marker) }

// children tracks the processes started by this Go process, so that they are
// reaped (Wait) and Stop can wait on them directly.
var children sync.Map // pid -> chan struct{} closed when the process exited

// startProcess starts argv with stdin from /dev/null and stdout/stderr
// appended to logPath. detach puts it in its own session so it outlives this
// process; otherwise it is killed when this process dies.
func startProcess(name string, argv []string, logPath, marker string, detach bool) (Process, <-chan struct{}, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return Process{}, nil, fmt.Errorf("start %s: %w", name, err)
	}
	defer logf.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin = nil // /dev/null
	cmd.Stdout = logf
	cmd.Stderr = logf
	if detach {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	} else {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	}
	if err := cmd.Start(); err != nil {
		return Process{}, nil, fmt.Errorf("start %s: %w", name, err)
	}
	done := make(chan struct{})
	children.Store(cmd.Process.Pid, done)
	go func() {
		_ = cmd.Wait()
		close(done)
		children.Delete(cmd.Process.Pid)
	}()
	return Process{Name: name, PID: cmd.Process.Pid, Marker: marker, Log: logPath}, done, nil
}

// stopPIDs sends SIGTERM to every running pid, waits up to grace for them to
// exit, then sends SIGKILL to the rest and waits for those too.
func stopPIDs(procs []Process, grace time.Duration) error {
	var live []Process
	for _, p := range procs {
		if p.PID > 0 && p.Running() {
			live = append(live, p)
		}
	}
	for _, p := range live {
		if err := syscall.Kill(p.PID, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("stop %s (pid %d): %w", p.Name, p.PID, err)
		}
	}
	if waitGone(live, grace) {
		return nil
	}
	var errs []error
	for _, p := range live {
		if pidRunning(p.PID, "") {
			errs = append(errs, fmt.Errorf("stop %s (pid %d): still running %s after SIGTERM: killed", p.Name, p.PID, grace))
			_ = syscall.Kill(p.PID, syscall.SIGKILL)
		}
	}
	if !waitGone(live, 5*time.Second) {
		errs = append(errs, errors.New("processes survived SIGKILL"))
	}
	return errors.Join(errs...)
}

// waitGone waits until none of procs is running, or timeout.
func waitGone(procs []Process, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		gone := true
		for _, p := range procs {
			if ch, ok := children.Load(p.PID); ok {
				select {
				case <-ch.(chan struct{}):
					continue
				default:
				}
			} else if !pidRunning(p.PID, "") {
				continue
			}
			gone = false
			break
		}
		if gone {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// pidRunning reports whether pid exists, is not a zombie, and (when marker
// is not empty) has marker in its command line.
func pidRunning(pid int, marker string) bool {
	if pid <= 0 {
		return false
	}
	status, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "State:"); ok {
			if strings.HasPrefix(strings.TrimSpace(v), "Z") {
				return false
			}
			break
		}
	}
	if marker == "" {
		return true
	}
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return false
	}
	return bytes.Contains(bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}), []byte(marker))
}

// freePorts returns n distinct free TCP ports on 127.0.0.1. The listeners are
// all held until every port is chosen, so the ports are distinct; another
// process may still take one before it is used (callers retry).
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// poll calls ready every interval until it returns nil, the process behind
// exited is closed, or ctx ends.
func poll(ctx context.Context, what string, exited <-chan struct{}, interval time.Duration, ready func() error) error {
	var last error
	for {
		if last = ready(); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: not ready: %w (last: %v)", what, ctx.Err(), last)
		case <-exited:
			return fmt.Errorf("%s: %w (last: %v)", what, errExited, last)
		case <-time.After(interval):
		}
	}
}

var errExited = errors.New("process exited before it was ready")
