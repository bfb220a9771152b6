package rollout

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/rollout-sh/rollout/plan"
	"github.com/rollout-sh/rollout/rollout/event"
)

func (r *recorder) evs() []event.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]event.Event(nil), r.events...)
}

// Waves run in the order written and never interleave: every batch of wave
// "a" (batch 1: web1, web2, web3 one by one) before wave "b" (the rest,
// which takes the plan's batch "100%"); batch events name their wave.
func TestWavesRunInOrderEachWithItsBatch(t *testing.T) {
	f := newFleet(t, 5, "batch = \"100%\"\n  wave \"a\" {\n    hosts = \"web1:web2:web3\"\n    batch = 1\n  }\n  wave \"b\" {}")
	res, err := f.apply(Request{}, Options{})
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	for h, o := range res.Outcomes {
		if o != event.OutcomeOK {
			t.Errorf("%s: %s", h, o)
		}
	}
	var got []string
	for _, e := range f.rec.evs() {
		if e.Event == event.BatchStart {
			got = append(got, e.Wave+":"+strings.Join(e.Hosts, ","))
		}
	}
	want := "a:web1 a:web2 a:web3 b:web4,web5"
	if strings.Join(got, " ") != want {
		t.Errorf("batches %v, want %s", got, want)
	}
}

// approve = true on a wave is a gate before it: with no one to approve
// (unattended, no --auto-approve) the run stops there, the first wave
// done, the second not started; --auto-approve passes it.
func TestWaveApprovalIsAGateBeforeTheWave(t *testing.T) {
	extra := "batch = 1\n  wave \"a\" { hosts = \"web1\" }\n  wave \"b\" {\n    approve = true\n  }"
	f := newFleet(t, 3, extra)
	res, err := f.apply(Request{}, Options{Unattended: true})
	if !errors.Is(err, ErrApprovalNeeded) {
		t.Fatalf("err = %v, want the approval gate", err)
	}
	if res.Outcomes["web1"] != event.OutcomeOK || res.Outcomes["web2"] != event.OutcomeNotStarted || res.Outcomes["web3"] != event.OutcomeNotStarted {
		t.Errorf("outcomes %v: want web1 ok, wave b not started", res.Outcomes)
	}
	found := false
	for _, e := range f.rec.evs() {
		found = found || e.Event == event.Log && strings.Contains(e.Message, "batch 2 needs an approval")
	}
	if !found {
		t.Errorf("no log of the wave's gate")
	}
	res, err = f.apply(Request{}, Options{Unattended: true, AutoApprove: true})
	if err != nil {
		t.Fatalf("with --auto-approve: %v", err)
	}
	if res.Outcomes["web2"] != event.OutcomeOK || res.Outcomes["web3"] != event.OutcomeOK {
		t.Errorf("with --auto-approve: %v", res.Outcomes)
	}
}

// Every host in exactly one wave: two waves matching a host, or a host in
// none (no last wave takes the rest), are refused naming the host and the
// waves; only the last wave may leave hosts out.
func TestWaveAssignmentRefusals(t *testing.T) {
	for _, c := range []struct{ extra, want string }{
		{"batch = 1\n  wave \"a\" { hosts = \"web1:web2\" }\n  wave \"b\" { hosts = \"web2:web3\" }", `web2 is matched by wave "a"`},
		{"batch = 1\n  wave \"a\" { hosts = \"web1\" }\n  wave \"b\" { hosts = \"web2\" }", "web3 is in none of the waves"},
		{"batch = 1\n  wave \"a\" {}\n  wave \"b\" { hosts = \"web2\" }", `wave "a" sets no hosts`},
		{"max_in_flight = 1\n  wave \"a\" {}", "Waves with max_in_flight"},
	} {
		f := newFleet(t, 3, c.extra)
		_, err := f.apply(Request{}, Options{})
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "rollout.hcl:") {
			t.Errorf("%q: err = %v, want %q with the plan's file:line", c.extra, err, c.want)
		}
	}
}

// The gate before a wave says which wave it opens.
func TestWaveGateMessageNamesTheWave(t *testing.T) {
	s := Between{RunState: RunState{Batches: [][]string{{"a1"}, {"b1"}}, Next: 1}, Waves: []string{"a", "b"}}
	if m := s.waitMessage(event.WaitApproval); !strings.Contains(m, `approve to start batch 2 (the first of wave "b")`) {
		t.Errorf("approval message %q", m)
	}
}

// A rollback undoes the waves last first.
func TestRollbackRunsTheWavesInReverse(t *testing.T) {
	f := newFleet(t, 3, "batch = 1\n  wave \"a\" { hosts = \"web1\" }\n  wave \"b\" {}")
	pr, err := Prepare(Request{PlanFile: f.planFile})
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(pr.Schedule([]string{"web1", "web2", "web3"}).Waves); got != "[a b b]" {
		t.Errorf("apply waves %s", got)
	}
	pr.Req.Rollback = true
	s := pr.Schedule([]string{"web1", "web2", "web3"})
	if got := fmt.Sprint(s.Waves, s.Batches); got != "[b b a] [[web2] [web3] [web1]]" {
		t.Errorf("rollback schedule %s", got)
	}
}

// Property: whatever the waves, their batch sizes and the hosts to change,
// the schedule has every host exactly once, never mixes two waves in a
// batch, and runs the waves in the order written (reversed for a
// rollback) — waves never interleave.
func TestScheduleWavesNeverInterleave(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	specs := [][]plan.Quantity{nil, {{N: 1, Set: true}}, {{N: 2, Set: true}}, {{N: 1, Set: true}, {N: 50, Percent: true, Set: true}}, {{N: 100, Percent: true, Set: true}}}
	for i := 0; i < 500; i++ {
		nw := 1 + rng.IntN(4)
		p := &plan.Plan{}
		for w := 0; w < nw; w++ {
			p.Waves = append(p.Waves, &plan.Wave{Name: fmt.Sprintf("w%d", w), Batch: specs[rng.IntN(len(specs))]})
		}
		pr := &Prepared{Plan: p, BatchSpec: specs[rng.IntN(len(specs))], waveOf: map[string]int{}, Req: Request{Rollback: rng.IntN(2) == 0}}
		var hosts []string
		for h := 0; h < rng.IntN(30); h++ {
			name := fmt.Sprintf("h%d", h)
			pr.waveOf[name] = rng.IntN(nw)
			if rng.IntN(4) > 0 { // some hosts need no change
				hosts = append(hosts, name)
			}
		}
		s := pr.Schedule(hosts)
		seen := map[string]bool{}
		last := -1
		for b, batch := range s.Batches {
			if len(batch) == 0 {
				t.Fatalf("case %d: empty batch %d", i, b)
			}
			w := pr.waveOf[batch[0]]
			for _, h := range batch {
				if seen[h] {
					t.Fatalf("case %d: %s twice", i, h)
				}
				seen[h] = true
				if pr.waveOf[h] != w {
					t.Fatalf("case %d: batch %d mixes waves %d and %d", i, b, w, pr.waveOf[h])
				}
			}
			if s.Waves[b] != p.Waves[w].Name {
				t.Fatalf("case %d: batch %d says wave %s, its hosts are in %s", i, b, s.Waves[b], p.Waves[w].Name)
			}
			pos := w
			if pr.Req.Rollback {
				pos = nw - 1 - w
			}
			if pos < last {
				t.Fatalf("case %d: wave %s comes back after a later one", i, p.Waves[w].Name)
			}
			last = pos
		}
		if len(seen) != len(hosts) {
			t.Fatalf("case %d: %d of %d hosts scheduled", i, len(seen), len(hosts))
		}
	}
}
