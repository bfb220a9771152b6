package plan

import (
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// Defaults of the analysis block.
const (
	DefaultAnalysisInterval    = 10 * time.Second
	DefaultAnalysisDeadline    = 2 * time.Minute
	DefaultAnalysisMinRequests = 50
)

// Analysis is the plan's optional canary analysis: during every ramp step
// and the bake pause, the host just changed is compared with the servers
// not yet changed, from the load balancer's own counters (kind "haproxy",
// through the drain "haproxy" block's endpoints and backend) or from a
// command's output (kind "command") or from PromQL queries of cumulative
// counters (kind "prometheus", in Prometheus). Rates are fractions (0.01 = 1%); a nil
// limit is not judged.
type Analysis struct {
	Kind       string      // "haproxy", "command" or "prometheus"
	Command    string      // command: run on the controller (or Via), prints counters
	Via        string      // command: run on this inventory host over SSH instead
	Prometheus *Prometheus // prometheus: the server and its queries

	MaxErrorRate            *float64
	MaxErrorRateIncrease    *float64
	MaxResponseTimeIncrease *float64
	MinRequests             int
	Interval                time.Duration // how often the verdict is taken
	Deadline                time.Duration // how long a step may hold for traffic

	Def hcl.Range // where the block is, for messages
}

// Prometheus is an analysis "prometheus" block's source: a Prometheus
// server and PromQL expressions that return one cumulative counter per
// server (the label ServerLabel names it). Credentials never live in the
// plan: the *Env fields name environment variables, read when a run starts.
type Prometheus struct {
	Address      string // http(s) URL of the server (a path prefix allowed)
	Requests     PromQL
	Errors       PromQL
	ResponseTime PromQL // optional: cumulative sum of response times, seconds
	ServerLabel  string // default "server"

	UsernameEnv, PasswordEnv string // basic auth
	BearerTokenEnv           string // Authorization: Bearer

	CAFile, CertFile, KeyFile string // tls block, absolute paths ("" = not set)
	InsecureSkipVerify        bool
}

// PromQL is one query of an analysis "prometheus" block.
type PromQL struct {
	Expr string    // "" = not set
	At   hcl.Range // the attribute's value, for messages naming the plan's line
}

// Where is "file:line" of the query in the plan.
func (q PromQL) Where() string { return fmt.Sprintf("%s:%d", q.At.Filename, q.At.Start.Line) }

// DefaultServerLabel is the label of a Prometheus series naming the server.
const DefaultServerLabel = "server"

var analysisCommon = []string{"max_error_rate", "max_error_rate_increase", "max_response_time_increase", "min_requests", "interval", "deadline"}

var analysisSchemas = map[string]*hcl.BodySchema{
	"haproxy": {Attributes: attrs(analysisCommon...)},
	"command": {Attributes: attrs(append([]string{"command", "via"}, analysisCommon...)...)},
	"prometheus": {
		Attributes: attrs(append([]string{"address", "requests", "errors", "response_time", "server_label",
			"username_env", "password_env", "bearer_token_env"}, analysisCommon...)...),
		Blocks: []hcl.BlockHeaderSchema{{Type: "tls"}},
	},
}

var promTLSSchema = &hcl.BodySchema{Attributes: attrs("ca_file", "cert_file", "key_file", "insecure_skip_verify")}

var analysisRequired = map[string][][2]string{
	"command": {{"command", `command = "metrics-query --cumulative web"`}},
	"prometheus": {
		{"address", `address = "http://prometheus:9090"`},
		{"requests", `requests = "sum by (server) (haproxy_server_http_responses_total{proxy=\"web\"})"`},
		{"errors", `errors = "sum by (server) (haproxy_server_http_responses_total{proxy=\"web\",code=\"5xx\"})"`},
	},
}

// analysis decodes the analysis block (plan-wide: no host.* in it).
func (d *decoder) analysis(p *Plan, b *hcl.Block, ctx *hcl.EvalContext, drain *block) *Analysis {
	blk := d.labelled(b, analysisSchemas, analysisRequired, "analysis")
	if blk == nil {
		return nil
	}
	a := &Analysis{Kind: blk.label, MinRequests: DefaultAnalysisMinRequests,
		Interval: DefaultAnalysisInterval, Deadline: DefaultAnalysisDeadline, Def: b.DefRange}
	at := blk.attrs
	if a.Kind == "haproxy" && (drain == nil || drain.label != "haproxy") {
		d.errorf(b.DefRange, "Analysis needs an haproxy drain",
			`analysis "haproxy" reads the servers' counters from the load balancers named in a drain "haproxy" block (endpoints, backend), and this plan has none; use analysis "command" for another source.`)
	}
	if s, ok := d.planString(at["command"], ctx, "a command that prints SERVER REQUESTS ERRORS [RTIME_MS_SUM] lines"); ok {
		a.Command = s
	}
	if s, ok := d.planString(at["via"], ctx, "an inventory host name"); ok {
		a.Via = s
	}
	if a.Kind == "prometheus" {
		a.Prometheus = d.prometheus(p, blk, ctx)
	}
	a.MaxErrorRate = d.rate(at["max_error_rate"], ctx, 100)
	a.MaxErrorRateIncrease = d.rate(at["max_error_rate_increase"], ctx, 100)
	a.MaxResponseTimeIncrease = d.rate(at["max_response_time_increase"], ctx, 1000)
	if d.planWide(at["min_requests"]) {
		if n, ok := d.integer(at["min_requests"], ctx, 1, maxQuantity, "a whole number of requests of at least 1"); ok {
			a.MinRequests = n
		}
	}
	if d.planWide(at["interval"]) {
		if dur, ok := d.duration(at["interval"], ctx, true); ok {
			a.Interval = dur
		}
	}
	if d.planWide(at["deadline"]) {
		if dur, ok := d.duration(at["deadline"], ctx, true); ok {
			a.Deadline = dur
		}
	}
	if a.Deadline < a.Interval {
		rng := b.DefRange
		if at["deadline"] != nil {
			rng = at["deadline"].Expr.Range()
		}
		d.errorf(rng, "Invalid deadline", "deadline (%s) must be at least interval (%s): a step holds for at least one interval before its first verdict.", a.Deadline, a.Interval)
	}
	if at["max_error_rate"] == nil && at["max_error_rate_increase"] == nil && at["max_response_time_increase"] == nil {
		d.errorf(b.DefRange, "Analysis without limits",
			`analysis %q judges nothing: set at least one of max_error_rate (e.g. "1%%"), max_error_rate_increase (e.g. "0.5%%") or max_response_time_increase (e.g. "25%%").`, a.Kind)
	}
	return a
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// prometheus decodes the source attributes of an analysis "prometheus"
// block (the limits are the common ones).
func (d *decoder) prometheus(p *Plan, blk *block, ctx *hcl.EvalContext) *Prometheus {
	at := blk.attrs
	pr := &Prometheus{ServerLabel: DefaultServerLabel}
	if s, ok := d.planString(at["address"], ctx, `an http(s) URL such as "http://prometheus:9090"`); ok {
		u, err := url.Parse(s)
		switch {
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Hostname() == "":
			d.errorf(at["address"].Expr.Range(), "Invalid address", `address must be the http(s) URL of a Prometheus server, such as "http://prometheus:9090"; got %q.`, s)
		case u.User != nil:
			d.errorf(at["address"].Expr.Range(), "Credentials in the plan", "address must not carry a user or password: name the environment variables that hold them with username_env and password_env (or bearer_token_env).")
		case u.RawQuery != "" || u.Fragment != "":
			d.errorf(at["address"].Expr.Range(), "Invalid address", "address is the server's base URL, without a query or fragment; got %q.", s)
		default:
			pr.Address = s
		}
	}
	for _, q := range []struct {
		name string
		dst  *PromQL
	}{{"requests", &pr.Requests}, {"errors", &pr.Errors}, {"response_time", &pr.ResponseTime}} {
		if s, ok := d.planString(at[q.name], ctx, "a PromQL expression returning one cumulative counter per server"); ok {
			*q.dst = PromQL{Expr: s, At: at[q.name].Expr.Range()}
		}
	}
	if s, ok := d.planString(at["server_label"], ctx, `a Prometheus label name such as "server" or "instance"`); ok {
		if !envName.MatchString(s) {
			d.errorf(at["server_label"].Expr.Range(), "Invalid server_label", "server_label must be a Prometheus label name (letters, digits, _; not starting with a digit); got %q.", s)
		} else {
			pr.ServerLabel = s
		}
	}
	for _, e := range []struct {
		name string
		dst  *string
	}{{"username_env", &pr.UsernameEnv}, {"password_env", &pr.PasswordEnv}, {"bearer_token_env", &pr.BearerTokenEnv}} {
		if s, ok := d.planString(at[e.name], ctx, "the name of an environment variable"); ok {
			if !envName.MatchString(s) {
				d.errorf(at[e.name].Expr.Range(), "Invalid "+e.name, "%s names the environment variable that holds the secret (such as \"PROM_PASSWORD\"), not the secret itself; got a value that is not a variable name.", e.name)
				continue
			}
			*e.dst = s
		}
	}
	if (at["username_env"] == nil) != (at["password_env"] == nil) {
		d.errorf(blk.def, "Incomplete basic auth", "basic auth needs both username_env and password_env, or neither.")
	}
	if at["bearer_token_env"] != nil && (at["username_env"] != nil || at["password_env"] != nil) {
		d.errorf(at["bearer_token_env"].Expr.Range(), "Two kinds of credentials", "set bearer_token_env or username_env and password_env, not both.")
	}
	for _, tb := range blk.blocks {
		tc, td := tb.Body.Content(promTLSSchema)
		d.add(td)
		for _, f := range []struct {
			name string
			dst  *string
		}{{"ca_file", &pr.CAFile}, {"cert_file", &pr.CertFile}, {"key_file", &pr.KeyFile}} {
			if s, ok := d.planString(tc.Attributes[f.name], ctx, "a file path"); ok {
				*f.dst = p.abs(s)
			}
		}
		if attr := tc.Attributes["insecure_skip_verify"]; d.planWide(attr) {
			if v, ok := d.boolean(attr, ctx); ok {
				pr.InsecureSkipVerify = v
			}
		}
		if (pr.CertFile == "") != (pr.KeyFile == "") {
			d.errorf(tb.DefRange, "Incomplete client certificate", "tls needs both cert_file and key_file for a client certificate, or neither.")
		}
	}
	return pr
}

// rate decodes a percentage string such as "1%" or "0.5%" into a fraction,
// at most maxPct percent.
func (d *decoder) rate(attr *hcl.Attribute, ctx *hcl.EvalContext, maxPct float64) *float64 {
	if !d.planWide(attr) {
		return nil
	}
	v, ok := d.eval(attr, ctx)
	if !ok {
		return nil
	}
	const what = `a percentage string such as "1%" or "0.5%"`
	if v.Type() != cty.String {
		d.typeError(attr, attr.Expr.Range(), what, v)
		return nil
	}
	s := strings.TrimSpace(v.AsString())
	num, isPct := strings.CutSuffix(s, "%")
	f, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if !isPct || err != nil || f < 0 || f > maxPct {
		d.errorf(attr.Expr.Range(), "Invalid "+attr.Name, "%s must be %s from 0%% to %s%%; got %q.", attr.Name, what, strconv.FormatFloat(maxPct, 'f', -1, 64), s)
		return nil
	}
	f /= 100
	return &f
}
