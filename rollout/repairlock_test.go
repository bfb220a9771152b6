package rollout

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rollout-sh/rollout/internal/localrun"
	"github.com/rollout-sh/rollout/journal"
)

// deadLock is the lock of a run that ran on this machine and is gone: its
// pid is that of a process that has exited.
func deadLock(t *testing.T, runID string) journal.LockInfo {
	t.Helper()
	cmd := exec.Command("true")
	must(t, cmd.Run())
	u, err := user.Current()
	must(t, err)
	host, err := os.Hostname()
	must(t, err)
	if dead, _ := journal.OwnerDead(journal.LockInfo{Owner: u.Username + "@" + host, PID: cmd.Process.Pid}); !dead {
		t.Skipf("pid %d is in use again", cmd.Process.Pid)
	}
	return journal.LockInfo{Owner: u.Username + "@" + host, PID: cmd.Process.Pid, RunID: runID, TTL: 2 * time.Minute}
}

// Issue 22: a run killed before it touched a host (in preflight) leaves
// its locks and nothing to put back. Repair with no host to repair still
// takes the plan's lock over and removes the dead run's host locks, says
// so, and leaves the plan free; the lock of a run it cannot prove dead
// (another machine) is refused, and a live run's host lock is left alone.
func TestRepairFreesADeadRunsLocksWithNothingToPutBack(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		name      string
		planLock  bool // the dead run still holds the plan's lock (else only host locks)
		otherHost bool // the holder ran on another machine: not provably dead
	}{
		{"plan and host locks", true, false},
		{"host locks only", false, false},
		{"another machine", true, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFleet(t, 2, `batch = [1]`)
			sel, err := Select(Request{PlanFile: f.planFile})
			must(t, err)
			dir := filepath.Join(f.dir, ".rollout")
			store := journal.NewLocal(dir)
			dead := deadLock(t, "r-dead")
			if tt.otherHost {
				dead.Owner = "alice@elsewhere"
			}
			now := time.Now()
			if tt.planLock {
				must(t, journal.AcquireLocalLock(dir, "web", dead, now))
			}
			state := func(h string) string { return filepath.Join(f.dir, "hosts", h, "state") }
			for _, h := range []string{"web1", "web2"} {
				must(t, journal.AcquireHostLock(ctx, localrun.Runner{}, h, state(h), "web", dead, now))
			}
			var said []string
			locks, err := LockForRepair(ctx, RepairLock{Sel: sel, PlanFile: f.planFile, Store: store, Env: f.env(),
				Info: journal.LockInfo{Owner: "t@c", PID: os.Getpid(), RunID: "r-repair"},
				Say:  func(s string) { said = append(said, s) }})
			if tt.otherHost {
				var r *Refusal
				if !errors.As(err, &r) || !strings.HasPrefix(r.Next, "rollout unlock "+f.planFile+" && rollout repair ") {
					t.Fatalf("repair over another machine's lock: %v; want a refusal whose next: starts with rollout unlock", err)
				}
				if li, _ := journal.ReadHostLock(ctx, localrun.Runner{}, state("web1"), "web"); li == nil || li.RunID != "r-dead" {
					t.Errorf("repair touched a lock it cannot prove dead: %+v", li)
				}
				return
			}
			must(t, err)
			locks.Release(ctx)
			text := strings.Join(said, "\n")
			if tt.planLock && !strings.Contains(text, "took over the lock") {
				t.Errorf("repair does not say it took the dead run's plan lock over:\n%s", text)
			}
			for _, h := range []string{"web1", "web2"} {
				if li, err := journal.ReadHostLock(ctx, localrun.Runner{}, state(h), "web"); err != nil || li != nil {
					t.Errorf("%s still locked after repair: %+v, %v", h, li, err)
				}
				if !strings.Contains(text, h+": removed the lock of dead run r-dead") {
					t.Errorf("repair does not say it removed %s's lock:\n%s", h, text)
				}
			}
			if li, err := journal.ReadLocalLock(dir, "web"); err != nil || li != nil {
				t.Errorf("plan lock after repair: %+v, %v", li, err)
			}
			// and a run can start
			_, err = f.apply(Request{PlanFile: f.planFile}, Options{})
			must(t, err)
		})
	}
}

// The lock refusal's next: frees the plan and reruns, in every case: a
// provably dead run is repaired (repair takes its locks over), a holder
// that cannot be proven dead is unlocked first (unlock shows it and asks).
func TestLockRefusalNextFreesThePlan(t *testing.T) {
	now := time.Now()
	dead := deadLock(t, "r-dead")
	other := dead
	other.Owner = "alice@elsewhere"
	expired := dead
	expired.Owner, expired.TTL = "bob@elsewhere", time.Minute
	expired.Acquired, expired.Renewed = now.Add(-time.Hour), now.Add(-time.Hour)
	for _, tt := range []struct {
		name string
		info journal.LockInfo
		want string
	}{
		{"dead pid here", dead, "rollout repair p.hcl --yes && rollout apply p.hcl  # "},
		{"another machine", other, "rollout unlock p.hcl && rollout repair p.hcl --yes && rollout apply p.hcl  # only if that run is dead"},
		{"expired, another machine", expired, "rollout unlock p.hcl && rollout repair p.hcl --yes && rollout apply p.hcl  # "},
	} {
		err := lockRefusal(&journal.LockedError{Plan: "web", Where: "web1", Info: tt.info, Now: now}, "p.hcl", "apply")
		var r *Refusal
		if !errors.As(err, &r) || !strings.HasPrefix(r.Next, tt.want) {
			t.Errorf("%s: %v\nwant next: starting %q", tt.name, err, tt.want)
		}
	}
}
