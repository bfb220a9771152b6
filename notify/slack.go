package notify

import (
	"fmt"
	"strings"

	"github.com/rollout-sh/rollout/plan"
	"github.com/rollout-sh/rollout/rollout/event"
)

// outcomeOrder is the order run_done's counts are written in: what needs
// attention first.
var outcomeOrder = []event.Outcome{
	event.OutcomeDrained, event.OutcomeRolledBack, event.OutcomeFailed, event.OutcomeUnknown,
	event.OutcomeStopped, event.OutcomeNotStarted, event.OutcomeSkipped, event.OutcomeOK,
}

// by names the operator of e (run_start, approved, run_done), when known.
func by(e event.Event) string {
	if e.Operator == "" {
		return ""
	}
	return " by " + e.Operator
}

// Summary is the one-line text of e for a chat message (format "slack"):
// the plan, the run, and what happened. batches is the run's number of
// batches (from its run_start; 0 when not known).
func Summary(planName string, e event.Event, batches int) string {
	run := "run " + e.Run
	head := "rollout " + planName + ": " + run
	var s string
	switch e.Event {
	case event.RunStart:
		if e.Message != "" && e.Message != "apply" {
			head = "rollout " + planName + ": " + e.Message + " " + e.Run
		}
		n := 0
		for _, b := range e.Batches {
			n += len(b)
		}
		s = fmt.Sprintf("%s started%s: revision %s, %s in %s", head, by(e), plan.ShortRev(e.Revision), plural(n, "host"), plural(len(e.Batches), "batch"))
		if skip := len(e.Hosts) - n; skip > 0 && n > 0 {
			s += fmt.Sprintf(" (%d already at it)", skip)
		}
	case event.BatchStart:
		s = fmt.Sprintf("%s: batch %s%s started: %s", head, ofBatches(e.Batch, batches), inWave(e.Wave), strings.Join(e.Hosts, ", "))
	case event.BatchDone:
		what := "done"
		if e.Status != "" && e.Status != event.StatusOK {
			what = e.Status
		}
		s = fmt.Sprintf("%s: batch %s%s %s", head, ofBatches(e.Batch, batches), inWave(e.Wave), what)
	case event.HostDone:
		o := event.Outcome(e.Status)
		if Failed(o) {
			s = fmt.Sprintf("%s: %s failed (%s)", head, e.Host, o)
		} else {
			s = fmt.Sprintf("%s: %s %s", head, e.Host, o)
		}
		s = withMessage(s, e.Message)
	case event.Waiting:
		if e.WaitReason() == event.WaitApproval {
			s = withMessage(head+" waits for approval", e.Message)
		} else {
			s = withMessage(fmt.Sprintf("%s waiting (%s)", head, e.Status), e.Message)
		}
	case event.Approved:
		s = withMessage(fmt.Sprintf("%s: batch %s approved%s", head, ofBatches(e.Batch, batches), by(e)), e.Message)
	case event.RunDone:
		what := e.Status
		switch e.Status {
		case event.StatusOK:
			what = "finished"
		case "":
			what = "ended"
		}
		var counts []string
		for _, o := range outcomeOrder {
			if c := e.Counts[o]; c > 0 {
				counts = append(counts, fmt.Sprintf("%d %s", c, strings.ReplaceAll(string(o), "_", " ")))
			}
		}
		s = head + by(e) + " " + what
		if len(counts) > 0 {
			s += ": " + strings.Join(counts, ", ")
		}
		if e.Status != event.StatusOK && e.Message != "" {
			s += " (" + oneLine(e.Message) + ")"
		}
		if e.Next != "" && e.Status != event.StatusOK {
			s += " — next: " + e.Next
		}
	default:
		s = head + ": " + string(e.Event)
		if e.Host != "" {
			s += " " + e.Host
		}
		if e.Status != "" {
			s += " " + e.Status
		}
		s = withMessage(s, e.Message)
	}
	return s
}

func withMessage(s, msg string) string {
	if msg == "" {
		return s
	}
	return s + ": " + oneLine(msg)
}

// oneLine is msg on one line, at most 300 characters.
func oneLine(msg string) string {
	msg = strings.Join(strings.Fields(msg), " ")
	if r := []rune(msg); len(r) > 300 {
		msg = string(r[:299]) + "…"
	}
	return msg
}

// inWave names a batch's wave (plans with wave blocks).
func inWave(w string) string {
	if w == "" {
		return ""
	}
	return " (wave " + w + ")"
}

func ofBatches(b, n int) string {
	if n > 0 {
		return fmt.Sprintf("%d/%d", b, n)
	}
	return fmt.Sprint(b)
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	if strings.HasSuffix(word, "ch") {
		return fmt.Sprintf("%d %ses", n, word)
	}
	return fmt.Sprintf("%d %ss", n, word)
}
