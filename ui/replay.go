package ui

import (
	"context"
	"time"

	"github.com/rollout-sh/rollout/rollout/event"
)

// Replay plays recorded events into sink in order, waiting between two
// events for the gap between their Time fields divided by speed (2 = twice
// as fast). With speed <= 0 it does not wait. Events are delivered as they
// were recorded, times included. It stops when ctx is done and returns
// ctx's error.
func Replay(ctx context.Context, events []event.Event, sink event.Sink, speed float64) error {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for i, e := range events {
		if err := ctx.Err(); err != nil {
			return err
		}
		if i > 0 && speed > 0 {
			gap := time.Duration(float64(e.Time.Sub(events[i-1].Time)) / speed)
			if gap > 0 {
				if timer == nil {
					timer = time.NewTimer(gap)
				} else {
					timer.Reset(gap)
				}
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-timer.C:
				}
			}
		}
		sink.Emit(e)
	}
	return nil
}
