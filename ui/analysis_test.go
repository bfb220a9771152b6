package ui

import (
	"encoding/json"
	"sort"
	"strings"
	"testing"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/rollout-sh/rollout/rollout/event"
)

func analysisRun() []event.Event {
	r := &run{}
	one, half := 0.01, 0.5
	limits := event.AnalysisLimits{MaxErrorRate: &one, MaxResponseTimeIncrease: &half, MinRequests: 100, IntervalS: 5, DeadlineS: 60}
	r.add(0, event.Event{Event: event.RunStart, Plan: "web", Revision: testRev, Batches: [][]string{{"web1"}, {"web2", "web3"}}})
	r.add(1, event.Event{Event: event.BatchStart, Batch: 1, Hosts: []string{"web1"}})
	r.add(2, phase("web1", 1, event.PhaseUndrain, event.StatusRunning))
	r.add(2, event.Event{Event: event.RampStep, Host: "web1", Batch: 1, Weight: event.Int(25)})
	r.add(7, event.Event{Event: event.Analysis, Host: "web1", Batch: 1, Status: "fail",
		Message: "error rate 4.72% (10 of 212 requests) is above max_error_rate 1%",
		Analysis: &event.AnalysisFigures{Kind: "haproxy", Step: "ramp 25%", Verdict: "fail", WindowS: 5, ElapsedS: 5, Limits: limits,
			Canary:   event.CohortFigures{Servers: []string{"web1"}, Requests: 212, Errors: 10, ErrorRate: 10.0 / 212, RTimeMS: event.Float(21)},
			Baseline: event.CohortFigures{Servers: []string{"web2", "web3"}, Requests: 830, ErrorRate: 0, RTimeMS: event.Float(20.25)}}})
	return r.events
}

// The TUI shows the two cohorts side by side with the limits they are
// judged against.
func TestTUIAnalysisSideBySide(t *testing.T) {
	for _, sz := range [][2]int{{120, 30}, {80, 24}, {40, 12}} {
		var m tea.Model = NewModel(nil, fixedNow)
		m, _ = m.Update(tea.WindowSizeMsg{Width: sz[0], Height: sz[1]})
		for _, e := range analysisRun() {
			m, _ = m.Update(e)
		}
		view := m.View()
		checkFits(t, view, sz[0], sz[1])
		if sz[0] < 120 {
			continue
		}
		for _, want := range []string{"analysis ramp 25%  fail", "limits: err ≤ 1%, rtime ≤ unchanged +50%, min 100 req",
			"canary    web1                 212 req  err 4.72%   rtime 21.0ms",
			"unchanged web2,web3            830 req  err 0%      rtime 20.2ms"} {
			if !strings.Contains(view, want) {
				t.Errorf("view lacks %q:\n%s", want, view)
			}
		}
	}
}

// The plain and JSON-replay line of an analysis event carries both cohorts
// and the reason.
func TestPlainAnalysisLine(t *testing.T) {
	evs := analysisRun()
	f := newFormatter()
	f.observe(evs[0])
	got := strings.Join(f.format(evs[len(evs)-1], nil), "\n")
	for _, want := range []string{"analysis   fail", "ramp 25%: web1 212 req, 4.72% err, 21.0ms | unchanged web2,web3 830 req, 0% err, 20.2ms",
		"above max_error_rate 1%"} {
		if !strings.Contains(got, want) {
			t.Errorf("line %q lacks %q", got, want)
		}
	}
}

// The analysis event's keys, as docs/json-events.md documents them.
func TestJSONAnalysisSchema(t *testing.T) {
	evs := analysisRun()
	lines := jsonLines(t, evs)
	var top map[string]json.RawMessage
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &top); err != nil {
		t.Fatal(err)
	}
	var a, canary, limits map[string]json.RawMessage
	_ = json.Unmarshal(top["analysis"], &a)
	_ = json.Unmarshal(a["canary"], &canary)
	_ = json.Unmarshal(a["limits"], &limits)
	got := strings.Join([]string{keysOf(top), keysOf(a), keysOf(canary), keysOf(limits)}, "\n")
	want := strings.Join([]string{
		"analysis batch event host message run status time",
		"baseline canary elapsed_s kind limits step verdict window_s",
		"error_rate errors requests rtime_ms servers",
		"deadline_s interval_s max_error_rate max_response_time_increase min_requests",
	}, "\n")
	if got != want {
		t.Errorf("analysis event keys:\n%s\nwant (docs/json-events.md):\n%s", got, want)
	}
}

func keysOf(m map[string]json.RawMessage) string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return strings.Join(ks, " ")
}
