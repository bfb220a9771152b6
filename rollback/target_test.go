package rollback

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"testing"

	"github.com/rollout-sh/rollout/rollout/event"
)

const (
	revA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	revB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	revC = "cccccccccccccccccccccccccccccccccccccccc"
)

func done(host, rev string, min int) event.Event {
	return event.Event{Event: event.HostDone, Host: host, Status: string(event.OutcomeOK), Revision: rev, Time: at(min)}
}

func TestTarget(t *testing.T) {
	hosts := []string{"web1", "web2"}
	both := []event.Event{done("web1", revA, 1), done("web2", revA, 2), done("web1", revB, 3), done("web2", revB, 4)}
	onlyB := []event.Event{done("web1", revB, 3), done("web2", revB, 4)}
	recs := func(prev ...string) []Record {
		var out []Record
		for i, p := range prev {
			out = append(out, Record{Host: hosts[i], Previous: p})
		}
		return out
	}
	tests := []struct {
		name       string
		events     []event.Event
		eventsErr  error
		records    []Record
		recordsErr error
		want       Choice
		asked      bool   // the hosts' records were read
		refused    string // a *Refusal whose Problem holds this
		next       string // ... and whose Next holds this
		err        string // another error holding this
	}{
		{name: "journal", events: both, want: Choice{Revision: revA, Current: revB}},
		{name: "no journal yet: the hosts agree", eventsErr: fmt.Errorf("open: %w", fs.ErrNotExist), records: recs(revC, revC), asked: true, want: Choice{Revision: revC}},
		{name: "journal knows one revision: the hosts agree", events: onlyB, records: recs(revA, revA), asked: true, want: Choice{Revision: revA}},
		{name: "a host records nothing", events: onlyB, records: recs(revA, ""), asked: true,
			refused: "no earlier revision completed on every targeted host (current: bbbbbbb), and web2 records no previous revision",
			next:    "rollout rollback rollout.hcl --to TAG-OR-SHA"},
		{name: "hosts disagree", events: onlyB, records: recs(revA, revC), asked: true,
			refused: "hosts record different previous revisions (aaaaaaa on one, ccccccc on web2)", next: "or narrow with --limit"},
		{name: "journal unreadable", eventsErr: errors.New("no quorum"), err: "reading the journal: no quorum"},
		{name: "hosts unreadable", events: onlyB, recordsErr: errors.New("ssh: boom"), asked: true, err: "ssh: boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			asked := false
			got, err := Target(context.Background(), "rollout.hcl", hosts, Sources{
				Events:  func(context.Context) ([]event.Event, error) { return tt.events, tt.eventsErr },
				Records: func(context.Context) ([]Record, error) { asked = true; return tt.records, tt.recordsErr },
			})
			if asked != tt.asked {
				t.Errorf("hosts' records read = %v, want %v", asked, tt.asked)
			}
			var r *Refusal
			switch {
			case tt.refused != "":
				if !errors.As(err, &r) || !strings.Contains(r.Problem, tt.refused) || !strings.Contains(r.Next, tt.next) {
					t.Fatalf("err = %v, want a refusal with %q and next %q", err, tt.refused, tt.next)
				}
			case tt.err != "":
				if err == nil || errors.As(err, &r) || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q (not a refusal)", err, tt.err)
				}
			case err != nil:
				t.Fatal(err)
			case got != tt.want:
				t.Fatalf("Target = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestChoiceWhy(t *testing.T) {
	j := Choice{Revision: revA, Current: revB}.Why()
	if !strings.Contains(j, "hosts are at bbbbbbb; going back to aaaaaaa") || !strings.Contains(j, "from the journal") {
		t.Errorf("journal choice: %q", j)
	}
	h := Choice{Revision: revC}.Why()
	if !strings.Contains(h, "going back to ccccccc (the hosts' recorded previous revision)") {
		t.Errorf("hosts' choice: %q", h)
	}
}

func TestRehearse(t *testing.T) {
	var rendered []string
	render := func(host, rev string) (string, error) {
		rendered = append(rendered, host+"@"+rev[:1])
		if rev == revC {
			return "", errors.New("object not found")
		}
		return "files of " + rev[:1], nil
	}
	hosts := []Host{{"web1", revA}, {"web2", ""}, {"web3", revB}, {"web4", revA}}
	prev, err := Rehearse(hosts, revB, render)
	if err != nil {
		t.Fatal(err)
	}
	// web2 (first deploy) and web3 (already at the target: a resumed run)
	// go back to the files they had before: nothing to render
	if len(prev) != 2 || prev["web1"] != "files of a" || prev["web4"] != "files of a" {
		t.Fatalf("Rehearse = %v, want web1 and web4 on a", prev)
	}
	if strings.Join(rendered, " ") != "web1@a web4@a" {
		t.Fatalf("rendered %v", rendered)
	}

	_, err = Rehearse([]Host{{"web1", revC}, {"web2", revA}, {"web3", revC}}, revB, render)
	var r *Refusal
	if !errors.As(err, &r) {
		t.Fatalf("err = %v, want a refusal", err)
	}
	for _, want := range []string{"cannot be rehearsed", "web1: previous revision ccccccc: object not found", "web3: previous revision ccccccc"} {
		if !strings.Contains(r.Problem, want) {
			t.Errorf("refusal %q does not say %q", r.Problem, want)
		}
	}
	if strings.Contains(r.Problem, "web2") || r.Next != RehearseNext {
		t.Errorf("refusal = %+v", r)
	}
}
