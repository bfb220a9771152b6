package e2e

// Helpers for the rollback / repair / drift / lock tests. Names carry an
// "rc" prefix so they cannot collide with helpers other test files add.

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rollout-sh/rollout/internal/fleet"
	"github.com/rollout-sh/rollout/rollout/event"
)

// rcRun runs rollout and fails the test unless it exits with want.
func (e *env) rcRun(want int, args ...string) result {
	e.t.Helper()
	start := time.Now()
	r := e.rollout(args...)
	e.t.Logf("rollout %s → exit %d (%s)", strings.Join(args, " "), r.code, time.Since(start).Round(100*time.Millisecond))
	if r.code != want {
		dump(e.t, r)
		e.t.Fatalf("rollout %s: exit %d, want %d", strings.Join(args, " "), r.code, want)
	}
	return r
}

// rcEditPlan replaces old with new in the plan file; old must be there.
func (e *env) rcEditPlan(old, new string) {
	e.t.Helper()
	b, err := os.ReadFile(e.plan)
	if err != nil {
		e.t.Fatal(err)
	}
	if !strings.Contains(string(b), old) {
		e.t.Fatalf("plan has no %q:\n%s", old, b)
	}
	if err := os.WriteFile(e.plan, []byte(strings.Replace(string(b), old, new, 1)), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) rcConfigs() map[string]string {
	m := map[string]string{}
	for _, h := range e.f.Hosts {
		m[h.Name] = e.liveConfig(h)
	}
	return m
}

func (e *env) rcPIDs() map[string]int {
	e.t.Helper()
	m := map[string]int{}
	for _, h := range e.f.Hosts {
		pid, err := e.f.AppPID(h)
		if err != nil {
			e.t.Fatalf("%s: app pid: %v", h.Name, err)
		}
		m[h.Name] = pid
	}
	return m
}

// rcHost returns the fleet host called name.
func (e *env) rcHost(name string) fleet.Host {
	e.t.Helper()
	h, ok := e.f.Host(name)
	if !ok {
		e.t.Fatalf("no host %q", name)
	}
	return h
}

// rcLB returns the HAProxy status of server on every LB.
func (e *env) rcLB(t *testing.T, server string) []string {
	t.Helper()
	var out []string
	for name, s := range e.stats(t) {
		if strings.HasSuffix(name, "/"+server) {
			out = append(out, s.Status)
		}
	}
	if len(out) != len(e.f.HAProxySockets) {
		t.Fatalf("server %s: found on %d of %d LBs", server, len(out), len(e.f.HAProxySockets))
	}
	return out
}

// rcWaitLB waits until server's status on every LB starts with prefix.
func (e *env) rcWaitLB(t *testing.T, server, prefix string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		all := true
		for _, s := range e.rcLB(t, server) {
			if !strings.HasPrefix(s, prefix) {
				all = false
			}
		}
		if all {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never %s in HAProxy: %v", server, prefix, e.rcLB(t, server))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// rcAssertOutOfRotation fails unless server is MAINT or DRAIN on every LB.
func (e *env) rcAssertOutOfRotation(t *testing.T, server string) {
	t.Helper()
	for _, s := range e.rcLB(t, server) {
		if !strings.HasPrefix(s, "MAINT") && !strings.HasPrefix(s, "DRAIN") {
			t.Errorf("%s is %q in HAProxy, want MAINT or DRAIN (left drained)", server, s)
		}
	}
}

type rcStatusRow struct {
	Host             string   `json:"host"`
	Revision         string   `json:"revision"`
	PreviousRevision string   `json:"previous_revision"`
	Drift            []string `json:"drift"`
	Lock             string   `json:"lock"`
	LB               string   `json:"lb"`
	Serving          bool     `json:"serving"`
	Error            string   `json:"error"`
}

// rcStatus runs `rollout status --ui json`.
func (e *env) rcStatus(t *testing.T) map[string]rcStatusRow {
	t.Helper()
	r := e.rcRun(0, "status", "--ui", "json")
	var rows []rcStatusRow
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var row struct {
			rcStatusRow
			Event string `json:"event"`
		}
		if err := json.Unmarshal([]byte(line), &row); err != nil {
			dump(t, r)
			t.Fatalf("status --ui json: %v", err)
		}
		if row.Event == "host_status" {
			rows = append(rows, row.rcStatusRow)
		}
	}
	m := map[string]rcStatusRow{}
	for _, row := range rows {
		m[row.Host] = row
	}
	if len(m) != len(e.f.Hosts) {
		t.Fatalf("status shows %d hosts, want %d: %+v", len(m), len(e.f.Hosts), rows)
	}
	return m
}

// rcGit runs git in the test repo.
func (e *env) rcGit(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", e.repo}, args...)...)
	cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=e2e", "GIT_AUTHOR_EMAIL=e2e@rollout.invalid",
		"GIT_COMMITTER_NAME=e2e", "GIT_COMMITTER_EMAIL=e2e@rollout.invalid")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// rcRepoFingerprint is what a rollback must never change: the number of
// commits and every ref.
func (e *env) rcRepoFingerprint(t *testing.T) string {
	t.Helper()
	return e.rcGit(t, "rev-list", "--all", "--count") + "\n" + e.rcGit(t, "show-ref")
}

// rcRender renders conf/app.conf.tmpl at rev for h the way the demo's
// template needs (it only interpolates host.name, host.address and
// host.vars.app_port).
func (e *env) rcRender(t *testing.T, rev string, h fleet.Host) string {
	t.Helper()
	cmd := exec.Command("git", "-C", e.repo, "show", rev+":conf/app.conf.tmpl")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git show %s: %v", rev, err)
	}
	s := strings.ReplaceAll(string(out), "${host.name}", h.Name)
	s = strings.ReplaceAll(s, "${host.vars.app_port}", strconv.Itoa(h.AppPort))
	s = strings.ReplaceAll(s, "${host.address}", h.Address())
	if strings.Contains(s, "${") || strings.Contains(s, "%{") {
		t.Fatalf("rcRender cannot render this template:\n%s", s)
	}
	return s
}

func rcSHA256(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// rcAssertAt checks that h serves rev: live config is exactly content,
// current.json records rev, and the app answers version.
func (e *env) rcAssertAt(t *testing.T, h fleet.Host, rev, content, version string) {
	t.Helper()
	if got := e.liveConfig(h); got != content {
		t.Errorf("%s live app.conf:\n%s\nwant:\n%s", h.Name, got, content)
	}
	if st := e.state(t, h); st == nil || st["revision"] != rev {
		t.Errorf("%s current.json = %v, want revision %s", h.Name, st, rev)
	}
	if v := e.appVersion(t, h); v != version {
		t.Errorf("%s answers %q, want %s", h.Name, v, version)
	}
}

// rcDone returns the host_done events by host and the run_done event.
func rcDone(t *testing.T, evs []event.Event) (map[string]event.Event, event.Event) {
	t.Helper()
	done := map[string]event.Event{}
	var last event.Event
	for _, ev := range evs {
		switch ev.Event {
		case event.HostDone:
			done[ev.Host] = ev
		case event.RunDone:
			last = ev
		}
	}
	if last.Event != event.RunDone {
		t.Fatal("no run_done event")
	}
	return done, last
}

// rcOwner is the lock owner rollout writes when run by this user here.
func rcOwner(t *testing.T) string {
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	h, _ := os.Hostname()
	return u.Username + "@" + h
}

// rcBackground is a rollout process running in the background whose
// stdout events are delivered on a channel.
type rcBackground struct {
	cmd    *exec.Cmd
	events chan event.Event
	stderr *strings.Builder
	mu     sync.Mutex
	done   chan struct{}
}

// rcStart starts rollout in the background; t.Cleanup kills it if the test
// did not.
func (e *env) rcStart(t *testing.T, args ...string) *rcBackground {
	t.Helper()
	args = append(append([]string{}, args...), "--known-hosts", e.f.KnownHosts)
	cmd := exec.Command(rolloutBin(t), args...)
	cmd.Dir = e.dir
	stdout, pw := io.Pipe()
	cmd.Stdout = pw
	b := &rcBackground{cmd: cmd, events: make(chan event.Event, 1024), stderr: &strings.Builder{}, done: make(chan struct{})}
	cmd.Stderr = &rcLockedBuilder{mu: &b.mu, b: b.stderr}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(b.events)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var ev event.Event
			if json.Unmarshal(sc.Bytes(), &ev) == nil {
				b.events <- ev
			}
		}
	}()
	go func() { _ = cmd.Wait(); pw.Close(); close(b.done) }()
	t.Cleanup(func() {
		select {
		case <-b.done:
		default:
			_ = cmd.Process.Kill()
			<-b.done
		}
	})
	return b
}

// waitFor returns the first event match accepts, failing the test if the
// process ends or nothing matches in time (a hang guard, not an assertion).
func (b *rcBackground) waitFor(t *testing.T, what string, match func(event.Event) bool) event.Event {
	t.Helper()
	timeout := time.After(90 * time.Second)
	for {
		select {
		case ev, ok := <-b.events:
			if !ok {
				b.mu.Lock()
				defer b.mu.Unlock()
				t.Fatalf("rollout ended before %s; stderr:\n%s", what, b.stderr.String())
			}
			if match(ev) {
				return ev
			}
		case <-timeout:
			t.Fatalf("no %s within 90s", what)
		}
	}
}

// kill SIGKILLs the process and waits for it.
func (b *rcBackground) kill(t *testing.T) {
	t.Helper()
	if err := b.cmd.Process.Kill(); err != nil {
		t.Fatalf("kill rollout: %v", err)
	}
	<-b.done
	for range b.events { // drain what was read before it died
	}
}

// killNow SIGKILLs the process (a process that has just ended on its own
// is not an error: the kill came after its last event) and waits for it.
func (b *rcBackground) killNow(t *testing.T) {
	t.Helper()
	if err := b.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Fatalf("kill rollout: %v", err)
	}
	<-b.done
	for range b.events {
	}
}

type rcLockedBuilder struct {
	mu *sync.Mutex
	b  *strings.Builder
}

func (w *rcLockedBuilder) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// rcJournal reads the journal beside the plan.
func (e *env) rcJournal(t *testing.T) []event.Event {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(e.dir, ".rollout", "journal.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	return parseEvents(t, string(b))
}
