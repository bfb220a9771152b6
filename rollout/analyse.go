package rollout

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/rollout-sh/rollout/analysis"
	"github.com/rollout-sh/rollout/plan"
	"github.com/rollout-sh/rollout/rollout/event"
)

// Analyser reads the counters canary analysis compares: every server on
// every load balancer (or what the plan's command prints). A source that
// cannot be read is reported in the snapshot's Unread, not as an error, so
// one LB of a pair being away does not stop the other from being judged.
type Analyser interface {
	Read(ctx context.Context) analysis.Snapshot
}

// ErrAnalysis marks a host failed by canary analysis; on_failure handles it
// like a failure after restart.
var ErrAnalysis = errors.New("canary analysis failed")

// AnalysisError is a failed verdict with its evidence.
type AnalysisError struct {
	Step   string // "ramp 10%", "bake"
	Result analysis.Result
	Reason string
}

func (e *AnalysisError) Error() string {
	c, b := e.Result.Canary, e.Result.Baseline
	s := fmt.Sprintf("canary analysis at %s: %s (window %s; %s: %s", e.Step, e.Reason,
		e.Result.Window.Round(100*time.Millisecond), strings.Join(c.Servers, ","), cohortText(c))
	if len(b.Servers) > 0 {
		s += fmt.Sprintf("; unchanged %s: %s", strings.Join(b.Servers, ","), cohortText(b))
	}
	return s + ")"
}

func (e *AnalysisError) Unwrap() error { return ErrAnalysis }

func cohortText(c analysis.Cohort) string {
	s := fmt.Sprintf("%d requests, %d errors (%s)", c.Requests, c.Errors, analysis.Percent(c.ErrorRate))
	if c.HasRTime {
		s += fmt.Sprintf(", rtime %.1fms", c.RTimeMS)
	}
	return s
}

// serverOf is the name the load balancer (and an analysis command) knows
// the host by.
func serverOf(t *Target) string {
	if t.Spec != nil && t.Spec.Drain.Server != "" {
		return t.Spec.Drain.Server
	}
	return t.Host.Name
}

// changedServers are the servers this run changed or is changing, other
// than except: they belong to neither cohort.
func (r *run) changedServers(except string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, name := range r.order {
		if name == except {
			continue
		}
		_, flying := r.inFlight[name]
		o := r.outcomes[name]
		if flying || o == event.OutcomeOK || o == event.OutcomeSkipped || o == event.OutcomeDrained || o == event.OutcomeUnknown {
			out = append(out, serverOf(r.hosts[name].t))
		}
	}
	return out
}

func thresholds(a *plan.Analysis) analysis.Thresholds {
	return analysis.Thresholds{MaxErrorRate: a.MaxErrorRate, MaxErrorRateIncrease: a.MaxErrorRateIncrease,
		MaxResponseTimeIncrease: a.MaxResponseTimeIncrease, MinRequests: int64(a.MinRequests)}
}

// analysisStart reads the counters the host's window starts from, right
// before it takes traffic again. Without analysis it does nothing.
func (p *hostPipeline) analysisStart(ctx context.Context) {
	if p.r.analyser == nil || p.h.revert {
		return // a revert (rollback_all) goes back to what served before: the gate judges it
	}
	s := p.r.analyser.Read(ctx)
	p.anaStart = &s
}

// judge holds the host at its current weight and takes a verdict every
// interval: a pass after at least least ends the step; a fail ends it with
// an *AnalysisError; too little traffic holds until the deadline (or least,
// if longer) and then fails with "not enough traffic".
func (p *hostPipeline) judge(ctx context.Context, step string, least time.Duration) error {
	r := p.r
	a := r.pr.Plan.Analysis
	if r.analyser == nil || a == nil || p.anaStart == nil {
		return nil
	}
	name := p.h.t.Host.Name
	canary := []string{serverOf(p.h.t)}
	th := thresholds(a)
	begin := r.env.Now()
	limit := max(a.Deadline, least)
	for {
		if err := r.env.Sleep(ctx, a.Interval); err != nil {
			return err
		}
		end := r.analyser.Read(ctx)
		res := analysis.Compare(*p.anaStart, end, canary, r.changedServers(name), th)
		elapsed := r.env.Now().Sub(begin)
		reason := res.Reason
		verdict := res.Verdict
		if verdict == analysis.Hold && elapsed >= limit {
			verdict = analysis.Fail
			reason = fmt.Sprintf("%s after %s (deadline %s)", res.Reason, elapsed.Round(100*time.Millisecond), limit)
		}
		r.emit(event.Event{Event: event.Analysis, Host: name, Batch: p.batch, Status: string(verdict), Message: reason,
			Analysis: figures(a, step, verdict, res, elapsed)})
		switch {
		case verdict == analysis.Fail:
			return &AnalysisError{Step: step, Result: res, Reason: reason}
		case verdict == analysis.Pass && elapsed >= least:
			return nil
		}
	}
}

// stopServing takes a host whose verdict failed out of every LB again and
// waits for its sessions, so that what on_failure does next (a rollback
// restarts it) drops nothing.
func (p *hostPipeline) stopServing(ctx context.Context) {
	if err := p.h.drainer.Drain(ctx); err != nil {
		p.r.log("error", "%s: draining after the failed analysis: %v", p.h.t.Host.Name, err)
		return
	}
	if err := p.waitZero(ctx); err != nil {
		p.r.log("warn", "%s: after the failed analysis: %v", p.h.t.Host.Name, err)
	}
}

func figures(a *plan.Analysis, step string, v analysis.Verdict, res analysis.Result, elapsed time.Duration) *event.AnalysisFigures {
	f := &event.AnalysisFigures{Kind: a.Kind, Step: step, Verdict: string(v), WindowS: res.Window.Seconds(), ElapsedS: elapsed.Seconds(),
		Canary: cohortFigures(res.Canary), Baseline: cohortFigures(res.Baseline), Notes: res.Notes,
		Limits: event.AnalysisLimits{MaxErrorRate: a.MaxErrorRate, MaxErrorRateIncrease: a.MaxErrorRateIncrease,
			MaxResponseTimeIncrease: a.MaxResponseTimeIncrease, MinRequests: a.MinRequests,
			IntervalS: a.Interval.Seconds(), DeadlineS: a.Deadline.Seconds()}}
	if len(res.PerLB) > 1 {
		for _, lb := range res.PerLB {
			f.PerLB = append(f.PerLB, event.LBFigures{LB: lb.LB, Canary: cohortFigures(lb.Canary), Baseline: cohortFigures(lb.Baseline)})
		}
	}
	return f
}

func cohortFigures(c analysis.Cohort) event.CohortFigures {
	f := event.CohortFigures{Servers: c.Servers, Requests: c.Requests, Errors: c.Errors, ErrorRate: c.ErrorRate, Retries: c.Retries}
	if f.Servers == nil {
		f.Servers = []string{}
	}
	if c.HasRTime {
		f.RTimeMS = event.Float(c.RTimeMS)
	}
	return f
}
