package ui

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/progress"
	"github.com/charmbracelet/bubbles/viewport"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"

	"github.com/rollout-sh/rollout/rollout/event"
)

// Size used until the terminal reports one.
const (
	defaultWidth  = 80
	defaultHeight = 24
	maxLogLines   = 1000
)

// Notices shown on the status line after a key.
const (
	noticeInterrupt1 = "stopping safely… press ctrl+c again to stop at once"
	noticeInterrupt2 = "stopping at once…"
	noticeQuitEarly  = "run in progress: a to abort"
	noticePause      = "pause requested: the run stops after the current batch (r to resume)"
	noticeResume     = "resume requested"
	noticeAbort      = "abort requested: finishing what is in flight, then stopping safely"
	noticeApprove    = "approved"
	noticeNoApproval = "nothing to approve"
)

// steers are the keys that steer a running run: what each asks of the
// Controls, and the notice that says so.
var steers = map[string]struct {
	ask    func(Controls)
	notice string
}{
	"p": {Controls.Pause, noticePause},
	"r": {Controls.Resume, noticeResume},
	"a": {Controls.Abort, noticeAbort},
}

type tickMsg time.Time

// hostState is what the events have said about one host.
type hostState struct {
	name     string
	batch    int
	phase    event.Phase
	status   string
	message  string
	first    time.Time // first event for the host
	since    time.Time // start of the current phase
	sessions *int
	elapsed  *float64
	window   *float64
	weight   *int
	analysis *event.AnalysisFigures // the last canary verdict
	outcome  string
	revision string
	doneAt   time.Time
}

type batchState struct {
	num        int
	hosts      []string
	started    bool
	status     string    // from batch_done; "" while running
	start, end time.Time // batch_start and batch_done times
	wave       string    // its wave (plans with wave blocks)
}

// Model is the bubbletea model of the TUI. It renders only what the events
// it receives say: send it event.Event values as messages. It calls ctl
// when the operator presses a key. With a nil ctl it is a viewer (for a
// replay): q and ctrl+c leave at any time and the steering keys do nothing.
type Model struct {
	ctl Controls
	now func() time.Time
	st  styles
	f   formatter
	bar progress.Model
	vp  viewport.Model

	width, height int

	plan, revision, scope string
	started               time.Time
	preflight             string
	preflightHosts        int
	batches               []*batchState
	hosts                 map[string]*hostState
	current               int
	waiting               *event.Event
	thin                  thinner
	approval              *event.Event // a waiting for approval not yet approved; a pause shown over it keeps it pending
	done                  *event.Event
	lastEvent, lastRecv   time.Time

	log        []string // log pane lines as formatted
	logFit     []string // the same, cut to fitWidth
	fitWidth   int
	follow     bool
	notice     string
	interrupts int
	help       bool
	quitting   bool
	unbatched  []string // targeted hosts in no batch (skipped: already there)
}

// NewModel returns the TUI model. now is the clock used for elapsed times
// (nil = time.Now). Styles use lipgloss's default renderer.
func NewModel(ctl Controls, now func() time.Time) Model {
	return newModel(ctl, now, lipgloss.DefaultRenderer())
}

func newModel(ctl Controls, now func() time.Time, r *lipgloss.Renderer) Model {
	if now == nil {
		now = time.Now
	}
	m := Model{
		ctl:    ctl,
		now:    now,
		st:     newStyles(r),
		f:      newFormatter(),
		thin:   newThinner(),
		bar:    progress.New(progress.WithSolidFill("4"), progress.WithColorProfile(r.ColorProfile()), progress.WithWidth(24)),
		vp:     viewport.New(defaultWidth, 5),
		hosts:  map[string]*hostState{},
		follow: true,
	}
	m.bar.PercentFormat = " %3.0f%%"
	m.layout()
	return m
}

// Done reports whether run_done has arrived.
func (m Model) Done() bool { return m.done != nil }

// Init starts the clock that refreshes elapsed times.
func (m Model) Init() tea.Cmd { return tick() }

func tick() tea.Cmd {
	return tea.Tick(time.Second, func(t time.Time) tea.Msg { return tickMsg(t) })
}

// Update handles events, keys, resizes and clock ticks.
func (m Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case event.Event:
		m.apply(msg)
		m.layout()
		return m, nil
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		m.layout()
		return m, nil
	case tickMsg:
		if m.quitting {
			return m, nil
		}
		return m, tick()
	case tea.KeyMsg:
		return m.key(msg)
	case tea.MouseMsg:
		var cmd tea.Cmd
		m.vp, cmd = m.vp.Update(msg)
		m.follow = m.vp.AtBottom()
		return m, cmd
	}
	return m, nil
}

func (m Model) key(k tea.KeyMsg) (tea.Model, tea.Cmd) {
	// Without Controls (a replay) there is nothing to steer or stop: the
	// view can be left at any time.
	running := m.done == nil && m.ctl != nil
	switch k.String() {
	case "ctrl+c":
		if !running {
			m.quitting = true
			return m, tea.Quit
		}
		m.interrupts++
		m.ctl.Interrupt()
		if m.interrupts == 1 {
			m.notice = noticeInterrupt1
		} else {
			m.notice = noticeInterrupt2
		}
	case "q":
		if !running {
			m.quitting = true
			return m, tea.Quit
		}
		m.notice = noticeQuitEarly
	case "p", "r", "a":
		if running {
			s := steers[k.String()]
			s.ask(m.ctl)
			m.notice = s.notice
		}
	case "y":
		if !running {
			break
		}
		if m.approvalPending() {
			m.ctl.Approve()
			m.notice = noticeApprove
		} else {
			m.notice = noticeNoApproval
		}
	case "?":
		m.help = !m.help
		m.layout()
	case "esc":
		m.help = false
		m.layout()
	default:
		var cmd tea.Cmd
		m.vp, cmd = m.vp.Update(k)
		m.follow = m.vp.AtBottom()
		return m, cmd
	}
	return m, nil
}

func (m Model) approvalPending() bool {
	return m.done == nil && m.approval != nil
}

// apply records what an event says.
func (m *Model) apply(e event.Event) {
	m.f.observe(e)
	m.lastEvent, m.lastRecv = e.Time, m.now()
	if m.thin.keep(e) { // the log pane is thinned like the plain view
		m.appendLog(m.f.format(e, m.st.paint)...)
	}

	switch e.Event {
	case event.RunStart:
		m.plan, m.revision, m.scope, m.started = e.Plan, e.Revision, e.Scope, e.Time
		m.batches, m.unbatched = nil, nil
		inBatch := map[string]bool{}
		for i, hosts := range e.Batches {
			m.batches = append(m.batches, &batchState{num: i + 1, hosts: append([]string(nil), hosts...)})
			for _, h := range hosts {
				m.host(h).batch = i + 1
				inBatch[h] = true
			}
		}
		// targeted hosts outside every batch: already at the revision
		for _, h := range e.Hosts {
			if !inBatch[h] {
				m.unbatched = append(m.unbatched, h)
				m.host(h)
			}
		}
	case event.PreflightStart:
		m.preflight, m.preflightHosts = event.StatusRunning, len(e.Hosts)
	case event.PreflightDone:
		m.preflight = e.Status
	case event.BatchStart:
		b := m.batch(e.Batch)
		b.started, b.start = true, e.Time
		if e.Wave != "" {
			b.wave = e.Wave
		}
		if len(e.Hosts) > 0 {
			b.hosts = append([]string(nil), e.Hosts...)
		}
		for _, h := range b.hosts {
			m.host(h).batch = e.Batch
		}
		m.current = e.Batch
		m.waiting = nil
		m.approval = nil
	case event.BatchDone:
		b := m.batch(e.Batch)
		b.status, b.end = e.Status, e.Time
	case event.HostPhase:
		h := m.touch(e)
		h.phase, h.status, h.message, h.since = e.Phase, e.Status, oneLine(e.Message), e.Time
		h.sessions, h.elapsed, h.window, h.weight = nil, nil, nil, nil
	case event.DrainSessions:
		h := m.touch(e)
		h.sessions = e.Sessions
		if h.phase == "" {
			h.phase, h.status, h.since = event.PhaseDrain, event.StatusRunning, e.Time
		}
	case event.HealthProgress:
		h := m.touch(e)
		h.elapsed, h.window = e.WindowElapsed, e.Window
	case event.RampStep:
		h := m.touch(e)
		h.weight = e.Weight
	case event.Analysis:
		h := m.touch(e)
		h.analysis = e.Analysis
	case event.HostDone:
		h := m.touch(e)
		h.outcome, h.revision, h.doneAt = e.Status, e.Revision, e.Time
		h.message = oneLine(e.Message)
	case event.Waiting:
		w := e
		m.waiting = &w
		if w.WaitReason() == event.WaitApproval {
			m.approval = &w
		}
	case event.Approved:
		if m.waiting != nil && m.waiting.WaitReason() == event.WaitApproval {
			m.waiting = nil
		} // a pause shown over the approval still holds the run
		m.approval = nil
		if m.notice == noticeApprove {
			m.notice = ""
		}
	case event.RunDone:
		d := e
		m.done = &d
		m.waiting = nil
	}
}

// touch returns the state of the event's host, noting its batch and first
// event time.
func (m *Model) touch(e event.Event) *hostState {
	h := m.host(e.Host)
	if e.Batch > 0 {
		h.batch = e.Batch
	}
	if h.first.IsZero() {
		h.first = e.Time
	}
	return h
}

func (m *Model) host(name string) *hostState {
	h, ok := m.hosts[name]
	if !ok {
		h = &hostState{name: name}
		m.hosts[name] = h
	}
	return h
}

func (m *Model) batch(n int) *batchState {
	for _, b := range m.batches {
		if b.num == n {
			return b
		}
	}
	b := &batchState{num: n}
	m.batches = append(m.batches, b)
	return b
}

func (m *Model) appendLog(lines ...string) {
	m.log = append(m.log, lines...)
	for _, l := range lines {
		m.logFit = append(m.logFit, fit(l, m.fitWidth))
	}
	if over := len(m.log) - maxLogLines; over > 0 {
		m.log = append(m.log[:0:0], m.log[over:]...)
		m.logFit = append(m.logFit[:0:0], m.logFit[over:]...)
	}
}

// eventNow is the run's clock: the time of the latest event plus the time
// since it arrived. It keeps elapsed times right in replays too.
func (m Model) eventNow() time.Time {
	now := m.now()
	if m.lastEvent.IsZero() {
		return now
	}
	if d := now.Sub(m.lastRecv); d > 0 {
		return m.lastEvent.Add(d)
	}
	return m.lastEvent
}

func (m Model) size() (int, int) {
	w, h := m.width, m.height
	if w <= 0 {
		w = defaultWidth
	}
	if h <= 0 {
		h = defaultHeight
	}
	return w, h
}

// Rows besides the body and the log: header, rule, log rule, rule, status
// line, keys.
const chromeRows = 6

// split returns the most rows the body may take and the rows left for the
// log in a terminal of height h.
func split(h int) (bodyMax, avail int) {
	avail = max(h-chromeRows, 2)
	logMin := max(3, avail/3)
	return max(avail-logMin, 1), avail
}

// layout sizes the log pane to what the body leaves and refills it.
func (m *Model) layout() {
	w, h := m.size()
	bodyMax, avail := split(h)
	body := m.body(w, bodyMax)
	m.vp.Width = w
	m.vp.Height = max(avail-len(body), 1)
	if m.fitWidth != w {
		m.fitWidth = w
		m.logFit = make([]string, len(m.log))
		for i, l := range m.log {
			m.logFit[i] = fit(l, w)
		}
	}
	m.vp.SetContent(strings.Join(m.logFit, "\n"))
	if m.follow {
		m.vp.GotoBottom()
	}
}

// View renders the whole screen; every line fits the width.
func (m Model) View() string {
	if m.quitting && !m.Done() {
		return ""
	}
	// after run_done the last frame (with the summary) stays on the
	// terminal when the program ends
	w, h := m.size()
	bodyMax, _ := split(h)
	var out []string
	out = append(out, m.header(w), m.st.rule.Render(strings.Repeat("─", w)))
	out = append(out, m.body(w, bodyMax)...)
	out = append(out, m.st.rule.Render(fit("─ log "+strings.Repeat("─", max(w-6, 0)), w)))
	out = append(out, m.vp.View())
	out = append(out, m.st.rule.Render(strings.Repeat("─", w)))
	out = append(out, m.statusLine(w), m.keysLine(w))
	return strings.Join(out, "\n")
}

func (m Model) header(w int) string {
	left := []string{"rollout"}
	if m.plan != "" {
		left = append(left, m.plan)
	}
	if m.revision != "" {
		left = append(left, shortRev(m.revision))
	}
	if len(m.batches) > 0 && m.current > 0 {
		left = append(left, fmt.Sprintf("batch %d/%d", m.current, len(m.batches)))
	}
	if !m.started.IsZero() {
		end := m.eventNow()
		if m.done != nil {
			end = m.done.Time
		}
		left = append(left, duration(end.Sub(m.started)))
	}
	if eta, ok := m.eta(); ok {
		left = append(left, "eta "+duration(eta))
	}
	if m.scope != "" { // last: on a narrow screen it is cut first
		left = append(left, "scope "+m.scope)
	}
	state := m.runState()
	right := m.st.paint(state)
	l := strings.Join(left, "  ")
	room := w - ansi.StringWidth(state) - 1
	if room < 10 {
		return fit(m.st.header.Render(l), w)
	}
	l = fit(l, room)
	return m.st.header.Render(l) + spaces(w-ansi.StringWidth(l)-ansi.StringWidth(state)) + right
}

// eta estimates the time left from the batches done so far: their mean
// duration (batch_start to batch_done, so waits for an approval or a pause
// between batches are not counted) for each batch not done, less the time
// the current one has run. Known only once a batch has finished and until
// the run is done.
func (m Model) eta() (time.Duration, bool) {
	if m.done != nil {
		return 0, false
	}
	var sum time.Duration
	var n, left int
	var current time.Duration
	for _, b := range m.batches {
		switch {
		case b.status != "" && !b.start.IsZero() && !b.end.IsZero():
			sum += b.end.Sub(b.start)
			n++
		case b.status == "":
			left++
			if b.started && !b.start.IsZero() {
				current = m.eventNow().Sub(b.start)
			}
		}
	}
	if n == 0 {
		return 0, false
	}
	mean := sum / time.Duration(n)
	eta := mean*time.Duration(left) - min(current, mean)
	return max(eta, 0), true
}

// batchElapsed is how long a batch ran: until batch_done, or until now
// while it runs; "" before it started.
func (m Model) batchElapsed(b *batchState) string {
	switch {
	case !b.started || b.start.IsZero():
		return ""
	case !b.end.IsZero():
		return duration(b.end.Sub(b.start))
	}
	return duration(m.eventNow().Sub(b.start))
}

func (m Model) runState() string {
	switch {
	case m.done != nil:
		if m.done.Status != "" {
			return m.done.Status
		}
		return "done"
	case m.approvalPending():
		return string(event.WaitApproval)
	case m.waiting != nil:
		return "waiting"
	case m.preflight == event.StatusRunning:
		return "preflight"
	case m.started.IsZero():
		return "starting"
	}
	return event.StatusRunning
}

func (m Model) statusLine(w int) string {
	var s string
	switch {
	case m.done != nil:
		s = "run finished: q to quit"
	case m.interrupts > 0:
		s = m.notice
	case m.approvalPending() && m.waiting != nil && m.waiting.WaitReason() != event.WaitApproval:
		s = "approval needed (y to approve, a to abort), and " + oneLine(m.waiting.Message)
	case m.approvalPending():
		s = "approval needed (y to approve, a to abort): " + oneLine(m.approval.Message)
	case m.notice != "":
		s = m.notice
	case m.waiting != nil:
		s = "waiting (a to abort): " + oneLine(m.waiting.Message)
	}
	return m.st.notice.Render(fit(s, w))
}

func (m Model) keysLine(w int) string {
	s := "p pause  r resume  a abort  y approve  ↑↓ log  ? help  q quit"
	if m.done != nil || m.ctl == nil {
		s = "q quit  ↑↓ log  ? help"
	}
	return m.st.keys.Render(fit(s, w))
}

// body returns the middle of the screen in at most maxH lines: help, the
// summary once the run is done, else the batches and their hosts.
func (m Model) body(w, maxH int) []string {
	var lines []string
	switch {
	case m.help:
		lines = helpLines
	case m.done != nil:
		return m.summary(w, maxH)
	default:
		return m.hostLines(w, maxH)
	}
	out := make([]string, 0, min(len(lines), maxH))
	for i := 0; i < len(lines) && i < maxH; i++ {
		out = append(out, fit(lines[i], w))
	}
	return out
}

var helpLines = []string{
	"keys",
	"  p        pause after the current batch",
	"  r        resume a paused run",
	"  a        abort safely: finish what is in flight, leave nothing drained unless it failed",
	"  y        approve when the run waits for an approval",
	"  ctrl+c   stop safely; press again to stop at once",
	"  ↑↓ pgup pgdn  scroll the log",
	"  q        quit, once the run has finished",
	"  ?  esc   close this help",
}

type block struct {
	header string
	rows   []string
	brief  string // the header when the rows are hidden
	active bool
}

func (m Model) hostLines(w, maxH int) []string {
	var blocks []block
	if m.preflight != "" && (m.current == 0 || m.preflight != event.StatusOK) {
		h := "preflight  " + m.st.paint(m.preflight)
		if m.preflight == event.StatusRunning {
			h += "  " + plural(m.preflightHosts, "host")
		}
		blocks = append(blocks, block{header: h, brief: h, active: m.current == 0})
	}
	hw := m.f.hostWidth
	for _, b := range m.batches {
		blk := block{active: b.num == m.current}
		name := fmt.Sprintf("batch %d/%d", b.num, len(m.batches))
		if b.wave != "" {
			name = "wave " + b.wave + " · " + name
		}
		title := m.st.batch.Render(name)
		switch {
		case b.status != "":
			blk.header = join(title+"  "+m.st.paint(b.status), m.batchElapsed(b))
			blk.brief = join(blk.header, m.outcomes(b.hosts))
		case b.started:
			blk.header = join(title+"  "+m.st.paint(event.StatusRunning), m.batchElapsed(b))
			blk.brief = blk.header
		default:
			blk.header = title + "  pending"
			blk.brief = join(blk.header, plural(len(b.hosts), "host"))
		}
		for _, name := range b.hosts {
			h := m.host(name)
			blk.rows = append(blk.rows, m.hostRow(h, hw, w))
			if h.outcome != string(event.OutcomeOK) {
				// while judged, and after a failed verdict: the evidence
				blk.rows = append(blk.rows, m.analysisLines(h)...)
			}
		}
		blocks = append(blocks, blk)
	}

	flat := func(collapse bool) ([]string, int) {
		var out []string
		focus := 0
		for _, b := range blocks {
			if b.active {
				focus = len(out)
			}
			if collapse && !b.active {
				out = append(out, b.brief)
				continue
			}
			out = append(out, b.header)
			out = append(out, b.rows...)
		}
		return out, focus
	}
	lines, focus := flat(false)
	if len(lines) > maxH {
		lines, focus = flat(true)
	}
	for i := range lines {
		lines[i] = fit(lines[i], w)
	}
	return window(lines, focus, maxH, w)
}

// window cuts lines to at most h, keeping the focus line near the top and
// saying how many lines are hidden above and below.
func window(lines []string, focus, h, w int) []string {
	if len(lines) <= h {
		return lines
	}
	if h < 3 {
		start := min(max(focus, 0), len(lines)-h)
		return lines[start : start+h]
	}
	start := min(max(focus-1, 0), len(lines)-h)
	out := append([]string(nil), lines[start:start+h]...)
	if start > 0 {
		out[0] = fit(fmt.Sprintf("  ↑ %d more", start+1), w)
	}
	if hidden := len(lines) - (start + h); hidden > 0 {
		out[h-1] = fit(fmt.Sprintf("  ↓ %d more", hidden+1), w)
	}
	return out
}

// outcomes counts the host_done outcomes of hosts: "2 ok, 1 skipped".
func (m Model) outcomes(hosts []string) string {
	c := map[event.Outcome]int{}
	for _, h := range hosts {
		if s := m.hosts[h]; s != nil && s.outcome != "" {
			c[event.Outcome(s.outcome)]++
		}
	}
	return countsText(c)
}

func (m Model) hostRow(h *hostState, hw, w int) string {
	icon, word := "·", ""
	switch {
	case h.outcome != "":
		icon, word = outcomeIcon(h.outcome), h.outcome
	case h.status == event.StatusFailed:
		icon, word = "✗", h.status
	case h.status != "":
		icon, word = "●", h.status
	}
	if word == "" {
		return m.st.faint.Render("  " + icon + " " + h.name)
	}
	elapsed := ""
	switch {
	case h.outcome != "" && !h.first.IsZero():
		elapsed = duration(h.doneAt.Sub(h.first))
	case !h.since.IsZero():
		elapsed = duration(m.eventNow().Sub(h.since))
	}
	phase := string(h.phase)
	if h.weight != nil && phase != string(event.PhaseUndrain) {
		phase = "ramp"
	}
	row := "  " + m.st.paint(icon) + " " + pad(h.name, hw) + " " + pad(phase, 8) + " " +
		m.st.paint(word) + spaces(11-len(word)+1) + fmt.Sprintf("%6s", elapsed) + "  "
	room := w - ansi.StringWidth(row)
	return row + m.hostDetail(h, room)
}

func (m Model) hostDetail(h *hostState, room int) string {
	switch {
	case h.outcome != "":
		if h.message != "" {
			return h.message
		}
		if h.revision != "" {
			return "revision " + shortRev(h.revision)
		}
		return ""
	case h.weight != nil:
		return fmt.Sprintf("weight %d%%", *h.weight)
	case h.window != nil && h.elapsed != nil && *h.window > 0:
		frac := min(max(*h.elapsed / *h.window, 0), 1)
		label := " " + seconds(*h.elapsed) + "/" + seconds(*h.window)
		bar := m.bar
		bar.Width = min(max(room-ansi.StringWidth(label), 10), 30)
		return bar.ViewAs(frac) + label
	case h.sessions != nil:
		return sessionsText(*h.sessions)
	}
	return h.message
}

func outcomeIcon(o string) string {
	switch event.Outcome(o) {
	case event.OutcomeOK:
		return "✓"
	case event.OutcomeSkipped:
		return "="
	case event.OutcomeRolledBack:
		return "↺"
	case event.OutcomeFailed:
		return "✗"
	case event.OutcomeDrained:
		return "!"
	case event.OutcomeNotStarted:
		return "-"
	}
	return "?"
}

// summary is the body once run_done has arrived: result, counts, a table
// of hosts and the next command, which is always kept.
func (m Model) summary(w, maxH int) []string {
	d := m.done
	title := "run " + m.st.paint(orDash(d.Status))
	if d.ExitCode != nil {
		title += fmt.Sprintf("  exit %d", *d.ExitCode)
	}
	if !m.started.IsZero() {
		title += "  " + duration(d.Time.Sub(m.started))
	}
	head := []string{fit(m.st.header.Render(title), w)}
	if c := countsText(d.Counts); c != "" {
		head = append(head, fit(c, w))
	}
	var tail []string
	if d.Message != "" {
		// The next command is what the operator came for: wrap it rather
		// than cut it (up to three lines).
		wrapped := strings.Split(ansi.Wrap("next: "+oneLine(d.Message), w, " /"), "\n")
		if len(wrapped) > 3 {
			wrapped = wrapped[:3]
		}
		for _, l := range wrapped {
			tail = append(tail, fit(m.st.next.Render(strings.TrimRight(l, " ")), w))
		}
	}

	var order []string
	done := map[string]event.Event{}
	for _, b := range m.batches {
		order = append(order, b.hosts...)
	}
	order = append(order, m.unbatched...)
	for _, h := range order {
		if s := m.hosts[h]; s != nil && s.outcome != "" {
			done[h] = event.Event{Status: s.outcome, Revision: s.revision, Message: s.message}
		}
	}
	rows := groupUniform(summaryRows(order, done))
	room := maxH - len(head) - len(tail)
	var table []string
	switch {
	case room >= len(rows)+1:
		table = append([]string{""}, renderTable(rows, w, true, m.st.paint)...)
	case room >= len(rows):
		table = renderTable(rows, w, true, m.st.paint)
	case room >= 2:
		// Not room for all: no column titles, the hosts that need
		// attention first, and how many are left out.
		hostRows := append([][4]string(nil), rows[1:]...)
		sort.SliceStable(hostRows, func(i, j int) bool {
			return severity(hostRows[i][1]) > severity(hostRows[j][1])
		})
		shown := room - 1
		table = renderTable(append([][4]string{{}}, hostRows[:shown]...), w, true, m.st.paint)[1:]
		table = append(table, fit(fmt.Sprintf("… %d more hosts (scroll the log)", len(hostRows)-shown), w))
	}
	out := append(head, table...)
	out = append(out, tail...)
	if len(out) > maxH {
		out = out[len(out)-maxH:]
	}
	return out
}

// severity orders outcomes by how much they need the operator.
func severity(outcome string) int {
	switch event.Outcome(outcome) {
	case event.OutcomeDrained, event.OutcomeUnknown:
		return 5
	case event.OutcomeFailed:
		return 4
	case event.OutcomeRolledBack:
		return 3
	case event.OutcomeNotStarted:
		return 2
	case event.OutcomeOK, event.OutcomeSkipped:
		return 0
	}
	return 1
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// fit cuts s (which may hold ANSI styles) to w columns.
func fit(s string, w int) string {
	if ansi.StringWidth(s) <= w {
		return s
	}
	return ansi.Truncate(s, w, "…")
}

type styles struct {
	header, rule, batch, faint, notice, keys, next lipgloss.Style
	paint                                          paintFunc
}

func newStyles(r *lipgloss.Renderer) styles {
	return styles{
		header: r.NewStyle().Bold(true),
		rule:   r.NewStyle().Faint(true),
		batch:  r.NewStyle().Bold(true),
		faint:  r.NewStyle().Faint(true),
		notice: r.NewStyle().Foreground(lipgloss.Color("3")),
		keys:   r.NewStyle().Faint(true),
		next:   r.NewStyle().Bold(true),
		paint:  iconPainter(statusPainter(r), r),
	}
}

// iconPainter extends the status painter to the status icons.
func iconPainter(words paintFunc, r *lipgloss.Renderer) paintFunc {
	green := r.NewStyle().Foreground(lipgloss.Color("2"))
	red := r.NewStyle().Foreground(lipgloss.Color("1")).Bold(true)
	yellow := r.NewStyle().Foreground(lipgloss.Color("3"))
	cyan := r.NewStyle().Foreground(lipgloss.Color("6"))
	return func(s string) string {
		switch s {
		case "✓", "=":
			return green.Render(s)
		case "✗", "!", "?":
			return red.Render(s)
		case "↺":
			return yellow.Render(s)
		case "●":
			return cyan.Render(s)
		}
		return words(s)
	}
}
