package rollout

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rollout-sh/rollout/internal/localrun"
	"github.com/rollout-sh/rollout/journal"
	"github.com/rollout-sh/rollout/rollout/event"
)

// fakeBackend is a lock store and journal store for unit tests: the test
// decides when the lock is lost and when a record cannot be written.
type fakeBackend struct {
	mu       sync.Mutex
	lost     chan error
	released bool
	records  []event.Event
	failing  error // every Record fails with it once set
}

func newFakeBackend() *fakeBackend { return &fakeBackend{lost: make(chan error, 1)} }

func (b *fakeBackend) Lock(context.Context, string, journal.LockInfo) (journal.HeldLock, error) {
	return fakeHeld{b}, nil
}

func (b *fakeBackend) Record(_ context.Context, e event.Event) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.failing != nil {
		return b.failing
	}
	b.records = append(b.records, e)
	return nil
}

func (b *fakeBackend) loseLock(err error) { b.lost <- err }

func (b *fakeBackend) failRecords(err error) { b.mu.Lock(); b.failing = err; b.mu.Unlock() }

type fakeHeld struct{ b *fakeBackend }

func (h fakeHeld) Lost() <-chan error { return h.b.lost }
func (h fakeHeld) Release(context.Context) error {
	h.b.mu.Lock()
	defer h.b.mu.Unlock()
	if !h.b.released {
		h.b.released = true
		close(h.b.lost)
	}
	return nil
}

// checkStoppedSafely: web1 (in flight when the cause struck) finished and
// serves, later batches never started, nothing is left drained, exit 1
// naming the cause.
func checkStoppedSafely(t *testing.T, f *fleet, res *Result, err error, cause error, why string) {
	t.Helper()
	if err == nil || ExitCode(err) != ExitFailed {
		t.Fatalf("err = %v (exit %d), want exit 1", err, ExitCode(err))
	}
	if !errors.Is(err, cause) {
		t.Fatalf("err = %v, want it to wrap %v", err, cause)
	}
	if res.Outcomes["web1"] != event.OutcomeOK {
		t.Fatalf("web1 (in flight) = %s, want ok: the step in flight finishes", res.Outcomes["web1"])
	}
	for _, h := range []string{"web2", "web3"} {
		if res.Outcomes[h] != event.OutcomeNotStarted {
			t.Fatalf("%s = %s, want not_started", h, res.Outcomes[h])
		}
		if f.rec.count("drain "+h) != 0 {
			t.Fatalf("%s was drained after the run had to stop", h)
		}
	}
	if d := f.anyDrained(); len(d) > 0 {
		t.Fatalf("left drained: %v", d)
	}
	var done *event.Event
	f.rec.mu.Lock()
	for i := range f.rec.events {
		if f.rec.events[i].Event == event.RunDone {
			done = &f.rec.events[i]
		}
	}
	f.rec.mu.Unlock()
	if done == nil || done.Status != "failed" || !strings.Contains(done.Message, why) {
		t.Fatalf("run_done = %+v, want failed saying %q", done, why)
	}
}

func TestLostControllerLockStopsTheRunSafely(t *testing.T) {
	f := newFleet(t, 3, `batch = [1]`)
	b := newFakeBackend()
	f.unhealthy = func(host string) error {
		if host == "web1" {
			b.loseLock(fmt.Errorf("%w: etcd lease 42 expired", journal.ErrLockLost))
			time.Sleep(50 * time.Millisecond) // the watcher gets it while web1 is still in its health gate
		}
		return nil
	}
	res, err := f.apply(Request{}, Options{Backend: b})
	checkStoppedSafely(t, f, res, err, journal.ErrLockLost, "lease 42 expired")
}

func TestUnwritableJournalStopsTheRunSafely(t *testing.T) {
	f := newFleet(t, 3, `batch = [1]`)
	b := newFakeBackend()
	f.unhealthy = func(host string) error {
		if host == "web1" {
			b.failRecords(errors.New("etcd http://127.0.0.1:1: no quorum"))
		}
		return nil
	}
	res, err := f.apply(Request{}, Options{Backend: b})
	checkStoppedSafely(t, f, res, err, ErrJournalUnwritable, "no quorum")
	// what was recorded before the failure is complete up to web1's health
	var sawHealth bool
	for _, e := range b.records {
		if e.Host == "web1" && e.Event == event.HostPhase && e.Phase == event.PhaseHealth {
			sawHealth = true
		}
		if e.Host == "web2" && e.Batch > 0 {
			t.Fatalf("a record of web2's pipeline reached the journal: %+v", e)
		}
	}
	if !sawHealth {
		t.Fatal("web1's health phase was not recorded before its step went on")
	}
}

// A host lock taken away mid-run (unlock, or an expired lock taken over)
// stops the run too, not only a warning.
func TestLostHostLockStopsTheRunSafely(t *testing.T) {
	f := newFleet(t, 3, `batch = [1]`)
	f.unhealthy = func(host string) error {
		if host == "web1" {
			root := filepath.Join(f.dir, "hosts", "web1", "state")
			if err := journal.BreakHostLock(context.Background(), localrun.Runner{}, root, "web"); err != nil {
				return err
			}
			// let the renewer (every LockTTL/3) find the lock gone
			time.Sleep(400 * time.Millisecond)
		}
		return nil
	}
	res, err := f.apply(Request{}, Options{LockTTL: 300 * time.Millisecond})
	checkStoppedSafely(t, f, res, err, journal.ErrLockLost, "web1")
}
