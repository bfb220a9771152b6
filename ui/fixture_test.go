package ui

import (
	"bytes"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"

	"github.com/rollout-sh/rollout/rollout/event"
)

func TestMain(m *testing.M) {
	lipgloss.SetColorProfile(termenv.Ascii)
	os.Exit(m.Run())
}

const (
	testRev  = "9fceb02d0ae598e95dc970b74767f19372d61af8"
	prevRev  = "1a2b3c4d5e6f708192a3b4c5d6e7f80912a3b4c5"
	testRun  = "r-20250301-030100"
	nextStep = "rollout rollback web.hcl --limit web3"
)

var t0 = time.Date(2025, 3, 1, 3, 1, 0, 0, time.UTC)

// run builds a synthetic run: events are added at offsets from t0.
type run struct{ events []event.Event }

func (r *run) add(sec float64, e event.Event) *run {
	e.Time = t0.Add(time.Duration(sec * float64(time.Second)))
	e.Run = testRun
	r.events = append(r.events, e)
	return r
}

func phase(host string, batch int, p event.Phase, status string) event.Event {
	return event.Event{Event: event.HostPhase, Host: host, Batch: batch, Phase: p, Status: status}
}

// scenario is a whole run: batch 1 (web1) succeeds after draining
// sessions, a health window and a ramp; in batch 2 web2 succeeds and web3
// fails its health window and is left drained; web4 (batch 3) never starts.
// The marks name the index just after the events of each snapshot.
type scenario struct {
	events []event.Event
	marks  map[string]int
}

// testOperatorURL is the CI run the scenario's operator acted from.
const testOperatorURL = "https://github.com/acme/web/actions/runs/42"

func newScenario() scenario {
	r := &run{}
	marks := map[string]int{}
	mark := func(name string) { marks[name] = len(r.events) }

	r.add(0, event.Event{Event: event.RunStart, Schema: event.Schema, Plan: "web", Revision: testRev, Scope: "--batch 1,50%",
		Batches: [][]string{{"web1"}, {"web2", "web3"}, {"web4"}}, Operator: "alice", OperatorURL: testOperatorURL})
	r.add(0.5, event.Event{Event: event.PreflightStart, Hosts: []string{"web1", "web2", "web3", "web4"}})
	r.add(0.9, event.Event{Event: event.RemoteOutput, Host: "web1", Phase: event.PhaseValidate, Status: event.StatusOK,
		Message: `file "app.conf" (preflight)`, Remote: event.NewRemote("appd -check -config /etc/app/.app.conf.rollout-preflight-"+testRun, 0, "config ok: 3 keys\n")})
	for i, h := range []string{"web1", "web2", "web3", "web4"} {
		r.add(1+float64(i)*0.2, event.Event{Event: event.PreflightHost, Host: h, Status: event.StatusOK})
	}
	r.add(2, event.Event{Event: event.PreflightDone, Status: event.StatusOK})

	// batch 1: web1
	r.add(3, event.Event{Event: event.BatchStart, Batch: 1, Hosts: []string{"web1"}})
	r.add(3, phase("web1", 1, event.PhaseLock, event.StatusOK))
	r.add(3, phase("web1", 1, event.PhaseDrain, event.StatusRunning))
	r.add(4, event.Event{Event: event.DrainSessions, Host: "web1", Batch: 1, Sessions: event.Int(12)})
	r.add(7, event.Event{Event: event.DrainSessions, Host: "web1", Batch: 1, Sessions: event.Int(12)})
	r.add(15, event.Event{Event: event.DrainSessions, Host: "web1", Batch: 1, Sessions: event.Int(12)})
	mark("draining")
	r.add(16, event.Event{Event: event.DrainSessions, Host: "web1", Batch: 1, Sessions: event.Int(3)})
	r.add(18, event.Event{Event: event.DrainSessions, Host: "web1", Batch: 1, Sessions: event.Int(0)})
	r.add(18, phase("web1", 1, event.PhaseDrain, event.StatusOK))
	for i, p := range []event.Phase{event.PhaseStage, event.PhaseValidate, event.PhaseInstall, event.PhaseCheck, event.PhaseRestart} {
		r.add(18.5+float64(i)*0.5, phase("web1", 1, p, event.StatusOK))
	}
	r.add(20.8, event.Event{Event: event.RemoteOutput, Host: "web1", Batch: 1, Phase: event.PhaseRestart, Status: event.StatusOK,
		Remote: event.NewRemote("systemctl restart appd", 0, "")})
	r.add(21, phase("web1", 1, event.PhaseHealth, event.StatusRunning))
	for s := 1.0; s <= 5; s++ {
		r.add(21+s, event.Event{Event: event.HealthProgress, Host: "web1", Batch: 1,
			WindowElapsed: event.Float(s), Window: event.Float(10), Message: "200 OK"})
	}
	mark("health")
	for s := 6.0; s <= 10; s++ {
		r.add(21+s, event.Event{Event: event.HealthProgress, Host: "web1", Batch: 1,
			WindowElapsed: event.Float(s), Window: event.Float(10), Message: "200 OK"})
	}
	r.add(31, phase("web1", 1, event.PhaseHealth, event.StatusOK))
	r.add(31, phase("web1", 1, event.PhaseUndrain, event.StatusRunning))
	for i, w := range []int{10, 50, 100} {
		r.add(32+float64(i)*2, event.Event{Event: event.RampStep, Host: "web1", Batch: 1, Weight: event.Int(w)})
	}
	mark("ramp")
	r.add(37, phase("web1", 1, event.PhaseUndrain, event.StatusOK))
	r.add(37, phase("web1", 1, event.PhaseRecord, event.StatusOK))
	r.add(37, event.Event{Event: event.HostDone, Host: "web1", Batch: 1, Status: string(event.OutcomeOK), Revision: testRev})
	r.add(37, event.Event{Event: event.BatchDone, Batch: 1, Status: event.StatusOK})
	r.add(37, event.Event{Event: event.Waiting, Status: string(event.WaitApproval), Message: "canary web1 is done: approve batch 2 (2 hosts)"})
	mark("approval")
	r.add(50, event.Event{Event: event.Approved, Message: "approved by a person", Operator: "alice", OperatorURL: testOperatorURL})

	// batch 2: web2 ok, web3 fails its health window
	r.add(50, event.Event{Event: event.BatchStart, Batch: 2, Hosts: []string{"web2", "web3"}})
	both := func(sec float64, mk func(h string) event.Event) {
		for _, h := range []string{"web2", "web3"} {
			r.add(sec, mk(h))
		}
	}
	both(50, func(h string) event.Event { return phase(h, 2, event.PhaseLock, event.StatusOK) })
	both(50, func(h string) event.Event { return phase(h, 2, event.PhaseDrain, event.StatusRunning) })
	both(51, func(h string) event.Event {
		return event.Event{Event: event.DrainSessions, Host: h, Batch: 2, Sessions: event.Int(0)}
	})
	both(51, func(h string) event.Event { return phase(h, 2, event.PhaseDrain, event.StatusOK) })
	both(52, func(h string) event.Event { return phase(h, 2, event.PhaseRestart, event.StatusOK) })
	both(52, func(h string) event.Event { return phase(h, 2, event.PhaseHealth, event.StatusRunning) })
	r.add(53, event.Event{Event: event.Log, Level: "debug", Message: "probe http://10.0.0.3:8080/healthz"})
	r.add(55, event.Event{Event: event.HealthProgress, Host: "web3", Batch: 2,
		WindowElapsed: event.Float(3), Window: event.Float(10), Message: "200 OK"})
	r.add(56, event.Event{Event: event.HealthProgress, Host: "web3", Batch: 2,
		WindowElapsed: event.Float(0), Window: event.Float(10), Message: "connection refused"})
	r.add(58, withMessage(phase("web3", 2, event.PhaseHealth, event.StatusFailed), "unit appd restarted during the window (NRestarts 0 -> 1)"))
	r.add(58, event.Event{Event: event.HostDone, Host: "web3", Batch: 2, Status: string(event.OutcomeDrained), Revision: testRev,
		Message:     "unit appd restarted during the window (NRestarts 0 -> 1)",
		Diagnostics: "● appd.service - demo app\n   Active: activating (auto-restart)\nappd[812]: panic: config: unknown key \"workers\""})
	r.add(58, event.Event{Event: event.Log, Level: "warn", Message: "halting: 1 host failed (max_failures 0)"})
	mark("failure")
	r.add(62, phase("web2", 2, event.PhaseHealth, event.StatusOK))
	r.add(62, phase("web2", 2, event.PhaseUndrain, event.StatusOK))
	r.add(62, event.Event{Event: event.HostDone, Host: "web2", Batch: 2, Status: string(event.OutcomeOK), Revision: testRev})
	r.add(62, event.Event{Event: event.BatchDone, Batch: 2, Status: event.StatusFailed})
	r.add(62, event.Event{Event: event.HostDone, Host: "web4", Status: string(event.OutcomeNotStarted), Revision: prevRev,
		Message: "the run halted before batch 3"})
	r.add(63, event.Event{Event: event.RunDone, Status: event.StatusFailed, ExitCode: event.Int(1),
		Counts:  map[event.Outcome]int{event.OutcomeOK: 2, event.OutcomeDrained: 1, event.OutcomeNotStarted: 1},
		Message: nextStep, Next: nextStep, Operator: "alice", OperatorURL: testOperatorURL})
	mark("done")
	return scenario{events: r.events, marks: marks}
}

func withMessage(e event.Event, m string) event.Event { e.Message = m; return e }

// upTo returns the events of the scenario up to a mark.
func (s scenario) upTo(name string) []event.Event {
	n, ok := s.marks[name]
	if !ok {
		panic("no mark " + name)
	}
	return s.events[:n]
}

// fakeControls records the calls the views make.
type fakeControls struct {
	mu    sync.Mutex
	calls []string
}

func (f *fakeControls) record(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, s)
}

func (f *fakeControls) Pause()     { f.record("pause") }
func (f *fakeControls) Resume()    { f.record("resume") }
func (f *fakeControls) Abort()     { f.record("abort") }
func (f *fakeControls) Approve()   { f.record("approve") }
func (f *fakeControls) Interrupt() { f.record("interrupt") }

func (f *fakeControls) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

// recorder is an event.Sink keeping what it receives.
type recorder struct {
	mu     sync.Mutex
	events []event.Event
}

func (r *recorder) Emit(e event.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorder) Events() []event.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]event.Event(nil), r.events...)
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Read(p)
}
