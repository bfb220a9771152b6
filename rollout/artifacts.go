package rollout

import (
	"context"
	"strings"

	"github.com/rollout-sh/rollout/artifact"
	"github.com/rollout-sh/rollout/internal/transport"
	"github.com/rollout-sh/rollout/journal"
	"github.com/rollout-sh/rollout/plan"
	"github.com/rollout-sh/rollout/rollout/event"
)

// Artifacts is how the engine has a host's software releases staged and
// switched; package artifact holds the logic (artifact.Remote, the
// default when Env.Artifacts is nil, one per run so that an artifact is
// downloaded once).
type Artifacts interface {
	// Stage makes sure each artifact's release is on the host — fetched,
	// verified and unpacked only when it is not — and runs its validate.
	// Nothing live changes.
	Stage(ctx context.Context, conn transport.Runner, arts []plan.ArtifactSpec) error
	// Switch points each artifact's current at its release, atomically,
	// and returns what each pointed at before ("" = nothing).
	Switch(ctx context.Context, conn transport.Runner, arts []plan.ArtifactSpec) (map[string]string, error)
	// Restore points current back where Switch found it.
	Restore(ctx context.Context, conn transport.Runner, arts []plan.ArtifactSpec, prev map[string]string) error
	// Prune removes releases beyond each artifact's keep, never the
	// current one nor those in protect; it returns what it removed.
	Prune(ctx context.Context, conn transport.Runner, arts []plan.ArtifactSpec, protect map[string][]string) ([]string, error)
}

// artifacts is the run's Artifacts.
func (r *run) artifacts() Artifacts {
	r.artsOnce.Do(func() {
		r.arts = r.env.Artifacts
		if r.arts == nil {
			r.arts = artifact.NewRemote()
		}
	})
	return r.arts
}

// Tracked is what a look at the host hashes and current.json records for
// the target: its files and, for each artifact, the link <dest>/current,
// whose hash is that of its target text (artifact.LinkHash) — so a host
// whose recorded release is the target's is skipped like an unchanged
// file, and a current moved by hand is drift.
func (t *Target) Tracked() []Rendered {
	if t.Spec == nil {
		return t.Files
	}
	return tracked(t.Files, t.Spec.Artifacts)
}

func tracked(files []Rendered, arts []plan.ArtifactSpec) []Rendered {
	if len(arts) == 0 {
		return files
	}
	out := append([]Rendered(nil), files...)
	for _, a := range arts {
		out = append(out, Rendered{
			FileSpec: plan.FileSpec{Name: "artifact " + a.Name + " release " + artifact.ID(a.SHA256), Source: a.Source, Dest: artifact.Current(a)},
			SHA256:   artifact.LinkHash(a.SHA256),
		})
	}
	return out
}

// artifactStates is what current.json records of arts.
func artifactStates(arts []plan.ArtifactSpec) map[string]journal.ArtifactState {
	if len(arts) == 0 {
		return nil
	}
	m := map[string]journal.ArtifactState{}
	for _, a := range arts {
		m[a.Name] = journal.ArtifactState{ID: artifact.ID(a.SHA256), Source: a.Source, SHA256: a.SHA256, Dest: a.Dest}
	}
	return m
}

// prepareHost is what preflight does on h before staging its files: the
// plan's prefetch, then every artifact fetched, verified and staged as
// its release, and validated. Nil when there is nothing to do.
func (r *run) prepareHost(h *hostInfo) func(ctx context.Context) error {
	spec := h.t.Spec
	if spec.Prefetch == "" && len(spec.Artifacts) == 0 {
		return nil
	}
	return func(ctx context.Context) error {
		if err := runCommand(ctx, h.conn, "prefetch", spec.Prefetch); err != nil {
			return err
		}
		return r.artifacts().Stage(ctx, h.conn, spec.Artifacts)
	}
}

// artifactRefs is what host_done (and so the journal) says of arts.
func artifactRefs(arts []plan.ArtifactSpec) map[string]event.ArtifactRef {
	if len(arts) == 0 {
		return nil
	}
	m := map[string]event.ArtifactRef{}
	for _, a := range arts {
		m[a.Name] = event.ArtifactRef{ID: artifact.ID(a.SHA256), Source: a.Source, SHA256: a.SHA256}
	}
	return m
}

// releaseOf is the release id a link target names ("releases/<id>").
func releaseOf(target string) string { return strings.TrimPrefix(target, "releases/") }
