package journal

import (
	"time"

	"github.com/rollout-sh/rollout/rollout/event"
)

// Run kinds, carried in the Message of a run's run_start event.
const (
	KindApply    = "apply"
	KindRollback = "rollback"
	// KindRepair is a `rollout repair`: journaled as a run of its own
	// (run_start, host_phase restore, host_done, run_done), so history
	// lists it and status attributes a host's state to it
	KindRepair = "repair"
)

// HostResult is how one host fared in a run.
type HostResult struct {
	Host string
	// Outcome is the Status of the host's host_done event. Without one it
	// is OutcomeUnknown when a phase of the host was seen (the run died
	// while the host was in flight) and OutcomeNotStarted otherwise.
	Outcome event.Outcome
	// Revision is the revision host_done reported (the one the host ended
	// on); empty without host_done.
	Revision    string
	Batch       int         // last batch number seen for the host
	Phase       event.Phase // last phase seen
	Message     string      // host_done's message
	Diagnostics string      // host_done's diagnostics
}

// RunSummary is one run as the journal saw it.
type RunSummary struct {
	ID       string
	Plan     string // from run_start
	Revision string // target revision, from run_start
	// Kind is KindApply, KindRollback or KindRepair: the Message of run_start, as the
	// engine writes it. Empty when the run has no run_start.
	Kind  string
	Scope string // from run_start
	// Operator and OperatorURL: who the run was for (run_start's, else
	// run_done's operator; empty for runs journaled before rollout
	// recorded it)
	Operator    string
	OperatorURL string
	Start       time.Time
	// End is the time of run_done, or of the last event seen for a run
	// that did not finish.
	End      time.Time
	Finished bool // a run_done was seen
	// Status, ExitCode and Message come from run_done; meaningful only
	// when Finished.
	Status   string
	ExitCode int
	Message  string
	Hosts    []HostResult // in order of first mention
	Events   []event.Event
}

// Runs groups events by run id, in order of each run's first event. Hosts
// are those named by run_start's batches, preflight_start, batch_start and
// any host event.
func Runs(events []event.Event) []RunSummary {
	var runs []*RunSummary
	byID := map[string]*RunSummary{}
	hostIdx := map[string]map[string]int{}
	done := map[string]map[string]bool{}
	for _, e := range events {
		r := byID[e.Run]
		if r == nil {
			r = &RunSummary{ID: e.Run, Start: e.Time}
			byID[e.Run] = r
			runs = append(runs, r)
			hostIdx[e.Run] = map[string]int{}
			done[e.Run] = map[string]bool{}
		}
		r.Events = append(r.Events, e)
		if !r.Finished {
			r.End = e.Time
		}
		host := func(name string) *HostResult {
			i, ok := hostIdx[e.Run][name]
			if !ok {
				i = len(r.Hosts)
				hostIdx[e.Run][name] = i
				r.Hosts = append(r.Hosts, HostResult{Host: name, Outcome: event.OutcomeNotStarted})
			}
			return &r.Hosts[i]
		}
		switch e.Event {
		case event.RunStart:
			r.Plan, r.Revision, r.Kind, r.Scope, r.Start = e.Plan, e.Revision, e.Message, e.Scope, e.Time
			r.Operator, r.OperatorURL = e.Operator, e.OperatorURL
			for _, b := range e.Batches {
				for _, h := range b {
					host(h)
				}
			}
		case event.PreflightStart, event.BatchStart:
			for _, h := range e.Hosts {
				host(h)
			}
		case event.RunDone:
			r.Finished, r.End, r.Status, r.Message = true, e.Time, e.Status, e.Message
			if r.Operator == "" {
				r.Operator, r.OperatorURL = e.Operator, e.OperatorURL
			}
			if e.ExitCode != nil {
				r.ExitCode = *e.ExitCode
			}
		}
		if e.Host == "" {
			continue
		}
		h := host(e.Host)
		if e.Batch != 0 {
			h.Batch = e.Batch
		}
		switch e.Event {
		case event.HostPhase:
			h.Phase = e.Phase
			if !done[e.Run][e.Host] {
				h.Outcome = event.OutcomeUnknown
			}
		case event.HostDone:
			done[e.Run][e.Host] = true
			h.Outcome = event.Outcome(e.Status)
			h.Revision, h.Message, h.Diagnostics = e.Revision, e.Message, e.Diagnostics
			if e.Phase != "" {
				h.Phase = e.Phase
			}
		}
	}
	out := make([]RunSummary, len(runs))
	for i, r := range runs {
		out[i] = *r
	}
	return out
}
