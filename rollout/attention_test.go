package rollout

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rollout-sh/rollout/inventory"
	"github.com/rollout-sh/rollout/journal"
	"github.com/rollout-sh/rollout/rollout/event"
)

// What `rollout status` decides about each host: why it needs a person and
// the command that resolves it.
func TestHostViewAttention(t *testing.T) {
	now := time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)
	h := &inventory.Host{Name: "web1", Address: "10.0.0.1"}
	left := []journal.RunSummary{{ID: "r1", Hosts: []journal.HostResult{{Host: "web1", Outcome: event.OutcomeDrained, Phase: event.PhaseHealth}}}}
	half := []journal.RunSummary{{ID: "r1", Finished: true, Hosts: []journal.HostResult{{Host: "web1", Outcome: event.OutcomeUnknown, Phase: event.PhaseRestart}}}}
	repaired := append(append([]journal.RunSummary{}, left...), journal.RunSummary{ID: "r4", Kind: journal.KindRepair, Finished: true,
		Hosts: []journal.HostResult{{Host: "web1", Outcome: event.OutcomeOK, Phase: event.PhaseUndrain}}})
	finished := []journal.RunSummary{{ID: "r2", Finished: true, Hosts: []journal.HostResult{{Host: "web1", Outcome: event.OutcomeOK, Phase: event.PhaseRecord}}}}
	elsewhere := journal.LockInfo{Owner: "alice@another-machine", PID: 42, RunID: "r2", Renewed: now.Add(-time.Minute), TTL: 2 * time.Minute}
	expired := elsewhere
	expired.RunID, expired.Renewed = "r3", now.Add(-time.Hour)
	alive := elsewhere
	alive.RunID = "r9"
	tests := []struct {
		name      string
		v         HostView
		h         *inventory.Host
		runs      []journal.RunSummary
		why, next string // substrings; "" = no attention
	}{
		{name: "fine", v: HostView{Name: "web1", Serving: true, LB: "UP"}, h: h},
		{name: "unreachable, in the inventory", v: HostView{Name: "web1", Err: errors.New("dial tcp: refused\nmore")}, h: h,
			why: "unreachable (dial tcp: refused)", next: "ssh -v 10.0.0.1 true  # shows why"},
		{name: "unreachable, not in the inventory", v: HostView{Name: "web1", Err: errors.New("x")},
			why: "unreachable", next: "rollout status rollout.hcl --limit web1"},
		{name: "left drained by a dead run", v: HostView{Name: "web1", LB: "MAINT"}, h: h, runs: left,
			why: "left drained by run r1 (dead)", next: "rollout repair rollout.hcl"},
		{name: "left half-done by a finished run", v: HostView{Name: "web1", LB: "MAINT"}, h: h, runs: half,
			why: "left drained by run r1 (finished), half-done", next: "rollout repair rollout.hcl"},
		{name: "drained but serving again", v: HostView{Name: "web1", LB: "UP", Serving: true}, h: h, runs: left},
		{name: "locked by a live run elsewhere", v: HostView{Name: "web1", Serving: true, Lock: &alive}, h: h},
		{name: "still locked by a finished run", v: HostView{Name: "web1", Serving: true, Lock: &elsewhere}, h: h, runs: finished,
			why: "still locked by finished run r2", next: "rollout unlock rollout.hcl --yes"},
		{name: "stale lock", v: HostView{Name: "web1", Serving: true, Lock: &expired}, h: h,
			why: "stale lock of run r3 (expired)", next: "rollout unlock rollout.hcl --yes"},
		{name: "drift", v: HostView{Name: "web1", Serving: true, Drift: []string{"/etc/a", "/etc/b"}}, h: h,
			why: "DRIFT (hand-edited): /etc/a, /etc/b", next: "rollout apply rollout.hcl --adopt --limit web1"},
		{name: "out of the LB, not by a run", v: HostView{Name: "web1", LB: "MAINT"}, h: h,
			why: "drained outside rollout (MAINT), not by a run of this plan", next: "set server BACKEND/web1 state ready"},
		// a repair put it back; then someone drained it by hand: that
		// drain is the operator's, and repair would undo it
		{name: "drained by hand after a repair", v: HostView{Name: "web1", LB: "MAINT"}, h: h, runs: repaired,
			why: "drained outside rollout (MAINT): the last run that touched it, repair r4, left it in service", next: "set server BACKEND/web1 state ready"},
		{name: "the LB could not be asked", v: HostView{Name: "web1", LB: "error: no socket"}, h: h},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			why, next := tt.v.Attention(tt.h, tt.runs, "rollout.hcl", now)
			if tt.why == "" {
				if why != "" || next != "" {
					t.Errorf("attention %q, %q; want none", why, next)
				}
				return
			}
			if !strings.Contains(why, tt.why) || !strings.Contains(next, tt.next) || (strings.Contains(tt.why, "outside rollout") && strings.Contains(next, "repair")) {
				t.Errorf("attention %q, next %q; want %q, %q", why, next, tt.why, tt.next)
			}
		})
	}
}
