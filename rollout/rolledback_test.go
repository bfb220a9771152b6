package rollout

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rollout-sh/rollout/internal/localrun"
	"github.com/rollout-sh/rollout/journal"
	"github.com/rollout-sh/rollout/rollout/event"
)

func (f *fleet) state(host string) *journal.HostState {
	f.t.Helper()
	st, err := journal.ReadState(context.Background(), localrun.Runner{}, filepath.Join(f.dir, "hosts", host, "state"), "web")
	if err != nil {
		f.t.Fatal(err)
	}
	return st
}

// A rollback marks each host it takes back with the revision it left, by
// whom and why; a plain apply of that revision is then refused (exit 2,
// nothing touched) naming the rollback run, with next: lines for --retry
// and for pinning another revision; --retry deploys it and clears the mark.
func TestEngineRefusesRolledBackRevisionUnlessRetry(t *testing.T) {
	f := newFleet(t, 2, `batch = [1]`)
	must(t, func() error { _, err := f.apply(Request{}, Options{}); return err }())
	f.writePlan("v2", `batch = [1]`)
	must(t, func() error { _, err := f.apply(Request{}, Options{}); return err }())
	_, err := f.apply(Request{Revision: f.revs["v1"], Rollback: true}, Options{Kind: "rollback", RunID: "r-back", Reason: "errors on checkout"})
	must(t, err)
	for _, h := range []string{"web1", "web2"} {
		st := f.state(h)
		if st.Revision != f.revs["v1"] || st.RolledBackFrom == nil {
			t.Fatalf("%s marker after rollback: %+v", h, st)
		}
		m := st.RolledBackFrom
		if m.Revision != f.revs["v2"] || m.RunID != "r-back" || m.By != "test@here" || m.Reason != "errors on checkout" || m.Time.IsZero() {
			t.Fatalf("%s rollback mark %+v", h, m)
		}
	}
	var start *event.Event
	for i, e := range f.rec.events {
		if e.Event == event.RunStart && e.Run == "r-back" {
			start = &f.rec.events[i]
		}
	}
	if start == nil || start.RolledBackFrom != f.revs["v2"] || start.Owner != "test@here" || start.Reason != "errors on checkout" {
		t.Fatalf("rollback run_start: %+v", start)
	}

	restarts := f.restarts("web1")
	_, err = f.apply(Request{}, Options{})
	var r *Refusal
	if !errors.As(err, &r) || ExitCode(err) != ExitRefused {
		t.Fatalf("apply of the rolled-back v2: %v, want a refusal", err)
	}
	for _, want := range []string{f.revs["v2"][:7], "run r-back", "test@here", "errors on checkout", "web1, web2"} {
		if !strings.Contains(r.Problem, want) {
			t.Errorf("refusal lacks %q: %s", want, r.Problem)
		}
	}
	if !strings.HasPrefix(r.Next, "rollout apply "+f.planFile+" --retry") || len(r.More) != 1 || !strings.HasPrefix(r.More[0], "rollout plan ") {
		t.Errorf("refusal next: %q more: %q", r.Next, r.More)
	}
	if f.restarts("web1") != restarts || !strings.Contains(f.file("web1"), "version = 1") {
		t.Fatal("a refused apply touched web1")
	}

	// another revision is not refused; --retry deploys v2 and clears the mark
	_, err = f.apply(Request{}, Options{Retry: true})
	must(t, err)
	for _, h := range []string{"web1", "web2"} {
		if st := f.state(h); st.Revision != f.revs["v2"] || st.RolledBackFrom != nil {
			t.Fatalf("%s after --retry: %+v", h, st)
		}
	}
	_, err = f.apply(Request{}, Options{})
	must(t, err)
}

// on_failure = "rollback" marks the host it took back too: the next plain
// apply of the revision is refused.
func TestEngineOnFailureRollbackMarksTheHost(t *testing.T) {
	f := newFleet(t, 2, `batch = [1]`)
	must(t, func() error { _, err := f.apply(Request{}, Options{}); return err }())
	f.writePlan("v2", `batch = [1]
  on_failure = "rollback"`)
	f.failHealth("web1", 1, "pid changed")
	res, err := f.apply(Request{}, Options{RunID: "r-bad"})
	if !errors.Is(err, ErrRunFailed) || res.Outcomes["web1"] != event.OutcomeRolledBack {
		t.Fatalf("err %v outcomes %v", err, res.Outcomes)
	}
	st := f.state("web1")
	if st.Revision != f.revs["v1"] || st.RolledBackFrom == nil || st.RolledBackFrom.Revision != f.revs["v2"] || st.RolledBackFrom.RunID != "r-bad" ||
		!strings.Contains(st.RolledBackFrom.Reason, "pid changed") {
		t.Fatalf("web1 marker: %+v mark %+v", st, st.RolledBackFrom)
	}
	for _, e := range f.rec.events {
		if e.Event == event.HostDone && e.Run == "r-bad" && e.Host == "web1" && e.RolledBackFrom != f.revs["v2"] {
			t.Errorf("web1 host_done rolled_back_from %q", e.RolledBackFrom)
		}
	}
	_, err = f.apply(Request{}, Options{})
	var r *Refusal
	if !errors.As(err, &r) || !strings.Contains(r.Problem, "run r-bad") {
		t.Fatalf("apply after on_failure rollback: %v", err)
	}
}

func TestByRevisionAndRolledBackFrom(t *testing.T) {
	at := func(rev, from string) *journal.HostState {
		st := &journal.HostState{Revision: rev}
		if from != "" {
			st.RolledBackFrom = &journal.RollbackMark{Revision: from, RunID: "r-" + rev, By: "a@b", Time: time.Date(2026, 12, 1, 3, 4, 0, 0, time.UTC)}
		}
		return st
	}
	order := []string{"web1", "web2", "web3", "web4"}
	states := map[string]*journal.HostState{"web1": at("p", "r"), "web2": at("r", ""), "web3": at("p", "r"), "web4": nil}
	g := ByRevision(order, states)
	if len(g) != 3 || g[0].Revision != "p" || strings.Join(g[0].Hosts, ",") != "web1,web3" || g[2].Revision != "" {
		t.Fatalf("groups %+v", g)
	}
	rb := RolledBackFrom("r", order, states)
	if rb == nil || strings.Join(rb.Hosts, ",") != "web1,web3" {
		t.Fatalf("rolled back %+v", rb)
	}
	if d := rb.Describe(); d != "rolled back on 2026-12-01 03:04 UTC by a@b (run r-p)" {
		t.Errorf("describe %q", d)
	}
	if RolledBackFrom("p", order, states) != nil {
		t.Error("p was not rolled back from")
	}
}
