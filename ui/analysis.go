package ui

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/rollout-sh/rollout/rollout/event"
)

// cohortText is one cohort in a line: "web1 212 req, 4.72% err, 21.0ms".
func cohortText(c event.CohortFigures) string {
	names := strings.Join(c.Servers, ",")
	if names == "" {
		names = "(none)"
	}
	s := fmt.Sprintf("%s %d req, %s err", names, c.Requests, pct(c.ErrorRate))
	if c.RTimeMS != nil {
		s += fmt.Sprintf(", %.1fms", *c.RTimeMS)
	}
	return s
}

// pct formats a fraction as a percentage with up to two decimals.
func pct(f float64) string {
	s := strconv.FormatFloat(f*100, 'f', 2, 64)
	return strings.TrimSuffix(strings.TrimRight(s, "0"), ".") + "%"
}

// limitsText is the plan's analysis limits: "err ≤ 1%, +0.5% over unchanged,
// rtime +25%, min 100 req".
func limitsText(l event.AnalysisLimits) string {
	var parts []string
	if l.MaxErrorRate != nil {
		parts = append(parts, "err ≤ "+pct(*l.MaxErrorRate))
	}
	if l.MaxErrorRateIncrease != nil {
		parts = append(parts, "err ≤ unchanged +"+pct(*l.MaxErrorRateIncrease))
	}
	if l.MaxResponseTimeIncrease != nil {
		parts = append(parts, "rtime ≤ unchanged +"+pct(*l.MaxResponseTimeIncrease))
	}
	parts = append(parts, fmt.Sprintf("min %d req", l.MinRequests))
	return strings.Join(parts, ", ")
}

// analysisDetail is the detail of an analysis event line.
func analysisDetail(e event.Event) string {
	a := e.Analysis
	if a == nil {
		return oneLine(e.Message)
	}
	return join(fmt.Sprintf("%s: %s | unchanged %s", a.Step, cohortText(a.Canary), cohortText(a.Baseline)), oneLine(e.Message))
}

// analysisLines are the two cohorts side by side under a host row of the
// TUI, with the limits: what the verdict is judged on.
func (m Model) analysisLines(h *hostState) []string {
	a := h.analysis
	if a == nil {
		return nil
	}
	row := func(label string, c event.CohortFigures) string {
		names := strings.Join(c.Servers, ",")
		if names == "" {
			names = "(none)"
		}
		rt := "-"
		if c.RTimeMS != nil {
			rt = fmt.Sprintf("%.1fms", *c.RTimeMS)
		}
		return fmt.Sprintf("      %-9s %-16s %7d req  err %-7s rtime %s", label, fit(names, 16), c.Requests, pct(c.ErrorRate), rt)
	}
	head := fmt.Sprintf("      analysis %s  %s  window %s  limits: %s", a.Step, m.st.paint(a.Verdict), seconds(a.WindowS), limitsText(a.Limits))
	return []string{head, row("canary", a.Canary), row("unchanged", a.Baseline)}
}
