package journal

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// countingRunner counts the commands it runs: each is a round trip.
type countingRunner struct {
	Runner
	n int
}

func (c *countingRunner) Run(ctx context.Context, cmd string, in io.Reader, out, errw io.Writer) error {
	c.n++
	return c.Runner.Run(ctx, cmd, in, out, errw)
}

func TestLockAndInspectInOneCommand(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	live := filepath.Join(dir, "app.conf")
	missing := filepath.Join(dir, "gone.conf")
	if err := os.WriteFile(live, []byte("x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	st := &HostState{Plan: "web", Revision: "abc", Files: map[string]string{live: "h"}, RunID: "r0", Host: "web1"}
	if err := WriteStateThen(ctx, lr, dir, "web", st, "rm -f -- "+live+".bak"); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	r := &countingRunner{Runner: lr}
	in, locked, err := AcquireHostLockAndInspect(ctx, r, "web1", dir, "web", owner("r1"), now, []string{live, missing})
	if err != nil || !locked {
		t.Fatalf("lock and inspect: %v (locked %v)", err, locked)
	}
	if r.n != 1 {
		t.Errorf("%d commands for a free lock, want 1", r.n)
	}
	if in.State == nil || in.State.Revision != "abc" {
		t.Errorf("state %+v", in.State)
	}
	if sum := sha256.Sum256([]byte("x\n")); in.Live[live] != hex.EncodeToString(sum[:]) {
		t.Errorf("hash of %s = %q", live, in.Live[live])
	}
	if h, ok := in.Live[missing]; !ok || h != "" {
		t.Errorf("missing file: %q, %v", h, ok)
	}
	// the lock is really held
	if li, err := ReadHostLock(ctx, lr, dir, "web"); err != nil || li == nil || li.RunID != "r1" {
		t.Fatalf("lock after acquire: %+v, %v", li, err)
	}
	// another run is refused, and reads nothing
	r2 := &countingRunner{Runner: lr}
	_, locked, err = AcquireHostLockAndInspect(ctx, r2, "web1", dir, "web", owner("r2"), now, []string{live})
	var le *LockedError
	if locked || !errors.As(err, &le) {
		t.Errorf("second run: locked %v, err %v; want a *LockedError", locked, err)
	}
	// our own release is one command
	r3 := &countingRunner{Runner: lr}
	if err := ReleaseHostLock(ctx, r3, dir, "web", "r1"); err != nil {
		t.Fatal(err)
	}
	if r3.n != 1 {
		t.Errorf("release took %d commands, want 1", r3.n)
	}
	if li, err := ReadHostLock(ctx, lr, dir, "web"); err != nil || li != nil {
		t.Errorf("lock after release: %+v, %v", li, err)
	}
	// an expired lock goes through the full protocol, then inspects
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(AcquireHostLock(ctx, lr, "web1", dir, "web", owner("old"), now.Add(-time.Hour)))
	in, locked, err = AcquireHostLockAndInspect(ctx, lr, "web1", dir, "web", owner("r4"), now, []string{live})
	if err != nil || !locked || in.State == nil {
		t.Fatalf("take over an expired lock: %v, locked %v", err, locked)
	}
	if li, _ := ReadHostLock(ctx, lr, dir, "web"); li == nil || li.RunID != "r4" {
		t.Errorf("lock holder %+v, want r4", li)
	}
	// someone else's lock is not released by the quick path
	err = ReleaseHostLock(ctx, lr, dir, "web", "r1")
	if !errors.Is(err, ErrNotHeld) {
		t.Errorf("releasing another run's lock: %v, want ErrNotHeld", err)
	}
}

func TestInspectNamesWhatFailed(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	sub := filepath.Join(dir, "adir")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := Inspect(ctx, lr, dir, "web", []string{sub})
	if err == nil || !strings.Contains(err.Error(), "hash files") || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("a directory as a file: %v", err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "web"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "web", StateFile), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Inspect(ctx, lr, dir, "web", nil)
	if err == nil || !strings.Contains(err.Error(), "corrupt") || !strings.Contains(err.Error(), StateFile) {
		t.Errorf("corrupt state: %v", err)
	}
}
