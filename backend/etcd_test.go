package backend

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rollout-sh/rollout/internal/fleet"
	"github.com/rollout-sh/rollout/journal"
	"github.com/rollout-sh/rollout/plan"
	"github.com/rollout-sh/rollout/rollout/event"
)

// These tests run against a real etcd (Debian's etcd-server) on loopback.

func openT(t *testing.T, eps []string, dir string) *Etcd {
	t.Helper()
	e, err := OpenEtcd(context.Background(), Config{Kind: "etcd", Endpoints: eps, Prefix: "/rollout/"}, "web", journal.NewLocal(dir))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

func ev(run string, kind event.Kind, host string, i int) event.Event {
	return event.Event{Time: time.Date(2026, 1, 1, 0, 0, i, 0, time.UTC), Run: run, Event: kind, Host: host, Plan: "web"}
}

func TestEtcdLockRefusesNamesOwnerAndUnlockRevokes(t *testing.T) {
	cl := fleet.StartEtcdT(t, 1)
	a := openT(t, cl.Endpoints(), t.TempDir())
	b := openT(t, cl.Endpoints(), t.TempDir())
	ctx := context.Background()
	held, err := a.Lock(ctx, "web", journal.LockInfo{Owner: "alice@laptop", PID: 4242, RunID: "r-a", TTL: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.Lock(ctx, "web", journal.LockInfo{Owner: "ci@runner", PID: 7, RunID: "r-b", TTL: 10 * time.Second})
	var le *journal.LockedError
	if !errors.As(err, &le) || le.Info.Owner != "alice@laptop" || le.Info.RunID != "r-a" || !strings.Contains(err.Error(), "alice@laptop") || !strings.Contains(err.Error(), cl.Endpoints()[0]) {
		t.Fatalf("second lock: %v, want a refusal naming alice@laptop, run r-a and the endpoint", err)
	}
	li, err := b.ReadLock(ctx, "web")
	if err != nil || li == nil || li.PID != 4242 {
		t.Fatalf("ReadLock = %+v, %v", li, err)
	}
	// unlock from the other controller revokes the lease: the holder hears
	if err := b.BreakLock(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	select {
	case lerr := <-held.Lost():
		if !errors.Is(lerr, journal.ErrLockLost) {
			t.Fatalf("lost: %v", lerr)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the holder did not notice its revoked lease")
	}
	// and the lock is free
	h2, err := b.Lock(ctx, "web", journal.LockInfo{Owner: "ci@runner", RunID: "r-b", TTL: 10 * time.Second})
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	if err := h2.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if li, _ := a.ReadLock(ctx, "web"); li != nil {
		t.Fatalf("released lock still there: %+v", li)
	}
	// a released lock does not report a loss
	if err, ok := <-h2.Lost(); ok {
		t.Fatalf("released lock reported lost: %v", err)
	}
}

func TestEtcdJournalAgreesWithCacheAndMigrateIsIdempotent(t *testing.T) {
	cl := fleet.StartEtcdT(t, 1)
	dir := t.TempDir()
	a := openT(t, cl.Endpoints(), dir)
	ctx := context.Background()
	held, err := a.Lock(ctx, "web", journal.LockInfo{Owner: "alice@laptop", RunID: "r-1", TTL: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var want []event.Event
	for i, k := range []event.Kind{event.RunStart, event.BatchStart, event.HostPhase, event.HostDone, event.RunDone} {
		e := ev("r-1", k, "web1", i)
		want = append(want, e)
		if err := a.Record(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	_ = held.Release(ctx)
	got, err := a.Events(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	cache, err := journal.Read(filepath.Join(dir, journal.File))
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(cache) || len(got) != len(want) {
		t.Fatalf("etcd and cache disagree:\netcd  %v\ncache %v", got, cache)
	}
	// a local journal from before etcd: migrate copies it once
	local := []event.Event{ev("r-0", event.RunStart, "", 0), ev("r-0", event.HostDone, "web1", 1), ev("r-0", event.RunDone, "", 2)}
	for _, round := range []struct{ copied, present int }{{3, 5}, {0, 8}} {
		res, err := a.Migrate(ctx, "web", append(local, want...))
		if err != nil {
			t.Fatal(err)
		}
		if res.Copied != round.copied || res.Present != round.present || res.Runs != 2 {
			t.Fatalf("migrate = %+v, want %d copied, %d present", res, round.copied, round.present)
		}
	}
	got, _ = a.Events(ctx, "web")
	if len(got) != 8 || got[0].Run != "r-0" || got[3].Run != "r-1" {
		t.Fatalf("after migrate, runs out of order: %v", got)
	}
}

// A run that lost its lock cannot write its journal any more.
func TestEtcdRecordNeedsTheLock(t *testing.T) {
	cl := fleet.StartEtcdT(t, 1)
	a := openT(t, cl.Endpoints(), t.TempDir())
	ctx := context.Background()
	held, err := a.Lock(ctx, "web", journal.LockInfo{Owner: "a", RunID: "r-1", TTL: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Record(ctx, ev("r-1", event.RunStart, "", 0)); err != nil {
		t.Fatal(err)
	}
	if err := openT(t, cl.Endpoints(), t.TempDir()).BreakLock(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	<-held.Lost()
	if err := a.Record(ctx, ev("r-1", event.BatchStart, "", 1)); err == nil {
		t.Fatal("a run without its lock wrote a journal record")
	}
	if a.Pending() != 1 {
		t.Fatalf("pending = %d, want the record kept for later", a.Pending())
	}
}

func TestEtcdFollowStreamsARunInProgress(t *testing.T) {
	cl := fleet.StartEtcdT(t, 1)
	writer := openT(t, cl.Endpoints(), t.TempDir())
	reader := openT(t, cl.Endpoints(), t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	held, err := writer.Lock(ctx, "web", journal.LockInfo{Owner: "a", RunID: "r-live", TTL: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer held.Release(ctx)
	must := func(e event.Event) {
		if err := writer.Record(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	must(ev("r-live", event.RunStart, "", 0))
	var mu sync.Mutex
	var got []event.Kind
	first := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- reader.Follow(ctx, "web", "", func(e event.Event) {
			mu.Lock()
			got = append(got, e.Event)
			if len(got) == 1 {
				close(first)
			}
			mu.Unlock()
		})
	}()
	<-first // the run's start was read; the rest arrives through the watch
	must(ev("r-live", event.HostPhase, "web1", 1))
	must(ev("r-live", event.HostDone, "web1", 2))
	must(ev("r-live", event.RunDone, "", 3))
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(got) != "[run_start host_phase host_done run_done]" {
		t.Fatalf("followed %v", got)
	}
}

func TestEtcdUnreachableNamesTheEndpoint(t *testing.T) {
	_, err := OpenEtcd(context.Background(), Config{Kind: "etcd", Endpoints: []string{"http://127.0.0.1:1"}, Prefix: "/rollout/", Timeout: time.Second}, "web", journal.NewLocal(t.TempDir()))
	var ue *UnreachableError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "http://127.0.0.1:1") {
		t.Fatalf("err = %v, want unreachable naming the endpoint", err)
	}
}

func TestResolvePlanThenEnvironment(t *testing.T) {
	env := map[string]string{}
	get := func(k string) string { return env[k] }
	c, err := Resolve(nil, get)
	if err != nil || c.Kind != "local" {
		t.Fatalf("default = %+v, %v", c, err)
	}
	c, err = Resolve(&plan.Backend{Kind: "etcd", Endpoints: []string{"https://a:2379"}, Prefix: "/teams/web/"}, get)
	if err != nil || c.Kind != "etcd" || c.Prefix != "/teams/web/" || c.Endpoints[0] != "https://a:2379" {
		t.Fatalf("plan block = %+v, %v", c, err)
	}
	env[EnvKind], env[EnvEndpoints], env[EnvUsername], env[EnvPassword] = "etcd", "http://x:1, http://y:2", "ci", "s3cret"
	c, err = Resolve(nil, get)
	if err != nil || c.Kind != "etcd" || len(c.Endpoints) != 2 || c.Endpoints[1] != "http://y:2" || c.Username != "ci" || c.Password != "s3cret" {
		t.Fatalf("env = %+v, %v", c, err)
	}
	env[EnvEndpoints] = ""
	if _, err := Resolve(nil, get); err == nil || !strings.Contains(err.Error(), EnvEndpoints) {
		t.Fatalf("etcd without endpoints: %v", err)
	}
	env[EnvKind] = "consul"
	if _, err := Resolve(nil, get); err == nil || !strings.Contains(err.Error(), "consul") {
		t.Fatalf("unknown kind: %v", err)
	}
}
