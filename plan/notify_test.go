package plan

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestParseNotify(t *testing.T) {
	src := minimal(`repo = "/r"` + "\n" + `notify "webhook" {
  url     = "http://127.0.0.1:9/hooks/deploys"
  format  = "slack"
  events  = ["run_start", "host_failed", "run_done"]
  timeout = "2s"
  headers = {
    Authorization = "Bearer ${env.DEPLOY_HOOK_TOKEN}"
    "X-Plan"      = "${plan.name}"
  }
}
notify "webhook" {
  url = "${env.SLACK_URL}"
}`)
	p, diags := Parse("/plans/rollout.hcl", []byte(src))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if len(p.Notify) != 2 {
		t.Fatalf("notify blocks: %d", len(p.Notify))
	}
	n := p.Notify[0]
	if n.Kind != "webhook" || n.Format != NotifySlack || n.Timeout != 2*time.Second ||
		!reflect.DeepEqual(n.Events, []string{"run_start", "host_failed", "run_done"}) {
		t.Fatalf("notify %+v", n)
	}
	env := map[string]string{"DEPLOY_HOOK_TOKEN": "s3cret", "SLACK_URL": "https://hooks.slack.example/services/T0/B0/XYZ"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	target, display, headers, err := n.Resolve(lookup)
	if err != nil || target != "http://127.0.0.1:9/hooks/deploys" || display != target ||
		!reflect.DeepEqual(headers, map[string]string{"Authorization": "Bearer s3cret", "X-Plan": "web"}) {
		t.Fatalf("resolve: %q %q %v %v", target, display, headers, err)
	}

	// defaults; the URL from the environment is not shown whole
	d := p.Notify[1]
	if d.Format != NotifyJSON || d.Timeout != DefaultNotifyTimeout || !reflect.DeepEqual(d.Events, DefaultNotifyEvents) {
		t.Fatalf("defaults %+v", d)
	}
	target, display, _, err = d.Resolve(lookup)
	if err != nil || target != env["SLACK_URL"] || display != "https://hooks.slack.example/…" {
		t.Fatalf("resolve: %q %q %v", target, display, err)
	}

	// an unset variable names itself and the plan's line
	delete(env, "DEPLOY_HOOK_TOKEN")
	_, _, _, err = n.Resolve(lookup)
	var unset *UnsetEnvError
	if !errors.As(err, &unset) || unset.Var != "DEPLOY_HOOK_TOKEN" || unset.At.Start.Line != 9 ||
		err.Error() != "notify header Authorization at /plans/rollout.hcl:9: environment variable DEPLOY_HOOK_TOKEN is not set" {
		t.Fatalf("unset: %v", err)
	}
}

func TestParseNotifyDiagnostics(t *testing.T) {
	tests := []struct {
		name, extra, at, summary, detail string
	}{
		{"unknown kind", "notify \"email\" {\n  url = \"http://x\"\n}", `"email"`, "Unknown notify kind", `one of "webhook"`},
		{"needs url", "notify \"webhook\" {\n}", `notify "webhook"`, "Missing url", `url = "https://`},
		{"bad url", "notify \"webhook\" {\n  url = \"chat.example/hooks\"\n}", `"chat.example/hooks"`, "Invalid url", "http(s) URL"},
		{"url with password", "notify \"webhook\" {\n  url = \"https://u:pw@chat.example/\"\n}", `"https://u:pw@chat.example/"`, "Invalid url", "${env.NAME}"},
		{"unknown event", "notify \"webhook\" {\n  url = \"http://x\"\n  events = [\"run_start\", \"host_faild\"]\n}", `"host_faild"`, "Unknown notify event", `Did you mean "host_failed"?`},
		{"empty events", "notify \"webhook\" {\n  url = \"http://x\"\n  events = []\n}", `[]`, "Empty events", "at least one"},
		{"bad format", "notify \"webhook\" {\n  url = \"http://x\"\n  format = \"teams\"\n}", `"teams"`, "Invalid format", `"json"`},
		{"inline secret", "notify \"webhook\" {\n  url = \"http://x\"\n  headers = { Authorization = \"Bearer abc123\" }\n}", `"Bearer abc123"`, "Secret in the plan", "${env.DEPLOY_HOOK_TOKEN}"},
		{"host in notify", "notify \"webhook\" {\n  url = \"http://${host.name}/\"\n}", `host.name`, "Unknown variable in a notify block", "only plan.name"},
		{"bad env ref", "notify \"webhook\" {\n  url = \"http://x\"\n  headers = { X-Token = env }\n}", `env`, "Invalid environment reference", "${env.NAME}"},
		{"bad timeout", "notify \"webhook\" {\n  url = \"http://x\"\n  timeout = \"soon\"\n}", `"soon"`, "Invalid duration", "timeout must be a duration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantDiag(t, minimal(`repo = "/r"`+"\n"+tt.extra), tt.at, tt.summary, tt.detail)
		})
	}
}
