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

	"github.com/rollout-sh/rollout/internal/clock"
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

// Holder is implemented by drainers that can confirm, right before a
// restart, that no load balancer sends the host traffic (HAProxy: checked
// on the process that serves now, after any reload). An error means the
// host is not restarted.
type Holder interface {
	Hold(ctx context.Context) error
}

// Confirmer is implemented by drainers whose LB confirms a server with
// its own health check after it comes back (HAProxy: "UP", not "UP 1/2"):
// undrain waits for that before the host counts as back in service.
type Confirmer interface {
	Confirmed(ctx context.Context) (bool, string, error)
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
	// Artifacts stages and switches software releases; nil is a new
	// artifact.Remote for each run.
	Artifacts Artifacts
	// LBNotices, when set, is called with the run's own event emitter at
	// the start of the run and with nil at its end: the drivers report
	// what changed under the run on the load balancers (an HAProxy reload,
	// lb_reload) through it.
	LBNotices func(emit func(event.Event))
	// Notifier, when set, is the run's outgoing notifications (the
	// plan's notify blocks; package notify). It also receives the events
	// through Sink.
	Notifier Notifier
}

// Notifier is what the run does with its notifications: Attach gives it
// the run's own emitter at the start (it warns through it with log
// events), and Settle, called just before run_done, waits a bounded time
// for what is queued, records what was not delivered (log events) and
// detaches.
type Notifier interface {
	Attach(emit func(event.Event))
	Settle()
}

// clocked is env with the real clock where it has none: the one place the
// engine meets the wall clock. Tests wire a fake Now and Sleep.
func (env Env) clocked() Env {
	if env.Now == nil {
		env.Now = time.Now
	}
	if env.Sleep == nil {
		env.Sleep = clock.Sleep
	}
	return env
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
	// Operator is who the run is for (ResolveOperator): recorded in
	// run_start, approved and run_done, in each host's marker
	// (deployed_by) and passed to hooks
	Operator Operator
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
	// RerunHooks: run before_run hooks even when an earlier run of the
	// same revision ran them to success (a resumed run skips them)
	RerunHooks bool
	// Retry: apply a revision that a rollback (or on_failure =
	// "rollback") took the hosts back from; without it such an apply is
	// refused (RolledBackRefusal)
	Retry bool
	// Reason: why a rollback is run (rollout rollback --reason); kept in
	// run_start and in each host's rollback mark
	Reason    string
	PollEvery time.Duration // sessions polling (default 250ms)
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
	class   Class             // how it stands against the target
	skip    bool              // class.Action == HostSkip
	prev    *Target           // the previous revision rendered, for rollback
	// revert: this pipeline takes a host the run changed back to the
	// revision it had (rollback_all): t is that revision, rev its commit;
	// a failure leaves the host drained (there is no way further back)
	revert bool
	rev    string
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
	wave     string          // the wave of the batch in flight ("" without waves)
	ran      [][]string      // the batches started, in order (rollback_all reverts them)
	inFlight map[string]event.Phase
	analyser Analyser  // nil without an analysis block
	arts     Artifacts // the run's (artifacts())
	artsOnce sync.Once
	bake     time.Duration // the batch in flight bakes this long under analysis before its hosts are recorded
	started  bool          // run_start emitted
	// rolledBackFrom: for a rollback, the revision the changed hosts
	// were at (the one rolled back from)
	rolledBackFrom string
	lost           error // why the run must stop safely (lock lost, journal unwritable)
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
		Scope: r.scope(), Batches: batches, Hosts: r.order, Message: r.opts.Kind, Warnings: r.pr.Warnings,
		Owner: r.opts.Owner, Operator: r.operator(), OperatorURL: r.opts.Operator.URL,
		RolledBackFrom: r.rolledBackFrom, Reason: r.opts.Reason})
}

// Run executes an apply or rollback of pr. The returned error maps to the
// exit code with ExitCode.
func Run(ctx context.Context, pr *Prepared, env Env, opts Options, ctl *Control) (*Result, error) {
	if ctl == nil {
		ctl = NewControl()
	}
	env = env.clocked()
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
	if env.LBNotices != nil {
		env.LBNotices(r.emit)
	}
	if env.Notifier != nil {
		env.Notifier.Attach(r.emit)
	}
	err := r.execute(hardCtx)
	if env.LBNotices != nil {
		env.LBNotices(nil)
	}
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
func (r *run) execute(ctx context.Context) (err error) {
	pr := r.pr
	planName := pr.Plan.Name
	// the controller's lock in the state backend, then every host's:
	// renewed while the run lives; a lost one stops the run safely
	locks := &Locks{Plan: planName, Info: r.lockInfo(), Forks: r.opts.Forks, Now: r.env.Now, Sleep: r.env.Sleep,
		Lost: r.stopSafely, Warn: func(format string, args ...any) { r.log("warn", format, args...) }}
	defer func() {
		if un := locks.Release(ctx); len(un) > 0 {
			r.mu.Lock()
			r.unreleased = append(r.unreleased, un...)
			r.mu.Unlock()
		}
	}()
	if r.opts.Backend != nil {
		if err := locks.TakePlan(ctx, r.opts.Backend); err != nil {
			return lockRefusal(err, pr.Req.PlanFile, r.opts.Kind)
		}
	}
	// on_failure hooks: the run failed or was stopped (not refused), while
	// it still holds its locks; best effort, the failure stays the run's
	defer func() {
		if code := ExitCode(err); code == ExitFailed || code == ExitInterrupted {
			_ = r.runHooks(ctx, plan.HookOnFailure, 0, r.order, runOutcome(err))
		}
	}()

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
	var readMu sync.Mutex
	var readErrs []error
	lockErr := r.forEach(ctx, func(ctx context.Context, h *hostInfo) error {
		in, held, err := locks.TakeHostAndRead(ctx, h.conn, h.t.Host.Name, h.t.Spec.StateDir, readPaths(h.t.Tracked(), nil))
		if !held {
			return fmt.Errorf("%s: %w", h.t.Host.Name, err)
		}
		if err != nil {
			err = fmt.Errorf("%s: %w", h.t.Host.Name, err)
		} else {
			err = r.applyInspection(ctx, h, in)
		}
		if err != nil {
			readMu.Lock()
			readErrs = append(readErrs, err)
			readMu.Unlock()
		}
		return nil
	})
	if lockErr != nil {
		return lockRefusal(lockErr, pr.Req.PlanFile, r.opts.Kind)
	}
	locks.KeepRenewed(ctx)
	if len(readErrs) > 0 {
		sort.Slice(readErrs, func(i, j int) bool { return readErrs[i].Error() < readErrs[j].Error() })
		return refuse("rollout status "+pr.Req.PlanFile, "reading host state: %v", errors.Join(readErrs...))
	}
	if r.opts.Expect != nil {
		if st := staleHosts(r.opts.Expect, r.hosts, r.order); len(st) > 0 {
			return refuse(fmt.Sprintf("rollout plan %s --out FILE  # look again and save a new plan", pr.Req.PlanFile),
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
		if h := r.hosts[name]; !h.skip {
			pending = append(pending, name)
			if r.opts.Kind == "rollback" && r.rolledBackFrom == "" && h.old != nil && h.old.Revision != pr.Revision {
				r.rolledBackFrom = h.old.Revision
			}
		}
	}
	if r.opts.Kind == "apply" && !r.opts.Retry {
		olds := map[string]*journal.HostState{}
		for _, name := range r.order {
			olds[name] = r.hosts[name].old
		}
		if err := RolledBackRefusal(pr.Req.PlanFile, pr.Revision, r.order, olds); err != nil {
			return err
		}
	}
	r.start(pr.Schedule(pending).Batches)
	var drifted []string
	for _, name := range r.order {
		h := r.hosts[name]
		drift := h.class.Drift
		switch {
		case h.class.Action == HostSkip:
			r.emit(event.Event{Event: event.HostState, Host: name, Revision: h.old.Revision, Status: string(HostSkip),
				Message: "already at " + plan.ShortRev(pr.Revision) + " with matching files"})
		case h.class.Action == HostDrift && !r.opts.Adopt:
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
			r.emit(event.Event{Event: event.HostState, Host: name, Revision: revOf(h.old), Status: string(HostChange), Message: msg})
		}
	}
	if len(drifted) > 0 {
		return refuse(fmt.Sprintf("rollout status %s  # shows the hand edits; to overwrite them: rollout %s %s --adopt", pr.Req.PlanFile, r.opts.Kind, pr.Req.PlanFile),
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
	if HostPolicy(pr.Plan.OnFailure) == PolicyRollback {
		if err := r.rehearse(todo); err != nil {
			return err
		}
	}

	// preflight: stage and validate everywhere, nothing live touched
	if err := r.preflight(ctx, todo); err != nil {
		return err
	}
	// run-once steps before the first drain (a migration): a failure
	// stops the run with nothing drained
	if err := r.runHooks(ctx, plan.HookBeforeRun, 0, todo, ""); err != nil {
		for _, n := range todo {
			r.setOutcome(n, event.OutcomeNotStarted, "hook "+err.(*HookError).Hook.Name+" failed before the first drain")
		}
		return err
	}

	if err := r.batches(ctx, todo); err != nil {
		if Policy(pr.Plan.OnFailure) == PolicyRollbackAll && errors.Is(err, ErrRunFailed) {
			r.rollbackAll(ctx)
		}
		return err
	}
	for _, n := range todo {
		if o := r.outcomeOf(n); o != event.OutcomeOK && o != event.OutcomeSkipped {
			return nil // not every host succeeded (within max_failures): no after_run
		}
	}
	return r.runHooks(ctx, plan.HookAfterRun, 0, todo, "ok")
}

// outcomeOf is a host's outcome so far ("" when it has none).
func (r *run) outcomeOf(name string) event.Outcome {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.outcomes[name]
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
	return eachOf(ctx, r.opts.Forks, hosts, f)
}

// applyInspection records what a host holds (the lock command's read,
// finished as every read of a host is) and how it stands against the
// target.
func (r *run) applyInspection(ctx context.Context, h *hostInfo, in *journal.Inspection) error {
	if err := finishRead(ctx, h.conn, in); err != nil {
		return fmt.Errorf("%s: %w", h.t.Host.Name, err)
	}
	h.old, h.live = in.State, in.Live
	h.class = Classify(h.t.Tracked(), r.pr.Revision, h.old, h.live)
	h.skip = h.class.Action == HostSkip
	return nil
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
		return refuse("rollout validate "+r.pr.Req.PlanFile+"  # once the load balancer endpoints in the plan are right", "reading the load balancer pool: %v", err)
	}
	if len(members) == 1 {
		return refuse("rollout validate "+r.pr.Req.PlanFile+"  # after adding allow_downtime = true to the plan, if downtime is accepted",
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
	fix := fmt.Sprintf("rollout validate %s  # once the analysis %q block (%s) is fixed", r.pr.Req.PlanFile, a.Kind, a.Def)
	if r.env.NewAnalyser == nil {
		return refuse(fix, "analysis %q: no analysis source is wired in", a.Kind)
	}
	an, err := r.env.NewAnalyser(ctx, a, r.hosts[todo[0]].t)
	if err != nil {
		return refuse(fix, "analysis %q: %v", a.Kind, err)
	}
	s := an.Read(ctx)
	if len(s.Broken) > 0 {
		var why []string
		for _, e := range s.Broken {
			why = append(why, e)
		}
		sort.Strings(why)
		return refuse(fix, "analysis %q: %s", a.Kind, strings.Join(why, "; "))
	}
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

// batches runs the hosts that need a change, batch by batch. What happens
// between batches is decided by Reduce (between.go); this loop only
// executes its decisions and turns what happens into inputs.
func (r *run) batches(ctx context.Context, todo []string) error {
	sched := r.pr.Schedule(todo)
	s := NewBetween(r.pr.Plan, sched.Batches, r.opts.AutoApprove, r.opts.Unattended)
	s.ApproveBefore, s.PauseBefore, s.Waves = sched.ApproveBefore, sched.PauseBefore, sched.Waves
	// a wave that needs an approval before it starts, first
	s.NeedApproval = s.ApproveBefore[0]
	s.PlanFile = r.pr.Req.PlanFile
	if r.pr.Window.Set {
		s.Window = max(1, r.pr.Window.Of(len(todo)))
	}
	in := []Input{{Kind: InTick}}
	observed := false
	for {
		if !observed {
			// what the operator and the lock did comes first
			in = append(r.observe(s), in...)
		}
		observed = false
		var d Decision
		for _, i := range in {
			i.Now = r.env.Now()
			s, d = Reduce(s, i)
			r.report(d)
		}
		in = nil
		switch d.Action {
		case ActDone:
			return nil
		case ActHalt:
			for _, n := range d.NotStarted {
				r.setOutcome(n, event.OutcomeNotStarted, d.Reason)
			}
			r.log(d.LogLevel, "%s", d.Log)
			return d.Err
		case ActWait:
			if more := r.observe(s); len(more) > 0 {
				in, observed = more, true // something changed meanwhile: no need to wait
				continue
			}
			if err := r.waitWake(ctx, d.Until); err != nil {
				return ErrInterrupted
			}
			in = []Input{{Kind: InTick}}
		case ActReadPool:
			members, err := r.pool(ctx, d.Hosts)
			in = []Input{{Kind: InPool, Members: members, Err: err}}
		case ActStartBatch:
			r.bake = d.Bake
			var outcomes map[string]event.Outcome
			r.wave = d.Wave
			r.ran = append(r.ran, d.Hosts)
			if d.Window > 0 {
				outcomes = r.runWindow(ctx, d.Batch+1, d.Hosts, d.Window, d.Budget)
			} else {
				outcomes = r.runBatch(ctx, d.Batch+1, d.Hosts)
			}
			for _, name := range d.Hosts {
				if d.Window > 0 && outcomes[name] == event.OutcomeNotStarted {
					continue // the window stopped before it: not a failure of its own
				}
				in = append(in, Input{Kind: InHostDone, Host: name, Outcome: outcomes[name]})
			}
			in = append(in, Input{Kind: InBatchDone})
			if ctx.Err() != nil {
				return ErrInterrupted
			}
			// after_batch hooks (a smoke test) when every host of the
			// batch succeeded; a failure halts like a failed host
			ok := true
			for _, name := range d.Hosts {
				ok = ok && (outcomes[name] == event.OutcomeOK || outcomes[name] == event.OutcomeSkipped)
			}
			if ok {
				if err := r.runHooks(ctx, plan.HookAfterBatch, d.Batch+1, d.Hosts, "ok"); err != nil {
					return err
				}
			}
		}
	}
}

// observe turns what changed outside the loop (the operator's keys, a lost
// lock) into the reducer's inputs, given what it already knows.
func (r *run) observe(s Between) []Input {
	var in []Input
	if lost := r.lostCause(); lost != nil && s.Lost == nil {
		in = append(in, Input{Kind: InLockLost, Cause: lost})
	}
	paused, stopping := r.ctl.snapshot()
	if stopping && !s.Stopping {
		in = append(in, Input{Kind: InStop})
	}
	if paused != s.Paused {
		k := InResume
		if paused {
			k = InPause
		}
		in = append(in, Input{Kind: k})
	}
	if s.NeedApproval && !s.AutoApprove && r.ctl.takeApproval() {
		in = append(in, Input{Kind: InApprove})
	}
	return in
}

// report emits what a decision says happened.
func (r *run) report(d Decision) {
	if d.Approved != "" {
		// the person at the terminal is this process's operator; with
		// --auto-approve the message says so
		r.emit(event.Event{Event: event.Approved, Batch: d.Batch + 1, Message: d.Approved,
			Operator: r.operator(), OperatorURL: r.opts.Operator.URL})
	}
	if d.Log != "" && d.Action != ActHalt {
		r.log(d.LogLevel, "%s", d.Log)
	}
	if d.Announce != "" {
		r.emit(event.Event{Event: event.Waiting, Status: string(d.Wait), Batch: d.Batch + 1, Message: d.Announce})
	}
}

// waitWake waits until until (zero: no limit) on the run's clock, or until
// the operator does something, or ctx ends (its error).
func (r *run) waitWake(ctx context.Context, until time.Time) error {
	wctx, cancel := context.WithCancel(ctx)
	woke := make(chan struct{})
	go func() {
		defer close(woke)
		select {
		case <-r.ctl.wake:
			cancel()
		case <-wctx.Done():
		}
	}()
	if until.IsZero() {
		<-wctx.Done()
	} else {
		_ = r.env.Sleep(wctx, until.Sub(r.env.Now()))
	}
	cancel()
	<-woke // a wake taken by the watcher is seen by the next observe
	return ctx.Err()
}

// pool reads the load balancer's pool for the capacity floor; drivers that
// cannot read it get the pool as the run knows it.
func (r *run) pool(ctx context.Context, batch []string) ([]Member, error) {
	if ml, ok := r.hosts[batch[0]].drainer.(MemberLister); ok {
		return ml.Members(ctx)
	}
	names := make([]string, len(r.pr.Pool))
	for i, h := range r.pr.Pool {
		names[i] = h.Name
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return PoolFromOutcomes(names, r.outcomes), nil
}

// runBatch runs the hosts of one batch in parallel and returns their
// outcomes.
func (r *run) runBatch(ctx context.Context, n int, names []string) map[string]event.Outcome {
	r.emit(event.Event{Event: event.BatchStart, Batch: n, Hosts: names, Wave: r.wave})
	var wg sync.WaitGroup
	var mu sync.Mutex
	outcomes := map[string]event.Outcome{}
	for _, name := range names {
		h := r.hosts[name]
		wg.Add(1)
		go func() {
			defer wg.Done()
			o := r.runHost(ctx, n, h)
			mu.Lock()
			outcomes[name] = o
			mu.Unlock()
		}()
	}
	wg.Wait()
	r.batchDone(n, outcomes)
	return outcomes
}

// batchDone emits batch n's batch_done: failed when a host of it did not
// end ok (or skipped, or stopped).
func (r *run) batchDone(n int, outcomes map[string]event.Outcome) {
	status := event.StatusOK
	for _, o := range outcomes {
		if Failed(o) {
			status = event.StatusFailed
		}
	}
	r.emit(event.Event{Event: event.BatchDone, Batch: n, Status: status, Wave: r.wave})
}

// runWindow runs the hosts of a rolling window (max_in_flight) in order:
// the next starts as soon as one finishes, with at most window hosts out of
// the pool at a time — a host that failed and stays out (drained, unknown)
// keeps its place. It starts no more once more than budget of them failed,
// the run is stopping or its lock was lost; those are not started.
func (r *run) runWindow(ctx context.Context, n int, names []string, window, budget int) map[string]event.Outcome {
	r.emit(event.Event{Event: event.BatchStart, Batch: n, Hosts: names, Wave: r.wave})
	r.log("info", "batch %d: a rolling window of %d hosts, at most %d out of the pool at a time", n, len(names), window)
	var wg sync.WaitGroup
	var mu sync.Mutex
	cond := sync.NewCond(&mu)
	// a host that ends wakes the loop below; ctx ending must too
	stop := context.AfterFunc(ctx, func() {
		mu.Lock()
		cond.Broadcast()
		mu.Unlock()
	})
	defer stop()
	outcomes := map[string]event.Outcome{}
	out, running, failed := 0, 0, 0
	why := ""
	for _, name := range names {
		mu.Lock()
		for out >= window && running > 0 && ctx.Err() == nil {
			cond.Wait()
		}
		switch {
		case failed > budget:
			why = fmt.Sprintf("%d host(s) of the rolling window failed, more than max_failures allows", failed)
		case ctx.Err() != nil || r.ctl.isStopping():
			why = "the run is stopping"
		case r.lostCause() != nil:
			why = "the run lost its lock"
		case out >= window:
			why = "hosts left out of the pool fill the rolling window"
		}
		if why != "" {
			mu.Unlock()
			break
		}
		out++
		running++
		mu.Unlock()
		h := r.hosts[name]
		wg.Add(1)
		go func() {
			defer wg.Done()
			o := r.runHost(ctx, n, h)
			mu.Lock()
			defer mu.Unlock()
			outcomes[name] = o
			running--
			if Failed(o) {
				failed++
			}
			if o != event.OutcomeDrained && o != event.OutcomeUnknown {
				out-- // back in the pool (or never left it)
			}
			cond.Broadcast()
		}()
	}
	wg.Wait()
	for _, name := range names {
		if _, ok := outcomes[name]; !ok {
			outcomes[name] = event.OutcomeNotStarted
			r.setOutcome(name, event.OutcomeNotStarted, "not started: "+why)
		}
	}
	r.batchDone(n, outcomes)
	return outcomes
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
	sort.Strings(r.unreleased)
	res.Summary, res.Next = Summarise(r.order, res.Outcomes, r.unreleased, r.opts.Kind, r.pr.Req.PlanFile, err)
	if s := r.drainTimeoutSummary(res.Outcomes); s != "" && len(r.unreleased) == 0 {
		res.Summary = s
	}
	status := ExitOf(err).Status
	msg := res.Summary
	var ref *Refusal
	var diag *DiagError
	switch {
	case errors.As(err, &ref):
		msg, res.Next = ref.Problem, ref.Next
	case errors.As(err, &diag):
		msg, res.Next = diag.Error(), "rollout validate "+r.pr.Req.PlanFile
	case res.ExitCode == ExitRefused:
		msg = err.Error()
	}
	if r.env.Notifier != nil {
		r.env.Notifier.Settle()
	}
	r.emit(event.Event{Event: event.RunDone, Status: status, Revision: r.pr.Revision, Counts: counts,
		ExitCode: event.Int(res.ExitCode), Message: msg, Next: res.Next,
		Operator: r.operator(), OperatorURL: r.opts.Operator.URL})
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

// lockRefusal refuses a run whose plan is locked by another run. Its next
// command, pasted, frees the plan and runs this command again (the CLI
// puts the user's own command line in place of the bare rerun): a run
// provably dead (journal.OwnerDead) is repaired — repair takes its locks
// over, whether or not it left a host to put back — and a holder rollout
// cannot prove dead (another machine, a live pid, an etcd lease) is
// unlocked first by `rollout unlock`, which shows the locks and asks.
func lockRefusal(err error, planFile, kind string) error {
	rerun := "rollout " + kind + " " + planFile
	repair := "rollout repair " + planFile + " --yes"
	var le *journal.LockedError
	if errors.As(err, &le) {
		if dead, why := journal.OwnerDead(le.Info); dead {
			return refuse(repair+" && "+rerun+"  # repair takes the dead run's locks over and puts back what it left",
				"%v\nthat run is dead: %s; it may have left hosts drained", err, why)
		}
	}
	return refuse("rollout unlock "+planFile+" && "+repair+" && "+rerun+
		"  # only if that run is dead: unlock shows its locks and asks; or wait for it to finish (or for its lock to expire) and rerun",
		"%v", err)
}

// lbRefusal refuses a run whose load balancer preflight failed, with the
// fix for what actually went wrong: a socket that cannot be reached or is
// full is not a typo in the drain block.
func (r *run) lbRefusal(err error) error {
	plan := r.pr.Req.PlanFile
	next := "rollout validate " + plan + "  # once the drain block (backend/server names, endpoints) is fixed"
	if r.env.Hint != nil {
		if h := r.env.Hint(err); h != "" {
			next = "rollout " + r.opts.Kind + " " + plan + "  # once this is done: " + h
		}
	}
	return refuse(next, "load balancer: %v", err)
}

func (r *run) connectRefusal(err error, unreachable []*inventory.Host) error {
	next := connectHint(unreachable, r.pr, r.opts.Kind)
	if r.env.Hint != nil {
		if h := r.env.Hint(err); h != "" {
			next = "rollout " + r.opts.Kind + " " + r.pr.Req.PlanFile + "  # once this is done: " + h
		}
	}
	return refuse(next, "connecting: %v", err)
}

// drainTimeoutSummary is the summary of a run whose failed hosts all failed
// because their sessions outlived the drain's timeout: the revision is not
// at fault, the sessions are ("" when another failure is among them).
func (r *run) drainTimeoutSummary(outcomes map[string]event.Outcome) string {
	var hosts []string
	for _, name := range r.order {
		if !Failed(outcomes[name]) || outcomes[name] == event.OutcomeNotStarted {
			continue
		}
		if outcomes[name] == event.OutcomeDrained || outcomes[name] == event.OutcomeUnknown {
			return ""
		}
		r.mu.Lock()
		msg := r.messages[name]
		r.mu.Unlock()
		if !strings.Contains(msg, "(drain timeout)") {
			return ""
		}
		hosts = append(hosts, name)
	}
	if len(hosts) == 0 {
		return ""
	}
	return fmt.Sprintf("drain timeout on %s: sessions were still open when the drain's timeout ran out, so the host was left untouched and back in service; the revision is not at fault: raise timeout in the plan's drain block, or wait for the long sessions to end, then run the next command",
		strings.Join(hosts, ", "))
}
