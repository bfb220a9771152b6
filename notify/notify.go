// Package notify delivers a run's events to the webhooks of the plan's
// notify blocks. A Notifier is an event sink: it picks the events each
// webhook wants, formats them (json or slack) and puts them on the
// webhook's bounded queue, which one goroutine per webhook POSTs in
// order, with a timeout per request and a few retries. Nothing it does
// blocks the run: a full queue drops (and counts), a dead endpoint is
// warned about once, and at the end of the run what was not delivered is
// recorded as a log event before run_done. Flushing at the end waits a
// bounded time, never more.
package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/rollout-sh/rollout/plan"
	"github.com/rollout-sh/rollout/rollout/event"
)

// Defaults of Options.
const (
	DefaultQueue     = 256
	DefaultRetries   = 3
	DefaultBackoff   = 250 * time.Millisecond
	DefaultFlushWait = 5 * time.Second
)

// Options tune delivery; the zero value is the defaults.
type Options struct {
	Queue     int                         // events a webhook may have waiting (DefaultQueue)
	Retries   int                         // further attempts after a 5xx, 429 or network error (DefaultRetries; -1: none)
	Backoff   time.Duration               // before the first retry, doubling (DefaultBackoff)
	FlushWait time.Duration               // at the end of the run, the most Settle and Close wait together (DefaultFlushWait)
	Client    *http.Client                // nil: a client without its own timeout (each request has the block's)
	Lookup    func(string) (string, bool) // reads the environment (nil: os.LookupEnv)
}

// Notifier is the run's notifications. It is an event.Sink and the
// rollout.Notifier of the run's Env.
type Notifier struct {
	plan  string
	opts  Options
	hooks []*webhook

	// emitMu is held while the run's emitter is called or changed: once
	// Settle has detached, no warning can reach the run after run_done
	emitMu sync.Mutex
	emit   func(event.Event) // the run's emitter, between Attach and Settle

	mu       sync.Mutex
	batches  int       // of run_start, for "batch 2/4"
	deadline time.Time // set by Settle: when the end-of-run flush stops waiting
	closed   bool
}

// webhook is one notify block's endpoint and its queue.
type webhook struct {
	n       *Notifier
	block   *plan.Notify
	url     string
	display string // url as messages show it
	headers map[string]string
	events  map[string]bool
	queue   chan item
	stop    chan struct{} // closed by Close: the request in flight and the retries stop
	done    chan struct{} // closed when the goroutine has ended

	mu      sync.Mutex
	idle    chan struct{} // closed when nothing is queued or in flight
	early   tally         // notifications queued before Settle
	late    tally         // after Settle: run_done
	isLate  bool          // Settle was called
	lastErr error
	warned  bool
}

// tally counts a webhook's notifications that were not delivered (yet).
type tally struct {
	pending int // queued or in flight
	dropped int // the queue was full
	failed  int // given up on
}

func (t tally) undelivered() int { return t.pending + t.dropped + t.failed }

type item struct {
	kind event.Kind
	body []byte
	late bool // queued after Settle
}

// New resolves the blocks' URLs and headers from the environment
// (opts.Lookup, normally os.LookupEnv) and starts one goroutine per block.
// A variable that is not set is a *plan.UnsetEnvError, and nothing is
// started. With no blocks, New returns a Notifier that does nothing.
func New(planName string, blocks []*plan.Notify, opts Options) (*Notifier, error) {
	if opts.Queue <= 0 {
		opts.Queue = DefaultQueue
	}
	if opts.Retries == 0 {
		opts.Retries = DefaultRetries
	} else if opts.Retries < 0 {
		opts.Retries = 0
	}
	if opts.Backoff <= 0 {
		opts.Backoff = DefaultBackoff
	}
	if opts.FlushWait <= 0 {
		opts.FlushWait = DefaultFlushWait
	}
	if opts.Client == nil {
		opts.Client = &http.Client{}
	}
	if opts.Lookup == nil {
		opts.Lookup = os.LookupEnv
	}
	n := &Notifier{plan: planName, opts: opts}
	for _, b := range blocks {
		target, display, headers, err := b.Resolve(opts.Lookup)
		if err != nil {
			return nil, err
		}
		w := &webhook{n: n, block: b, url: target, display: display, headers: headers, events: map[string]bool{},
			queue: make(chan item, opts.Queue), stop: make(chan struct{}), done: make(chan struct{})}
		for _, e := range b.Events {
			w.events[e] = true
		}
		n.hooks = append(n.hooks, w)
	}
	for _, w := range n.hooks {
		go w.loop()
	}
	return n, nil
}

// Attach gives the notifier the run's own emitter, through which it warns
// (a log event, once per webhook) that an endpoint is not taking its
// notifications.
func (n *Notifier) Attach(emit func(event.Event)) {
	n.emitMu.Lock()
	defer n.emitMu.Unlock()
	n.emit = emit
}

// Names maps the names a notify block's events lists to the events they
// match.
var Names = map[string]func(event.Event) bool{
	"run_start":        kind(event.RunStart),
	"preflight_done":   kind(event.PreflightDone),
	"batch_start":      kind(event.BatchStart),
	"batch_done":       kind(event.BatchDone),
	"host_done":        kind(event.HostDone),
	"host_failed":      func(e event.Event) bool { return e.Event == event.HostDone && Failed(event.Outcome(e.Status)) },
	"analysis":         kind(event.Analysis),
	"hook":             kind(event.Hook),
	"lb_reload":        kind(event.LBReload),
	"waiting":          kind(event.Waiting),
	"approval_waiting": func(e event.Event) bool { return e.WaitReason() == event.WaitApproval },
	"approved":         kind(event.Approved),
	"run_done":         kind(event.RunDone),
}

func kind(k event.Kind) func(event.Event) bool {
	return func(e event.Event) bool { return e.Event == k }
}

// Failed reports whether a host that ended a run with o failed.
func Failed(o event.Outcome) bool {
	switch o {
	case event.OutcomeFailed, event.OutcomeDrained, event.OutcomeRolledBack, event.OutcomeUnknown:
		return true
	}
	return false
}

func (w *webhook) wants(e event.Event) bool {
	for name := range w.events {
		if m := Names[name]; m != nil && m(e) {
			return true
		}
	}
	return false
}

// Emit queues e for every webhook that wants it. It never blocks: a full
// queue drops the event and counts it.
func (n *Notifier) Emit(e event.Event) {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return
	}
	if e.Event == event.RunStart {
		n.batches = len(e.Batches)
	}
	batches := n.batches
	n.mu.Unlock()
	for _, w := range n.hooks {
		if !w.wants(e) {
			continue
		}
		body, err := n.body(w.block.Format, e, batches)
		if err != nil {
			continue
		}
		w.enqueue(item{kind: e.Event, body: body})
	}
}

// body is what is POSTed for e.
func (n *Notifier) body(format string, e event.Event, batches int) ([]byte, error) {
	if format == plan.NotifySlack {
		return json.Marshal(map[string]string{"text": Summary(n.plan, e, batches)})
	}
	// the event as docs/json-events.md documents it, with the plan's
	// name on every event; an operator field on the event (#27 item 3)
	// goes out as the event carries it
	e.Plan = n.plan
	return json.Marshal(e)
}

func (w *webhook) tally(late bool) *tally {
	if late {
		return &w.late
	}
	return &w.early
}

func (w *webhook) enqueue(it item) {
	w.mu.Lock()
	defer w.mu.Unlock()
	it.late = w.isLate
	t := w.tally(it.late)
	select {
	case w.queue <- it:
		if w.early.pending+w.late.pending == 0 {
			w.idle = make(chan struct{})
		}
		t.pending++
	default:
		t.dropped++
	}
}

func (w *webhook) finished(it item, err error) {
	w.mu.Lock()
	t := w.tally(it.late)
	if err != nil {
		t.failed++
		w.lastErr = err
	}
	t.pending--
	if w.early.pending+w.late.pending == 0 {
		close(w.idle)
	}
	warn := err != nil && !w.warned
	w.warned = w.warned || warn
	w.mu.Unlock()
	if warn {
		w.n.warn(fmt.Sprintf("notifications to %s are not being delivered (%v); the run goes on, and its end records what was not delivered", w.display, err))
	}
}

// warn emits a log event through the run's emitter, when attached.
func (n *Notifier) warn(msg string) {
	n.emitMu.Lock()
	defer n.emitMu.Unlock()
	if n.emit != nil {
		n.emit(event.Event{Event: event.Log, Level: "warn", Message: msg})
	}
}

func (w *webhook) loop() {
	defer close(w.done)
	for {
		select {
		case <-w.stop:
			return
		case it := <-w.queue:
			w.finished(it, w.deliver(it))
		}
	}
}

// deliver POSTs one notification: a 2xx is delivered; a 5xx, a 429 or a
// network error (the timeout included) is tried again after a backoff,
// up to Retries more times; any other status is not.
func (w *webhook) deliver(it item) error {
	backoff := w.n.opts.Backoff
	var err error
	for attempt := 0; ; attempt++ {
		var retry bool
		retry, err = w.post(it)
		if err == nil || !retry || attempt >= w.n.opts.Retries {
			return err
		}
		t := time.NewTimer(backoff)
		select {
		case <-w.stop:
			t.Stop()
			return err
		case <-t.C:
		}
		backoff *= 2
	}
}

func (w *webhook) post(it item) (retry bool, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), w.block.Timeout)
	defer cancel()
	go func() {
		select {
		case <-w.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(it.body))
	if err != nil {
		return false, fmt.Errorf("%s: %w", it.kind, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "rollout")
	for k, v := range w.headers {
		req.Header.Set(k, v)
	}
	resp, err := w.n.opts.Client.Do(req)
	select {
	case <-w.stop:
		if err != nil {
			return false, fmt.Errorf("%s: still being sent when rollout exited", it.kind)
		}
	default:
	}
	if err != nil {
		if ctx.Err() == context.DeadlineExceeded {
			return true, fmt.Errorf("%s: no answer within %s", it.kind, w.block.Timeout)
		}
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // without the URL, which may be a secret
		}
		return true, fmt.Errorf("%s: %w", it.kind, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return false, nil
	}
	return resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests,
		fmt.Errorf("%s: HTTP %s", it.kind, resp.Status)
}

// Settle is called at the end of the run, just before run_done: it waits
// (at most three fifths of Options.FlushWait) for what is queued to be delivered, then
// records every notification not delivered, per webhook, as a warn log
// event, and detaches from the run's emitter.
func (n *Notifier) Settle() {
	n.mu.Lock()
	n.deadline = time.Now().Add(n.opts.FlushWait)
	// two fifths of the bound are kept for run_done, so that a dead
	// endpoint using all of this wait cannot cut off a live one's run_done
	deadline := n.deadline.Add(-n.opts.FlushWait * 2 / 5)
	n.mu.Unlock()
	n.wait(deadline)
	for _, w := range n.hooks {
		w.mu.Lock()
		w.isLate = true
		msg := w.undelivered(w.early, "the run ended")
		w.mu.Unlock()
		if msg != "" {
			n.warn(msg)
		}
	}
	n.Attach(nil)
}

// Close is called when the run is over: it waits for what is still queued
// (run_done) for what is left of the flush budget that Settle started
// (all of it when Settle was not called), stops the goroutines, and
// returns what was not delivered since Settle, one line per webhook, for
// stderr. Close may be called more than once.
func (n *Notifier) Close() []string {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	deadline := n.deadline
	if deadline.IsZero() {
		deadline = time.Now().Add(n.opts.FlushWait)
	}
	n.mu.Unlock()
	n.wait(deadline)
	for _, w := range n.hooks {
		close(w.stop)
	}
	var out []string
	for _, w := range n.hooks {
		<-w.done
		w.mu.Lock()
		t := w.late
		if !w.isLate { // no Settle: everything is counted here
			t = tally{w.early.pending + t.pending, w.early.dropped + t.dropped, w.early.failed + t.failed}
		}
		msg := w.undelivered(t, "rollout exited")
		w.mu.Unlock()
		if msg != "" {
			out = append(out, msg)
		}
	}
	return out
}

// wait waits until every queue is empty, or until deadline.
func (n *Notifier) wait(deadline time.Time) {
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	for _, w := range n.hooks {
		w.mu.Lock()
		idle := w.idle
		busy := w.early.pending+w.late.pending > 0
		w.mu.Unlock()
		if !busy {
			continue
		}
		select {
		case <-idle:
		case <-t.C:
			return
		}
	}
}

// undelivered says how many of the notifications t counts were not
// delivered and why, or "" when all were; when is when those still queued
// were given up. w.mu is held.
func (w *webhook) undelivered(t tally, when string) string {
	n := t.undelivered()
	if n == 0 {
		return ""
	}
	var why []string
	if t.dropped > 0 {
		why = append(why, fmt.Sprintf("%d dropped (the queue of %d was full)", t.dropped, cap(w.queue)))
	}
	if t.failed > 0 {
		why = append(why, fmt.Sprintf("%d failed (last: %v)", t.failed, w.lastErr))
	}
	if t.pending > 0 {
		why = append(why, fmt.Sprintf("%d still queued when %s", t.pending, when))
	}
	what := fmt.Sprintf("%d notifications to %s were", n, w.display)
	if n == 1 {
		what = fmt.Sprintf("1 notification to %s was", w.display)
	}
	return fmt.Sprintf("%s not delivered: %s", what, strings.Join(why, ", "))
}
