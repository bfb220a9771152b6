package rollout

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rollout-sh/rollout/internal/localrun"
	"github.com/rollout-sh/rollout/inventory"
	"github.com/rollout-sh/rollout/journal"
	"github.com/rollout-sh/rollout/rollout/event"

	localfleet "github.com/rollout-sh/rollout/internal/fleet"
)

// localConn is a "host" that is a directory on this machine: commands run
// with sh, files are written atomically. Only for engine tests; the e2e
// tests use real sshd.
type localConn struct{ localrun.Runner }

func (localConn) WriteFile(_ context.Context, path string, data []byte, mode os.FileMode, _ string) error {
	tmp := path + ".tmp-test"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	if err := os.Chmod(tmp, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func (localConn) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

// recorder records what happened to hosts, in order.
type recorder struct {
	mu     sync.Mutex
	calls  []string
	events []event.Event
}

func (r *recorder) add(s string) { r.mu.Lock(); r.calls = append(r.calls, s); r.mu.Unlock() }
func (r *recorder) Emit(e event.Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

func (r *recorder) count(prefix string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, c := range r.calls {
		if strings.HasPrefix(c, prefix) {
			n++
		}
	}
	return n
}

type fakeDrainer struct {
	host     string
	rec      *recorder
	mu       *sync.Mutex
	state    map[string]bool  // host → drained
	sessions map[string][]int // host → successive Sessions readings (the last repeats)
}

func (d *fakeDrainer) Check(context.Context) error { return nil }
func (d *fakeDrainer) Drain(context.Context) error {
	d.rec.add("drain " + d.host)
	d.mu.Lock()
	d.state[d.host] = true
	d.mu.Unlock()
	return nil
}
func (d *fakeDrainer) Sessions(context.Context) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	seq := d.sessions[d.host]
	if len(seq) == 0 {
		return 0, nil
	}
	n := seq[0]
	if len(seq) > 1 {
		d.sessions[d.host] = seq[1:]
	}
	return n, nil
}
func (d *fakeDrainer) Settle(context.Context) error { return nil }
func (d *fakeDrainer) Undrain(context.Context) error {
	d.rec.add("undrain " + d.host)
	d.mu.Lock()
	d.state[d.host] = false
	d.mu.Unlock()
	return nil
}
func (d *fakeDrainer) SetWeight(context.Context, int) error { return nil }
func (d *fakeDrainer) Serving(context.Context) (bool, string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return !d.state[d.host], "", nil
}

type scriptedGate struct {
	fail func() error
}

func (g scriptedGate) Wait(_ context.Context, progress func(Progress)) error {
	progress(Progress{Window: 1})
	return g.fail()
}

// fleet is a local test fleet: a git repo with revisions, an inventory and
// one directory per host.
type fleet struct {
	t         *testing.T
	dir       string
	planFile  string
	rec       *recorder
	lbMu      sync.Mutex
	lbState   map[string]bool
	unhealthy func(host string) error
	sessions  map[string][]int
	revs      map[string]string
}

func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

const testTemplate = `version = %s
host = ${host.name}
%%{ if host.name == "%s" }status = bad%%{ else }status = good%%{ endif }
`

func newFleet(t *testing.T, hosts int, extra string) *fleet {
	t.Helper()
	localfleet.RequireTool(t, "git")
	dir := t.TempDir()
	f := &fleet{t: t, dir: dir, rec: &recorder{}, lbState: map[string]bool{}, revs: map[string]string{}, sessions: map[string][]int{}}
	f.unhealthy = func(string) error { return nil }
	var inv strings.Builder
	inv.WriteString("[web]\n")
	for i := 1; i <= hosts; i++ {
		root := filepath.Join(dir, "hosts", fmt.Sprintf("web%d", i))
		if err := os.MkdirAll(root, 0o755); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&inv, "web%d root=%s\n", i, root)
	}
	must(t, os.WriteFile(filepath.Join(dir, "inventory.ini"), []byte(inv.String()), 0o644))
	must(t, os.MkdirAll(filepath.Join(dir, "conf"), 0o755))
	git(t, dir, "init", "-q")
	for _, rv := range []struct{ tag, version, bad string }{{"v1", "1", "none"}, {"v2", "2", "none"}, {"bad-web2", "3", "web2"}} {
		must(t, os.WriteFile(filepath.Join(dir, "conf", "app.conf.tmpl"), []byte(fmt.Sprintf(testTemplate, rv.version, rv.bad)), 0o644))
		git(t, dir, "add", "-A")
		git(t, dir, "commit", "-qm", rv.tag)
		git(t, dir, "tag", rv.tag)
		f.revs[rv.tag] = git(t, dir, "rev-parse", "HEAD")
	}
	f.planFile = filepath.Join(dir, "rollout.hcl")
	f.writePlan("v1", extra)
	return f
}

func (f *fleet) writePlan(rev, extra string) {
	plan := fmt.Sprintf(`plan "web" {
  inventory = "inventory.ini"
  hosts     = "web"
  revision  = %q
  state_dir = "${host.vars.root}/state"
  %s
  drain "none" { reason = "engine test" }
  file "app.conf" {
    source   = "conf/app.conf.tmpl"
    template = true
    dest     = "${host.vars.root}/app.conf"
    validate = "grep -q 'status = good' %%s"
  }
  restart = "echo restarted >> ${host.vars.root}/restarts"
  health "command" { command = "true" }
}
`, rev, extra)
	must(f.t, os.WriteFile(f.planFile, []byte(plan), 0o644))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// env is the fleet wired for the engine, on a fake clock: no engine test
// waits for real time.
func (f *fleet) env() Env {
	clk := &fakeClock{t: t0}
	return Env{
		Now:     clk.Now,
		Sleep:   clk.Sleep,
		Connect: func(context.Context, *inventory.Host) (Conn, error) { return localConn{}, nil },
		NewDrainer: func(_ context.Context, t *Target) (Drainer, error) {
			return &fakeDrainer{host: t.Host.Name, rec: f.rec, mu: &f.lbMu, state: f.lbState, sessions: f.sessions}, nil
		},
		NewGate: func(_ context.Context, t *Target, _ Drainer, _ bool) (Gate, error) {
			name := t.Host.Name
			return scriptedGate{fail: func() error { f.rec.add("health " + name); return f.unhealthy(name) }}, nil
		},
		Sink: f.rec,
	}
}

// failHealth makes host's health gate fail with msg the first n times
// it is asked (every time when n < 0); every other host is healthy.
func (f *fleet) failHealth(host string, n int, msg string) {
	var mu sync.Mutex
	calls := 0
	f.unhealthy = func(h string) error {
		mu.Lock()
		defer mu.Unlock()
		if h != host {
			return nil
		}
		calls++
		if n < 0 || calls <= n {
			return errors.New(msg)
		}
		return nil
	}
}

// applyFails applies the plan and wants the run to fail.
func (f *fleet) applyFails() *Result {
	f.t.Helper()
	res, err := f.apply(Request{}, Options{})
	if !errors.Is(err, ErrRunFailed) {
		f.t.Fatalf("err = %v, want the run failed", err)
	}
	return res
}

func (f *fleet) apply(req Request, opts Options) (*Result, error) {
	f.t.Helper()
	req.PlanFile = f.planFile
	pr, err := Prepare(req)
	if err != nil {
		return nil, err
	}
	if opts.RunID == "" {
		opts.RunID = fmt.Sprintf("r-test-%d", len(f.rec.calls))
	}
	opts.LocalDir = filepath.Join(f.dir, ".rollout")
	opts.Owner = "test@here"
	return Run(context.Background(), pr, f.env(), opts, nil)
}

func (f *fleet) file(host string) string {
	b, err := os.ReadFile(filepath.Join(f.dir, "hosts", host, "app.conf"))
	if err != nil {
		return ""
	}
	return string(b)
}

func (f *fleet) restarts(host string) int {
	b, _ := os.ReadFile(filepath.Join(f.dir, "hosts", host, "restarts"))
	return strings.Count(string(b), "restarted")
}

func (f *fleet) anyDrained() []string {
	f.lbMu.Lock()
	defer f.lbMu.Unlock()
	var out []string
	for h, d := range f.lbState {
		if d {
			out = append(out, h)
		}
	}
	return out
}

func TestEngineAppliesBatchByBatchAndSkipsOnRerun(t *testing.T) {
	f := newFleet(t, 3, `batch = [1, 2]`)
	res, err := f.apply(Request{}, Options{})
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	for _, h := range []string{"web1", "web2", "web3"} {
		if res.Outcomes[h] != event.OutcomeOK {
			t.Fatalf("%s outcome %s", h, res.Outcomes[h])
		}
		if !strings.Contains(f.file(h), "version = 1") || !strings.Contains(f.file(h), "host = "+h) {
			t.Fatalf("%s file = %q", h, f.file(h))
		}
		st, err := journal.ReadState(context.Background(), localrun.Runner{}, filepath.Join(f.dir, "hosts", h, "state"), "web")
		if err != nil || st == nil || st.Revision != f.revs["v1"] {
			t.Fatalf("%s current.json = %+v, %v", h, st, err)
		}
	}
	// web1 (batch 1) finished before any host of batch 2 was drained
	f.rec.mu.Lock()
	calls := append([]string{}, f.rec.calls...)
	f.rec.mu.Unlock()
	idx := func(s string) int {
		for i, c := range calls {
			if c == s {
				return i
			}
		}
		return -1
	}
	if idx("undrain web1") > idx("drain web2") || idx("undrain web1") > idx("drain web3") {
		t.Fatalf("batch 2 started before batch 1 finished: %v", calls)
	}
	// rerun: nothing changes
	before := f.rec.count("drain ")
	res, err = f.apply(Request{}, Options{})
	if err != nil {
		t.Fatalf("re-apply: %v", err)
	}
	for h, o := range res.Outcomes {
		if o != event.OutcomeSkipped {
			t.Fatalf("rerun: %s outcome %s, want skipped", h, o)
		}
		if f.restarts(h) != 1 {
			t.Fatalf("rerun restarted %s (%d restarts)", h, f.restarts(h))
		}
	}
	if f.rec.count("drain ") != before {
		t.Fatalf("rerun drained a host")
	}
}

func TestEngineValidatorFailureTouchesNothing(t *testing.T) {
	f := newFleet(t, 3, `batch = [1]`)
	if _, err := f.apply(Request{}, Options{}); err != nil {
		t.Fatal(err)
	}
	before := map[string]string{}
	for _, h := range []string{"web1", "web2", "web3"} {
		before[h] = f.file(h)
	}
	drains := f.rec.count("drain ")
	res, err := f.apply(Request{Revision: "bad-web2"}, Options{})
	if !errors.Is(err, ErrRunFailed) || ExitCode(err) != ExitFailed {
		t.Fatalf("err = %v, want a failed run (exit 1)", err)
	}
	if f.rec.count("drain ") != drains {
		t.Fatal("a host was drained although preflight failed")
	}
	if res.Next != "rollout apply "+f.planFile || !strings.HasPrefix(res.Summary, "preflight: file app.conf (conf/app.conf.tmpl@"+f.revs["bad-web2"][:7]+") rejected by its validator on 1 host (web2); nothing was changed") {
		t.Errorf("a failed preflight ends without a next step: summary %q, next %q", res.Summary, res.Next)
	}
	for h, b := range before {
		if f.file(h) != b {
			t.Fatalf("%s live file changed by a failed preflight", h)
		}
		if f.restarts(h) != 1 {
			t.Fatalf("%s restarted", h)
		}
		entries, _ := os.ReadDir(filepath.Join(f.dir, "hosts", h))
		for _, e := range entries {
			if strings.Contains(e.Name(), ".rollout-") {
				t.Fatalf("%s: staged file left behind: %s", h, e.Name())
			}
		}
		if res.Outcomes[h] != event.OutcomeNotStarted {
			t.Fatalf("%s outcome %s", h, res.Outcomes[h])
		}
	}
}

func TestEngineCheckFailureRestoresAndHalts(t *testing.T) {
	f := newFleet(t, 3, `batch = [1]
  check = "test ${host.name} != web1"`)
	// first deploy with a check that fails on web1: web1 must get its
	// previous (absent) file back, be undrained, and the run halts
	res, err := f.apply(Request{}, Options{})
	if !errors.Is(err, ErrRunFailed) {
		t.Fatalf("err = %v", err)
	}
	if res.Outcomes["web1"] != event.OutcomeFailed {
		t.Fatalf("web1 outcome %s", res.Outcomes["web1"])
	}
	if f.file("web1") != "" {
		t.Fatalf("web1 file not restored (it did not exist before): %q", f.file("web1"))
	}
	if f.restarts("web1") != 0 {
		t.Fatal("web1 restarted after a failed check")
	}
	if d := f.anyDrained(); len(d) != 0 {
		t.Fatalf("left drained: %v", d)
	}
	for _, h := range []string{"web2", "web3"} {
		if res.Outcomes[h] != event.OutcomeNotStarted || f.file(h) != "" {
			t.Fatalf("%s touched after the halt: %s", h, res.Outcomes[h])
		}
	}
}

func TestEngineHealthFailureHaltLeavesDrained(t *testing.T) {
	f := newFleet(t, 3, `batch = [1]`)
	if _, err := f.apply(Request{}, Options{}); err != nil {
		t.Fatal(err)
	}
	f.writePlan("v2", `batch = [1]
  on_failure = "halt"`)
	f.failHealth("web1", -1, "restarted 2 times during the 10s window")
	res := f.applyFails()
	if res.Outcomes["web1"] != event.OutcomeDrained {
		t.Fatalf("web1 outcome %s", res.Outcomes["web1"])
	}
	if d := f.anyDrained(); len(d) != 1 || d[0] != "web1" {
		t.Fatalf("drained = %v, want web1 only", d)
	}
	if !strings.Contains(res.Next, "rollout repair") {
		t.Fatalf("next command %q does not say repair", res.Next)
	}
	if !strings.Contains(f.file("web2"), "version = 1") {
		t.Fatal("web2 changed after the canary failed")
	}
}

func TestEngineHealthFailureRollsBack(t *testing.T) {
	f := newFleet(t, 3, `batch = [1]`)
	if _, err := f.apply(Request{}, Options{}); err != nil {
		t.Fatal(err)
	}
	f.writePlan("v2", `batch = [1]
  on_failure = "rollback"`)
	f.failHealth("web1", 1, "pid 4121 → 4188") // the previous revision is healthy
	res := f.applyFails()
	if res.Outcomes["web1"] != event.OutcomeRolledBack {
		t.Fatalf("web1 outcome %s", res.Outcomes["web1"])
	}
	if !strings.Contains(f.file("web1"), "version = 1") {
		t.Fatalf("web1 not back on v1: %q", f.file("web1"))
	}
	if d := f.anyDrained(); len(d) != 0 {
		t.Fatalf("left drained: %v", d)
	}
	st, _ := journal.ReadState(context.Background(), localrun.Runner{}, filepath.Join(f.dir, "hosts", "web1", "state"), "web")
	if st == nil || st.Revision != f.revs["v1"] {
		t.Fatalf("web1 current.json = %+v, want v1", st)
	}
	if res.Outcomes["web2"] != event.OutcomeNotStarted {
		t.Fatalf("web2 outcome %s", res.Outcomes["web2"])
	}
}

func TestEngineRefusesDriftUnlessAdopt(t *testing.T) {
	f := newFleet(t, 2, `batch = [1]`)
	if _, err := f.apply(Request{}, Options{}); err != nil {
		t.Fatal(err)
	}
	must(t, os.WriteFile(filepath.Join(f.dir, "hosts", "web2", "app.conf"), []byte("hand edit\n"), 0o644))
	f.writePlan("v2", `batch = [1]`)
	_, err := f.apply(Request{}, Options{})
	var r *Refusal
	if !errors.As(err, &r) || !strings.Contains(r.Problem, "web2") || !strings.Contains(r.Next, "--adopt") {
		t.Fatalf("err = %v, want a drift refusal naming web2 and --adopt", err)
	}
	if !strings.Contains(f.file("web1"), "version = 1") {
		t.Fatal("web1 changed although the run was refused")
	}
	if _, err := f.apply(Request{}, Options{Adopt: true}); err != nil {
		t.Fatalf("apply --adopt: %v", err)
	}
	if !strings.Contains(f.file("web2"), "version = 2") {
		t.Fatal("--adopt did not deploy web2")
	}
}

func TestEngineLockHeldRefuses(t *testing.T) {
	f := newFleet(t, 2, `batch = [1]`)
	pr, err := Prepare(Request{PlanFile: f.planFile})
	must(t, err)
	info := journal.LockInfo{Owner: "alice@ci-7", RunID: "r-other", PID: 4242, TTL: 3600e9}
	info.Acquired = t0
	info.Renewed = t0
	root := filepath.Join(f.dir, "hosts", "web2", "state")
	must(t, journal.AcquireHostLock(context.Background(), localrun.Runner{}, "web2", root, "web", info, t0))
	env := f.env()
	env.Now = func() time.Time { return t0.Add(time.Minute) }
	_, err = Run(context.Background(), pr, env, Options{RunID: "r-me", Owner: "me", LocalDir: filepath.Join(f.dir, ".rollout")}, nil)
	var r *Refusal
	if !errors.As(err, &r) || !strings.Contains(err.Error(), "alice@ci-7") {
		t.Fatalf("err = %v, want a lock refusal naming the owner", err)
	}
	if f.file("web1") != "" {
		t.Fatal("web1 touched although web2 was locked")
	}
	// web1's lock, taken before the refusal, was released
	li, _ := journal.ReadHostLock(context.Background(), localrun.Runner{}, filepath.Join(f.dir, "hosts", "web1", "state"), "web")
	if li != nil {
		t.Fatalf("web1 still locked: %+v", li)
	}
}

// With on_failure = "rollback", a host whose previous revision can no longer
// be read from the repo is refused before anything is touched.
func TestEngineRefusesWhenRollbackCannotBeRehearsed(t *testing.T) {
	f := newFleet(t, 2, `batch = [1]`)
	// a commit that only a side branch holds
	git(t, f.dir, "checkout", "-q", "-b", "side")
	must(t, os.WriteFile(filepath.Join(f.dir, "conf", "app.conf.tmpl"), []byte(fmt.Sprintf(testTemplate, "9", "none")), 0o644))
	git(t, f.dir, "commit", "-qam", "side")
	side := git(t, f.dir, "rev-parse", "HEAD")
	git(t, f.dir, "checkout", "-q", "-")
	f.writePlan(side, `batch = [1]`)
	if _, err := f.apply(Request{}, Options{}); err != nil {
		t.Fatalf("apply side: %v", err)
	}
	// the branch is deleted and the commit garbage-collected
	git(t, f.dir, "branch", "-qD", "side")
	git(t, f.dir, "reflog", "expire", "--expire=now", "--all")
	git(t, f.dir, "gc", "-q", "--prune=now")
	f.writePlan("v2", `batch = [1]
  on_failure = "rollback"`)
	_, err := f.apply(Request{}, Options{})
	var r *Refusal
	if !errors.As(err, &r) || !strings.Contains(r.Problem, "cannot be rehearsed") || !strings.Contains(r.Problem, side[:7]) {
		t.Fatalf("err = %v, want a refusal naming the missing previous revision", err)
	}
	if !strings.Contains(f.file("web1"), "version = 9") {
		t.Fatal("web1 changed although the run was refused")
	}
	// with halt, the same run goes ahead: no way back is needed
	f.writePlan("v2", `batch = [1]
  on_failure = "halt"`)
	if _, err := f.apply(Request{}, Options{}); err != nil {
		t.Fatalf("apply with halt: %v", err)
	}
}

// A resumed run batches only the hosts that still need a change, and
// run_start (first event) announces those batches.
func TestEngineResumeAnnouncesRealBatches(t *testing.T) {
	f := newFleet(t, 3, `batch = [1]`)
	if _, err := f.apply(Request{Limit: "web1"}, Options{}); err != nil {
		t.Fatal(err)
	}
	f.rec.mu.Lock()
	f.rec.events = nil
	f.rec.mu.Unlock()
	if _, err := f.apply(Request{}, Options{}); err != nil {
		t.Fatal(err)
	}
	f.rec.mu.Lock()
	defer f.rec.mu.Unlock()
	first := f.rec.events[0]
	if first.Event != event.RunStart {
		t.Fatalf("first event %s, want run_start", first.Event)
	}
	if fmt.Sprint(first.Batches) != "[[web2] [web3]]" {
		t.Fatalf("run_start batches %v, want [[web2] [web3]] (web1 is already done)", first.Batches)
	}
	last := f.rec.events[len(f.rec.events)-1]
	if last.Event != event.RunDone || last.Counts[event.OutcomeSkipped] != 1 || last.Counts[event.OutcomeOK] != 2 {
		t.Fatalf("last event %+v", last)
	}
}

// fakeClock is a clock for Env: short sleeps advance it at once; the long
// sleep of the lock renewer just waits for the run to end.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if d >= 10*time.Second {
		<-ctx.Done()
		return ctx.Err()
	}
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
	return ctx.Err()
}

// Waiting for sessions: every change is an event; zero goes on; sessions
// still open at the timeout fail the host, which is put back untouched, and
// the run halts. On a fake clock: no real waiting.
func TestEngineWaitsForSessionsThenTimesOut(t *testing.T) {
	f := newFleet(t, 2, `batch = [1]
  max_failures = 1`)
	f.sessions["web1"] = []int{3, 3, 1, 0}
	f.sessions["web2"] = []int{2} // never drains
	clk := &fakeClock{t: t0}
	pr, err := Prepare(Request{PlanFile: f.planFile})
	must(t, err)
	env := f.env()
	env.Now, env.Sleep = clk.Now, clk.Sleep
	// the engine-test plan's drain block sets no timeout: the 2m default
	res, err := Run(context.Background(), pr, env, Options{RunID: "r-sessions", Owner: "t", LocalDir: filepath.Join(f.dir, ".rollout")}, nil)
	if err != nil {
		t.Fatalf("err = %v (max_failures = 1 tolerates web2's timeout)", err)
	}
	var web1, web2 []int
	var web2Done event.Event
	f.rec.mu.Lock()
	for _, e := range f.rec.events {
		if e.Event == event.DrainSessions && e.Sessions != nil {
			if e.Host == "web1" {
				web1 = append(web1, *e.Sessions)
			} else {
				web2 = append(web2, *e.Sessions)
			}
		}
		if e.Event == event.HostDone && e.Host == "web2" {
			web2Done = e
		}
	}
	f.rec.mu.Unlock()
	if fmt.Sprint(web1) != "[3 1 0]" || res.Outcomes["web1"] != event.OutcomeOK {
		t.Errorf("web1: drain_sessions %v (want [3 1 0], one per change), outcome %s", web1, res.Outcomes["web1"])
	}
	if fmt.Sprint(web2) != "[2]" || res.Outcomes["web2"] != event.OutcomeFailed ||
		!strings.Contains(web2Done.Message, "2 sessions still open after 2m0s") {
		t.Errorf("web2: sessions %v, outcome %s, message %q", web2, res.Outcomes["web2"], web2Done.Message)
	}
	if f.file("web2") != "" || f.restarts("web2") != 0 {
		t.Error("web2 was changed although its drain timed out")
	}
	if d := f.anyDrained(); len(d) != 0 {
		t.Errorf("left drained: %v", d)
	}
	// the wait never sleeps past the timeout: web1's three polls plus
	// exactly 2m for web2
	if got := clk.Now().Sub(t0); got != 2*time.Minute+3*250*time.Millisecond {
		t.Errorf("fake time advanced %s, want 2m0.75s", got)
	}
}

// cutConn fails every command once cut is set: the host became unreachable.
type cutConn struct {
	localConn
	cut *atomic.Bool
}

func (c cutConn) Run(ctx context.Context, cmd string, stdin io.Reader, stdout, stderr io.Writer) error {
	if c.cut.Load() {
		return errors.New("connection lost")
	}
	return c.localConn.Run(ctx, cmd, stdin, stdout, stderr)
}

type sinkFunc func(event.Event)

func (f sinkFunc) Emit(e event.Event) { f(e) }

// A run that cannot release its lock on a host that went away says so in
// its summary, and its next command clears it.
func TestEngineUnreleasedLockIsReported(t *testing.T) {
	f := newFleet(t, 2, `batch = [1]`)
	pr, err := Prepare(Request{PlanFile: f.planFile})
	if err != nil {
		t.Fatal(err)
	}
	cut := &atomic.Bool{}
	env := f.env()
	env.Connect = func(_ context.Context, h *inventory.Host) (Conn, error) {
		if h.Name == "web2" {
			return cutConn{cut: cut}, nil
		}
		return localConn{}, nil
	}
	var runDone event.Event
	env.Sink = sinkFunc(func(e event.Event) {
		if e.Event == event.HostDone && e.Host == "web2" {
			cut.Store(true) // web2 is done, then unreachable
		}
		if e.Event == event.RunDone {
			runDone = e
		}
	})
	res, err := Run(context.Background(), pr, env, Options{RunID: "r-cut", Owner: "t", LocalDir: filepath.Join(f.dir, ".rollout")}, nil)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	want := "rollout unlock " + f.planFile + " --yes"
	if res.Next != want || !strings.Contains(res.Summary, "could not release its lock on web2") {
		t.Errorf("summary %q, next %q; want the unreleased lock on web2 and %q", res.Summary, res.Next, want)
	}
	if runDone.Next != want || !strings.Contains(runDone.Message, "web2") {
		t.Errorf("run_done %+v does not report the unreleased lock", runDone)
	}
}

// checkFailing is a drainer whose preflight check fails with err.
type checkFailing struct {
	fakeDrainer
	err error
}

func (d *checkFailing) Check(context.Context) error { return d.err }

// A load balancer preflight that fails because the socket cannot be
// reached gets the driver's hint (what is wrong with the socket), not "fix
// the drain block"; a failure the drivers do not recognise keeps that.
func TestEngineLBPreflightHintFollowsTheCause(t *testing.T) {
	errFull := errors.New("haproxy unix:/s: connect: resource temporarily unavailable")
	tests := []struct {
		name string
		err  error
		want string // "%s" is the plan file
	}{
		{"recognised", errFull, "rollout apply %s  # once this is done: raise stats maxconn"},
		{"unrecognised", errors.New("haproxy unix:/s: get weight web/x: No such server."), "rollout validate %s  # once the drain block (backend/server names, endpoints) is fixed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFleet(t, 2, `batch = [1]`)
			pr, err := Prepare(Request{PlanFile: f.planFile})
			must(t, err)
			env := f.env()
			env.NewDrainer = func(context.Context, *Target) (Drainer, error) { return &checkFailing{err: tt.err}, nil }
			env.Hint = func(err error) string {
				if errors.Is(err, errFull) {
					return "raise stats maxconn"
				}
				return ""
			}
			_, err = Run(context.Background(), pr, env, Options{Kind: "apply", RunID: "r-me", Owner: "me", LocalDir: filepath.Join(f.dir, ".rollout")}, nil)
			var r *Refusal
			if want := fmt.Sprintf(tt.want, f.planFile); !errors.As(err, &r) || r.Next != want {
				t.Fatalf("err = %v, want a refusal whose next: is %q", err, want)
			}
			if f.file("web1") != "" {
				t.Fatal("web1 touched although the LB preflight failed")
			}
		})
	}
}

// --yes does not pass approve_after gates: with no one to approve
// (Unattended) the run stops at the gate, the canary done, the rest not
// started, and names --auto-approve; with AutoApprove the gate passes and
// the approved event says by what.
func TestEngineApprovalGateWithoutAPerson(t *testing.T) {
	f := newFleet(t, 3, "batch = [1]\n  approve_after = [1]")
	res, err := f.apply(Request{}, Options{Unattended: true})
	if !errors.Is(err, ErrApprovalNeeded) || ExitCode(err) != ExitFailed {
		t.Fatalf("err = %v, want ErrApprovalNeeded (exit 1)", err)
	}
	if res.Outcomes["web1"] != event.OutcomeOK || res.Outcomes["web2"] != event.OutcomeNotStarted || res.Outcomes["web3"] != event.OutcomeNotStarted {
		t.Errorf("outcomes %v, want web1 ok and the rest not_started", res.Outcomes)
	}
	if res.Next != "rollout apply "+f.planFile+" --yes --auto-approve" {
		t.Errorf("next %q does not continue with --auto-approve", res.Next)
	}
	for _, e := range f.rec.events {
		if e.Event == event.Approved {
			t.Errorf("an unattended run approved a gate: %+v", e)
		}
	}

	res, err = f.apply(Request{}, Options{Unattended: true, AutoApprove: true})
	if err != nil {
		t.Fatalf("with AutoApprove: %v", err)
	}
	approved := 0
	for _, e := range f.rec.events {
		if e.Event == event.Approved {
			approved++
			if e.Message != "approved by --auto-approve" {
				t.Errorf("approved event does not say by what: %+v", e)
			}
		}
	}
	if approved != 1 || res.Outcomes["web2"] != event.OutcomeOK || res.Outcomes["web3"] != event.OutcomeOK {
		t.Errorf("with AutoApprove: %d approvals, outcomes %v", approved, res.Outcomes)
	}
}
