package rollout

import (
	"errors"
	"strings"
	"testing"

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
