// Package analysis judges a canary from a load balancer's own counters: it
// compares the cohort just changed with the unchanged cohort over the same
// window. Everything here is a pure function of two snapshots of cumulative
// counters; reading them (HAProxy's "show stat", a user's command) lives
// elsewhere. docs/analysis.md explains the statistics and their limits.
package analysis

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"strings"
	"time"
)

// RTimeKind says how a source reports response time.
type RTimeKind int

const (
	// RTimeNone: the source has no response time.
	RTimeNone RTimeKind = iota
	// RTimeAvgHAProxy: HAProxy's rtime, a running average over about the
	// server's last 512 responses (TIME_STATS_SAMPLES; the manual says
	// 1024), in whole milliseconds, not a cumulative counter. While the
	// server has served fewer than 512 requests, it is their plain mean.
	RTimeAvgHAProxy
	// RTimeSum: a cumulative sum of response times in milliseconds, so the
	// mean over a window is Δsum / Δresponses.
	RTimeSum
)

// Counters are one server's counters on one load balancer at one time.
// Every field but RTime is cumulative (it only grows until a reset).
type Counters struct {
	Requests  int64 // requests sent to the server (HAProxy req_tot)
	Responses int64 // responses received (hrsp_1xx..5xx + other)
	Errors    int64 // 5xx responses + response errors + connection errors
	Retries   int64 // HAProxy wretr: shown, not counted as errors
	RTime     float64
	RTimeKind RTimeKind
}

// Snapshot is every server's counters on every load balancer, read at At.
// A load balancer that could not be read is in Unread with the reason: the
// verdict holds for it. A source whose reading can never succeed as
// configured (Prometheus refusing a query as bad PromQL) is in Broken: the
// verdict fails, whatever the counters say.
type Snapshot struct {
	At     time.Time
	LBs    map[string]map[string]Counters // LB (endpoint) → server → counters
	Unread map[string]string              // LB → why it could not be read
	Broken map[string]string              // LB → why it will never be read
	Notes  []string                       // what the source left out (a server a query does not list)
}

// Thresholds are the limits of a verdict. A nil limit is not judged.
// Rates are fractions (0.01 = 1%).
type Thresholds struct {
	MaxErrorRate            *float64
	MaxErrorRateIncrease    *float64 // canary rate minus baseline rate
	MaxResponseTimeIncrease *float64 // canary rtime / baseline rtime - 1
	MinRequests             int64
}

// Verdict is the outcome of one comparison.
type Verdict string

const (
	Pass Verdict = "pass"
	Fail Verdict = "fail"
	Hold Verdict = "hold" // not enough traffic (yet) to judge
)

// Cohort is the figures of a set of servers over the window.
type Cohort struct {
	Servers   []string
	Requests  int64
	Errors    int64
	Retries   int64
	ErrorRate float64 // Errors / Requests; 0 without requests
	RTimeMS   float64 // mean response time over the window, ms (estimate)
	// RTimeLowMS..RTimeHighMS is the range the estimate can be in given
	// that HAProxy rounds rtime to whole milliseconds; verdicts use the end
	// most favourable to the canary.
	RTimeLowMS, RTimeHighMS float64
	HasRTime                bool // RTimeMS is known
}

// LBFigures is the canary and baseline as one load balancer saw them.
type LBFigures struct {
	LB       string
	Canary   Cohort
	Baseline Cohort
}

// Result is a comparison with its evidence.
type Result struct {
	Window   time.Duration
	Canary   Cohort
	Baseline Cohort
	PerLB    []LBFigures
	Verdict  Verdict
	Reason   string   // why it failed or holds; what passed
	Notes    []string // counter resets, unread LBs, what could not be judged
}

// delta is the counters a server gained between two readings. A counter
// that went down means the counters were reset (an HAProxy reload or
// "clear counters all"): the window then counts from the reset, so end
// itself is the delta.
func delta(start Counters, hadStart bool, end Counters) (d Counters, reset bool) {
	if !hadStart {
		return end, false
	}
	if end.Requests < start.Requests || end.Responses < start.Responses || end.Errors < start.Errors || end.Retries < start.Retries {
		return end, true
	}
	return Counters{
		Requests:  end.Requests - start.Requests,
		Responses: end.Responses - start.Responses,
		Errors:    end.Errors - start.Errors,
		Retries:   end.Retries - start.Retries,
	}, false
}

// haproxySamples is the length of HAProxy's response time window
// (TIME_STATS_SAMPLES in HAProxy's defaults.h).
const haproxySamples = 512

// WindowMeanRTime estimates the mean response time of the k responses a
// server answered between two readings of HAProxy's running average (a0
// before, ak after). HAProxy keeps sum ← sum − sum/512 + v, so after k new
// samples of mean m the average is m + (a0 − m)·r^k with r = 1 − 1/512;
// solved for m. With few samples the estimate amplifies the 1 ms rounding
// of rtime by 1/(1 − r^k): docs/analysis.md says how much.
func WindowMeanRTime(a0, ak float64, k int64) (float64, bool) {
	if k <= 0 {
		return 0, false
	}
	decay := math.Pow(1-1.0/haproxySamples, float64(k))
	if decay < 1e-9 {
		return ak, true
	}
	m := (ak - a0*decay) / (1 - decay)
	return math.Max(m, 0), true
}

// acc accumulates a cohort's figures.
type acc struct {
	c                    Cohort
	rtWeight             float64 // responses behind RTimeMS
	rtSum, rtLow, rtHigh float64
}

func (a *acc) add(d Counters, rt rtime) {
	a.c.Requests += d.Requests
	a.c.Errors += d.Errors
	a.c.Retries += d.Retries
	if rt.ok && d.Responses > 0 {
		w := float64(d.Responses)
		a.rtSum += rt.mean * w
		a.rtLow += rt.low * w
		a.rtHigh += rt.high * w
		a.rtWeight += w
	}
}

func (a *acc) merge(b *acc) {
	a.c.Requests += b.c.Requests
	a.c.Errors += b.c.Errors
	a.c.Retries += b.c.Retries
	a.rtSum += b.rtSum
	a.rtLow += b.rtLow
	a.rtHigh += b.rtHigh
	a.rtWeight += b.rtWeight
}

func (a *acc) cohort(servers []string) Cohort {
	c := a.c
	c.Servers = servers
	if c.Requests > 0 {
		c.ErrorRate = math.Min(float64(c.Errors)/float64(c.Requests), 1)
	}
	if a.rtWeight > 0 {
		c.RTimeMS = a.rtSum / a.rtWeight
		c.RTimeLowMS = a.rtLow / a.rtWeight
		c.RTimeHighMS = a.rtHigh / a.rtWeight
		c.HasRTime = true
	}
	return c
}

// currentRTime is an unchanged server's response time: HAProxy's own
// running average at the end of the window. The server ran the same
// release before the window as in it, so its last 512 responses estimate
// the same thing as the window's, without the amplified rounding of
// windowRTime. A command's cumulative sum still gives the window's mean.
func currentRTime(start Counters, hadStart bool, end, d Counters, reset bool) rtime {
	if end.RTimeKind != RTimeAvgHAProxy {
		return windowRTime(start, hadStart, end, d, reset)
	}
	if d.Responses <= 0 {
		return rtime{}
	}
	return rtime{end.RTime, math.Max(end.RTime-0.5, 0), end.RTime + 0.5, true}
}

// rtime is one server's mean response time over the window, with the
// range rounding allows.
type rtime struct {
	mean, low, high float64
	ok              bool
}

// windowRTime is the mean response time of one server over the window.
func windowRTime(start Counters, hadStart bool, end Counters, d Counters, reset bool) rtime {
	if d.Responses <= 0 {
		return rtime{}
	}
	switch end.RTimeKind {
	case RTimeSum:
		sum := end.RTime
		if hadStart && !reset {
			sum -= start.RTime
		}
		m := math.Max(sum/float64(d.Responses), 0)
		return rtime{m, m, m, true}
	case RTimeAvgHAProxy:
		if !hadStart || reset {
			// since a reset HAProxy averages over the samples it has
			return rtime{end.RTime, math.Max(end.RTime-0.5, 0), end.RTime + 0.5, true}
		}
		if end.Requests <= haproxySamples {
			// fewer samples than the window: a plain mean of all of them
			k, n0, n1 := float64(d.Responses), float64(start.Requests), float64(end.Requests)
			mean := func(a0, a1 float64) float64 { return math.Max((a1*n1-a0*n0)/k, 0) }
			return rtime{mean(start.RTime, end.RTime), mean(start.RTime+0.5, end.RTime-0.5), mean(math.Max(start.RTime-0.5, 0), end.RTime+0.5), true}
		}
		m, _ := WindowMeanRTime(start.RTime, end.RTime, d.Responses)
		lo, _ := WindowMeanRTime(start.RTime+0.5, end.RTime-0.5, d.Responses)
		hi, _ := WindowMeanRTime(math.Max(start.RTime-0.5, 0), end.RTime+0.5, d.Responses)
		return rtime{m, lo, hi, true}
	}
	return rtime{}
}

// Compare judges the canary servers against the baseline over the window
// between start and end. The baseline is every server in the snapshots
// that is neither a canary nor in exclude (servers changed earlier in the
// run, or still changing). Canary figures are summed over every load
// balancer (each sees its own share of the traffic); the verdict fails if
// the sum breaks a limit, or if one load balancer alone saw at least
// MinRequests to the canary and breaks a limit there (an LB of a pair that
// disagrees is not averaged away).
func Compare(start, end Snapshot, canary, exclude []string, th Thresholds) Result {
	res := Result{Window: end.At.Sub(start.At)}
	isCanary := set(canary)
	excluded := set(exclude)
	var total, totalBase acc
	baseSeen := map[string]bool{}
	lbs := slices.Sorted(maps.Keys(end.LBs))
	for lb, why := range end.Unread {
		res.Notes = append(res.Notes, fmt.Sprintf("%s not read: %s", lb, why))
	}
	res.Notes = append(res.Notes, end.Notes...)
	for _, lb := range lbs {
		servers := end.LBs[lb]
		before, readBefore := start.LBs[lb]
		if !readBefore {
			why := start.Unread[lb]
			if why == "" {
				why = "no reading at the start of the window"
			}
			res.Notes = append(res.Notes, fmt.Sprintf("%s left out: %s", lb, why))
			continue
		}
		var can, base acc
		for _, name := range slices.Sorted(maps.Keys(servers)) {
			if excluded[name] && !isCanary[name] {
				continue
			}
			e := servers[name]
			s, had := before[name]
			d, reset := delta(s, had, e)
			if reset {
				res.Notes = append(res.Notes, fmt.Sprintf("%s: counters of %s went back (reload or clear counters): counting from the reset", lb, name))
			}
			if isCanary[name] {
				can.add(d, windowRTime(s, had, e, d, reset))
			} else {
				base.add(d, currentRTime(s, had, e, d, reset))
				baseSeen[name] = true
			}
		}
		for _, name := range canary {
			if _, ok := servers[name]; !ok {
				res.Notes = append(res.Notes, fmt.Sprintf("%s does not list %s", lb, name))
			}
		}
		res.PerLB = append(res.PerLB, LBFigures{LB: lb, Canary: can.cohort(canary), Baseline: base.cohort(nil)})
		total.merge(&can)
		totalBase.merge(&base)
	}
	sort.Strings(res.Notes)
	res.Canary = total.cohort(canary)
	res.Baseline = totalBase.cohort(slices.Sorted(maps.Keys(baseSeen)))
	for i := range res.PerLB {
		res.PerLB[i].Baseline.Servers = res.Baseline.Servers
	}
	res.Verdict, res.Reason = judge(res, th)
	if len(end.Broken) > 0 {
		var why []string
		for _, lb := range slices.Sorted(maps.Keys(end.Broken)) {
			why = append(why, end.Broken[lb])
		}
		res.Verdict, res.Reason = Fail, strings.Join(why, "; ")
	}
	if res.Verdict == Pass && res.Baseline.Requests == 0 && (th.MaxErrorRateIncrease != nil || th.MaxResponseTimeIncrease != nil) {
		res.Notes = append(res.Notes, "the unchanged cohort had no traffic in the window: only the absolute limits were judged")
	}
	return res
}

// judge applies the thresholds: first to the whole canary, then to each
// load balancer that alone saw enough traffic.
func judge(r Result, th Thresholds) (Verdict, string) {
	if len(r.PerLB) == 0 {
		return Hold, "no load balancer could be read over the window"
	}
	if r.Canary.Requests < th.MinRequests || r.Canary.Requests == 0 {
		return Hold, fmt.Sprintf("not enough traffic: %d requests to %s in %s, min_requests is %d",
			r.Canary.Requests, strings.Join(r.Canary.Servers, ","), r.Window.Round(100*time.Millisecond), th.MinRequests)
	}
	if why := breach(r.Canary, r.Baseline, th); why != "" {
		return Fail, why
	}
	if len(r.PerLB) > 1 {
		for _, lb := range r.PerLB {
			if lb.Canary.Requests < max(th.MinRequests, 1) {
				continue
			}
			if why := breach(lb.Canary, lb.Baseline, th); why != "" {
				return Fail, lb.LB + " alone: " + why
			}
		}
	}
	if why := inconclusive(r.Canary, r.Baseline, th); why != "" {
		return Hold, why
	}
	return Pass, fmt.Sprintf("%d requests, error rate %s, within the limits", r.Canary.Requests, Percent(r.Canary.ErrorRate))
}

// minRTime is the floor of a baseline response time: HAProxy reports whole
// milliseconds, so a fast baseline reads 0 and any canary would be an
// infinite increase.
const minRTime = 1.0

func breach(can, base Cohort, th Thresholds) string {
	if th.MaxErrorRate != nil && can.ErrorRate > *th.MaxErrorRate {
		return fmt.Sprintf("error rate %s (%d of %d requests) is above max_error_rate %s",
			Percent(can.ErrorRate), can.Errors, can.Requests, Percent(*th.MaxErrorRate))
	}
	if th.MaxErrorRateIncrease != nil && base.Requests > 0 && can.ErrorRate-base.ErrorRate > *th.MaxErrorRateIncrease {
		return fmt.Sprintf("error rate %s is %s above the unchanged cohort's %s (%d of %d); max_error_rate_increase is %s",
			Percent(can.ErrorRate), Percent(can.ErrorRate-base.ErrorRate), Percent(base.ErrorRate), base.Errors, base.Requests, Percent(*th.MaxErrorRateIncrease))
	}
	if th.MaxResponseTimeIncrease != nil && can.HasRTime && base.HasRTime {
		// the canary's lowest and the baseline's highest reading the
		// rounding allows: only an increase that survives it fails
		ref := math.Max(base.RTimeHighMS, minRTime)
		if inc := can.RTimeLowMS/ref - 1; inc > *th.MaxResponseTimeIncrease {
			return fmt.Sprintf("response time %.1fms (at least %.1fms) is %s above the unchanged cohort's %.1fms; max_response_time_increase is %s",
				can.RTimeMS, can.RTimeLowMS, Percent(can.RTimeMS/math.Max(base.RTimeMS, minRTime)-1), base.RTimeMS, Percent(*th.MaxResponseTimeIncrease))
		}
	}
	return ""
}

// inconclusive says why the response time cannot pass yet: the rounding
// leaves the canary's highest possible value above the limit while its
// lowest is not (breach would have failed it). More responses narrow the
// range, so the step holds rather than passing on a guess.
func inconclusive(can, base Cohort, th Thresholds) string {
	if th.MaxResponseTimeIncrease == nil || !can.HasRTime || !base.HasRTime {
		return ""
	}
	limit := math.Max(base.RTimeLowMS, minRTime) * (1 + *th.MaxResponseTimeIncrease)
	if can.RTimeHighMS <= limit {
		return ""
	}
	return fmt.Sprintf("response time not settled yet: %.1fms could be %.1f..%.1fms (HAProxy rounds to whole ms) against a limit of %.1fms; waiting for more requests",
		can.RTimeMS, can.RTimeLowMS, can.RTimeHighMS, limit)
}

// Percent formats a fraction as a percentage with up to two decimals.
func Percent(f float64) string {
	s := fmt.Sprintf("%.2f", f*100)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s + "%"
}

func set(s []string) map[string]bool {
	m := make(map[string]bool, len(s))
	for _, v := range s {
		m[v] = true
	}
	return m
}
