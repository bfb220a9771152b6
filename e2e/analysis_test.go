package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rollout-sh/rollout/rollout/event"
)

// analysisBlock is an analysis "haproxy" block for the e2e plans.
func analysisBlock(limits string) string {
	return "  analysis \"haproxy\" {\n" + limits + "\n  }"
}

// commitConfig commits conf/app.conf.tmpl with body in the env's repo and
// tags it; it returns the commit.
func (e *env) commitConfig(t *testing.T, tag, body string) string {
	t.Helper()
	if err := os.WriteFile(filepath.Join(e.repo, "conf", "app.conf.tmpl"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	gitEnv := append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@rollout.invalid", "GIT_COMMITTER_NAME=t",
		"GIT_COMMITTER_EMAIL=t@rollout.invalid", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
	for _, args := range [][]string{{"add", "-A"}, {"commit", "-qm", tag}, {"tag", tag}} {
		cmd := exec.Command("git", append([]string{"-C", e.repo}, args...)...)
		cmd.Env = gitEnv
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	out, err := exec.Command("git", "-C", e.repo, "rev-parse", "HEAD").Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

func analysisEvents(evs []event.Event, host string) []event.Event {
	var out []event.Event
	for _, ev := range evs {
		if ev.Event == event.Analysis && ev.Host == host {
			out = append(out, ev)
		}
	}
	return out
}

// A release whose /healthz is fine while 5% of "/" requests fail passes the
// health gate, is caught by canary analysis at the first ramp step and
// rolled back; the errors clients saw are bounded by the ramp weight: far
// below what a full-weight rollout of it would have served.
func TestAnalysisCatchesFlakyCanary(t *testing.T) {
	t.Parallel()
	e := setup(t, 3, 1)
	e.drain = strings.Replace(e.drain, `ramp      = ["50%", "100%"]`, `ramp      = ["25%", "100%"]`, 1)
	e.extra = analysisBlock(`    max_error_rate          = "1%"
    max_error_rate_increase = "0.5%"
    min_requests            = 100
    interval                = "1s"
    deadline                = "60s"`)
	e.writePlan(e.tags["flaky"], "rollback", "1s")
	e.waitAllUp(t)
	l := startLoad(e.frontend(), 4)
	r := e.rollout("apply", "--batch", "1", "--yes", "--ui", "json")
	l.Stop()
	if r.code != 1 {
		dump(t, r)
		t.Fatalf("apply exit %d, want 1 (the canary failed its analysis)", r.code)
	}
	evs := checkJSONContract(t, r.stdout, 1)
	done := hostDone(evs)
	if done["web1"].Status != string(event.OutcomeRolledBack) || done["web2"].Status != string(event.OutcomeNotStarted) || done["web3"].Status != string(event.OutcomeNotStarted) {
		dump(t, r)
		t.Fatalf("outcomes web1 %s, web2 %s, web3 %s", done["web1"].Status, done["web2"].Status, done["web3"].Status)
	}
	// the health gate passed: the failure is the analysis, at the first step
	for _, ev := range evs {
		if ev.Event == event.HostPhase && ev.Host == "web1" && ev.Phase == event.PhaseHealth && ev.Status == event.StatusFailed {
			t.Fatalf("the health gate failed (the fault must be invisible to it): %s", ev.Message)
		}
	}
	an := analysisEvents(evs, "web1")
	if len(an) == 0 {
		dump(t, r)
		t.Fatal("no analysis event")
	}
	last := an[len(an)-1]
	a := last.Analysis
	if last.Status != "fail" || a.Step != "ramp 25%" || a.Kind != "haproxy" || a.Canary.Requests < 100 || a.Canary.Errors == 0 ||
		a.Canary.ErrorRate < 0.01 || strings.Join(a.Canary.Servers, ",") != "web1" || a.Baseline.Requests == 0 || a.Baseline.Errors != 0 {
		t.Fatalf("last analysis event: %s %q %+v", last.Status, last.Message, a)
	}
	for _, ev := range an {
		if ev.Status == "pass" {
			t.Fatalf("a pass before the failure: %+v", ev)
		}
	}
	for _, want := range []string{"canary analysis at ramp 25%", "above max_error_rate 1%", "unchanged web2,web3:", "rolled back"} {
		if !strings.Contains(done["web1"].Message, want) {
			t.Errorf("host_done message lacks %q: %s", want, done["web1"].Message)
		}
	}
	if !strings.Contains(r.stdout, `"analysis":{"kind":"haproxy","step":"ramp 25%"`) {
		t.Errorf("the JSON analysis event does not carry the figures as documented")
	}
	// the journal holds the same evidence
	journal := e.checkJournalRun(t, evs[0].Run, "failed")
	if ja := analysisEvents(journal, "web1"); len(ja) != len(an) || ja[len(ja)-1].Analysis.Canary.Errors != a.Canary.Errors {
		t.Errorf("journal has %d analysis events, stdout %d", len(ja), len(an))
	}
	// rolled back: web1 answers its old version; every server serves again
	if v := e.appVersion(t, e.host(t, "web1")); !strings.HasPrefix(v, "version=0") {
		t.Errorf("web1 answers %q after the rollback", v)
	}
	e.checkNoneDrained(t, nil)
	// bounded by the ramp weight: a full-weight rollout of this release
	// serves 5% errors; the clients saw a small fraction of that
	total := l.OK.Load() + l.Failed.Load()
	failed := l.Failed.Load()
	t.Logf("clients: %d requests, %d failed (%.2f%%); canary at 25%%: %d requests, %d errors in %.1fs",
		total, failed, 100*float64(failed)/float64(total), a.Canary.Requests, a.Canary.Errors, a.WindowS)
	if failed == 0 {
		t.Errorf("no client saw an error: the fault was not live, the test proves nothing")
	}
	if full := 0.05 * float64(total); float64(failed) > full/4 {
		t.Errorf("%d failed requests of %d: more than a quarter of the %.0f a full-weight rollout would have served", failed, total, full)
	}
	if failed > a.Canary.Errors+5 {
		t.Errorf("clients saw %d errors, the canary's counters %d: errors came from elsewhere", failed, a.Canary.Errors)
	}
}

// A good release passes the analysis at every step (its response time
// equal to the old one), and a release whose response time doubles is
// caught at its first ramp step and rolled back.
func TestAnalysisGoodPassesSlowCaught(t *testing.T) {
	t.Parallel()
	e := setup(t, 3, 1)
	conf := func(version, slow string) string {
		return "version = " + version + "\nmessage = \"on ${host.name}\"\nlisten = 127.0.0.1:${host.vars.app_port}\nslow_ms = " + slow + "\n"
	}
	base := e.commitConfig(t, "base20", conf("20", "20"))
	good := e.commitConfig(t, "good20", conf("21", "20"))
	slow := e.commitConfig(t, "slow40", conf("40", "40"))
	e.waitAllUp(t)

	// every host at 20ms, without analysis
	e.writePlan(base, "rollback", "1s")
	if r := e.rollout("apply", "--batch", "1", "--yes", "--ui", "json"); r.code != 0 {
		dump(t, r)
		t.Fatalf("base apply: exit %d", r.code)
	}

	e.extra = analysisBlock(`    max_error_rate             = "1%"
    max_response_time_increase = "50%"
    min_requests               = 40
    interval                   = "1s"
    deadline                   = "60s"`)
	l := startLoad(e.frontend(), 4)
	defer l.Stop() // stopping twice is safe
	e.writePlan(good, "rollback", "1s")
	r := e.rollout("apply", "--batch", "1", "--yes", "--ui", "json")
	if r.code != 0 {
		dump(t, r)
		t.Fatalf("good release: exit %d", r.code)
	}
	evs := checkJSONContract(t, r.stdout, 0)
	for _, h := range []string{"web1", "web2", "web3"} {
		an := analysisEvents(evs, h)
		steps := map[string]bool{}
		for _, ev := range an {
			if ev.Status == "fail" {
				t.Fatalf("%s: a good release failed: %s", h, ev.Message)
			}
			if ev.Status == "pass" {
				steps[ev.Analysis.Step] = true
				if ev.Analysis.Canary.RTimeMS == nil || ev.Analysis.Canary.Requests < 40 {
					t.Errorf("%s: pass without figures: %+v", h, ev.Analysis)
				}
			}
		}
		if !steps["ramp 50%"] || !steps["ramp 100%"] {
			t.Errorf("%s: passed steps %v, want ramp 50%% and ramp 100%%", h, steps)
		}
		if v := e.appVersion(t, e.host(t, h)); !strings.HasPrefix(v, "version=21") {
			t.Errorf("%s answers %q", h, v)
		}
	}
	// web3 is the last: nothing unchanged is left to compare with, and the
	// evidence says so
	if an := analysisEvents(evs, "web3"); len(an) == 0 || !strings.Contains(strings.Join(an[len(an)-1].Analysis.Notes, " "), "unchanged cohort had no traffic") {
		t.Errorf("web3's verdict does not say it had no baseline: %+v", an)
	}

	e.writePlan(slow, "rollback", "1s")
	r = e.rollout("apply", "--batch", "1", "--yes", "--ui", "json")
	l.Stop()
	if r.code != 1 {
		dump(t, r)
		t.Fatalf("slow release: exit %d, want 1", r.code)
	}
	evs = checkJSONContract(t, r.stdout, 1)
	done := hostDone(evs)
	if done["web1"].Status != string(event.OutcomeRolledBack) || done["web2"].Status != string(event.OutcomeNotStarted) {
		t.Fatalf("outcomes %s %s: %s", done["web1"].Status, done["web2"].Status, done["web1"].Message)
	}
	an := analysisEvents(evs, "web1")
	last := an[len(an)-1]
	a := last.Analysis
	if last.Status != "fail" || a.Step != "ramp 50%" || a.Canary.RTimeMS == nil || a.Baseline.RTimeMS == nil ||
		*a.Canary.RTimeMS < 1.5**a.Baseline.RTimeMS || !strings.Contains(last.Message, "max_response_time_increase is 50%") {
		t.Fatalf("last verdict %s %q %+v", last.Status, last.Message, a)
	}
	t.Logf("slow canary %.1fms against %.1fms over %d requests", *a.Canary.RTimeMS, *a.Baseline.RTimeMS, a.Canary.Requests)
	if v := e.appVersion(t, e.host(t, "web1")); !strings.HasPrefix(v, "version=21") {
		t.Errorf("web1 answers %q after the rollback", v)
	}
}

// Without traffic the step holds — never a pass — and fails at the
// deadline with "not enough traffic"; under on_failure = "halt" the host is
// left drained for inspection.
func TestAnalysisNotEnoughTrafficFailsAtDeadline(t *testing.T) {
	t.Parallel()
	e := setup(t, 2, 1)
	e.extra = analysisBlock(`    max_error_rate = "1%"
    min_requests   = 100
    interval       = "1s"
    deadline       = "4s"`)
	e.writePlan(e.tags["v2"], "halt", "1s")
	e.waitAllUp(t)
	r := e.rollout("apply", "--batch", "1", "--yes", "--ui", "json")
	if r.code != 1 {
		dump(t, r)
		t.Fatalf("exit %d, want 1", r.code)
	}
	evs := checkJSONContract(t, r.stdout, 1)
	done := hostDone(evs)
	if done["web1"].Status != string(event.OutcomeDrained) || !strings.Contains(done["web1"].Message, "not enough traffic") {
		t.Fatalf("web1: %s %q", done["web1"].Status, done["web1"].Message)
	}
	an := analysisEvents(evs, "web1")
	if len(an) < 2 {
		t.Fatalf("want holds before the failure, got %d verdicts", len(an))
	}
	for _, ev := range an[:len(an)-1] {
		if ev.Status != "hold" {
			t.Fatalf("before the deadline: %s %q", ev.Status, ev.Message)
		}
	}
	last := an[len(an)-1]
	if last.Status != "fail" || !strings.Contains(last.Message, "not enough traffic") || !strings.Contains(last.Message, "min_requests is 100") ||
		last.Analysis.ElapsedS < 4 {
		t.Fatalf("last verdict %s %q (elapsed %.1fs)", last.Status, last.Message, last.Analysis.ElapsedS)
	}
	st := e.stats(t)
	for name, s := range st {
		if strings.HasSuffix(name, "/web1") && !strings.HasPrefix(s.Status, "MAINT") {
			t.Errorf("web1 is %s on the LB, want left drained (MAINT)", s.Status)
		}
	}
}
