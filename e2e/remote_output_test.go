package e2e

import (
	"os"
	"strings"
	"testing"

	"github.com/rollout-sh/rollout/rollout/event"
)

// -v shows the remote side (issue 12, item 11): what the restart command
// and each validator printed on each host, prefixed by the host. Every run
// keeps it in the journal (remote_output), with or without -v; the plain
// view without -v does not show it.
func TestRemoteOutputVerboseAndJournaled(t *testing.T) {
	t.Parallel()
	e := setup(t, 2, 1)
	// the plan at rev, with commands that say something recognisable on
	// each host: the validator on stderr, the restart on stdout
	writePlan := func(rev string) {
		e.writePlan(rev, "halt", "0s")
		b, err := os.ReadFile(e.plan)
		if err != nil {
			t.Fatal(err)
		}
		p := strings.Replace(string(b), `validate = "`, `validate = "echo validator-saw-${host.name} >&2; `, 1)
		p = strings.Replace(p, `restart = "`, `restart = "echo restart-says-${host.name}; `, 1)
		if !strings.Contains(p, "validator-saw-") || !strings.Contains(p, "restart-says-") {
			t.Fatalf("could not add the echo lines to the plan:\n%s", p)
		}
		if err := os.WriteFile(e.plan, []byte(p), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writePlan(e.tags["v2"])

	// without -v: nothing of the remote side in the plain view
	r := e.rollout("apply", e.plan, "--batch", "1", "--yes", "--ui", "plain")
	if r.code != 0 {
		dump(t, r)
		t.Fatal("apply v2 failed")
	}
	if strings.Contains(r.stdout, "validator-saw-") || strings.Contains(r.stdout, "restart-says-") {
		dump(t, r)
		t.Error("the plain view without -v shows the commands' output")
	}

	// ... but the journal has it, per host, for the validators (preflight
	// and the host's own validate step) and the restart
	j := e.rollout("history", e.plan, "--replay", "last", "--speed", "0", "--ui", "json")
	if j.code != 0 {
		dump(t, j)
		t.Fatal("history --replay failed")
	}
	type key struct {
		host  string
		phase event.Phase
		pre   bool
	}
	seen := map[key]bool{}
	for _, ev := range parseEvents(t, j.stdout) {
		if ev.Event != event.RemoteOutput {
			continue
		}
		if ev.Remote == nil || ev.Remote.ExitStatus != 0 || ev.Status != event.StatusOK {
			t.Errorf("remote_output %+v: want exit 0, status ok", ev)
			continue
		}
		want := map[event.Phase]string{event.PhaseValidate: "validator-saw-" + ev.Host, event.PhaseRestart: "restart-says-" + ev.Host}[ev.Phase]
		if want == "" || !strings.Contains(ev.Remote.Output, want) {
			t.Errorf("remote_output of %s %s: output %q, want %q", ev.Host, ev.Phase, ev.Remote.Output, want)
		}
		if ev.Phase == event.PhaseRestart && (ev.Batch == 0 || !strings.Contains(ev.Remote.Command, "restart-says-"+ev.Host)) {
			t.Errorf("restart remote_output %+v lacks its batch or command", ev)
		}
		pre := strings.HasSuffix(ev.Message, "(preflight)")
		if (ev.Batch == 0) != pre {
			t.Errorf("remote_output %+v: want a batch exactly when not in preflight", ev)
		}
		seen[key{ev.Host, ev.Phase, pre}] = true
	}
	for _, h := range e.f.Hosts {
		for _, k := range []key{{h.Name, event.PhaseValidate, true}, {h.Name, event.PhaseValidate, false}, {h.Name, event.PhaseRestart, false}} {
			if !seen[k] {
				t.Errorf("the journal has no remote_output for %+v", k)
			}
		}
	}

	// with -v: the output, each line prefixed by its host
	writePlan(e.tags["v1"])
	r = e.rollout("apply", e.plan, "--batch", "1", "--yes", "--ui", "plain", "-v")
	if r.code != 0 {
		dump(t, r)
		t.Fatal("apply v1 -v failed")
	}
	for _, h := range e.f.Hosts {
		for _, want := range []string{"    " + h.Name + " | validator-saw-" + h.Name + "\n", "    " + h.Name + " | restart-says-" + h.Name + "\n"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("-v lacks %q", want)
			}
		}
	}
	if !strings.Contains(r.stdout, "restart    ok       `echo restart-says-") || !strings.Contains(r.stdout, "exit 0") {
		t.Errorf("-v does not name the restart command and its exit status")
	}
	if t.Failed() {
		dump(t, r)
	}
}
