package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rollout-sh/rollout/internal/fleet"
	"github.com/rollout-sh/rollout/rollout/event"
)

// The queries of the e2e plans: HAProxy's built-in exporter, per server.
const (
	promRequests = `sum by (server) (haproxy_server_http_responses_total{proxy="web"})`
	promErrors   = `sum by (server) (haproxy_server_http_responses_total{proxy="web",code="5xx"})`
)

// setupProm is setup with each HAProxy serving its exporter and a real
// Prometheus scraping it every second, ready with the backend's series.
func setupProm(t *testing.T, hosts int) (*env, *fleet.Prometheus) {
	t.Helper()
	fleet.RequireTool(t, fleet.PrometheusBinary)
	e := setupWith(t, hosts, 1, func(o *fleet.Options) { o.Metrics = true })
	var targets []string
	for _, p := range e.f.MetricsPorts {
		targets = append(targets, fmt.Sprintf("127.0.0.1:%d", p))
	}
	prom := fleet.StartPrometheusT(t, targets)
	if err := prom.WaitScraped(context.Background(), promRequests); err != nil {
		t.Fatal(err)
	}
	return e, prom
}

// promAnalysis is an analysis "prometheus" block for the e2e plans.
func promAnalysis(address, requests, limits string) string {
	return fmt.Sprintf("  analysis \"prometheus\" {\n    address  = %q\n    requests = %q\n    errors   = %q\n%s\n  }", address, requests, promErrors, limits)
}

// A release whose /healthz is fine while 5% of "/" requests fail is caught
// at the canary's first ramp step from Prometheus's figures (HAProxy's
// exporter, scraped every second) and rolled back; no other host starts.
func TestPrometheusAnalysisCatchesFlakyCanary(t *testing.T) {
	t.Parallel()
	e, prom := setupProm(t, 3)
	e.drain = strings.Replace(e.drain, `ramp      = ["50%", "100%"]`, `ramp      = ["25%", "100%"]`, 1)
	e.extra = promAnalysis(prom.URL, promRequests, `    max_error_rate          = "1%"
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
	for _, ev := range an {
		if ev.Status == "pass" {
			t.Fatalf("a pass before the failure: %+v", ev)
		}
	}
	last := an[len(an)-1]
	a := last.Analysis
	if last.Status != "fail" || a.Step != "ramp 25%" || a.Kind != "prometheus" || a.Canary.Requests < 100 || a.Canary.Errors == 0 ||
		a.Canary.ErrorRate < 0.01 || strings.Join(a.Canary.Servers, ",") != "web1" || a.Baseline.Requests == 0 || a.Baseline.Errors != 0 {
		t.Fatalf("last analysis event: %s %q %+v", last.Status, last.Message, a)
	}
	for _, want := range []string{"canary analysis at ramp 25%", "above max_error_rate 1%", "unchanged web2,web3:", "rolled back"} {
		if !strings.Contains(done["web1"].Message, want) {
			t.Errorf("host_done message lacks %q: %s", want, done["web1"].Message)
		}
	}
	if v := e.appVersion(t, e.host(t, "web1")); !strings.HasPrefix(v, "version=0") {
		t.Errorf("web1 answers %q after the rollback", v)
	}
	e.checkNoneDrained(t, nil)
	t.Logf("canary at 25%%: %d requests, %d errors (%.2f%%) in %.1fs; clients saw %d failed of %d",
		a.Canary.Requests, a.Canary.Errors, 100*a.Canary.ErrorRate, a.WindowS, l.Failed.Load(), l.OK.Load()+l.Failed.Load())
}

// A query Prometheus refuses (bad PromQL) refuses the run before any host
// is touched, naming the query and the plan's line; then a good release
// passes every step from Prometheus's figures.
func TestPrometheusAnalysisBadQueryRefusedGoodPasses(t *testing.T) {
	t.Parallel()
	e, prom := setupProm(t, 3)
	limits := `    max_error_rate = "1%"
    min_requests   = 40
    interval       = "1s"
    deadline       = "60s"`
	e.waitAllUp(t)

	bad := `sum by (server) (haproxy_server_http_responses_total{proxy="web"}`
	e.extra = promAnalysis(prom.URL, bad, limits)
	e.writePlan(e.tags["v2"], "rollback", "1s")
	r := e.rollout("apply", "--batch", "1", "--yes")
	if r.code != 2 {
		dump(t, r)
		t.Fatalf("bad query: exit %d, want 2 (refused)", r.code)
	}
	t.Logf("refused:\n%s", r.stderr)
	for _, want := range []string{"requests query `" + bad + "`", "rollout.hcl:", "400 Bad Request", "bad_data"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("refusal lacks %q:\n%s", want, r.stderr)
		}
	}
	for _, h := range []string{"web1", "web2", "web3"} {
		if v := e.appVersion(t, e.host(t, h)); !strings.HasPrefix(v, "version=0") {
			t.Errorf("%s answers %q after a refused run", h, v)
		}
	}

	e.extra = promAnalysis(prom.URL, promRequests, limits)
	e.writePlan(e.tags["v2"], "rollback", "1s")
	l := startLoad(e.frontend(), 4)
	r = e.rollout("apply", "--batch", "1", "--yes", "--ui", "json")
	l.Stop()
	if r.code != 0 {
		dump(t, r)
		t.Fatalf("good release: exit %d", r.code)
	}
	evs := checkJSONContract(t, r.stdout, 0)
	for _, h := range []string{"web1", "web2", "web3"} {
		steps := map[string]bool{}
		for _, ev := range analysisEvents(evs, h) {
			if ev.Status == "fail" {
				t.Fatalf("%s: a good release failed: %s", h, ev.Message)
			}
			if ev.Status == "pass" {
				steps[ev.Analysis.Step] = true
				if ev.Analysis.Kind != "prometheus" || ev.Analysis.Canary.Requests < 40 {
					t.Errorf("%s: pass without figures: %+v", h, ev.Analysis)
				}
			}
		}
		if !steps["ramp 50%"] || !steps["ramp 100%"] {
			t.Errorf("%s: passed steps %v, want ramp 50%% and ramp 100%%", h, steps)
		}
		if v := e.appVersion(t, e.host(t, h)); !strings.HasPrefix(v, "version=2") {
			t.Errorf("%s answers %q", h, v)
		}
	}
	if l.Failed.Load() != 0 {
		t.Errorf("clients saw %d failed requests during a good release", l.Failed.Load())
	}
}

// Prometheus stopped in the middle of a canary's step: every verdict after
// it holds — never a pass — and the step fails at its deadline saying the
// source could not be read; on_failure = "halt" leaves the host drained
// and no other host starts.
func TestPrometheusDownHoldsThenFails(t *testing.T) {
	t.Parallel()
	e, prom := setupProm(t, 3)
	e.extra = promAnalysis(prom.URL, promRequests, `    max_error_rate = "1%"
    min_requests   = 100
    interval       = "1s"
    deadline       = "6s"`)
	e.writePlan(e.tags["v2"], "halt", "1s")
	e.waitAllUp(t)
	l := startLoad(e.frontend(), 4)
	defer l.Stop()
	b := e.startRollout("apply", "--batch", "1", "--yes", "--ui", "json")
	first, ok := b.waitEvent(90*time.Second, func(ev event.Event) bool { return ev.Event == event.Analysis && ev.Host == "web1" })
	if !ok {
		<-b.done
		t.Fatalf("no analysis verdict for web1 (exit %d):\n%s\n%s", b.code, b.stdout.String(), b.stderr.String())
	}
	if first.Analysis.Kind != "prometheus" {
		t.Errorf("first verdict: %+v", first.Analysis)
	}
	if err := prom.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	select {
	case <-b.done:
	case <-time.After(2 * time.Minute):
		t.Fatal("the run did not end after Prometheus stopped")
	}
	l.Stop()
	b.mu.Lock()
	stdout := b.stdout.String()
	b.mu.Unlock()
	if b.code != 1 {
		t.Fatalf("exit %d, want 1:\n%s\n%s", b.code, stdout, b.stderr.String())
	}
	evs := checkJSONContract(t, stdout, 1)
	an := analysisEvents(evs, "web1")
	seen := false
	for i, ev := range an {
		if !seen {
			seen = ev.Time.Equal(first.Time) && ev.Status == first.Status
			continue
		}
		if i == len(an)-1 {
			break
		}
		if ev.Status != "hold" {
			t.Fatalf("after Prometheus stopped: %s %q", ev.Status, ev.Message)
		}
	}
	last := an[len(an)-1]
	if last.Status != "fail" || !strings.Contains(last.Message, "could be read") || !strings.Contains(last.Message, "deadline 6s") {
		t.Fatalf("last verdict %s %q", last.Status, last.Message)
	}
	if notes := strings.Join(last.Analysis.Notes, " "); !strings.Contains(notes, prom.URL+" not read") {
		t.Errorf("the evidence does not say Prometheus could not be read: %v", last.Analysis.Notes)
	}
	done := hostDone(evs)
	if done["web1"].Status != string(event.OutcomeDrained) || done["web2"].Status != string(event.OutcomeNotStarted) {
		t.Fatalf("outcomes web1 %s %q, web2 %s", done["web1"].Status, done["web1"].Message, done["web2"].Status)
	}
	t.Logf("failed %.1fs after Prometheus stopped: %s", time.Since(killed).Seconds(), last.Message)
}
