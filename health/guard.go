package health

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/rollout-sh/rollout/internal/cmdout"
	"github.com/rollout-sh/rollout/internal/shell"
)

// Guard is a flap guard: the process must not restart during the health
// window. Baseline records the process as it is after the restart; Check
// fails when it has changed since (a new pid, a systemd restart, or gone).
type Guard interface {
	Baseline(ctx context.Context) error
	Check(ctx context.Context) error
}

// PidFile guards the process whose pid is in path on the host (for hosts
// without systemd): the pid must stay the same and the process alive.
func PidFile(r Runner, path string) Guard {
	return &pidFile{r: r, path: path}
}

type pidFile struct {
	r    Runner
	path string

	mu   sync.Mutex
	base int
}

// read returns the pid in the file and whether that process is alive
// (kill -0, or /proc/PID for a process of another user).
func (g *pidFile) read(ctx context.Context) (int, bool, error) {
	cmd := "p=$(cat -- " + shell.Quote(g.path) + ") || exit 1; " +
		`printf '%s\n' "$p"; ` +
		`case $p in *[!0-9]*|'') echo unknown; exit 0;; esac; ` +
		`if kill -0 "$p" 2>/dev/null || [ -d "/proc/$p" ]; then echo running; else echo stopped; fi`
	out, err := run(ctx, g.r, cmd)
	if err != nil {
		// The command itself is noise; say what was read.
		return 0, false, fmt.Errorf("pid file %s: %w", g.path, unwrapCommand(err, cmd))
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	pid, perr := strconv.Atoi(strings.TrimSpace(lines[0]))
	if perr != nil || pid <= 0 || len(lines) != 2 {
		return 0, false, fmt.Errorf("pid file %s holds %q, want a pid", g.path, cmdout.Clip(strings.TrimSpace(lines[0]), 40))
	}
	return pid, strings.TrimSpace(lines[1]) == "running", nil
}

func (g *pidFile) Baseline(ctx context.Context) error {
	pid, alive, err := g.read(ctx)
	if err != nil {
		return err
	}
	if !alive {
		return fmt.Errorf("pid %d (from %s) is not running", pid, g.path)
	}
	g.mu.Lock()
	g.base = pid
	g.mu.Unlock()
	return nil
}

func (g *pidFile) Check(ctx context.Context) error {
	g.mu.Lock()
	base := g.base
	g.mu.Unlock()
	if base == 0 {
		return fmt.Errorf("pid file %s: no baseline", g.path)
	}
	pid, alive, err := g.read(ctx)
	switch {
	case err != nil:
		return err
	case pid != base:
		return fmt.Errorf("pid %d → %d", base, pid)
	case !alive:
		return fmt.Errorf("pid %d is not running", pid)
	}
	return nil
}

// SystemdUnit guards a systemd unit: NRestarts must not grow and MainPID
// must not change (a manual or scripted restart leaves NRestarts alone but
// changes the pid).
func SystemdUnit(r Runner, unit string) Guard {
	return &systemdUnit{r: r, unit: unit}
}

type systemdUnit struct {
	r    Runner
	unit string

	mu            sync.Mutex
	have          bool
	pid, restarts int
	restartsKnown bool
}

func (g *systemdUnit) read(ctx context.Context) (pid, restarts int, restartsKnown bool, err error) {
	cmd := "systemctl show -p NRestarts -p MainPID " + shell.Quote(g.unit)
	out, err := run(ctx, g.r, cmd)
	if err != nil {
		return 0, 0, false, fmt.Errorf("unit %s: %w", g.unit, err)
	}
	havePID := false
	for _, line := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok {
			continue
		}
		n, nerr := strconv.Atoi(v)
		switch k {
		case "MainPID":
			if nerr != nil {
				return 0, 0, false, fmt.Errorf("unit %s: MainPID=%q is not a number", g.unit, v)
			}
			pid, havePID = n, true
		case "NRestarts":
			if nerr == nil { // older systemd has no NRestarts; its value is then empty
				restarts, restartsKnown = n, true
			}
		}
	}
	if !havePID {
		return 0, 0, false, fmt.Errorf("unit %s: systemctl show printed no MainPID: %q", g.unit, cmdout.Clip(strings.TrimSpace(out), 120))
	}
	return pid, restarts, restartsKnown, nil
}

func (g *systemdUnit) Baseline(ctx context.Context) error {
	pid, restarts, known, err := g.read(ctx)
	if err != nil {
		return err
	}
	if pid == 0 {
		return fmt.Errorf("unit %s is not running (MainPID=0)", g.unit)
	}
	g.mu.Lock()
	g.have, g.pid, g.restarts, g.restartsKnown = true, pid, restarts, known
	g.mu.Unlock()
	return nil
}

func (g *systemdUnit) Check(ctx context.Context) error {
	g.mu.Lock()
	have, base, baseRestarts, known := g.have, g.pid, g.restarts, g.restartsKnown
	g.mu.Unlock()
	if !have {
		return fmt.Errorf("unit %s: no baseline", g.unit)
	}
	pid, restarts, nowKnown, err := g.read(ctx)
	switch {
	case err != nil:
		return err
	case known && nowKnown && restarts > baseRestarts:
		return fmt.Errorf("unit %s restarted %d %s", g.unit, restarts-baseRestarts, plural(restarts-baseRestarts, "time", "times"))
	case pid == 0:
		return fmt.Errorf("unit %s: pid %d is not running", g.unit, base)
	case pid != base:
		return fmt.Errorf("unit %s: pid %d → %d", g.unit, base, pid)
	}
	return nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// unwrapCommand drops the shell text from an error made by run, keeping
// the exit status and what the command printed.
func unwrapCommand(err error, cmd string) error {
	msg := strings.TrimPrefix(err.Error(), cmd+": ")
	return &wrapped{msg: msg, err: err}
}

type wrapped struct {
	msg string
	err error
}

func (w *wrapped) Error() string { return w.msg }
func (w *wrapped) Unwrap() error { return w.err }
