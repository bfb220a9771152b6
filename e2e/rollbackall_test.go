package e2e

import (
	"strings"
	"testing"

	"github.com/rollout-sh/rollout/rollout/event"
)

// Issue 25 item 3: a release that only web2 serves badly (5% of requests
// fail behind a healthy /healthz) passes the canary web1, is caught by
// canary analysis in batch 2, and on_failure = "rollback_all" returns web2
// and web1 — the batch already done — to v1; web3 never starts. The only
// failed requests are the 500s web2's app itself served while the analysis
// judged it: no request failed on a connection (HAProxy's econ, eresp and
// srv_abrt do not grow, no 5xx on any other server).
func TestRollbackAllReturnsTheBatchesAlreadyDone(t *testing.T) {
	t.Parallel()
	e := setup(t, 3, 1)
	e.drain = strings.Replace(e.drain, `ramp      = ["50%", "100%"]`, `ramp      = ["25%", "100%"]`, 1)
	bad := e.commitConfig(t, "bad-on-web2", "version = 3\nmessage = \"on ${host.name}\"\nlisten = 127.0.0.1:${host.vars.app_port}\n%{ if host.name == \"web2\" }error_rate = 0.05\n%{ endif }")
	e.writePlan(e.tags["v1"], "halt", "1s")
	e.waitAllUp(t)
	if r := e.rollout("apply", "--batch", "1", "--yes", "--ui", "json"); r.code != 0 {
		dump(t, r)
		t.Fatalf("v1: exit %d", r.code)
	}
	e.extra = analysisBlock(`    max_error_rate = "1%"
    min_requests   = 100
    interval       = "1s"
    deadline       = "60s"`)
	e.writePlan(bad, "rollback_all", "1s")
	e.waitAllUp(t)
	before := map[string]drainStat{}
	for name, s := range e.stats(t) {
		before[name] = drainStat{s.Fields["econ"], s.Fields["eresp"], s.Fields["srv_abrt"], s.Fields["hrsp_5xx"]}
	}
	l := startLoad(e.frontend(), 4)
	r := e.rollout("apply", "--batch", "1", "--yes", "--ui", "json")
	l.Stop()
	if r.code != 1 {
		dump(t, r)
		t.Fatalf("apply exit %d, want 1", r.code)
	}
	evs := checkJSONContract(t, r.stdout, 1)
	done := map[string][]string{}
	for _, ev := range evs {
		if ev.Event == event.HostDone {
			done[ev.Host] = append(done[ev.Host], ev.Status+"@"+ev.Revision)
		}
	}
	v1 := e.tags["v1"]
	if got := strings.Join(done["web1"], " "); got != "ok@"+bad+" rolled_back@"+v1 {
		t.Errorf("web1: %s; want ok at the release, then rolled_back to v1", got)
	}
	if got := strings.Join(done["web2"], " "); got != "rolled_back@"+v1 {
		t.Errorf("web2: %s; want rolled_back to v1", got)
	}
	if got := strings.Join(done["web3"], " "); got != "not_started@" && !strings.HasPrefix(got, "not_started") {
		t.Errorf("web3: %s; want not_started", got)
	}
	for _, h := range e.f.Hosts {
		if v := e.appVersion(t, h); v != "version=1" {
			t.Errorf("%s answers %q, want version=1", h.Name, v)
		}
		if st := e.state(t, h); st == nil || st["revision"] != v1 {
			t.Errorf("%s records %v, want v1", h.Name, st)
		}
	}
	e.waitAllUp(t)
	for name, s := range e.stats(t) {
		b := before[name]
		if s.Fields["econ"] != b.econ || s.Fields["eresp"] != b.eresp || s.Fields["srv_abrt"] != b.abrt {
			t.Errorf("%s: econ %s→%s, eresp %s→%s, srv_abrt %s→%s: a request failed on a connection", name, b.econ, s.Fields["econ"], b.eresp, s.Fields["eresp"], b.abrt, s.Fields["srv_abrt"])
		}
		if !strings.HasSuffix(name, "/web2") && s.Fields["hrsp_5xx"] != b.x5 {
			t.Errorf("%s served 5xx (%s→%s): only web2's bad release may", name, b.x5, s.Fields["hrsp_5xx"])
		}
		if s.Status != "UP" || s.Weight != 100 {
			t.Errorf("%s ends %s weight %d", name, s.Status, s.Weight)
		}
	}
	if _, failed, _ := l.Stop(); failed == 0 {
		t.Log("no client saw web2's 500s (the analysis caught it early)")
	} else {
		t.Logf("%d client requests got web2's 500s", failed)
	}
}

type drainStat struct{ econ, eresp, abrt, x5 string }
