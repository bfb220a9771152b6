// Package clock holds the one cancellable sleep the project uses: the
// engine's default Env.Sleep, the health gates' real clock, the journal's
// and the etcd backend's polling and back-off. Code that must be tested
// without waiting takes a sleep function (or a health.Clock) and gets
// this one only when wired for real.
package clock

import (
	"context"
	"time"
)

// Sleep waits for d, or until ctx ends (then it returns ctx.Err()). A d of
// zero or less returns at once, with ctx.Err().
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
