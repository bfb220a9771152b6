package rollout

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rollout-sh/rollout/internal/transport"
	"github.com/rollout-sh/rollout/inventory"
	"github.com/rollout-sh/rollout/rollout/event"
)

// silentConn stops answering once cut is set: a command waits until its
// context ends (a network cut: nothing comes back, nothing fails), or, with
// reset, fails at once with a lost connection.
type silentConn struct {
	localConn
	cut   *atomic.Bool
	reset bool
}

func (c silentConn) Run(ctx context.Context, cmd string, stdin io.Reader, stdout, stderr io.Writer) error {
	if !c.cut.Load() {
		return c.localConn.Run(ctx, cmd, stdin, stdout, stderr)
	}
	if c.reset {
		return fmt.Errorf("ssh web2: run %s: end of stream: %w", cmd, transport.ErrLost)
	}
	<-ctx.Done()
	return ctx.Err()
}

// A host whose network is cut while it is drained and waiting for its
// sessions: the sessions never close (the LB cannot reach it either).
// At the drain timeout the engine finds the host does not answer, and
// reports it unknown — not a drain timeout with "the host was left
// untouched", which it can no longer know. A host that answers keeps the
// drain-timeout verdict (TestEngineWaitsForSessionsThenTimesOut).
func TestEngineDrainWaitOnUnreachableHostIsUnknown(t *testing.T) {
	for _, reset := range []bool{false, true} {
		t.Run(fmt.Sprintf("reset=%v", reset), func(t *testing.T) {
			defer func(d time.Duration) { reachTimeout = d }(reachTimeout)
			reachTimeout = 50 * time.Millisecond
			f := newFleet(t, 2, `batch = [1]`)
			f.sessions["web2"] = []int{2} // never drains
			clk := &fakeClock{t: t0}
			pr, err := Prepare(Request{PlanFile: f.planFile})
			must(t, err)
			env := f.env()
			env.Now, env.Sleep = clk.Now, clk.Sleep
			cut := &atomic.Bool{}
			env.Connect = func(_ context.Context, h *inventory.Host) (Conn, error) {
				if h.Name == "web2" {
					return silentConn{cut: cut, reset: reset}, nil
				}
				return localConn{}, nil
			}
			var web2Done event.Event
			env.Sink = sinkFunc(func(e event.Event) {
				if e.Event == event.DrainSessions && e.Host == "web2" {
					cut.Store(true)
				}
				if e.Event == event.HostDone && e.Host == "web2" {
					web2Done = e
				}
			})
			res, _ := Run(context.Background(), pr, env, Options{RunID: "r-cut-wait", Owner: "t", LocalDir: filepath.Join(f.dir, ".rollout")}, nil)
			if res.Outcomes["web2"] != event.OutcomeUnknown {
				t.Errorf("web2: %s (%s), want unknown", res.Outcomes["web2"], web2Done.Message)
			}
			if strings.Contains(web2Done.Message, "drain timeout") || strings.Contains(web2Done.Message, "left untouched") ||
				!strings.Contains(web2Done.Message, "does not answer") {
				t.Errorf("web2's host_done does not say the host does not answer: %q", web2Done.Message)
			}
			if !strings.Contains(res.Summary, "unknown state: web2") || res.ExitCode != 1 {
				t.Errorf("summary %q exit %d, want web2 named as unknown and exit 1", res.Summary, res.ExitCode)
			}
		})
	}
}
