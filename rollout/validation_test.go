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
