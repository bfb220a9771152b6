// Package demo_test checks the demo's pieces fit together: the config repo
// made by make-repo.sh renders, for each tag, to a config that demo-app
// -check accepts or rejects as the tag promises.
package demo_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/rollout-sh/rollout/internal/fleet"
)

func TestRepoTagsRenderAndValidate(t *testing.T) {
	fleet.RequireTool(t, "git")
	tmp := t.TempDir()
	repo := filepath.Join(tmp, "repo")
	out, err := exec.Command("./make-repo.sh", repo).CombinedOutput()
	if err != nil {
		t.Fatalf("make-repo.sh: %v\n%s", err, out)
	}
	for _, tag := range []string{"v1", "v2", "broken-config", "crashloop", "flaky"} {
		if !strings.Contains(string(out), tag+" ") {
			t.Errorf("make-repo.sh output does not list %s:\n%s", tag, out)
		}
	}
	app := filepath.Join(tmp, "demo-app")
	if out, err := exec.Command("go", "build", "-o", app, "./app").CombinedOutput(); err != nil {
		t.Fatalf("build demo-app: %v\n%s", err, out)
	}

	tests := []struct {
		tag     string
		ok      bool
		message string // in the rendered config (ok) or the check's error
	}{
		{"v1", true, `version = 1`},
		{"v2", true, `message = "hello again from web3, now on v2"`},
		{"broken-config", false, `unknown key "colour"`},
		{"crashloop", true, `exit_after = 1s`},
		{"flaky", true, `error_rate = 0.05`},
	}
	for _, tt := range tests {
		t.Run(tt.tag, func(t *testing.T) {
			src, err := exec.Command("git", "-C", repo, "show", tt.tag+":conf/app.conf.tmpl").Output()
			if err != nil {
				t.Fatalf("git show: %v", err)
			}
			rendered := render(t, src, "web3", 18443)
			if !strings.Contains(rendered, "listen = 127.0.0.1:18443\n") {
				t.Errorf("rendered config has no listen line:\n%s", rendered)
			}
			conf := filepath.Join(t.TempDir(), "app.conf")
			if err := os.WriteFile(conf, []byte(rendered), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(app, "-check", "-config", conf).CombinedOutput()
			if tt.ok {
				if err != nil || string(out) != "config ok\n" {
					t.Fatalf("check: %v: %s\n%s", err, out, rendered)
				}
				if !strings.Contains(rendered, tt.message) {
					t.Errorf("rendered config lacks %q:\n%s", tt.message, rendered)
				}
				return
			}
			if err == nil || !strings.Contains(string(out), conf+":6: "+tt.message) {
				t.Errorf("check = %v: %s; want failure with %q at line 6", err, out, tt.message)
			}
		})
	}
}

// render evaluates an HCL template the way a plan's file block with
// template = true sees it (host.name, host.vars.app_port).
func render(t *testing.T, src []byte, name string, port int64) string {
	t.Helper()
	expr, diags := hclsyntax.ParseTemplate(src, "app.conf.tmpl", hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatalf("parse template: %v", diags)
	}
	ctx := &hcl.EvalContext{Variables: map[string]cty.Value{
		"host": cty.ObjectVal(map[string]cty.Value{
			"name": cty.StringVal(name),
			"vars": cty.ObjectVal(map[string]cty.Value{
				"app_port": cty.NumberIntVal(port),
				"root":     cty.StringVal("/srv/" + name),
			}),
		}),
	}}
	v, diags := expr.Value(ctx)
	if diags.HasErrors() {
		t.Fatalf("render template: %v", diags)
	}
	return v.AsString()
}
