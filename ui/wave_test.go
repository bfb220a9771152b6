package ui

import (
	"strings"
	"testing"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/rollout-sh/rollout/rollout/event"
)

// A plan with waves: the TUI's batch headers and the plain batch line name
// the wave.
func TestViewsNameTheWave(t *testing.T) {
	evs := []event.Event{
		{Time: t0, Run: testRun, Event: event.RunStart, Schema: event.Schema, Plan: "web", Revision: testRev, Hosts: []string{"web1", "web2"}, Batches: [][]string{{"web1"}, {"web2"}}},
		{Time: t0, Run: testRun, Event: event.BatchStart, Batch: 1, Hosts: []string{"web1"}, Wave: "dc1"},
		{Time: t0, Run: testRun, Event: event.BatchDone, Batch: 1, Status: "ok", Wave: "dc1"},
		{Time: t0, Run: testRun, Event: event.BatchStart, Batch: 2, Hosts: []string{"web2"}, Wave: "dc2"},
	}
	var m tea.Model = NewModel(nil, fixedNow)
	m, _ = m.Update(tea.WindowSizeMsg{Width: 120, Height: 30})
	for _, e := range evs {
		m, _ = m.Update(e)
	}
	view := m.View()
	for _, want := range []string{"wave dc1 · batch 1/2", "wave dc2 · batch 2/2"} {
		if !strings.Contains(view, want) {
			t.Errorf("TUI lacks %q:\n%s", want, view)
		}
	}
	f := newFormatter()
	f.observe(evs[0])
	if got := strings.Join(f.format(evs[3], nil), "\n"); !strings.Contains(got, "wave dc2: web2") {
		t.Errorf("plain batch line %q does not name the wave", got)
	}
}
