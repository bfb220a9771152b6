package rollout

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/rollout-sh/rollout/inventory"
	"github.com/rollout-sh/rollout/journal"
	"github.com/rollout-sh/rollout/plan"
	"github.com/rollout-sh/rollout/rollback"
	"github.com/rollout-sh/rollout/rollout/event"
)

// Conn is a connection to one host (remote.Client satisfies it).
type Conn interface {
	Run(ctx context.Context, cmd string, stdin io.Reader, stdout, stderr io.Writer) error
	WriteFile(ctx context.Context, path string, data []byte, mode os.FileMode, owner string) error
	Dial(ctx context.Context, network, addr string) (net.Conn, error)
}

// Drainer takes one host out of its load balancers and back.
type Drainer interface {
	Check(ctx context.Context) error
	Drain(ctx context.Context) error
	Sessions(ctx context.Context) (int, error)
	Settle(ctx context.Context) error
	Undrain(ctx context.Context) error
	SetWeight(ctx context.Context, pct int) error
	Serving(ctx context.Context) (bool, string, error)
}

// MemberLister is implemented by drainers that can read the LB's pool, for
// the capacity floor.
type MemberLister interface {
	Members(ctx context.Context) ([]Member, error)
}

// Progress is a health gate's progress.
type Progress struct {
	Elapsed, Window time.Duration
	LastErr         error
}

// Gate waits until a host is healthy for its window, or fails.
type Gate interface {
	Wait(ctx context.Context, progress func(Progress)) error
}

// Env is how the engine reaches the world. The CLI wires real drivers in;
// tests may wire fakes.
type Env struct {
	Connect    func(ctx context.Context, h *inventory.Host) (Conn, error)
	NewDrainer func(ctx context.Context, t *Target) (Drainer, error)
	// NewGate returns the host's health gate; quick means one passing
	// round (plus the flap guard), used between ramp steps.
	NewGate func(ctx context.Context, t *Target, d Drainer, quick bool) (Gate, error)
	// NewAnalyser returns the source of the plan's canary analysis (one
	// for the run; t is the first host to change). Needed only when the
	// plan has an analysis block.
	NewAnalyser func(ctx context.Context, a *plan.Analysis, t *Target) (Analyser, error)
	Sink        event.Sink
	// Hint returns the next command for a connection error the drivers
	// recognise (an unknown or changed host key), or "".
	Hint  func(error) string
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
	// Validator stages and validates files; nil is validate.Remote.
	Validator Validator
}

// DefaultForks is how many hosts are worked on at once for everything that
// is not a batch (connect, lock, inspect, preflight, unlock): enough for a
// fleet of hundreds to be read in a few rounds, few enough that the
// controller's sockets and the hosts' sshd are not swamped.
const DefaultForks = 50

// Options are the run's settings that are not in the plan.
type Options struct {
	Kind  string // "apply" or "rollback"
	RunID string
	Owner string // user@controller
	// Backend holds the plan lock and the journal (the local state dir,
	// or etcd). Nil with LocalDir set: the local lock in LocalDir and no
	// journal file (the Sink sees every event).
	Backend     Backend
	LocalDir    string // the local state dir (.rollout beside the plan)
	Adopt       bool   // overwrite hosts whose live files drifted
	AutoApprove bool   // --auto-approve: approve_after gates pass without a person (recorded in the approved event)
	// Unattended: no person can approve (no terminal, no TUI). Without
	// AutoApprove the run stops at an approve_after gate.
	Unattended bool
	LockTTL    time.Duration
	Forks      int
	PollEvery  time.Duration // sessions polling (default 250ms)
	// Expect, from a saved plan: what each host must still look like
	// (deployed revision, live files), or the run is refused as stale.
	Expect map[string]SavedHost
	// ExpectJournal, with Expect: called once the hosts match the saved
	// plan, it refuses the run (a *Refusal) when the plan's journal shows
	// a run since the plan was saved.
	ExpectJournal func(ctx context.Context) error
}

// Result is how a run ended.
type Result struct {
	RunID    string
	Outcomes map[string]event.Outcome
	ExitCode int
	Summary  string // what happened, naming the hosts that need attention
	Next     string // the command to run next (works when pasted)
}

type hostInfo struct {
	t       *Target
	conn    Conn
	drainer Drainer
	old     *journal.HostState
	live    map[string]string // dest → sha256 of the live file ("" = missing)
	skip    bool
	prev    *Target // the previous revision rendered, for rollback
}

type run struct {
	pr    *Prepared
	env   Env
	opts  Options
	ctl   *Control
	hosts map[string]*hostInfo
	order []string

	mu       sync.Mutex
	outcomes map[string]event.Outcome
	messages map[string]string
	reported map[string]bool // host_done emitted
	inFlight map[string]event.Phase
	analyser Analyser      // nil without an analysis block
	bake     time.Duration // the batch in flight bakes this long under analysis before its hosts are recorded
	touched  bool
	started  bool  // run_start emitted
	lost     error // why the run must stop safely (lock lost, journal unwritable)
	// unreleased: hosts whose lock this run could not release (unreachable
	// at the end); the summary says so, with the command that clears them
	unreleased []string
}

// start emits run_start once, with the batches the run will really use.
func (r *run) start(batches [][]string) {
	if r.started {
		return
	}
	r.started = true
	r.emit(event.Event{Event: event.RunStart, Schema: event.Schema, Plan: r.pr.Plan.Name, Revision: r.pr.Revision,
		Scope: r.scope(), Batches: batches, Hosts: r.order, Message: r.opts.Kind})
}

// Run executes an apply or rollback of pr. The returned error maps to the
// exit code with ExitCode.
func Run(ctx context.Context, pr *Prepared, env Env, opts Options, ctl *Control) (*Result, error) {
	if ctl == nil {
		ctl = NewControl()
	}
	if env.Now == nil {
		env.Now = time.Now
	}
	if env.Sleep == nil {
		env.Sleep = sleepCtx
	}
	if opts.Forks <= 0 {
		opts.Forks = DefaultForks
	}
	if opts.LockTTL <= 0 {
		opts.LockTTL = 2 * time.Minute
	}
	if opts.PollEvery <= 0 {
		opts.PollEvery = 250 * time.Millisecond
	}
	if opts.Kind == "" {
		opts.Kind = "apply"
	}
	if opts.Backend == nil && opts.LocalDir != "" {
		opts.Backend = &journal.Local{Dir: opts.LocalDir}
	}
	hardCtx, hard := context.WithCancel(ctx)
	defer hard()
	ctl.setHard(hard)

	r := &run{pr: pr, env: env, opts: opts, ctl: ctl, hosts: map[string]*hostInfo{},
		outcomes: map[string]event.Outcome{}, messages: map[string]string{}, inFlight: map[string]event.Phase{}, reported: map[string]bool{}}
	for _, t := range pr.Targets {
		r.hosts[t.Host.Name] = &hostInfo{t: t}
		r.order = append(r.order, t.Host.Name)
	}
	err := r.execute(hardCtx)
	return r.finish(ctx, err)
}

func (r *run) scope() string {
	var parts []string
	parts = append(parts, "hosts="+r.pr.Plan.Hosts)
	if r.pr.Req.Limit != "" {
		parts = append(parts, "limit="+r.pr.Req.Limit)
	}
	var b []string
	for _, q := range r.pr.BatchSpec {
		b = append(b, quantityString(q))
	}
	if len(b) > 0 {
		parts = append(parts, "batch="+strings.Join(b, ","))
	}
	return strings.Join(parts, " ")
}

func quantityString(q plan.Quantity) string {
	if q.Percent {
		return fmt.Sprintf("%d%%", q.N)
	}
	return fmt.Sprint(q.N)
}

func (r *run) emit(e event.Event) {
	if e.Event == event.HostDone {
		r.mu.Lock()
		r.reported[e.Host] = true
		r.mu.Unlock()
	}
	if e.Time.IsZero() {
		e.Time = r.env.Now()
	}
	e.Run = r.opts.RunID
	if r.opts.Backend != nil {
		// the record is durable before the step it describes goes on
		if err := r.opts.Backend.Record(context.Background(), e); err != nil {
			r.stopSafely(fmt.Errorf("%w: %w", ErrJournalUnwritable, err))
		}
	}
	if r.env.Sink != nil {
		r.env.Sink.Emit(e)
	}
}

// stopSafely stops the run as the first Ctrl-C does (the hosts in flight
// finish their step and are put back, no new host or batch starts), and
// remembers why: the run then ends with exit 1 saying so. Only the first
// cause is kept.
func (r *run) stopSafely(cause error) {
	r.mu.Lock()
	first := r.lost == nil
	if first {
		r.lost = cause
	}
	r.mu.Unlock()
	if !first {
		return
	}
	r.ctl.Abort()
	r.log("error", "stopping safely: %v", cause)
}

func (r *run) lostCause() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lost
}

func (r *run) log(level, format string, args ...any) {
	r.emit(event.Event{Event: event.Log, Level: level, Message: fmt.Sprintf(format, args...)})
}

func (r *run) lockInfo() journal.LockInfo {
	now := r.env.Now()
	return journal.LockInfo{Owner: r.opts.Owner, PID: os.Getpid(), RunID: r.opts.RunID,
		Acquired: now, Renewed: now, TTL: r.opts.LockTTL}
}

// execute runs everything up to the last batch. Errors before any host was
// touched are refusals.
func (r *run) execute(ctx context.Context) error {
	pr := r.pr
	planName := pr.Plan.Name
	// the controller's lock, in the state backend
	if r.opts.Backend != nil {
		held, err := r.opts.Backend.Lock(ctx, planName, r.lockInfo())
		if err != nil {
			return lockRefusal(err, pr.Req.PlanFile)
		}
		watchDone := make(chan struct{})
		go func() {
			defer close(watchDone)
			if err, ok := <-held.Lost(); ok && err != nil {
				r.stopSafely(err)
			}
		}()
		defer func() {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			if err := held.Release(rctx); err != nil {
				r.log("warn", "releasing the plan lock: %v", err)
			}
			<-watchDone
		}()
	}

	// connect to every target (and via hosts, through the drainer factory)
	var unreachMu sync.Mutex
	var unreachable []*inventory.Host
	if err := r.forEach(ctx, func(ctx context.Context, h *hostInfo) error {
		c, err := r.env.Connect(ctx, h.t.Host)
		if err != nil {
			unreachMu.Lock()
			unreachable = append(unreachable, h.t.Host)
			unreachMu.Unlock()
			return err
		}
		h.conn = c
		return nil
	}); err != nil {
		return r.connectRefusal(err, unreachable)
	}

	// host locks and what is on each host now: one command per host
	var lockMu sync.Mutex
	var locked []*hostInfo
	var readErrs []error
	lockErr := r.forEach(ctx, func(ctx context.Context, h *hostInfo) error {
		in, held, err := journal.AcquireHostLockAndInspect(ctx, h.conn, h.t.Host.Name, h.t.Spec.StateDir, planName,
			r.lockInfo(), r.env.Now(), r.inspectPaths(h, nil))
		if !held {
			return fmt.Errorf("%s: %w", h.t.Host.Name, err)
		}
		if err != nil {
			err = fmt.Errorf("%s: %w", h.t.Host.Name, err)
		} else {
			err = r.applyInspection(ctx, h, in)
		}
		lockMu.Lock()
		defer lockMu.Unlock()
		locked = append(locked, h)
		if err != nil {
			readErrs = append(readErrs, err)
		}
		return nil
	})
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = r.forEachOf(rctx, locked, func(ctx context.Context, h *hostInfo) error {
			if err := journal.ReleaseHostLock(ctx, h.conn, h.t.Spec.StateDir, planName, r.opts.RunID); err != nil {
				r.log("warn", "%s: releasing lock: %v", h.t.Host.Name, err)
				r.mu.Lock()
				r.unreleased = append(r.unreleased, h.t.Host.Name)
				r.mu.Unlock()
			}
			return nil
		})
	}()
	if lockErr != nil {
		return lockRefusal(lockErr, pr.Req.PlanFile)
	}
	stopRenew := r.keepLocksRenewed(ctx, locked)
	defer stopRenew()
	if len(readErrs) > 0 {
		sort.Slice(readErrs, func(i, j int) bool { return readErrs[i].Error() < readErrs[j].Error() })
		return refuse("rollout status "+pr.Req.PlanFile, "reading host state: %v", errors.Join(readErrs...))
	}
	if r.opts.Expect != nil {
		if st := staleHosts(r.opts.Expect, r.hosts, r.order); len(st) > 0 {
			return refuse(fmt.Sprintf("look again and save a new plan: rollout plan %s --out FILE", pr.Req.PlanFile),
				"stale plan: %s", strings.Join(st, "; "))
		}
		if r.opts.ExpectJournal != nil {
			if err := r.opts.ExpectJournal(ctx); err != nil {
				return err
			}
		}
	}
	// the batches are made of the hosts that need a change, so a resumed
	// run starts with a canary again; run_start announces them
	var pending []string
	for _, name := range r.order {
		if !r.hosts[name].skip {
			pending = append(pending, name)
		}
	}
	r.start(plan.Batches(pr.BatchSpec, pending))
	var drifted []string
	for _, name := range r.order {
		h := r.hosts[name]
		drift := driftOf(h.old, h.live)
		switch {
		case h.skip:
			r.emit(event.Event{Event: event.HostState, Host: name, Revision: h.old.Revision, Status: "skip",
				Message: "already at " + plan.ShortRev(pr.Revision) + " with matching files"})
		case len(drift) > 0 && !r.opts.Adopt:
			drifted = append(drifted, fmt.Sprintf("%s (%s)", name, strings.Join(drift, ", ")))
		default:
			from := "nothing recorded"
			if h.old != nil {
				from = plan.ShortRev(h.old.Revision)
			}
			msg := "will change from " + from
			if len(drift) > 0 {
				msg += "; adopting hand-edited " + strings.Join(drift, ", ")
			}
			r.emit(event.Event{Event: event.HostState, Host: name, Revision: revOf(h.old), Status: "change", Message: msg})
		}
	}
	if len(drifted) > 0 {
		return refuse(fmt.Sprintf("inspect with: rollout status %s; to overwrite the hand edits: rollout %s %s --adopt", pr.Req.PlanFile, r.opts.Kind, pr.Req.PlanFile),
			"drift: live files differ from what their recorded revision deployed (a hand edit?): %s", strings.Join(drifted, "; "))
	}
	var todo []string
	for _, name := range r.order {
		if !r.hosts[name].skip {
			todo = append(todo, name)
		} else {
			r.setOutcome(name, event.OutcomeSkipped, "already at the target revision")
			r.emit(event.Event{Event: event.HostDone, Host: name, Status: string(event.OutcomeSkipped), Revision: pr.Revision,
				Message: "already at " + plan.ShortRev(pr.Revision) + " with matching files: not drained, not restarted"})
		}
	}
	if len(todo) == 0 {
		r.log("info", "every targeted host is already at %s: nothing to do", plan.ShortRev(pr.Revision))
		return nil
	}

	// drivers, and their preflight check
	if err := r.forEach(ctx, func(ctx context.Context, h *hostInfo) error {
		if h.skip {
			return nil
		}
		d, err := r.env.NewDrainer(ctx, h.t)
		if err != nil {
			return fmt.Errorf("%s: drain: %w", h.t.Host.Name, err)
		}
		if err := d.Check(ctx); err != nil {
			return fmt.Errorf("%s: drain: %w", h.t.Host.Name, err)
		}
		h.drainer = d
		return nil
	}); err != nil {
		return r.lbRefusal(err)
	}
	if err := r.checkBackendSize(ctx, todo); err != nil {
		return err
	}
	if err := r.startAnalysis(ctx, todo); err != nil {
		return err
	}

	// rollback rehearsal
	if Policy(pr.Plan.OnFailure) == PolicyRollback {
		if err := r.rehearse(todo); err != nil {
			return err
		}
	}

	// preflight: stage and validate everywhere, nothing live touched
	if err := r.preflight(ctx, todo); err != nil {
		return err
	}

	return r.batches(ctx, todo)
}

func revOf(st *journal.HostState) string {
	if st == nil {
		return ""
	}
	return st.Revision
}

func (r *run) forEach(ctx context.Context, f func(context.Context, *hostInfo) error) error {
	hosts := make([]*hostInfo, len(r.order))
	for i, name := range r.order {
		hosts[i] = r.hosts[name]
	}
	return r.forEachOf(ctx, hosts, f)
}

// forEachOf runs f for every host, at most --forks at a time, and joins
// the errors in a stable order.
func (r *run) forEachOf(ctx context.Context, hosts []*hostInfo, f func(context.Context, *hostInfo) error) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(r.opts.Forks)
	var mu sync.Mutex
	var errs []error
	for _, h := range hosts {
		g.Go(func() error {
			if err := f(gctx, h); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
			return nil
		})
	}
	_ = g.Wait()
	sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
	return errors.Join(errs...)
}

func (r *run) keepLocksRenewed(ctx context.Context, hosts []*hostInfo) func() {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		every := r.opts.LockTTL / 3
		for {
			if err := r.env.Sleep(ctx, every); err != nil {
				return
			}
			_ = r.forEachOf(ctx, hosts, func(ctx context.Context, h *hostInfo) error {
				err := journal.RenewHostLock(ctx, h.conn, h.t.Spec.StateDir, r.pr.Plan.Name, r.lockInfo(), r.env.Now())
				switch {
				case err == nil || ctx.Err() != nil:
				case errors.Is(err, journal.ErrNotHeld):
					// another run may be driving this host now: go no further
					r.stopSafely(fmt.Errorf("%w: %s: %w", journal.ErrLockLost, h.t.Host.Name, err))
				default:
					r.log("warn", "%s: renewing lock: %v", h.t.Host.Name, err)
				}
				return nil
			})
		}
	}()
	return func() { cancel(); <-done }
}

// inspectPaths is every file whose live hash the run needs: the plan's,
// and those st recorded.
func (r *run) inspectPaths(h *hostInfo, st *journal.HostState) []string {
	var paths []string
	for _, f := range h.t.Files {
		paths = append(paths, f.Dest)
	}
	if st != nil {
		for p := range st.Files {
			paths = append(paths, p)
		}
	}
	return dedupe(paths)
}

// applyInspection records what a host holds. Files recorded in its state
// but no longer in the plan were not hashed with the rest: one more
// command reads them.
func (r *run) applyInspection(ctx context.Context, h *hostInfo, in *journal.Inspection) error {
	st, live := in.State, in.Live
	if more := unhashed(st, live); len(more) > 0 {
		extra, err := journal.FileHashes(ctx, h.conn, more)
		if err != nil {
			return fmt.Errorf("%s: %w", h.t.Host.Name, err)
		}
		for k, v := range extra {
			live[k] = v
		}
	}
	h.old, h.live = st, live
	h.skip = st != nil && st.Revision == r.pr.Revision && filesMatch(h.t.Files, live)
	return nil
}

func dedupe(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, v := range s {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	sort.Strings(out)
	return out
}

func filesMatch(files []Rendered, live map[string]string) bool {
	for _, f := range files {
		if live[f.Dest] != f.SHA256 {
			return false
		}
	}
	return true
}

// driftOf lists the files whose live content differs from what the host's
// recorded revision deployed.
func driftOf(st *journal.HostState, live map[string]string) []string {
	if st == nil {
		return nil
	}
	var out []string
	for p, sum := range st.Files {
		if live[p] != sum {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

// checkBackendSize refuses a load-balanced pool of one server unless
// downtime is accepted.
func (r *run) checkBackendSize(ctx context.Context, todo []string) error {
	if r.pr.Plan.AllowDowntime {
		return nil
	}
	d := r.hosts[todo[0]].drainer
	ml, ok := d.(MemberLister)
	if !ok {
		return nil
	}
	members, err := ml.Members(ctx)
	if err != nil {
		return refuse("check the load balancer endpoints in the plan", "reading the load balancer pool: %v", err)
	}
	if len(members) == 1 {
		return refuse("add allow_downtime = true to the plan if downtime is accepted",
			"the load balancer backend has a single server (%s): it cannot be rolled without downtime", members[0].Name)
	}
	return nil
}

// startAnalysis builds the canary analysis source and reads it once: a
// plan whose analysis cannot read a single counter is refused before any
// host is touched.
func (r *run) startAnalysis(ctx context.Context, todo []string) error {
	a := r.pr.Plan.Analysis
	if a == nil {
		return nil
	}
	fix := fmt.Sprintf("fix the analysis %q block (%s), then: rollout validate %s", a.Kind, a.Def, r.pr.Req.PlanFile)
	if r.env.NewAnalyser == nil {
		return refuse(fix, "analysis %q: no analysis source is wired in", a.Kind)
	}
	an, err := r.env.NewAnalyser(ctx, a, r.hosts[todo[0]].t)
	if err != nil {
		return refuse(fix, "analysis %q: %v", a.Kind, err)
	}
	s := an.Read(ctx)
	if len(s.LBs) == 0 {
		var why []string
		for lb, e := range s.Unread {
			why = append(why, lb+": "+e)
		}
		sort.Strings(why)
		return refuse(fix, "analysis %q: cannot read any counters: %s", a.Kind, strings.Join(why, "; "))
	}
	r.analyser = an
	return nil
}

// rehearse renders every host's way back before anything is touched
// (rollback.Rehearse), or refuses the run.
func (r *run) rehearse(todo []string) error {
	var hosts []rollback.Host
	for _, name := range todo {
		hosts = append(hosts, rollback.Host{Name: name, At: revOf(r.hosts[name].old)})
	}
	prev, err := rollback.Rehearse(hosts, r.pr.Revision, func(name, rev string) (*Target, error) {
		return r.pr.Render(r.hosts[name].t.Host, rev)
	})
	if err != nil {
		return AsRefusal(err)
	}
	for name, t := range prev {
		r.hosts[name].prev = t
	}
	return nil
}

// batches runs the hosts that need a change, batch by batch, as Decide says.
func (r *run) batches(ctx context.Context, todo []string) error {
	pr := r.pr
	batches := plan.Batches(pr.BatchSpec, todo)
	st := RunState{Batches: batches, FailLimit: pr.Plan.FailureLimit(len(todo))}
	approveAfter := map[int]bool{}
	for _, b := range pr.Plan.ApproveAfter {
		approveAfter[b] = true
	}
	announced := ""
	for {
		st.Paused, st.Stopping = r.ctl.snapshot()
		if st.NeedApproval && (r.opts.AutoApprove || r.ctl.takeApproval()) {
			st.NeedApproval = false
			msg := "approved by a person"
			if r.opts.AutoApprove {
				msg = "approved by --auto-approve"
			}
			r.emit(event.Event{Event: event.Approved, Batch: st.Next + 1, Message: msg})
		}
		if st.NeedApproval && r.opts.Unattended {
			return r.stopAtGate(st)
		}
		d := Decide(st, r.env.Now())
		switch d.Action {
		case ActDone:
			return nil
		case ActHalt:
			for _, b := range st.Batches[min(st.Next, len(st.Batches)):] {
				for _, n := range b {
					r.setOutcome(n, event.OutcomeNotStarted, d.Reason)
				}
			}
			r.log("error", "halting: %s", d.Reason)
			if st.Stopping && st.Failures <= st.FailLimit && st.CapacityHalt == "" {
				return ErrInterrupted
			}
			if !r.touched && st.CapacityHalt != "" {
				return refuse("bring the servers that are down back, or lower min_in_service", "%s", st.CapacityHalt)
			}
			return ErrRunFailed
		case ActWait:
			if d.Reason != announced {
				announced = d.Reason
				msg := d.Reason
				switch d.Reason {
				case "approval":
					msg = fmt.Sprintf("batch %d done; approve to start batch %d (press y, or answer the prompt)", st.Next, st.Next+1)
				case "paused":
					msg = "paused after the current batch (press r to resume)"
				case "bake":
					msg = fmt.Sprintf("baking for %s before batch %d", pr.Plan.Pause, st.Next+1)
				}
				r.emit(event.Event{Event: event.Waiting, Status: d.Reason, Batch: st.Next + 1, Message: msg})
			}
			wait := time.Duration(-1)
			if !d.Until.IsZero() {
				wait = d.Until.Sub(r.env.Now())
			}
			if err := r.waitWake(ctx, wait); err != nil {
				return ErrInterrupted
			}
			continue
		case ActStartBatch:
		}
		announced = ""
		batch := st.Batches[d.Batch]
		now, later, reason := r.fitCapacity(ctx, batch, todo)
		if reason != "" {
			st.CapacityHalt = reason
			continue
		}
		if len(later) > 0 {
			r.log("warn", "capacity floor: batch %d shrunk to %s; %s moved to the next batch", d.Batch+1, strings.Join(now, ", "), strings.Join(later, ", "))
			st.Batches = insertBatch(st.Batches, d.Batch, now, later)
		}
		st.InFlight = true
		r.bake = 0
		if pr.Plan.Analysis != nil && d.Batch+1 < len(st.Batches) {
			// the batch bakes inside its hosts' pipelines, judged by the
			// analysis, before they are recorded: a failed verdict is then
			// still a host failure on_failure can handle
			r.bake = pr.Plan.Pause
		}
		failures := r.runBatch(ctx, d.Batch+1, now)
		st.InFlight = false
		st.Failures += failures
		st.Next = d.Batch + 1
		if ctx.Err() != nil {
			return ErrInterrupted
		}
		if approveAfter[d.Batch+1] && st.Next < len(st.Batches) {
			st.NeedApproval = true
		}
		if pr.Plan.Pause > 0 && st.Next < len(st.Batches) && pr.Plan.Analysis == nil {
			st.BakeUntil = r.env.Now().Add(pr.Plan.Pause)
		}
	}
}

func insertBatch(bs [][]string, i int, now, later []string) [][]string {
	out := append([][]string{}, bs[:i]...)
	out = append(out, now, later)
	return append(out, bs[i+1:]...)
}

func (r *run) waitWake(ctx context.Context, d time.Duration) error {
	var timer <-chan time.Time
	if d >= 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timer = t.C
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-r.ctl.wake:
	case <-timer:
	}
	return nil
}

// fitCapacity reads the LB pool and shrinks the batch to respect the floor.
func (r *run) fitCapacity(ctx context.Context, batch, todo []string) (now, later []string, reason string) {
	var members []Member
	if ml, ok := r.hosts[batch[0]].drainer.(MemberLister); ok {
		m, err := ml.Members(ctx)
		if err != nil {
			return nil, batch, fmt.Sprintf("capacity floor: cannot read the load balancer pool: %v", err)
		}
		members = m
	} else {
		// no LB view: the pool is the plan's hosts; failed hosts are down
		r.mu.Lock()
		for _, h := range r.pr.Pool {
			o, seen := r.outcomes[h.Name]
			serving := !seen || o == event.OutcomeOK || o == event.OutcomeSkipped || o == event.OutcomeRolledBack || o == event.OutcomeFailed || o == event.OutcomeStopped
			members = append(members, Member{Name: h.Name, Serving: serving, Status: string(o)})
		}
		r.mu.Unlock()
	}
	min := r.pr.Plan.MinServing(len(members))
	if r.pr.Plan.AllowDowntime {
		min = 0
	}
	return FitBatch(batch, members, min)
}

// runBatch runs the hosts of one batch in parallel and returns how many
// failed.
func (r *run) runBatch(ctx context.Context, n int, names []string) int {
	r.emit(event.Event{Event: event.BatchStart, Batch: n, Hosts: names})
	var wg sync.WaitGroup
	var mu sync.Mutex
	failures := 0
	for _, name := range names {
		h := r.hosts[name]
		wg.Add(1)
		go func() {
			defer wg.Done()
			o := r.runHost(ctx, n, h)
			if o != event.OutcomeOK && o != event.OutcomeSkipped && o != event.OutcomeStopped {
				mu.Lock()
				failures++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	status := event.StatusOK
	if failures > 0 {
		status = event.StatusFailed
	}
	r.emit(event.Event{Event: event.BatchDone, Batch: n, Status: status})
	return failures
}

func (r *run) setOutcome(host string, o event.Outcome, msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, done := r.outcomes[host]; done && o == event.OutcomeNotStarted {
		return
	}
	r.outcomes[host] = o
	r.messages[host] = msg
	delete(r.inFlight, host)
}

// finish releases what the run holds, records the summary and maps the
// result to an exit code.
func (r *run) finish(ctx context.Context, err error) (*Result, error) {
	r.start(r.pr.Batches) // refused before the hosts were read: the planned batches
	res := &Result{RunID: r.opts.RunID, Outcomes: map[string]event.Outcome{}}
	counts := map[event.Outcome]int{}
	r.mu.Lock()
	for _, name := range r.order {
		o, ok := r.outcomes[name]
		if !ok {
			if _, flying := r.inFlight[name]; flying {
				o = event.OutcomeUnknown
			} else {
				o = event.OutcomeNotStarted
			}
			r.outcomes[name] = o
		}
		res.Outcomes[name] = o
		counts[o]++
	}
	var unreported []string
	for _, name := range r.order {
		if !r.reported[name] {
			unreported = append(unreported, name)
		}
	}
	r.mu.Unlock()
	// every targeted host gets a host_done, so every view can say where it is
	for _, name := range unreported {
		msg := r.messages[name]
		if msg == "" && res.Outcomes[name] == event.OutcomeUnknown {
			msg = "the run stopped while this host was in flight"
		}
		r.emit(event.Event{Event: event.HostDone, Host: name, Status: string(res.Outcomes[name]), Revision: r.revisionOf(name), Message: msg})
	}
	if err != nil && ctx.Err() != nil && !errors.Is(err, ErrInterrupted) {
		err = ErrInterrupted
	}
	if lost := r.lostCause(); lost != nil && ExitCode(err) != ExitRefused {
		err = &StoppedError{Cause: lost}
	}
	res.ExitCode = ExitCode(err)
	res.Summary, res.Next = r.nextCommand(res, err)
	if len(r.unreleased) > 0 {
		sort.Strings(r.unreleased)
		unlock := "rollout unlock " + r.pr.Req.PlanFile + " --yes"
		res.Summary = strings.TrimPrefix(fmt.Sprintf("%s; this run could not release its lock on %s (unreachable at the end): when it is back, %s",
			res.Summary, strings.Join(r.unreleased, ", "), unlock), "; ")
		if err == nil {
			res.Next = unlock
		}
	}
	status := "ok"
	msg := res.Summary
	var ref *Refusal
	var diag *DiagError
	switch {
	case errors.As(err, &ref):
		status = "refused"
		msg, res.Next = ref.Problem, ref.Next
	case errors.As(err, &diag):
		status = "refused"
		msg, res.Next = diag.Error(), "rollout validate "+r.pr.Req.PlanFile
	case res.ExitCode == ExitRefused:
		status = "refused"
		msg = err.Error()
	case res.ExitCode == ExitInterrupted:
		status = "interrupted"
	case err != nil:
		status = "failed"
	}
	r.emit(event.Event{Event: event.RunDone, Status: status, Revision: r.pr.Revision, Counts: counts,
		ExitCode: event.Int(res.ExitCode), Message: msg, Next: res.Next})
	return res, err
}

// revisionOf is the revision a host not touched by this run is on, as far
// as the run read it.
func (r *run) revisionOf(name string) string {
	if h := r.hosts[name]; h != nil && r.outcomes[name] != event.OutcomeUnknown {
		return revOf(h.old)
	}
	return ""
}

// nextCommand says what the run left behind (naming hosts) and the one
// command to run next.
func (r *run) nextCommand(res *Result, err error) (summary, next string) {
	pf := r.pr.Req.PlanFile
	var drained, unknown, failed []string
	for _, name := range r.order {
		switch res.Outcomes[name] {
		case event.OutcomeDrained:
			drained = append(drained, name)
		case event.OutcomeUnknown:
			unknown = append(unknown, name)
		case event.OutcomeFailed, event.OutcomeRolledBack:
			failed = append(failed, name)
		}
	}
	switch {
	case len(unknown) > 0:
		next = "rollout repair " + pf
		return fmt.Sprintf("hosts in an unknown state: %s; run: %s", strings.Join(unknown, ", "), next), next
	case len(drained) > 0:
		next = "rollout repair " + pf
		return fmt.Sprintf("left drained for inspection: %s; when done: %s (back to the previous files, undrained), or rollout rollback %s --limit %s",
			strings.Join(drained, ", "), next, pf, strings.Join(drained, ",")), next
	case len(failed) > 0:
		next = fmt.Sprintf("rollout %s %s", r.opts.Kind, pf)
		return fmt.Sprintf("failed and back on their previous files: %s; fix the revision, then: %s", strings.Join(failed, ", "), next), next
	case errors.Is(err, ErrApprovalNeeded):
		next = fmt.Sprintf("rollout %s %s --yes --auto-approve", r.opts.Kind, pf)
		return fmt.Sprintf("stopped at an approve_after gate: no one could approve (no terminal, no --auto-approve); hosts already done are skipped on a re-run: continue with %s, or run it in a terminal and approve by hand", next), next
	case errors.Is(err, ErrLost):
		next = fmt.Sprintf("rollout %s %s", r.opts.Kind, pf)
		return fmt.Sprintf("stopped safely because %v; when the cause is fixed: rollout history %s, then rollout %s %s (hosts already done are skipped)", err, pf, r.opts.Kind, pf), next
	case errors.Is(err, ErrInterrupted):
		next = fmt.Sprintf("rollout %s %s", r.opts.Kind, pf)
		return fmt.Sprintf("stopped; to continue: %s (hosts already done are skipped)", next), next
	case err == nil:
		next = "rollout status " + pf
		return "done; check with: " + next, next
	case errors.Is(err, ErrRunFailed):
		// nothing was changed (preflight, say): fix the cause, then run again
		next = fmt.Sprintf("rollout %s %s", r.opts.Kind, pf)
		return fmt.Sprintf("%v; no host was changed: fix the cause shown above (a file at the revision: commit the fix and pin the new revision), then run the next command", err), next
	}
	return "", ""
}

// stopAtGate ends a run that reached an approve_after gate with no one to
// approve it: the hosts done stay done, the rest are not started.
func (r *run) stopAtGate(st RunState) error {
	var rest []string
	for _, b := range st.Batches[min(st.Next, len(st.Batches)):] {
		for _, n := range b {
			r.setOutcome(n, event.OutcomeNotStarted, "waiting for an approval no one could give")
			rest = append(rest, n)
		}
	}
	r.log("warn", "batch %d needs an approval, but no one can approve (no terminal) and --auto-approve was not given; %s not started", st.Next+1, strings.Join(rest, ", "))
	return fmt.Errorf("stopped at the approval after batch %d (%d host(s) not started): %w", st.Next, len(rest), ErrApprovalNeeded)
}

func sleepCtx(ctx context.Context, d time.Duration) error { return journal.Pause(ctx, d) }

func lockRefusal(err error, planFile string) error {
	var le *journal.LockedError
	if errors.As(err, &le) {
		if dead, why := journal.OwnerDead(le.Info); dead {
			return refuse("rollout repair "+planFile+" (puts back what that run left and takes its lock over), then rerun",
				"%v\nthat run is dead: %s; it may have left hosts drained", err, why)
		}
	}
	return refuse("wait for that run to finish; if it is dead, wait for the lock to expire or run: rollout unlock "+planFile, "%v", err)
}

// lbRefusal refuses a run whose load balancer preflight failed, with the
// fix for what actually went wrong: a socket that cannot be reached or is
// full is not a typo in the drain block.
func (r *run) lbRefusal(err error) error {
	plan := r.pr.Req.PlanFile
	next := "fix the drain block (backend/server names, endpoints), then: rollout validate " + plan
	if r.env.Hint != nil {
		if h := r.env.Hint(err); h != "" {
			next = h + "; then rerun: rollout " + r.opts.Kind + " " + plan
		}
	}
	return refuse(next, "load balancer: %v", err)
}

func (r *run) connectRefusal(err error, unreachable []*inventory.Host) error {
	next := connectHint(unreachable, r.pr.Req, r.opts.Kind)
	if r.env.Hint != nil {
		if h := r.env.Hint(err); h != "" {
			next = h
		}
	}
	return refuse(next, "connecting: %v", err)
}
