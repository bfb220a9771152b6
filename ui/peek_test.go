package ui

import (
	"fmt"
	"testing"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/rollout-sh/rollout/rollout/event"
)

func TestPeek(t *testing.T) {
	var batches [][]string
	for b := 0; b < 10; b++ {
		var hs []string
		for h := 0; h < 4; h++ {
			hs = append(hs, fmt.Sprintf("app-%02d-%d", b, h))
		}
		batches = append(batches, hs)
	}
	r := &run{}
	r.add(0, event.Event{Event: event.RunStart, Plan: "app", Revision: testRev, Scope: "--batch 4", Batches: batches})
	for b := 1; b <= 6; b++ {
		r.add(float64(b), event.Event{Event: event.BatchStart, Batch: b, Hosts: batches[b-1]})
		for _, h := range batches[b-1] {
			r.add(float64(b), phase(h, b, event.PhaseDrain, event.StatusRunning))
			if b < 6 {
				r.add(float64(b), event.Event{Event: event.HostDone, Host: h, Batch: b, Status: "ok", Revision: testRev})
			}
		}
		if b < 6 {
			r.add(float64(b), event.Event{Event: event.BatchDone, Batch: b, Status: "ok"})
		}
	}
	var m tea.Model = NewModel(nil, fixedNow)
	m, _ = m.Update(tea.WindowSizeMsg{Width: 80, Height: 24})
	for _, e := range r.events {
		m, _ = m.Update(e)
	}
	fmt.Println(m.View())
	m, _ = m.Update(tea.WindowSizeMsg{Width: 40, Height: 10})
	fmt.Println(m.View())
	m, _ = m.Update(key("?"))
	m, _ = m.Update(tea.WindowSizeMsg{Width: 80, Height: 24})
	fmt.Println(m.View())
	s := newScenario()
	m = NewModel(nil, fixedNow)
	m, _ = m.Update(tea.WindowSizeMsg{Width: 50, Height: 14})
	for _, e := range s.events {
		m, _ = m.Update(e)
	}
	fmt.Println(m.View())
}
