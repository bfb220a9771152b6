package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rollout-sh/rollout/internal/fleet"
	"github.com/rollout-sh/rollout/journal"
	"github.com/rollout-sh/rollout/rollout/event"
)

// Issue 22, item 3: HAProxy reloaded (master-worker, as `systemctl reload`
// does) or restarted while rollout has a host out of the pool. The new
// process starts with every server in service; rollout must notice, put the
// drain back on the process that serves before it goes on, say so, and
// never restart a host while that process sends it traffic. Load runs
// through HAProxy with retries 0 the whole time, so one request sent to a
// restarting app is a failed request.
//
// One run, batch 1, four hosts, a fault per host:
//   - web2: reload the moment its stage starts (the measured fault: drained
//     on the old worker, restarted while the new one sent it traffic);
//   - web3: reload during its sessions wait;
//   - web4: a full restart of HAProxy (stop + start: all state lost) the
//     moment its restart command starts. The restart command sleeps a
//     second before restarting the app, so only rollout's watch of the
//     serving process stands between the new HAProxy and a restarting app.
func TestHAProxyReloadAndRestartMidRunDropNoRequest(t *testing.T) {
	t.Parallel()
	e := setupWith(t, 4, 1, func(o *fleet.Options) { o.MasterWorker = true })
	e.writePlan(e.tags["v2"], "halt", "1s")
	b, err := os.ReadFile(e.plan)
	if err != nil {
		t.Fatal(err)
	}
	slow := strings.Replace(string(b), `restart = "`, `restart = "sleep 1; `, 1)
	if slow == string(b) {
		t.Fatal("the plan has no restart command to slow down")
	}
	if err := os.WriteFile(e.plan, []byte(slow), 0o644); err != nil {
		t.Fatal(err)
	}
	e.waitAllUp(t)

	loads := []*load{startLoad(e.frontend(), 4)}
	bg := e.rcStart(t, "apply", "rollout.hcl", "--batch", "1", "--yes", "--ui", "json")
	var evs []event.Event
	reloaded, restarted := map[string]bool{}, false
	ctx := context.Background()
	timeout := time.After(3 * time.Minute)
loop:
	for {
		select {
		case ev, ok := <-bg.events:
			if !ok {
				break loop
			}
			evs = append(evs, ev)
			switch {
			case ev.Event == event.HostPhase && ev.Host == "web2" && ev.Phase == event.PhaseStage && ev.Status == event.StatusRunning && !reloaded["web2"]:
				reloaded["web2"] = true
				if err := e.f.ReloadHAProxy(ctx, 0); err != nil {
					t.Fatal(err)
				}
			case ev.Event == event.DrainSessions && ev.Host == "web3" && !reloaded["web3"]:
				reloaded["web3"] = true
				if err := e.f.ReloadHAProxy(ctx, 0); err != nil {
					t.Fatal(err)
				}
			case ev.Event == event.HostPhase && ev.Host == "web4" && ev.Phase == event.PhaseRestart && ev.Status == event.StatusRunning && !restarted:
				restarted = true
				// the LB's own outage (its frontend is down in between)
				// is not rollout's: count the load before and after it
				loads[len(loads)-1].Stop()
				if err := e.f.RestartHAProxy(ctx, 0); err != nil {
					t.Fatal(err)
				}
				loads = append(loads, startLoad(e.frontend(), 4))
			}
		case <-timeout:
			t.Fatal("the run did not end within 3 minutes")
		}
	}
	<-bg.done
	for _, l := range loads {
		ok, failed, errs := l.Stop()
		if failed != 0 || ok == 0 {
			t.Errorf("load through HAProxy: %d ok, %d failed: %v", ok, failed, errs)
		}
	}
	if !reloaded["web2"] || !reloaded["web3"] || !restarted {
		t.Fatalf("not every fault was injected: reloads %v, restart %v", reloaded, restarted)
	}
	if code := bg.cmd.ProcessState.ExitCode(); code != 0 {
		bg.mu.Lock()
		t.Fatalf("apply exit %d; stderr:\n%s", code, bg.stderr.String())
	}

	// the event stream says what happened, for each fault, naming the host
	var notices []event.Event
	for _, ev := range evs {
		if ev.Event == event.LBReload {
			notices = append(notices, ev)
		}
	}
	for _, host := range []string{"web2", "web3", "web4"} {
		found := false
		for _, n := range notices {
			if n.Status == event.StatusOK && strings.Contains(n.Message, "re-applied web/"+host+" ") && contains(n.Hosts, host) {
				found = true
			}
		}
		if !found {
			t.Errorf("no lb_reload event re-applying %s's drain; lb_reload events: %+v", host, notices)
		}
	}
	for _, h := range e.f.Hosts {
		if v := e.appVersion(t, h); v != "version=2" {
			t.Errorf("%s answers %q, want version=2", h.Name, v)
		}
	}
	e.waitAllUp(t)
	for name, s := range e.stats(t) {
		if s.Status != "UP" || s.Weight != 100 {
			t.Errorf("%s ends %s weight %d, want UP 100", name, s.Status, s.Weight)
		}
	}
	// the journal has the notices too, and parses
	recs, err := journal.Read(filepath.Join(e.dir, ".rollout", "journal.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range recs {
		if r.Event == event.LBReload {
			n++
		}
	}
	if n < 3 {
		t.Errorf("the journal has %d lb_reload records, want at least 3", n)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
