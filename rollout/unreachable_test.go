package rollout

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"slices"
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

// The "go on without them" limit keeps the user's --limit and leaves out
// the unreachable hosts in the pattern grammar's own terms: a list of
// names loses the names (not web1:web2:!web2), anything else gets an
// exclusion (applied last, so it narrows the whole limit), and a run with
// no host left offers no limit at all.
func TestLimitWithoutUnreachable(t *testing.T) {
	f := newFleet(t, 4, "")
	for _, tc := range []struct {
		limit string
		gone  []string
		want  string // "" = no host left
	}{
		{"", []string{"web4"}, "all:!web4"},
		{"", []string{"web2", "web4"}, "all:!web2:!web4"},
		{"web1:web2", []string{"web2"}, "web1"},
		{"web1,web2,web3", []string{"web1", "web3"}, "web2"},
		{"web", []string{"web3"}, "web:!web3"},
		{"web*:!web1", []string{"web3"}, "web*:!web1:!web3"},
		{"web:!web3", []string{"web3", "web4"}, "web:!web3:!web4"},
		{"web[0:2]", []string{"web2"}, "web[0:2]:!web2"},
		{"web:&web2", []string{"web2"}, ""},
		{"web2", []string{"web2"}, ""},
	} {
		pr, err := Prepare(Request{PlanFile: f.planFile, Limit: tc.limit})
		must(t, err)
		var out []*inventory.Host
		for _, n := range tc.gone {
			out = append(out, pr.Inventory.Host(n))
		}
		got, ok := limitWithout(pr, out)
		if tc.want == "" {
			if ok {
				t.Errorf("limit %q without %v: %q, want no limit (no host left)", tc.limit, tc.gone, got)
			}
			continue
		}
		if got != tc.want {
			t.Errorf("limit %q without %v: %q, want %q", tc.limit, tc.gone, got, tc.want)
			continue
		}
		// the new limit selects the run's hosts but the unreachable ones
		want := map[string]bool{}
		for _, tg := range pr.Targets {
			want[tg.Host.Name] = !slices.Contains(tc.gone, tg.Host.Name)
		}
		again, err := Prepare(Request{PlanFile: f.planFile, Limit: got})
		must(t, err)
		for _, tg := range again.Targets {
			if !want[tg.Host.Name] {
				t.Errorf("limit %q selects %s", got, tg.Host.Name)
			}
			delete(want, tg.Host.Name)
		}
		for n, in := range want {
			if in {
				t.Errorf("limit %q leaves out %s, which answered", got, n)
			}
		}
	}
}
