package wire

import (
	"strings"
	"testing"

	"github.com/rollout-sh/rollout/plan"
)

// Credentials come from the environment the plan names; a variable that
// is not set refuses the source before any host is touched.
func TestNewPrometheusCredentials(t *testing.T) {
	p := &plan.Prometheus{Address: "http://127.0.0.1:9090", ServerLabel: "server",
		Requests: plan.PromQL{Expr: "r"}, Errors: plan.PromQL{Expr: "e"}, UsernameEnv: "PROM_USER", PasswordEnv: "PROM_PASSWORD"}
	env := map[string]string{"PROM_USER": "ops"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	if _, err := newPrometheus(p, lookup); err == nil || !strings.Contains(err.Error(), "password_env names PROM_PASSWORD, which is not set") {
		t.Fatalf("unset password: %v", err)
	}
	env["PROM_PASSWORD"] = "pw"
	if _, err := newPrometheus(p, lookup); err != nil {
		t.Fatal(err)
	}
}
