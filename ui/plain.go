package ui

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
	"github.com/muesli/termenv"

	"github.com/rollout-sh/rollout/rollout/event"
)

// PlainOptions configure the plain view.
type PlainOptions struct {
	Color   bool // colour the status words (decide with ColorEnabled)
	Verbose bool // every progress event and debug logs; summary messages uncut
	Width   int  // width the summary table is fitted to; 0 = 80
}

// Plain writes one line per event and a summary table at run_done. It is an
// event.Sink and safe for concurrent use.
//
// Without Verbose, repeated progress events are thinned out: drain_sessions
// only when the count changes, health_progress only when the stable window
// starts or restarts, and log events of level debug and remote_output (what
// the restart and validators printed on each host) not at all.
type Plain struct {
	mu    sync.Mutex
	w     io.Writer
	opts  PlainOptions
	f     formatter
	paint paintFunc
	err   error

	order []string // hosts in run_start order, then any others
	done  map[string]event.Event
	thin  thinner
	// preflight failures by message, in first-seen order: printed once per
	// message with its hosts when preflight_done comes (without Verbose)
	pfMsgs  []string
	pfHosts map[string][]string
}

// NewPlain returns a plain view writing to w.
func NewPlain(w io.Writer, opts PlainOptions) *Plain {
	if opts.Width <= 0 {
		opts.Width = 80
	}
	p := &Plain{
		w:     w,
		opts:  opts,
		f:     newFormatter(),
		paint: noPaint,
		done:  map[string]event.Event{},
		thin:  newThinner(),
	}
	if opts.Color {
		r := lipgloss.NewRenderer(w)
		if r.ColorProfile() == termenv.Ascii {
			r.SetColorProfile(termenv.ANSI)
		}
		p.paint = statusPainter(r)
	}
	return p
}

// Err returns the first error writing to the writer, if any.
func (p *Plain) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// Emit writes the event.
func (p *Plain) Emit(e event.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.f.observe(e)
	p.track(e)
	if !p.opts.Verbose && e.Event == event.PreflightHost && e.Status == event.StatusFailed {
		if p.pfHosts == nil {
			p.pfHosts = map[string][]string{}
		}
		if _, seen := p.pfHosts[e.Message]; !seen {
			p.pfMsgs = append(p.pfMsgs, e.Message)
		}
		p.pfHosts[e.Message] = append(p.pfHosts[e.Message], e.Host)
		return
	}
	if !p.shown(e) {
		return
	}
	lines := p.f.format(e, p.paint)
	if e.Event == event.PreflightDone {
		lines = append(lines, p.preflightGroups()...)
	}
	if e.Event == event.RunDone {
		lines = append(lines, p.summary(e)...)
	}
	p.write(strings.Join(lines, "\n") + "\n")
}

// preflightGroups lists each distinct preflight failure once, with the
// hosts it happened on: the same bad file on 200 hosts is one problem.
func (p *Plain) preflightGroups() []string {
	// in the run's order (the inventory's), not the order hosts finished in
	rank := make(map[string]int, len(p.order))
	for i, h := range p.order {
		rank[h] = i + 1
	}
	byRank := func(a, b string) int { return cmp.Compare(rankOf(rank, a), rankOf(rank, b)) }
	for _, hosts := range p.pfHosts {
		slices.SortStableFunc(hosts, byRank)
	}
	slices.SortStableFunc(p.pfMsgs, func(a, b string) int { return byRank(p.pfHosts[a][0], p.pfHosts[b][0]) })
	var out []string
	for _, msg := range p.pfMsgs {
		hosts := p.pfHosts[msg]
		names := hosts
		if len(names) > 8 {
			names = append(append([]string{}, names[:8]...), fmt.Sprintf("and %d more", len(hosts)-8))
		}
		out = append(out, fmt.Sprintf("preflight failed on %d host(s) (%s):", len(hosts), strings.Join(names, ", ")))
		for _, l := range strings.Split(strings.TrimRight(msg, "\n"), "\n") {
			out = append(out, "    | "+strings.TrimRight(l, " \t\r"))
		}
	}
	p.pfMsgs, p.pfHosts = nil, nil
	return out
}

// rankOf is a host's place in the run (1-based), after every known host
// when the run did not name it.
func rankOf(rank map[string]int, h string) int {
	if r, ok := rank[h]; ok {
		return r
	}
	return len(rank) + 1
}

func (p *Plain) write(s string) {
	if p.err != nil {
		return
	}
	if _, err := io.WriteString(p.w, s); err != nil {
		p.err = err
	}
}

// track remembers what the summary table and the thinning need.
func (p *Plain) track(e event.Event) {
	switch e.Event {
	case event.RunStart:
		for _, b := range e.Batches {
			for _, h := range b {
				p.addHost(h)
			}
		}
	case event.BatchStart, event.PreflightStart:
		for _, h := range e.Hosts {
			p.addHost(h)
		}
	case event.HostDone:
		p.addHost(e.Host)
		p.done[e.Host] = e
	}
}

func (p *Plain) addHost(h string) {
	if h == "" {
		return
	}
	for _, o := range p.order {
		if o == h {
			return
		}
	}
	p.order = append(p.order, h)
}

// shown reports whether the event gets a line (see Plain).
func (p *Plain) shown(e event.Event) bool {
	if p.opts.Verbose {
		return true
	}
	return p.thin.keep(e)
}

// thinner drops repeated progress events: a drain_sessions line only when
// the count changes, a health_progress line only when the window starts
// (again). The plain view and the TUI's log pane both use it.
type thinner struct {
	sessions map[string]int
	window   map[string]float64
}

func newThinner() thinner {
	return thinner{sessions: map[string]int{}, window: map[string]float64{}}
}

func (t thinner) keep(e event.Event) bool {
	switch e.Event {
	case event.Log:
		return e.Level != "debug"
	case event.RemoteOutput:
		return false // what a command printed on a host: -v (it is journaled)
	case event.DrainSessions:
		if e.Sessions == nil {
			return false
		}
		last, seen := t.sessions[e.Host]
		t.sessions[e.Host] = *e.Sessions
		return !seen || last != *e.Sessions
	case event.HealthProgress:
		if e.WindowElapsed == nil {
			return false
		}
		last, seen := t.window[e.Host]
		t.window[e.Host] = *e.WindowElapsed
		return !seen || *e.WindowElapsed < last
	case event.HostPhase:
		// A new phase starts the thinning afresh.
		delete(t.sessions, e.Host)
		delete(t.window, e.Host)
	}
	return true
}

// summary renders the table printed after run_done: one row per host, then
// the next command on its own line.
func (p *Plain) summary(e event.Event) []string {
	rows := summaryRows(p.order, p.done)
	if !p.opts.Verbose {
		rows = groupUniform(rows)
	}
	table := renderTable(rows, p.opts.Width, !p.opts.Verbose, p.paint)
	out := append([]string{""}, table...)
	switch {
	case e.Status == "refused":
		// the command prints a refusal once, on stderr, with its next command
	case e.Next == "":
		if e.Message != "" {
			out = append(out, e.Message)
		}
	default:
		// the message may name the command too; the next: line is only
		// ever the command, so it works when pasted
		if e.Message != "" && e.Message != e.Next {
			out = append(out, e.Message)
		}
		out = append(out, "next: "+e.Next)
	}
	return out
}

// summaryRows returns host, outcome, revision and message per host; a host
// without a host_done event shows "-".
func summaryRows(order []string, done map[string]event.Event) [][4]string {
	rows := [][4]string{{"HOST", "OUTCOME", "REVISION", "MESSAGE"}}
	for _, h := range order {
		d, ok := done[h]
		if !ok {
			rows = append(rows, [4]string{h, "-", "-", ""})
			continue
		}
		rev := shortRev(d.Revision)
		if rev == "" {
			rev = "-"
		}
		rows = append(rows, [4]string{h, d.Status, rev, oneLine(d.Message)})
	}
	return rows
}

// groupAbove is the number of hosts above which a summary folds what is
// uniform: at 10,000 hosts a person reads "9,996 hosts ok", then the four
// that need them.
const groupAbove = 20

// groupUniform folds, in a summary of more than groupAbove hosts, the rows
// that need no one — ok, skipped, not_started, stopped — into one row per
// outcome, revision and message ("9,996 hosts"), at the place of their
// first host; every other row (failed, rolled back, drained, unknown, no
// host_done) stays, one per host.
func groupUniform(rows [][4]string) [][4]string {
	if len(rows)-1 <= groupAbove {
		return rows
	}
	type key struct{ outcome, rev, msg string }
	count := map[key]int{}
	for _, r := range rows[1:] {
		if uniform(r[1]) {
			count[key{r[1], r[2], r[3]}]++
		}
	}
	out := [][4]string{rows[0]}
	placed := map[key]bool{}
	for _, r := range rows[1:] {
		k := key{r[1], r[2], r[3]}
		switch {
		case !uniform(r[1]) || count[k] == 1:
			out = append(out, r)
		case !placed[k]:
			placed[k] = true
			out = append(out, [4]string{thousands(count[k]) + " hosts", r[1], r[2], r[3]})
		}
	}
	return out
}

// uniform reports whether an outcome needs no one.
func uniform(outcome string) bool {
	switch event.Outcome(outcome) {
	case event.OutcomeOK, event.OutcomeSkipped, event.OutcomeNotStarted, event.OutcomeStopped:
		return true
	}
	return false
}

// thousands is n with thousands separators: 9,996.
func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// renderTable lays out rows in columns; the last column is cut to width
// when cut is set. The outcome column (index 1) is painted.
func renderTable(rows [][4]string, width int, cut bool, paint paintFunc) []string {
	var w [3]int
	for _, r := range rows {
		for i := range w {
			w[i] = max(w[i], ansi.StringWidth(r[i]))
		}
	}
	lines := make([]string, 0, len(rows))
	for i, r := range rows {
		outcome := r[1]
		if i > 0 {
			outcome = paint(outcome)
		}
		line := r[0] + spaces(w[0]-ansi.StringWidth(r[0])+2) +
			outcome + spaces(w[1]-ansi.StringWidth(r[1])+2) +
			r[2] + spaces(w[2]-ansi.StringWidth(r[2])+2) + r[3]
		line = strings.TrimRight(line, " ")
		if cut && ansi.StringWidth(line) > width {
			line = ansi.Truncate(line, width, "…")
		}
		lines = append(lines, line)
	}
	return lines
}

func spaces(n int) string {
	if n <= 0 {
		return ""
	}
	return strings.Repeat(" ", n)
}

// statusPainter colours status and outcome words with r's profile.
func statusPainter(r *lipgloss.Renderer) paintFunc {
	green := r.NewStyle().Foreground(lipgloss.Color("2"))
	red := r.NewStyle().Foreground(lipgloss.Color("1")).Bold(true)
	yellow := r.NewStyle().Foreground(lipgloss.Color("3"))
	cyan := r.NewStyle().Foreground(lipgloss.Color("6"))
	faint := r.NewStyle().Faint(true)
	return func(word string) string {
		switch word {
		case event.StatusOK, string(event.OutcomeSkipped):
			return green.Render(word)
		case event.StatusFailed, string(event.OutcomeDrained), string(event.OutcomeUnknown), "error":
			return red.Render(word)
		case string(event.OutcomeRolledBack), string(event.WaitApproval), "warn", "warning", "pause":
			return yellow.Render(word)
		case event.StatusRunning, "start":
			return cyan.Render(word)
		case string(event.OutcomeNotStarted), "debug":
			return faint.Render(word)
		}
		return word
	}
}

var _ event.Sink = (*Plain)(nil)
