package rollout

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rollout-sh/rollout/internal/transport"
	"github.com/rollout-sh/rollout/rollout/event"
	"github.com/rollout-sh/rollout/validate"
)

// spyValidator is validate.Remote with every call recorded; refuse makes
// preflight fail on every host without running anything.
type spyValidator struct {
	validate.Remote
	recorder
	refuse bool
}

func (v *spyValidator) Stage(ctx context.Context, conn transport.Runner, files []Rendered, tag string, discard bool) (map[string]string, error, error) {
	v.add("stage " + strings.SplitN(tag, "-", 2)[0])
	return v.Remote.Stage(ctx, conn, files, tag, discard)
}

func (v *spyValidator) Check(ctx context.Context, conn transport.Runner, cmd string) error {
	v.add("check")
	return v.Remote.Check(ctx, conn, cmd)
}

func (v *spyValidator) Preflight(ctx context.Context, hosts []validate.Host, tag string, forks int, emit func(event.Event)) ([]string, error) {
	v.add(fmt.Sprintf("preflight %d", len(hosts)))
	if v.refuse {
		var names []string
		for _, h := range hosts {
			names = append(names, h.Name)
		}
		return names, nil
	}
	return v.Remote.Preflight(ctx, hosts, tag, forks, emit)
}

// The engine stages, checks and preflights only through Env.Validator: a
// validator that fails preflight stops the run before any host is
// drained, and one that passes sees every host's preflight, staging and
// check.
func TestEngineValidatesThroughTheInterface(t *testing.T) {
	f := newFleet(t, 3, `batch = [1]`)
	run := func(v Validator) (*Result, error) {
		t.Helper()
		pr, err := Prepare(Request{PlanFile: f.planFile})
		if err != nil {
			t.Fatal(err)
		}
		env := f.env()
		env.Validator = v
		return Run(context.Background(), pr, env, Options{RunID: fmt.Sprintf("r-spy-%d", len(f.rec.calls)),
			LocalDir: filepath.Join(f.dir, ".rollout"), Owner: "test@here"}, nil)
	}
	refusing := &spyValidator{refuse: true}
	if _, err := run(refusing); !errors.Is(err, ErrRunFailed) {
		t.Fatalf("err = %v, want the run failed by preflight", err)
	}
	if f.rec.count("drain ") != 0 || refusing.count("stage") != 0 || refusing.count("preflight 3") != 1 {
		t.Fatalf("after a failed preflight: %d drains, calls %v", f.rec.count("drain "), refusing.calls)
	}
	passing := &spyValidator{}
	if _, err := run(passing); err != nil {
		t.Fatal(err)
	}
	if passing.count("preflight 3") != 1 || passing.count("stage stage") != 3 || passing.count("check") != 3 {
		t.Errorf("calls %v, want one preflight of 3 hosts, then stage and check on each", passing.calls)
	}
}

// The way back checks through Env.Validator too: a host that fails its
// health gate under on_failure = "rollback" has its previous revision's
// whole-config check run by the validator, and what it printed is
// journaled as a remote_output of the check, like the forward check's.
func TestEngineRollbackChecksThroughTheInterface(t *testing.T) {
	f := newFleet(t, 2, `batch = [1]
  check = "echo checked $(head -1 ${host.vars.root}/app.conf)"`)
	if _, err := f.apply(Request{}, Options{}); err != nil {
		t.Fatal(err)
	}
	f.writePlan("v2", `batch = [1]
  check = "echo checked $(head -1 ${host.vars.root}/app.conf)"
  on_failure = "rollback"`)
	f.failHealth("web1", 1, "connection refused") // web1's first health gate on v2 fails; v1's passes
	pr, err := Prepare(Request{PlanFile: f.planFile})
	if err != nil {
		t.Fatal(err)
	}
	spy := &spyValidator{}
	env := f.env()
	env.Validator = spy
	res, err := Run(context.Background(), pr, env, Options{RunID: "r-spy-rollback",
		LocalDir: filepath.Join(f.dir, ".rollout"), Owner: "test@here"}, nil)
	if !errors.Is(err, ErrRunFailed) || res.Outcomes["web1"] != event.OutcomeRolledBack {
		t.Fatalf("err = %v, outcomes %v, want web1 rolled back", err, res.Outcomes)
	}
	if spy.count("check") != 2 || spy.count("stage rollback") != 1 {
		t.Fatalf("calls %v, want the forward check and the rollback's check through the validator", spy.calls)
	}
	var checks []string
	f.rec.mu.Lock()
	for _, e := range f.rec.events {
		if e.Host == "web1" && e.Event == event.RemoteOutput && e.Phase == event.PhaseCheck && e.Remote != nil {
			checks = append(checks, e.Remote.Output)
		}
	}
	f.rec.mu.Unlock()
	// the first run's check, the forward check on v2, the rollback's on v1
	if len(checks) != 3 || checks[1] != "checked version = 2" || checks[2] != "checked version = 1" {
		t.Fatalf("check remote_output %q, want v1, v2, then v1 again (the rollback's)", checks)
	}
}
