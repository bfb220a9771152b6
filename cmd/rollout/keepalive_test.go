package main

import (
	"slices"
	"testing"
	"time"

	"github.com/rollout-sh/rollout/plan"
)

// --ssh-keepalive and --ssh-keepalive-count win over the plan's
// ssh_keepalive and ssh_keepalive_count, which win over the default (0
// here: wire leaves it to remote); a pasted next: keeps the flags.
func TestSSHKeepaliveFlagOverPlanOverDefault(t *testing.T) {
	p := &plan.Plan{SSHKeepalive: 2 * time.Second, SSHKeepaliveCount: 4}
	for _, tt := range []struct {
		name     string
		g        GlobalOptions
		p        *plan.Plan
		interval time.Duration
		count    int
	}{
		{"default", GlobalOptions{}, &plan.Plan{}, 0, 0},
		{"plan", GlobalOptions{}, p, 2 * time.Second, 4},
		{"flags", GlobalOptions{SSHKeepalive: time.Second, SSHKeepaliveCount: 2}, p, time.Second, 2},
		{"flag interval, plan count", GlobalOptions{SSHKeepalive: time.Second}, p, time.Second, 4},
		{"no plan", GlobalOptions{SSHKeepaliveCount: 6}, nil, 0, 6},
	} {
		o := wireOptions(&tt.g, tt.p)
		if o.KeepaliveInterval != tt.interval || o.KeepaliveCountMax != tt.count {
			t.Errorf("%s: keepalive %s × %d, want %s × %d", tt.name, o.KeepaliveInterval, o.KeepaliveCountMax, tt.interval, tt.count)
		}
	}
	g := GlobalOptions{SSHKeepalive: 1500 * time.Millisecond, SSHKeepaliveCount: 2}
	if f := g.hintFlags(); !slices.Contains(f, "--ssh-keepalive 1.5s") || !slices.Contains(f, "--ssh-keepalive-count 2") {
		t.Errorf("hint flags %q lack the keepalive flags", f)
	}
}
