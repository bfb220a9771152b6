package e2e

import (
	"os"
	"strings"
	"testing"

	"github.com/rollout-sh/rollout/rollout/event"
)

// A hand edit of a live file is drift: status shows it, apply refuses it
// (exit 2, naming the host and --adopt) without touching anything, and
// apply --adopt overwrites it.
func TestDriftRefusedUntilAdopt(t *testing.T) {
	t.Parallel()
	e := setup(t, 2, 1)
	e.writePlan(e.tags["v1"], "halt", "0s")
	e.rcRun(0, "apply", "--batch", "1", "--yes", "--ui", "plain")

	edited := e.f.Hosts[1]
	edit := e.liveConfig(edited) + "# hand edit during an incident\n"
	if err := os.WriteFile(edited.ConfigPath(), []byte(edit), 0o644); err != nil {
		t.Fatal(err)
	}
	rows := e.rcStatus(t)
	for _, h := range e.f.Hosts {
		row := rows[h.Name]
		if h.Name == edited.Name {
			if len(row.Drift) != 1 || row.Drift[0] != edited.ConfigPath() {
				t.Errorf("status %s drift = %v, want [%s]", h.Name, row.Drift, edited.ConfigPath())
			}
		} else if len(row.Drift) != 0 {
			t.Errorf("status %s drift = %v, want none", h.Name, row.Drift)
		}
	}
	r := e.rcRun(0, "status")
	for _, line := range strings.Split(r.stdout, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if f[0] == edited.Name && !strings.Contains(line, "DRIFT") {
			t.Errorf("plain status does not show DRIFT for %s: %q", edited.Name, line)
		}
		if f[0] == e.f.Hosts[0].Name && strings.Contains(line, "DRIFT") {
			t.Errorf("plain status shows DRIFT for %s: %q", f[0], line)
		}
	}

	snap := e.snapshot(t)
	e.writePlan(e.tags["v2"], "halt", "0s")
	r = e.rcRun(2, "apply", "--batch", "1", "--yes", "--ui", "plain")
	if !strings.Contains(r.stderr, edited.Name) || !strings.Contains(r.stderr, "--adopt") || !strings.Contains(r.stderr, "drift") {
		dump(t, r)
		t.Errorf("drift refusal does not name %s, drift and --adopt", edited.Name)
	}
	if strings.Contains(r.stderr, e.f.Hosts[0].Name+" (") {
		t.Errorf("drift refusal names the clean host %s: %s", e.f.Hosts[0].Name, r.stderr)
	}
	for name, s := range snap {
		if s.revision != e.tags["v1"] {
			t.Fatalf("%s was not at v1 before the refused apply: %v", name, s.revision)
		}
	}
	e.untouched(t, snap, "a refused apply")
	e.waitAllUp(t)

	r = e.rcRun(0, "apply", "--adopt", "--batch", "1", "--yes", "--ui", "json")
	if _, last := rcDone(t, parseEvents(t, r.stdout)); last.Counts[event.OutcomeOK] != 2 {
		t.Errorf("apply --adopt: %+v, want 2 ok", last.Counts)
	}
	for _, h := range e.f.Hosts {
		e.rcAssertAt(t, h, e.tags["v2"], e.rcRender(t, "v2", h), "version=2")
	}
	for name, row := range e.rcStatus(t) {
		if len(row.Drift) != 0 {
			t.Errorf("status after --adopt: %s drift %v", name, row.Drift)
		}
	}
}
