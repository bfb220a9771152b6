package plan

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"os"
	"path"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"

	"github.com/rollout-sh/rollout/internal/jinja"
	"github.com/rollout-sh/rollout/internal/shell"
	"github.com/rollout-sh/rollout/inventory"
)

// Defaults of per-host attributes.
const (
	DefaultMode         os.FileMode   = 0o644
	DefaultStatus                     = 200
	DefaultInterval     time.Duration = time.Second
	DefaultHealthyFor   time.Duration = 10 * time.Second
	DefaultDeadline     time.Duration = 2 * time.Minute
	DefaultProbeTimeout time.Duration = 5 * time.Second
	DefaultDrainTimeout time.Duration = 2 * time.Minute
)

var ownerRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]*(:[A-Za-z0-9_][A-Za-z0-9._-]*)?$`)

// planContext is the scope of plan-wide attributes: plan.name only.
func planContext(name string) *hcl.EvalContext {
	return &hcl.EvalContext{Variables: map[string]cty.Value{
		"plan": cty.ObjectVal(map[string]cty.Value{"name": cty.StringVal(name)}),
	}}
}

// placeholderContext stands in for a host during Parse: host.* and
// revision are unknown, so expressions that use them evaluate to unknown
// values and are checked later by ForHost, while typos in names and
// constant values are reported at once.
func placeholderContext(name string, quoted bool) *hcl.EvalContext {
	q := func(s string) cty.Value { return cty.StringVal(s) }
	if quoted {
		q = func(s string) cty.Value { return cty.StringVal(shell.Quote(s)) }
	}
	return &hcl.EvalContext{Variables: map[string]cty.Value{
		"host": cty.ObjectVal(map[string]cty.Value{
			"name":    cty.UnknownVal(cty.String),
			"address": cty.UnknownVal(cty.String),
			"port":    cty.UnknownVal(cty.Number),
			"user":    cty.UnknownVal(cty.String),
			"groups":  cty.UnknownVal(cty.List(cty.String)),
			"vars":    cty.DynamicVal,
		}),
		"plan":     cty.ObjectVal(map[string]cty.Value{"name": q(name)}),
		"revision": cty.UnknownVal(cty.String),
	}}
}

// hostContext is the scope of per-host attributes and templates. With
// quoted, every string in it (and every map key) has been passed through
// shell.Quote, so interpolating it into a command yields one sh word.
func hostContext(planName string, h *inventory.Host, revision string, quoted bool) *hcl.EvalContext {
	q := func(s string) cty.Value { return cty.StringVal(s) }
	if quoted {
		q = func(s string) cty.Value { return cty.StringVal(shell.Quote(s)) }
	}
	groups := make([]cty.Value, len(h.Groups))
	for i, g := range h.Groups {
		groups[i] = q(g)
	}
	groupsVal := cty.ListValEmpty(cty.String)
	if len(groups) > 0 {
		groupsVal = cty.ListVal(groups)
	}
	vars := map[string]cty.Value{}
	for k, v := range h.Vars {
		vars[keyOf(k, quoted)] = toCty(v, quoted)
	}
	return &hcl.EvalContext{Variables: map[string]cty.Value{
		"host": cty.ObjectVal(map[string]cty.Value{
			"name":    q(h.Name),
			"address": q(h.Address),
			"port":    cty.NumberIntVal(int64(h.Port)),
			"user":    q(h.User),
			"groups":  groupsVal,
			"vars":    cty.ObjectVal(vars),
		}),
		"plan":     cty.ObjectVal(map[string]cty.Value{"name": q(planName)}),
		"revision": q(revision),
	}}
}

func keyOf(k string, quoted bool) string {
	if quoted {
		return shell.Quote(k)
	}
	return k
}

// toCty converts an inventory value (string, numbers, bool, []any,
// map[string]any, nil) into a cty value. Lists become tuples so that their
// elements may differ in type. Anything else is formatted as a string.
func toCty(v any, quoted bool) cty.Value {
	str := func(s string) cty.Value {
		if quoted {
			s = shell.Quote(s)
		}
		return cty.StringVal(s)
	}
	switch x := v.(type) {
	case nil:
		return cty.NullVal(cty.DynamicPseudoType)
	case string:
		return str(x)
	case bool:
		return cty.BoolVal(x)
	case int:
		return cty.NumberIntVal(int64(x))
	case int64:
		return cty.NumberIntVal(x)
	case int32:
		return cty.NumberIntVal(int64(x))
	case uint64:
		return cty.NumberUIntVal(x)
	case float32:
		return toCty(float64(x), quoted)
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return str(strconv.FormatFloat(x, 'g', -1, 64))
		}
		return cty.NumberFloatVal(x)
	case []any:
		if len(x) == 0 {
			return cty.EmptyTupleVal
		}
		elems := make([]cty.Value, len(x))
		for i, e := range x {
			elems[i] = toCty(e, quoted)
		}
		return cty.TupleVal(elems)
	case []string:
		elems := make([]any, len(x))
		for i, e := range x {
			elems[i] = e
		}
		return toCty(elems, quoted)
	case map[string]any:
		m := make(map[string]cty.Value, len(x))
		for k, e := range x {
			m[keyOf(k, quoted)] = toCty(e, quoted)
		}
		return cty.ObjectVal(m)
	case map[string]string:
		m := make(map[string]cty.Value, len(x))
		for k, e := range x {
			m[keyOf(k, quoted)] = str(e)
		}
		return cty.ObjectVal(m)
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return cty.NumberIntVal(rv.Int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return cty.NumberUIntVal(rv.Uint())
	}
	return str(fmt.Sprint(v))
}

// ForHost evaluates every per-host attribute of the plan for h, with
// host.*, plan.name and revision in scope. Command attributes (check,
// restart, diagnostics, file validate, the command drain's commands and
// the command health check) see every string shell-quoted; paths, URLs and
// names see them as they are. Unset attributes get their defaults. Every
// diagnostic's Detail names the host. The spec is nil when there is any
// error.
func (p *Plan) ForHost(h *inventory.Host, revision string) (*HostSpec, hcl.Diagnostics) {
	if p == nil || p.impl == nil || h == nil {
		return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Plan not decoded",
			Detail: "ForHost needs a plan returned by Parse or Load and a host."}}
	}
	d := &decoder{}
	raw := hostContext(p.Name, h, revision, false)
	hs := d.hostSpec(p.impl, raw, hostContext(p.Name, h, revision, true))
	scope := &fileScope{host: h, revision: revision, ctx: raw}
	for i := range hs.Files {
		hs.Files[i].scope = scope
	}
	hs.Host = h
	hs.Become = p.Become || h.Become
	if hs.Drain.Kind == "haproxy" && hs.Drain.Server == "" {
		hs.Drain.Server = h.Name
	}
	diags := forHost(d.diags, "While evaluating the plan for host %q: ", h.Name)
	if diags.HasErrors() {
		return nil, diags
	}
	return hs, diags
}

// forHost returns copies of diags whose Detail starts by naming the host.
func forHost(diags hcl.Diagnostics, prefix, host string) hcl.Diagnostics {
	out := make(hcl.Diagnostics, len(diags))
	for i, dg := range diags {
		c := *dg
		c.Detail = fmt.Sprintf(prefix, host) + c.Detail
		out[i] = &c
	}
	return out
}

// Render produces the bytes to deploy for file f on host h at revision.
// An HCL template (template = true or "hcl") is parsed as an HCL template
// (${...}, %{ if }, %{ for }) and evaluated with the same scope as
// ForHost, values unquoted. A Jinja2 template (template = "jinja2") is
// rendered as Ansible's template module renders it, with Ansible's names
// (inventory_hostname, group_names, groups, hostvars, every merged host
// variable) and rollout_revision; an undefined variable is an error.
// Diagnostics name the file as SOURCE@SHORTREV and their Detail names the
// host. Other files are returned unchanged. A plain or HCL-templated file
// holding Jinja2 syntax gets a warning.
func (p *Plan) Render(f FileSpec, src []byte, h *inventory.Host, revision string) ([]byte, hcl.Diagnostics) {
	name := f.Source + "@" + ShortRev(revision)
	warn := jinjaLeftWarning(f, name, src, p.source(name, src).markers)
	if !f.Template {
		return src, warn
	}
	if p == nil || h == nil {
		return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Plan not decoded",
			Detail: "Render needs a plan returned by Parse or Load and a host."}}
	}
	if f.Engine == EngineJinja2 {
		// a role's files and lookups need the repository: RenderAt
		return p.RenderAt(nil, f, src, h, revision)
	}
	scope := f.scope
	if scope == nil || scope.host != h || scope.revision != revision {
		scope = &fileScope{host: h, revision: revision, ctx: hostContext(p.Name, h, revision, false)}
	}
	out, diags := p.renderHCL(name, src, h, scope.ctx)
	return out, append(diags, warn...)
}

// jinjaLeftWarning warns about a plain or HCL-templated file that holds
// Jinja2 syntax, which would reach the host unrendered.
func jinjaLeftWarning(f FileSpec, name string, src []byte, line int) hcl.Diagnostics {
	if f.Engine == EngineJinja2 {
		return nil
	}
	if line == 0 {
		return nil
	}
	how := "is not a template"
	if f.Template {
		how = "is an HCL template (template = true)"
	}
	rng := lineRange(name, src, line, 1)
	return hcl.Diagnostics{{Severity: hcl.DiagWarning, Summary: "Jinja2 syntax left unrendered",
		Detail:  fmt.Sprintf("file %q %s, but line %d holds Jinja2 ({{ ... }} or {%% ... %%}), which would reach the host as it is; write template = \"jinja2\" if it is an Ansible template.", f.Name, how, line),
		Subject: rng}}
}

// lineRange is the range of line (1-based) of src from column col to the
// line's end, with byte offsets, so that diagnostics show that line.
func lineRange(name string, src []byte, line, col int) *hcl.Range {
	start := 0
	for l := 1; l < line && start < len(src); l++ {
		i := bytes.IndexByte(src[start:], '\n')
		if i < 0 {
			start = len(src)
			break
		}
		start += i + 1
	}
	end := start
	if i := bytes.IndexByte(src[start:], '\n'); i >= 0 {
		end = start + i
	} else {
		end = len(src)
	}
	from := min(start+col-1, end)
	return &hcl.Range{Filename: name,
		Start: hcl.Pos{Line: line, Column: col, Byte: from},
		End:   hcl.Pos{Line: line, Column: col + end - from, Byte: end}}
}

// renderHCL renders an HCL template (${...}, %{ if }, %{ for }).
func (p *Plan) renderHCL(name string, src []byte, h *inventory.Host, scope *hcl.EvalContext) ([]byte, hcl.Diagnostics) {
	const prefix = "While rendering for host %q: "
	ps := p.source(name, src)
	ps.parseOnce.Do(func() { ps.expr, ps.diags = hclsyntax.ParseTemplate(src, name, hcl.InitialPos) })
	expr, diags := ps.expr, append(hcl.Diagnostics(nil), ps.diags...)
	if diags.HasErrors() {
		return nil, forHost(diags, prefix, h.Name)
	}
	v, vdiags := expr.Value(scope)
	diags = append(diags, vdiags...)
	if diags.HasErrors() {
		return nil, forHost(diags, prefix, h.Name)
	}
	s, err := convert.Convert(v, cty.String)
	if err != nil || s.IsNull() || !s.IsKnown() {
		rng := expr.Range()
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Template did not produce text",
			Detail: fmt.Sprintf("The template must produce a string; it produced %s.", v.Type().FriendlyName()), Subject: &rng})
		return nil, forHost(diags, prefix, h.Name)
	}
	return []byte(s.AsString()), forHost(diags, prefix, h.Name)
}

// ValidateCommand is Validate with every %s replaced by the shell-quoted
// path of the staged copy.
func (f FileSpec) ValidateCommand(stagedPath string) string {
	return strings.ReplaceAll(f.Validate, "%s", shell.Quote(stagedPath))
}

// hostSpec evaluates the per-host attributes with raw (paths, URLs, names)
// and quoted (commands) scopes. Values that are unknown (during Parse)
// are left at their defaults without a diagnostic.
func (d *decoder) hostSpec(impl *planImpl, raw, quoted *hcl.EvalContext) *HostSpec {
	hs := &HostSpec{StateDir: DefaultStateDir}
	if s, ok := d.nonEmpty(impl.stateDir, raw, "an absolute directory"); ok {
		if !path.IsAbs(s) {
			d.errorf(impl.stateDir.Expr.Range(), "Invalid state_dir", "state_dir must be an absolute directory on the host; got %q.", s)
		}
		hs.StateDir = s
	}
	if s, ok := d.str(impl.check, quoted); ok {
		hs.Check = s
	}
	if s, ok := d.nonEmpty(impl.restart, quoted, `the command that restarts the service, such as "systemctl restart appd"`); ok {
		hs.Restart = s
	}
	if l, ok := d.strList(impl.diagnostics, quoted); ok {
		hs.Diagnostics = l
	}
	if s, ok := d.str(impl.install, quoted); ok {
		hs.Install = s
	}
	if s, ok := d.str(impl.prefetch, quoted); ok {
		hs.Prefetch = s
	}
	artDests := map[string]string{}
	for _, b := range impl.artifacts {
		a := d.artifactSpec(b, impl.dir, raw, quoted)
		if a.Dest != "" {
			if other, dup := artDests[a.Dest]; dup {
				d.errorf(b.attrs["dest"].Expr.Range(), "Duplicate dest",
					"artifact %q and artifact %q both deploy to %s; each releases directory belongs to one artifact block.", other, b.label, a.Dest)
			}
			artDests[a.Dest] = b.label
		}
		hs.Artifacts = append(hs.Artifacts, a)
	}
	if impl.drain != nil {
		hs.Drain = d.drainSpec(impl.drain, raw, quoted)
	}
	dests := map[string]string{}
	for _, b := range impl.files {
		f := d.fileSpec(b, raw, quoted)
		if f.Dest != "" {
			if other, dup := dests[f.Dest]; dup {
				d.errorf(b.attrs["dest"].Expr.Range(), "Duplicate dest",
					"file %q and file %q both deploy to %s; each destination may be written by one file block.", other, b.label, f.Dest)
			}
			dests[f.Dest] = b.label
		}
		hs.Files = append(hs.Files, f)
	}
	for _, b := range impl.health {
		hs.Health = append(hs.Health, d.healthSpec(b, raw, quoted))
	}
	return hs
}

func (d *decoder) drainSpec(b *block, raw, quoted *hcl.EvalContext) Drain {
	dr := Drain{Kind: b.label, Timeout: DefaultDrainTimeout, Ramp: []int{100}}
	a := b.attrs
	if s, ok := d.str(a["via"], raw); ok {
		dr.Via = s
	}
	if t, ok := d.duration(a["timeout"], raw, true); ok {
		dr.Timeout = t
	}
	switch b.label {
	case "haproxy":
		if eps, ok := d.strList(a["endpoints"], raw); ok {
			if len(eps) == 0 {
				d.errorf(a["endpoints"].Expr.Range(), "Invalid endpoints",
					`endpoints must name every load balancer of the pair, such as ["unix:/run/haproxy/admin.sock"].`)
			}
			for _, ep := range eps {
				if err := checkEndpoint(ep); err != nil {
					d.errorf(a["endpoints"].Expr.Range(), "Invalid endpoint", "%v.", err)
				}
			}
			dr.Endpoints = eps
		}
		if s, ok := d.nonEmpty(a["backend"], raw, "the HAProxy backend name"); ok {
			dr.Backend = s
		}
		if s, ok := d.nonEmpty(a["server"], raw, "the server name in the backend, such as host.name"); ok {
			dr.Server = s
		}
		if r, ok := d.ramp(a["ramp"], raw); ok {
			dr.Ramp = r
		}
	case "command":
		if s, ok := d.nonEmpty(a["drain"], quoted, "a command that takes the host out of the load balancer"); ok {
			dr.DrainCmd = s
		}
		if s, ok := d.nonEmpty(a["undrain"], quoted, "a command that puts the host back"); ok {
			dr.UndrainCmd = s
		}
		if s, ok := d.nonEmpty(a["sessions"], quoted, "a command that prints the host's session count"); ok {
			dr.SessionsCmd = s
		}
	case "none":
		if s, ok := d.nonEmpty(a["reason"], raw, "why this service rolls without a load balancer"); ok {
			dr.Reason = s
		}
	}
	return dr
}

func checkEndpoint(ep string) error {
	switch {
	case strings.HasPrefix(ep, "unix:"):
		if !path.IsAbs(strings.TrimPrefix(ep, "unix:")) {
			return fmt.Errorf(`endpoint %q: expected "unix:" followed by an absolute socket path`, ep)
		}
		return nil
	case strings.HasPrefix(ep, "tcp:"):
		if _, port, err := net.SplitHostPort(strings.TrimPrefix(ep, "tcp:")); err != nil || !isPort(port) {
			return fmt.Errorf(`endpoint %q: expected "tcp:HOST:PORT"`, ep)
		}
		return nil
	}
	return fmt.Errorf(`endpoint %q: expected "unix:/path/to/admin.sock" or "tcp:HOST:PORT"`, ep)
}

func isPort(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n > 0 && n < 65536
}

func (d *decoder) fileSpec(b *block, raw, quoted *hcl.EvalContext) FileSpec {
	f := FileSpec{Name: b.label, Mode: DefaultMode}
	a := b.attrs
	if s, ok := d.nonEmpty(a["source"], raw, "a path inside the repository"); ok {
		if clean, err := cleanRepoPath(s); err != nil {
			d.errorf(a["source"].Expr.Range(), "Invalid source", "source must be a path inside the repository, relative to its root; %v.", err)
		} else {
			f.Source = clean
		}
	}
	if attr := a["template"]; attr != nil {
		if v, ok := d.eval(attr, raw); ok {
			switch {
			case v.Type() == cty.Bool:
				f.Template = v.True()
			case v.Type() == cty.String && (v.AsString() == EngineHCL || v.AsString() == EngineJinja2):
				f.Template = true
				f.Engine = v.AsString()
			default:
				d.typeError(attr, attr.Expr.Range(), `true (HCL template syntax), "hcl" or "jinja2" (Ansible-style Jinja2)`, v)
			}
			if f.Template && f.Engine == "" {
				f.Engine = EngineHCL
			}
		}
	}
	if s, ok := d.nonEmpty(a["dest"], raw, "an absolute path on the host"); ok {
		if !path.IsAbs(s) || strings.HasSuffix(s, "/") {
			d.errorf(a["dest"].Expr.Range(), "Invalid dest", "dest must be the absolute path of a file on the host, such as \"/etc/app/app.conf\"; got %q.", s)
		} else {
			f.Dest = path.Clean(s)
		}
	}
	if attr := a["mode"]; attr != nil {
		if v, ok := d.eval(attr, raw); ok {
			if v.Type() == cty.String {
				m, err := strconv.ParseUint(v.AsString(), 8, 32)
				if err != nil || m > 0o7777 || v.AsString() == "" {
					d.errorf(attr.Expr.Range(), "Invalid mode", `mode must be an octal permission string such as "0644" or "0755"; got %q.`, v.AsString())
				} else {
					f.Mode = os.FileMode(m & 0o777)
					if m&0o1000 != 0 {
						f.Mode |= os.ModeSticky
					}
					if m&0o2000 != 0 {
						f.Mode |= os.ModeSetgid
					}
					if m&0o4000 != 0 {
						f.Mode |= os.ModeSetuid
					}
				}
			} else if v.Type() == cty.Number {
				d.errorf(attr.Expr.Range(), "Invalid mode", `mode must be a quoted octal string such as "0644"; a bare number is read as decimal.`)
			} else {
				d.typeError(attr, attr.Expr.Range(), `an octal permission string such as "0644"`, v)
			}
		}
	}
	if s, ok := d.str(a["owner"], raw); ok && s != "" {
		if !ownerRE.MatchString(s) {
			d.errorf(a["owner"].Expr.Range(), "Invalid owner", `owner must be "user" or "user:group"; got %q.`, s)
		} else {
			f.Owner = s
		}
	}
	if s, ok := d.str(a["role"], raw); ok {
		if clean, err := cleanRepoPath(s); err != nil {
			d.errorf(a["role"].Expr.Range(), "Invalid role", `role must be the path of a role's directory inside the repository, such as "roles/nginx"; %v.`, err)
		} else {
			f.Role = clean
			rng := a["role"].Expr.Range()
			f.roleRange = &rng
		}
	}
	if s, ok := d.str(a["validate"], quoted); ok && s != "" {
		if !strings.Contains(s, "%s") {
			d.errorf(a["validate"].Expr.Range(), "Validate command without %s",
				`validate runs against the staged copy, whose path replaces %%s; write it where the validator takes the file, such as "nginx -t -c %%s".`)
		} else {
			f.Validate = s
		}
	}
	return f
}

var sha256RE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// artifactSpec evaluates an artifact block. A source that is not a URL
// is a path on the controller, relative to the plan's directory dir.
func (d *decoder) artifactSpec(b *block, dir string, raw, quoted *hcl.EvalContext) ArtifactSpec {
	a := ArtifactSpec{Name: b.label, Keep: DefaultKeep, Mode: DefaultMode, Fetch: FetchController}
	at := b.attrs
	if s, ok := d.nonEmpty(at["source"], raw, "an http:// or https:// URL, or a path on the controller relative to the plan"); ok {
		switch {
		case strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://"):
			if u, err := url.Parse(s); err != nil || u.Host == "" {
				d.errorf(at["source"].Expr.Range(), "Invalid source", "source must be an http:// or https:// URL with a host, or a path on the controller; got %q.", s)
			} else {
				a.Source = s
			}
		case strings.Contains(s, "://"):
			d.errorf(at["source"].Expr.Range(), "Invalid source", "source must be an http:// or https:// URL, or a path on the controller relative to the plan; %q has another scheme.", s)
		default:
			if !path.IsAbs(s) && dir != "" {
				s = path.Join(dir, s)
			}
			a.Source = path.Clean(s)
		}
	}
	if s, ok := d.nonEmpty(at["sha256"], raw, "the artifact's sha256, 64 hex digits"); ok {
		s = strings.TrimPrefix(strings.ToLower(strings.TrimSpace(s)), "sha256:")
		if !sha256RE.MatchString(s) {
			d.errorf(at["sha256"].Expr.Range(), "Invalid sha256", "sha256 must be 64 hexadecimal digits (sha256sum's output, optionally written \"sha256:...\"); got %q.", s)
		} else {
			a.SHA256 = s
		}
	}
	if s, ok := d.nonEmpty(at["dest"], raw, "an absolute directory on the host"); ok {
		if !path.IsAbs(s) || path.Clean(s) == "/" {
			d.errorf(at["dest"].Expr.Range(), "Invalid dest", "dest must be an absolute directory on the host other than /, such as \"/opt/app\"; got %q.", s)
		} else {
			a.Dest = path.Clean(s)
		}
	}
	if v, ok := d.boolean(at["unpack"], raw); ok {
		a.Unpack = v
	}
	if n, ok := d.integer(at["keep"], raw, 2, 1000, "a whole number from 2 to 1000 (the current and the previous release are always kept)"); ok {
		a.Keep = n
	}
	if s, ok := d.str(at["owner"], raw); ok && s != "" {
		if !ownerRE.MatchString(s) {
			d.errorf(at["owner"].Expr.Range(), "Invalid owner", `owner must be "user" or "user:group"; got %q.`, s)
		} else {
			a.Owner = s
		}
	}
	if attr := at["mode"]; attr != nil {
		if s, ok := d.str(attr, raw); ok {
			m, err := strconv.ParseUint(s, 8, 32)
			if err != nil || m > 0o777 || s == "" {
				d.errorf(attr.Expr.Range(), "Invalid mode", `mode must be an octal permission string such as "0755"; got %q.`, s)
			} else {
				a.Mode = os.FileMode(m)
			}
		}
	}
	if s, ok := d.str(at["validate"], quoted); ok && s != "" {
		if !strings.Contains(s, "%s") {
			d.errorf(at["validate"].Expr.Range(), "Validate command without %s",
				`an artifact's validate runs against the staged release directory, whose path replaces %%s, such as "%%s/bin/app -version".`)
		} else {
			a.Validate = s
		}
	}
	if s, ok := d.str(at["fetch"], raw); ok {
		switch s {
		case FetchController, FetchHost:
			a.Fetch = s
		default:
			d.errorf(at["fetch"].Expr.Range(), "Invalid fetch", `fetch must be "controller" (rollout downloads it once and uploads it over SSH) or "host" (each host downloads it); got %q.`, s)
		}
	}
	if a.Fetch == FetchHost && a.Source != "" && !a.URL() {
		d.errorf(at["source"].Expr.Range(), "Host fetch needs a URL", `fetch = "host" has each host download the artifact, so source must be an http:// or https:// URL; got %q.`, a.Source)
	}
	return a
}

// ValidateCommand is the artifact's Validate with every %s replaced by
// the shell-quoted release directory.
func (a ArtifactSpec) ValidateCommand(releaseDir string) string {
	return strings.ReplaceAll(a.Validate, "%s", shell.Quote(releaseDir))
}

// cleanRepoPath turns a repository path into the slash-separated form git
// trees use, refusing absolute paths and paths leaving the repository.
func cleanRepoPath(p string) (string, error) {
	if p == "" {
		return "", fmt.Errorf("empty path")
	}
	if strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("%q is absolute", p)
	}
	c := path.Clean(p)
	if c == "." || c == ".." || strings.HasPrefix(c, "../") {
		return "", fmt.Errorf("%q is not a file inside the repository", p)
	}
	return c, nil
}

func (d *decoder) healthSpec(b *block, raw, quoted *hcl.EvalContext) Health {
	h := Health{
		Kind: b.label, Status: DefaultStatus, Interval: DefaultInterval,
		HealthyFor: DefaultHealthyFor, Deadline: DefaultDeadline, Timeout: DefaultProbeTimeout,
	}
	a := b.attrs
	switch b.label {
	case "http":
		if s, ok := d.nonEmpty(a["url"], raw, "an http:// or https:// URL"); ok {
			if u, err := url.Parse(s); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				d.errorf(a["url"].Expr.Range(), "Invalid url", `url must be an http:// or https:// URL with a host, such as "http://${host.address}:8080/healthz"; got %q.`, s)
			} else {
				h.URL = s
			}
		}
		if n, ok := d.integer(a["status"], raw, 100, 599, "an HTTP status code from 100 to 599"); ok {
			h.Status = n
		}
		if s, ok := d.str(a["body_matches"], raw); ok {
			if _, err := regexp.Compile(s); err != nil {
				d.errorf(a["body_matches"].Expr.Range(), "Invalid body_matches", "body_matches must be a regular expression (Go RE2 syntax); %v.", err)
			} else {
				h.BodyMatches = s
			}
		}
	case "tcp":
		if s, ok := d.nonEmpty(a["address"], raw, `"HOST:PORT"`); ok {
			if _, port, err := net.SplitHostPort(s); err != nil || !isPort(port) {
				d.errorf(a["address"].Expr.Range(), "Invalid address", `address must be "HOST:PORT", such as "${host.address}:5432"; got %q.`, s)
			} else {
				h.Address = s
			}
		}
	case "command":
		if s, ok := d.nonEmpty(a["command"], quoted, "a command that exits 0 when the service is healthy"); ok {
			h.Command = s
		}
	}
	if t, ok := d.duration(a["interval"], raw, true); ok {
		h.Interval = t
	}
	healthyOK, deadlineOK := true, true
	if t, ok := d.duration(a["healthy_for"], raw, false); ok {
		h.HealthyFor = t
	} else {
		healthyOK = a["healthy_for"] == nil
	}
	if t, ok := d.duration(a["deadline"], raw, true); ok {
		h.Deadline = t
	} else {
		deadlineOK = a["deadline"] == nil
	}
	if healthyOK && deadlineOK && h.HealthyFor >= h.Deadline {
		rng := b.def
		if attr := a["healthy_for"]; attr != nil {
			rng = attr.Expr.Range()
		} else if attr := a["deadline"]; attr != nil {
			rng = attr.Expr.Range()
		}
		d.errorf(rng, "Health window longer than deadline",
			"healthy_for (%s) must be shorter than deadline (%s), or the check can never pass; raise deadline or shorten healthy_for.", h.HealthyFor, h.Deadline)
	}
	if t, ok := d.duration(a["timeout"], raw, true); ok {
		h.Timeout = t
	}
	if s, ok := d.str(a["unit"], raw); ok {
		h.Unit = s
	}
	if s, ok := d.str(a["pid_file"], raw); ok && s != "" {
		if !path.IsAbs(s) {
			d.errorf(a["pid_file"].Expr.Range(), "Invalid pid_file", "pid_file must be an absolute path on the host; got %q.", s)
		} else {
			h.PidFile = s
		}
	}
	return h
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// renderJinjaScope renders an Ansible-style Jinja2 template for h with
// Ansible's names (h.RenderTemplate: variables are templates at every
// depth, rendered when used) and those of sc (rollout_revision, a role's
// variables, lookups). An error names the template, its line and the
// host, and, when a variable failed, the variable and the file it came
// from.
func renderJinjaScope(name string, src []byte, h *inventory.Host, sc *inventory.Scope) ([]byte, hcl.Diagnostics) {
	out, err := h.RenderTemplate(name, src, sc)
	if err == nil {
		return out, nil
	}
	var je *jinja.Error
	var ve *inventory.VarError
	msg := err.Error()
	dg := &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Jinja2 template failed"}
	switch {
	case errors.As(err, &ve):
		dg.Summary = "Jinja2 variable failed"
		je = ve.Used
		c := *ve
		c.Used = nil
		msg = c.Error()
	case errors.As(err, &je):
		msg = je.Msg
	}
	if je != nil && je.Line > 0 {
		dg.Subject = lineRange(name, src, je.Line, max(je.Col, 1))
	}
	dg.Detail = fmt.Sprintf("While rendering for host %q: %s (template %s", h.Name, msg, name)
	if je != nil && je.Line > 0 {
		dg.Detail += fmt.Sprintf(", line %d", je.Line)
	}
	dg.Detail += ")."
	return nil, hcl.Diagnostics{dg}
}
