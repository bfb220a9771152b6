package ui

import (
	"strings"
	"testing"

	"github.com/rollout-sh/rollout/rollout/event"
)

// A rollback's start line says what it rolls back from, and why.
func TestRunStartSaysWhatARollbackLeaves(t *testing.T) {
	_, _, detail := describe(event.Event{Event: event.RunStart, Plan: "web", Revision: strings.Repeat("a", 40),
		RolledBackFrom: strings.Repeat("b", 40), Reason: "checkout errors", Message: "rollback", Batches: [][]string{{"web1"}}})
	if !strings.Contains(detail, "rolling back from bbbbbbb (checkout errors)") {
		t.Errorf("run_start detail %q", detail)
	}
}
