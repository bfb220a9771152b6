package rollout

import (
	"errors"
	"fmt"
	"testing"

	"github.com/hashicorp/hcl/v2"
)

// The exit table, row by row, with SPEC.md's codes: 0 success, 1 failed,
// 2 refused before any host was touched, 4 changes pending / attention,
// 130 interrupted.
func TestExitTable(t *testing.T) {
	for _, tt := range []struct {
		name string
		err  error
		want Exit
	}{
		{"success", nil, Exit{0, "ok"}},
		{"interrupted", fmt.Errorf("batch 2: %w", ErrInterrupted), Exit{130, "interrupted"}},
		{"refusal", refuse("rollout unlock x", "lock held"), Exit{2, "refused"}},
		{"diagnostics", &DiagError{Diags: hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "bad"}}}, Exit{2, "refused"}},
		{"refusal already told", fmt.Errorf("no: %w", ErrRefused), Exit{2, "refused"}},
		{"changes pending", ErrChanges, Exit{4, "changes"}},
		{"attention", ErrAttention, Exit{4, "attention"}},
		{"run failed", fmt.Errorf("preflight: %w", ErrRunFailed), Exit{1, "failed"}},
		{"approval no one could give", ErrApprovalNeeded, Exit{1, "failed"}},
		{"stopped safely", &StoppedError{Cause: errors.New("lock lost")}, Exit{1, "failed"}},
		{"anything else", errors.New("boom"), Exit{1, "failed"}},
	} {
		if got := ExitOf(tt.err); got != tt.want {
			t.Errorf("%s: ExitOf(%v) = %+v, want %+v", tt.name, tt.err, got, tt.want)
		}
		if ExitCode(tt.err) != tt.want.Code {
			t.Errorf("%s: ExitCode = %d, want %d", tt.name, ExitCode(tt.err), tt.want.Code)
		}
	}
	if ExitOK != 0 || ExitFailed != 1 || ExitRefused != 2 || ExitChanges != 4 || ExitInterrupted != 130 {
		t.Error("exit codes differ from SPEC.md")
	}
}
