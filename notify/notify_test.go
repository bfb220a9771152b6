package notify

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rollout-sh/rollout/plan"
	"github.com/rollout-sh/rollout/rollout/event"
)

// blocks parses notify blocks (their HCL) inside a minimal plan.
func blocks(t *testing.T, hcl ...string) []*plan.Notify {
	t.Helper()
	src := `plan "demo" {
  repo      = "/r"
  inventory = "inv.ini"
  hosts     = "web"
  revision  = "v1"
  restart   = "true"
  file "a" {
    source = "a"
    dest   = "/a"
  }
  health "tcp" {
    address = "${host.address}:80"
  }
` + strings.Join(hcl, "\n") + "\n}\n"
	p, diags := plan.Parse("rollout.hcl", []byte(src))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	return p.Notify
}

// receiver records the bodies POSTed to it, in order; answer decides the
// response (nil: 200).
type receiver struct {
	mu      sync.Mutex
	bodies  [][]byte
	headers []http.Header
	answer  func(n int, w http.ResponseWriter, r *http.Request) // n: 0-based request number
	calls   int
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	n := rc.calls
	rc.calls++
	answer := rc.answer
	rc.mu.Unlock()
	if answer != nil {
		answer(n, w, r)
		if w.Header().Get("X-Failed") != "" {
			return
		}
	}
	rc.mu.Lock()
	rc.bodies = append(rc.bodies, b)
	rc.headers = append(rc.headers, r.Header.Clone())
	rc.mu.Unlock()
}

func (rc *receiver) got() [][]byte {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.bodies)
}

// logs collects the notifier's warnings (log events through the run's
// emitter).
type logs struct {
	mu  sync.Mutex
	msg []string
}

func (l *logs) emit(e event.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e.Event == event.Log && e.Level == "warn" {
		l.msg = append(l.msg, e.Message)
	}
}

func (l *logs) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.msg)
}

// run emits a small run: start, 3 batches of host events, a failure, done.
func run(n *Notifier) {
	at := time.Date(2026, 12, 8, 0, 0, 0, 0, time.UTC)
	emit := func(e event.Event) {
		e.Run, e.Time = "r-1", at
		at = at.Add(time.Second)
		n.Emit(e)
	}
	emit(event.Event{Event: event.RunStart, Schema: 1, Plan: "demo", Revision: "abc1234def5678abc1234def5678abc1234def56", Message: "apply",
		Hosts: []string{"web1", "web2", "web3", "web4"}, Batches: [][]string{{"web1"}, {"web2"}, {"web3", "web4"}}})
	for b, hosts := range [][]string{{"web1"}, {"web2"}, {"web3", "web4"}} {
		emit(event.Event{Event: event.BatchStart, Batch: b + 1, Hosts: hosts})
		for _, h := range hosts {
			emit(event.Event{Event: event.HostPhase, Host: h, Batch: b + 1, Phase: event.PhaseDrain, Status: "running"})
			if h == "web4" {
				emit(event.Event{Event: event.HostDone, Host: h, Batch: b + 1, Status: string(event.OutcomeRolledBack), Message: "health: no answer"})
				continue
			}
			emit(event.Event{Event: event.HostDone, Host: h, Batch: b + 1, Status: string(event.OutcomeOK)})
		}
		status := "ok"
		if b == 2 {
			status = "failed"
		}
		emit(event.Event{Event: event.BatchDone, Batch: b + 1, Status: status})
		if b == 0 {
			emit(event.Event{Event: event.Waiting, Status: string(event.WaitApproval), Batch: 2, Message: "canary web1 is done: approve batch 2 (1 host)"})
			emit(event.Event{Event: event.Approved, Batch: 2, Message: "approved by a person"})
		}
	}
	n.Settle()
	emit(event.Event{Event: event.RunDone, Status: "failed", ExitCode: event.Int(1), Message: "rolled back: web4",
		Counts: map[event.Outcome]int{event.OutcomeOK: 3, event.OutcomeRolledBack: 1}, Next: "rollout apply rollout.hcl"})
}

func TestJSONInOrderDefaultEvents(t *testing.T) {
	rc := &receiver{}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	n, err := New("demo", blocks(t, fmt.Sprintf(`notify "webhook" { url = %q }`, srv.URL)), Options{})
	if err != nil {
		t.Fatal(err)
	}
	l := &logs{}
	n.Attach(l.emit)
	run(n)
	if msgs := n.Close(); len(msgs) > 0 {
		t.Fatalf("undelivered: %v", msgs)
	}
	var kinds []string
	for _, b := range rc.got() {
		var e map[string]any
		if err := json.Unmarshal(b, &e); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if e["plan"] != "demo" || e["run"] != "r-1" {
			t.Errorf("no plan or run: %s", b)
		}
		k := e["event"].(string)
		if k == "host_done" {
			k += ":" + e["host"].(string)
		}
		kinds = append(kinds, k)
	}
	want := []string{"run_start", "batch_done", "waiting", "batch_done", "host_done:web4", "batch_done", "run_done"}
	if !slices.Equal(kinds, want) {
		t.Errorf("delivered %v, want %v", kinds, want)
	}
	// exactly the event as --ui json writes it, with plan
	var first event.Event
	_ = json.Unmarshal(rc.got()[0], &first)
	if first.Schema != 1 || len(first.Batches) != 3 || first.Revision == "" || first.Message != "apply" {
		t.Errorf("run_start: %+v", first)
	}
	if w := l.all(); len(w) > 0 {
		t.Errorf("warnings: %v", w)
	}
}

func TestSlackAndChosenEvents(t *testing.T) {
	rc := &receiver{}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	n, err := New("demo", blocks(t, fmt.Sprintf(`notify "webhook" {
  url    = %q
  format = "slack"
  events = ["run_start", "batch_start", "host_done", "approval_waiting", "run_done"]
}`, srv.URL)), Options{})
	if err != nil {
		t.Fatal(err)
	}
	run(n)
	n.Close()
	var texts []string
	for _, b := range rc.got() {
		var m map[string]string
		if err := json.Unmarshal(b, &m); err != nil || len(m) != 1 {
			t.Fatalf("not a slack message: %s", b)
		}
		texts = append(texts, m["text"])
	}
	want := []string{
		"rollout demo: run r-1 started: revision abc1234, 4 hosts in 3 batches",
		"rollout demo: run r-1: batch 1/3 started: web1",
		"rollout demo: run r-1: web1 ok",
		"rollout demo: run r-1 waits for approval: canary web1 is done: approve batch 2 (1 host)",
		"rollout demo: run r-1: batch 2/3 started: web2",
		"rollout demo: run r-1: web2 ok",
		"rollout demo: run r-1: batch 3/3 started: web3, web4",
		"rollout demo: run r-1: web3 ok",
		"rollout demo: run r-1: web4 failed (rolled_back): health: no answer",
		"rollout demo: run r-1 failed: 1 rolled back, 3 ok (rolled back: web4) — next: rollout apply rollout.hcl",
	}
	if !slices.Equal(texts, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(texts, "\n"), strings.Join(want, "\n"))
	}
	if s := Summary("demo", event.Event{Event: event.BatchDone, Run: "r-2", Batch: 3, Wave: "dc2", Status: "ok"}, 4); s != "rollout demo: run r-2: batch 3/4 (wave dc2) done" {
		t.Errorf("batch_done in a wave: %q", s)
	}
	if s := Summary("demo", event.Event{Event: event.RunDone, Run: "r-2", Status: "ok", Counts: map[event.Outcome]int{event.OutcomeOK: 4}, Next: "rollout status x"}, 4); s != "rollout demo: run r-2 finished: 4 ok" {
		t.Errorf("ok run_done: %q", s)
	}
	if s := Summary("demo", event.Event{Event: event.RunStart, Run: "r-3", Message: "rollback", Revision: "0123456789", Hosts: []string{"a"}, Batches: [][]string{{"a"}}}, 0); s != "rollout demo: rollback r-3 started: revision 0123456, 1 host in 1 batch" {
		t.Errorf("rollback run_start: %q", s)
	}
	// the operator is named on run start, approvals and run done
	op := event.Event{Run: "r-4", Operator: "octocat", OperatorURL: "https://github.com/acme/web/actions/runs/42"}
	start, approved, done := op, op, op
	start.Event, start.Revision, start.Hosts, start.Batches = event.RunStart, "0123456789", []string{"a"}, [][]string{{"a"}}
	approved.Event, approved.Batch, approved.Message = event.Approved, 2, "approved by --auto-approve"
	done.Event, done.Status, done.Counts = event.RunDone, "ok", map[event.Outcome]int{event.OutcomeOK: 1}
	for e, want := range map[*event.Event]string{
		&start:    "rollout demo: run r-4 started by octocat: revision 0123456, 1 host in 1 batch",
		&approved: "rollout demo: run r-4: batch 2/3 approved by octocat: approved by --auto-approve",
		&done:     "rollout demo: run r-4 by octocat finished: 1 ok",
	} {
		if s := Summary("demo", *e, 3); s != want {
			t.Errorf("%s with an operator: %q, want %q", e.Event, s, want)
		}
	}
}

func TestRetriesOn500(t *testing.T) {
	rc := &receiver{answer: func(n int, w http.ResponseWriter, r *http.Request) {
		if n < 2 {
			w.Header().Set("X-Failed", "1")
			w.WriteHeader(http.StatusInternalServerError)
		}
	}}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	n, err := New("demo", blocks(t, fmt.Sprintf(`notify "webhook" {
  url    = %q
  events = ["run_start"]
}`, srv.URL)), Options{Backoff: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	l := &logs{}
	n.Attach(l.emit)
	n.Emit(event.Event{Event: event.RunStart, Run: "r-1"})
	n.Settle()
	if msgs := n.Close(); len(msgs) > 0 {
		t.Fatal(msgs)
	}
	if len(rc.got()) != 1 || rc.calls != 3 {
		t.Errorf("delivered %d after %d requests, want 1 after 3", len(rc.got()), rc.calls)
	}
	if w := l.all(); len(w) > 0 {
		t.Errorf("warnings: %v", w)
	}
}

func TestGivesUpAndRecords(t *testing.T) {
	rc := &receiver{answer: func(n int, w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Failed", "1")
		if r.Header.Get("X-Kind") == "" {
			w.WriteHeader(http.StatusBadGateway)
		}
	}}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	n, err := New("demo", blocks(t, fmt.Sprintf(`notify "webhook" { url = %q }`, srv.URL)), Options{Backoff: time.Millisecond, Retries: 2})
	if err != nil {
		t.Fatal(err)
	}
	l := &logs{}
	n.Attach(l.emit)
	run(n)
	late := n.Close()
	w := l.all()
	// warned once, then the end of the run says how many, before run_done
	if len(w) != 2 || !strings.Contains(w[0], "are not being delivered (run_start: HTTP 502 Bad Gateway)") ||
		w[1] != "6 notifications to "+srv.URL+" were not delivered: 6 failed (last: batch_done: HTTP 502 Bad Gateway)" {
		t.Errorf("warnings:\n%s", strings.Join(w, "\n"))
	}
	if len(late) != 1 || late[0] != "1 notification to "+srv.URL+" was not delivered: 1 failed (last: run_done: HTTP 502 Bad Gateway)" {
		t.Errorf("after run_done: %q", late)
	}
	if rc.calls != 7*3 {
		t.Errorf("%d requests, want 21 (7 notifications, 3 tries each)", rc.calls)
	}
}

func TestClientErrorNotRetried(t *testing.T) {
	rc := &receiver{answer: func(n int, w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Failed", "1")
		w.WriteHeader(http.StatusNotFound)
	}}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	n, _ := New("demo", blocks(t, fmt.Sprintf(`notify "webhook" {
  url    = %q
  events = ["run_start"]
}`, srv.URL)), Options{Backoff: time.Millisecond})
	n.Emit(event.Event{Event: event.RunStart, Run: "r-1"})
	if late := n.Close(); len(late) != 1 || !strings.Contains(late[0], "HTTP 404 Not Found") || rc.calls != 1 {
		t.Errorf("%d requests; %q", rc.calls, late)
	}
}

// A receiver that never answers costs the run nothing while it goes on,
// and its end no more than the flush bound.
func TestHangingReceiverBounded(t *testing.T) {
	release := make(chan struct{})
	rc := &receiver{answer: func(n int, w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Failed", "1")
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	defer close(release)
	n, err := New("demo", blocks(t, fmt.Sprintf(`notify "webhook" {
  url     = %q
  timeout = "100ms"
}`, srv.URL)), Options{FlushWait: 300 * time.Millisecond, Backoff: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	l := &logs{}
	n.Attach(l.emit)
	start := time.Now()
	run(n)
	late := n.Close()
	// generous: the bound is 300ms of flush; never a timed assertion of
	// the exact figure
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the run's end waited %s for a hanging receiver", d)
	}
	w := l.all()
	// the warning that the endpoint does not answer comes when the first
	// request times out, which may be after the run's end
	if len(w) < 1 || len(w) > 2 || (len(w) == 2 && !strings.Contains(w[0], "run_start: no answer within 100ms")) ||
		!strings.Contains(w[len(w)-1], "6 notifications to") || !strings.Contains(w[len(w)-1], "still queued when the run ended") {
		t.Errorf("warnings:\n%s", strings.Join(w, "\n"))
	}
	if len(late) != 1 || !strings.Contains(late[0], "1 notification to") {
		t.Errorf("after run_done: %q", late)
	}
}

func TestQueueFullDrops(t *testing.T) {
	release := make(chan struct{})
	rc := &receiver{answer: func(n int, w http.ResponseWriter, r *http.Request) {
		<-release
	}}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	n, _ := New("demo", blocks(t, fmt.Sprintf(`notify "webhook" {
  url    = %q
  events = ["host_done"]
}`, srv.URL)), Options{Queue: 4})
	l := &logs{}
	n.Attach(l.emit)
	for i := range 20 {
		n.Emit(event.Event{Event: event.HostDone, Run: "r-1", Host: fmt.Sprintf("web%d", i), Status: "ok"})
	}
	close(release)
	n.Settle()
	n.Close()
	got := len(rc.got())
	w := l.all()
	// 4 queued, and at most one taken off the queue before it filled
	if got < 4 || got > 5 || len(w) != 1 || !strings.Contains(w[0], fmt.Sprintf("%d dropped (the queue of 4 was full)", 20-got)) {
		t.Errorf("delivered %d; warnings %q", got, w)
	}
	// in the order emitted (the ones dropped are whichever came while
	// the queue was full)
	last := -1
	for _, b := range rc.got() {
		var e event.Event
		_ = json.Unmarshal(b, &e)
		var i int
		fmt.Sscanf(e.Host, "web%d", &i)
		if i <= last {
			t.Errorf("web%d after web%d", i, last)
		}
		last = i
	}
}

func TestHeadersFromEnvironment(t *testing.T) {
	rc := &receiver{}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	b := blocks(t, fmt.Sprintf(`notify "webhook" {
  url     = %q
  events  = ["run_start"]
  headers = { Authorization = "Bearer ${env.DEPLOY_HOOK_TOKEN}", X-Plan = "${plan.name}" }
}`, srv.URL))
	if _, err := New("demo", b, Options{Lookup: func(string) (string, bool) { return "", false }}); err == nil ||
		err.Error() != "notify header Authorization at rollout.hcl:17: environment variable DEPLOY_HOOK_TOKEN is not set" {
		t.Fatalf("unset: %v", err)
	}
	n, err := New("demo", b, Options{Lookup: func(k string) (string, bool) { return "t0ken", k == "DEPLOY_HOOK_TOKEN" }})
	if err != nil {
		t.Fatal(err)
	}
	n.Emit(event.Event{Event: event.RunStart, Run: "r-1"})
	n.Close()
	if len(rc.headers) != 1 || rc.headers[0].Get("Authorization") != "Bearer t0ken" || rc.headers[0].Get("X-Plan") != "demo" ||
		rc.headers[0].Get("Content-Type") != "application/json" {
		t.Errorf("headers %v", rc.headers)
	}
}

// Every name a plan may list matches something.
func TestNamesCoverPlan(t *testing.T) {
	for _, name := range plan.NotifyEvents {
		if Names[name] == nil {
			t.Errorf("plan.NotifyEvents has %q, notify.Names does not", name)
		}
	}
	if len(Names) != len(plan.NotifyEvents) {
		t.Errorf("notify.Names has %d names, plan.NotifyEvents %d", len(Names), len(plan.NotifyEvents))
	}
}

// A dead endpoint using all of the wait before run_done does not cut off
// a live one's run_done.
func TestDeadEndpointDoesNotStarveLiveOne(t *testing.T) {
	release := make(chan struct{})
	dead := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer dead.Close()
	defer close(release)
	rc := &receiver{}
	live := httptest.NewServer(rc)
	defer live.Close()
	n, err := New("demo", blocks(t, fmt.Sprintf(`notify "webhook" {
  url     = %q
  timeout = "10s"
}`, dead.URL), fmt.Sprintf(`notify "webhook" { url = %q }`, live.URL)), Options{FlushWait: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	run(n)
	late := n.Close()
	got := rc.got()
	if len(got) == 0 || !strings.Contains(string(got[len(got)-1]), `"event":"run_done"`) {
		t.Errorf("the live endpoint's last notification: %s", got[len(got)-1])
	}
	// run_done is still in the dead endpoint's queue, or (on a slow
	// machine the sender took it before the end) still being sent
	if len(late) != 1 || !strings.Contains(late[0], dead.URL) ||
		!strings.Contains(late[0], "still queued when rollout exited") && !strings.Contains(late[0], "run_done: still being sent when rollout exited") {
		t.Errorf("after run_done: %q", late)
	}
}
