package e2e

// Issue 6: the real binary's TUI in a real terminal (tmux) against the real
// fleet, steered by keys.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rollout-sh/rollout/journal"
	"github.com/rollout-sh/rollout/rollout/event"
)

// tmuxSession is a private tmux server (its own socket) with one session.
type tmuxSession struct {
	t       *testing.T
	socket  string
	screens []string // every distinct capture, with its time
}

func needTmux(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		if os.Getenv("ROLLOUT_E2E") == "1" {
			t.Fatal("tmux is not installed")
		}
		t.Skip("tmux is not installed")
	}
}

func startTmux(t *testing.T, dir, shellCmd string) *tmuxSession {
	t.Helper()
	s := &tmuxSession{t: t, socket: fmt.Sprintf("rollout-e2e-%d-%d", os.Getpid(), time.Now().UnixNano())}
	t.Cleanup(func() { _, _ = s.tmux("kill-server") })
	if out, err := s.tmux("new-session", "-d", "-x", "100", "-y", "30", "-s", "rollout", "-c", dir, shellCmd); err != nil {
		t.Fatalf("tmux new-session: %v\n%s", err, out)
	}
	return s
}

func (s *tmuxSession) tmux(args ...string) (string, error) {
	cmd := exec.Command("tmux", append([]string{"-L", s.socket}, args...)...)
	cmd.Env = append(os.Environ(), "TERM=xterm-256color")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// capture returns the pane's text and keeps it if it changed.
func (s *tmuxSession) capture() string {
	out, err := s.tmux("capture-pane", "-p", "-t", "rollout")
	if err != nil {
		s.t.Fatalf("tmux capture-pane: %v\n%s", err, out)
	}
	if n := len(s.screens); n == 0 || !strings.HasSuffix(s.screens[n-1], "\n"+out) {
		s.screens = append(s.screens, time.Now().Format("15:04:05.000")+"\n"+out)
	}
	return out
}

func (s *tmuxSession) keys(k string) {
	if out, err := s.tmux("send-keys", "-t", "rollout", k); err != nil {
		s.t.Fatalf("tmux send-keys %s: %v\n%s", k, err, out)
	}
}

// waitScreen polls the pane until ok says yes.
func (s *tmuxSession) waitScreen(timeout time.Duration, what string, ok func(string) bool) string {
	deadline := time.Now().Add(timeout)
	for {
		scr := s.capture()
		if ok(scr) {
			return scr
		}
		if time.Now().After(deadline) {
			s.save()
			s.t.Fatalf("the screen never showed %s; last screen:\n%s", what, scr)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// save writes every capture to the test's temp dir and, when
// ROLLOUT_ARTIFACTS is set, into that directory; it logs the last one.
func (s *tmuxSession) save() {
	s.t.Helper()
	if len(s.screens) == 0 {
		return
	}
	body := strings.Join(s.screens, "\n"+strings.Repeat("=", 100)+"\n")
	name := strings.NewReplacer("/", "_", " ", "_").Replace(s.t.Name()) + "-screens.txt"
	p := filepath.Join(s.t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		s.t.Errorf("writing the screens: %v", err)
	}
	if dir := os.Getenv("ROLLOUT_ARTIFACTS"); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err == nil {
			err = os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644)
			if err != nil {
				s.t.Errorf("copying the screens to ROLLOUT_ARTIFACTS: %v", err)
			}
		}
	}
	s.t.Logf("%d screens in %s; the last one:\n%s", len(s.screens), p, s.screens[len(s.screens)-1])
}

func shQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// The TUI in a real terminal: auto picks it (no --ui), it shows the canary
// progressing, `a` aborts safely (exit 130, nothing left drained, the
// journal closes the run as interrupted), and it waits for `q` after the
// run is done.
func TestTUIAbortInTmux(t *testing.T) {
	t.Parallel()
	needTmux(t)
	e := setup(t, 3, 1)
	e.writePlan(e.tags["v2"], "halt", "4s")
	e.waitAllUp(t)
	codeFile := filepath.Join(e.dir, "exit-code")
	// the pane stays open after rollout exits, so its last screen can be read
	cmd := fmt.Sprintf("TERM=xterm-256color %s apply --batch 1 --yes --known-hosts %s; echo $? > %s; sleep 60",
		shQuote(rolloutBin(t)), shQuote(e.f.KnownHosts), shQuote(codeFile))
	s := startTmux(t, e.dir, cmd)
	defer s.save()

	busy := regexp.MustCompile(`(web\d+)\s+(drain|stage|validate|install|check|restart|health)\s+running`)
	// the TUI (not plain lines): batch headers, host rows, the key help
	scr := s.waitScreen(90*time.Second, "the TUI with a host in progress in batch 1/3", func(scr string) bool {
		return strings.Contains(scr, "batch 1/3") && busy.MatchString(scr) && strings.Contains(scr, "a abort")
	})
	canary := busy.FindStringSubmatch(scr)[1]
	t.Logf("aborting while %s is in progress", canary)
	s.keys("a")

	// the run ends by itself; the TUI then shows the summary until q
	jpath := filepath.Join(e.dir, ".rollout", "journal.jsonl")
	var runDone *event.Event
	deadline := time.Now().Add(90 * time.Second)
	for runDone == nil {
		if evs, err := journal.Read(jpath); err == nil {
			for i := range evs {
				if evs[i].Event == event.RunDone {
					runDone = &evs[i]
				}
			}
		}
		s.capture()
		if time.Now().After(deadline) {
			t.Fatal("no run_done in the journal 90s after `a`")
		}
		time.Sleep(200 * time.Millisecond)
	}
	s.waitScreen(10*time.Second, "the summary (interrupted, exit 130, q to quit)", func(scr string) bool {
		return strings.Contains(scr, "interrupted") && strings.Contains(scr, "exit 130") && strings.Contains(scr, "q to quit")
	})
	time.Sleep(500 * time.Millisecond)
	if _, err := os.Stat(codeFile); err == nil {
		t.Fatal("rollout exited before q was pressed")
	}
	s.keys("q")
	var code int
	deadline = time.Now().Add(20 * time.Second)
	for {
		b, err := os.ReadFile(codeFile)
		if err == nil && strings.HasSuffix(string(b), "\n") {
			code, err = strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil {
				t.Fatalf("exit code file: %q", b)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("rollout did not exit 20s after q")
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.capture()
	if code != 130 {
		t.Errorf("exit %d, want 130", code)
	}
	if runDone.Status != "interrupted" {
		t.Errorf("journal run_done status %q, want interrupted", runDone.Status)
	}
	evs := e.checkJournalRun(t, runDone.Run, "interrupted")
	done := hostDone(evs)
	if d := done[canary]; d.Status != string(event.OutcomeOK) {
		t.Errorf("canary %s ended %q, want ok (it finishes the step in flight)", canary, d.Status)
	}
	failed := map[string]bool{}
	for h, d := range done {
		if o := event.Outcome(d.Status); o == event.OutcomeDrained || o == event.OutcomeUnknown {
			failed[h] = true
		}
	}
	e.checkNoneDrained(t, failed)
	if runDone.Counts[event.OutcomeNotStarted] != 2 {
		t.Errorf("run_done counts %v, want 2 not_started", runDone.Counts)
	}
}
