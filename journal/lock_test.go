package journal

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// lockAPI is one of the two lock implementations, seen through the same
// calls so that every test runs against both.
type lockAPI struct {
	name    string
	where   string
	acquire func(dir, plan string, info LockInfo, now time.Time) error
	renew   func(dir, plan string, info LockInfo, now time.Time) error
	release func(dir, plan, runID string) error
	read    func(dir, plan string) (*LockInfo, error)
	brk     func(dir, plan string) error
}

func lockAPIs() []lockAPI {
	ctx := context.Background()
	return []lockAPI{
		{
			name:  "host",
			where: "web2",
			acquire: func(dir, plan string, info LockInfo, now time.Time) error {
				return AcquireHostLock(ctx, lr, "web2", dir, plan, info, now)
			},
			renew: func(dir, plan string, info LockInfo, now time.Time) error {
				return RenewHostLock(ctx, lr, dir, plan, info, now)
			},
			release: func(dir, plan, runID string) error { return ReleaseHostLock(ctx, lr, dir, plan, runID) },
			read:    func(dir, plan string) (*LockInfo, error) { return ReadHostLock(ctx, lr, dir, plan) },
			brk:     func(dir, plan string) error { return BreakHostLock(ctx, lr, dir, plan) },
		},
		{
			name:    "local",
			where:   "local",
			acquire: AcquireLocalLock,
			renew:   RenewLocalLock,
			release: ReleaseLocalLock,
			read:    ReadLocalLock,
			brk:     BreakLocalLock,
		},
	}
}

func owner(run string) LockInfo {
	return LockInfo{Owner: "alice@ci-7", PID: 4242, RunID: run, TTL: time.Minute}
}

func TestLockLifecycle(t *testing.T) {
	type step struct {
		op      string // acquire, renew, release, read
		run     string
		at      int    // seconds after t0
		want    string // "": success; "locked": *LockedError; "notheld": ErrNotHeld
		holder  string // for read: run id expected to hold the lock, "" for none
		renewed int    // for read: expected Renewed, seconds after t0
	}
	steps := []step{
		{op: "read"},
		{op: "release", run: "r1"}, // no lock: fine
		{op: "renew", run: "r1", want: "notheld"},
		{op: "acquire", run: "r1"},
		{op: "read", holder: "r1", renewed: 0},
		{op: "acquire", run: "r2", at: 30, want: "locked"},
		{op: "acquire", run: "r1", at: 10}, // ours already: refreshed
		{op: "read", holder: "r1", renewed: 10},
		{op: "renew", run: "r2", at: 20, want: "notheld"},
		{op: "renew", run: "r1", at: 40},
		{op: "read", holder: "r1", renewed: 40},
		{op: "acquire", run: "r2", at: 99, want: "locked"}, // 59s after renewal
		{op: "acquire", run: "r2", at: 101},                // 61s: expired, taken over
		{op: "read", holder: "r2", renewed: 101},
		{op: "renew", run: "r1", at: 102, want: "notheld"},
		{op: "release", run: "r1", want: "notheld"},
		{op: "read", holder: "r2", renewed: 101},
		{op: "release", run: "r2"},
		{op: "read"},
		{op: "acquire", run: "r3", at: 200},
		{op: "read", holder: "r3", renewed: 200},
	}
	for _, api := range lockAPIs() {
		t.Run(api.name, func(t *testing.T) {
			base := t.TempDir()
			dir := filepath.Join(base, nasty)
			for i, s := range steps {
				now := t0.Add(time.Duration(s.at) * time.Second)
				var err error
				switch s.op {
				case "acquire":
					err = api.acquire(dir, "web", owner(s.run), now)
				case "renew":
					err = api.renew(dir, "web", owner(s.run), now)
				case "release":
					err = api.release(dir, "web", s.run)
				case "read":
					li, err := api.read(dir, "web")
					if err != nil {
						t.Fatalf("step %d read: %v", i, err)
					}
					switch {
					case s.holder == "" && li != nil:
						t.Fatalf("step %d: lock held by %s, want none", i, li.RunID)
					case s.holder != "" && li == nil:
						t.Fatalf("step %d: no lock, want %s", i, s.holder)
					case s.holder != "":
						if li.RunID != s.holder || !li.Renewed.Equal(t0.Add(time.Duration(s.renewed)*time.Second)) ||
							li.Owner != "alice@ci-7" || li.PID != 4242 || li.TTL != time.Minute {
							t.Fatalf("step %d: lock %+v, want run %s renewed at +%ds", i, li, s.holder, s.renewed)
						}
					}
					continue
				}
				var le *LockedError
				switch s.want {
				case "":
					if err != nil {
						t.Fatalf("step %d %s %s: %v", i, s.op, s.run, err)
					}
				case "locked":
					if !errors.As(err, &le) {
						t.Fatalf("step %d %s %s: err = %v, want *LockedError", i, s.op, s.run, err)
					}
					if le.Where != api.where || le.Plan != "web" || le.Info.Owner != "alice@ci-7" {
						t.Errorf("step %d: LockedError %+v", i, le)
					}
				case "notheld":
					if !errors.Is(err, ErrNotHeld) {
						t.Fatalf("step %d %s %s: err = %v, want ErrNotHeld", i, s.op, s.run, err)
					}
				}
			}
			assertNoInjection(t, base)
			entries, _ := os.ReadDir(filepath.Join(dir, "web", LockDir))
			if len(entries) != 1 || entries[0].Name() != LockInfoFile {
				t.Errorf("lock dir holds %v, want only %s", entries, LockInfoFile)
			}
		})
	}
}

func TestLockUnreadableInfo(t *testing.T) {
	tests := []struct {
		name     string
		info     string // "" = no info.json
		old      bool   // lock dir older than the TTL
		wantLock bool   // acquire refused
	}{
		{name: "missing info, young dir", wantLock: true},
		{name: "corrupt info, young dir", info: "{garbage", wantLock: true},
		{name: "missing info, old dir", old: true},
		{name: "corrupt info, old dir", info: "{garbage", old: true},
	}
	for _, api := range lockAPIs() {
		for _, tt := range tests {
			t.Run(api.name+"/"+tt.name, func(t *testing.T) {
				dir := t.TempDir()
				lock := filepath.Join(dir, "web", LockDir)
				os.MkdirAll(lock, 0o755)
				if tt.info != "" {
					os.WriteFile(filepath.Join(lock, LockInfoFile), []byte(tt.info), 0o644)
				}
				now := time.Now() // dir ages are measured on the clock of the filesystem
				if tt.old {
					old := now.Add(-time.Hour)
					os.Chtimes(lock, old, old)
				}
				if _, err := api.read(dir, "web"); !errors.Is(err, ErrLockUnreadable) {
					t.Errorf("read: err = %v, want ErrLockUnreadable", err)
				}
				err := api.acquire(dir, "web", owner("r9"), now)
				var le *LockedError
				if tt.wantLock {
					if !errors.As(err, &le) || !strings.Contains(err.Error(), "unknown run") {
						t.Fatalf("acquire: err = %v, want LockedError by an unknown run", err)
					}
					return
				}
				if err != nil {
					t.Fatalf("acquire of a stale unreadable lock: %v", err)
				}
				if li, err := api.read(dir, "web"); err != nil || li.RunID != "r9" {
					t.Errorf("after takeover: %+v, %v", li, err)
				}
			})
		}
	}
}

func TestLockRace(t *testing.T) {
	const takers, rounds = 4, 8
	defer func() { takeoverHook = func() func() { return func() {} } }()
	for _, api := range lockAPIs() {
		for _, stale := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/stale=%v", api.name, stale), func(t *testing.T) {
				for round := range rounds {
					dir := t.TempDir()
					now := t0.Add(time.Hour)
					if stale {
						if err := api.acquire(dir, "web", owner("dead"), t0); err != nil {
							t.Fatal(err)
						}
					}
					// Every taker decides the lock is stale before any of
					// them tries to take it over: the window a check-then-act
					// bug would need. In odd rounds the attempts then run
					// one after the other, in even rounds all at once.
					var arrived atomic.Int32
					all := make(chan struct{})
					var serial sync.Mutex
					takeoverHook = func() func() {
						n := arrived.Add(1)
						if n == takers {
							close(all)
						}
						if n > takers {
							return func() {}
						}
						<-all
						if round%2 == 0 {
							return func() {}
						}
						serial.Lock()
						return serial.Unlock
					}
					errs := make([]error, takers)
					var wg sync.WaitGroup
					start := make(chan struct{})
					for i := range takers {
						wg.Go(func() {
							<-start
							errs[i] = api.acquire(dir, "web", owner(fmt.Sprintf("r%d", i)), now)
						})
					}
					close(start)
					wg.Wait()
					winner := -1
					for i, err := range errs {
						var le *LockedError
						switch {
						case err == nil:
							if winner >= 0 {
								t.Fatalf("round %d: both r%d and r%d acquired the lock", round, winner, i)
							}
							winner = i
						case !errors.As(err, &le):
							t.Fatalf("round %d: r%d: %v, want *LockedError", round, i, err)
						}
					}
					if winner < 0 {
						t.Fatalf("round %d: nobody acquired the lock: %v", round, errs)
					}
					li, err := api.read(dir, "web")
					if err != nil || li.RunID != fmt.Sprintf("r%d", winner) {
						t.Fatalf("round %d: lock is %+v (%v), want held by winner r%d", round, li, err, winner)
					}
				}
			})
		}
	}
}

func TestLockStuckBusyAndBreak(t *testing.T) {
	for _, api := range lockAPIs() {
		t.Run(api.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := api.acquire(dir, "web", owner("dead"), t0); err != nil {
				t.Fatal(err)
			}
			// A change to the lock was interrupted long ago.
			busy := filepath.Join(dir, "web", LockDir, busyDir)
			os.Mkdir(busy, 0o755)
			old := time.Now().Add(-time.Hour)
			os.Chtimes(busy, old, old)

			err := api.acquire(dir, "web", owner("r1"), t0.Add(time.Hour))
			var le *LockedError
			if err == nil || errors.As(err, &le) || !strings.Contains(err.Error(), "rollout unlock") {
				t.Fatalf("acquire with a stuck .busy: err = %v, want an error pointing to rollout unlock", err)
			}
			for range 2 { // breaking no lock is fine too
				if err := api.brk(dir, "web"); err != nil {
					t.Fatal(err)
				}
			}
			if li, err := api.read(dir, "web"); li != nil || err != nil {
				t.Fatalf("after break: %+v, %v", li, err)
			}
			if err := api.acquire(dir, "web", owner("r1"), t0.Add(time.Hour)); err != nil {
				t.Fatalf("acquire after break: %v", err)
			}
			entries, _ := os.ReadDir(filepath.Join(dir, "web"))
			if len(entries) != 1 {
				t.Errorf("plan dir holds %d entries after break, want just the lock", len(entries))
			}
		})
	}
}

func TestLockedErrorMessage(t *testing.T) {
	info := LockInfo{Owner: "alice@ci-7", PID: 4242, RunID: "r-20261122-0301", Acquired: t0, Renewed: t0.Add(2 * time.Minute), TTL: time.Minute}
	tests := []struct {
		name string
		err  LockedError
		want string
	}{
		{
			name: "host",
			err:  LockedError{Plan: "web", Where: "web2", Info: info, Now: t0.Add(2*time.Minute + 10*time.Second)},
			want: "plan web is locked on web2 by alice@ci-7 (run r-20261122-0301, pid 4242) since 03:01:12 UTC, renewed 10s ago, expires in 50s; if that run is dead, wait for expiry or run `rollout unlock`",
		},
		{
			name: "local, another day",
			err:  LockedError{Plan: "web", Where: "local", Info: info, Now: t0.Add(24 * time.Hour)},
			want: "plan web is locked locally by alice@ci-7 (run r-20261122-0301, pid 4242) since 2026-11-22 03:01:12 UTC, renewed 23h58m ago, expires in 0s; if that run is dead, wait for expiry or run `rollout unlock`",
		},
		{
			name: "unreadable",
			err:  LockedError{Plan: "db", Where: "db1", Info: LockInfo{Acquired: t0}, Now: t0},
			want: "plan db is locked on db1 by an unknown run (info.json unreadable) since 03:01:12 UTC; if that run is dead, wait for expiry or run `rollout unlock`",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestLockInfoExpired(t *testing.T) {
	tests := []struct {
		ttl  time.Duration
		age  time.Duration
		want bool
	}{
		{time.Minute, 59 * time.Second, false},
		{time.Minute, time.Minute, false},
		{time.Minute, 61 * time.Second, true},
		{0, DefaultLockTTL - time.Second, false}, // zero TTL means the default
		{0, DefaultLockTTL + time.Second, true},
	}
	for _, tt := range tests {
		li := LockInfo{Renewed: t0, TTL: tt.ttl}
		if got := li.Expired(t0.Add(tt.age)); got != tt.want {
			t.Errorf("TTL %v, age %v: Expired = %v, want %v", tt.ttl, tt.age, got, tt.want)
		}
	}
}

func TestKeepRenewed(t *testing.T) {
	transient := errors.New("ssh hiccup")
	tests := []struct {
		name     string
		results  []error // returned by successive renew calls, then nil
		wantErrs []error // received before the channel closes (after cancel for the non-fatal cases)
	}{
		{name: "transient errors are reported, renewing goes on", results: []error{nil, transient, nil}, wantErrs: []error{transient}},
		{name: "a lost lock stops renewing", results: []error{nil, fmt.Errorf("renew: %w", ErrNotHeld)}, wantErrs: []error{ErrNotHeld}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var mu sync.Mutex
			calls := 0
			enough := make(chan struct{})
			errc := KeepRenewed(ctx, time.Millisecond, nil, func(context.Context) error {
				mu.Lock()
				defer mu.Unlock()
				calls++
				if calls == len(tt.results)+2 {
					close(enough)
				}
				if calls <= len(tt.results) {
					return tt.results[calls-1]
				}
				return nil
			})
			var got []error
			fatal := errors.Is(tt.wantErrs[len(tt.wantErrs)-1], ErrNotHeld)
			if !fatal {
				<-enough // it kept renewing after the error
				got = append(got, <-errc)
				cancel()
			}
			for err := range errc {
				got = append(got, err)
			}
			if len(got) != len(tt.wantErrs) {
				t.Fatalf("received %v, want %v", got, tt.wantErrs)
			}
			for i := range got {
				if !errors.Is(got[i], tt.wantErrs[i]) {
					t.Errorf("error %d = %v, want %v", i, got[i], tt.wantErrs[i])
				}
			}
			if fatal {
				mu.Lock()
				n := calls
				mu.Unlock()
				if n != len(tt.results) {
					t.Errorf("renew called %d times, want it to stop after the lost lock (%d)", n, len(tt.results))
				}
			}
		})
	}
}

// Lock directories and their info files are private to their owner, on the
// hosts and locally.
func TestLockPermissions(t *testing.T) {
	for _, api := range lockAPIs() {
		t.Run(api.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "state")
			if err := api.acquire(dir, "web", owner("r1"), t0); err != nil {
				t.Fatal(err)
			}
			for name, want := range map[string]os.FileMode{
				filepath.Join(dir, "web"):                        0o700,
				filepath.Join(dir, "web", LockDir):               0o700,
				filepath.Join(dir, "web", LockDir, LockInfoFile): 0o600,
			} {
				st, err := os.Stat(name)
				if err != nil {
					t.Fatal(err)
				}
				if got := st.Mode().Perm(); got != want {
					t.Errorf("%s: mode %04o, want %04o", name, got, want)
				}
			}
		})
	}
}
