// Package event defines the one stream of typed events a run produces.
// The plain, JSON and TUI views and the journal are all views of it.
package event

import "time"

// Kind names an event. The string values are a stable interface: CI parses
// them (docs/json-events.md).
type Kind string

const (
	RunStart       Kind = "run_start"       // Schema, Plan, Revision, Scope, Hosts (all targeted), Batches (those to change), Message (apply|rollback)
	PreflightStart Kind = "preflight_start" // Hosts
	PreflightHost  Kind = "preflight_host"  // Host, Status ok|failed, Message
	PreflightDone  Kind = "preflight_done"  // Status ok|failed
	BatchStart     Kind = "batch_start"     // Batch, Hosts
	BatchDone      Kind = "batch_done"      // Batch, Status
	HostPhase      Kind = "host_phase"      // Host, Batch, Phase, Status running|ok|failed
	DrainSessions  Kind = "drain_sessions"  // Host, Sessions
	HealthProgress Kind = "health_progress" // Host, WindowElapsed, Window, Message (last probe)
	RampStep       Kind = "ramp_step"       // Host, Weight
	HostDone       Kind = "host_done"       // Host, Status (an Outcome), Revision, Message, Diagnostics
	Waiting        Kind = "waiting"         // Message: pause between batches or approval needed
	Approved       Kind = "approved"        // Batch (the one that may now start), Message (by whom), Operator
	Log            Kind = "log"             // Message, Level
	RunDone        Kind = "run_done"        // Status, Counts, ExitCode, Message (what happened), Next (the command to run next)
	HostState      Kind = "host_state"      // Host, Revision, Message: what rollout knows of a host before it is touched (skip, change, drift)
	Analysis       Kind = "analysis"        // Host, Batch, Status pass|hold|fail, Message (the reason), Analysis (the figures)
	LBReload       Kind = "lb_reload"       // Status ok|failed, Message (the endpoint, old → new process, what was re-applied), Hosts (those whose state was re-applied)
	Hook           Kind = "hook"            // Status running|ok|failed, Message (the hook, when, where; why it failed), Batch (after_batch), Host (its on host), Remote (when it ended: the command, exit status, output)
)

// Phase is one step of the per-host pipeline.
type Phase string

const (
	PhaseLock     Phase = "lock"
	PhaseDrain    Phase = "drain"
	PhaseStage    Phase = "stage"
	PhaseValidate Phase = "validate"
	PhaseInstall  Phase = "install"
	PhaseCheck    Phase = "check"
	PhaseRestart  Phase = "restart"
	PhaseHealth   Phase = "health"
	PhaseUndrain  Phase = "undrain"
	PhaseRecord   Phase = "record"
	PhaseRestore  Phase = "restore"
	PhaseRollback Phase = "rollback"
	PhaseDiagnose Phase = "diagnose"
	PhaseConnect  Phase = "connect"
	PhaseBake     Phase = "bake" // serving at full weight, judged by canary analysis before the next batch
)

// Outcome is how a host ended a run.
type Outcome string

const (
	OutcomeOK         Outcome = "ok"
	OutcomeSkipped    Outcome = "skipped"
	OutcomeFailed     Outcome = "failed"      // failed before restart; previous files restored, serving
	OutcomeDrained    Outcome = "drained"     // failed after restart; left drained for inspection
	OutcomeRolledBack Outcome = "rolled_back" // failed, back on its previous revision and serving
	OutcomeNotStarted Outcome = "not_started" // never touched: the run halted first
	OutcomeUnknown    Outcome = "unknown"     // the run was killed while the host was in flight
	OutcomeStopped    Outcome = "stopped"     // the operator stopped the run before this host changed; untouched
)

// Status values used in Status fields.
const (
	StatusRunning = "running"
	StatusOK      = "ok"
	StatusFailed  = "failed"
)

// Schema is the version of the JSON event schema (docs/json-events.md),
// carried by run_start. It changes only when a field is renamed or removed
// or a value changes meaning; adding fields or kinds keeps it.
const Schema = 1

// ArtifactRef is the release of one artifact on a host.
type ArtifactRef struct {
	ID     string `json:"id"`     // <dest>/releases/<id>
	Source string `json:"source"` // URL or controller path
	SHA256 string `json:"sha256"`
}

// Event is one thing that happened. Zero-valued optional fields are left
// out of JSON.
type Event struct {
	Time     time.Time `json:"time"`
	Run      string    `json:"run"`
	Event    Kind      `json:"event"`
	Host     string    `json:"host,omitempty"`
	Batch    int       `json:"batch,omitempty"` // 1-based
	Wave     string    `json:"wave,omitempty"`  // batch_start, batch_done: the batch's wave (plans with wave blocks)
	Phase    Phase     `json:"phase,omitempty"`
	Status   string    `json:"status,omitempty"`
	Revision string    `json:"revision,omitempty"`
	Message  string    `json:"message,omitempty"`

	// run_start
	Schema  int        `json:"schema,omitempty"`
	Plan    string     `json:"plan,omitempty"`
	Scope   string     `json:"scope,omitempty"`
	Batches [][]string `json:"batches,omitempty"`
	// Owner (run_start): who runs it, user@machine
	Owner string `json:"owner,omitempty"`
	// Operator (run_start, approved, run_done): the person (or CI actor)
	// the run is done for: --operator, ROLLOUT_OPERATOR, the CI's
	// variables, else user@machine; OperatorURL: the CI run, when known
	Operator    string `json:"operator,omitempty"`
	OperatorURL string `json:"operator_url,omitempty"`
	// RolledBackFrom (run_start of a rollback; host_done rolled_back):
	// the revision the hosts were taken back from; Reason says why
	RolledBackFrom string `json:"rolled_back_from,omitempty"`
	Reason         string `json:"reason,omitempty"`
	// Warnings: what the run's preparation warned about (the work tree's
	// changes not deployed, an inventory not pinned, ...)
	Warnings []string `json:"warnings,omitempty"`
	// preflight_start, batch_start
	Hosts []string `json:"hosts,omitempty"`
	// drain_sessions
	Sessions *int `json:"sessions,omitempty"`
	// health_progress (seconds)
	WindowElapsed *float64 `json:"window_elapsed_s,omitempty"`
	Window        *float64 `json:"window_s,omitempty"`
	// ramp_step (percent of configured weight)
	Weight *int `json:"weight,omitempty"`
	// host_done
	Diagnostics string `json:"diagnostics,omitempty"`
	// VarsSHA256 (host_done ok): the hash of the variables the host's
	// files were rendered with (also in its current.json)
	VarsSHA256 string `json:"vars_sha256,omitempty"`
	// Artifacts (host_done ok): each artifact block's release now live
	// on the host (also in its current.json)
	Artifacts map[string]ArtifactRef `json:"artifacts,omitempty"`
	// analysis
	Analysis *AnalysisFigures `json:"analysis,omitempty"`
	Remote   *Remote          `json:"remote,omitempty"` // remote_output (remote.go)
	// log
	Level string `json:"level,omitempty"`
	// run_done
	Counts   map[Outcome]int `json:"counts,omitempty"`
	ExitCode *int            `json:"exit_code,omitempty"`
	Next     string          `json:"next,omitempty"` // a command that works when pasted
}

// AnalysisFigures is the evidence behind one canary analysis verdict: the
// host just changed (canary) and the servers not yet changed (baseline),
// over the same window, with the plan's limits. Rates are fractions.
type AnalysisFigures struct {
	Kind     string         `json:"kind"`      // haproxy | command
	Step     string         `json:"step"`      // "ramp 10%", "bake"
	Verdict  string         `json:"verdict"`   // pass | hold | fail
	WindowS  float64        `json:"window_s"`  // since the host came back
	ElapsedS float64        `json:"elapsed_s"` // in this step
	Canary   CohortFigures  `json:"canary"`
	Baseline CohortFigures  `json:"baseline"`
	PerLB    []LBFigures    `json:"per_lb,omitempty"`
	Limits   AnalysisLimits `json:"limits"`
	Notes    []string       `json:"notes,omitempty"`
}

// CohortFigures is one cohort over the window.
type CohortFigures struct {
	Servers   []string `json:"servers"`
	Requests  int64    `json:"requests"`
	Errors    int64    `json:"errors"`
	ErrorRate float64  `json:"error_rate"`
	Retries   int64    `json:"retries,omitempty"`
	RTimeMS   *float64 `json:"rtime_ms,omitempty"` // mean response time, when the source has it
}

// LBFigures is the two cohorts as one load balancer saw them.
type LBFigures struct {
	LB       string        `json:"lb"`
	Canary   CohortFigures `json:"canary"`
	Baseline CohortFigures `json:"baseline"`
}

// AnalysisLimits are the plan's analysis settings.
type AnalysisLimits struct {
	MaxErrorRate            *float64 `json:"max_error_rate,omitempty"`
	MaxErrorRateIncrease    *float64 `json:"max_error_rate_increase,omitempty"`
	MaxResponseTimeIncrease *float64 `json:"max_response_time_increase,omitempty"`
	MinRequests             int      `json:"min_requests"`
	IntervalS               float64  `json:"interval_s"`
	DeadlineS               float64  `json:"deadline_s"`
}

// Sink receives events. Implementations must be safe for concurrent use.
type Sink interface {
	Emit(Event)
}

// Int returns a pointer to v, for optional fields.
func Int(v int) *int { return &v }

// Float returns a pointer to v, for optional fields.
func Float(v float64) *float64 { return &v }
