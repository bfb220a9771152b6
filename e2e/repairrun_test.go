package e2e

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/rollout-sh/rollout/journal"
	"github.com/rollout-sh/rollout/rollout/event"
)

// Issue 28, item 6: a repair is a run. It is journaled (run_start with
// message "repair" … run_done), history lists it, and status attributes
// each host's state to the last run that touched it: a server an operator
// drains by hand after the repair put it back is "drained outside
// rollout", and its hint never says repair (which would undo that drain).
func TestRepairIsARunAndAHandDrainIsTheOperators(t *testing.T) {
	t.Parallel()
	e := setup(t, 2, 1)
	e.writePlan(e.tags["v2"], "halt", "0s")
	e.rcRun(0, "apply", "--batch", "1", "--yes", "--ui", "plain")
	e.writePlan(e.tags["crashloop"], "halt", "3s")
	r := e.rcRun(1, "apply", "--batch", "1", "--yes", "--ui", "json")
	canary := ""
	for _, ev := range parseEvents(t, r.stdout) {
		if ev.Event == event.HostDone && ev.Status == string(event.OutcomeDrained) {
			canary = ev.Host
		}
	}
	if canary == "" {
		dump(t, r)
		t.Fatal("no canary left drained")
	}
	r = e.rcRun(4, "status", "--detailed-exitcode", "--ui", "plain")
	if !strings.Contains(r.stdout, canary+" left drained by run") {
		t.Errorf("status before the repair:\n%s", r.stdout)
	}

	r = e.rcRun(0, "repair", "--yes")
	e.rcWaitLB(t, canary, "UP")
	var repairRun string
	var kinds []string
	for _, ev := range e.rcJournal(t) {
		if ev.Event == event.RunStart {
			kinds = append(kinds, ev.Message)
			if ev.Message == journal.KindRepair {
				repairRun = ev.Run
			}
		}
	}
	if repairRun == "" || !strings.Contains(r.stdout, repairRun) {
		dump(t, r)
		t.Fatalf("the journal has no repair run (run_start kinds %v)", kinds)
	}
	runs := journal.Runs(e.rcJournal(t))
	rep := runs[len(runs)-1]
	if rep.ID != repairRun || rep.Kind != journal.KindRepair || !rep.Finished || rep.ExitCode != 0 || len(rep.Hosts) != 1 ||
		rep.Hosts[0].Host != canary || rep.Hosts[0].Outcome != event.OutcomeOK {
		t.Errorf("the repair run as the journal sees it: %+v", rep)
	}
	r = e.rcRun(0, "history", "--ui", "json")
	listed := false
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var h struct {
			Run, Kind string
			Hosts     map[string]string
		}
		if json.Unmarshal([]byte(line), &h) == nil && h.Run == repairRun && h.Kind == "repair" && h.Hosts[canary] == "ok" {
			listed = true
		}
	}
	if !listed {
		t.Errorf("history does not list repair %s:\n%s", repairRun, r.stdout)
	}
	if r := e.rcRun(0, "history", "--ui", "plain"); !strings.Contains(r.stdout, repairRun) || !strings.Contains(r.stdout, "repair") {
		t.Errorf("plain history lacks the repair:\n%s", r.stdout)
	}
	if r := e.rcRun(0, "history", "--replay", repairRun, "--speed", "0", "--ui", "plain"); !strings.Contains(r.stdout, canary) {
		t.Errorf("history --replay %s does not show %s:\n%s", repairRun, canary, r.stdout)
	}
	// after the repair nothing needs a person: the repair left it serving
	e.rcRun(0, "status", "--detailed-exitcode", "--ui", "plain")

	// an operator drains the canary by hand
	if out, err := e.f.Admin(0, "set server web/"+canary+" state maint"); err != nil {
		t.Fatalf("draining %s by hand: %v %s", canary, err, out)
	}
	e.rcWaitLB(t, canary, "MAINT")
	r = e.rcRun(4, "status", "--detailed-exitcode", "--ui", "plain")
	line := ""
	for _, l := range strings.Split(r.stdout, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), canary+" ") && strings.Contains(l, "outside rollout") {
			line = l
		}
	}
	if !strings.Contains(line, "drained outside rollout (") || !strings.Contains(line, "MAINT): the last run that touched it, repair "+repairRun+", left it in service") {
		t.Errorf("status does not say %s was drained outside rollout after repair %s:\n%s", canary, repairRun, r.stdout)
	}
	if strings.Contains(line, "rollout repair") || strings.Contains(line, "left drained by run") {
		t.Errorf("status blames a run or suggests repair for an operator's drain:\n%s", line)
	}
	r = e.rcRun(4, "status", "--detailed-exitcode", "--ui", "json")
	for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var row struct {
			Host, Attention, Next string
			By                    string `json:"last_touched_by"`
			Kind                  string `json:"last_touched_kind"`
		}
		if json.Unmarshal([]byte(l), &row) != nil || row.Host != canary {
			continue
		}
		if row.By != repairRun || row.Kind != "repair" || !strings.Contains(row.Attention, "outside rollout") || strings.Contains(row.Next, "repair") {
			t.Errorf("status json for %s: %+v", canary, row)
		}
		// its hint, pasted, works (it only looks)
		cmd, _, _ := strings.Cut(row.Next, "  #")
		if p := e.pasteNext(t, cmd); p.code != 0 {
			dump(t, p)
			t.Errorf("pasting %q: exit %d", cmd, p.code)
		}
	}
	// a repair now finds nothing of rollout's to put back, and leaves the
	// operator's drain alone
	r = e.rcRun(0, "repair", "--yes")
	if !strings.Contains(r.stdout, "nothing to put back") {
		t.Errorf("repair after a hand drain:\n%s", r.stdout)
	}
	e.rcWaitLB(t, canary, "MAINT")
}
