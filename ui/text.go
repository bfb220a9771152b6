package ui

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/rollout-sh/rollout/rollout/event"
)

// Column widths of an event line. The host column is sized from run_start
// (the longest host name, within these bounds).
const (
	minHostWidth = 6
	maxHostWidth = 24
	whatWidth    = 10
	statusWidth  = 8
)

// formatter turns events into the human-readable lines shared by the plain
// view and the TUI log pane. Its column widths come from run_start.
type formatter struct {
	hostWidth  int
	batchWidth int
}

func newFormatter() formatter {
	return formatter{hostWidth: minHostWidth, batchWidth: len("[batch 9]")}
}

// observe adjusts the columns to the run a run_start event describes.
func (f *formatter) observe(e event.Event) {
	if e.Event != event.RunStart {
		return
	}
	f.hostWidth = hostColumnWidth(e.Batches)
	f.batchWidth = len(fmt.Sprintf("[batch %d]", max(len(e.Batches), 1)))
}

func hostColumnWidth(batches [][]string) int {
	w := minHostWidth
	for _, b := range batches {
		for _, h := range b {
			w = max(w, len(h))
		}
	}
	return min(w, maxHostWidth)
}

// paintFunc colours a status word; identity when there is no colour.
type paintFunc func(word string) string

func noPaint(s string) string { return s }

// format returns the text of one event: a first line, then continuation
// lines (diagnostics of a failed host). paint colours the status word.
func (f formatter) format(e event.Event, paint paintFunc) []string {
	if paint == nil {
		paint = noPaint
	}
	what, status, detail := describe(e)

	var b strings.Builder
	if e.Time.IsZero() {
		b.WriteString("--:--:--")
	} else {
		b.WriteString(e.Time.Format("15:04:05"))
	}
	b.WriteByte(' ')
	b.WriteString(pad(e.Host, f.hostWidth))
	b.WriteByte(' ')
	batch := ""
	if e.Batch > 0 {
		batch = fmt.Sprintf("[batch %d]", e.Batch)
	}
	b.WriteString(pad(batch, f.batchWidth))
	b.WriteByte(' ')
	b.WriteString(pad(what, whatWidth))
	if status != "" {
		b.WriteByte(' ')
		b.WriteString(paint(status))
		if detail != "" {
			b.WriteString(strings.Repeat(" ", max(statusWidth-len(status), 0)+1))
		}
	} else if detail != "" {
		b.WriteByte(' ')
	}
	b.WriteString(detail)

	lines := []string{strings.TrimRight(b.String(), " ")}
	if e.Event == event.HostDone && e.Diagnostics != "" {
		for _, d := range strings.Split(strings.TrimRight(e.Diagnostics, "\n"), "\n") {
			lines = append(lines, "    | "+strings.TrimRight(d, " \t\r"))
		}
	}
	if e.Event == event.RemoteOutput && e.Remote != nil {
		lines = append(lines, remoteLines(e.Host, e.Remote)...)
	}
	if e.Event == event.Hook && e.Remote != nil && e.Status == event.StatusFailed { // what a failed hook printed
		where := e.Host
		if where == "" {
			where = "controller"
		}
		lines = append(lines, remoteLines(where, e.Remote)...)
	}
	return lines
}

// describe splits an event into its "what" column, status word and detail.
func describe(e event.Event) (what, status, detail string) {
	msg := oneLine(e.Message)
	switch e.Event {
	case event.RunStart:
		parts := []string{}
		if e.Plan != "" {
			parts = append(parts, "plan "+e.Plan)
		}
		if e.Revision != "" {
			parts = append(parts, "revision "+shortRev(e.Revision))
		}
		if e.Scope != "" {
			parts = append(parts, "scope "+e.Scope)
		}
		if e.RolledBackFrom != "" {
			back := "rolling back from " + shortRev(e.RolledBackFrom)
			if e.Reason != "" {
				back += " (" + e.Reason + ")"
			}
			parts = append(parts, back)
		}
		n := 0
		for _, b := range e.Batches {
			n += len(b)
		}
		parts = append(parts, fmt.Sprintf("%s in %s", plural(n, "host"), plural(len(e.Batches), "batch")))
		if e.Operator != "" {
			parts = append(parts, "by "+e.Operator)
		}
		return "start", "", join(strings.Join(parts, ", "), msg)
	case event.PreflightStart:
		return "preflight", event.StatusRunning, join(plural(len(e.Hosts), "host"), msg)
	case event.PreflightHost, event.PreflightDone:
		return "preflight", e.Status, msg
	case event.BatchStart:
		hosts := strings.Join(e.Hosts, ", ")
		if e.Wave != "" {
			hosts = "wave " + e.Wave + ": " + hosts
		}
		return "batch", "start", join(hosts, msg)
	case event.BatchDone:
		return "batch", e.Status, msg
	case event.HostPhase:
		return string(e.Phase), e.Status, msg
	case event.DrainSessions:
		d := ""
		if e.Sessions != nil {
			d = sessionsText(*e.Sessions)
		}
		return string(event.PhaseDrain), event.StatusRunning, join(d, msg)
	case event.HealthProgress:
		d := ""
		if e.WindowElapsed != nil && e.Window != nil {
			d = "stable " + seconds(*e.WindowElapsed) + " of " + seconds(*e.Window)
		}
		if msg != "" {
			msg = "last probe: " + msg
		}
		return string(event.PhaseHealth), event.StatusRunning, join(d, msg)
	case event.RampStep:
		d := ""
		if e.Weight != nil {
			d = fmt.Sprintf("weight %d%%", *e.Weight)
		}
		return "ramp", event.StatusRunning, join(d, msg)
	case event.HostDone:
		return "done", e.Status, join(shortRev(e.Revision), msg)
	case event.Waiting:
		return "waiting", e.Status, msg
	case event.Approved:
		if e.Operator != "" {
			msg += " (operator " + e.Operator + ")"
		}
		return "approved", "", msg
	case event.Analysis:
		return "analysis", e.Status, analysisDetail(e)
	case event.RemoteOutput:
		return string(e.Phase), e.Status, remoteDetail(e)
	case event.Log:
		return "log", e.Level, msg
	case event.LBReload:
		return "lb reload", e.Status, msg
	case event.RunDone:
		d := ""
		if e.ExitCode != nil {
			d = fmt.Sprintf("exit %d", *e.ExitCode)
		}
		return "finished", e.Status, join(d, countsText(e.Counts))
	}
	return string(e.Event), e.Status, msg
}

// outcomeOrder is the order counts and icons are listed in.
var outcomeOrder = []event.Outcome{
	event.OutcomeOK,
	event.OutcomeSkipped,
	event.OutcomeRolledBack,
	event.OutcomeFailed,
	event.OutcomeDrained,
	event.OutcomeUnknown,
	event.OutcomeNotStarted,
}

// countsText lists the non-zero counts of a run_done: "3 ok, 1 drained".
func countsText(c map[event.Outcome]int) string {
	var parts []string
	seen := map[event.Outcome]bool{}
	for _, o := range outcomeOrder {
		seen[o] = true
		if c[o] != 0 {
			parts = append(parts, fmt.Sprintf("%d %s", c[o], o))
		}
	}
	var rest []string
	for o, n := range c {
		if !seen[o] && n != 0 {
			rest = append(rest, fmt.Sprintf("%d %s", n, o))
		}
	}
	sort.Strings(rest)
	return strings.Join(append(parts, rest...), ", ")
}

func sessionsText(n int) string {
	if n == 1 {
		return "1 session left"
	}
	return fmt.Sprintf("%d sessions left", n)
}

// shortRev shortens a full hex commit to 7 characters; tags and other
// names are kept (cut at 20).
func shortRev(r string) string {
	if len(r) == 40 && isHex(r) {
		return r[:7]
	}
	if len(r) > 20 {
		return r[:19] + "…"
	}
	return r
}

func isHex(s string) bool {
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// seconds renders a number of seconds briefly: "5s", "2.5s", "1m30s".
func seconds(s float64) string {
	if s < 0 {
		s = 0
	}
	if s < 60 && s != float64(int(s)) {
		return fmt.Sprintf("%.1fs", s)
	}
	return duration(time.Duration(s * float64(time.Second)))
}

// duration renders an elapsed time to the second: "12s", "3m05s", "1h02m".
func duration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	d = d.Truncate(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	default:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	if strings.HasSuffix(word, "ch") {
		return fmt.Sprintf("%d %ses", n, word)
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// join joins non-empty parts with two spaces.
func join(parts ...string) string {
	out := parts[:0:0]
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, "  ")
}

// oneLine keeps a message on one line: newlines become " / ".
func oneLine(s string) string {
	s = strings.TrimRight(s, "\n")
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' }), " / ")
}

// pad pads s with spaces to w columns; longer strings are kept whole.
func pad(s string, w int) string {
	if n := len([]rune(s)); n < w {
		return s + strings.Repeat(" ", w-n)
	}
	return s
}

// remoteDetail is a remote_output's line: the command and how it exited.
func remoteDetail(e event.Event) string {
	if e.Remote == nil {
		return oneLine(e.Message)
	}
	exit := fmt.Sprintf("exit %d", e.Remote.ExitStatus)
	if e.Remote.ExitStatus == event.RemoteExitUnknown {
		exit = "did not finish"
	}
	out := ""
	if strings.TrimSpace(e.Remote.Output) == "" {
		out = "no output"
	}
	return join(oneLine(e.Message), "`"+oneLine(e.Remote.Command)+"`", exit, out)
}

// remoteLines are a command's output lines, each prefixed by its host (as
// ansible -v shows them), after a note of what was left out.
func remoteLines(host string, r *event.Remote) []string {
	if strings.TrimSpace(r.Output) == "" {
		return nil
	}
	prefix := "    " + host + " | "
	var out []string
	if r.Omitted > 0 {
		out = append(out, prefix+fmt.Sprintf("… (%d bytes before these lines left out)", r.Omitted))
	}
	for _, l := range strings.Split(r.Output, "\n") {
		out = append(out, strings.TrimRight(prefix+strings.TrimRight(l, " \t\r"), " "))
	}
	return out
}
