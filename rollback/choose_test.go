package rollback

import (
	"errors"
	"testing"
	"time"

	"github.com/rollout-sh/rollout/rollout/event"
)

func at(min int) time.Time { return time.Date(2026, 11, 22, 1, min, 0, 0, time.UTC) }

func TestChoose(t *testing.T) {
	hosts := []string{"web1", "web2"}
	tests := []struct {
		name    string
		cs      []Completion
		hosts   []string
		current string
		target  string
		err     error
	}{
		{"simple", []Completion{{"web1", "A", at(1)}, {"web2", "A", at(2)}, {"web1", "B", at(3)}, {"web2", "B", at(4)}}, hosts, "B", "A", nil},
		{"skips a revision only one host reached", []Completion{{"web1", "A", at(1)}, {"web2", "A", at(2)}, {"web1", "C", at(3)}, {"web1", "B", at(4)}, {"web2", "B", at(5)}}, hosts, "B", "A", nil},
		{"newest earlier wins", []Completion{{"web1", "A", at(1)}, {"web2", "A", at(2)}, {"web1", "C", at(3)}, {"web2", "C", at(4)}, {"web1", "B", at(5)}, {"web2", "B", at(6)}}, hosts, "B", "C", nil},
		{"partially rolled current", []Completion{{"web1", "A", at(1)}, {"web2", "A", at(2)}, {"web1", "B", at(3)}}, hosts, "B", "A", nil},
		{"only one revision", []Completion{{"web1", "A", at(1)}, {"web2", "A", at(2)}}, hosts, "A", "", ErrNoEarlier},
		{"nothing", nil, hosts, "", "", ErrNoEarlier},
		{"other hosts ignored", []Completion{{"web9", "X", at(9)}, {"web1", "A", at(1)}, {"web1", "B", at(3)}}, []string{"web1"}, "B", "A", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cur, got, err := Choose(tt.cs, tt.hosts)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if got != tt.target || (tt.err == nil && cur != tt.current) {
				t.Fatalf("Choose = (%q, %q), want (%q, %q)", cur, got, tt.current, tt.target)
			}
		})
	}
}

func TestCompletionsFromEvents(t *testing.T) {
	evs := []event.Event{
		{Event: event.HostDone, Host: "web1", Status: "ok", Revision: "A", Time: at(1)},
		{Event: event.HostDone, Host: "web2", Status: "drained", Revision: "", Time: at(2)},
		{Event: event.HostDone, Host: "web2", Status: "rolled_back", Revision: "Z", Time: at(3)},
		{Event: event.HostPhase, Host: "web2", Status: "ok", Revision: "B", Time: at(4)},
		{Event: event.HostDone, Host: "web3", Status: "skipped", Revision: "A", Time: at(5)},
	}
	cs := Completions(evs)
	if len(cs) != 2 || cs[0].Host != "web1" || cs[1].Host != "web3" {
		t.Fatalf("Completions = %+v, want web1 and web3 only", cs)
	}
}
