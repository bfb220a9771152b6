package ui

import (
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/teatest"

	"github.com/rollout-sh/rollout/rollout/event"
)

// fixedNow is the injected clock: the views compute elapsed times from it
// and the event times, never from the wall clock.
func fixedNow() time.Time { return t0.Add(time.Hour) }

// tuiSnapshot plays events into the model running under a real bubbletea
// program at a fixed size and returns the final view.
func tuiSnapshot(t *testing.T, w, h int, events []event.Event, keys ...tea.KeyMsg) (Model, *fakeControls) {
	t.Helper()
	ctl := &fakeControls{}
	tm := teatest.NewTestModel(t, NewModel(ctl, fixedNow), teatest.WithInitialTermSize(w, h))
	for _, e := range events {
		tm.Send(e)
	}
	for _, k := range keys {
		tm.Send(k)
	}
	if err := tm.Quit(); err != nil {
		t.Fatal(err)
	}
	m := tm.FinalModel(t, teatest.WithFinalTimeout(10*time.Second)).(Model)
	return m, ctl
}

func TestTUIGolden(t *testing.T) {
	s := newScenario()
	for _, tc := range []struct {
		name string
		w, h int
		mark string
	}{
		{"draining", 80, 24, "draining"},
		{"health_half", 80, 24, "health"},
		{"ramp", 80, 24, "ramp"},
		{"approval", 80, 24, "approval"},
		{"failure", 80, 24, "failure"},
		{"summary", 80, 24, "done"},
		{"failure_120x40", 120, 40, "failure"},
		{"summary_120x40", 120, 40, "done"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, _ := tuiSnapshot(t, tc.w, tc.h, s.upTo(tc.mark))
			view := m.View()
			checkFits(t, view, tc.w, tc.h)
			teatest.RequireEqualOutput(t, []byte(view))
		})
	}
}

func TestTUIShowsWhatEventsSay(t *testing.T) {
	s := newScenario()
	for _, tc := range []struct {
		mark string
		want []string
	}{
		{"draining", []string{"12 sessions left", "scope --batch 1,50%", "9fceb02", "batch 1/3", "15s"}},
		{"health", []string{" 50% 5s/10s", "health"}},
		{"ramp", []string{"weight 100%"}},
		{"approval", []string{"approval needed (y to approve, a to abort): canary web1 is done"}},
		{"failure", []string{"drained", "NRestarts 0 -> 1", `appd[812]: panic`}},
		{"done", []string{"run failed  exit 1  1m03s", "2 ok, 1 drained, 1 not_started", "next: " + nextStep, "run finished: q to quit"}},
	} {
		m := NewModel(nil, fixedNow)
		var tm tea.Model = m
		tm, _ = tm.Update(tea.WindowSizeMsg{Width: 120, Height: 40})
		for _, e := range s.upTo(tc.mark) {
			tm, _ = tm.Update(e)
		}
		view := tm.View()
		for _, w := range tc.want {
			if !strings.Contains(view, w) {
				t.Errorf("%s: view lacks %q:\n%s", tc.mark, w, view)
			}
		}
	}
}

// TestTUIFitsEverySize: at every size and every point of the run, the view
// is exactly the terminal's height and no line is wider than it.
func TestTUIFitsEverySize(t *testing.T) {
	s := newScenario()
	sizes := [][2]int{{30, 16}, {40, 10}, {60, 15}, {80, 24}, {100, 12}, {120, 40}, {200, 60}}
	for _, sz := range sizes {
		var m tea.Model = NewModel(nil, fixedNow)
		m, _ = m.Update(tea.WindowSizeMsg{Width: sz[0], Height: sz[1]})
		for i, e := range s.events {
			m, _ = m.Update(e)
			if !checkFitsQuiet(m.View(), sz[0], sz[1]) {
				t.Fatalf("%dx%d after event %d (%s): view does not fit:\n%s", sz[0], sz[1], i, e.Event, m.View())
			}
		}
		m, _ = m.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{'?'}})
		checkFits(t, m.View(), sz[0], sz[1])
		// Shrinking after the fact re-cuts the log lines.
		m, _ = m.Update(tea.WindowSizeMsg{Width: sz[0] / 2, Height: sz[1]})
		checkFits(t, m.View(), sz[0]/2, sz[1])
	}
}

// TestTUIManyHosts: a fleet larger than the screen keeps the current batch
// in view and says how much is hidden.
func TestTUIManyHosts(t *testing.T) {
	var batches [][]string
	for b := 0; b < 10; b++ {
		var hs []string
		for h := 0; h < 4; h++ {
			hs = append(hs, fmt.Sprintf("app-%02d-%d", b, h))
		}
		batches = append(batches, hs)
	}
	r := &run{}
	r.add(0, event.Event{Event: event.RunStart, Plan: "app", Revision: testRev, Scope: "--batch 4", Batches: batches})
	for b := 1; b <= 6; b++ {
		r.add(float64(b), event.Event{Event: event.BatchStart, Batch: b, Hosts: batches[b-1]})
		for _, h := range batches[b-1] {
			r.add(float64(b), phase(h, b, event.PhaseDrain, event.StatusRunning))
			if b < 6 {
				r.add(float64(b), event.Event{Event: event.HostDone, Host: h, Batch: b, Status: "ok", Revision: testRev})
			}
		}
		if b < 6 {
			r.add(float64(b), event.Event{Event: event.BatchDone, Batch: b, Status: "ok"})
		}
	}
	var m tea.Model = NewModel(nil, fixedNow)
	m, _ = m.Update(tea.WindowSizeMsg{Width: 80, Height: 24})
	for _, e := range r.events {
		m, _ = m.Update(e)
	}
	view := m.View()
	checkFits(t, view, 80, 24)
	for _, want := range []string{"batch 6/10  running", "app-05-0", "app-05-3", "more"} {
		if !strings.Contains(view, want) {
			t.Errorf("view lacks %q:\n%s", want, view)
		}
	}
}

func key(s string) tea.KeyMsg {
	if s == "ctrl+c" {
		return tea.KeyMsg{Type: tea.KeyCtrlC}
	}
	return tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(s)}
}

func isQuit(cmd tea.Cmd) bool {
	if cmd == nil {
		return false
	}
	_, ok := cmd().(tea.QuitMsg)
	return ok
}

func TestTUIKeys(t *testing.T) {
	s := newScenario()
	ctl := &fakeControls{}
	var m tea.Model = NewModel(ctl, fixedNow)
	press := func(k string) tea.Cmd {
		var cmd tea.Cmd
		m, cmd = m.Update(key(k))
		return cmd
	}
	for _, e := range s.upTo("draining") {
		m, _ = m.Update(e)
	}

	if isQuit(press("q")) {
		t.Fatal("q quit before run_done")
	}
	if !strings.Contains(m.View(), noticeQuitEarly) {
		t.Errorf("no hint after an early q:\n%s", m.View())
	}
	press("y") // nothing pending: no call
	if !strings.Contains(m.View(), noticeNoApproval) {
		t.Error("no feedback for y without a pending approval")
	}
	press("p")
	press("r")
	press("a")
	for _, e := range s.events[s.marks["draining"]:s.marks["approval"]] {
		m, _ = m.Update(e)
	}
	press("y")
	press("ctrl+c")
	if !strings.Contains(m.View(), noticeInterrupt1) {
		t.Errorf("first ctrl+c: no notice:\n%s", m.View())
	}
	if isQuit(press("ctrl+c")) {
		t.Fatal("ctrl+c quit the TUI during the run; the engine decides when it ends")
	}
	if !strings.Contains(m.View(), noticeInterrupt2) {
		t.Errorf("second ctrl+c: no notice:\n%s", m.View())
	}
	want := []string{"pause", "resume", "abort", "approve", "interrupt", "interrupt"}
	if got := ctl.Calls(); !reflect.DeepEqual(got, want) {
		t.Fatalf("calls = %v, want %v", got, want)
	}

	for _, e := range s.events[s.marks["approval"]:] {
		m, _ = m.Update(e)
	}
	for _, k := range []string{"p", "r", "a", "y"} {
		press(k)
	}
	if got := ctl.Calls(); len(got) != len(want) {
		t.Errorf("keys after run_done reached the engine: %v", got[len(want):])
	}
	if !isQuit(press("q")) {
		t.Fatal("q did not quit after run_done")
	}
	// the summary stays on the terminal after the program ends
	if v := m.View(); !strings.Contains(v, "exit") {
		t.Errorf("view after quitting a finished run lost the summary:\n%s", v)
	}
}

func TestTUIHelpToggles(t *testing.T) {
	var m tea.Model = NewModel(nil, fixedNow)
	m, _ = m.Update(key("?"))
	if !strings.Contains(m.View(), "pause after the current batch") {
		t.Fatalf("no help:\n%s", m.View())
	}
	m, _ = m.Update(key("?"))
	if strings.Contains(m.View(), "pause after the current batch") {
		t.Fatal("help stays after a second ?")
	}
}

// TestTUIProgramKeys drives the keys through a running bubbletea program:
// q before run_done keeps it running, q after run_done ends it.
func TestTUIProgramKeys(t *testing.T) {
	s := newScenario()
	ctl := &fakeControls{}
	tm := teatest.NewTestModel(t, NewModel(ctl, fixedNow), teatest.WithInitialTermSize(80, 24))
	for _, e := range s.upTo("approval") {
		tm.Send(e)
	}
	tm.Type("q")
	tm.Type("p")
	tm.Type("y")
	tm.Send(tea.KeyMsg{Type: tea.KeyCtrlC})
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool {
		return strings.Contains(string(b), "press ctrl+c again")
	}, teatest.WithDuration(10*time.Second), teatest.WithCheckInterval(10*time.Millisecond))
	for _, e := range s.events[s.marks["approval"]:] {
		tm.Send(e)
	}
	tm.Type("q")
	m := tm.FinalModel(t, teatest.WithFinalTimeout(10*time.Second)).(Model)
	if !m.Done() {
		t.Error("final model has no run_done")
	}
	if got, want := ctl.Calls(), []string{"pause", "approve", "interrupt"}; !reflect.DeepEqual(got, want) {
		t.Errorf("calls = %v, want %v", got, want)
	}
}

// TestTUIRun runs the TUI wrapper end to end: events emitted before Run
// are kept, events after it arrive, and q after run_done ends Run.
func TestTUIRun(t *testing.T) {
	s := newScenario()
	in, inW := io.Pipe()
	defer inW.Close()
	out := &syncBuffer{}
	ui := NewTUI(&fakeControls{}, TUIOptions{Input: in, Output: out, Now: fixedNow})
	half := s.marks["failure"]
	for _, e := range s.events[:half] {
		ui.Emit(e)
	}
	done := make(chan error, 1)
	go func() { done <- ui.Run() }()
	for _, e := range s.events[half:] {
		ui.Emit(e)
	}
	teatest.WaitFor(t, out, func(b []byte) bool {
		return strings.Contains(string(b), "next: "+nextStep)
	}, teatest.WithDuration(10*time.Second), teatest.WithCheckInterval(10*time.Millisecond))
	if _, err := inW.Write([]byte("q")); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after q")
	}
	ui.Emit(event.Event{Event: event.Log, Message: "late"}) // must not block
	if err := ui.Run(); err == nil {
		t.Error("second Run did not fail")
	}
}

func checkFitsQuiet(view string, w, h int) bool {
	lines := strings.Split(view, "\n")
	if len(lines) != h {
		return false
	}
	for _, l := range lines {
		if ansi.StringWidth(l) > w {
			return false
		}
	}
	return true
}

func checkFits(t *testing.T, view string, w, h int) {
	t.Helper()
	lines := strings.Split(view, "\n")
	if len(lines) != h {
		t.Errorf("view has %d lines, want %d", len(lines), h)
	}
	for i, l := range lines {
		if n := ansi.StringWidth(l); n > w {
			t.Errorf("line %d is %d wide, more than %d: %q", i+1, n, w, l)
		}
	}
}

// TestTUISmallSummary: when the summary does not fit, the hosts that need
// attention come first and the next command is never cut.
func TestTUISmallSummary(t *testing.T) {
	var m tea.Model = NewModel(nil, fixedNow)
	m, _ = m.Update(tea.WindowSizeMsg{Width: 30, Height: 16})
	for _, e := range newScenario().events {
		m, _ = m.Update(e)
	}
	view := m.View()
	checkFits(t, view, 30, 16)
	lines := strings.Split(view, "\n")
	var at int
	for i, l := range lines {
		if strings.HasPrefix(l, "web") {
			at = i
			break
		}
	}
	if !strings.HasPrefix(lines[at], "web3  drained") {
		t.Errorf("first host row is %q, want the drained web3:\n%s", lines[at], view)
	}
	joined := strings.Join(lines, " ")
	if !strings.Contains(joined, "rollout rollback web.hcl") || !strings.Contains(joined, "--limit web3") {
		t.Errorf("next command cut:\n%s", view)
	}
}

// TestTUIElapsedFollowsInjectedClock: elapsed times run from the event
// times on the injected clock, so replays of old runs show their own times.
func TestTUIElapsedFollowsInjectedClock(t *testing.T) {
	wall := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC) // far from the events
	now := func() time.Time { return wall }
	var m tea.Model = NewModel(nil, now)
	for _, e := range newScenario().upTo("draining") { // last event at 15s
		m, _ = m.Update(e)
	}
	if v := m.View(); !strings.Contains(v, "batch 1/3  15s") || !strings.Contains(v, "running        12s") {
		t.Fatalf("elapsed at arrival:\n%s", v)
	}
	wall = wall.Add(20 * time.Second)
	if v := m.View(); !strings.Contains(v, "batch 1/3  35s") || !strings.Contains(v, "running        32s") {
		t.Fatalf("elapsed 20s later:\n%s", v)
	}
}

// TestTUIViewerWithoutControls: a replay has no engine to steer; q leaves
// before run_done and the steering keys change nothing.
func TestTUIViewerWithoutControls(t *testing.T) {
	var m tea.Model = NewModel(nil, fixedNow)
	for _, e := range newScenario().upTo("approval") {
		m, _ = m.Update(e)
	}
	before := m.View()
	for _, k := range []string{"p", "r", "a", "y"} {
		m, _ = m.Update(key(k))
	}
	if m.View() != before {
		t.Errorf("steering keys changed a viewer:\n%s", m.View())
	}
	if _, cmd := m.Update(key("q")); !isQuit(cmd) {
		t.Error("q did not leave a viewer")
	}
	if _, cmd := m.Update(key("ctrl+c")); !isQuit(cmd) {
		t.Error("ctrl+c did not leave a viewer")
	}
}

// An approval stays pending while the run is also paused: y approves it
// (the engine takes the approval at once), instead of "nothing to approve".
func TestTUIApproveWhilePaused(t *testing.T) {
	s := newScenario()
	ctl := &fakeControls{}
	var m tea.Model = NewModel(ctl, fixedNow)
	for _, e := range s.upTo("approval") {
		m, _ = m.Update(e)
	}
	m, _ = m.Update(key("p"))
	m, _ = m.Update(event.Event{Event: event.Waiting, Status: "paused", Message: "paused after the current batch (press r to resume)"})
	if v := m.(Model).View(); !strings.Contains(v, "approval needed") || !strings.Contains(v, "paused") {
		t.Errorf("paused with an approval pending, the view does not say both:\n%s", v)
	}
	m, _ = m.Update(key("y"))
	if v := m.(Model).View(); strings.Contains(v, noticeNoApproval) {
		t.Errorf("y while paused says %q though an approval is pending:\n%s", noticeNoApproval, v)
	}
	if got := strings.Join(ctl.Calls(), " "); got != "pause approve" {
		t.Errorf("controls called: %q, want \"pause approve\"", got)
	}
	// approved, the run is still paused: the screen says so, not "running"
	m, _ = m.Update(event.Event{Event: event.Approved, Batch: 2, Message: "approved by a person"})
	v := m.(Model).View()
	if header := strings.SplitN(v, "\n", 2)[0]; !strings.HasSuffix(header, "waiting") || !strings.Contains(v, "waiting (a to abort): paused") {
		t.Errorf("approved while paused: the view does not say the run still waits:\n%s", v)
	}
}

// The header's ETA comes from the batches done so far (their mean
// duration, waits between batches not counted) on the injected clock, and
// is shown only once a batch has finished; each batch shows its elapsed
// time.
func TestTUIETAAndBatchElapsed(t *testing.T) {
	s := newScenario()
	wall := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	now := func() time.Time { return wall }
	var m tea.Model = NewModel(nil, now)
	for _, e := range s.upTo("ramp") {
		m, _ = m.Update(e)
	}
	if v := m.View(); strings.Contains(v, "eta") || !strings.Contains(v, "batch 1/3  running  33s") {
		t.Errorf("before any batch finished: want no eta and batch 1's elapsed 33s:\n%s", v)
	}
	for _, e := range s.events[s.marks["ramp"]:s.marks["failure"]] {
		m, _ = m.Update(e)
	}
	// batch 1 took 34s (3s → 37s); batch 2 has run 8s (50s → 58s): 2×34 − 8
	if v := m.View(); !strings.Contains(v, "58s  eta 1m00s") || !strings.Contains(v, "batch 1/3  ok  34s") || !strings.Contains(v, "batch 2/3  running  8s") {
		t.Errorf("after batch 1: want eta 1m00s and the batches' elapsed times:\n%s", v)
	}
	wall = wall.Add(10 * time.Second)
	if v := m.View(); !strings.Contains(v, "1m08s  eta 50s") || !strings.Contains(v, "batch 2/3  running  18s") {
		t.Errorf("10s later: want eta 50s and batch 2 at 18s:\n%s", v)
	}
	wall = wall.Add(time.Minute) // batch 2 runs longer than batch 1 did: batch 3 is left
	if v := m.View(); !strings.Contains(v, "eta 34s") {
		t.Errorf("batch 2 overdue: want the eta of batch 3 alone (34s):\n%s", v)
	}
	for _, e := range s.events[s.marks["failure"]:] {
		m, _ = m.Update(e)
	}
	if v := m.View(); strings.Contains(v, "eta") {
		t.Errorf("the run is done, but an eta is shown:\n%s", v)
	}
}

// The log pane is thinned as the docs say: a health line when the window
// starts or restarts (not every health_progress tick), a sessions line when
// the count changes, no debug logs.
func TestTUILogIsThinned(t *testing.T) {
	var m tea.Model = NewModel(nil, fixedNow)
	for _, e := range newScenario().events {
		m, _ = m.Update(e)
	}
	log := strings.Join(m.(Model).log, "\n")
	for want, n := range map[string]int{
		"stable 1s of 10s": 1, "stable 2s of 10s": 0, "stable 10s of 10s": 0, // web1: window started once
		"stable 3s of 10s": 1, "stable 0s of 10s": 1, // web3: started, then restarted
		"12 sessions left": 1, "probe http://": 0,
	} {
		if got := strings.Count(log, want); got != n {
			t.Errorf("the log pane has %q %d times, want %d:\n%s", want, got, n, log)
		}
	}
}
