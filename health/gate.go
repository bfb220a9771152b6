package health

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/rollout-sh/rollout/internal/transport"
)

// Sentinels for the two ways a gate fails; a *Failure matches one of them
// with errors.Is.
var (
	// ErrDeadline: the probes were not healthy for the whole window before
	// the deadline.
	ErrDeadline = errors.New("health deadline")
	// ErrFlapping: the flap guard saw the process restart, change pid or die.
	ErrFlapping = errors.New("flapping")
)

// DefaultInterval is used when Gate.Interval is zero.
const DefaultInterval = time.Second

// Gate waits until a restarted host is healthy: every probe must pass
// continuously for HealthyFor, the guard (if any) must not see the process
// restart, and all of it within Deadline.
type Gate struct {
	Name       string        // names the gate in errors, e.g. "http"
	Probes     []Probe       // all must pass in a round
	Guard      Guard         // may be nil
	Interval   time.Duration // between rounds; 0 = DefaultInterval
	HealthyFor time.Duration // the stable window; 0 = one passing round
	Deadline   time.Duration // from the start of Wait; 0 = none (ctx only)
	Clock      Clock         // nil = RealClock()
}

// Progress is reported after every round.
type Progress struct {
	Elapsed time.Duration // length of the current healthy streak (0 after a failure)
	Window  time.Duration // HealthyFor
	Probes  int           // rounds run so far
	LastErr error         // why the last round failed; nil when it passed
}

// Failure is a gate that did not pass. It matches Kind (ErrDeadline or
// ErrFlapping) and Cause with errors.Is / errors.As.
type Failure struct {
	Gate     string
	Kind     error
	Cause    error // the last probe error, or what the guard saw
	Window   time.Duration
	Deadline time.Duration
	Streak   time.Duration // ErrDeadline: how long the probes had been passing at the end
}

func (f *Failure) Error() string {
	var b strings.Builder
	if f.Gate != "" {
		b.WriteString("health " + f.Gate + ": ")
	}
	switch f.Kind {
	case ErrFlapping:
		fmt.Fprintf(&b, "flapping: %v during the %s window", f.Cause, short(f.Window))
	default:
		fmt.Fprintf(&b, "not healthy for %s within %s", short(f.Window), short(f.Deadline))
		switch {
		case f.Streak > 0 && f.Cause != nil:
			fmt.Fprintf(&b, ": healthy for the last %s only; last probe failure: %v", short(f.Streak), f.Cause)
		case f.Streak > 0:
			fmt.Fprintf(&b, ": healthy for the last %s only", short(f.Streak))
		case f.Cause != nil:
			fmt.Fprintf(&b, ": last probe: %v", f.Cause)
		}
	}
	return b.String()
}

// Unwrap exposes the kind and the cause.
func (f *Failure) Unwrap() []error {
	if f.Cause == nil {
		return []error{f.Kind}
	}
	return []error{f.Kind, f.Cause}
}

// Wait runs the gate. It returns nil once every probe has passed on every
// round for HealthyFor (measured from the start of the first passing round
// of the streak to the start of the latest one; with HealthyFor 0 one passing
// round is enough). A failed round restarts the window. The guard's baseline
// is taken first (retried each round until it succeeds: a pid file may
// appear a moment after the restart) and the guard is checked on every
// round after that; any change fails the gate at once with ErrFlapping. Not
// stable by Deadline: ErrDeadline with the last probe error. progress, when
// not nil, is called after every round.
func (g *Gate) Wait(ctx context.Context, progress func(Progress)) error {
	clock := g.Clock
	if clock == nil {
		clock = RealClock()
	}
	interval := g.Interval
	if interval <= 0 {
		interval = DefaultInterval
	}
	start := clock.Now()
	baselined := g.Guard == nil
	var (
		streak   bool
		streakAt time.Time
		lastErr  error // the last failed round's error, kept through a later streak
		rounds   int
	)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		roundAt := clock.Now()
		rounds++

		var err error
		if !baselined {
			if err = g.Guard.Baseline(ctx); err == nil {
				baselined = true
			} else {
				err = fmt.Errorf("flap guard baseline: %w", err)
			}
		}
		if err == nil {
			err = g.probe(ctx)
		}
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		if transport.Lost(err) {
			// the host cannot be seen: no verdict about its service
			return err
		}
		if baselined && g.Guard != nil {
			if gerr := g.Guard.Check(ctx); gerr != nil {
				if cerr := ctx.Err(); cerr != nil {
					return cerr
				}
				if transport.Lost(gerr) {
					return fmt.Errorf("flap guard: %w", gerr)
				}
				return &Failure{Gate: g.Name, Kind: ErrFlapping, Cause: gerr, Window: g.HealthyFor, Deadline: g.Deadline}
			}
		}

		var elapsed time.Duration
		if err != nil {
			streak, lastErr = false, err
		} else {
			if !streak {
				streak, streakAt = true, roundAt
			}
			elapsed = roundAt.Sub(streakAt)
		}
		if progress != nil {
			progress(Progress{Elapsed: elapsed, Window: g.HealthyFor, Probes: rounds, LastErr: err})
		}
		if streak && elapsed >= g.HealthyFor {
			return nil
		}

		now := clock.Now()
		if g.Deadline > 0 && now.Sub(start) >= g.Deadline {
			return &Failure{Gate: g.Name, Kind: ErrDeadline, Cause: lastErr, Window: g.HealthyFor, Deadline: g.Deadline, Streak: elapsed}
		}
		wait := interval - now.Sub(roundAt)
		if g.Deadline > 0 {
			wait = min(wait, g.Deadline-now.Sub(start))
		}
		if wait > 0 {
			if err := clock.Sleep(ctx, wait); err != nil {
				return err
			}
		}
	}
}

// probe runs every probe; the first failure is the round's error.
func (g *Gate) probe(ctx context.Context) error {
	for _, p := range g.Probes {
		if err := p.Probe(ctx); err != nil {
			return err
		}
	}
	return nil
}

// short prints 2m rather than 2m0s.
func short(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
