package plan

import (
	"strings"
	"testing"
	"time"
)

const haproxyDrain = `drain "haproxy" {
  endpoints = ["unix:/run/haproxy/admin.sock"]
  backend   = "web"
}`

func TestParseAnalysis(t *testing.T) {
	src := minimal(`repo = "/r"` + "\n" + haproxyDrain + `
analysis "haproxy" {
  max_error_rate             = "1%"
  max_error_rate_increase    = "0.5%"
  max_response_time_increase = "25%"
  min_requests               = 200
  interval                   = "5s"
  deadline                   = "1m"
}`)
	p, diags := Parse("rollout.hcl", []byte(src))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	a := p.Analysis
	if a == nil || a.Kind != "haproxy" || a.MinRequests != 200 || a.Interval != 5*time.Second || a.Deadline != time.Minute {
		t.Fatalf("analysis %+v", a)
	}
	for name, got := range map[string]*float64{"max_error_rate 0.01": a.MaxErrorRate, "increase 0.005": a.MaxErrorRateIncrease, "rtime 0.25": a.MaxResponseTimeIncrease} {
		want := map[string]float64{"max_error_rate 0.01": 0.01, "increase 0.005": 0.005, "rtime 0.25": 0.25}[name]
		if got == nil || *got < want-1e-12 || *got > want+1e-12 {
			t.Errorf("%s: got %v", name, got)
		}
	}

	// defaults, and the command kind
	p, diags = Parse("rollout.hcl", []byte(minimal(`repo = "/r"`+"\n"+`analysis "command" {
  command        = "metrics --cumulative"
  max_error_rate = "2%"
}`)))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	a = p.Analysis
	if a.Kind != "command" || a.Command != "metrics --cumulative" || a.MinRequests != DefaultAnalysisMinRequests ||
		a.Interval != DefaultAnalysisInterval || a.Deadline != DefaultAnalysisDeadline || a.MaxErrorRateIncrease != nil {
		t.Errorf("analysis %+v", a)
	}
	if p, _ := Parse("rollout.hcl", []byte(minimal(`repo = "/r"`))); p.Analysis != nil {
		t.Error("no block: Analysis should be nil")
	}
}

func TestParseAnalysisDiagnostics(t *testing.T) {
	tests := []struct {
		name, extra, at, summary, detail string
	}{
		{"needs haproxy drain", "analysis \"haproxy\" {\n  max_error_rate = \"1%\"\n}", `analysis "haproxy"`, "Analysis needs an haproxy drain", `drain "haproxy"`},
		{"unknown kind", "analysis \"datadog\" {\n}", `"datadog"`, "Unknown analysis kind", `one of "command", "haproxy", "prometheus"`},
		{"prometheus needs address", "analysis \"prometheus\" {\n  requests = \"r\"\n  errors = \"e\"\n  max_error_rate = \"1%\"\n}", `analysis "prometheus"`, "Missing address", `address = "http://prometheus:9090"`},
		{"prometheus needs requests", "analysis \"prometheus\" {\n  address = \"http://p:9090\"\n  errors = \"e\"\n  max_error_rate = \"1%\"\n}", `analysis "prometheus"`, "Missing requests", `requests = "sum by (server)`},
		{"prometheus needs errors", "analysis \"prometheus\" {\n  address = \"http://p:9090\"\n  requests = \"r\"\n  max_error_rate = \"1%\"\n}", `analysis "prometheus"`, "Missing errors", `code=\"5xx\"`},
		{"prometheus bad url", promBlock(`address = "prometheus:9090"`), `"prometheus:9090"`, "Invalid address", "http(s) URL"},
		{"prometheus url with password", promBlock(`address = "http://ops:pw@p:9090"`), `"http://ops:pw@p:9090"`, "Credentials in the plan", "password_env"},
		{"prometheus empty query", "analysis \"prometheus\" {\n  address = \"http://p:9090\"\n  requests = \"\"\n  errors = \"e\"\n  max_error_rate = \"1%\"\n}", `""`, "Empty requests", "PromQL"},
		{"prometheus half basic auth", promBlock(`address = "http://p:9090"`, `username_env = "PROM_USER"`), `analysis "prometheus"`, "Incomplete basic auth", "password_env"},
		{"prometheus secret not a name", promBlock(`address = "http://p:9090"`, `bearer_token_env = "eyJhbGciOi.x"`), `"eyJhbGciOi.x"`, "Invalid bearer_token_env", "not the secret itself"},
		{"prometheus bad label", promBlock(`address = "http://p:9090"`, `server_label = "9lives"`), `"9lives"`, "Invalid server_label", "label name"},
		{"prometheus half client cert", promBlock(`address = "https://p:9090"`, "tls {\n    cert_file = \"c.pem\"\n  }"), "tls {", "Incomplete client certificate", "key_file"},
		{"prometheus no limits", "analysis \"prometheus\" {\n  address = \"http://p:9090\"\n  requests = \"r\"\n  errors = \"e\"\n}", `analysis "prometheus"`, "Analysis without limits", "judges nothing"},
		{"no limits", haproxyDrain + "\nanalysis \"haproxy\" {\n  min_requests = 10\n}", `analysis "haproxy"`, "Analysis without limits", "judges nothing"},
		{"rate without percent", haproxyDrain + "\nanalysis \"haproxy\" {\n  max_error_rate = \"0.01\"\n}", `"0.01"`, "Invalid max_error_rate", `percentage string such as "1%"`},
		{"rate as number", haproxyDrain + "\nanalysis \"haproxy\" {\n  max_error_rate = 1\n}", `1
}`, "Incorrect attribute value type", "max_error_rate must be a percentage"},
		{"rate over 100", haproxyDrain + "\nanalysis \"haproxy\" {\n  max_error_rate = \"150%\"\n}", `"150%"`, "Invalid max_error_rate", "from 0% to 100%"},
		{"min_requests zero", haproxyDrain + "\nanalysis \"haproxy\" {\n  max_error_rate = \"1%\"\n  min_requests = 0\n}", `0
}`, "Invalid min_requests", "at least 1"},
		{"deadline shorter than interval", haproxyDrain + "\nanalysis \"haproxy\" {\n  max_error_rate = \"1%\"\n  interval = \"30s\"\n  deadline = \"10s\"\n}", `"10s"`, "Invalid deadline", "at least interval"},
		{"host in analysis", haproxyDrain + "\nanalysis \"haproxy\" {\n  max_error_rate = host.vars.rate\n}", `host.vars.rate`, "Per-host value in a plan-wide attribute", "only plan.name"},
		{"command needs command", "analysis \"command\" {\n  max_error_rate = \"1%\"\n}", `analysis "command"`, "Missing command", `command = "`},
		{"two blocks", haproxyDrain + "\nanalysis \"haproxy\" {\n  max_error_rate = \"1%\"\n}\nanalysis \"haproxy\" {\n  max_error_rate = \"2%\"\n}", "analysis \"haproxy\" {\n  max_error_rate = \"2%\"", "Duplicate analysis block", "at most one analysis block"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantDiag(t, minimal(`repo = "/r"`+"\n"+tt.extra), tt.at, tt.summary, tt.detail)
		})
	}
}

// promBlock is an analysis "prometheus" block with queries and a limit, and
// the given lines.
func promBlock(lines ...string) string {
	return "analysis \"prometheus\" {\n  requests = \"r\"\n  errors = \"e\"\n  max_error_rate = \"1%\"\n  " + strings.Join(lines, "\n  ") + "\n}"
}

func TestParseAnalysisPrometheus(t *testing.T) {
	src := minimal(`repo = "/r"` + "\n" + `analysis "prometheus" {
  address          = "https://prom.internal:9090/prometheus"
  requests         = "sum by (instance) (http_requests_total)"
  errors           = "sum by (instance) (http_requests_total{code=~\"5..\"})"
  response_time    = "sum by (instance) (http_request_duration_seconds_sum)"
  server_label     = "instance"
  bearer_token_env = "PROM_TOKEN"
  max_error_rate   = "1%"
  tls {
    ca_file              = "ca.pem"
    insecure_skip_verify = true
  }
}`)
	p, diags := Parse("/plans/rollout.hcl", []byte(src))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	a := p.Analysis
	if a == nil || a.Kind != "prometheus" || a.Prometheus == nil {
		t.Fatalf("analysis %+v", a)
	}
	pr := a.Prometheus
	if pr.Address != "https://prom.internal:9090/prometheus" || pr.Requests.Expr != "sum by (instance) (http_requests_total)" ||
		pr.Errors.Expr != `sum by (instance) (http_requests_total{code=~"5.."})` || pr.ResponseTime.Expr == "" ||
		pr.ServerLabel != "instance" || pr.BearerTokenEnv != "PROM_TOKEN" || pr.UsernameEnv != "" ||
		pr.CAFile != "/plans/ca.pem" || !pr.InsecureSkipVerify || a.MinRequests != DefaultAnalysisMinRequests {
		t.Fatalf("prometheus %+v", pr)
	}
	if w := pr.Errors.Where(); w != "/plans/rollout.hcl:6" {
		t.Errorf("errors query at %s", w)
	}

	// defaults: server_label, no response time, basic auth
	p, diags = Parse("rollout.hcl", []byte(minimal(`repo = "/r"`+"\n"+promBlock(`address = "http://127.0.0.1:9090"`, `username_env = "U"`, `password_env = "P"`))))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if pr := p.Analysis.Prometheus; pr.ServerLabel != "server" || pr.ResponseTime.Expr != "" || pr.UsernameEnv != "U" || pr.PasswordEnv != "P" {
		t.Errorf("prometheus %+v", pr)
	}
}
