package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rollout-sh/rollout/rollout/event"
)

// hookReceiver is a local webhook endpoint: it records what it is sent,
// in order, answering with answer (nil: 200).
type hookReceiver struct {
	mu     sync.Mutex
	bodies []string
	auth   []string
	answer func(w http.ResponseWriter, r *http.Request)
	srv    *httptest.Server
}

func newHookReceiver(t *testing.T, answer func(w http.ResponseWriter, r *http.Request)) *hookReceiver {
	rc := &hookReceiver{answer: answer}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.bodies = append(rc.bodies, string(b))
		rc.auth = append(rc.auth, r.Header.Get("Authorization"))
		rc.mu.Unlock()
		if rc.answer != nil {
			rc.answer(w, r)
		}
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *hookReceiver) got() ([]string, []string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]string{}, rc.bodies...), append([]string{}, rc.auth...)
}

// rolloutWithEnv is rollout with extra environment variables.
func (e *env) rolloutWithEnv(vars []string, args ...string) result {
	e.t.Helper()
	return e.rolloutIn(append(os.Environ(), vars...), e.f.KnownHosts, args...)
}

// Issue 27 item 2: a real apply sends its events to a json webhook (the
// events --ui json prints, in the same order, with plan, the header from
// the environment) and a slack one (one-line summaries); a header naming
// an unset variable refuses the run before anything is touched.
func TestNotifyWebhooksGetTheRunInOrder(t *testing.T) {
	t.Parallel()
	e := setup(t, 3, 1)
	e.waitAllUp(t)
	js := newHookReceiver(t, nil)
	slack := newHookReceiver(t, nil)
	e.extra = fmt.Sprintf(`  batch = [1]
  notify "webhook" {
    url     = %q
    events  = ["run_start", "batch_start", "batch_done", "host_done", "run_done"]
    headers = { Authorization = "Bearer ${env.E2E_HOOK_TOKEN}" }
  }
  notify "webhook" {
    url    = %q
    format = "slack"
  }`, js.srv.URL+"/hooks/deploys", slack.srv.URL)
	v2 := e.tags["v2"]
	e.writePlan(v2, "halt", "0s")

	// the variable unset: refused, naming it and the plan's line
	r := e.rolloutWithEnv(nil, "apply", "--yes")
	if r.code != 2 || !strings.Contains(r.stderr, "environment variable E2E_HOOK_TOKEN is not set") ||
		!strings.Contains(r.stderr, "rollout.hcl:19") {
		dump(t, r)
		t.Fatalf("exit %d, want a refusal naming E2E_HOOK_TOKEN and rollout.hcl:19", r.code)
	}
	if b, _ := js.got(); len(b) != 0 {
		t.Fatalf("a refused run sent %d notifications", len(b))
	}

	r = e.rolloutWithEnv([]string{"E2E_HOOK_TOKEN=s3cret"}, "apply", "--yes", "--ui", "json")
	if r.code != 0 {
		dump(t, r)
		t.Fatalf("exit %d", r.code)
	}
	e.checkAtRevision(t, v2, "version=2")
	stream := parseEvents(t, r.stdout)
	var want []string
	for _, ev := range stream {
		switch ev.Event {
		case event.RunStart, event.BatchStart, event.BatchDone, event.HostDone, event.RunDone:
			b, _ := json.Marshal(ev)
			want = append(want, string(b))
		}
	}
	bodies, auth := js.got()
	if len(bodies) != len(want) {
		t.Fatalf("json webhook got %d notifications, the stream has %d:\n%s", len(bodies), len(want), strings.Join(bodies, "\n"))
	}
	for i, b := range bodies {
		var got event.Event
		if err := json.Unmarshal([]byte(b), &got); err != nil {
			t.Fatalf("not JSON: %s", b)
		}
		if got.Plan != "demo" {
			t.Errorf("no plan in %s", b)
		}
		// the event as --ui json wrote it, plus plan
		var streamEv event.Event
		_ = json.Unmarshal([]byte(want[i]), &streamEv)
		if streamEv.Plan == "" {
			streamEv.Plan = "demo"
		}
		w, _ := json.Marshal(streamEv)
		if b != string(w) {
			t.Errorf("notification %d:\n got %s\nwant %s", i, b, w)
		}
		if auth[i] != "Bearer s3cret" {
			t.Errorf("notification %d: Authorization %q", i, auth[i])
		}
	}

	texts, _ := slack.got()
	var lines []string
	for _, b := range texts {
		var m map[string]string
		if err := json.Unmarshal([]byte(b), &m); err != nil || m["text"] == "" {
			t.Fatalf("not a slack message: %s", b)
		}
		lines = append(lines, m["text"])
	}
	run, op := stream[0].Run, stream[0].Operator // the operator: whoever runs the test (#27 item 3)
	if op == "" {
		t.Errorf("run_start names no operator")
	}
	wantSlack := []string{
		fmt.Sprintf("rollout demo: run %s started by %s: revision %s, 3 hosts in 3 batches", run, op, v2[:7]),
		fmt.Sprintf("rollout demo: run %s: batch 1/3 done", run),
		fmt.Sprintf("rollout demo: run %s: batch 2/3 done", run),
		fmt.Sprintf("rollout demo: run %s: batch 3/3 done", run),
		fmt.Sprintf("rollout demo: run %s by %s finished: 3 ok", run, op),
	}
	if strings.Join(lines, "\n") != strings.Join(wantSlack, "\n") {
		t.Errorf("slack got\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(wantSlack, "\n"))
	}
	for _, ev := range stream {
		if ev.Event == event.Log && strings.Contains(ev.Message, "notification") {
			t.Errorf("a warning about notifications with healthy receivers: %s", ev.Message)
		}
	}

	// a rollback goes through the same sink
	r = e.rolloutWithEnv([]string{"E2E_HOOK_TOKEN=s3cret"}, "rollback", "--to", "v1", "--yes", "--ui", "json")
	if r.code != 0 {
		dump(t, r)
		t.Fatalf("rollback: exit %d", r.code)
	}
	back := parseEvents(t, r.stdout)
	texts, _ = slack.got()
	var first map[string]string
	_ = json.Unmarshal([]byte(texts[len(wantSlack)]), &first)
	if want := fmt.Sprintf("rollout demo: rollback %s started by %s: revision %s", back[0].Run, back[0].Operator, e.tags["v1"][:7]); !strings.HasPrefix(first["text"], want) {
		t.Errorf("rollback's first slack message %q, want it to start with %q", first["text"], want)
	}
	if bodies, _ = js.got(); !strings.Contains(bodies[len(bodies)-1], `"event":"run_done"`) || !strings.Contains(bodies[len(bodies)-1], back[0].Run) {
		t.Errorf("the json webhook's last notification is not the rollback's run_done: %s", bodies[len(bodies)-1])
	}
}

// A receiver that never answers and one that answers 500 do not change
// the run's outcome; the run warns once per endpoint, records before
// run_done what was not delivered, and exits within the flush bound
// after run_done.
func TestNotifyDeadReceiversDoNotHoldTheRun(t *testing.T) {
	t.Parallel()
	e := setup(t, 3, 1)
	e.waitAllUp(t)
	release := make(chan struct{})
	hang := newHookReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release) // before the server's Close (cleanup) waits for its handlers
	broken := newHookReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down for maintenance", http.StatusInternalServerError)
	})
	e.extra = fmt.Sprintf(`  batch = [1]
  notify "webhook" {
    url     = %q
    timeout = "1s"
    events  = ["run_start", "batch_start", "batch_done", "host_done", "run_done"]
  }
  notify "webhook" {
    url    = %q
    format = "slack"
  }`, hang.srv.URL, broken.srv.URL)
	v2 := e.tags["v2"]
	e.writePlan(v2, "halt", "0s")
	r := e.rollout("apply", "--yes", "--ui", "json")
	exited := time.Now()
	if r.code != 0 {
		dump(t, r)
		t.Fatalf("exit %d", r.code)
	}
	e.checkAtRevision(t, v2, "version=2")
	stream := parseEvents(t, r.stdout)
	last := stream[len(stream)-1]
	if last.Event != event.RunDone || last.Status != event.StatusOK {
		t.Fatalf("last event %+v", last)
	}
	var warned, undelivered []string
	for _, ev := range stream {
		if ev.Event != event.Log {
			continue
		}
		switch {
		case strings.Contains(ev.Message, "are not being delivered"):
			warned = append(warned, ev.Message)
		case strings.Contains(ev.Message, "were not delivered") || strings.Contains(ev.Message, "was not delivered"):
			undelivered = append(undelivered, ev.Message)
		}
	}
	t.Logf("warned:\n%s\nundelivered:\n%s\nstderr:\n%s", strings.Join(warned, "\n"), strings.Join(undelivered, "\n"), r.stderr)
	// the broken one is warned about once for sure; the hanging one when
	// its first request times out, which may come after the end
	if n := countContaining(warned, broken.srv.URL); n != 1 || countContaining(warned, hang.srv.URL) > 1 {
		t.Errorf("warnings:\n%s", strings.Join(warned, "\n"))
	}
	if countContaining(undelivered, broken.srv.URL) != 1 || countContaining(undelivered, hang.srv.URL) != 1 ||
		!strings.Contains(strings.Join(undelivered, "\n"), "HTTP 500") {
		t.Errorf("undelivered records:\n%s", strings.Join(undelivered, "\n"))
	}
	if prev := stream[len(stream)-2]; prev.Event != event.Log || !strings.Contains(prev.Message, "not delivered") {
		t.Errorf("the event before run_done is %+v, want the record of what was not delivered", prev)
	}
	// the end of the run waits for the receivers at most the flush bound
	// (5s in all), loosely: 20s from the last batch to the process's exit
	var lastBatch time.Time
	for _, ev := range stream {
		if ev.Event == event.BatchDone {
			lastBatch = ev.Time
		}
	}
	if d := exited.Sub(lastBatch); d > 20*time.Second {
		t.Errorf("%s from the last batch's end to rollout's exit, with dead receivers", d)
	}
	if !strings.Contains(r.stderr, "warning: ") || !strings.Contains(r.stderr, "not delivered") {
		t.Errorf("stderr does not say run_done was not delivered:\n%s", r.stderr)
	}
	if b, _ := broken.got(); len(b) == 0 {
		t.Error("the broken receiver was never tried")
	}
}

func countContaining(msgs []string, s string) int {
	n := 0
	for _, m := range msgs {
		if strings.Contains(m, s) {
			n++
		}
	}
	return n
}
