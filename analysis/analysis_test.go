package analysis

import (
	"math"
	"strings"
	"testing"
	"time"
)

func f(v float64) *float64 { return &v }

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func snap(at time.Duration, lbs map[string]map[string]Counters) Snapshot {
	return Snapshot{At: t0.Add(at), LBs: lbs}
}

func c(req, errs int64) Counters { return Counters{Requests: req, Responses: req, Errors: errs} }

func TestCompare(t *testing.T) {
	th := Thresholds{MaxErrorRate: f(0.01), MaxErrorRateIncrease: f(0.005), MinRequests: 100}
	cases := []struct {
		name       string
		start, end Snapshot
		canary     []string
		exclude    []string
		th         Thresholds
		verdict    Verdict
		reason     string // substring
		note       string // substring of some note
		canReq     int64
		baseReq    int64
	}{
		{
			name:    "good canary passes",
			start:   snap(0, map[string]map[string]Counters{"lb1": {"web1": c(1000, 0), "web2": c(5000, 1)}}),
			end:     snap(10*time.Second, map[string]map[string]Counters{"lb1": {"web1": c(1200, 0), "web2": c(5400, 1)}}),
			canary:  []string{"web1"},
			th:      th,
			verdict: Pass, canReq: 200, baseReq: 400,
		},
		{
			name:    "5% errors fail the absolute ceiling",
			start:   snap(0, map[string]map[string]Counters{"lb1": {"web1": c(1000, 0), "web2": c(5000, 0)}}),
			end:     snap(10*time.Second, map[string]map[string]Counters{"lb1": {"web1": c(1200, 10), "web2": c(5400, 0)}}),
			canary:  []string{"web1"},
			th:      th,
			verdict: Fail, reason: "error rate 5% (10 of 200 requests) is above max_error_rate 1%", canReq: 200,
		},
		{
			name:    "errors before the window do not count",
			start:   snap(0, map[string]map[string]Counters{"lb1": {"web1": c(1000, 900), "web2": c(5000, 0)}}),
			end:     snap(10*time.Second, map[string]map[string]Counters{"lb1": {"web1": c(1200, 900), "web2": c(5400, 0)}}),
			canary:  []string{"web1"},
			th:      th,
			verdict: Pass, canReq: 200,
		},
		{
			name:    "increase over the baseline fails although under the ceiling",
			start:   snap(0, map[string]map[string]Counters{"lb1": {"web1": c(0, 0), "web2": c(0, 0)}}),
			end:     snap(10*time.Second, map[string]map[string]Counters{"lb1": {"web1": c(1000, 8), "web2": c(1000, 1)}}),
			canary:  []string{"web1"},
			th:      Thresholds{MaxErrorRate: f(0.05), MaxErrorRateIncrease: f(0.005), MinRequests: 100},
			verdict: Fail, reason: "0.7% above the unchanged cohort's 0.1%",
		},
		{
			name:    "too little traffic holds, never passes",
			start:   snap(0, map[string]map[string]Counters{"lb1": {"web1": c(10, 0), "web2": c(10, 0)}}),
			end:     snap(10*time.Second, map[string]map[string]Counters{"lb1": {"web1": c(60, 0), "web2": c(60, 0)}}),
			canary:  []string{"web1"},
			th:      th,
			verdict: Hold, reason: "not enough traffic: 50 requests to web1 in 10s, min_requests is 100",
		},
		{
			name:    "zero traffic holds even with min_requests 0",
			start:   snap(0, map[string]map[string]Counters{"lb1": {"web1": c(10, 0)}}),
			end:     snap(time.Second, map[string]map[string]Counters{"lb1": {"web1": c(10, 0)}}),
			canary:  []string{"web1"},
			th:      Thresholds{MaxErrorRate: f(0.01)},
			verdict: Hold, reason: "not enough traffic: 0 requests",
		},
		{
			name:    "a reload resets counters: counted from the reset, not negative traffic",
			start:   snap(0, map[string]map[string]Counters{"lb1": {"web1": c(100000, 50), "web2": c(100000, 50)}}),
			end:     snap(10*time.Second, map[string]map[string]Counters{"lb1": {"web1": c(300, 30), "web2": c(300, 0)}}),
			canary:  []string{"web1"},
			th:      th,
			verdict: Fail, reason: "error rate 10% (30 of 300 requests)", note: "lb1: counters of web1 went back", canReq: 300, baseReq: 300,
		},
		{
			name: "one LB of a pair disagreeing is not averaged away",
			start: snap(0, map[string]map[string]Counters{
				"lb1": {"web1": c(0, 0), "web2": c(0, 0)},
				"lb2": {"web1": c(0, 0), "web2": c(0, 0)},
			}),
			end: snap(10*time.Second, map[string]map[string]Counters{
				"lb1": {"web1": c(5000, 0), "web2": c(5000, 0)},
				"lb2": {"web1": c(200, 20), "web2": c(200, 0)},
			}),
			canary:  []string{"web1"},
			th:      Thresholds{MaxErrorRate: f(0.01), MinRequests: 100},
			verdict: Fail, reason: "lb2 alone: error rate 10% (20 of 200 requests)", canReq: 5200, baseReq: 5200,
		},
		{
			name: "an LB with too few canary requests alone is not judged alone",
			start: snap(0, map[string]map[string]Counters{
				"lb1": {"web1": c(0, 0)}, "lb2": {"web1": c(0, 0)},
			}),
			end: snap(10*time.Second, map[string]map[string]Counters{
				"lb1": {"web1": c(5000, 0)}, "lb2": {"web1": c(20, 2)},
			}),
			canary:  []string{"web1"},
			th:      Thresholds{MaxErrorRate: f(0.01), MinRequests: 100},
			verdict: Pass,
		},
		{
			name: "an LB unread at the start is left out, with a note",
			start: Snapshot{At: t0, LBs: map[string]map[string]Counters{"lb1": {"web1": c(0, 0)}},
				Unread: map[string]string{"lb2": "connection refused"}},
			end: snap(10*time.Second, map[string]map[string]Counters{
				"lb1": {"web1": c(500, 0)}, "lb2": {"web1": c(500, 500)},
			}),
			canary:  []string{"web1"},
			th:      Thresholds{MaxErrorRate: f(0.01), MinRequests: 100},
			verdict: Pass, note: "lb2 left out: connection refused", canReq: 500,
		},
		{
			name:    "servers changed earlier are neither canary nor baseline",
			start:   snap(0, map[string]map[string]Counters{"lb1": {"web1": c(0, 0), "web2": c(0, 0), "web3": c(0, 0)}}),
			end:     snap(10*time.Second, map[string]map[string]Counters{"lb1": {"web1": c(1000, 3), "web2": c(1000, 100), "web3": c(1000, 3)}}),
			canary:  []string{"web1"},
			exclude: []string{"web2"},
			th:      Thresholds{MaxErrorRateIncrease: f(0.001), MinRequests: 100},
			verdict: Pass, canReq: 1000, baseReq: 1000,
		},
		{
			name:    "no baseline traffic: only the absolute limits, said so",
			start:   snap(0, map[string]map[string]Counters{"lb1": {"web1": c(0, 0)}}),
			end:     snap(10*time.Second, map[string]map[string]Counters{"lb1": {"web1": c(1000, 3)}}),
			canary:  []string{"web1"},
			th:      Thresholds{MaxErrorRate: f(0.01), MaxErrorRateIncrease: f(0.001), MinRequests: 100},
			verdict: Pass, note: "unchanged cohort had no traffic",
		},
		{
			name:    "no LB readable holds",
			start:   Snapshot{At: t0, Unread: map[string]string{"lb1": "refused"}},
			end:     Snapshot{At: t0.Add(time.Second), Unread: map[string]string{"lb1": "refused"}},
			canary:  []string{"web1"},
			th:      th,
			verdict: Hold, reason: "no load balancer could be read",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := Compare(tc.start, tc.end, tc.canary, tc.exclude, tc.th)
			if r.Verdict != tc.verdict {
				t.Fatalf("verdict %s (%s), want %s", r.Verdict, r.Reason, tc.verdict)
			}
			if !strings.Contains(r.Reason, tc.reason) {
				t.Errorf("reason %q, want it to contain %q", r.Reason, tc.reason)
			}
			if tc.note != "" && !strings.Contains(strings.Join(r.Notes, "\n"), tc.note) {
				t.Errorf("notes %q, want one containing %q", r.Notes, tc.note)
			}
			if tc.canReq != 0 && r.Canary.Requests != tc.canReq {
				t.Errorf("canary requests %d, want %d", r.Canary.Requests, tc.canReq)
			}
			if tc.baseReq != 0 && r.Baseline.Requests != tc.baseReq {
				t.Errorf("baseline requests %d, want %d", r.Baseline.Requests, tc.baseReq)
			}
			if r.Window != tc.end.At.Sub(tc.start.At) {
				t.Errorf("window %s", r.Window)
			}
		})
	}
}

// The HAProxy response time estimate recovers the window's mean from the
// running average, so a slow canary is seen long before 1024 responses.
func TestWindowMeanRTime(t *testing.T) {
	// simulate HAProxy's running average: old mean 20ms, then k at 40ms
	avg := func(a0, v float64, k int) float64 {
		sum := a0 * 512
		for i := 0; i < k; i++ {
			sum = sum - sum/512 + v
		}
		return sum / 512
	}
	for _, k := range []int{50, 200, 1000, 5000} {
		ak := avg(20, 40, k)
		m, ok := WindowMeanRTime(20, ak, int64(k))
		if !ok || math.Abs(m-40) > 0.5 {
			t.Errorf("k=%d: estimate %.2f, want 40 (running average %.2f)", k, m, ak)
		}
	}
	if _, ok := WindowMeanRTime(20, 20, 0); ok {
		t.Error("no responses: no estimate")
	}
}

func TestCompareResponseTime(t *testing.T) {
	rt := func(req int64, avg float64) Counters {
		return Counters{Requests: req, Responses: req, RTime: avg, RTimeKind: RTimeAvgHAProxy}
	}
	th := Thresholds{MaxResponseTimeIncrease: f(0.25), MinRequests: 100}
	// the canary's average moved from 20 to ~28.9 over 300 responses: its
	// window mean is ~40ms (+100%); the baseline stays at 20
	start := snap(0, map[string]map[string]Counters{"lb1": {"web1": rt(1000, 20), "web2": rt(1000, 20)}})
	end := snap(10*time.Second, map[string]map[string]Counters{"lb1": {"web1": rt(1300, 29), "web2": rt(1300, 20)}})
	r := Compare(start, end, []string{"web1"}, nil, th)
	if r.Verdict != Fail || !strings.Contains(r.Reason, "above the unchanged cohort's 20.0ms") {
		t.Fatalf("verdict %s: %s (canary %.1fms)", r.Verdict, r.Reason, r.Canary.RTimeMS)
	}
	if r.Canary.RTimeMS < 35 || r.Canary.RTimeMS > 45 {
		t.Errorf("canary rtime %.1f, want about 40", r.Canary.RTimeMS)
	}
	// same averages for both: pass
	end2 := snap(10*time.Second, map[string]map[string]Counters{"lb1": {"web1": rt(1300, 20), "web2": rt(1300, 20)}})
	if r := Compare(start, end2, []string{"web1"}, nil, th); r.Verdict != Pass {
		t.Errorf("equal response times: %s %s", r.Verdict, r.Reason)
	}
	// a sub-millisecond baseline reads 0: the floor of 1ms keeps 1ms from
	// being an infinite increase
	start3 := snap(0, map[string]map[string]Counters{"lb1": {"web1": rt(5000, 0), "web2": rt(5000, 0)}})
	end3 := snap(time.Second, map[string]map[string]Counters{"lb1": {"web1": rt(5500, 1), "web2": rt(5500, 0)}})
	if r := Compare(start3, end3, []string{"web1"}, nil, th); r.Verdict == Fail {
		t.Errorf("1ms against 0ms failed: %s", r.Reason)
	}
	// too few responses to tell: the canary's range straddles the limit, so
	// the verdict holds instead of passing on a guess
	start6 := snap(0, map[string]map[string]Counters{"lb1": {"web1": rt(5000, 20), "web2": rt(5000, 20)}})
	end6 := snap(time.Second, map[string]map[string]Counters{"lb1": {"web1": rt(5110, 21), "web2": rt(5110, 20)}})
	if r := Compare(start6, end6, []string{"web1"}, nil, th); r.Verdict != Hold || !strings.Contains(r.Reason, "response time not settled yet") {
		t.Errorf("straddling range: %s %s (canary %.1f..%.1f)", r.Verdict, r.Reason, r.Canary.RTimeLowMS, r.Canary.RTimeHighMS)
	}
	// an unchanged server's figure is its current average: a rounding
	// flicker from 21 to 20 is not read as a window mean of 15ms
	start5 := snap(0, map[string]map[string]Counters{"lb1": {"web1": rt(5000, 20), "web2": rt(5000, 21)}})
	end5 := snap(time.Second, map[string]map[string]Counters{"lb1": {"web1": rt(5100, 20), "web2": rt(5100, 20)}})
	if r := Compare(start5, end5, []string{"web1"}, nil, th); r.Baseline.RTimeMS != 20 || r.Baseline.RTimeHighMS != 20.5 {
		t.Errorf("baseline %.1fms (high %.1f), want 20 (20.5)", r.Baseline.RTimeMS, r.Baseline.RTimeHighMS)
	}
	// a young server (fewer requests than HAProxy's window) averages all
	// of its samples: 100 at 10ms, then 100 at 30ms read as 20
	start4 := snap(0, map[string]map[string]Counters{"lb1": {"web1": rt(100, 10), "web2": rt(100, 10)}})
	end4 := snap(time.Second, map[string]map[string]Counters{"lb1": {"web1": rt(200, 20), "web2": rt(200, 10)}})
	if r := Compare(start4, end4, []string{"web1"}, nil, th); r.Verdict != Fail || r.Canary.RTimeMS != 30 {
		t.Errorf("young server: %s %.1fms: %s", r.Verdict, r.Canary.RTimeMS, r.Reason)
	}
}

func TestHAProxyCounters(t *testing.T) {
	row := map[string]string{"svname": "web1", "hrsp_1xx": "0", "hrsp_2xx": "950", "hrsp_3xx": "0", "hrsp_4xx": "10",
		"hrsp_5xx": "30", "hrsp_other": "0", "eresp": "5", "econ": "5", "wretr": "2", "req_tot": "1000", "rtime": "12"}
	got, err := HAProxyCounters(row)
	if err != nil {
		t.Fatal(err)
	}
	want := Counters{Requests: 1000, Responses: 990, Errors: 40, Retries: 2, RTime: 12, RTimeKind: RTimeAvgHAProxy}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	delete(row, "req_tot")
	if got, _ := HAProxyCounters(row); got.Requests != 1000 {
		t.Errorf("without req_tot: requests %d, want responses+errors 1000", got.Requests)
	}
	row["econ"] = "x"
	if _, err := HAProxyCounters(row); err == nil || !strings.Contains(err.Error(), "econ") {
		t.Errorf("bad column: %v", err)
	}
}

func TestParseCommandOutput(t *testing.T) {
	got, err := ParseCommandOutput("# server requests errors rtime_sum\nweb1 100 2 2500\n\nweb2 200 0\n")
	if err != nil {
		t.Fatal(err)
	}
	if got["web1"] != (Counters{Requests: 100, Responses: 100, Errors: 2, RTime: 2500, RTimeKind: RTimeSum}) || got["web2"].Requests != 200 {
		t.Errorf("got %+v", got)
	}
	for _, bad := range []string{"", "web1 10", "web1 x 1", "web1 10 20", "web1 1 0\nweb1 2 0", "web1 1 0 -3", "web1 1 0 NaN", "web1 1 0 inf"} {
		if _, err := ParseCommandOutput(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	// a cumulative rtime sum gives the window mean exactly
	start := Snapshot{At: t0, LBs: map[string]map[string]Counters{CommandLB: {"web1": {Requests: 100, Responses: 100, RTime: 1000, RTimeKind: RTimeSum}, "web2": {Requests: 100, Responses: 100, RTime: 1000, RTimeKind: RTimeSum}}}}
	end := Snapshot{At: t0.Add(time.Second), LBs: map[string]map[string]Counters{CommandLB: {"web1": {Requests: 300, Responses: 300, RTime: 9000, RTimeKind: RTimeSum}, "web2": {Requests: 300, Responses: 300, RTime: 3000, RTimeKind: RTimeSum}}}}
	r := Compare(start, end, []string{"web1"}, nil, Thresholds{MaxResponseTimeIncrease: f(0.5), MinRequests: 100})
	if r.Canary.RTimeMS != 40 || r.Baseline.RTimeMS != 10 || r.Verdict != Fail {
		t.Errorf("canary %.1fms baseline %.1fms verdict %s", r.Canary.RTimeMS, r.Baseline.RTimeMS, r.Verdict)
	}
}

func TestPercent(t *testing.T) {
	for in, want := range map[float64]string{0.05: "5%", 0.005: "0.5%", 0: "0%", 0.12345: "12.35%", 1: "100%"} {
		if got := Percent(in); got != want {
			t.Errorf("Percent(%v) = %q, want %q", in, got, want)
		}
	}
}

// A broken source fails the verdict whatever its counters say; its notes
// reach the result.
func TestCompareBrokenSource(t *testing.T) {
	th := Thresholds{MaxErrorRate: f(0.01), MinRequests: 10}
	start := snap(0, map[string]map[string]Counters{"prom": {"web1": c(0, 0), "web2": c(0, 0)}})
	end := snap(10*time.Second, map[string]map[string]Counters{"prom": {"web1": c(500, 0), "web2": c(500, 0)}})
	end.Notes = []string{"errors query lists no web3"}
	if r := Compare(start, end, []string{"web1"}, nil, th); r.Verdict != Pass || !strings.Contains(strings.Join(r.Notes, " "), "lists no web3") {
		t.Fatalf("healthy: %s %q %v", r.Verdict, r.Reason, r.Notes)
	}
	end.Broken = map[string]string{"prom": "requests query `x` (plan.hcl:3): bad_data: parse error"}
	if r := Compare(start, end, []string{"web1"}, nil, th); r.Verdict != Fail || !strings.Contains(r.Reason, "plan.hcl:3") {
		t.Fatalf("broken: %s %q", r.Verdict, r.Reason)
	}
	// broken without any reading: still a failure, not a hold
	empty := Snapshot{At: t0.Add(time.Second), Broken: end.Broken}
	if r := Compare(start, empty, []string{"web1"}, nil, th); r.Verdict != Fail {
		t.Fatalf("broken, nothing read: %s %q", r.Verdict, r.Reason)
	}
}
