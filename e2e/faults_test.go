package e2e

// The reliability suite: faults injected into a real fleet (OpenSSH sshd,
// HAProxy with `retries 0`, the demo app) under HTTP load. Each fault must
// leave the fleet in a known, recoverable state: the run says which hosts
// are where, `rollout repair` (after `rollout unlock` when it says so) puts
// back what the run left, a re-run converges, and no client request fails
// at any point. docs/reliability.md lists each promise with its test.

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rollout-sh/rollout/rollout/event"
)

// killPoint is where in the event stream the controller is SIGKILLed.
type killPoint struct {
	name string
	at   func(event.Event) bool
}

func phaseRunning(ph event.Phase, batch int) func(event.Event) bool {
	return func(ev event.Event) bool {
		return ev.Event == event.HostPhase && ev.Phase == ph && ev.Status == event.StatusRunning &&
			(batch == 0 || ev.Batch == batch)
	}
}

// TestFaultsKillControllerAtEachPhase SIGKILLs the controller at every
// phase of a host's pipeline (and between batches), each time on a new
// revision, then follows the documented recovery: `rollout repair`, then
// the same apply again. After each: every host on the new revision, every
// server UP at full weight on every LB, no lock, no drift; over the whole
// test not one client request failed.
func TestFaultsKillControllerAtEachPhase(t *testing.T) {
	t.Parallel()
	e := setup(t, 3, 2)
	e.writePlan(e.tags["v1"], "halt", "0s")
	e.rcRun(0, "apply", "--batch", "1", "--yes", "--ui", "plain")
	e.waitAllUp(t)
	l := startLoad(e.frontend(), 4)
	defer l.Stop()

	points := []killPoint{
		{"locked", func(ev event.Event) bool { return ev.Event == event.RunStart }}, // locks held, nothing else done
		{"preflight", func(ev event.Event) bool { return ev.Event == event.PreflightStart }},
		{"drain", phaseRunning(event.PhaseDrain, 1)},
		{"drain-wait", func(ev event.Event) bool { return ev.Event == event.DrainSessions }},
		{"stage", phaseRunning(event.PhaseStage, 1)},
		{"validate", phaseRunning(event.PhaseValidate, 1)},
		{"install", phaseRunning(event.PhaseInstall, 1)},
		{"restart", phaseRunning(event.PhaseRestart, 1)},
		{"health", phaseRunning(event.PhaseHealth, 1)},
		{"ramp", func(ev event.Event) bool { return ev.Event == event.RampStep }},
		{"record", phaseRunning(event.PhaseRecord, 1)},
		{"next-batch-drain", phaseRunning(event.PhaseDrain, 2)},
	}
	revs := []struct{ tag, version string }{{"v2", "version=2"}, {"v1", "version=1"}}
	for i, p := range points {
		rv := revs[i%2]
		ok := t.Run(p.name, func(t *testing.T) {
			e.t = t
			e.writePlan(e.tags[rv.tag], "halt", "1s")
			bg := e.rcStart(t, "apply", "--batch", "1", "--yes", "--ui", "json")
			ev := bg.waitFor(t, p.name, p.at)
			bg.kill(t)
			t.Logf("%s SIGKILLed at %s (host %q, batch %d)", time.Now().Format("15:04:05.000"), p.name, ev.Host, ev.Batch)
			e.fRecover(t, rv.tag, rv.version)
		})
		if !ok {
			break // the fleet's state is unknown: later points would mislead
		}
	}
	e.t = t
	fNoClientErrors(t, l, "during kills and recoveries")
}

// fNoClientErrors stops the load and fails the test if any request failed,
// or if none succeeded (the zero-error check would prove nothing).
func fNoClientErrors(t *testing.T, l *load, when string) {
	t.Helper()
	l.Stop()
	if n := l.Failed.Load(); n != 0 {
		t.Errorf("%d client requests failed %s (of %d): %v", n, when, n+l.OK.Load(), l.Errs())
	}
	if l.OK.Load() == 0 {
		t.Error("the load sent no successful request: the zero-error check proves nothing")
	}
}

// fRecover runs the documented recovery after a fault and checks that the
// fleet converged on tag: `rollout repair`, then the same apply. Where one
// of them refuses on a dead run's lock and its hint says `rollout unlock`,
// the hint is followed and the command run again.
func (e *env) fRecover(t *testing.T, tag, version string) {
	t.Helper()
	for _, args := range [][]string{{"repair", "--yes"}, {"apply", "--batch", "1", "--yes", "--ui", "plain"}} {
		r := e.rollout(args...)
		if r.code == 2 && strings.Contains(r.stderr, "rollout unlock") {
			t.Logf("%s refused on the dead run's lock; following its hint: rollout unlock\n%s", args[0], strings.TrimSpace(r.stderr))
			e.rcRun(0, "unlock", "--yes")
			r = e.rollout(args...)
		}
		if r.code != 0 {
			dump(t, r)
			t.Fatalf("%s after the fault: exit %d", args[0], r.code)
		}
	}
	e.fConverged(t, tag, version)
	t.Logf("%s converged on %s", time.Now().Format("15:04:05.000"), tag)
}

// fConverged checks every host is on tag with its files, serving, at full
// weight on every LB, unlocked and without drift.
func (e *env) fConverged(t *testing.T, tag, version string) {
	t.Helper()
	for _, h := range e.f.Hosts {
		e.rcAssertAt(t, h, e.tags[tag], e.rcRender(t, tag, h), version)
	}
	e.waitAllUp(t)
	for name, s := range e.stats(t) {
		if w := s.Fields["weight"]; w != "100" {
			t.Errorf("%s: weight %s after recovery, want the configured 100", name, w)
		}
	}
	for name, row := range e.rcStatus(t) {
		if row.Lock != "" || len(row.Drift) != 0 || row.Revision != e.tags[tag] {
			t.Errorf("status after recovery: %s = %+v, want %s, no lock, no drift", name, row, tag)
		}
	}
}

// TestFaultsSSHDKilledInHealthWindow kills the canary's sshd (listener and
// connections) while its health window runs. rollout cannot see the host
// any more: the canary is `unknown` (not a verdict on the service), no
// other host is touched, and the run exits 1 naming it. With sshd back,
// repair and a re-run converge with no client error.
func TestFaultsSSHDKilledInHealthWindow(t *testing.T) {
	t.Parallel()
	e := setup(t, 3, 1)
	e.writePlan(e.tags["v1"], "halt", "0s")
	e.rcRun(0, "apply", "--batch", "1", "--yes", "--ui", "plain")
	e.waitAllUp(t)
	before := e.rcConfigs()
	l := startLoad(e.frontend(), 4)
	defer l.Stop()

	e.writePlan(e.tags["v2"], "halt", "4s")
	bg := e.rcStart(t, "apply", "--batch", "1", "--yes", "--ui", "json")
	ev := bg.waitFor(t, "the canary's health window", phaseRunning(event.PhaseHealth, 1))
	canary := e.rcHost(ev.Host)
	if err := e.f.KillSSHD(canary); err != nil {
		t.Fatal(err)
	}
	t.Logf("killed sshd of %s in its health window", canary.Name)
	done := fRunEnd(t, bg, 1, "a run with an unreachable canary")
	cd := done[canary.Name]
	if cd.Status != string(event.OutcomeUnknown) {
		t.Errorf("canary %s: host_done %q (%s), want unknown: a lost connection is not a verdict on the service",
			canary.Name, cd.Status, cd.Message)
	}
	// the verdict words of the health gate must not appear: the message
	// says the connection was lost (it may name the probe that lost it)
	if !strings.Contains(cd.Message, "connection lost") || strings.Contains(cd.Message, "flapping") || strings.Contains(cd.Message, "not healthy") {
		t.Errorf("the lost connection is not reported as such, or is blamed on the service: %q", cd.Message)
	}
	for _, h := range e.f.Hosts {
		if h.Name == canary.Name {
			continue
		}
		if d, ok := done[h.Name]; ok && d.Status != string(event.OutcomeNotStarted) {
			t.Errorf("%s: %s, want not_started: no batch starts after a host is unknown", h.Name, d.Status)
		}
		if e.liveConfig(h) != before[h.Name] {
			t.Errorf("%s was changed after the canary became unknown", h.Name)
		}
	}

	if err := e.f.RestartSSHD(context.Background(), canary); err != nil {
		t.Fatal(err)
	}
	e.fRecover(t, "v2", "version=2")
	fNoClientErrors(t, l, "through the lost sshd and its recovery")
}

// TestFaultsAdminSocketGone moves HAProxy's admin socket away while the
// canary is in its health window: rollout cannot put it back into the
// LB. The run ends 1, says the canary is left drained and names the
// socket; with the socket back, repair returns it and a re-run converges.
func TestFaultsAdminSocketGone(t *testing.T) {
	t.Parallel()
	e := setup(t, 3, 1)
	e.writePlan(e.tags["v1"], "halt", "0s")
	e.rcRun(0, "apply", "--batch", "1", "--yes", "--ui", "plain")
	e.waitAllUp(t)
	l := startLoad(e.frontend(), 4)
	defer l.Stop()

	e.writePlan(e.tags["v2"], "halt", "2s")
	bg := e.rcStart(t, "apply", "--batch", "1", "--yes", "--ui", "json")
	ev := bg.waitFor(t, "the canary's health window", phaseRunning(event.PhaseHealth, 1))
	restore, err := e.f.MoveAdminSocket(0)
	if err != nil {
		t.Fatal(err)
	}
	restored := false
	defer func() {
		if !restored {
			_ = restore()
		}
	}()
	done := fRunEnd(t, bg, 1, "a run without the LB socket")
	cd := done[ev.Host]
	if cd.Status == string(event.OutcomeOK) || cd.Status == "" {
		t.Errorf("canary %s: %q, want a failure outcome (it could not be put back into the LB)", ev.Host, cd.Status)
	}
	if !strings.Contains(cd.Message, e.f.HAProxySockets[0]) {
		t.Errorf("canary failure does not name the socket %s: %q", e.f.HAProxySockets[0], cd.Message)
	}
	if err := restore(); err != nil {
		t.Fatal(err)
	}
	restored = true
	// the canary is still out of rotation: rollout never claimed to have
	// put it back
	e.rcAssertOutOfRotation(t, ev.Host)
	e.fRecover(t, "v2", "version=2")
	fNoClientErrors(t, l, "without the LB socket and through its recovery")
}

// TestFaultsDiskFullWhileStaging fills the filesystem of one host's
// config directory (a small tmpfs): staging the new files there fails in
// preflight, before any host leaves the LB. The error names the host and
// the cause; nothing is drained, no live file changes. With space back, a
// re-run converges.
func TestFaultsDiskFullWhileStaging(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		if os.Getenv("ROLLOUT_E2E") == "1" {
			t.Fatal("the disk-full fault mounts a tmpfs and needs root")
		}
		t.Skip("needs root to mount a tmpfs")
	}
	e := setup(t, 3, 1)
	e.writePlan(e.tags["v1"], "halt", "0s")
	e.rcRun(0, "apply", "--batch", "1", "--yes", "--ui", "plain")
	e.waitAllUp(t)
	full := e.f.Hosts[1]
	fillDir(t, filepath.Dir(full.ConfigPath()))
	before := e.snapshot(t)
	l := startLoad(e.frontend(), 4)
	defer l.Stop()

	e.writePlan(e.tags["v2"], "halt", "0s")
	r := e.rcRun(1, "apply", "--batch", "1", "--yes", "--ui", "plain")
	out := r.stdout + r.stderr
	if !strings.Contains(out, full.Name) || !strings.Contains(strings.ToLower(out), "no space left") {
		dump(t, r)
		t.Errorf("the preflight failure does not name %s and the full disk", full.Name)
	}
	e.untouched(t, before, "a preflight that hit a full disk")

	unmount(t, filepath.Dir(full.ConfigPath()))
	e.rcRun(0, "apply", "--batch", "1", "--yes", "--ui", "plain")
	e.fConverged(t, "v2", "version=2")
	fNoClientErrors(t, l, "through the full disk and its recovery")
}

// fillDir mounts a small tmpfs over dir (keeping its files) and fills it,
// so that writing anything new there fails with ENOSPC.
func fillDir(t *testing.T, dir string) {
	t.Helper()
	saved := t.TempDir()
	if out, err := exec.Command("cp", "-a", dir+"/.", saved).CombinedOutput(); err != nil {
		t.Fatalf("save %s: %v\n%s", dir, err, out)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs on %s: %v\n%s", dir, err, out)
	}
	t.Cleanup(func() { unmount(t, dir) })
	if out, err := exec.Command("cp", "-a", saved+"/.", dir).CombinedOutput(); err != nil {
		t.Fatalf("restore %s: %v\n%s", dir, err, out)
	}
	f, err := os.Create(filepath.Join(dir, ".filler"))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			break // ENOSPC: full
		}
	}
	f.Close()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil || st.Bavail != 0 {
		t.Fatalf("%s is not full: %d blocks free (%v)", dir, st.Bavail, err)
	}
}

// unmount lazily unmounts the tmpfs over dir, putting its files back on
// the disk below. Safe to call twice.
func unmount(t *testing.T, dir string) {
	var st, parent syscall.Stat_t
	if syscall.Stat(dir, &st) != nil || syscall.Stat(filepath.Dir(dir), &parent) != nil || st.Dev == parent.Dev {
		return // not a mount point (any more)
	}
	saved, err := os.MkdirTemp("", "rollout-unmount-")
	if err != nil {
		t.Error(err)
		return
	}
	defer os.RemoveAll(saved)
	os.Remove(filepath.Join(dir, ".filler"))
	if out, err := exec.Command("cp", "-a", dir+"/.", saved).CombinedOutput(); err != nil {
		t.Errorf("save %s: %v\n%s", dir, err, out)
	}
	if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
		t.Errorf("umount %s: %v\n%s", dir, err, out)
		return
	}
	if out, err := exec.Command("cp", "-a", saved+"/.", dir).CombinedOutput(); err != nil {
		t.Errorf("restore %s: %v\n%s", dir, err, out)
	}
}

// fRunEnd reads a background run to its end and returns each host's
// host_done; it fails the test unless the run exited with want and ended
// its stream with run_done (it ended cleanly, not killed).
func fRunEnd(t *testing.T, bg *rcBackground, want int, what string) map[string]event.Event {
	t.Helper()
	done := map[string]event.Event{}
	var last event.Event
	for ev := range bg.events {
		switch ev.Event {
		case event.HostDone:
			done[ev.Host] = ev
		case event.RunDone:
			last = ev
		}
	}
	<-bg.done
	if code := bg.cmd.ProcessState.ExitCode(); code != want {
		t.Errorf("%s exited %d, want %d", what, code, want)
	}
	if last.Event != event.RunDone {
		t.Fatalf("%s ended without run_done: it did not end cleanly", what)
	}
	return done
}
