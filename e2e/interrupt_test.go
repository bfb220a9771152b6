package e2e

// Issue 6: Ctrl-C (SIGINT) at each phase of a host, a double Ctrl-C,
// approvals without a terminal, and the JSON stream as CI reads it. Every
// test runs the real binary against the real local fleet.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rollout-sh/rollout/internal/fleet"
	"github.com/rollout-sh/rollout/journal"
	"github.com/rollout-sh/rollout/rollout/event"
)

// bgRollout is the real binary running in the background with --ui json:
// its stdout events are parsed as they arrive, so a test can act (send a
// signal) when the run reaches a given point.
type bgRollout struct {
	t      *testing.T
	cmd    *exec.Cmd
	stderr bytes.Buffer
	done   chan struct{}
	code   int

	mu     sync.Mutex
	stdout strings.Builder
	evs    []event.Event
}

func (e *env) startRollout(args ...string) *bgRollout {
	e.t.Helper()
	full := append(append([]string{}, args...), "--known-hosts", e.f.KnownHosts)
	b := &bgRollout{t: e.t, done: make(chan struct{})}
	b.cmd = exec.Command(rolloutBin(e.t), full...)
	b.cmd.Dir = e.dir
	b.cmd.Stderr = &b.stderr
	out, err := b.cmd.StdoutPipe()
	if err != nil {
		e.t.Fatal(err)
	}
	if err := b.cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var ev event.Event
			jerr := json.Unmarshal(sc.Bytes(), &ev)
			b.mu.Lock()
			b.stdout.WriteString(sc.Text() + "\n")
			if jerr == nil {
				b.evs = append(b.evs, ev)
			}
			b.mu.Unlock()
		}
		err := b.cmd.Wait()
		var ee *exec.ExitError
		switch {
		case errors.As(err, &ee):
			b.code = ee.ExitCode()
		case err != nil:
			b.code = -1
		}
		close(b.done)
	}()
	e.t.Cleanup(func() {
		select {
		case <-b.done:
		default:
			_ = b.cmd.Process.Kill()
			<-b.done
		}
	})
	return b
}

// waitEvent waits for the first event that matches, or for the process to
// end, or for the timeout.
func (b *bgRollout) waitEvent(timeout time.Duration, match func(event.Event) bool) (event.Event, bool) {
	deadline := time.Now().Add(timeout)
	seen := 0
	for {
		b.mu.Lock()
		evs := b.evs[seen:]
		seen = len(b.evs)
		b.mu.Unlock()
		for _, ev := range evs {
			if match(ev) {
				return ev, true
			}
		}
		select {
		case <-b.done:
			b.mu.Lock()
			more := len(b.evs) > seen
			b.mu.Unlock()
			if !more {
				return event.Event{}, false
			}
			continue
		default:
		}
		if time.Now().After(deadline) {
			return event.Event{}, false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (b *bgRollout) signal(sig os.Signal) {
	b.t.Helper()
	if err := b.cmd.Process.Signal(sig); err != nil {
		b.t.Fatalf("signal: %v", err)
	}
}

// wait waits for the process to exit and returns what it wrote.
func (b *bgRollout) wait(timeout time.Duration) result {
	b.t.Helper()
	select {
	case <-b.done:
	case <-time.After(timeout):
		_ = b.cmd.Process.Kill()
		<-b.done
		r := b.result()
		dump(b.t, r)
		b.t.Fatalf("rollout did not exit within %s (killed)", timeout)
	}
	return b.result()
}

func (b *bgRollout) result() result {
	b.mu.Lock()
	defer b.mu.Unlock()
	return result{stdout: b.stdout.String(), stderr: b.stderr.String(), code: b.code}
}

// isPhase matches a host entering phase.
func isPhase(ph event.Phase) func(event.Event) bool {
	return func(ev event.Event) bool {
		return ev.Event == event.HostPhase && ev.Phase == ph && ev.Status == event.StatusRunning
	}
}

// jsonKeys are the keys docs/json-events.md promises per event kind (the
// ones that are always there; optional ones like message are not listed).
var jsonKeys = map[event.Kind][]string{
	event.RunStart:       {"schema", "plan", "revision", "scope", "batches"},
	event.PreflightStart: {"hosts"},
	event.PreflightHost:  {"host", "status"},
	event.PreflightDone:  {"status"},
	event.BatchStart:     {"batch", "hosts"},
	event.BatchDone:      {"batch", "status"},
	event.HostPhase:      {"host", "batch", "phase", "status"},
	event.DrainSessions:  {"host", "batch", "sessions"},
	event.HealthProgress: {"host", "batch", "window_elapsed_s", "window_s"},
	event.RampStep:       {"host", "batch", "weight"},
	event.HostDone:       {"host", "status"},
	event.HostState:      {"host", "status"},
	event.Waiting:        {"status", "message"},
	event.Approved:       {},
	event.Log:            {"level", "message"},
	event.RunDone:        {"status", "exit_code", "counts"},
	event.Analysis:       {"host", "batch", "status", "message", "analysis"},
	event.RemoteOutput:   {"host", "phase", "status", "remote"},
}

// checkJSONContract checks a --ui json stdout as a CI job would read it:
// every line is one JSON object with the documented keys, run_start first,
// exactly one run_done last, batches in order, a host_done for every host
// that had a host_phase, run_done's counts adding up to the hosts.
func checkJSONContract(t *testing.T, stdout string, wantCode int) []event.Event {
	t.Helper()
	if !strings.HasSuffix(stdout, "\n") {
		t.Errorf("stdout does not end with a newline: %q", tailStr(stdout, 200))
	}
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	var evs []event.Event
	for i, line := range lines {
		var raw map[string]json.RawMessage
		if err := json.Unmarshal([]byte(line), &raw); err != nil {
			t.Fatalf("stdout line %d is not a JSON object: %v: %q", i+1, err, line)
		}
		var ev event.Event
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("stdout line %d: %v: %q", i+1, err, line)
		}
		for _, k := range []string{"time", "run", "event"} {
			if _, ok := raw[k]; !ok {
				t.Errorf("line %d (%s) has no %q: %s", i+1, ev.Event, k, line)
			}
		}
		var ts string
		_ = json.Unmarshal(raw["time"], &ts)
		if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
			t.Errorf("line %d: time %q is not RFC 3339: %v", i+1, ts, err)
		}
		want, known := jsonKeys[ev.Event]
		if !known {
			t.Errorf("line %d: event kind %q is not in docs/json-events.md: %s", i+1, ev.Event, line)
		}
		for _, k := range want {
			if _, ok := raw[k]; !ok {
				t.Errorf("line %d: %s has no %q: %s", i+1, ev.Event, k, line)
			}
		}
		if ev.Event == event.HostDone {
			o := event.Outcome(ev.Status)
			if _, ok := raw["revision"]; !ok && (o == event.OutcomeOK || o == event.OutcomeSkipped) {
				t.Errorf("line %d: host_done %s has no revision: %s", i+1, o, line)
			}
		}
		evs = append(evs, ev)
	}
	if len(evs) == 0 {
		t.Fatal("no events on stdout")
	}
	if evs[0].Event != event.RunStart {
		t.Errorf("first event is %s, want run_start", evs[0].Event)
	}
	last := evs[len(evs)-1]
	if last.Event != event.RunDone {
		t.Fatalf("last event is %s, want run_done", last.Event)
	}
	if last.ExitCode == nil || *last.ExitCode != wantCode {
		t.Errorf("run_done exit_code = %v, want %d", last.ExitCode, wantCode)
	}
	run := evs[0].Run
	hosts := map[string]bool{}
	for _, b := range evs[0].Batches {
		for _, h := range b {
			hosts[h] = true
		}
	}
	for _, h := range evs[0].Hosts { // every targeted host, batched or already there
		hosts[h] = true
	}
	batchOf := map[string]int{}
	phased := map[string]bool{} // hosts with a host_phase
	outcome := map[string]event.Outcome{}
	reverted := map[string]bool{}
	current, runDone := 0, 0
	for i, ev := range evs {
		if ev.Run != run {
			t.Errorf("event %d has run %q, want %q", i, ev.Run, run)
		}
		if ev.Host != "" && !hosts[ev.Host] {
			t.Errorf("event %d (%s) names %s, which run_start does not", i, ev.Event, ev.Host)
		}
		switch ev.Event {
		case event.RunDone:
			runDone++
		case event.BatchStart:
			if ev.Batch != current+1 {
				t.Errorf("batch_start %d after batch %d", ev.Batch, current)
			}
			current = ev.Batch
			for _, h := range ev.Hosts {
				batchOf[h] = ev.Batch
				// on_failure = "rollback_all" takes hosts that were done
				// back in batches of their own: each gets one more
				// host_done, the one that counts
				if strings.HasPrefix(ev.Message, "rollback_all: ") {
					if _, done := outcome[h]; !done {
						t.Errorf("rollback_all batch %d takes back %s, which has no host_done yet", ev.Batch, h)
					}
					delete(outcome, h)
					reverted[h] = true
				}
			}
		case event.HostPhase, event.DrainSessions, event.HealthProgress, event.RampStep:
			if b, ok := batchOf[ev.Host]; !ok || b != ev.Batch || ev.Batch > current {
				t.Errorf("%s %s/%s in batch %d before its batch_start (host's batch %d, current %d)", ev.Event, ev.Host, ev.Phase, ev.Batch, b, current)
			}
			if _, done := outcome[ev.Host]; done {
				t.Errorf("%s for %s after its host_done", ev.Event, ev.Host)
			}
			phased[ev.Host] = true
		case event.HostDone:
			if _, dup := outcome[ev.Host]; dup || reverted[ev.Host] && ev.Status == string(event.OutcomeOK) {
				t.Errorf("two host_done for %s", ev.Host)
			}
			outcome[ev.Host] = event.Outcome(ev.Status)
		}
	}
	if runDone != 1 {
		t.Errorf("%d run_done events, want 1", runDone)
	}
	for h := range phased {
		if _, ok := outcome[h]; !ok {
			t.Errorf("%s had a host_phase but no host_done", h)
		}
	}
	// every targeted host gets exactly one host_done, so a CI job can say
	// where each one is
	counts := map[event.Outcome]int{}
	for h := range hosts {
		o, ok := outcome[h]
		if !ok {
			t.Errorf("%s has no host_done", h)
			o = event.OutcomeNotStarted
		}
		counts[o]++
	}
	for o, n := range last.Counts {
		if n == 0 {
			delete(last.Counts, o)
		}
	}
	if fmt.Sprint(counts) != fmt.Sprint(last.Counts) {
		t.Errorf("run_done counts %v, but the host_done events say %v", last.Counts, counts)
	}
	return evs
}

func tailStr(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// hostDone returns each host's host_done event.
func hostDone(evs []event.Event) map[string]event.Event {
	out := map[string]event.Event{}
	for _, ev := range evs {
		if ev.Event == event.HostDone {
			out[ev.Host] = ev
		}
	}
	return out
}

// checkJournalRun checks the journal's record of one run: a run_start, a
// host_done for every host with a host_phase, and a run_done with status
// as the run's last record and the journal's last record.
func (e *env) checkJournalRun(t *testing.T, runID, status string) []event.Event {
	t.Helper()
	all, err := journal.Read(filepath.Join(e.dir, ".rollout", "journal.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var evs []event.Event
	for _, ev := range all {
		if ev.Run == runID {
			evs = append(evs, ev)
		}
	}
	if len(evs) == 0 {
		t.Fatalf("the journal has no record of run %s", runID)
	}
	if evs[0].Event != event.RunStart {
		t.Errorf("journal: run %s starts with %s", runID, evs[0].Event)
	}
	last := evs[len(evs)-1]
	if last.Event != event.RunDone || last.Status != status {
		t.Errorf("journal: run %s ends with %s status %q, want run_done %q", runID, last.Event, last.Status, status)
	}
	if all[len(all)-1].Run != runID || all[len(all)-1].Event != event.RunDone {
		t.Errorf("journal: the last record is %s of run %s", all[len(all)-1].Event, all[len(all)-1].Run)
	}
	done := hostDone(evs)
	for _, ev := range evs {
		if ev.Event == event.HostPhase {
			if _, ok := done[ev.Host]; !ok {
				t.Errorf("journal: %s had a host_phase (%s) but no host_done in run %s", ev.Host, ev.Phase, runID)
			}
		}
	}
	return evs
}

// checkNoneDrained checks that no server is left in MAINT or DRAIN on any
// LB, except the hosts in failed, and that the others come UP.
func (e *env) checkNoneDrained(t *testing.T, failed map[string]bool) {
	t.Helper()
	for name, s := range e.stats(t) {
		server := name[strings.LastIndex(name, "/")+1:]
		if failed[server] {
			continue
		}
		if strings.Contains(s.Status, "MAINT") || strings.Contains(s.Status, "DRAIN") {
			t.Errorf("%s was left %s", name, s.Status)
		}
	}
	if len(failed) == 0 {
		e.waitAllUp(t)
	}
}

// checkAtRevision checks every host recorded rev and serves version.
func (e *env) checkAtRevision(t *testing.T, rev, version string) {
	t.Helper()
	for _, h := range e.f.Hosts {
		if st := e.state(t, h); st == nil || st["revision"] != rev {
			t.Errorf("%s current.json = %v, want revision %s", h.Name, st, rev)
		}
		if v := e.appVersion(t, h); v != version {
			t.Errorf("%s answers %q, want %q", h.Name, v, version)
		}
	}
}

func (e *env) host(t *testing.T, name string) fleet.Host {
	t.Helper()
	h, ok := e.f.Host(name)
	if !ok {
		t.Fatalf("no host %q in the fleet", name)
	}
	return h
}

// slowHolder keeps slow requests open through the HAProxy frontend (a new
// one every 100ms, each held for hold), so every backend has sessions when
// a drain starts.
type slowHolder struct {
	stop   chan struct{}
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func holdSlow(url string, hold time.Duration) *slowHolder {
	ctx, cancel := context.WithCancel(context.Background())
	s := &slowHolder{stop: make(chan struct{}), cancel: cancel}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-tick.C:
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				req, _ := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("%sslow?ms=%d", url, hold.Milliseconds()), nil)
				if resp, err := client.Do(req); err == nil {
					resp.Body.Close()
				}
			}()
		}
	}()
	return s
}

// Stop stops sending new requests.
func (s *slowHolder) Stop() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
}

// Close stops sending and drops the requests in flight.
func (s *slowHolder) Close() {
	s.Stop()
	s.cancel()
	s.wg.Wait()
}

// waitNoSessions waits until HAProxy reports no session on any server.
func (e *env) waitNoSessions(t *testing.T, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for e.counter(t, "scur")+e.counter(t, "qcur") > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("HAProxy still has sessions after %s", timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// rerun applies again (with a short health window, to keep the test
// quick): it must complete (exit 0) with every host at rev.
func (e *env) rerun(t *testing.T, rev, version string) {
	t.Helper()
	e.writePlan(rev, "halt", "1s")
	r := e.rollout("apply", "--batch", "1", "--yes", "--ui", "json")
	if r.code != 0 {
		dump(t, r)
		t.Fatalf("re-run: exit %d, want 0", r.code)
	}
	evs := checkJSONContract(t, r.stdout, 0)
	if last := evs[len(evs)-1]; last.Status != "ok" {
		t.Errorf("re-run: run_done %+v", last)
	}
	e.checkAtRevision(t, rev, version)
	e.checkNoneDrained(t, nil)
}

// A first Ctrl-C (SIGINT) at each phase of the canary stops the run
// safely: exit 130, the canary finishes the step in flight (or is put back
// untouched when it had not changed yet), nothing is left drained, the
// journal closes the run as interrupted, and a re-run completes. A double
// Ctrl-C stops at once, reports the canary unknown with `rollout repair`,
// and repair plus a re-run bring the fleet back. One fleet, four runs.
func TestInterruptEachPhase(t *testing.T) {
	t.Parallel()
	e := setup(t, 2, 1)
	e.waitAllUp(t)

	type phaseCase struct {
		name    string
		tag     string
		version string
		healthy string
		at      func(event.Event) bool
		hold    bool          // keep slow requests open so the drain waits
		want    event.Outcome // the canary's outcome
	}
	cases := []phaseCase{
		// during the health window: the canary finishes its window, ramps
		// back and records; no further batch starts
		{name: "health", tag: "v1", version: "version=1", healthy: "3s", at: isPhase(event.PhaseHealth), want: event.OutcomeOK},
		// after the files moved into place (restart in flight): same
		{name: "restart", tag: "v2", version: "version=2", healthy: "1s", at: isPhase(event.PhaseRestart), want: event.OutcomeOK},
		// while the drain waits for open sessions: the canary has not
		// changed, so it is put back into service untouched
		{name: "drain", tag: "v1", version: "version=1", healthy: "1s", hold: true, want: event.OutcomeStopped,
			at: func(ev event.Event) bool {
				return ev.Event == event.DrainSessions && ev.Sessions != nil && *ev.Sessions > 0
			}},
	}
	for _, c := range cases {
		ok := t.Run(c.name, func(t *testing.T) {
			e.t = t
			rev := e.tags[c.tag]
			e.writePlan(rev, "halt", c.healthy)
			before := map[string]string{}
			pids := map[string]int{}
			for _, h := range e.f.Hosts {
				before[h.Name] = e.liveConfig(h)
				pids[h.Name], _ = e.f.AppPID(h)
			}
			var hold *slowHolder
			if c.hold {
				// sessions held far longer than a safe stop may take
				hold = holdSlow(e.frontend(), 10*time.Second)
				defer hold.Close()
				time.Sleep(500 * time.Millisecond)
			}
			b := e.startRollout("apply", "--batch", "1", "--yes", "--ui", "json")
			ev, ok := b.waitEvent(90*time.Second, c.at)
			if !ok {
				r := b.wait(30 * time.Second)
				dump(t, r)
				t.Fatalf("the run never reached %s", c.name)
			}
			b.signal(os.Interrupt)
			sent := time.Now()
			if hold != nil {
				hold.Stop()
			}
			canary := ev.Host
			r := b.wait(90 * time.Second)
			took := time.Since(sent)
			t.Logf("exit %d %s after SIGINT", r.code, took.Round(time.Millisecond))
			if c.hold && took > 6*time.Second {
				t.Errorf("a safe stop during the drain waited %s for sessions to end: nothing had changed, the host can go back at once", took.Round(time.Millisecond))
			}
			if r.code != 130 {
				dump(t, r)
				t.Fatalf("exit %d, want 130", r.code)
			}
			if !strings.Contains(r.stderr, "stopping safely") || !strings.Contains(r.stderr, "Ctrl-C again to stop now") {
				t.Errorf("Ctrl-C was not answered with what happens now:\n%s", r.stderr)
			}
			evs := checkJSONContract(t, r.stdout, 130)
			last := evs[len(evs)-1]
			if last.Status != "interrupted" {
				t.Errorf("run_done status %q, want interrupted", last.Status)
			}
			done := hostDone(evs)
			if got := event.Outcome(done[canary].Status); got != c.want {
				dump(t, r)
				t.Fatalf("canary %s ended %q, want %q", canary, got, c.want)
			}
			for _, h := range e.f.Hosts {
				if d := done[h.Name]; h.Name != canary && d.Status != string(event.OutcomeNotStarted) {
					t.Errorf("%s was not in the canary batch but ended %q, want not_started", h.Name, d.Status)
				}
			}
			if last.Counts[event.OutcomeNotStarted] != 1 {
				t.Errorf("run_done counts %v, want 1 not_started", last.Counts)
			}
			// nothing drained unless it failed (none should fail here)
			failed := map[string]bool{}
			for h, d := range done {
				if o := event.Outcome(d.Status); o == event.OutcomeDrained || o == event.OutcomeUnknown {
					failed[h] = true
					if !strings.Contains(last.Message, h) {
						t.Errorf("%s ended %s but the summary does not name it: %q", h, o, last.Message)
					}
				}
			}
			e.checkNoneDrained(t, failed)
			e.checkJournalRun(t, evs[0].Run, "interrupted")
			ch := e.host(t, canary)
			if c.want == event.OutcomeStopped {
				if e.liveConfig(ch) != before[canary] {
					t.Errorf("stopped canary %s: live config changed", canary)
				}
				if pid, _ := e.f.AppPID(ch); pid != pids[canary] {
					t.Errorf("stopped canary %s was restarted (pid %d → %d)", canary, pids[canary], pid)
				}
			} else if v := e.appVersion(t, ch); v != c.version {
				t.Errorf("canary %s answers %q, want %q", canary, v, c.version)
			}
			for _, h := range e.f.Hosts {
				if h.Name != canary && e.liveConfig(h) != before[h.Name] {
					t.Errorf("%s was touched by the interrupted run", h.Name)
				}
			}
			if hold != nil {
				hold.Close()
				e.waitNoSessions(t, 20*time.Second)
			}
			e.rerun(t, rev, c.version)
		})
		if !ok {
			return
		}
	}

	t.Run("double", func(t *testing.T) {
		e.t = t
		rev := e.tags["v2"]
		e.writePlan(rev, "halt", "10s")
		before := map[string]string{}
		for _, h := range e.f.Hosts {
			before[h.Name] = e.liveConfig(h)
		}
		b := e.startRollout("apply", "--batch", "1", "--yes", "--ui", "json")
		ev, ok := b.waitEvent(90*time.Second, func(ev event.Event) bool { return ev.Event == event.HealthProgress })
		if !ok {
			dump(t, b.wait(30*time.Second))
			t.Fatal("the run never reached the health window")
		}
		canary := ev.Host
		b.signal(os.Interrupt)
		time.Sleep(100 * time.Millisecond)
		b.signal(os.Interrupt)
		sent := time.Now()
		r := b.wait(60 * time.Second)
		took := time.Since(sent)
		if r.code != 130 {
			dump(t, r)
			t.Fatalf("exit %d, want 130", r.code)
		}
		if !strings.Contains(r.stderr, "stopping now") {
			t.Errorf("the second Ctrl-C was not answered:\n%s", r.stderr)
		}
		// the window alone had ~10s left: stopping at once is much faster
		if took > 6*time.Second {
			t.Errorf("exit %s after the second SIGINT: not at once", took.Round(time.Millisecond))
		}
		evs := checkJSONContract(t, r.stdout, 130)
		last := evs[len(evs)-1]
		if last.Status != "interrupted" || !strings.Contains(last.Message, "rollout repair") || !strings.Contains(last.Message, canary) {
			t.Errorf("run_done = %+v, want interrupted, naming %s and `rollout repair`", last, canary)
		}
		if d := hostDone(evs)[canary]; d.Status != string(event.OutcomeUnknown) {
			t.Errorf("canary %s ended %q, want unknown", canary, d.Status)
		}
		if last.Counts[event.OutcomeUnknown] != 1 || last.Counts[event.OutcomeNotStarted] != 1 {
			t.Errorf("run_done counts %v, want 1 unknown, 1 not_started", last.Counts)
		}
		e.checkJournalRun(t, evs[0].Run, "interrupted")
		for name, s := range e.stats(t) {
			t.Logf("after the double SIGINT: %s %s weight %d", name, s.Status, s.Weight)
		}

		// the run ended (not killed): its locks must be gone
		u := e.rollout("unlock")
		if u.code != 0 || !strings.Contains(u.stdout, "is not locked") {
			dump(t, u)
			t.Errorf("locks left after the double SIGINT (exit %d); unlocking", u.code)
			if u := e.rollout("unlock", "--yes"); u.code != 0 {
				dump(t, u)
				t.Fatalf("unlock --yes: exit %d", u.code)
			}
		}

		rp := e.rollout("repair", "--yes")
		if rp.code != 0 || !strings.Contains(rp.stdout, canary) {
			dump(t, rp)
			t.Fatalf("repair: exit %d, want 0 naming %s", rp.code, canary)
		}
		t.Logf("repair:\n%s", rp.stdout)
		e.checkNoneDrained(t, nil)
		if got := e.liveConfig(e.host(t, canary)); got != before[canary] {
			t.Errorf("after repair, %s's config is not the one before the run:\n%s", canary, got)
		}
		e.rerun(t, rev, "version=2")
	})
}

// approve_after without a terminal and without --yes is refused before
// anything is touched (and a refused json run still prints run_start …
// run_done with exit_code 2). --yes answers the start prompt only: the run
// stops at the gate with exit 1, the canary done and the rest not started,
// and names the command to continue. With --auto-approve it goes through,
// and its JSON stream and the journal record who approved.
func TestApproveAfterWithoutTerminal(t *testing.T) {
	t.Parallel()
	e := setup(t, 3, 1)
	e.extra = `  approve_after = [1]`
	e.writePlan(e.tags["v2"], "halt", "0s")
	e.waitAllUp(t)
	snap := e.snapshot(t)
	for _, ui := range []string{"json", "plain"} {
		r := e.rollout("apply", "--batch", "1", "--ui", ui) // stdin is /dev/null: not a terminal
		if r.code != 2 || !strings.Contains(r.stderr, "--yes") || !strings.Contains(r.stderr, "approv") || !strings.Contains(r.stderr, "--auto-approve") {
			dump(t, r)
			t.Fatalf("--ui %s: exit %d, want 2 with a message about approval, --yes and --auto-approve", ui, r.code)
		}
		if strings.Contains(r.stdout, "host_phase") {
			t.Errorf("--ui %s: a refused run wrote host events to stdout: %q", ui, r.stdout)
		}
		if ui == "json" {
			evs := parseEvents(t, r.stdout)
			if len(evs) != 2 || evs[0].Event != event.RunStart || evs[1].Event != event.RunDone || evs[1].ExitCode == nil || *evs[1].ExitCode != 2 {
				t.Errorf("--ui json refused: stdout is not run_start … run_done exit_code 2:\n%s", r.stdout)
			}
		} else if r.stdout != "" {
			t.Errorf("--ui plain: a refused run wrote to stdout: %q", r.stdout)
		}
	}
	if evs, err := journal.Read(filepath.Join(e.dir, ".rollout", "journal.jsonl")); err == nil {
		for _, ev := range evs {
			if ev.Event == event.HostPhase {
				t.Errorf("journal has a host_phase after a refusal: %+v", ev)
			}
		}
	}
	for name, s := range snap {
		if s.revision != nil {
			t.Fatalf("%s had a current.json before the refused run", name)
		}
	}
	e.untouched(t, snap, "a refused run")
	e.checkNoneDrained(t, nil)

	// --yes alone: the canary is done, the run stops at the gate
	r := e.rollout("apply", "--batch", "1", "--yes", "--ui", "json")
	if r.code != 1 {
		dump(t, r)
		t.Fatalf("--yes without --auto-approve: exit %d, want 1 (stopped at the gate)", r.code)
	}
	evs := checkJSONContract(t, r.stdout, 1)
	last := evs[len(evs)-1]
	if last.Counts[event.OutcomeOK] != 1 || last.Counts[event.OutcomeNotStarted] != 2 || !strings.Contains(last.Next, "--auto-approve") {
		t.Errorf("stopped at the gate: run_done = %+v, want 1 ok, 2 not_started, next naming --auto-approve", last)
	}
	for _, ev := range evs {
		if ev.Event == event.Approved {
			t.Errorf("--yes approved a gate: %+v", ev)
		}
	}
	e.checkNoneDrained(t, nil)

	r = e.rollout("apply", "--batch", "1", "--yes", "--auto-approve", "--ui", "json")
	if r.code != 0 {
		dump(t, r)
		t.Fatalf("with --auto-approve: exit %d, want 0", r.code)
	}
	evs = checkJSONContract(t, r.stdout, 0)
	last = evs[len(evs)-1]
	if last.Status != "ok" || last.Counts[event.OutcomeOK] != 2 || last.Counts[event.OutcomeSkipped] != 1 {
		t.Errorf("run_done = %+v, want ok with 2 ok and the canary skipped", last)
	}
	// the approval (given by --auto-approve, and saying so) sits between
	// batch 1 and batch 2
	var order []string
	for _, ev := range evs {
		switch ev.Event {
		case event.BatchStart, event.BatchDone:
			order = append(order, fmt.Sprintf("%s%d", ev.Event, ev.Batch))
		case event.Approved:
			order = append(order, "approved")
			if ev.Message != "approved by --auto-approve" {
				t.Errorf("approved event does not record --auto-approve: %+v", ev)
			}
		}
	}
	want := "batch_start1 batch_done1 approved batch_start2 batch_done2"
	if got := strings.Join(order, " "); got != want {
		t.Errorf("batches and approvals: %s\nwant: %s", got, want)
	}
	// every host went through the documented phases in order
	phases := map[string][]string{}
	for _, ev := range evs {
		if ev.Event == event.HostPhase && ev.Status == event.StatusRunning {
			phases[ev.Host] = append(phases[ev.Host], string(ev.Phase))
		}
	}
	var names []string
	for h := range phases {
		names = append(names, h)
	}
	sort.Strings(names)
	for _, h := range names {
		got := strings.Join(phases[h], " ")
		if !strings.HasPrefix(got, "drain ") || !strings.Contains(got, " install ") || !strings.HasSuffix(got, " undrain record") {
			t.Errorf("%s phases: %s", h, got)
		}
	}
	if len(names) != 2 {
		t.Errorf("%d hosts had phases, want 2 (the canary was done by the run stopped at the gate)", len(names))
	}
	journaled := false
	if jevs, err := journal.Read(filepath.Join(e.dir, ".rollout", "journal.jsonl")); err == nil {
		for _, ev := range jevs {
			if ev.Run == evs[0].Run && ev.Event == event.Approved && ev.Message == "approved by --auto-approve" {
				journaled = true
			}
		}
	}
	if !journaled {
		t.Error("the journal does not record the approval by --auto-approve")
	}
	e.checkAtRevision(t, e.tags["v2"], "version=2")
	e.checkJournalRun(t, evs[0].Run, "ok")
}
