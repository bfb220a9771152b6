// Package bench measures rollout on a real local fleet. Numbers are
// recorded in docs/benchmarks.md with the command that produced them; no
// test asserts a duration.
//
//	make bench   # = go test -run '^$' -bench . -benchtime 1x ./bench/
package bench

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/rollout-sh/rollout/internal/fleet"
)

func root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(file))
}

// BenchmarkApply4HostsBatch1 rolls a new revision over 4 hosts behind
// HAProxy, one host per batch, with healthy_for = "0s", and reports:
//
//	wall-s      the whole apply as the user waits for it
//	waits-s     the unavoidable waits: sessions reaching zero, the
//	            restart command, the health gate, and the ramp/UP wait
//	overhead-s  wall - waits: SSH, locks, state reads, staging,
//	            validation, preflight, journal
func BenchmarkApply4HostsBatch1(b *testing.B) {
	bin := filepath.Join(b.TempDir(), "rollout")
	if out, err := exec.Command("go", "build", "-o", bin, filepath.Join(root(), "cmd", "rollout")).CombinedOutput(); err != nil {
		b.Fatalf("build: %v\n%s", err, out)
	}
	app, restart := fleet.DemoPaths(b)
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		dir, err := os.MkdirTemp("", "rb")
		if err != nil {
			b.Fatal(err)
		}
		f := fleet.StartT(b, fleet.Options{Dir: filepath.Join(dir, "f"), Hosts: 4, HAProxy: 1, AppBinary: app, RestartScript: restart})
		repo := filepath.Join(dir, "repo")
		fleet.DemoRepo(b, repo)
		if err := f.WriteInventory(filepath.Join(dir, "inventory.ini")); err != nil {
			b.Fatal(err)
		}
		plan := fmt.Sprintf(`plan "bench" {
  inventory = "inventory.ini"
  hosts     = "web"
  repo      = %q
  revision  = "v2"
  state_dir = "${host.vars.root}/state"
  drain "haproxy" {
    endpoints = ["unix:%s"]
    backend   = "web"
    ramp      = ["50%%", "100%%"]
  }
%s  health "http" {
    url         = "http://127.0.0.1:${host.vars.app_port}/healthz"
    interval    = "100ms"
    healthy_for = "0s"
    deadline    = "20s"
  }
}
`, repo, f.HAProxySockets[0], fleet.DemoAppBlocks(app, restart))
		if err := os.WriteFile(filepath.Join(dir, "rollout.hcl"), []byte(plan), 0o644); err != nil {
			b.Fatal(err)
		}
		cmd := exec.Command(bin, "apply", "--batch", "1", "--yes", "--ui", "json", "--known-hosts", f.KnownHosts)
		cmd.Dir = dir
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		b.StartTimer()
		start := time.Now()
		err = cmd.Run()
		wall := time.Since(start)
		b.StopTimer()
		if err != nil {
			b.Fatalf("apply: %v\n%s\n%s", err, out.String(), errb.String())
		}
		w, err := ParseWaits(out.Bytes())
		if err != nil {
			b.Fatal(err)
		}
		waits := w.Total // batches of 1: the hosts' waits do not overlap
		b.ReportMetric(wall.Seconds(), "wall-s")
		b.ReportMetric(waits.Seconds(), "waits-s")
		b.ReportMetric((wall - waits).Seconds(), "overhead-s")
		_ = f.Stop()
		_ = os.RemoveAll(dir)
	}
}
