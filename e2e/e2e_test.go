// Package e2e runs the real rollout binary against a real local fleet:
// OpenSSH sshd per host, the demo app, HAProxy with its runtime API, and
// HTTP load from a bounded client loop. With ROLLOUT_E2E=1 a missing
// component fails the run instead of skipping it.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rollout-sh/rollout/drain"
	"github.com/rollout-sh/rollout/internal/fleet"
	"github.com/rollout-sh/rollout/rollout/event"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func moduleRoot(t *testing.T) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(file))
}

// rolloutBin builds the real binary once per test process.
func rolloutBin(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "rollout-e2e-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "rollout")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/rollout")
		cmd.Dir = moduleRoot(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

type env struct {
	t     *testing.T
	f     *fleet.Fleet
	dir   string
	repo  string
	plan  string
	tags  map[string]string
	extra string // appended inside the plan block
	drain string // the drain block

	app, restart string
}

const planTemplate = `plan "demo" {
  inventory  = "inventory.ini"
  hosts      = "web"
  repo       = %q
  revision   = %q
  state_dir  = "${host.vars.root}/state"
  on_failure = %q
%s
%s
%s  health "http" {
    url         = "http://127.0.0.1:${host.vars.app_port}/healthz"
    interval    = "200ms"
    healthy_for = "%s"
    deadline    = "20s"
    pid_file    = "${host.vars.root}/run/app.pid"
  }
}
`

func setup(t *testing.T, hosts, lbs int) *env {
	t.Helper()
	return setupWith(t, hosts, lbs, nil)
}

// setupWith is setup with more fleet options (network namespaces, slow
// hosts) set by opt.
func setupWith(t *testing.T, hosts, lbs int, opt func(*fleet.Options)) *env {
	t.Helper()
	bin := rolloutBin(t)
	_ = bin
	app, restart := fleet.DemoPaths(t)
	dir := t.TempDir()
	opts := fleet.Options{Dir: filepath.Join(dir, "fleet"), Hosts: hosts, HAProxy: lbs, AppBinary: app, RestartScript: restart}
	if opt != nil {
		opt(&opts)
	}
	f := fleet.StartT(t, opts)
	e := &env{t: t, f: f, dir: dir, repo: filepath.Join(dir, "repo"), plan: filepath.Join(dir, "rollout.hcl"), tags: map[string]string{}}
	e.tags = fleet.DemoRepo(t, e.repo)
	if err := f.WriteInventory(filepath.Join(dir, "inventory.ini")); err != nil {
		t.Fatal(err)
	}
	var eps []string
	for _, s := range f.HAProxySockets {
		eps = append(eps, fmt.Sprintf("%q", "unix:"+s))
	}
	e.drain = fmt.Sprintf(`  drain "haproxy" {
    endpoints = [%s]
    backend   = "web"
    server    = host.name
    timeout   = "20s"
    ramp      = ["50%%", "100%%"]
  }`, strings.Join(eps, ", "))
	e.app, e.restart = app, restart
	return e
}

func (e *env) writePlan(rev, onFailure, healthyFor string) {
	e.t.Helper()
	p := fmt.Sprintf(planTemplate, e.repo, rev, onFailure, e.drain, e.extra, fleet.DemoAppBlocks(e.app, e.restart), healthyFor)
	if err := os.WriteFile(e.plan, []byte(p), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

type result struct {
	stdout, stderr string
	code           int
}

func (e *env) rollout(args ...string) result {
	e.t.Helper()
	return e.rolloutKnownHosts(e.f.KnownHosts, args...)
}

// rolloutKnownHosts runs the binary in the plan's dir with --known-hosts kh
// and no stdin (like CI).
func (e *env) rolloutKnownHosts(kh string, args ...string) result {
	e.t.Helper()
	return e.rolloutIn(nil, kh, args...)
}

// rolloutIn is rolloutKnownHosts with the environment environ (nil: this
// process's).
func (e *env) rolloutIn(environ []string, kh string, args ...string) result {
	e.t.Helper()
	full := append(append([]string{}, args...), "--known-hosts", kh)
	cmd := exec.Command(rolloutBin(e.t), full...)
	cmd.Dir = e.dir
	cmd.Env = environ
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("running rollout: %v", err)
	}
	return result{so.String(), se.String(), code}
}

// load sends requests through HAProxy's frontend until stopped, counting
// failures (connection errors and non-2xx); fleet.HTTPLoad is bounded.
type load = fleet.HTTPLoad

func startLoad(url string, workers int) *load {
	return fleet.StartLoad(url, workers, 200000, 5*time.Millisecond)
}

func (e *env) frontend() string { return fmt.Sprintf("http://127.0.0.1:%d/", e.f.FrontendPorts[0]) }

func (e *env) liveConfig(h fleet.Host) string {
	b, _ := os.ReadFile(h.ConfigPath())
	return string(b)
}

func (e *env) appVersion(t *testing.T, h fleet.Host) string {
	resp, err := http.Get(fmt.Sprintf("http://%s:%d/", h.Address(), h.AppPort))
	if err != nil {
		return "down: " + err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return strings.Fields(string(b) + " ")[0]
}

// stats reads every server of the backend on every LB.
func (e *env) stats(t *testing.T) map[string]drain.Stat {
	t.Helper()
	out := map[string]drain.Stat{}
	for _, s := range e.f.HAProxySockets {
		api, err := drain.NewRuntimeAPI("unix:"+s, drain.LocalDialer())
		if err != nil {
			t.Fatal(err)
		}
		rows, err := api.Stat(context.Background(), "web")
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			if r.Server == "BACKEND" || r.Server == "FRONTEND" {
				continue
			}
			out[s+"/"+r.Server] = r
		}
	}
	return out
}

func (e *env) counter(t *testing.T, field string) int {
	total := 0
	for _, s := range e.stats(t) {
		var n int
		fmt.Sscan(s.Fields[field], &n)
		total += n
	}
	return total
}

func (e *env) waitAllUp(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		all := true
		for _, s := range e.stats(t) {
			if !strings.HasPrefix(s.Status, "UP") {
				all = false
			}
		}
		if all {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("servers not UP: %+v", e.stats(t))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func parseEvents(t *testing.T, out string) []event.Event {
	t.Helper()
	var evs []event.Event
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var ev event.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("stdout line is not JSON: %q: %v", sc.Text(), err)
		}
		evs = append(evs, ev)
	}
	if len(evs) == 0 {
		t.Fatal("no events on stdout")
	}
	return evs
}

func (e *env) state(t *testing.T, h fleet.Host) map[string]any {
	b, err := os.ReadFile(filepath.Join(h.Root, "state", "demo", "current.json"))
	if err != nil {
		return nil
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s current.json: %v", h.Name, err)
	}
	return m
}

func dump(t *testing.T, r result) {
	t.Logf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// The headline: four backends behind HAProxy under continuous load, a
// --batch 1 apply, zero failed requests, every backend on the new version,
// every server UP at full weight; a second apply changes nothing.
func TestApplyZeroDroppedRequests(t *testing.T) {
	t.Parallel()
	e := setup(t, 4, 1)
	e.writePlan(e.tags["v2"], "halt", "1s")
	e.waitAllUp(t)
	r := e.applyUnderLoad(t, "apply", "rollout.hcl", "--batch", "1", "--yes", "--ui", "json")
	for _, h := range e.f.Hosts {
		if v := e.appVersion(t, h); v != "version=2" {
			t.Errorf("%s answers %q, want version=2", h.Name, v)
		}
		st := e.state(t, h)
		if st == nil || st["revision"] != e.tags["v2"] {
			t.Errorf("%s current.json = %v", h.Name, st)
		}
	}
	for name, s := range e.stats(t) {
		if s.Status != "UP" || s.Weight != 100 {
			t.Errorf("%s ends %s weight %d, want UP 100", name, s.Status, s.Weight)
		}
	}
	// the JSON stream: every line parsed, batches in order, run_done last
	evs := parseEvents(t, r.stdout)
	last := evs[len(evs)-1]
	if last.Event != event.RunDone || last.Counts[event.OutcomeOK] != 4 || last.ExitCode == nil || *last.ExitCode != 0 {
		t.Fatalf("last event = %+v", last)
	}
	batch, doneHosts := 0, map[string]bool{}
	for _, ev := range evs {
		switch ev.Event {
		case event.BatchStart:
			if ev.Batch != batch+1 || len(ev.Hosts) != 1 {
				t.Fatalf("batch_start %d after %d: %+v", ev.Batch, batch, ev)
			}
			batch = ev.Batch
		case event.HostPhase:
			if ev.Phase == event.PhaseDrain && ev.Status == event.StatusRunning && len(doneHosts) != batch-1 {
				t.Fatalf("%s drained while an earlier batch was unfinished", ev.Host)
			}
		case event.HostDone:
			doneHosts[ev.Host] = true
		}
	}
	if batch != 4 {
		t.Fatalf("%d batches, want 4", batch)
	}
	// the journal has every phase of every host
	jb, err := os.ReadFile(filepath.Join(e.dir, ".rollout", "journal.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	for _, ph := range []string{"drain", "stage", "validate", "install", "restart", "health", "undrain", "record"} {
		if c := strings.Count(string(jb), `"phase":"`+ph+`"`); c < 4 {
			t.Errorf("journal has %d %s phases, want >= 4", c, ph)
		}
	}

	// again: every host skipped, no restart (the app's pid is unchanged)
	pids := map[string]int{}
	for _, h := range e.f.Hosts {
		pids[h.Name], _ = e.f.AppPID(h)
	}
	r = e.rollout("apply", "rollout.hcl", "--batch", "1", "--yes", "--ui", "json")
	if r.code != 0 {
		dump(t, r)
		t.Fatalf("second apply exit %d", r.code)
	}
	last = parseEvents(t, r.stdout)[len(parseEvents(t, r.stdout))-1]
	if last.Counts[event.OutcomeSkipped] != 4 {
		t.Fatalf("second apply: %+v, want 4 skipped", last.Counts)
	}
	for _, h := range e.f.Hosts {
		if pid, _ := e.f.AppPID(h); pid != pids[h.Name] {
			t.Errorf("%s restarted by a no-op apply (pid %d → %d)", h.Name, pids[h.Name], pid)
		}
	}

	// status tells the truth
	r = e.rollout("status", "rollout.hcl")
	if r.code != 0 || strings.Count(r.stdout, e.tags["v2"][:7]) < 4 || strings.Contains(r.stdout, "DRIFT /") {
		dump(t, r)
		t.Fatal("status does not show 4 hosts at v2 without drift")
	}
}

// The control experiment: restarting a backend WITHOUT draining under the
// same load must produce client errors, or the test above proves nothing.
func TestControlRestartWithoutDrainDropsRequests(t *testing.T) {
	t.Parallel()
	e := setup(t, 2, 1)
	e.waitAllUp(t)
	l := startLoad(e.frontend(), 4)
	time.Sleep(300 * time.Millisecond)
	h := e.f.Hosts[0]
	for i := 0; i < 3; i++ {
		pid, err := e.f.AppPID(h)
		if err != nil {
			t.Fatal(err)
		}
		_ = syscallKill(pid)
		time.Sleep(400 * time.Millisecond)
	}
	l.Stop()
	if l.Failed.Load() == 0 {
		t.Fatalf("killing a backend under load without drain dropped no request (%d ok): the zero-drop test could not fail", l.OK.Load())
	}
	t.Logf("control: %d ok, %d failed (expected failures)", l.OK.Load(), l.Failed.Load())
}

// A config that fails its validator never goes live and nothing is drained.
func TestBrokenConfigStopsInPreflight(t *testing.T) {
	t.Parallel()
	e := setup(t, 3, 1)
	e.writePlan(e.tags["v2"], "halt", "0s")
	if r := e.rollout("apply", "--batch", "1", "--yes", "--ui", "plain"); r.code != 0 {
		dump(t, r)
		t.Fatal("apply v2 failed")
	}
	before := map[string]string{}
	for _, h := range e.f.Hosts {
		before[h.Name] = e.liveConfig(h)
	}
	e.writePlan(e.tags["broken-config"], "halt", "0s")
	r := e.rollout("apply", "--batch", "1", "--yes", "--ui", "json")
	if r.code != 1 {
		dump(t, r)
		t.Fatalf("exit %d, want 1", r.code)
	}
	for _, ev := range parseEvents(t, r.stdout) {
		if ev.Event == event.HostPhase && ev.Phase == event.PhaseDrain {
			t.Fatalf("%s was drained although preflight failed", ev.Host)
		}
	}
	for _, h := range e.f.Hosts {
		if e.liveConfig(h) != before[h.Name] {
			t.Errorf("%s live config changed", h.Name)
		}
		if v := e.appVersion(t, h); v != "version=2" {
			t.Errorf("%s answers %q", h.Name, v)
		}
	}
	for name, s := range e.stats(t) {
		if s.Status != "UP" {
			t.Errorf("%s is %s", name, s.Status)
		}
	}
}

// A crash-looping revision: the canary's flap guard catches the restarts,
// the canary goes back to the previous revision and serves, nobody else is
// touched, and no client request fails.
func TestCrashLoopCanaryRollsBack(t *testing.T) {
	t.Parallel()
	e := setup(t, 3, 1)
	e.writePlan(e.tags["v2"], "rollback", "1s")
	if r := e.rollout("apply", "--batch", "1", "--yes", "--ui", "plain"); r.code != 0 {
		dump(t, r)
		t.Fatal("apply v2 failed")
	}
	e.writePlan(e.tags["crashloop"], "rollback", "3s")
	l := startLoad(e.frontend(), 4)
	r := e.rollout("apply", "--batch", "1", "--yes", "--ui", "json")
	l.Stop()
	if r.code != 1 {
		dump(t, r)
		t.Fatalf("exit %d, want 1", r.code)
	}
	evs := parseEvents(t, r.stdout)
	var canary string
	for _, ev := range evs {
		if ev.Event == event.HostDone && ev.Status == string(event.OutcomeRolledBack) {
			canary = ev.Host
			if !strings.Contains(ev.Message, "pid") && !strings.Contains(ev.Message, "flap") {
				t.Errorf("rollback reason does not name the flap: %q", ev.Message)
			}
		}
	}
	if canary == "" {
		dump(t, r)
		t.Fatal("no host rolled back")
	}
	e.waitAllUp(t)
	for _, h := range e.f.Hosts {
		if v := e.appVersion(t, h); v != "version=2" {
			t.Errorf("%s answers %q, want version=2", h.Name, v)
		}
		if st := e.state(t, h); st == nil || st["revision"] != e.tags["v2"] {
			t.Errorf("%s current.json = %v, want v2", h.Name, st)
		}
	}
	if l.Failed.Load() != 0 {
		t.Fatalf("%d client requests failed: %v", l.Failed.Load(), l.Errs())
	}
}

// Host keys: unknown refused (2), accepted with --accept-new-host-keys,
// changed refused even then.
func TestHostKeys(t *testing.T) {
	t.Parallel()
	e := setup(t, 2, 1)
	e.writePlan(e.tags["v2"], "halt", "0s")
	kh := filepath.Join(e.dir, "known_hosts")
	run := func(args ...string) result { return e.rolloutKnownHosts(kh, args...) }
	if err := os.WriteFile(kh, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	r := run("apply", "--batch", "1", "--yes", "--ui", "plain")
	if r.code != 2 || !strings.Contains(r.stderr, "accept-new-host-keys") {
		dump(t, r)
		t.Fatalf("unknown host key: exit %d, want 2 with a hint", r.code)
	}
	if r := run("apply", "--batch", "1", "--yes", "--ui", "plain", "--accept-new-host-keys"); r.code != 0 {
		dump(t, r)
		t.Fatalf("accept-new: exit %d", r.code)
	}
	b, _ := os.ReadFile(kh)
	if strings.Count(string(b), "[127.0.0.1]:") != 2 {
		t.Fatalf("known_hosts after accept-new:\n%s", b)
	}
	// replace web1's key with another host's key: a changed key
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	f0 := strings.Fields(lines[0])
	f1 := strings.Fields(lines[1])
	lines[0] = f0[0] + " " + f1[1] + " " + f1[2]
	if err := os.WriteFile(kh, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r = run("status", "--accept-new-host-keys")
	if r.code == 0 || !strings.Contains(r.stdout+r.stderr, "changed") {
		dump(t, r)
		t.Fatal("a changed host key was not refused")
	}
}

// Inventory values with shell metacharacters are data, never code.
func TestInventoryValuesAreNotShellCode(t *testing.T) {
	t.Parallel()
	e := setup(t, 2, 1)
	marker := filepath.Join(e.dir, "pwned")
	// the value must reach the command as one word, byte for byte
	e.extra = `  check = "printf '%s' ${host.vars.evil} > ${host.vars.root}/evil.out"`
	e.writePlan(e.tags["v2"], "halt", "0s")
	inv, _ := os.ReadFile(filepath.Join(e.dir, "inventory.ini"))
	evil := fmt.Sprintf(`"$(touch %s); touch %s; 'q'"`, marker, marker)
	inv = append(inv, []byte("\n[web:vars]\nevil="+evil+"\n")...)
	if err := os.WriteFile(filepath.Join(e.dir, "inventory.ini"), inv, 0o644); err != nil {
		t.Fatal(err)
	}
	r := e.rollout("apply", "--batch", "1", "--yes", "--ui", "plain")
	if r.code != 0 {
		dump(t, r)
		t.Fatalf("exit %d", r.code)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("an inventory value ran as shell code")
	}
	want := fmt.Sprintf(`$(touch %s); touch %s; 'q'`, marker, marker)
	for _, h := range e.f.Hosts {
		got, err := os.ReadFile(filepath.Join(h.Root, "evil.out"))
		if err != nil || string(got) != want {
			t.Errorf("%s: the command received %q (%v), want the inventory value %q as data", h.Name, got, err, want)
		}
	}
}

// Refusals that need a host or an LB: unknown server name; lock held.
func TestUnknownServerRefusedBeforeTouching(t *testing.T) {
	t.Parallel()
	e := setup(t, 2, 1)
	e.drain = strings.Replace(e.drain, "server    = host.name", `server    = "nope-${host.name}"`, 1)
	e.writePlan(e.tags["v2"], "halt", "0s")
	before := e.liveConfig(e.f.Hosts[0])
	r := e.rollout("apply", "--batch", "1", "--yes", "--ui", "plain")
	if r.code != 2 || !strings.Contains(r.stderr, "No such server") {
		dump(t, r)
		t.Fatalf("exit %d, want 2 naming 'No such server'", r.code)
	}
	if e.liveConfig(e.f.Hosts[0]) != before {
		t.Fatal("a host was changed")
	}
}

// Capacity floor: with one server forced down, a batch that would breach
// min_in_service is refused before anything is touched.
func TestCapacityFloorRefuses(t *testing.T) {
	t.Parallel()
	e := setup(t, 3, 1)
	e.extra = `  min_in_service = 2`
	e.writePlan(e.tags["v2"], "halt", "0s")
	e.waitAllUp(t)
	api, err := drain.NewRuntimeAPI("unix:"+e.f.HAProxySockets[0], drain.LocalDialer())
	if err != nil {
		t.Fatal(err)
	}
	if err := api.SetState(context.Background(), "web", "web3", "maint"); err != nil {
		t.Fatal(err)
	}
	r := e.rollout("apply", "--limit", "web1,web2", "--batch", "1", "--yes", "--ui", "plain")
	if r.code != 2 || !strings.Contains(r.stderr+r.stdout, "web3") {
		dump(t, r)
		t.Fatalf("exit %d, want 2 naming the down server web3", r.code)
	}
	if v := e.appVersion(t, e.f.Hosts[0]); v == "version=2" {
		t.Fatal("web1 was changed")
	}
}

// hostSnap is what "nothing was touched" means for a host: its live
// config, its app's pid and the revision its current.json records.
type hostSnap struct {
	config   string
	pid      int
	revision any // nil when nothing is recorded
}

func (e *env) snapshot(t *testing.T) map[string]hostSnap {
	t.Helper()
	configs, pids := e.rcConfigs(), e.rcPIDs()
	out := map[string]hostSnap{}
	for _, h := range e.f.Hosts {
		s := hostSnap{config: configs[h.Name], pid: pids[h.Name]}
		if st := e.state(t, h); st != nil {
			s.revision = st["revision"]
		}
		out[h.Name] = s
	}
	return out
}

// untouched fails the test for every host that differs from snap.
func (e *env) untouched(t *testing.T, snap map[string]hostSnap, by string) {
	t.Helper()
	now := e.snapshot(t)
	for _, h := range e.f.Hosts {
		was, is := snap[h.Name], now[h.Name]
		if is.config != was.config {
			t.Errorf("%s: live config changed by %s", h.Name, by)
		}
		if is.pid != was.pid {
			t.Errorf("%s restarted by %s (pid %d → %d)", h.Name, by, was.pid, is.pid)
		}
		if is.revision != was.revision {
			t.Errorf("%s: current.json revision %v → %v by %s", h.Name, was.revision, is.revision, by)
		}
	}
}
