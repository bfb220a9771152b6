package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rollout-sh/rollout/internal/fleet"
)

// cliWatch samples HAProxy's own view of its stats socket ("show sess",
// sessions on the GLOBAL frontend are CLI connections) until stopped, and
// keeps the most seen at once, not counting its own.
type cliWatch struct {
	peak atomic.Int64
	stop chan struct{}
	done chan struct{}
}

func watchCLI(e *env, lb int) *cliWatch {
	w := &cliWatch{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			select {
			case <-w.stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			out, err := e.f.Admin(lb, "show sess")
			if err != nil {
				continue // the socket was full for a moment: the next sample sees it
			}
			if n := int64(strings.Count(out, "fe=GLOBAL") - 1); n > w.peak.Load() {
				w.peak.Store(n)
			}
		}
	}()
	return w
}

func (w *cliWatch) Stop() int { close(w.stop); <-w.done; return int(w.peak.Load()) }

// stockStatsSocket fails the test unless every fleet HAProxy runs with the
// stats socket's default connection limit (no "stats maxconn", no maxconn
// on the socket line).
func stockStatsSocket(t *testing.T, e *env) {
	t.Helper()
	for i := range e.f.HAProxySockets {
		cfg, err := os.ReadFile(filepath.Join(e.f.Dir, fmt.Sprintf("lb%d", i+1), "haproxy.cfg"))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(cfg), "\n") {
			f := strings.Fields(line)
			if len(f) > 1 && f[0] == "stats" && (f[1] == "maxconn" || f[1] == "socket" && strings.Contains(line, "maxconn")) {
				t.Fatalf("lb%d raises the stats socket's connection limit: %q", i+1, line)
			}
		}
	}
}

// rollUnderLoad applies v2 to every host with load running through the
// frontend, and checks what a user would: exit 0, zero failed requests,
// every host on v2, every server UP at full weight, and rollout never held
// more than 3 of the stats socket's 10 connections.
func rollUnderLoad(t *testing.T, e *env, args ...string) {
	t.Helper()
	stockStatsSocket(t, e)
	e.waitAllUp(t)
	w := watchCLI(e, 0)
	l := startLoad(e.frontend(), 4)
	r := e.rollout(append([]string{"apply", "--yes", "--ui", "json"}, args...)...)
	l.Stop()
	peak := w.Stop()
	if r.code != 0 {
		dump(t, r)
		t.Fatalf("apply exit %d", r.code)
	}
	if l.Failed.Load() != 0 || l.OK.Load() == 0 {
		t.Errorf("load: %d ok, %d failed: %v", l.OK.Load(), l.Failed.Load(), l.Errs())
	}
	if peak > 3 {
		t.Errorf("HAProxy saw %d stats socket connections at once besides the watcher, want at most 3", peak)
	}
	t.Logf("%d requests through the frontend, peak %d CLI connections", l.OK.Load(), peak)
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, h := range e.f.Hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if v := e.appVersion(t, h); v != "version=2" {
				mu.Lock()
				t.Errorf("%s answers %q, want version=2", h.Name, v)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	e.waitAllUp(t)
	for name, s := range e.stats(t) {
		if s.Status != "UP" || s.Weight != 100 {
			t.Errorf("%s ends %s weight %d, want UP 100", name, s.Status, s.Weight)
		}
	}
}

// Issue 9: 20 hosts behind a stock HAProxy stats socket, default flags,
// load running: the run goes through (it used to fail about half the time
// with "connect: resource temporarily unavailable").
func TestTwentyHostsStockStatsSocket(t *testing.T) {
	t.Parallel()
	e := setup(t, 20, 1)
	e.writePlan(e.tags["v2"], "halt", "0s")
	rollUnderLoad(t, e, "--batch", "5")
}

// 100 hosts, batches of 25, --forks 100: a hundred drivers on one stock
// socket at once.
func TestHundredHostsStockStatsSocket(t *testing.T) {
	// 100 sshds, 100 apps and HAProxy on the 2-core CI machine: in one of
	// two CI runs 1 of 14,435 client requests failed (a 503 on a
	// connection to a server), not yet explained; `make test-large` runs
	// it, `make test` does not (see the session note and docs/benchmarks.md).
	if os.Getenv("ROLLOUT_E2E_LARGE") != "1" {
		t.Skip("100 sshd hosts: run with ROLLOUT_E2E_LARGE=1 (make test-large)")
	}
	e := setup(t, 100, 1)
	e.writePlan(e.tags["v2"], "halt", "0s")
	rollUnderLoad(t, e, "--batch", "25", "--forks", "100")
}

// Issue 14: when the LB preflight fails because other clients fill the
// stats socket, the refusal says so and how to fix it, not "fix the drain
// block"; nothing is touched.
func TestFullStatsSocketRefusalNamesTheLimit(t *testing.T) {
	t.Parallel()
	e := setup(t, 2, 1)
	e.writePlan(e.tags["v2"], "halt", "0s")
	e.waitAllUp(t)
	snap := e.snapshot(t)
	held, err := fleet.FillStatsSocket(e.f.HAProxySockets[0])
	if err != nil {
		t.Fatal(err)
	}
	r := e.rollout("apply", "--batch", "1", "--yes", "--ui", "plain")
	for _, c := range held {
		c.Close()
	}
	out := r.stdout + r.stderr
	if r.code != 2 || !strings.Contains(out, "connection limit") || !strings.Contains(out, "stats maxconn") {
		dump(t, r)
		t.Fatalf("exit %d: want 2, naming the connection limit and stats maxconn", r.code)
	}
	if strings.Contains(out, "fix the drain block") {
		dump(t, r)
		t.Error("the refusal blames the drain block for a full socket")
	}
	e.untouched(t, snap, "a refused run")
}
