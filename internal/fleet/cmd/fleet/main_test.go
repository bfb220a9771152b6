package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rollout-sh/rollout/internal/fleet"
)

func TestUsage(t *testing.T) {
	for _, args := range [][]string{nil, {"bogus"}, {"down"}, {"status", "a", "b"}, {"up"}, {"up", "d", "-hosts"}} {
		var out, errb bytes.Buffer
		if code := run(context.Background(), args, &out, &errb); code != 2 {
			t.Errorf("run(%q) = %d, want 2; stderr %q", args, code, errb.String())
		}
	}
}

// TestUpStatusEnvDown drives the command like demo.sh does: up (detached),
// status, env, down by the pids in fleet.json.
func TestUpStatusEnvDown(t *testing.T) {
	if err := fleet.Available(true); err != nil {
		if os.Getenv(fleet.E2EEnv) == "1" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	dir, err := os.MkdirTemp("", "fleetcmd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if f, err := fleet.Load(dir); err == nil {
			if err := f.Stop(); err != nil {
				t.Error(err)
			}
		}
		os.RemoveAll(dir)
	})
	ctx := context.Background()
	var out, errb bytes.Buffer
	if code := run(ctx, []string{"up", dir, "-hosts", "2", "-haproxy", "1"}, &out, &errb); code != 0 {
		t.Fatalf("up: exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "web2 ") || !strings.Contains(out.String(), "admin socket "+filepath.Join(dir, "lb1", "admin.sock")) {
		t.Errorf("up output:\n%s", out.String())
	}
	if code := run(ctx, []string{"up", dir}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "already running") {
		t.Errorf("second up: exit %d: %s", code, errb.String())
	}
	inv, err := os.ReadFile(filepath.Join(dir, "inventory.ini"))
	if err != nil || !strings.Contains(string(inv), "web1 ansible_host=127.0.0.1") {
		t.Errorf("inventory: %v\n%s", err, inv)
	}

	out.Reset()
	if code := run(ctx, []string{"status", dir}, &out, &errb); code != 0 || !strings.Contains(out.String(), "haproxy 1    pid") {
		t.Errorf("status: exit %d:\n%s", code, out.String())
	}
	out.Reset()
	if code := run(ctx, []string{"env", dir}, &out, &errb); code != 0 || !strings.Contains(out.String(), "FLEET_SOCKETS="+filepath.Join(dir, "lb1", "admin.sock")+"\n") {
		t.Errorf("env: exit %d:\n%s", code, out.String())
	}
	if code := run(ctx, []string{"down", dir}, &out, &errb); code != 0 {
		t.Fatalf("down: exit %d: %s", code, errb.String())
	}
	out.Reset()
	if code := run(ctx, []string{"status", dir}, &out, &errb); code != 1 || !strings.Contains(out.String(), "STOPPED") {
		t.Errorf("status after down: exit %d:\n%s", code, out.String())
	}
}
