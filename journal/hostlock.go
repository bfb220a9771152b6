package journal

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/rollout-sh/rollout/internal/shell"
)

// AcquireHostLock takes the lock of plan on a host: <stateDir>/<plan>/lock/.
// where names the host in a *LockedError, returned when another run holds
// the lock and it has not expired at now. An expired lock, or one whose
// info is unreadable and whose directory is older than info.TTL, is taken
// over; of several racing takers exactly one wins. Acquiring a lock this
// run (info.RunID) already holds refreshes it. info.Acquired and
// info.Renewed are set to now; a zero info.TTL means DefaultLockTTL.
func AcquireHostLock(ctx context.Context, r Runner, where, stateDir, plan string, info LockInfo, now time.Time) error {
	s, err := newHostStore(r, stateDir, plan)
	if err != nil {
		return fmt.Errorf("lock: %w", err)
	}
	return acquire(ctx, s, where, plan, info, now)
}

// RenewHostLock sets the lock's renewal time to now (and its TTL to
// info.TTL when non-zero), provided the run info.RunID still holds it;
// otherwise the error wraps ErrNotHeld.
func RenewHostLock(ctx context.Context, r Runner, stateDir, plan string, info LockInfo, now time.Time) error {
	s, err := newHostStore(r, stateDir, plan)
	if err != nil {
		return fmt.Errorf("renew lock: %w", err)
	}
	return renew(ctx, s, info, now)
}

// ReleaseHostLock removes the lock if the run runID holds it. No lock is
// not an error; another run's lock is left alone and the error wraps
// ErrNotHeld.
func ReleaseHostLock(ctx context.Context, r Runner, stateDir, plan, runID string) error {
	s, err := newHostStore(r, stateDir, plan)
	if err != nil {
		return fmt.Errorf("release lock: %w", err)
	}
	if done, err := s.quickRelease(ctx, runID); err != nil {
		return fmt.Errorf("release lock %s: %w", s.path(), err)
	} else if done {
		return nil
	}
	return release(ctx, s, runID)
}

// quickRelease removes the lock in one command when it is plainly ours:
// under the lock's .busy mutex (as cas takes it), info.json names runID.
// Anything else (no lock, another holder, a busy or unreadable lock) is
// left to the full protocol; done is false then.
func (s *hostStore) quickRelease(ctx context.Context, runID string) (bool, error) {
	id, err := json.Marshal(runID)
	if err != nil {
		return false, err
	}
	script := s.vars() + "g=" + shell.Quote(s.gone()) + "; id=" + shell.Quote(`"run_id":`+string(id)) + `
[ -d "$L" ] || { echo slow; exit 0; }
mkdir -- "$B" 2>/dev/null || { echo slow; exit 0; }
if [ -f "$I" ] && grep -qF -- "$id" "$I"; then
  mv -- "$L" "$g"
  rm -rf -- "$g"
  echo released
else
  rmdir -- "$B"
  echo slow
fi`
	out, err := run(ctx, s.r, script, nil)
	if err != nil {
		return false, err
	}
	return strings.TrimSpace(out) == "released", nil
}

// ReadHostLock returns who holds the lock, or nil when there is none. A
// lock whose info.json is missing or corrupt returns an error wrapping
// ErrLockUnreadable.
func ReadHostLock(ctx context.Context, r Runner, stateDir, plan string) (*LockInfo, error) {
	s, err := newHostStore(r, stateDir, plan)
	if err != nil {
		return nil, fmt.Errorf("read lock: %w", err)
	}
	return read(ctx, s)
}

// BreakHostLock removes the lock whoever holds it (`rollout unlock`). No
// lock is not an error.
func BreakHostLock(ctx context.Context, r Runner, stateDir, plan string) error {
	s, err := newHostStore(r, stateDir, plan)
	if err != nil {
		return fmt.Errorf("break lock: %w", err)
	}
	if err := s.breakLock(ctx); err != nil {
		return fmt.Errorf("break lock %s: %w", s.path(), err)
	}
	return nil
}

type hostStore struct {
	r       Runner
	planDir string
	lock    string

	// after, when set, runs in the same command as a successful create;
	// its output and error are kept in afterOut and afterErr.
	after    string
	afterRan bool
	afterOut string
	afterErr error
}

func newHostStore(r Runner, stateDir, plan string) (*hostStore, error) {
	dir, err := PlanDir(stateDir, plan)
	if err != nil {
		return nil, err
	}
	return &hostStore{r: r, planDir: dir, lock: path.Join(dir, LockDir)}, nil
}

func (s *hostStore) path() string { return s.lock }

// vars starts every lock script.
func (s *hostStore) vars() string {
	return "set -e; umask 077\nd=" + shell.Quote(s.planDir) + "; L=" + shell.Quote(s.lock) +
		`; B="$L/` + busyDir + `"; I="$L/` + LockInfoFile + `"` + "\n"
}

func (s *hostStore) create(ctx context.Context, info []byte) (bool, error) {
	script := s.vars() + `mkdir -p -- "$d"
if e=$(mkdir -- "$L" 2>&1); then
  trap 'rm -rf -- "$L"' EXIT
  trap 'exit 1' HUP INT TERM
  ` + receive(`"$L/.info.tmp"`, info) + `
  mv -f -- "$L/.info.tmp" "$I"
  trap - EXIT
  echo created` + s.afterScript() + `
elif [ -d "$L" ]; then
  echo exists
elif [ -e "$L" ]; then
  printf '%s exists and is not a directory\n' "$L" >&2; exit 1
else
  case $e in *xists*) echo exists ;; *) printf '%s\n' "$e" >&2; exit 1 ;; esac
fi`
	out, err := run(ctx, s.r, script, bytes.NewReader(info))
	if rest, ok := strings.CutPrefix(out, "created\n"); ok && s.after != "" {
		s.afterRan, s.afterOut, s.afterErr = true, rest, err
		return true, nil
	}
	if err != nil {
		return false, err
	}
	switch strings.TrimSpace(out) {
	case "created":
		return true, nil
	case "exists":
		return false, nil
	}
	return false, fmt.Errorf("unexpected output %q", out)
}

// afterScript runs s.after in a subshell of its own, after the lock
// exists, with the script's exit status.
func (s *hostStore) afterScript() string {
	if s.after == "" {
		return ""
	}
	return "\n  set +e\n  (\n" + s.after + "\n  )\n  exit $?"
}

// status prints "absent", or "held AGE", "free" or "busy AGE", then
// "+" and info.json when present. Ages are seconds by the host's clock.
func (s *hostStore) status(ctx context.Context) (lockState, error) {
	script := s.vars() + `if stat -c %Y / >/dev/null 2>&1; then
  mt() { stat -c %Y -- "$1" 2>/dev/null || echo x; }
else
  mt() { stat -f %m -- "$1" 2>/dev/null || echo x; }
fi
[ -d "$L" ] || { echo absent; exit 0; }
now=$(date +%s)
m=$(mt "$L")
[ "$m" != x ] || { echo absent; exit 0; }
echo "held $((now - m))"
b=x
[ ! -d "$B" ] || b=$(mt "$B")
if [ "$b" = x ]; then echo free; else echo "busy $((now - b))"; fi
if [ -f "$I" ]; then printf +; cat -- "$I"; fi`
	out, err := run(ctx, s.r, script, nil)
	if err != nil {
		return lockState{}, err
	}
	var st lockState
	first, rest, _ := strings.Cut(out, "\n")
	if first == "absent" {
		return st, nil
	}
	age, ok := parseAge(first, "held ")
	if !ok {
		return st, fmt.Errorf("unexpected lock status %q", out)
	}
	st.held, st.age = true, age
	second, rest, _ := strings.Cut(rest, "\n")
	if second != "free" {
		if st.busyAge, ok = parseAge(second, "busy "); !ok {
			return st, fmt.Errorf("unexpected lock status %q", out)
		}
		st.busy = true
	}
	if raw, ok := strings.CutPrefix(rest, "+"); ok {
		st.raw = []byte(raw)
		st.info = parseInfo(st.raw)
	}
	return st, nil
}

func parseAge(line, prefix string) (time.Duration, bool) {
	v, ok := strings.CutPrefix(line, prefix)
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, false
	}
	return time.Duration(n) * time.Second, true
}

func (s *hostStore) cas(ctx context.Context, want string, info []byte) (casResult, error) {
	change := `rm -f -- "$L/.info.tmp"
` + receive(`"$L/.info.tmp"`, info) + `
mv -f -- "$L/.info.tmp" "$I"`
	if info == nil {
		// $B leaves with the lock: the EXIT trap must not remove a .busy
		// of a lock made after this one is gone.
		change = `trap - EXIT
mv -- "$L" "$g"
rm -rf -- "$g"`
	}
	script := s.vars() + "want=" + shell.Quote(want) + "; g=" + shell.Quote(s.gone()) + `
` + hashFunc + `if ! e=$(mkdir -- "$B" 2>&1); then
  if [ -d "$B" ]; then echo busy; exit 0; fi
  if [ ! -d "$L" ]; then echo changed; exit 0; fi
  case $e in *xists*) echo busy; exit 0 ;; esac
  printf '%s\n' "$e" >&2; exit 1
fi
trap 'rmdir -- "$B" 2>/dev/null || :' EXIT
trap 'exit 1' HUP INT TERM
s=none
if [ -f "$I" ]; then s=$(h < "$I"); s=${s%% *}; fi
if [ "$s" != "$want" ]; then echo changed; exit 0; fi
` + change + `
echo ok`
	stdin := bytes.NewReader(info)
	out, err := run(ctx, s.r, script, stdin)
	if err != nil {
		return 0, err
	}
	switch strings.TrimSpace(out) {
	case "ok":
		return casOK, nil
	case "busy":
		return casBusy, nil
	case "changed":
		return casChanged, nil
	}
	return 0, fmt.Errorf("unexpected output %q", out)
}

func (s *hostStore) breakLock(ctx context.Context) error {
	script := s.vars() + "g=" + shell.Quote(s.gone()) + `
if [ -e "$L" ] || [ -L "$L" ]; then mv -- "$L" "$g"; rm -rf -- "$g"; fi`
	_, err := run(ctx, s.r, script, nil)
	return err
}

// gone is a unique name the lock directory is moved to before it is
// removed, so that nobody sees a half-removed lock.
func (s *hostStore) gone() string {
	return path.Join(s.planDir, ".lock.gone."+token())
}
