package rollout

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"

	"github.com/rollout-sh/rollout/internal/transport"
	"github.com/rollout-sh/rollout/rollout/event"
	"github.com/rollout-sh/rollout/validate"
)

// Validator is how the engine has a host's files staged and checked;
// package validate holds the logic (validate.Remote, the default when
// Env.Validator is nil). Nothing it does changes a live file.
type Validator interface {
	// Stage writes files beside their destinations (validate.StagedPath
	// with tag) and runs their validators on the staged copies. err is a
	// failure to stage or to reach the host, invalid a validator's
	// rejection; staged is what to move into place or clean up. With
	// discard the copies are removed at once.
	Stage(ctx context.Context, conn transport.Runner, files []Rendered, tag string, discard bool) (staged map[string]string, err, invalid error)
	// Unstage removes staged copies, best effort.
	Unstage(ctx context.Context, conn transport.Runner, staged map[string]string)
	// Check runs the plan's whole-config check once the files are in place.
	Check(ctx context.Context, conn transport.Runner, cmd string) error
	// Preflight stages and validates on every host, removes the copies and
	// emits the preflight events; it returns the hosts that failed.
	Preflight(ctx context.Context, hosts []validate.Host, tag string, forks int, emit func(event.Event)) (failed []string, err error)
}

// validator is the run's Validator.
func (r *run) validator() Validator {
	if r.env.Validator != nil {
		return r.env.Validator
	}
	return validate.Remote{}
}

// stageTag names a step's staged copies in this run ("stage-r-…").
func (r *run) stageTag(step string) string { return step + "-" + r.opts.RunID }

// preflight stages and validates everywhere before any host is drained:
// nothing live is touched, and a failure on any host stops the run.
func (r *run) preflight(ctx context.Context, todo []string) error {
	hosts := make([]validate.Host, len(todo))
	for i, n := range todo {
		h := r.hosts[n]
		hosts[i] = validate.Host{Name: n, Conn: h.conn, Files: h.t.Files, Prepare: r.prepareHost(h)}
	}
	var mu sync.Mutex
	why := map[string]string{} // host -> its preflight_host message
	emit := func(e event.Event) {
		if e.Event == event.PreflightHost && e.Status == event.StatusFailed {
			mu.Lock()
			why[e.Host] = e.Message
			mu.Unlock()
		}
		r.emit(e)
	}
	failed, err := r.validator().Preflight(ctx, hosts, r.stageTag("preflight"), r.opts.Forks, emit)
	if err != nil || ctx.Err() != nil {
		return ErrInterrupted
	}
	if len(failed) > 0 {
		for _, n := range todo {
			r.setOutcome(n, event.OutcomeNotStarted, "preflight failed")
		}
		return newPreflightError(failed, why)
	}
	return nil
}

// PreflightError is a preflight that failed: nothing was changed. Its
// message says what failed, in words, on which hosts (in run order).
type PreflightError struct {
	Problems []PreflightProblem // in order of their first host
}

// PreflightProblem is one reason preflight failed, and its hosts.
type PreflightProblem struct {
	What  string // "file app.conf (conf/app.conf.tmpl@09a536a) rejected by its validator"
	Hosts []string
}

func newPreflightError(failed []string, why map[string]string) *PreflightError {
	e := &PreflightError{}
	at := map[string]int{}
	for _, h := range failed {
		what := preflightWhat(why[h])
		i, ok := at[what]
		if !ok {
			i = len(e.Problems)
			at[what] = i
			e.Problems = append(e.Problems, PreflightProblem{What: what})
		}
		e.Problems[i].Hosts = append(e.Problems[i].Hosts, h)
	}
	return e
}

func (e *PreflightError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = fmt.Sprintf("%s on %s", p.What, hostCount(p.Hosts))
	}
	return "preflight: " + strings.Join(parts, "; ") + "; nothing was changed"
}

// Unwrap makes a failed preflight a failed run (exit 1).
func (e *PreflightError) Unwrap() error { return ErrRunFailed }

// hostCount is "4 hosts (web1, web2, web3, web4)", at most 8 names.
func hostCount(hosts []string) string {
	names := hosts
	if len(names) > 8 {
		names = append(append([]string{}, names[:8]...), fmt.Sprintf("and %d more", len(hosts)-8))
	}
	noun := "hosts"
	if len(hosts) == 1 {
		noun = "host"
	}
	return fmt.Sprintf("%d %s (%s)", len(hosts), noun, strings.Join(names, ", "))
}

// preflightWhat is a preflight_host message in the words an operator reads
// once: the validator's verdict on a file, or the message's first line.
// The full message (the validator's output) is in the preflight events.
func preflightWhat(msg string) string {
	if m := rejectedFile.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("file %s (%s) rejected by its validator", m[1], m[2])
	}
	if m := stagingFile.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("file %s could not be staged", m[1])
	}
	first, _, _ := strings.Cut(msg, "\n")
	if first = strings.TrimSpace(first); first == "" {
		return "failed"
	}
	return first
}

// the messages of validate.Remote.Stage
var (
	rejectedFile = regexp.MustCompile(`^file "([^"]+)" from (\S+): validator `)
	stagingFile  = regexp.MustCompile(`^file "([^"]+)": staging beside `)
)
