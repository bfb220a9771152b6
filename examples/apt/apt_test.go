// Package apt_test checks the Debian package example: the commands the
// plan generates for each host, with the version from group_vars.
package apt_test

import (
	"strings"
	"testing"

	"github.com/rollout-sh/rollout/inventory"
	"github.com/rollout-sh/rollout/plan"
)

func TestPlanGeneratesAptCommands(t *testing.T) {
	p, diags := plan.Load("rollout.hcl")
	if diags.HasErrors() {
		t.Fatalf("rollout.hcl: %v", diags)
	}
	inv, err := inventory.Load("inventory.ini")
	if err != nil {
		t.Fatal(err)
	}
	hosts, err := inv.Select(p.Hosts)
	if err != nil || len(hosts) != 3 {
		t.Fatalf("hosts = %v, %v", hosts, err)
	}
	for _, h := range hosts {
		spec, diags := p.ForHost(h, "9fceb02d0ae598e95dc970b74767f19372d61af8")
		if diags.HasErrors() {
			t.Fatalf("%s: %v", h.Name, diags)
		}
		if spec.Prefetch != "apt-get install -y --download-only app=1.2.4-1" {
			t.Errorf("%s: prefetch = %q", h.Name, spec.Prefetch)
		}
		if spec.Install != "DEBIAN_FRONTEND=noninteractive apt-get install -y --allow-downgrades app=1.2.4-1" {
			t.Errorf("%s: install = %q", h.Name, spec.Install)
		}
		if spec.Check != "dpkg-query -W -f '${Version}' app | grep -qx 1.2.4-1" {
			t.Errorf("%s: check = %q", h.Name, spec.Check)
		}
		if len(spec.Files) != 0 || len(spec.Artifacts) != 0 {
			t.Errorf("%s: files %v, artifacts %v: the example deploys neither", h.Name, spec.Files, spec.Artifacts)
		}
	}
	// a version from the inventory is data, never shell code
	hostile, err := inventory.ParseINI("hostile.ini", []byte("[web]\napp1 app_version='1; touch /tmp/pwned'\napp2\n"))
	if err != nil {
		t.Fatal(err)
	}
	spec, diags := p.ForHost(hostile.Host("app1"), "9fceb02d0ae598e95dc970b74767f19372d61af8")
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if !strings.HasSuffix(spec.Install, "app='1; touch /tmp/pwned'") {
		t.Errorf("install = %q: the version is not one shell word", spec.Install)
	}
}
