package plan

import (
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/agext/levenshtein"
	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// Notify is a notify "webhook" block: the run's events POSTed to a URL
// as they happen (package notify delivers them). The URL and the header
// values may name environment variables as ${env.NAME}, read when a run
// starts (Resolve): secrets never live in the plan.
type Notify struct {
	Kind    string        // "webhook"
	Events  []string      // names from NotifyEvents (default DefaultNotifyEvents)
	Format  string        // NotifyJSON or NotifySlack
	Timeout time.Duration // one request (default DefaultNotifyTimeout)
	Def     hcl.Range     // where the block is, for messages

	url     *hcl.Attribute
	headers []notifyHeader // sorted by name
	plan    string
}

type notifyHeader struct {
	name  string
	value hcl.Expression
}

// Formats of a notify block.
const (
	NotifyJSON  = "json"  // the event as docs/json-events.md documents it, plus plan
	NotifySlack = "slack" // a Slack incoming-webhook message: {"text": "one-line summary"}
)

// DefaultNotifyTimeout bounds one request of a notify block that sets no
// timeout.
const DefaultNotifyTimeout = 5 * time.Second

// NotifyEvents are the names a notify block's events may list. Most are
// event kinds (docs/json-events.md); approval_waiting is a waiting event
// for an approval, and host_failed a host_done whose outcome is a failure
// (failed, drained, rolled_back or unknown).
var NotifyEvents = []string{
	"run_start", "preflight_done", "batch_start", "batch_done",
	"host_done", "host_failed", "analysis", "hook", "lb_reload",
	"waiting", "approval_waiting", "approved", "run_done",
}

// DefaultNotifyEvents is what a notify block without events sends.
var DefaultNotifyEvents = []string{"run_start", "batch_done", "approval_waiting", "host_failed", "run_done"}

var notifySchemas = map[string]*hcl.BodySchema{
	"webhook": {Attributes: attrs("url", "events", "format", "headers", "timeout")},
}

var notifyRequired = map[string][][2]string{
	"webhook": {{"url", `url = "https://chat.example/hooks/deploys"`}},
}

// headers whose value is a credential: written inline in the plan, they
// are refused
var secretHeaderWords = []string{"authorization", "token", "secret", "key", "password", "signature", "cookie"}

func (d *decoder) notify(p *Plan, b *hcl.Block) *Notify {
	blk := d.labelled(b, notifySchemas, notifyRequired, "notify")
	if blk == nil {
		return nil
	}
	at := blk.attrs
	n := &Notify{Kind: blk.label, Events: DefaultNotifyEvents, Format: NotifyJSON, Timeout: DefaultNotifyTimeout,
		Def: b.DefRange, url: at["url"], plan: p.Name}
	ctx := planContext(p.Name)
	if u := at["url"]; u != nil && d.envRefs(u.Expr, "url") {
		vctx := d.envContext(ctx, u.Expr)
		if s, ok := d.nonEmpty(u, vctx, `an http(s) URL such as "https://chat.example/hooks/deploys"`); ok {
			if err := checkNotifyURL(s); err != nil {
				d.errorf(u.Expr.Range(), "Invalid url", "url %v.", err)
			}
		}
	}
	if attr := at["events"]; d.planWide(attr) {
		if names, ok := d.strList(attr, ctx); ok {
			n.Events = d.notifyEvents(attr, names)
		}
	}
	if s, ok := d.planString(at["format"], ctx, `"json" or "slack"`); ok {
		if s != NotifyJSON && s != NotifySlack {
			d.errorf(at["format"].Expr.Range(), "Invalid format",
				`format must be "json" (the event as docs/json-events.md documents it) or "slack" (a Slack incoming-webhook message with a one-line summary); got %q.`, s)
		} else {
			n.Format = s
		}
	}
	if d.planWide(at["timeout"]) {
		if t, ok := d.duration(at["timeout"], ctx, true); ok {
			n.Timeout = t
		}
	}
	if attr := at["headers"]; attr != nil {
		n.headers = d.notifyHeaders(attr, ctx)
	}
	return n
}

func (d *decoder) notifyEvents(attr *hcl.Attribute, names []string) []string {
	rngs := []hcl.Range{}
	if exprs, diags := hcl.ExprList(attr.Expr); !diags.HasErrors() && len(exprs) == len(names) {
		for _, e := range exprs {
			rngs = append(rngs, e.Range())
		}
	}
	var out []string
	for i, name := range names {
		rng := attr.Expr.Range()
		if i < len(rngs) {
			rng = rngs[i]
		}
		known := false
		for _, k := range NotifyEvents {
			known = known || k == name
		}
		if !known {
			detail := fmt.Sprintf("events lists what to send, from %s; got %q.", quoteAll(NotifyEvents), name)
			if s := suggestName(name, NotifyEvents); s != "" {
				detail += fmt.Sprintf(" Did you mean %q?", s)
			}
			d.errorf(rng, "Unknown notify event", "%s", detail)
			continue
		}
		out = append(out, name)
	}
	if len(names) == 0 {
		d.errorf(attr.Expr.Range(), "Empty events", "events must list at least one of %s; leave it out for the default %s.", quoteAll(NotifyEvents), quoteAll(DefaultNotifyEvents))
	}
	return out
}

func (d *decoder) notifyHeaders(attr *hcl.Attribute, ctx *hcl.EvalContext) []notifyHeader {
	pairs, diags := hcl.ExprMap(attr.Expr)
	if diags.HasErrors() {
		d.errorf(attr.Expr.Range(), "Invalid headers", `headers must be a map of header names to values, such as { Authorization = "Bearer ${env.DEPLOY_HOOK_TOKEN}" }.`)
		return nil
	}
	var out []notifyHeader
	seen := map[string]bool{}
	for _, kv := range pairs {
		name := hcl.ExprAsKeyword(kv.Key)
		if name == "" {
			v, kd := kv.Key.Value(ctx)
			if kd.HasErrors() || v.Type() != cty.String || v.IsNull() {
				d.errorf(kv.Key.Range(), "Invalid header name", "a header name must be a word or a quoted string, such as Authorization or \"X-Token\".")
				continue
			}
			name = v.AsString()
		}
		if name == "" || strings.ContainsAny(name, " \t\r\n:") {
			d.errorf(kv.Key.Range(), "Invalid header name", "%q is not an HTTP header name.", name)
			continue
		}
		if seen[strings.ToLower(name)] {
			d.errorf(kv.Key.Range(), "Duplicate header", "header %s is set twice.", name)
			continue
		}
		seen[strings.ToLower(name)] = true
		if !d.envRefs(kv.Value, "headers") {
			continue
		}
		refs := envNames(kv.Value)
		if len(refs) == 0 && secretHeader(name) {
			d.errorf(kv.Value.Range(), "Secret in the plan",
				`header %s carries a credential, and a plan is committed to git: name the environment variable that holds it, such as %s = "Bearer ${env.DEPLOY_HOOK_TOKEN}".`, name, name)
			continue
		}
		v, vd := kv.Value.Value(d.envContext(ctx, kv.Value))
		d.add(vd)
		if !vd.HasErrors() {
			if _, err := convert.Convert(v, cty.String); err != nil {
				d.errorf(kv.Value.Range(), "Incorrect attribute value type", "header %s must be a string; got %s.", name, v.Type().FriendlyName())
				continue
			}
		}
		out = append(out, notifyHeader{name: name, value: kv.Value})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

func secretHeader(name string) bool {
	l := strings.ToLower(name)
	for _, w := range secretHeaderWords {
		if strings.Contains(l, w) {
			return true
		}
	}
	return false
}

// envRefs checks the variables of a notify attribute: plan.name and
// env.NAME only. It returns whether expr may be evaluated.
func (d *decoder) envRefs(expr hcl.Expression, attr string) bool {
	ok := true
	for _, tr := range expr.Variables() {
		switch tr.RootName() {
		case "plan":
		case "env":
			if _, named := envName1(tr); !named {
				d.errorf(tr.SourceRange(), "Invalid environment reference", "%s names an environment variable as ${env.NAME}, such as ${env.DEPLOY_HOOK_TOKEN}.", attr)
				ok = false
			}
		default:
			d.errorf(tr.SourceRange(), "Unknown variable in a notify block",
				"%s is evaluated once for the run, so only plan.name and environment variables (${env.NAME}) are available in it; got %s.", attr, tr.RootName())
			ok = false
		}
	}
	return ok
}

func envName1(tr hcl.Traversal) (string, bool) {
	if len(tr) != 2 {
		return "", false
	}
	a, ok := tr[1].(hcl.TraverseAttr)
	if !ok || !envName.MatchString(a.Name) {
		return "", false
	}
	return a.Name, true
}

// envRef is one ${env.NAME} in a notify attribute.
type envRef struct {
	name string
	at   hcl.Range
}

func envNames(expr hcl.Expression) []envRef {
	var out []envRef
	for _, tr := range expr.Variables() {
		if tr.RootName() != "env" {
			continue
		}
		if name, ok := envName1(tr); ok {
			out = append(out, envRef{name, tr.SourceRange()})
		}
	}
	return out
}

// envContext is ctx with env.* of expr as unknown strings: the value is
// checked where it can be without the environment.
func (d *decoder) envContext(ctx *hcl.EvalContext, expr hcl.Expression) *hcl.EvalContext {
	return withEnv(ctx, expr, func(string) (cty.Value, bool) { return cty.UnknownVal(cty.String), true })
}

func withEnv(ctx *hcl.EvalContext, expr hcl.Expression, val func(string) (cty.Value, bool)) *hcl.EvalContext {
	refs := envNames(expr)
	if len(refs) == 0 {
		return ctx
	}
	vars := map[string]cty.Value{}
	for k, v := range ctx.Variables {
		vars[k] = v
	}
	env := map[string]cty.Value{}
	for _, r := range refs {
		if v, ok := val(r.name); ok {
			env[r.name] = v
		}
	}
	vars["env"] = cty.ObjectVal(env)
	return &hcl.EvalContext{Variables: vars}
}

func checkNotifyURL(s string) error {
	u, err := url.Parse(s)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "":
		return fmt.Errorf("must be an http(s) URL such as \"https://chat.example/hooks/deploys\"; got %q", s)
	case u.User != nil:
		return fmt.Errorf("must not carry a user or password: send credentials in headers, from the environment (${env.NAME})")
	}
	return nil
}

// UnsetEnvError is a notify block naming an environment variable that is
// not set when the run starts.
type UnsetEnvError struct {
	Var string    // the variable
	Use string    // "url" or "header NAME"
	At  hcl.Range // where the plan names it
}

func (e *UnsetEnvError) Error() string {
	return fmt.Sprintf("notify %s at %s:%d: environment variable %s is not set", e.Use, e.At.Filename, e.At.Start.Line, e.Var)
}

// Resolve evaluates the block's url and headers with the environment that
// lookup reads (os.LookupEnv). A variable that is not set is an
// *UnsetEnvError. display is the URL as messages may show it: without
// its path when it comes from the environment (a Slack webhook's URL is
// itself the secret).
func (n *Notify) Resolve(lookup func(string) (string, bool)) (target, display string, headers map[string]string, err error) {
	eval := func(expr hcl.Expression, use string) (string, error) {
		for _, r := range envNames(expr) {
			if _, ok := lookup(r.name); !ok {
				return "", &UnsetEnvError{Var: r.name, Use: use, At: r.at}
			}
		}
		ctx := withEnv(planContext(n.plan), expr, func(name string) (cty.Value, bool) {
			v, _ := lookup(name)
			return cty.StringVal(v), true
		})
		v, diags := expr.Value(ctx)
		if diags.HasErrors() {
			return "", fmt.Errorf("notify %s: %s", use, diags.Error())
		}
		s, cerr := convert.Convert(v, cty.String)
		if cerr != nil || s.IsNull() {
			return "", fmt.Errorf("notify %s is not a string", use)
		}
		return s.AsString(), nil
	}
	if n.url == nil {
		return "", "", nil, fmt.Errorf("notify block at %s has no url", n.Def)
	}
	if target, err = eval(n.url.Expr, "url"); err != nil {
		return "", "", nil, err
	}
	rng := n.url.Expr.Range()
	if err := checkNotifyURL(target); err != nil {
		return "", "", nil, fmt.Errorf("notify url at %s:%d: the url from the environment %v", rng.Filename, rng.Start.Line, err)
	}
	display = target
	if len(envNames(n.url.Expr)) > 0 {
		u, _ := url.Parse(target)
		display = u.Scheme + "://" + u.Host + "/…"
	}
	headers = map[string]string{}
	for _, h := range n.headers {
		v, err := eval(h.value, "header "+h.name)
		if err != nil {
			return "", "", nil, err
		}
		headers[h.name] = v
	}
	return target, display, headers, nil
}

// suggestName is the known name closest to name, or "" when none is close.
func suggestName(name string, known []string) string {
	best, bestD := "", 4
	for _, k := range known {
		if d := levenshtein.Distance(name, k, nil); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

func quoteAll(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	return strings.Join(q, ", ")
}
