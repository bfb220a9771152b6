package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rollout-sh/rollout/rollout/event"
)

// `make demo` from the checkout runs to completion without a terminal and
// exits 0 (what CI and a new user run), then `make demo-stop` stops it.
func TestMakeDemo(t *testing.T) {
	t.Parallel()
	rolloutBin(t) // fails early with a clear message if the build is broken
	if _, err := exec.LookPath("make"); err != nil {
		t.Fatal("make is not installed")
	}
	demoDir, err := os.MkdirTemp("", "rd")
	if err != nil {
		t.Fatal(err)
	}
	binDir := t.TempDir()
	env := append(os.Environ(), "ROLLOUT_DEMO_DIR="+demoDir, "ROLLOUT_BIN_DIR="+binDir)
	stop := func() {
		cmd := exec.Command("make", "-s", "demo-stop")
		cmd.Dir = moduleRoot(t)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Logf("make demo-stop: %v\n%s", err, out)
		}
	}
	t.Cleanup(func() { stop(); _ = os.RemoveAll(demoDir) })
	cmd := exec.Command("make", "-s", "demo")
	cmd.Dir = moduleRoot(t)
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("make demo: %v\n%s", err, out.String())
	}
	s := out.String()
	for _, want := range []string{"web1", "web4", "exit 0", "make demo-stop",
		// the software upgrade: one download each for builds 1 and 2, none
		// for the rollback
		"install build 1: rollout exited 0; the artifact server got 1 request(s)",
		"upgrade 1 -> 2: rollout exited 0; the artifact server got 1 request(s)",
		"rollback 2 -> 1: rollout exited 0; the artifact server got 0 request(s)",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("make demo output lacks %q:\n%s", want, s)
		}
	}
	// after each step, every host runs the build from its release
	for _, step := range []struct{ head, build string }{
		{"install build 1:", "1"}, {"upgrade 1 -> 2:", "2"}, {"rollback 2 -> 1:", "1"},
	} {
		i := strings.Index(s, step.head)
		if i < 0 {
			continue
		}
		block, _, _ := strings.Cut(s[i:], "\n\n")
		if n := strings.Count(block, ": demo-app build "+step.build+" (pid "); n != 4 || !strings.Contains(block, "/opt/demo-app/releases/") {
			t.Errorf("after %q, %d hosts run build %s from a release:\n%s", step.head, n, step.build, block)
		}
	}
	// the fleet it left up answers config v2 with build 1 through HAProxy
	b, _ := os.ReadFile(filepath.Join(demoDir, "fleet", "fleet.json"))
	var f struct {
		FrontendPorts []int `json:"frontend_ports"`
	}
	if err := json.Unmarshal(b, &f); err != nil || len(f.FrontendPorts) == 0 {
		t.Fatalf("no fleet.json with frontend_ports in %s: %v", demoDir, err)
	}
	res, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", f.FrontendPorts[0]))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.HasPrefix(string(body), "version=2 ") || res.Header.Get("X-Demo-Build") != "1" {
		t.Errorf("through HAProxy: %s, build %q; want version=2 from build 1", body, res.Header.Get("X-Demo-Build"))
	}
	stop()
	if _, err := os.Stat(filepath.Join(demoDir, "fleet", "fleet.json")); err != nil {
		t.Logf("fleet.json after stop: %v", err)
	}
}

// An HA pair of HAProxy instances, reached through the SSH connection of an
// inventory host (via): every step on both LBs, zero failed requests on
// either frontend, both end with every server UP at full weight.
func TestHAPairThroughSSH(t *testing.T) {
	t.Parallel()
	e := setup(t, 3, 2)
	e.drain = strings.Replace(e.drain, "    backend   = \"web\"", "    via       = \"web1\"\n    backend   = \"web\"", 1)
	e.writePlan(e.tags["v2"], "halt", "0s")
	e.waitAllUp(t)
	l1 := startLoad(fmt.Sprintf("http://127.0.0.1:%d/", e.f.FrontendPorts[0]), 2)
	l2 := startLoad(fmt.Sprintf("http://127.0.0.1:%d/", e.f.FrontendPorts[1]), 2)
	r := e.rollout("apply", "--batch", "1", "--yes", "--ui", "json")
	l1.Stop()
	l2.Stop()
	if r.code != 0 {
		dump(t, r)
		t.Fatalf("apply exit %d", r.code)
	}
	for i, l := range []*load{l1, l2} {
		if l.Failed.Load() != 0 || l.OK.Load() == 0 {
			t.Errorf("LB %d: %d ok, %d failed: %v", i+1, l.OK.Load(), l.Failed.Load(), l.Errs())
		}
	}
	st := e.stats(t)
	if len(st) != 6 {
		t.Fatalf("want 3 servers on 2 LBs, got %d", len(st))
	}
	for name, s := range st {
		if s.Status != "UP" || s.Weight != 100 {
			t.Errorf("%s ends %s weight %d", name, s.Status, s.Weight)
		}
	}
	for _, h := range e.f.Hosts {
		if v := e.appVersion(t, h); v != "version=2" {
			t.Errorf("%s answers %s", h.Name, v)
		}
	}
}

// A session that never ends makes the drain time out: the host is put back
// in service untouched, the failure is counted, the run halts.
func TestDrainTimeoutLeavesHostUntouched(t *testing.T) {
	t.Parallel()
	e := setup(t, 2, 1)
	e.drain = strings.Replace(e.drain, `timeout   = "20s"`, `timeout   = "2s"`, 1)
	e.writePlan(e.tags["v2"], "halt", "0s")
	e.waitAllUp(t)
	before := e.liveConfig(e.f.Hosts[0])
	pid, _ := e.f.AppPID(e.f.Hosts[0])
	// hold slow requests through HAProxy: round robin puts some on web1
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 60 * time.Second}
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := client.Get(e.frontend() + "slow?ms=15000")
			if err == nil {
				resp.Body.Close()
			}
		}()
	}
	time.Sleep(500 * time.Millisecond)
	r := e.rollout("apply", "--limit", "web1", "--yes", "--ui", "json")
	if r.code != 1 {
		dump(t, r)
		t.Fatalf("exit %d, want 1", r.code)
	}
	var done, runDone *event.Event
	sawSessions := false
	for _, ev := range parseEvents(t, r.stdout) {
		if ev.Event == event.DrainSessions && ev.Sessions != nil && *ev.Sessions > 0 {
			sawSessions = true
		}
		if ev.Event == event.RunDone {
			runDone = &ev
		}
		if ev.Event == event.HostDone && ev.Host == "web1" {
			done = &ev
		}
	}
	if !sawSessions {
		t.Error("no drain_sessions event with open sessions")
	}
	if done == nil || done.Status != string(event.OutcomeFailed) || !strings.Contains(done.Message, "sessions still open") {
		t.Fatalf("web1 host_done = %+v, want failed with 'sessions still open'", done)
	}
	// the summary blames the sessions, not the revision (issue 28)
	if runDone == nil || !strings.Contains(runDone.Message, "drain timeout on web1") || strings.Contains(runDone.Message, "fix the revision") {
		t.Errorf("run_done = %+v, want a drain-timeout summary", runDone)
	}
	if e.liveConfig(e.f.Hosts[0]) != before {
		t.Error("web1's config changed although its drain timed out")
	}
	if p, _ := e.f.AppPID(e.f.Hosts[0]); p != pid {
		t.Error("web1 restarted although its drain timed out")
	}
	for name, s := range e.stats(t) {
		if strings.HasSuffix(name, "/web1") && !strings.HasPrefix(s.Status, "UP") && s.Status != "DRAIN" {
			t.Errorf("web1 left %s after a drain timeout", s.Status)
		}
	}
	wg.Wait()
	// and once the long requests are gone, it is back in full service
	e.waitAllUp(t)
}

// history lists the runs and --replay plays one through the plain view.
func TestHistoryAndReplay(t *testing.T) {
	t.Parallel()
	e := setup(t, 2, 1)
	e.writePlan(e.tags["v2"], "halt", "0s")
	if r := e.rollout("apply", "--batch", "1", "--yes", "--ui", "plain"); r.code != 0 {
		dump(t, r)
		t.Fatal("apply failed")
	}
	r := e.rollout("history")
	if r.code != 0 || !strings.Contains(r.stdout, "web1=ok") || !strings.Contains(r.stdout, e.tags["v2"][:7]) {
		dump(t, r)
		t.Fatal("history does not list the run")
	}
	r = e.rollout("history", "--replay", "last", "--speed", "0", "--ui", "plain")
	if r.code != 0 || !strings.Contains(r.stdout, "web2") || !strings.Contains(r.stdout, "exit 0") {
		dump(t, r)
		t.Fatal("replay did not play the run")
	}
}

// Capacity floor: a batch that would breach min_in_service is shrunk to fit
// (servers already down count against the floor), and the hosts left out
// run in the next batch.
func TestCapacityFloorShrinksBatch(t *testing.T) {
	t.Parallel()
	e := setup(t, 4, 1)
	e.extra = `  min_in_service = 2`
	e.writePlan(e.tags["v2"], "halt", "0s")
	e.waitAllUp(t)
	if out, err := e.f.Admin(0, "set server web/web4 state maint"); err != nil {
		t.Fatalf("maint web4: %v %s", err, out)
	}
	// 3 serving, floor 2: a batch of 2 can only take 1 out at a time
	r := e.rollout("apply", "--limit", "web1,web2,web3", "--batch", "2", "--yes", "--ui", "json")
	if r.code != 0 {
		dump(t, r)
		t.Fatalf("exit %d", r.code)
	}
	shrunk := false
	for _, ev := range parseEvents(t, r.stdout) {
		if ev.Event == event.Log && strings.Contains(ev.Message, "shrunk") {
			shrunk = true
		}
		if ev.Event == event.BatchStart && len(ev.Hosts) > 1 {
			t.Errorf("batch %d took %v out together with web4 down and min_in_service 2", ev.Batch, ev.Hosts)
		}
	}
	if !shrunk {
		t.Error("no log event says the batch was shrunk")
	}
	for _, h := range e.f.Hosts[:3] {
		if v := e.appVersion(t, h); v != "version=2" {
			t.Errorf("%s answers %s", h.Name, v)
		}
	}
}
