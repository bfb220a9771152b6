package validate

import (
	"context"
	"fmt"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/rollout-sh/rollout/internal/transport"
	"github.com/rollout-sh/rollout/plan"
	"github.com/rollout-sh/rollout/rollout/event"
)

// Host is one host of a preflight: its connection and its files rendered
// at the run's revision.
type Host struct {
	Name  string
	Conn  transport.Runner
	Files []plan.Rendered
	// Prepare, when set, runs first, in the host's turn (artifacts fetched
	// and staged, the plan's prefetch): its failure is the host's
	// preflight failure.
	Prepare func(ctx context.Context) error
}

// Preflight stages every host's files beside their destinations, runs
// their validators and removes the staged copies, at most forks hosts at a
// time: nothing live changes and no host is drained. It reports on emit —
// preflight_start, one preflight_host per host (its message is the same on
// every host the same file fails on, so views can group them), then
// preflight_done — and returns the hosts that failed, in the order given.
// When ctx ends first it returns ctx's error and no preflight_done.
func (v Remote) Preflight(ctx context.Context, hosts []Host, tag string, forks int, emit func(event.Event)) ([]string, error) {
	names := make([]string, len(hosts))
	for i, h := range hosts {
		names[i] = h.Name
	}
	emit(event.Event{Event: event.PreflightStart, Hosts: names})
	bad := make([]bool, len(hosts))
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	if forks > 0 {
		g.SetLimit(forks)
	}
	for i, h := range hosts {
		g.Go(func() error {
			hctx := event.WithRemoteSink(gctx, event.RemoteEmitter(emit, h.Name, 0)) // remote_output
			var err error
			if h.Prepare != nil {
				err = h.Prepare(hctx)
			}
			if err == nil && len(h.Files) > 0 {
				// stage, validate and remove in one command
				var invalid error
				_, err, invalid = v.Stage(hctx, h.Conn, h.Files, tag, true)
				if err == nil {
					err = invalid
				}
			}
			if err != nil {
				mu.Lock()
				bad[i] = true
				mu.Unlock()
				emit(event.Event{Event: event.PreflightHost, Host: h.Name, Status: event.StatusFailed, Message: err.Error()})
				return nil
			}
			emit(event.Event{Event: event.PreflightHost, Host: h.Name, Status: event.StatusOK})
			return nil
		})
	}
	_ = g.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var failed []string
	for i, b := range bad {
		if b {
			failed = append(failed, names[i])
		}
	}
	if len(failed) > 0 {
		emit(event.Event{Event: event.PreflightDone, Status: event.StatusFailed,
			Message: fmt.Sprintf("%d host(s) failed preflight; no host was drained and no live file changed", len(failed))})
		return failed, nil
	}
	emit(event.Event{Event: event.PreflightDone, Status: event.StatusOK})
	return nil, nil
}
