package fleet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Faults the reliability suite injects into a running fleet. Each one acts
// only on processes this fleet started (found by PID and checked by their
// config-path marker) or on files inside the fleet's directory.

// KillSSHD SIGKILLs host h's sshd listener and every connection it serves
// (its child processes), as a crashed or rebooted host would: established
// SSH connections drop at once and new ones are refused.
func (f *Fleet) KillSSHD(h Host) error {
	p, ok := f.process("sshd " + h.Name)
	if !ok {
		return fmt.Errorf("kill sshd %s: not started by this fleet", h.Name)
	}
	if !p.Running() {
		return fmt.Errorf("kill sshd %s: pid %d is not running", h.Name, p.PID)
	}
	// Connection children first: once the listener is gone they would be
	// re-parented and harder to find.
	for _, c := range childPIDs(p.PID) {
		_ = syscall.Kill(c, syscall.SIGKILL)
	}
	if err := syscall.Kill(p.PID, syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill sshd %s: %w", h.Name, err)
	}
	if !waitGone([]Process{p}, 5*time.Second) {
		return fmt.Errorf("kill sshd %s: pid %d did not exit", h.Name, p.PID)
	}
	return nil
}

// RestartSSHD starts host h's sshd again on the same port with the same
// host key (known_hosts stays valid), after KillSSHD.
func (f *Fleet) RestartSSHD(ctx context.Context, h Host) error {
	i := f.processIndex("sshd " + h.Name)
	if i < 0 {
		return fmt.Errorf("restart sshd %s: not started by this fleet", h.Name)
	}
	p := f.Processes[i]
	if p.Running() {
		return fmt.Errorf("restart sshd %s: pid %d still runs", h.Name, p.PID)
	}
	cfgPath := p.Marker
	np, exited, err := startProcess(p.Name, h.inNetns([]string{SSHD, "-D", "-f", cfgPath, "-E", p.Log}), p.Log, cfgPath, false)
	if err != nil {
		return err
	}
	f.Processes[i] = np
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := poll(wctx, p.Name, exited, 10*time.Millisecond, func() error { return sshBanner(h.Address(), h.SSHPort) }); err != nil {
		return fmt.Errorf("restart sshd %s: %w; see %s", h.Name, err, p.Log)
	}
	return nil
}

// AdminRelay is a unix socket that relays every connection to an HAProxy's
// admin socket. A plan that reaches the LB through it can be cut off the
// runtime API (Cut: the socket gone, every relayed connection closed) while
// HAProxy, and every client it serves, goes on untouched.
//
// (The fault used to be made on HAProxy's own socket: rename it, then
// "shutdown session ID" for each CLI session. That killed a client's HTTP
// request now and then — HAProxy's log: K---, killed by an admin — because
// a session ID is the stream's address, and a CLI session that ended
// between "show sess" and the shutdown had its address reused by an HTTP
// stream.)
type AdminRelay struct {
	Path   string // where rollout connects
	target string
	mu     sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]bool
}

// StartAdminRelay relays a socket beside HAProxy lb's admin socket to it.
// Cleanup closes it.
func (f *Fleet) StartAdminRelay(lb int) (*AdminRelay, error) {
	r := &AdminRelay{Path: f.HAProxySockets[lb] + ".relay", target: f.HAProxySockets[lb], conns: map[net.Conn]bool{}}
	if err := r.Restore(); err != nil {
		return nil, err
	}
	return r, nil
}

// Restore listens again after Cut.
func (r *AdminRelay) Restore() error {
	_ = os.Remove(r.Path)
	ln, err := net.Listen("unix", r.Path)
	if err != nil {
		return fmt.Errorf("admin relay: %w", err)
	}
	r.mu.Lock()
	r.ln = ln
	r.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("unix", r.target)
			if err != nil {
				c.Close()
				continue
			}
			r.mu.Lock()
			r.conns[c], r.conns[up] = true, true
			r.mu.Unlock()
			go r.pipe(c, up)
			go r.pipe(up, c)
		}
	}()
	return nil
}

func (r *AdminRelay) pipe(dst, src net.Conn) {
	_, _ = io.Copy(dst, src)
	dst.Close()
	src.Close()
	r.mu.Lock()
	delete(r.conns, dst)
	delete(r.conns, src)
	r.mu.Unlock()
}

// Cut removes the relay's socket and closes every connection through it:
// the runtime API is gone for whoever used the relay.
func (r *AdminRelay) Cut() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ln != nil {
		r.ln.Close()
		r.ln = nil
	}
	for c := range r.conns {
		c.Close()
	}
	r.conns = map[net.Conn]bool{}
	if err := os.Remove(r.Path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// Close is Cut, for cleanup.
func (r *AdminRelay) Close() { _ = r.Cut() }

func (f *Fleet) process(name string) (Process, bool) {
	if i := f.processIndex(name); i >= 0 {
		return f.Processes[i], true
	}
	return Process{}, false
}

func (f *Fleet) processIndex(name string) int {
	for i, p := range f.Processes {
		if p.Name == name {
			return i
		}
	}
	return -1
}

// childPIDs lists the processes whose parent is pid, from /proc.
func childPIDs(pid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range entries {
		c, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces and parentheses
		s := string(b)
		j := strings.LastIndexByte(s, ')')
		if j < 0 {
			continue
		}
		fields := strings.Fields(s[j+1:])
		if len(fields) > 1 {
			if pp, err := strconv.Atoi(fields[1]); err == nil && pp == pid {
				out = append(out, c)
			}
		}
	}
	return out
}

// delayShell is the shell a Delayable host's sshd hands its sessions as
// $SHELL (rollout runs every command as `$SHELL -c`): it sleeps for the
// duration in command-delay, if there is one, notes that in delayed.log,
// then runs the command with bash.
const delayShell = `#!/bin/sh
# written by rollout's internal/fleet: DelayCommands slows this host down
dir=$(dirname -- "$0")
if d=$(cat -- "$dir/command-delay" 2>/dev/null) && [ -n "$d" ]; then
	sleep "$d"
	echo "$d" >>"$dir/delayed.log"
fi
exec /bin/bash "$@"
`

// writeDelayShell writes delayShell into dir and returns the sshd_config
// line that makes it the sessions' $SHELL.
func writeDelayShell(dir string) (string, error) {
	p := filepath.Join(dir, "delay-shell")
	if err := os.WriteFile(p, []byte(delayShell), 0o755); err != nil {
		return "", fmt.Errorf("delay shell: %w", err)
	}
	return "SetEnv SHELL=" + p + "\n", nil
}

func (f *Fleet) delayDir(h Host) string { return filepath.Join(f.Dir, "hosts", h.Name, "ssh") }

// DelayCommands makes every command run on host h over SSH wait d before
// it starts (0: no delay), as on an overloaded host. h must be in
// Options.Delayable.
func (f *Fleet) DelayCommands(h Host, d time.Duration) error {
	if !h.Delayable {
		return fmt.Errorf("delay commands of %s: not in Options.Delayable", h.Name)
	}
	p := filepath.Join(f.delayDir(h), "command-delay")
	if d <= 0 {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("delay commands of %s: %w", h.Name, err)
		}
		return nil
	}
	if err := os.WriteFile(p, []byte(strconv.FormatFloat(d.Seconds(), 'f', 3, 64)+"\n"), 0o644); err != nil {
		return fmt.Errorf("delay commands of %s: %w", h.Name, err)
	}
	return nil
}

// DelayedCommands counts the commands that waited on host h so far.
func (f *Fleet) DelayedCommands(h Host) int {
	b, err := os.ReadFile(filepath.Join(f.delayDir(h), "delayed.log"))
	if err != nil {
		return 0
	}
	return strings.Count(string(b), "\n")
}
