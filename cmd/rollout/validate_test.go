package main

import (
	"strings"
	"testing"

	"github.com/rollout-sh/rollout/rollout"
)

// validate and apply state the safety rules in one wording (they come from
// validate.Safety): what validate reports is what apply refuses.
func TestValidateStatesApplysSafetyRules(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		name string
		plan planSettings
		rule string // a phrase of the rule's one wording
	}{
		{"no drain block", planSettings{noDrain: true}, "has no drain block: rollout will not change a host that may be serving traffic"},
		{"pool of one", planSettings{hosts: "db"}, `selects a single host (db1): a pool of one cannot be rolled without downtime`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := f.plan(t, strings.ReplaceAll(tc.name, " ", "_")+".hcl", tc.plan)
			apply := rolloutCLI(t, "apply", p, "--yes")
			expect(t, apply, rollout.ExitRefused, "refused: ", tc.rule)
			val := rolloutCLI(t, "validate", p)
			expect(t, val, rollout.ExitRefused, "apply will refuse it: ", tc.rule, "next:", "rollout validate "+p)
			// the whole rule, as apply words it, is in validate's report
			_, rule, _ := strings.Cut(apply.errOut, "refused: ")
			rule, _, _ = strings.Cut(rule, "\n")
			if !strings.Contains(val.errOut, rule) {
				t.Errorf("validate words the rule differently from apply:\napply:    %s\nvalidate: %s", rule, val.errOut)
			}
		})
	}
	// no scope: a note from validate (the scope is apply's flag), in the
	// words of apply's refusal
	p := f.plan(t, "noscope.hcl", planSettings{batch: "-"})
	apply := rolloutCLI(t, "apply", p, "--yes")
	expect(t, apply, rollout.ExitRefused, "refused: no scope")
	val := rolloutCLI(t, "validate", p)
	expect(t, val, 0, "ok:", "note: apply will need --batch or --limit: no scope: ")
	_, rule, _ := strings.Cut(apply.errOut, "refused: ")
	rule, _, _ = strings.Cut(rule, "\n")
	if !strings.Contains(val.out, rule) {
		t.Errorf("validate's note words the scope rule differently from apply:\napply:    %s\nvalidate: %s", rule, val.out)
	}
}

// A rerun in a run's hint becomes the user's command line (with the
// flags the hint adds, such as --auto-approve at a gate); other commands
// stay as they are.
func TestWithRerun(t *testing.T) {
	h := hintSink{flags: []string{"--known-hosts kh"}, rerun: [2]string{"rollout apply p.hcl", "rollout apply p.hcl --batch 1 --yes"}}
	for in, want := range map[string]string{
		"rollout apply p.hcl": "rollout apply p.hcl --batch 1 --yes --known-hosts kh",
		"stopped; to continue: rollout apply p.hcl (hosts done)": "stopped; to continue: rollout apply p.hcl --batch 1 --yes --known-hosts kh (hosts done)",
		"continue with rollout apply p.hcl --yes --auto-approve": "continue with rollout apply p.hcl --batch 1 --yes --auto-approve --known-hosts kh",
		"rollout status p.hcl": "rollout status p.hcl --known-hosts kh",
		"rollout apply p.hcl2": "rollout apply p.hcl2 --known-hosts kh",
	} {
		if got := h.hint(in); got != want {
			t.Errorf("hint(%q)\n got %q\nwant %q", in, got, want)
		}
	}
}
