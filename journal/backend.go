package journal

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/rollout-sh/rollout/internal/clock"
	"github.com/rollout-sh/rollout/rollout/event"
)

// ErrLockLost is the cause a HeldLock's Lost channel reports when the lock
// was taken away from a live run: it expired, or `rollout unlock` removed
// it, or another run took it over.
var ErrLockLost = errors.New("the plan lock was lost")

// HeldLock is a controller lock a run holds. Lost receives one error, and
// is closed, when the lock is lost while the run still lives; it is closed
// without a value by Release.
type HeldLock interface {
	Lost() <-chan error
	Release(ctx context.Context) error
}

// Local is the local state backend: the plan lock in the local state dir
// (<Dir>/<plan>/lock/) and the journal file (<Dir>/journal.jsonl). It is
// the default, and what the etcd backend keeps as its offline cache.
type Local struct {
	Dir string // the local state dir
	// Journal is the journal file; empty: Record keeps nothing (tests that
	// read the event stream from a sink).
	Journal string

	mu sync.Mutex
	j  *Journal
}

// NewLocal returns the local backend for the state dir dir, journaling to
// dir/journal.jsonl.
func NewLocal(dir string) *Local {
	return &Local{Dir: dir, Journal: JoinPath(dir)}
}

// JoinPath is the journal file inside a local state dir.
func JoinPath(dir string) string { return filepath.Join(dir, File) }

// Describe names the backend in messages.
func (l *Local) Describe() string { return "local " + l.Dir }

// Lock takes the plan's lock in the local state dir and keeps it renewed
// every TTL/3 until Release. A renewal that finds the lock gone or taken
// over reports ErrLockLost on Lost.
func (l *Local) Lock(ctx context.Context, plan string, info LockInfo) (HeldLock, error) {
	now := time.Now()
	if err := AcquireLocalLock(l.Dir, plan, info, now); err != nil {
		return nil, err
	}
	ttl := info.ttl()
	h := &localHeld{lost: make(chan error, 1)}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	h.cancel = cancel
	h.release = func() error { return ReleaseLocalLock(l.Dir, plan, info.RunID) }
	errc := KeepRenewed(rctx, ttl/3, nil, func(context.Context) error {
		return RenewLocalLock(l.Dir, plan, info, time.Now())
	})
	h.done = make(chan struct{})
	go func() {
		defer close(h.done)
		defer close(h.lost)
		for err := range errc {
			if errors.Is(err, ErrNotHeld) {
				h.lost <- fmt.Errorf("%w: local %s: %w", ErrLockLost, l.Dir, err)
				return
			}
		}
	}()
	return h, nil
}

type localHeld struct {
	lost    chan error
	cancel  context.CancelFunc
	done    chan struct{}
	release func() error
	once    sync.Once
	err     error
}

func (h *localHeld) Lost() <-chan error { return h.lost }

func (h *localHeld) Release(context.Context) error {
	h.once.Do(func() {
		h.cancel()
		<-h.done
		h.err = h.release()
	})
	return h.err
}

// ReadLock returns who holds the plan's local lock, or nil.
func (l *Local) ReadLock(_ context.Context, plan string) (*LockInfo, error) {
	return ReadLocalLock(l.Dir, plan)
}

// BreakLock removes the plan's local lock whoever holds it.
func (l *Local) BreakLock(_ context.Context, plan string) error {
	return BreakLocalLock(l.Dir, plan)
}

// Warnings opens the journal file now (rather than at the first record)
// and returns what Open changed about its permissions; a journal that
// cannot be opened is reported by the first Record.
func (l *Local) Warnings() []string {
	if l.Journal == "" {
		return nil
	}
	j, err := l.open()
	if err != nil {
		return nil
	}
	return j.Warnings()
}

func (l *Local) open() (*Journal, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.j == nil {
		j, err := Open(l.Journal)
		if err != nil {
			return nil, err
		}
		l.j = j
	}
	return l.j, nil
}

// Record appends e to the journal file (fsync'd) before it returns.
func (l *Local) Record(_ context.Context, e event.Event) error {
	if l.Journal == "" {
		return nil
	}
	j, err := l.open()
	if err != nil {
		return err
	}
	return j.Append(e)
}

// Events reads every record of the journal file. The local journal is not
// split by plan: it is the one beside the plan (or in --state-dir).
func (l *Local) Events(context.Context, string) ([]event.Event, error) {
	return Read(l.Journal)
}

// Follow calls fn with every event of run, from its first, as it is
// appended to the journal file, until the run's run_done or ctx ends. An
// empty run follows the last run that has not finished (or waits for the
// next one to start).
func (l *Local) Follow(ctx context.Context, _ string, run string, fn func(event.Event)) error {
	seen := 0
	for {
		evs, err := Read(l.Journal)
		if err != nil {
			return err
		}
		if run == "" {
			run = CurrentRun(evs)
		}
		if run != "" {
			var mine []event.Event
			for _, e := range evs {
				if e.Run == run {
					mine = append(mine, e)
				}
			}
			for _, e := range mine[min(seen, len(mine)):] {
				fn(e)
				if e.Event == event.RunDone {
					return nil
				}
			}
			seen = len(mine)
		}
		if err := clock.Sleep(ctx, 200*time.Millisecond); err != nil {
			return err
		}
	}
}

// CurrentRun is the last run in evs that has no run_done, or "".
func CurrentRun(evs []event.Event) string {
	runs := Runs(evs)
	for i := len(runs) - 1; i >= 0; i-- {
		if !runs[i].Finished {
			return runs[i].ID
		}
	}
	return ""
}

// Close closes the journal file.
func (l *Local) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.j == nil {
		return nil
	}
	err := l.j.Close()
	l.j = nil
	return err
}
