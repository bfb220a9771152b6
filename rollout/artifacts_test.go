package rollout

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/rollout-sh/rollout/artifact"
	"github.com/rollout-sh/rollout/internal/transport"
	"github.com/rollout-sh/rollout/plan"
	"github.com/rollout-sh/rollout/rollout/event"
)

// spyArtifacts records the engine's calls and passes them to a real
// artifact.Remote.
type spyArtifacts struct {
	real  *artifact.Remote
	mu    sync.Mutex
	calls []string
}

func (s *spyArtifacts) note(c string) {
	s.mu.Lock()
	s.calls = append(s.calls, c)
	s.mu.Unlock()
}

func (s *spyArtifacts) count(prefix string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.calls {
		if strings.HasPrefix(c, prefix) {
			n++
		}
	}
	return n
}

func (s *spyArtifacts) Stage(ctx context.Context, conn transport.Runner, arts []plan.ArtifactSpec) error {
	s.note("stage")
	return s.real.Stage(ctx, conn, arts)
}

func (s *spyArtifacts) Switch(ctx context.Context, conn transport.Runner, arts []plan.ArtifactSpec) (map[string]string, error) {
	s.note("switch")
	return s.real.Switch(ctx, conn, arts)
}

func (s *spyArtifacts) Restore(ctx context.Context, conn transport.Runner, arts []plan.ArtifactSpec, prev map[string]string) error {
	s.note("restore")
	return s.real.Restore(ctx, conn, arts, prev)
}

func (s *spyArtifacts) Prune(ctx context.Context, conn transport.Runner, arts []plan.ArtifactSpec, protect map[string][]string) ([]string, error) {
	s.note("prune")
	return s.real.Prune(ctx, conn, arts, protect)
}

// The engine stages artifacts in preflight on every host before the
// first drain, switches current in the install step, records the release
// and skips a host already on it; a wrong checksum stops the run before
// any drain, and a failing install switches current back.
func TestEngineArtifactsThroughTheInterface(t *testing.T) {
	f := newFleet(t, 3, `batch = [1]`)
	tool := filepath.Join(f.dir, "tool.bin")
	must(t, os.WriteFile(tool, []byte("#!/bin/sh\necho tool\n"), 0o644))
	sum := artifact.Sum([]byte("#!/bin/sh\necho tool\n"))
	block := func(sha, install string) string {
		return fmt.Sprintf(`batch = [1]
  install = %q
  artifact "tool" {
    source = "tool.bin"
    sha256 = %q
    dest   = "${host.vars.root}/opt/tool"
    mode   = "0755"
  }`, install, sha)
	}
	run := func(extra string) (*spyArtifacts, *Result, error) {
		t.Helper()
		f.writePlan("v1", extra)
		pr, err := Prepare(Request{PlanFile: f.planFile})
		if err != nil {
			t.Fatal(err)
		}
		spy := &spyArtifacts{real: artifact.NewRemote()}
		env := f.env()
		env.Artifacts = spy
		res, err := Run(context.Background(), pr, env, Options{RunID: fmt.Sprintf("r-art-%d", len(f.rec.calls)),
			LocalDir: filepath.Join(f.dir, ".rollout"), Owner: "test@here"}, nil)
		return spy, res, err
	}

	spy, res, err := run(block(strings.Repeat("0", 64), "true"))
	if !errors.Is(err, ErrRunFailed) || !strings.Contains(err.Error(), "expected "+strings.Repeat("0", 64)+", actual "+sum) {
		t.Fatalf("wrong checksum: %v", err)
	}
	if f.rec.count("drain ") != 0 || spy.count("switch") != 0 || spy.count("stage") != 3 {
		t.Fatalf("wrong checksum: %d drains, calls %v", f.rec.count("drain "), spy.calls)
	}
	_ = res

	drains := f.rec.count("drain ")
	spy, _, err = run(block(sum, "echo installed >> ${host.vars.root}/installs"))
	if err != nil {
		t.Fatal(err)
	}
	if spy.count("stage") != 3 || spy.count("switch") != 3 || spy.count("prune") != 3 || f.rec.count("drain ") != drains+3 {
		t.Errorf("calls %v, %d drains", spy.calls, f.rec.count("drain ")-drains)
	}
	spy.mu.Lock()
	for i, c := range spy.calls {
		if c == "switch" && i < 3 {
			t.Errorf("a switch before every host was staged: %v", spy.calls)
		}
	}
	spy.mu.Unlock()
	for i := 1; i <= 3; i++ {
		root := filepath.Join(f.dir, "hosts", fmt.Sprintf("web%d", i))
		if l, err := os.Readlink(filepath.Join(root, "opt", "tool", "current")); err != nil || l != artifact.LinkTarget(sum) {
			t.Errorf("web%d current -> %q, %v", i, l, err)
		}
		if b, err := os.ReadFile(filepath.Join(root, "installs")); err != nil || string(b) != "installed\n" {
			t.Errorf("web%d install ran: %q %v", i, b, err)
		}
		st, _ := os.ReadFile(filepath.Join(root, "state", "web", "current.json"))
		if !strings.Contains(string(st), `"id": "`+artifact.ID(sum)+`"`) {
			t.Errorf("web%d current.json: %s", i, st)
		}
	}

	recorded := 0
	f.rec.mu.Lock()
	for _, e := range f.rec.events {
		if e.Event == event.HostDone && e.Status == string(event.OutcomeOK) && e.Artifacts["tool"].ID == artifact.ID(sum) && e.Artifacts["tool"].SHA256 == sum {
			recorded++
		}
	}
	f.rec.mu.Unlock()
	if recorded != 3 {
		t.Errorf("%d host_done events name the release, want 3", recorded)
	}

	// again: every host skipped, nothing staged
	spy, res, err = run(block(sum, "echo installed >> ${host.vars.root}/installs"))
	if err != nil {
		t.Fatal(err)
	}
	for h, o := range res.Outcomes {
		if o != event.OutcomeSkipped {
			t.Errorf("%s: %s, want skipped", h, o)
		}
	}
	if len(spy.calls) != 0 {
		t.Errorf("a skipped run called %v", spy.calls)
	}

	// a new build whose install fails: current goes back
	other := []byte("#!/bin/sh\necho tool 2\n")
	must(t, os.WriteFile(tool, other, 0o644))
	spy, res, err = run(block(artifact.Sum(other), "exit 3"))
	if !errors.Is(err, ErrRunFailed) || res.Outcomes["web1"] != event.OutcomeFailed {
		t.Fatalf("failing install: %v %v", err, res.Outcomes)
	}
	if spy.count("restore") != 1 {
		t.Errorf("calls %v, want a restore", spy.calls)
	}
	root := filepath.Join(f.dir, "hosts", "web1")
	if l, _ := os.Readlink(filepath.Join(root, "opt", "tool", "current")); l != artifact.LinkTarget(sum) {
		t.Errorf("after a failed install current -> %q, want the old release", l)
	}
}
