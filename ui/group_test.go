package ui

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/rollout-sh/rollout/rollout/event"
)

// A summary of 10,000 hosts folds what needs no one into a row per
// outcome and lists, one by one, the hosts that need a person; a small one
// keeps a row per host, and -v keeps them all.
func TestSummaryGroupsWhatIsUniform(t *testing.T) {
	run := func(n int, verbose bool) []string {
		var b bytes.Buffer
		p := NewPlain(&b, PlainOptions{Width: 200, Verbose: verbose})
		var hosts []string
		for i := range n {
			hosts = append(hosts, fmt.Sprintf("web%05d", i+1))
		}
		p.Emit(event.Event{Event: event.RunStart, Run: "r1", Hosts: hosts, Batches: [][]string{hosts}})
		for i, h := range hosts {
			e := event.Event{Event: event.HostDone, Run: "r1", Host: h, Status: string(event.OutcomeOK), Revision: "1a2b3c4d5e6f"}
			switch i {
			case 7:
				e.Status, e.Message = string(event.OutcomeFailed), "health: not healthy after 30s"
			case 4242:
				e.Status, e.Message = string(event.OutcomeDrained), "left drained for inspection"
			case 11, 12, 13:
				e.Status, e.Message = string(event.OutcomeSkipped), "already at 1a2b3c4"
			}
			if i < n {
				p.Emit(e)
			}
		}
		p.Emit(event.Event{Event: event.RunDone, Run: "r1", Status: "failed", Message: "left drained for inspection: web04243", Next: "rollout repair p.hcl"})
		var table []string
		for _, l := range strings.Split(b.String(), "\n") {
			if strings.HasPrefix(l, "HOST ") || strings.HasPrefix(l, "web") || strings.Contains(l, " hosts ") {
				table = append(table, l)
			}
		}
		return table
	}
	big := run(10_000, false)
	joined := strings.Join(big, "\n")
	for _, want := range []string{"9,995 hosts  ok", "3 hosts", "skipped", "web00008", "failed", "web04243", "drained"} {
		if !strings.Contains(joined, want) {
			t.Errorf("10,000-host summary lacks %q:\n%s", want, joined)
		}
	}
	if len(big) > 10 {
		t.Errorf("10,000-host summary has %d rows, want the groups and the 2 hosts that need a person:\n%s", len(big), joined)
	}
	if small := run(10, false); len(small) < 10 {
		t.Errorf("a 10-host summary folded its rows (%d):\n%s", len(small), strings.Join(small, "\n"))
	}
	if all := run(100, true); len(all) < 100 {
		t.Errorf("-v folded the summary (%d rows)", len(all))
	}
}
