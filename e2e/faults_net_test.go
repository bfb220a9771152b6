package e2e

// Network faults of the reliability suite: a host whose network is cut
// (it runs in a network namespace of its own; its end of the veth pair
// goes down, so packets are dropped silently, as on a pulled cable), and
// a host whose every command is slow. See docs/reliability.md.

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rollout-sh/rollout/internal/fleet"
	"github.com/rollout-sh/rollout/rollout/event"
)

// fNetTags commits two revisions of the demo template that listen on the
// host's own address (${host.address}) instead of 127.0.0.1, tagged
// net-v1 (version 1) and net-v2 (version 2), for fleets with hosts in
// network namespaces; and points the plan's health URL at host.address.
func (e *env) fNetTags(t *testing.T) {
	t.Helper()
	for _, v := range []struct{ tag, from string }{{"net-v1", "v1"}, {"net-v2", "v2"}} {
		tmpl := e.rcGit(t, "show", v.from+":conf/app.conf.tmpl")
		tmpl = strings.ReplaceAll(tmpl, "listen = 127.0.0.1:", "listen = ${host.address}:")
		if !strings.Contains(tmpl, "${host.address}") {
			t.Fatalf("the %s template has no 127.0.0.1 listen line to replace:\n%s", v.from, tmpl)
		}
		if err := os.WriteFile(filepath.Join(e.repo, "conf", "app.conf.tmpl"), []byte(tmpl+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		e.rcGit(t, "commit", "-q", "-am", "app.conf: "+v.tag+" listens on the host's address")
		e.rcGit(t, "tag", v.tag)
		e.tags[v.tag] = e.rcGit(t, "rev-parse", "HEAD")
	}
}

// fNetPlan writes the plan for rev with the health URL on host.address.
func (e *env) fNetPlan(rev, healthyFor string) {
	e.t.Helper()
	e.writePlan(rev, "halt", healthyFor)
	e.rcEditPlan(`url         = "http://127.0.0.1:`, `url         = "http://${host.address}:`)
}

// fRunEndGuarded is fRunEnd with a hang guard: a run that has not ended
// after limit is killed and the test fails (a run must end on its own,
// each step bounded, whatever the network does).
func fRunEndGuarded(t *testing.T, bg *rcBackground, want int, what string, limit time.Duration) map[string]event.Event {
	t.Helper()
	var hung atomic.Bool
	guard := time.AfterFunc(limit, func() {
		hung.Store(true)
		_ = bg.cmd.Process.Kill()
	})
	defer guard.Stop()
	defer func() {
		if hung.Load() {
			t.Errorf("%s did not end within %s: killed (a step without a bound)", what, limit)
		}
	}()
	return fRunEnd(t, bg, want, what)
}

// TestFaultsNetworkCut cuts the network of a host in its own network
// namespace at two points of its pipeline: while it is drained and
// waiting for its sessions (slow requests keep sessions open on it), and
// in its health gate. The host shares its batch with another. Each time:
// the run ends by itself (every step bounded) with exit 1; the cut host is
// `unknown` — never a verdict on its service (flapping, not healthy, a
// drain timeout); no other host is left drained without its host_done
// saying so; and once the link is back, `rollout repair` and the same
// apply converge. Over the whole test not one client request failed.
func TestFaultsNetworkCut(t *testing.T) {
	t.Parallel()
	e := setupWith(t, 3, 1, func(o *fleet.Options) { o.Netns = []string{"web1"} })
	cut := e.rcHost("web1")
	e.fNetTags(t)
	e.fNetPlan(e.tags["net-v1"], "0s")
	e.rcRun(0, "apply", "--batch", "2", "--yes", "--ui", "plain")
	e.waitAllUp(t)
	l := startLoad(e.frontend(), 4)
	defer l.Stop()

	points := []struct {
		name, tag, version string
		hold               bool // keep slow sessions open so the drain waits
		at                 func(event.Event) bool
		// keepalive: the plan's ssh_keepalive and the --ssh-keepalive-count
		// flag for this point, and what the lost connection must say
		// (they reach the connection); "" = the defaults
		keepalive, count, lost string
	}{
		{"drain-wait", "net-v2", "version=2", true, func(ev event.Event) bool {
			return ev.Event == event.DrainSessions && ev.Host == cut.Name && ev.Sessions != nil && *ev.Sessions > 0
		}, "", "", ""},
		{"gate", "net-v1", "version=1", false, func(ev event.Event) bool {
			return phaseRunning(event.PhaseHealth, 1)(ev) && ev.Host == cut.Name
		}, "1s", "2", "no reply to 2 keepalives sent 1s apart"},
	}
	for _, p := range points {
		ok := t.Run(p.name, func(t *testing.T) {
			e.t = t
			e.extra = ""
			args := []string{"apply", "--batch", "2", "--yes", "--ui", "json"}
			if p.keepalive != "" {
				e.extra = `  ssh_keepalive = "` + p.keepalive + `"`
				args = append(args, "--ssh-keepalive-count", p.count)
				defer func() { e.extra = "" }()
			}
			e.fNetPlan(e.tags[p.tag], "3s")
			var slow *slowHolder
			if p.hold {
				slow = holdSlow(e.frontend(), 3*time.Second)
				defer slow.Close()
				time.Sleep(500 * time.Millisecond) // slow sessions on every server
			}
			bg := e.rcStart(t, args...)
			ev := bg.waitFor(t, p.name+" of "+cut.Name, p.at)
			if err := e.f.CutNetwork(cut); err != nil {
				t.Fatal(err)
			}
			restored := false
			defer func() {
				if !restored {
					_ = e.f.RestoreNetwork(context.Background(), cut)
				}
			}()
			t.Logf("%s cut the network of %s at %s (%s)", time.Now().Format("15:04:05.000"), cut.Name, p.name, ev.Event)
			if slow != nil {
				slow.Stop() // no new slow requests; those on cut stay stuck
			}
			done := fRunEndGuarded(t, bg, 1, "a run that lost "+cut.Name, 4*time.Minute)
			t.Logf("%s run ended", time.Now().Format("15:04:05.000"))
			cd := done[cut.Name]
			for name, d := range done {
				t.Logf("host_done %s: %s: %s", name, d.Status, d.Message)
			}
			if cd.Status != string(event.OutcomeUnknown) {
				t.Errorf("%s: host_done %q (%s), want unknown: a cut network is not a verdict on the service", cut.Name, cd.Status, cd.Message)
			}
			if p.lost != "" && !strings.Contains(cd.Message, p.lost) {
				t.Errorf("%s: the lost connection is not found by the configured keepalive (want %q): %s", cut.Name, p.lost, cd.Message)
			}
			for _, verdict := range []string{"flapping", "not healthy", "drain timeout", "left untouched"} {
				if strings.Contains(cd.Message, verdict) {
					t.Errorf("%s: the lost host is blamed on the service (%q): %s", cut.Name, verdict, cd.Message)
				}
			}
			// nothing else is left out of rotation unless its host_done
			// says it was left drained
			for _, h := range e.f.Hosts {
				if h.Name == cut.Name {
					continue
				}
				d, seen := done[h.Name]
				if !seen {
					t.Errorf("%s: no host_done: every host must be accounted for", h.Name)
				}
				if d.Status == string(event.OutcomeDrained) || d.Status == string(event.OutcomeUnknown) {
					continue // it says so
				}
				for _, st := range e.rcLB(t, h.Name) {
					if strings.HasPrefix(st, "MAINT") || strings.HasPrefix(st, "DRAIN") {
						t.Errorf("%s is %s in HAProxy, but its host_done says %q (%s)", h.Name, st, d.Status, d.Message)
					}
				}
			}
			if err := e.f.RestoreNetwork(context.Background(), cut); err != nil {
				t.Fatal(err)
			}
			restored = true
			if slow != nil {
				slow.Close()
			}
			e.fRecover(t, p.tag, p.version)
		})
		if !ok {
			break
		}
	}
	e.t = t
	fNoClientErrors(t, l, "during the cuts and recoveries")
}

// TestFaultsSlowHost makes every command of one host wait a second (its
// sshd hands commands a shell that sleeps first, as on an overloaded
// host) and rolls four hosts in batches of two, the slow host in the
// first. The slow host only holds its own batch: its batch mate goes
// through its whole pipeline without waiting for it, the next batch
// starts as soon as the slow host's batch is done (nothing of it runs
// before, no wait in between), and the slow host does nothing more once
// it is done. Asserted on the order of events, never on times.
func TestFaultsSlowHost(t *testing.T) {
	t.Parallel()
	e := setupWith(t, 4, 1, func(o *fleet.Options) { o.Delayable = []string{"web2"} })
	slow := e.rcHost("web2")
	e.writePlan(e.tags["v1"], "halt", "0s")
	e.rcRun(0, "apply", "--batch", "2", "--yes", "--ui", "plain")
	e.waitAllUp(t)
	l := startLoad(e.frontend(), 4)
	defer l.Stop()

	if err := e.f.DelayCommands(slow, time.Second); err != nil {
		t.Fatal(err)
	}
	e.writePlan(e.tags["v2"], "halt", "1s")
	bg := e.rcStart(t, "apply", "--batch", "2", "--yes", "--ui", "json")
	var evs []event.Event
	for ev := range bg.events {
		evs = append(evs, ev)
	}
	<-bg.done
	if code := bg.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("apply with a slow host exited %d, want 0", code)
	}
	if n := e.f.DelayedCommands(slow); n < 4 {
		t.Fatalf("only %d commands of %s were delayed: the host was not slow", n, slow.Name)
	}
	t.Logf("%d commands of %s waited a second each", e.f.DelayedCommands(slow), slow.Name)
	if err := e.f.DelayCommands(slow, 0); err != nil {
		t.Fatal(err)
	}

	idx := func(what string, match func(event.Event) bool) int {
		t.Helper()
		for i, ev := range evs {
			if match(ev) {
				return i
			}
		}
		t.Fatalf("no %s event", what)
		return -1
	}
	hostDone := func(h string) func(event.Event) bool {
		return func(ev event.Event) bool { return ev.Event == event.HostDone && ev.Host == h }
	}
	var start struct{ Batches [][]string }
	start.Batches = evs[idx("run_start", func(ev event.Event) bool { return ev.Event == event.RunStart })].Batches
	if len(start.Batches) != 2 || !slices.Contains(start.Batches[0], slow.Name) {
		t.Fatalf("batches %v: want two, %s in the first", start.Batches, slow.Name)
	}
	mate := start.Batches[0][0]
	if mate == slow.Name {
		mate = start.Batches[0][1]
	}
	slowDone := idx("host_done "+slow.Name, hostDone(slow.Name))
	// the batch mate is not held in step with the slow host
	if mateDone := idx("host_done "+mate, hostDone(mate)); mateDone > slowDone {
		t.Errorf("%s finished after the slow %s: it was held by it inside the batch", mate, slow.Name)
	}
	// the batch boundary: batch 1 ends with the slow host, batch 2 starts
	// right after, with nothing in between but the end of batch 1
	b1Done := idx("batch_done 1", func(ev event.Event) bool { return ev.Event == event.BatchDone && ev.Batch == 1 })
	b2Start := idx("batch_start 2", func(ev event.Event) bool { return ev.Event == event.BatchStart && ev.Batch == 2 })
	if !(slowDone < b1Done && b1Done < b2Start) {
		t.Errorf("order: host_done %s #%d, batch_done 1 #%d, batch_start 2 #%d", slow.Name, slowDone, b1Done, b2Start)
	}
	for _, ev := range evs[slowDone+1 : b2Start] {
		if ev.Event != event.BatchDone && ev.Event != event.Log {
			t.Errorf("between the slow host's end and batch 2: %s %s %s (%s)", ev.Event, ev.Host, ev.Status, ev.Message)
		}
	}
	for i, ev := range evs {
		if ev.Host == "" {
			continue
		}
		if slices.Contains(start.Batches[1], ev.Host) && ev.Event == event.HostPhase && i < b2Start {
			t.Errorf("%s started %s before batch 2", ev.Host, ev.Phase)
		}
		if ev.Host == slow.Name && ev.Event == event.HostPhase && i > slowDone {
			t.Errorf("%s still working (%s) after its host_done", slow.Name, ev.Phase)
		}
	}
	for _, h := range e.f.Hosts {
		d := evs[idx("host_done "+h.Name, hostDone(h.Name))]
		if d.Status != string(event.OutcomeOK) {
			t.Errorf("%s: %s (%s), want ok", h.Name, d.Status, d.Message)
		}
	}
	e.fConverged(t, "v2", "version=2")
	fNoClientErrors(t, l, "with a slow host")
}
