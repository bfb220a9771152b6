package e2e

import (
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/rollout-sh/rollout/internal/fleet"
	"github.com/rollout-sh/rollout/rollout/event"
)

// rcEtc lists a host's etc/ directory: a failed host must not keep staged
// or backup copies around.
func rcEtc(t *testing.T, h fleet.Host) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Dir(h.ConfigPath()))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

func rcMode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// Issue 3 acceptance on five hosts: batches [1, 2] from the plan under a
// --limit, files with their content and mode, current.json, every phase in
// the journal, batches strictly in order, the host outside the limit
// untouched. Then, on the same fleet: a `check` failing on the canary after
// its files moved restores them byte for byte and undrains it without a
// restart; a health gate that never passes fails the canary at its
// deadline and halts the run. Neither failure reaches a later batch.
func TestFiveHostsBatchesCheckAndHealthFailures(t *testing.T) {
	t.Parallel()
	e := setup(t, 5, 1)
	write := func(rev, extra string) {
		e.extra = "  batch = [1, 2]\n" + extra
		e.writePlan(rev, "halt", "0s")
		e.rcEditPlan(`    validate = `, "    mode     = \"0640\"\n    validate = ")
	}
	outside := e.rcHost("web5")
	outsidePID := e.rcPIDs()["web5"]
	targets := []string{"web1", "web2", "web3", "web4"}

	write(e.tags["v2"], "")
	r := e.rcRun(0, "apply", "--limit", "web:!web5", "--yes", "--ui", "json")
	evs := parseEvents(t, r.stdout)
	done, last := rcDone(t, evs)
	if last.Counts[event.OutcomeOK] != 4 || len(done) != 4 {
		t.Fatalf("apply: counts %+v, host_done for %d hosts, want 4 ok", last.Counts, len(done))
	}
	wantBatches := [][]string{{"web1"}, {"web2", "web3"}, {"web4"}}
	var batches [][]string
	drainAt := map[string]time.Time{}
	doneAt := map[string]time.Time{}
	for _, ev := range evs {
		switch {
		case ev.Event == event.BatchStart:
			batches = append(batches, ev.Hosts)
		case ev.Event == event.HostPhase && ev.Phase == event.PhaseDrain && ev.Status == event.StatusRunning:
			drainAt[ev.Host] = ev.Time
		case ev.Event == event.HostDone:
			doneAt[ev.Host] = ev.Time
		}
	}
	if !slices.EqualFunc(batches, wantBatches, slices.Equal[[]string]) {
		t.Fatalf("batches %v, want %v", batches, wantBatches)
	}
	for i := 1; i < len(batches); i++ {
		for _, prev := range batches[i-1] {
			for _, next := range batches[i] {
				if !doneAt[prev].Before(drainAt[next]) {
					t.Errorf("%s (batch %d) drained at %s, before %s (batch %d) was done at %s",
						next, i+1, drainAt[next].Format(time.RFC3339Nano), prev, i, doneAt[prev].Format(time.RFC3339Nano))
				}
			}
		}
	}
	for _, name := range targets {
		h := e.rcHost(name)
		want := e.rcRender(t, "v2", h)
		e.rcAssertAt(t, h, e.tags["v2"], want, "version=2")
		if m := rcMode(t, h.ConfigPath()); m != 0o640 {
			t.Errorf("%s app.conf mode %o, want 640", name, m)
		}
		st := e.state(t, h)
		files, _ := st["files"].(map[string]any)
		if st["host"] != name || st["plan"] != "demo" || st["run_id"] != last.Run || len(files) != 1 || files[h.ConfigPath()] != rcSHA256(want) {
			t.Errorf("%s current.json = %v", name, st)
		}
	}
	var runEvents []event.Event
	for _, ev := range e.rcJournal(t) {
		if ev.Run == last.Run {
			runEvents = append(runEvents, ev)
		}
	}
	for _, name := range targets {
		// the engine records a phase when the host enters it (the next
		// one, or host_done ok, says it completed) and when it fails
		var seen []event.Phase
		ok := false
		for _, ev := range runEvents {
			switch {
			case ev.Event == event.HostPhase && ev.Host == name && ev.Status == event.StatusFailed:
				t.Errorf("journal: %s failed %s: %s", name, ev.Phase, ev.Message)
			case ev.Event == event.HostPhase && ev.Host == name:
				seen = append(seen, ev.Phase)
			case ev.Event == event.HostDone && ev.Host == name:
				ok = ev.Status == string(event.OutcomeOK)
			}
		}
		want := []event.Phase{event.PhaseDrain, event.PhaseStage, event.PhaseValidate, event.PhaseInstall,
			event.PhaseRestart, event.PhaseHealth, event.PhaseUndrain, event.PhaseRecord}
		i := 0
		for _, ph := range seen {
			if i < len(want) && ph == want[i] {
				i++
			}
		}
		if i != len(want) || !ok {
			t.Errorf("journal: %s phases %v (host_done ok: %v), want %v in this order", name, seen, ok, want)
		}
	}
	if c := e.liveConfig(outside); c != fleet.DefaultConfig(outside) {
		t.Errorf("web5 is outside --limit but its config changed:\n%s", c)
	}
	if e.state(t, outside) != nil {
		t.Error("web5 is outside --limit but has a current.json")
	}
	if pid, _ := e.f.AppPID(outside); pid != outsidePID {
		t.Error("web5 is outside --limit but was restarted")
	}
	for _, ev := range evs {
		if ev.Host == "web5" {
			t.Errorf("an event for web5, outside --limit: %+v", ev)
		}
	}
	e.waitAllUp(t)

	// a check that fails on the canary after its files moved
	scope := []string{"--limit", "web1:web2:web3", "--batch", "1", "--yes", "--ui", "json"}
	web1 := e.rcHost("web1")
	configs, pids, etc := e.rcConfigs(), e.rcPIDs(), rcEtc(t, web1)
	write(e.tags["v1"], `  check = "test ${host.name} != web1"`)
	r = e.rcRun(1, append([]string{"apply"}, scope...)...)
	evs = parseEvents(t, r.stdout)
	done, last = rcDone(t, evs)
	if d := done["web1"]; d.Status != string(event.OutcomeFailed) {
		dump(t, r)
		t.Fatalf("web1 host_done = %+v, want failed", d)
	}
	installed, checkFailed, restored := false, false, false
	for _, ev := range evs {
		if ev.Event == event.HostPhase && ev.Host == "web1" {
			switch {
			case ev.Phase == event.PhaseInstall && ev.Status == event.StatusRunning:
				installed = true
			case ev.Phase == event.PhaseCheck && ev.Status == event.StatusFailed:
				checkFailed = installed
			case ev.Phase == event.PhaseRestore && ev.Status == event.StatusRunning:
				restored = checkFailed
			}
		}
		if ev.Event == event.HostPhase && ev.Host == "web1" && ev.Phase == event.PhaseRestart {
			t.Errorf("web1 restarted after its check failed: %+v", ev)
		}
		if ev.Event == event.HostPhase && ev.Host != "web1" {
			t.Errorf("a later batch ran after the failure: %+v", ev)
		}
	}
	if !installed || !checkFailed || !restored {
		t.Errorf("web1: install %v, then check failed %v, then restore %v; want all three in that order", installed, checkFailed, restored)
	}
	if got := e.liveConfig(web1); got != configs["web1"] {
		t.Errorf("web1 app.conf not restored byte for byte:\n%s\nwant:\n%s", got, configs["web1"])
	}
	if m := rcMode(t, web1.ConfigPath()); m != 0o640 {
		t.Errorf("web1 restored app.conf mode %o, want 640", m)
	}
	if got := rcEtc(t, web1); !slices.Equal(got, etc) {
		t.Errorf("web1 etc/ after the restore: %v, before: %v", got, etc)
	}
	e.rcWaitLB(t, "web1", "UP")
	for _, h := range e.f.Hosts {
		if e.liveConfig(h) != configs[h.Name] {
			t.Errorf("%s config changed by the failed run", h.Name)
		}
		if pid, _ := e.f.AppPID(h); pid != pids[h.Name] {
			t.Errorf("%s restarted by the failed run", h.Name)
		}
	}
	for _, name := range targets {
		e.rcAssertAt(t, e.rcHost(name), e.tags["v2"], configs[name], "version=2")
	}

	// a health gate that never passes: failed at its deadline, halted
	write(e.tags["v1"], "")
	e.rcEditPlan("/healthz", "/nope")
	e.rcEditPlan(`deadline    = "20s"`, `deadline    = "3s"`)
	r = e.rcRun(1, append([]string{"apply"}, scope...)...)
	evs = parseEvents(t, r.stdout)
	done, last = rcDone(t, evs)
	if d := done["web1"]; d.Status != string(event.OutcomeDrained) || !strings.Contains(d.Message, "404") {
		dump(t, r)
		t.Fatalf("web1 host_done = %+v, want drained naming the 404", d)
	}
	for _, ev := range evs {
		if ev.Event == event.HostPhase && ev.Host != "web1" {
			t.Errorf("a later batch ran after the failure: %+v", ev)
		}
		if ev.Event == event.BatchStart && ev.Batch > 1 {
			t.Errorf("batch %d started after the canary failed", ev.Batch)
		}
	}
	e.rcAssertOutOfRotation(t, "web1")
	if got := e.liveConfig(web1); got != e.rcRender(t, "v1", web1) {
		t.Errorf("halted web1 does not keep the failed release's files for inspection:\n%s", got)
	}
	for _, name := range []string{"web2", "web3", "web4", "web5"} {
		h := e.rcHost(name)
		if e.liveConfig(h) != configs[name] {
			t.Errorf("%s config changed by the halted run", name)
		}
		if pid, _ := e.f.AppPID(h); pid != pids[name] {
			t.Errorf("%s restarted by the halted run", name)
		}
		e.rcWaitLB(t, name, "UP")
	}
}
