package main

import (
	"bytes"
	"context"
	"testing"

	"github.com/rollout-sh/rollout/rollout"
)

// --operator is a global flag bound to the options every run command
// resolves its operator from, and wins over the environment.
func TestOperatorFlag(t *testing.T) {
	for _, k := range []string{"GITHUB_ACTOR", "GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID", "GITLAB_USER_LOGIN", "CI_JOB_URL"} {
		t.Setenv(k, "")
	}
	t.Setenv("ROLLOUT_OPERATOR", "release-bot")
	var out bytes.Buffer
	root, g := newRootWith(context.Background(), &IOStreams{In: &bytes.Buffer{}, Out: &out, Err: &out})
	if got := g.operator(); got != (rollout.Operator{Name: "release-bot"}) {
		t.Errorf("without --operator: %+v, want ROLLOUT_OPERATOR's", got)
	}
	if err := root.PersistentFlags().Parse([]string{"--operator", "alice"}); err != nil {
		t.Fatal(err)
	}
	if got := g.operator(); got != (rollout.Operator{Name: "alice"}) {
		t.Errorf("with --operator alice: %+v", got)
	}
	t.Setenv("ROLLOUT_OPERATOR", "")
	g.Operator = ""
	if got := g.operator(); got.Name != owner() || got.URL != "" {
		t.Errorf("nothing set: %+v, want %s", got, owner())
	}
}
