package prometheus

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rollout-sh/rollout/analysis"
)

// fakeProm answers /api/v1/query from a table of query → answer, and
// records what it was asked.
type fakeProm struct {
	mu      sync.Mutex
	answers map[string]func() (int, string)
	asked   []asked
	auth    []string
}

type asked struct{ query, time string }

func (f *fakeProm) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/prom/api/v1/query" || r.Method != http.MethodPost {
		http.NotFound(w, r)
		return
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	q := r.PostForm.Get("query")
	f.mu.Lock()
	f.asked = append(f.asked, asked{q, r.PostForm.Get("time")})
	f.auth = append(f.auth, r.Header.Get("Authorization"))
	ans := f.answers[q]
	f.mu.Unlock()
	if ans == nil {
		w.WriteHeader(400)
		fmt.Fprintf(w, `{"status":"error","errorType":"bad_data","error":"unknown query %s"}`, q)
		return
	}
	code, body := ans()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	fmt.Fprint(w, body)
}

func vector(label string, vals map[string]string) func() (int, string) {
	return func() (int, string) {
		var res []map[string]any
		for s, v := range vals {
			res = append(res, map[string]any{"metric": map[string]string{label: s, "proxy": "web"}, "value": []any{1765150000.5, v}})
		}
		b, _ := json.Marshal(map[string]any{"status": "success", "data": map[string]any{"resultType": "vector", "result": res}})
		return 200, string(b)
	}
}

func source(t *testing.T, f *fakeProm, mod func(*Config)) *Source {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	cfg := Config{Address: srv.URL + "/prom/",
		Requests: Query{Name: "requests", Expr: "req", At: "rollout.hcl:4"},
		Errors:   Query{Name: "errors", Expr: "err", At: "rollout.hcl:5"}}
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestReadCounters(t *testing.T) {
	f := &fakeProm{answers: map[string]func() (int, string){
		"req": vector("server", map[string]string{"web1": "1000", "web2": "2000.4"}),
		"err": vector("server", map[string]string{"web1": "10", "web2": "0"}),
		"rt":  vector("server", map[string]string{"web1": "12.5", "web2": "30"}),
	}}
	s := source(t, f, func(c *Config) {
		c.ResponseTime = Query{Name: "response_time", Expr: "rt", At: "rollout.hcl:6"}
		c.Username, c.Password = "ops", "s3cret"
	})
	snap := s.Read(context.Background())
	if len(snap.Unread) != 0 || len(snap.Broken) != 0 {
		t.Fatalf("unread %v broken %v", snap.Unread, snap.Broken)
	}
	got := snap.LBs[s.Name()]
	want := map[string]analysis.Counters{
		"web1": {Requests: 1000, Responses: 1000, Errors: 10, RTime: 12500, RTimeKind: analysis.RTimeSum},
		"web2": {Requests: 2000, Responses: 2000, Errors: 0, RTime: 30000, RTimeKind: analysis.RTimeSum},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("counters\n got %v\nwant %v", got, want)
	}
	// one evaluation time for all three; basic auth on each
	if len(f.asked) != 3 || f.asked[0].time != "" || f.asked[1].time != "1765150000.5" || f.asked[2].time != "1765150000.5" {
		t.Errorf("asked %v", f.asked)
	}
	for _, a := range f.auth {
		if !strings.HasPrefix(a, "Basic ") {
			t.Errorf("authorization %q", a)
		}
	}
}

// Counters to rates: two readings of the fake through analysis.Compare are
// the window's error rates, the same arithmetic as for HAProxy.
func TestReadThenCompare(t *testing.T) {
	vals := map[string]map[string]string{
		"req": {"web1": "1000", "web2": "1000", "web3": "1000"},
		"err": {"web1": "0", "web2": "0", "web3": "0"},
	}
	var mu sync.Mutex
	ans := func(q string) func() (int, string) {
		return func() (int, string) {
			mu.Lock()
			defer mu.Unlock()
			return vector("instance", vals[q])()
		}
	}
	f := &fakeProm{answers: map[string]func() (int, string){"req": ans("req"), "err": ans("err")}}
	s := source(t, f, func(c *Config) { c.ServerLabel = "instance"; c.BearerToken = "tok" })
	start := s.Read(context.Background())
	mu.Lock()
	vals["req"] = map[string]string{"web1": "1200", "web2": "1400", "web3": "1400"}
	vals["err"] = map[string]string{"web1": "10", "web2": "0", "web3": "1"}
	mu.Unlock()
	end := s.Read(context.Background())
	end.At = start.At.Add(10 * time.Second)
	lim := 0.01
	r := analysis.Compare(start, end, []string{"web1"}, nil, analysis.Thresholds{MaxErrorRate: &lim, MinRequests: 100})
	if r.Verdict != analysis.Fail || r.Canary.Requests != 200 || r.Canary.Errors != 10 || r.Baseline.Requests != 800 || r.Baseline.Errors != 1 {
		t.Fatalf("%s %q canary %+v baseline %+v", r.Verdict, r.Reason, r.Canary, r.Baseline)
	}
	if f.auth[0] != "Bearer tok" {
		t.Errorf("authorization %q", f.auth[0])
	}
}

// Nothing for a server, or nothing at all, holds: never a pass.
func TestReadNothingHolds(t *testing.T) {
	lim := 0.01
	th := analysis.Thresholds{MaxErrorRate: &lim, MinRequests: 10}
	for name, answers := range map[string]map[string]func() (int, string){
		"empty result": {"req": vector("server", nil), "err": vector("server", nil)},
		"canary missing from errors": {
			"req": vector("server", map[string]string{"web1": "500", "web2": "500"}),
			"err": vector("server", map[string]string{"web2": "0"})},
		"canary missing from requests": {
			"req": vector("server", map[string]string{"web2": "500"}),
			"err": vector("server", map[string]string{"web1": "0", "web2": "0"})},
		"NaN": {
			"req": vector("server", map[string]string{"web1": "NaN", "web2": "500"}),
			"err": vector("server", map[string]string{"web1": "0", "web2": "0"})},
	} {
		t.Run(name, func(t *testing.T) {
			s := source(t, &fakeProm{answers: answers}, nil)
			start := analysis.Snapshot{At: time.Now(), LBs: map[string]map[string]analysis.Counters{s.Name(): {}}}
			end := s.Read(context.Background())
			if len(end.Broken) != 0 || len(end.Unread) != 0 {
				t.Fatalf("broken %v unread %v", end.Broken, end.Unread)
			}
			r := analysis.Compare(start, end, []string{"web1"}, nil, th)
			if r.Verdict != analysis.Hold {
				t.Fatalf("%s %q", r.Verdict, r.Reason)
			}
			t.Logf("%s; notes %v", r.Reason, r.Notes)
		})
	}
}

// An unreachable Prometheus, or one that answers 503, is unread: the
// verdict holds.
func TestReadUnreachableHolds(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := srv.URL
	srv.Close()
	s, err := New(Config{Address: addr, Requests: Query{Name: "requests", Expr: "req"}, Errors: Query{Name: "errors", Expr: "err"}, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	snap := s.Read(context.Background())
	if len(snap.LBs) != 0 || len(snap.Broken) != 0 || !strings.Contains(snap.Unread[addr], "requests query") {
		t.Fatalf("down: %+v", snap)
	}
	if r := analysis.Compare(snap, snap, []string{"web1"}, nil, analysis.Thresholds{MinRequests: 1}); r.Verdict != analysis.Hold {
		t.Fatalf("down: %s", r.Verdict)
	}

	busy := &fakeProm{answers: map[string]func() (int, string){
		"req": func() (int, string) {
			return 503, `{"status":"error","errorType":"timeout","error":"query timed out in expression evaluation"}`
		},
		"err": vector("server", nil)}}
	snap = source(t, busy, nil).Read(context.Background())
	if len(snap.Broken) != 0 || len(snap.Unread) != 1 {
		t.Fatalf("503: %+v", snap)
	}
}

// A query Prometheus refuses (bad PromQL: 400), refused credentials, or a
// result that cannot be per server is broken: the verdict fails, and the
// reason names the query and where the plan sets it.
func TestReadQueryErrorFails(t *testing.T) {
	tests := []struct {
		name    string
		answers map[string]func() (int, string)
		want    []string
	}{
		{"bad PromQL", map[string]func() (int, string){"err": vector("server", nil)}, // "req" unknown: 400 bad_data
			[]string{"requests query `req` (rollout.hcl:4)", "400 Bad Request", "bad_data: unknown query req"}},
		{"unauthorized", map[string]func() (int, string){
			"req": func() (int, string) { return 401, "Unauthorized" }, "err": vector("server", nil)},
			[]string{"requests query `req`", "401", "Unauthorized"}},
		{"execution error", map[string]func() (int, string){
			"req": vector("server", nil),
			"err": func() (int, string) {
				return 422, `{"status":"error","errorType":"execution","error":"many-to-many matching not allowed"}`
			}},
			[]string{"errors query `err` (rollout.hcl:5)", "execution: many-to-many"}},
		{"no server label", map[string]func() (int, string){
			"req": vector("instance", map[string]string{"a:1": "5"}), "err": vector("server", nil)},
			[]string{"requests query `req`", "without the label server", `instance="a:1"`, "sum by (server)"}},
		{"scalar", map[string]func() (int, string){
			"req": func() (int, string) {
				return 200, `{"status":"success","data":{"resultType":"scalar","result":[1765150000,"1"]}}`
			}, "err": vector("server", nil)},
			[]string{"requests query `req`", "returns a scalar"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := source(t, &fakeProm{answers: tt.answers}, nil)
			snap := s.Read(context.Background())
			why := snap.Broken[s.Name()]
			for _, w := range tt.want {
				if !strings.Contains(why, w) {
					t.Errorf("broken %q lacks %q", why, w)
				}
			}
			r := analysis.Compare(snap, snap, []string{"web1"}, nil, analysis.Thresholds{MinRequests: 1})
			if r.Verdict != analysis.Fail || r.Reason != why {
				t.Errorf("verdict %s %q", r.Verdict, r.Reason)
			}
		})
	}
}

func TestNewChecksConfig(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:9090", "ftp://x", "http://"} {
		if _, err := New(Config{Address: addr, Requests: Query{Expr: "a"}, Errors: Query{Expr: "b"}}); err == nil {
			t.Errorf("%s accepted", addr)
		}
	}
	if _, err := New(Config{Address: "https://p:9090", Requests: Query{Expr: "a"}, Errors: Query{Expr: "b"}, CAFile: "/nonexistent"}); err == nil {
		t.Error("missing ca_file accepted")
	}
}
