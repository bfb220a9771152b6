package main

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rollout-sh/rollout/plan"
	"github.com/rollout-sh/rollout/rollout"
)

// localPlan is a plan over two hosts on this machine
// (ansible_connection=local), each a directory, behind no load balancer.
func localPlan(t *testing.T, f *fixture, rev string) {
	t.Helper()
	var inv strings.Builder
	inv.WriteString("[web]\n")
	for i := 1; i <= 2; i++ {
		fmt.Fprintf(&inv, "web%d ansible_connection=local root=%s\n", i, filepath.Join(f.dir, "hosts", fmt.Sprintf("web%d", i)))
	}
	f.write(t, "inventory.ini", inv.String())
	f.write(t, "rollout.hcl", `plan "web" {
  inventory = "inventory.ini"
  hosts     = "web"
  revision  = "`+rev+`"
  batch     = [1]
  state_dir = "${host.vars.root}/state"
  drain "none" { reason = "cli test" }
  file "app.conf" {
    source   = "conf/app.conf.tmpl"
    template = true
    dest     = "${host.vars.root}/app.conf"
  }
  restart = "true"
  health "command" {
    command     = "true"
    healthy_for = "0s"
  }
}
`)
}

// On a terminal, apply refuses a rolled-back revision before it asks;
// status and plan say the pin was rolled back; status --detailed-exitcode
// exits 4; --retry deploys it.
func TestApplyRefusesRolledBackRevisionBeforeAsking(t *testing.T) {
	f := newFixture(t)
	t.Chdir(f.dir)
	localPlan(t, f, f.v1)
	for i := 1; i <= 2; i++ {
		f.write(t, fmt.Sprintf("hosts/web%d/.keep", i), "")
	}
	expect(t, rolloutCLI(t, "apply", "--yes", "--ui", "plain"), 0)
	localPlan(t, f, f.v2)
	expect(t, rolloutCLI(t, "apply", "--yes", "--ui", "plain"), 0)
	expect(t, rolloutCLI(t, "rollback", "--to", "v1", "--yes", "--reason", "bad release", "--ui", "plain"), 0)

	short := plan.ShortRev(f.v2)
	expect(t, rolloutCLI(t, "status", "--detailed-exitcode", "--ui", "plain"), rollout.ExitChanges,
		"pins "+short+", rolled back on ", ": bad release; hosts are at "+plan.ShortRev(f.v1)+" (web1, web2)",
		"next: rollout plan rollout.hcl", "next: rollout apply rollout.hcl --retry")
	expect(t, rolloutCLI(t, "plan", "--ui", "plain"), 0, "ROLLED BACK: "+short+" was rolled back on ")

	var out, errOut bytes.Buffer
	ios := &IOStreams{In: strings.NewReader("y\n"), Out: &out, Err: &errOut, InTTY: true, OutTTY: true}
	code := run(context.Background(), []string{"apply", "--ui", "plain"}, ios)
	if code != rollout.ExitRefused || !strings.Contains(errOut.String(), "was rolled back on") || strings.Contains(errOut.String(), "[y/N]") {
		t.Fatalf("apply on a terminal: exit %d\n%s\n%s", code, out.String(), errOut.String())
	}
	if !strings.Contains(errOut.String(), "next: rollout apply rollout.hcl --retry") {
		t.Errorf("no --retry next: line\n%s", errOut.String())
	}
	expect(t, rolloutCLI(t, "apply", "--yes", "--ui", "plain"), rollout.ExitRefused, "nothing was touched", "--retry")
	expect(t, rolloutCLI(t, "apply", "--yes", "--retry", "--ui", "plain"), 0)
	expect(t, rolloutCLI(t, "status", "--detailed-exitcode", "--ui", "plain"), 0)

	// a mixed fleet: pending, grouped by revision
	expect(t, rolloutCLI(t, "apply", "--limit", "web1", "--revision", "v1", "--yes", "--ui", "plain"), 0)
	expect(t, rolloutCLI(t, "status", "--detailed-exitcode", "--ui", "plain"), rollout.ExitChanges,
		"the fleet is mixed, its hosts are at 2 revisions", "  "+plan.ShortRev(f.v1)+": web1\n", "  "+short+" (pinned): web2\n")
}
