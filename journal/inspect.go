package journal

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/rollout-sh/rollout/internal/shell"
)

// Inspection is what one command reads on a host: the plan's state marker
// and the sha256 of each live file.
type Inspection struct {
	State *HostState        // nil when the host has none
	Live  map[string]string // path → sha256 hex; "" for a missing file
}

// inspectSep separates the hashes from the state marker in the output.
const inspectSep = "=rollout-state="

// inspectScript prints one line per path (its sha256, or "-" when
// missing), then inspectSep, then "+" and current.json when present.
func inspectScript(statePath string, paths []string) string {
	var b strings.Builder
	if len(paths) > 0 {
		b.WriteString(hashScript(paths) + "\n")
	}
	b.WriteString(`echo ` + inspectSep + `
f=` + shell.Quote(statePath) + `
if [ -e "$f" ] || [ -L "$f" ]; then printf +; cat -- "$f"; fi`)
	return b.String()
}

// parseInspect reads inspectScript's output; runErr is the command's
// error, placed on the part that failed.
func parseInspect(statePath string, paths []string, out string, runErr error) (*Inspection, error) {
	hashes, state, ok := strings.Cut(out, inspectSep+"\n")
	if runErr != nil {
		if !ok && len(paths) > 0 {
			return nil, fmt.Errorf("hash files %s: %w", strings.Join(paths, ", "), runErr)
		}
		return nil, fmt.Errorf("read state %s: %w", statePath, runErr)
	}
	if !ok {
		return nil, fmt.Errorf("read state %s: unexpected output %q", statePath, clip(out))
	}
	live, err := parseHashes(paths, hashes)
	if err != nil {
		return nil, err
	}
	in := &Inspection{Live: live}
	if state != "" {
		var st HostState
		if err := json.Unmarshal([]byte(state[1:]), &st); err != nil {
			return nil, fmt.Errorf("read state %s: corrupt: %w", statePath, err)
		}
		in.State = &st
	}
	return in, nil
}

func clip(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}

// Inspect reads the state marker of plan and hashes paths, in one command.
func Inspect(ctx context.Context, r Runner, stateDir, plan string, paths []string) (*Inspection, error) {
	p, err := StatePath(stateDir, plan)
	if err != nil {
		return nil, fmt.Errorf("read state: %w", err)
	}
	out, err := run(ctx, r, inspectScript(p, paths), nil)
	return parseInspect(p, paths, out, err)
}

// AcquireHostLockAndInspect is AcquireHostLock followed by Inspect. When
// the lock is free (the common case) both happen in one command; a held
// or stale lock goes through AcquireHostLock's full protocol first.
// locked says whether the lock is held when it returns: an error with
// locked true is the inspection's, and the caller must release the lock.
func AcquireHostLockAndInspect(ctx context.Context, r Runner, where, stateDir, plan string, info LockInfo, now time.Time, paths []string) (in *Inspection, locked bool, err error) {
	s, err := newHostStore(r, stateDir, plan)
	if err != nil {
		return nil, false, fmt.Errorf("lock: %w", err)
	}
	p, err := StatePath(stateDir, plan)
	if err != nil {
		return nil, false, fmt.Errorf("read state: %w", err)
	}
	s.after = inspectScript(p, paths)
	if err := acquire(ctx, s, where, plan, info, now); err != nil {
		return nil, false, err
	}
	if s.afterRan {
		in, err = parseInspect(p, paths, s.afterOut, s.afterErr)
		return in, true, err
	}
	in, err = Inspect(ctx, r, stateDir, plan, paths)
	return in, true, err
}
