package journal

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/rollout-sh/rollout/internal/clock"
)

// Lock layout: <state_dir>/<plan>/lock/ is a directory made with mkdir,
// so only one run can create it. It holds info.json (LockInfo). Changes to
// an existing lock (renewal, release, taking over an expired one) are made
// while holding lock/.busy, another mkdir'd directory: whoever made it
// checks that info.json is still byte for byte what it decided on, then
// changes it. A stale lock is taken over in place, so two takers that both
// saw it expired cannot both win: the second finds info.json changed.
const (
	LockDir      = "lock"
	LockInfoFile = "info.json"
	busyDir      = ".busy"
)

// DefaultLockTTL is the lock lifetime when LockInfo.TTL is zero. A run
// renews its locks well within it (every TTL/3, say).
const DefaultLockTTL = 2 * time.Minute

// stuckBusy is how old lock/.busy must be before it is reported as left by
// an interrupted change instead of waited for.
const stuckBusy = 30 * time.Second

// Errors callers branch on.
var (
	// ErrNotHeld: renew or release of a lock that this run does not hold
	// (any more): it is gone, or another run holds it.
	ErrNotHeld = errors.New("lock not held by this run")
	// ErrLockUnreadable: the lock exists but its info.json is missing or
	// corrupt.
	ErrLockUnreadable = errors.New("lock info unreadable")
)

// LockInfo says who holds a lock. Times are the controller's clock.
type LockInfo struct {
	Owner    string // user@controller-host
	PID      int
	RunID    string
	Acquired time.Time
	Renewed  time.Time
	TTL      time.Duration
}

// Expired reports whether the lock was last renewed more than its TTL
// before now.
func (l LockInfo) Expired(now time.Time) bool {
	return l.Renewed.Add(l.ttl()).Before(now)
}

func (l LockInfo) ttl() time.Duration {
	if l.TTL <= 0 {
		return DefaultLockTTL
	}
	return l.TTL
}

type lockInfoJSON struct {
	Owner    string `json:"owner"`
	PID      int    `json:"pid"`
	RunID    string `json:"run_id"`
	Acquired string `json:"acquired"`
	Renewed  string `json:"renewed"`
	TTL      string `json:"ttl"`
}

// MarshalJSON writes times as RFC 3339 in UTC and the TTL as a Go
// duration ("2m0s").
func (l LockInfo) MarshalJSON() ([]byte, error) {
	return json.Marshal(lockInfoJSON{
		Owner:    l.Owner,
		PID:      l.PID,
		RunID:    l.RunID,
		Acquired: l.Acquired.UTC().Format(time.RFC3339),
		Renewed:  l.Renewed.UTC().Format(time.RFC3339),
		TTL:      l.ttl().String(),
	})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (l *LockInfo) UnmarshalJSON(b []byte) error {
	var j lockInfoJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	if j.RunID == "" {
		return errors.New("no run_id")
	}
	acq, err := time.Parse(time.RFC3339, j.Acquired)
	if err != nil {
		return fmt.Errorf("acquired: %w", err)
	}
	ren, err := time.Parse(time.RFC3339, j.Renewed)
	if err != nil {
		return fmt.Errorf("renewed: %w", err)
	}
	ttl, err := time.ParseDuration(j.TTL)
	if err != nil {
		return fmt.Errorf("ttl: %w", err)
	}
	*l = LockInfo{Owner: j.Owner, PID: j.PID, RunID: j.RunID, Acquired: acq, Renewed: ren, TTL: ttl}
	return nil
}

// LockedError is the refusal when another run holds a plan's lock.
type LockedError struct {
	Plan  string
	Where string   // host name, or "local"
	Path  string   // the lock directory
	Info  LockInfo // zero RunID when info.json was unreadable
	Now   time.Time
}

func (e *LockedError) Error() string {
	where := "on " + e.Where
	if e.Where == "local" {
		where = "locally"
	}
	acq := e.Info.Acquired.UTC()
	since := acq.Format("15:04:05 UTC")
	if acq.Format(time.DateOnly) != e.Now.UTC().Format(time.DateOnly) {
		since = acq.Format("2006-01-02 15:04:05 UTC")
	}
	if e.Info.RunID == "" {
		return fmt.Sprintf("plan %s is locked %s by an unknown run (%s unreadable) since %s; if that run is dead, wait for expiry or run `rollout unlock`",
			e.Plan, where, LockInfoFile, since)
	}
	return fmt.Sprintf("plan %s is locked %s by %s (run %s, pid %d) since %s, renewed %s ago, expires in %s; if that run is dead, wait for expiry or run `rollout unlock`",
		e.Plan, where, e.Info.Owner, e.Info.RunID, e.Info.PID, since,
		humanDuration(e.Now.Sub(e.Info.Renewed)), humanDuration(e.Info.Renewed.Add(e.Info.ttl()).Sub(e.Now)))
}

func humanDuration(d time.Duration) string {
	d = max(d.Round(time.Second), 0)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d/time.Minute), int(d%time.Minute/time.Second))
	default:
		return fmt.Sprintf("%dh%02dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
	}
}

// lockState is a lock directory as seen at one moment.
type lockState struct {
	held    bool
	age     time.Duration // of the lock directory
	busy    bool
	busyAge time.Duration
	raw     []byte    // info.json; nil when missing
	info    *LockInfo // nil when missing or corrupt
}

// want is what a compare-and-swap compares info.json against.
func (s lockState) want() string {
	if s.raw == nil {
		return "none"
	}
	h := sha256.Sum256(s.raw)
	return hex.EncodeToString(h[:])
}

type casResult int

const (
	casOK      casResult = iota
	casBusy              // another change holds lock/.busy
	casChanged           // info.json (or the lock) is not what was expected
)

// lockStore is one place a lock lives: a host's state dir (through a
// Runner) or the local one (through the filesystem).
type lockStore interface {
	path() string
	// create makes the lock directory holding info; created is false when
	// it already exists.
	create(ctx context.Context, info []byte) (created bool, err error)
	status(ctx context.Context) (lockState, error)
	// cas replaces info.json with info, or removes the lock when info is
	// nil, provided info.json still hashes to want.
	cas(ctx context.Context, want string, info []byte) (casResult, error)
	breakLock(ctx context.Context) error
}

const lockAttempts = 6

// takeoverHook is a test seam: it runs after a taker has decided that a
// lock is stale and before it tries to take it over; done runs after the
// attempt.
var takeoverHook = func() (done func()) { return func() {} }

func acquire(ctx context.Context, s lockStore, where, plan string, info LockInfo, now time.Time) error {
	if info.RunID == "" {
		return fmt.Errorf("lock %s: acquire: empty run id", s.path())
	}
	info.TTL = info.ttl()
	info.Acquired, info.Renewed = now, now
	b, err := json.Marshal(info)
	if err != nil {
		return fmt.Errorf("lock %s: %w", s.path(), err)
	}
	var last error
	for attempt := range lockAttempts {
		if attempt > 0 {
			if err := backoff(ctx, attempt); err != nil {
				return fmt.Errorf("lock %s: %w", s.path(), err)
			}
		}
		next := b
		created, err := s.create(ctx, b)
		if err != nil {
			return fmt.Errorf("lock %s: %w", s.path(), err)
		}
		if created {
			return nil
		}
		st, err := s.status(ctx)
		if err != nil {
			return fmt.Errorf("lock %s: %w", s.path(), err)
		}
		if !st.held {
			continue // released meanwhile: try mkdir again
		}
		locked := &LockedError{Plan: plan, Where: where, Path: s.path(), Now: now}
		switch {
		case st.info != nil && st.info.RunID == info.RunID:
			// Ours already (a retried acquire): refresh it.
			n := *st.info
			n.Renewed, n.TTL = now, info.TTL
			if next, err = json.Marshal(n); err != nil {
				return fmt.Errorf("lock %s: %w", s.path(), err)
			}
		case st.info != nil:
			locked.Info = *st.info
			if !st.info.Expired(now) {
				return locked
			}
		default:
			// Unreadable: the holder may be between mkdir and writing
			// info.json; only a lock older than a TTL is stale.
			locked.Info.Acquired = now.Add(-st.age)
			if st.age <= info.TTL {
				return locked
			}
		}
		last = locked
		if st.busy {
			if st.busyAge > stuckBusy {
				return stuckError(s, st)
			}
			continue
		}
		done := takeoverHook()
		res, err := s.cas(ctx, st.want(), next)
		done()
		if err != nil {
			return fmt.Errorf("lock %s: take over: %w", s.path(), err)
		}
		if res == casOK {
			return nil
		}
	}
	return last
}

func stuckError(s lockStore, st lockState) error {
	return fmt.Errorf("lock %s: %s/%s is %s old: a change to the lock was interrupted; run `rollout unlock`",
		s.path(), s.path(), busyDir, humanDuration(st.busyAge))
}

func renew(ctx context.Context, s lockStore, info LockInfo, now time.Time) error {
	for attempt := range lockAttempts {
		if attempt > 0 {
			if err := backoff(ctx, attempt); err != nil {
				return fmt.Errorf("renew lock %s: %w", s.path(), err)
			}
		}
		st, err := s.status(ctx)
		if err != nil {
			return fmt.Errorf("renew lock %s: %w", s.path(), err)
		}
		if err := ours(s, st, info.RunID); err != nil {
			return fmt.Errorf("renew lock %s: %w", s.path(), err)
		}
		if st.busy {
			if st.busyAge > stuckBusy {
				return stuckError(s, st)
			}
			continue
		}
		n := *st.info
		n.Renewed = now
		if info.TTL > 0 {
			n.TTL = info.TTL
		}
		b, err := json.Marshal(n)
		if err != nil {
			return fmt.Errorf("renew lock %s: %w", s.path(), err)
		}
		res, err := s.cas(ctx, st.want(), b)
		if err != nil {
			return fmt.Errorf("renew lock %s: %w", s.path(), err)
		}
		if res == casOK {
			return nil
		}
	}
	return fmt.Errorf("renew lock %s: still busy after %d attempts", s.path(), lockAttempts)
}

func release(ctx context.Context, s lockStore, runID string) error {
	for attempt := range lockAttempts {
		if attempt > 0 {
			if err := backoff(ctx, attempt); err != nil {
				return fmt.Errorf("release lock %s: %w", s.path(), err)
			}
		}
		st, err := s.status(ctx)
		if err != nil {
			return fmt.Errorf("release lock %s: %w", s.path(), err)
		}
		if !st.held {
			return nil
		}
		if err := ours(s, st, runID); err != nil {
			return fmt.Errorf("release lock %s: %w", s.path(), err)
		}
		if st.busy {
			if st.busyAge > stuckBusy {
				return stuckError(s, st)
			}
			continue
		}
		res, err := s.cas(ctx, st.want(), nil)
		if err != nil {
			return fmt.Errorf("release lock %s: %w", s.path(), err)
		}
		if res == casOK {
			return nil
		}
	}
	return fmt.Errorf("release lock %s: still busy after %d attempts", s.path(), lockAttempts)
}

// ours checks that st is a lock held by runID.
func ours(s lockStore, st lockState, runID string) error {
	switch {
	case !st.held:
		return fmt.Errorf("%w: the lock is gone", ErrNotHeld)
	case st.info == nil:
		return fmt.Errorf("%w: %w", ErrNotHeld, ErrLockUnreadable)
	case st.info.RunID != runID:
		return fmt.Errorf("%w: held by run %s (%s)", ErrNotHeld, st.info.RunID, st.info.Owner)
	}
	return nil
}

func read(ctx context.Context, s lockStore) (*LockInfo, error) {
	st, err := s.status(ctx)
	if err != nil {
		return nil, fmt.Errorf("read lock %s: %w", s.path(), err)
	}
	if !st.held {
		return nil, nil
	}
	if st.info == nil {
		return nil, fmt.Errorf("read lock %s: %w", s.path(), ErrLockUnreadable)
	}
	return st.info, nil
}

func parseInfo(raw []byte) *LockInfo {
	if raw == nil {
		return nil
	}
	var li LockInfo
	if err := json.Unmarshal(raw, &li); err != nil {
		return nil
	}
	return &li
}

// backoff waits a little before attempt, longer each time, with jitter so
// that racing takers fall out of step.
func backoff(ctx context.Context, attempt int) error {
	return clock.Sleep(ctx, time.Duration(attempt)*20*time.Millisecond+rand.N(20*time.Millisecond))
}

// KeepRenewed calls renew every interval until ctx ends: the one lock
// renewer (the local controller lock, and every run's host locks through
// rollout.Locks). sleep waits between renewals (nil: clock.Sleep; the engine
// passes its injected clock). Each renew error is sent on the returned
// channel (dropped if the previous one was not received yet); an error
// wrapping ErrNotHeld is sent and ends the renewing, since the lock is
// lost. The channel is closed when renewing stops.
func KeepRenewed(ctx context.Context, interval time.Duration, sleep func(context.Context, time.Duration) error, renew func(context.Context) error) <-chan error {
	if sleep == nil {
		sleep = clock.Sleep
	}
	errc := make(chan error, 1)
	go func() {
		defer close(errc)
		for {
			if sleep(ctx, interval) != nil || ctx.Err() != nil {
				return
			}
			err := renew(ctx)
			if err == nil || ctx.Err() != nil {
				continue
			}
			if errors.Is(err, ErrNotHeld) {
				select {
				case errc <- err:
				case <-ctx.Done():
				}
				return
			}
			select {
			case errc <- err:
			default:
			}
		}
	}()
	return errc
}
