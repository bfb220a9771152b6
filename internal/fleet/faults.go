package fleet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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
	np, exited, err := startProcess(p.Name, []string{SSHD, "-D", "-f", cfgPath, "-E", p.Log}, p.Log, cfgPath, false)
	if err != nil {
		return err
	}
	f.Processes[i] = np
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := poll(wctx, p.Name, exited, 10*time.Millisecond, func() error { return sshBanner(h.SSHPort) }); err != nil {
		return fmt.Errorf("restart sshd %s: %w; see %s", h.Name, err, p.Log)
	}
	return nil
}

// MoveAdminSocket renames HAProxy lb's admin socket away (the LB's runtime
// API is then unreachable at its configured path) and returns a function
// that puts it back. Connections already open would outlive the rename
// (rollout keeps its runtime API connections for the run), so it also ends
// every CLI session HAProxy has: the socket is gone for everyone.
func (f *Fleet) MoveAdminSocket(lb int) (restore func() error, err error) {
	sock := f.HAProxySockets[lb]
	away := sock + ".moved-away"
	if err := os.Rename(sock, away); err != nil {
		return nil, fmt.Errorf("move admin socket %s: %w", sock, err)
	}
	restore = func() error { return os.Rename(away, sock) }
	out, err := adminCommand(away, "show sess")
	if err != nil {
		return nil, errors.Join(fmt.Errorf("move admin socket %s: list its sessions: %w", sock, err), restore())
	}
	var cmds []string
	for _, line := range strings.Split(out, "\n") {
		if id, _, ok := strings.Cut(line, ":"); ok && strings.Contains(line, " fe=GLOBAL ") {
			cmds = append(cmds, "shutdown session "+id)
		}
	}
	if len(cmds) > 0 {
		if _, err := adminCommand(away, strings.Join(cmds, ";")); err != nil {
			return nil, errors.Join(fmt.Errorf("move admin socket %s: end its sessions: %w", sock, err), restore())
		}
	}
	return restore, nil
}

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
