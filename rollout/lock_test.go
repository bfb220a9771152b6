package rollout

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rollout-sh/rollout/internal/localrun"
	"github.com/rollout-sh/rollout/journal"
)

// waitLost returns the first lost lock told to Lost, failing after a
// generous bound (a hang, not a timing assertion).
func waitLost(t *testing.T, lost <-chan error) error {
	t.Helper()
	select {
	case err := <-lost:
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("no lost lock was told")
		return nil
	}
}

// Locks renews every host lock it took; a host lock taken away is told to
// Lost once, naming the host, and the others keep being renewed; Release
// gives back what is still ours and names what it could not.
func TestLocksRenewTellLostAndRelease(t *testing.T) {
	dir := t.TempDir()
	state := func(h string) string { return filepath.Join(dir, h, "state") }
	ctx := context.Background()
	r := localrun.Runner{}
	lost := make(chan error, 4)
	var mu sync.Mutex
	var warns []string
	l := &Locks{Plan: "web", Info: journal.LockInfo{Owner: "t@c", PID: 1, RunID: "r-mine", TTL: 300 * time.Millisecond},
		Lost: func(err error) { lost <- err },
		Warn: func(f string, a ...any) { mu.Lock(); warns = append(warns, f); mu.Unlock() }}
	for _, h := range []string{"web1", "web2", "web3"} {
		if err := l.TakeHost(ctx, r, h, state(h)); err != nil {
			t.Fatal(err)
		}
	}
	before, err := journal.ReadHostLock(ctx, r, state("web2"), "web")
	if err != nil || before == nil {
		t.Fatalf("web2's lock: %+v, %v", before, err)
	}
	l.KeepRenewed(ctx)
	// web1's lock removed by hand; web3's taken over by another run
	if err := journal.BreakHostLock(ctx, r, state("web1"), "web"); err != nil {
		t.Fatal(err)
	}
	err = waitLost(t, lost)
	if !errors.Is(err, journal.ErrLockLost) || !strings.Contains(err.Error(), "web1") {
		t.Fatalf("lost = %v, want ErrLockLost naming web1", err)
	}
	if err := journal.BreakHostLock(ctx, r, state("web3"), "web"); err != nil {
		t.Fatal(err)
	}
	other := journal.LockInfo{Owner: "o@d", PID: 2, RunID: "r-other", TTL: time.Hour}
	if err := journal.AcquireHostLock(ctx, r, "web3", state("web3"), "web", other, time.Now()); err != nil {
		t.Fatal(err)
	}
	err = waitLost(t, lost)
	if !errors.Is(err, journal.ErrLockLost) || !strings.Contains(err.Error(), "web3") {
		t.Fatalf("lost = %v, want ErrLockLost naming web3", err)
	}
	// web2 is still ours, renewed since it was taken
	for {
		li, err := journal.ReadHostLock(ctx, r, state("web2"), "web")
		if err != nil || li == nil || li.RunID != "r-mine" {
			t.Fatalf("web2's lock: %+v, %v; want still r-mine's", li, err)
		}
		if li.Renewed.After(before.Renewed) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	un := l.Release(ctx)
	if len(un) != 1 || un[0] != "web3" {
		t.Errorf("unreleased = %v, want [web3] (another run's lock is left alone)", un)
	}
	select {
	case err := <-lost:
		t.Errorf("a lock was told lost twice, or a kept one was: %v", err)
	default:
	}
	if li, _ := journal.ReadHostLock(ctx, r, state("web2"), "web"); li != nil {
		t.Errorf("web2 still locked after Release: %+v", li)
	}
	if li, _ := journal.ReadHostLock(ctx, r, state("web3"), "web"); li == nil || li.RunID != "r-other" {
		t.Errorf("Release touched the other run's lock on web3: %+v", li)
	}
}

// Repair holds its locks the way a run does: renewed while it works (the
// TTL is short here), so a long repair does not lose them to a takeover.
func TestRepairLocksAreRenewed(t *testing.T) {
	f := newFleet(t, 2, `batch = [1]`)
	sel, err := Select(Request{PlanFile: f.planFile})
	must(t, err)
	ctx := context.Background()
	start := time.Now()
	locks, err := LockForRepair(ctx, RepairLock{Sel: sel, PlanFile: f.planFile, Store: journal.NewLocal(filepath.Join(f.dir, ".rollout")),
		Env: f.env(), Info: journal.LockInfo{Owner: "t@c", PID: 1, RunID: "r-repair", TTL: 300 * time.Millisecond},
		Hosts: []string{"web1"}, Say: func(string) {}, Lost: func(err error) { t.Errorf("lost: %v", err) }})
	must(t, err)
	root := filepath.Join(f.dir, "hosts", "web1", "state")
	for {
		li, err := journal.ReadHostLock(ctx, localrun.Runner{}, root, "web")
		if err != nil || li == nil || li.RunID != "r-repair" {
			t.Fatalf("web1's lock: %+v, %v; want repair's", li, err)
		}
		if li.Renewed.After(li.Acquired) {
			break
		}
		if time.Since(start) > 30*time.Second {
			t.Fatal("repair's host lock was never renewed")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if un := locks.Release(ctx); len(un) != 0 {
		t.Errorf("unreleased: %v", un)
	}
	if li, _ := journal.ReadHostLock(ctx, localrun.Runner{}, root, "web"); li != nil {
		t.Errorf("web1 still locked after Release: %+v", li)
	}
}
