package fleet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// E2EEnv is the environment variable that turns a missing sshd or HAProxy
// from a skipped test into a failed one (CI sets ROLLOUT_E2E=1).
const E2EEnv = "ROLLOUT_E2E"

// StartT starts a fleet for a test and stops it in t.Cleanup (registered
// before anything is started, so it runs even when Start fails). When sshd
// or HAProxy is not installed the test is skipped, or fails with
// ROLLOUT_E2E=1. opts.Dir defaults to a short temporary directory (HAProxy's
// socket path must stay under 108 bytes). When the test failed, the tails of
// the sshd, HAProxy and app logs are logged before the fleet stops.
func StartT(t testing.TB, opts Options) *Fleet {
	t.Helper()
	if err := Available(opts.HAProxy > 0); err != nil {
		if os.Getenv(E2EEnv) == "1" {
			t.Fatalf("%v (%s=1: end-to-end tests must run)", err, E2EEnv)
		}
		t.Skipf("%v (set %s=1 to fail instead of skipping)", err, E2EEnv)
	}
	if len(opts.Netns) > 0 {
		if err := NetnsAvailable(); err != nil {
			if os.Getenv(E2EEnv) == "1" {
				t.Fatalf("%v (%s=1: end-to-end tests must run)", err, E2EEnv)
			}
			t.Skipf("%v (set %s=1 to fail instead of skipping)", err, E2EEnv)
		}
	}
	if opts.Dir == "" {
		dir, err := os.MkdirTemp("", "fleet")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if !t.Failed() {
				os.RemoveAll(dir)
			} else {
				t.Logf("fleet dir kept for inspection: %s", dir)
			}
		})
		opts.Dir = dir
	}
	var f *Fleet
	t.Cleanup(func() {
		if f == nil {
			// Start failed and already stopped what it started; the logs
			// are still worth reading.
			f = &Fleet{Dir: opts.Dir}
			if t.Failed() {
				dumpLogs(t, f)
			}
			return
		}
		if t.Failed() {
			dumpLogs(t, f)
		}
		if err := f.Stop(); err != nil {
			t.Errorf("stop fleet: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	started, err := Start(ctx, opts)
	if err != nil {
		t.Fatalf("start fleet: %v", err)
	}
	f = started
	return f
}

// dumpLogs logs the last lines of every log file of the fleet.
func dumpLogs(t testing.TB, f *Fleet) {
	var logs []string
	for _, pattern := range []string{"logs/*.log", "hosts/*/log/*.log"} {
		m, _ := filepath.Glob(filepath.Join(f.Dir, pattern))
		logs = append(logs, m...)
	}
	for _, p := range logs {
		b, err := os.ReadFile(p)
		if err != nil || len(b) == 0 {
			continue
		}
		t.Logf("--- tail of %s ---\n%s", p, tail(b, 40))
		if strings.HasPrefix(filepath.Base(p), "haproxy-") {
			t.Logf("--- failed requests and state changes in %s ---\n%s", p, notable(b, 200))
		}
	}
}

// notable keeps, of an HAProxy log, the requests that did not end "200 …
// ----" (status 200, normal termination) and the server state changes,
// the last n of them.
func notable(b []byte, n int) string {
	var keep [][]byte
	for _, line := range bytes.Split(b, []byte("\n")) {
		s := string(line)
		request := strings.Contains(s, " fe ") || strings.Contains(s, " fe~ ")
		if request && strings.Contains(s, " 200 ") && strings.Contains(s, " ---- ") {
			continue
		}
		if len(line) > 0 {
			keep = append(keep, line)
		}
	}
	if len(keep) > n {
		keep = keep[len(keep)-n:]
	}
	return string(bytes.Join(keep, []byte("\n")))
}

func tail(b []byte, n int) string {
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// DemoPaths builds examples/demo/app into a temporary directory and returns
// the demo-app binary and the restart-app script of this checkout, ready for
// Options.AppBinary and Options.RestartScript.
func DemoPaths(t testing.TB) (app, restart string) {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	app = filepath.Join(t.TempDir(), "demo-app")
	cmd := exec.Command("go", "build", "-o", app, "./examples/demo/app")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build demo-app: %v\n%s", err, out)
	}
	return app, filepath.Join(root, "examples", "demo", "bin", "restart-app")
}

// moduleRoot is the directory holding this module's go.mod, found from this
// source file's location.
func moduleRoot() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("fleet: cannot locate the source tree")
	}
	dir := filepath.Dir(file)
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.Contains(string(b), "module github.com/rollout-sh/rollout\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("fleet: go.mod of github.com/rollout-sh/rollout not found above " + filepath.Dir(file))
		}
		dir = parent
	}
}

// RequireTool skips the test when the command name is not on PATH, or fails
// it when ROLLOUT_E2E=1: CI must never skip silently.
func RequireTool(t testing.TB, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		if os.Getenv(E2EEnv) == "1" {
			t.Fatalf("%s=1 but %s is not installed (make deps installs it)", E2EEnv, name)
		}
		t.Skipf("%s is not installed", name)
	}
}

// DemoTags are the tags examples/demo/make-repo.sh creates.
var DemoTags = []string{"v1", "v2", "broken-config", "crashloop", "flaky"}

// DemoRepo creates the demo config repository in dir with this checkout's
// examples/demo/make-repo.sh and returns the commit of each of DemoTags.
func DemoRepo(t testing.TB, dir string) map[string]string {
	t.Helper()
	RequireTool(t, "git")
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("sh", filepath.Join(root, "examples", "demo", "make-repo.sh"), dir).CombinedOutput(); err != nil {
		t.Fatalf("make-repo.sh: %v\n%s", err, out)
	}
	tags := map[string]string{}
	for _, tag := range DemoTags {
		sha, err := exec.Command("git", "-C", dir, "rev-parse", tag+"^{commit}").Output()
		if err != nil {
			t.Fatalf("rev-parse %s: %v", tag, err)
		}
		tags[tag] = strings.TrimSpace(string(sha))
	}
	return tags
}

// DemoAppBlocks is the part of a plan that every demo-app fleet shares
// (e2e, bench, rollout-bench): the app's config file, rendered from the
// demo repo's template and validated by `demo-app -check`, and its restart
// through restart-app. app and restart are what DemoPaths returns.
func DemoAppBlocks(app, restart string) string {
	return fmt.Sprintf(`  file "app.conf" {
    source   = "conf/app.conf.tmpl"
    template = true
    dest     = "${host.vars.root}/etc/app.conf"
    validate = "%s -check -config %%s"
  }
  restart = "DEMO_APP=%s %s ${host.vars.root}"
`, app, app, restart)
}
