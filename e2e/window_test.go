package e2e

import (
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rollout-sh/rollout/rollout/event"
)

// Issue 26 item 3: --max-in-flight 2 on 6 real hosts behind HAProxy, load
// running: a canary alone, then never more than 2 servers out of the pool
// (sampled from HAProxy every 20ms), zero failed requests, every host on
// the revision and back UP at full weight.
func TestRollingWindowNeverMoreThanNOut(t *testing.T) {
	t.Parallel()
	e := setup(t, 6, 1)
	e.writePlan(e.tags["v2"], "halt", "1s")
	e.waitAllUp(t)
	var most, samples atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			st, err := e.f.ServerStatus(0)
			if err != nil {
				continue
			}
			out := int64(0)
			for _, s := range st {
				if !strings.HasPrefix(s, "UP") {
					out++
				}
			}
			samples.Add(1)
			if out > most.Load() {
				most.Store(out)
			}
		}
	}()
	r := e.applyUnderLoad(t, "apply", "rollout.hcl", "--max-in-flight", "2", "--yes", "--ui", "json")
	close(stop)
	wg.Wait()
	if most.Load() > 2 || most.Load() == 0 || samples.Load() < 10 {
		t.Errorf("at most %d servers were out of the pool at once over %d samples; want 1 or 2", most.Load(), samples.Load())
	}
	evs := parseEvents(t, r.stdout)
	var batches [][]string
	for _, ev := range evs {
		if ev.Event == event.BatchStart {
			batches = append(batches, ev.Hosts)
		}
	}
	if len(batches) != 2 || len(batches[0]) != 1 || len(batches[1]) != 5 {
		t.Errorf("batches %v: want the canary alone, then the five others in one window", batches)
	}
	for _, h := range e.f.Hosts {
		if v := e.appVersion(t, h); v != "version=2" {
			t.Errorf("%s answers %q, want version=2", h.Name, v)
		}
	}
	for name, s := range e.stats(t) {
		if s.Status != "UP" || s.Weight != 100 {
			t.Errorf("%s ends %s weight %d, want UP 100", name, s.Status, s.Weight)
		}
	}
}
