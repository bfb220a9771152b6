package plan

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/go-git/go-git/v5"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// DefaultStateDir is state_dir when the plan does not set it.
const DefaultStateDir = "/var/lib/rollout"

func attrs(names ...string) []hcl.AttributeSchema {
	out := make([]hcl.AttributeSchema, len(names))
	for i, n := range names {
		out[i] = hcl.AttributeSchema{Name: n}
	}
	return out
}

// rootSchema is the file: exactly one plan block.
var rootSchema = &hcl.BodySchema{
	Blocks: []hcl.BlockHeaderSchema{{Type: "plan", LabelNames: []string{"name"}}},
}

// planSchema is the body of the plan block. Required attributes are
// checked by hand so the diagnostic can show an example.
var planSchema = &hcl.BodySchema{
	Attributes: attrs(
		// plan-wide
		"inventory", "hosts", "repo", "revision", "batch", "max_in_flight", "max_failures",
		"on_failure", "pause", "min_in_service", "expect_hosts",
		"allow_downtime", "become", "approve_after", "ssh_keepalive", "ssh_keepalive_count",
		// per host
		"state_dir", "diagnostics", "check", "restart", "install", "prefetch",
	),
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "drain", LabelNames: []string{"kind"}},
		{Type: "file", LabelNames: []string{"name"}},
		{Type: "artifact", LabelNames: []string{"name"}},
		{Type: "health", LabelNames: []string{"kind"}},
		{Type: "backend", LabelNames: []string{"kind"}},
		{Type: "analysis", LabelNames: []string{"kind"}},
		{Type: "hook", LabelNames: []string{"name"}},
		{Type: "notify", LabelNames: []string{"kind"}},
		{Type: "wave", LabelNames: []string{"name"}},
	},
}

var drainSchemas = map[string]*hcl.BodySchema{
	"haproxy": {Attributes: attrs("endpoints", "via", "backend", "server", "timeout", "ramp")},
	"command": {Attributes: attrs("drain", "undrain", "sessions", "via", "timeout")},
	"none":    {Attributes: attrs("reason")},
}

// drainRequired lists, per kind, attributes that must be written, with an
// example for the diagnostic.
var drainRequired = map[string][][2]string{
	"haproxy": {{"endpoints", `endpoints = ["unix:/run/haproxy/admin.sock"]`}, {"backend", `backend = "web"`}},
	"command": {{"drain", `drain = "lbctl disable ${host.name}"`}, {"undrain", `undrain = "lbctl enable ${host.name}"`}, {"sessions", `sessions = "lbctl sessions ${host.name}"`}},
	"none":    {{"reason", `reason = "internal batch workers, no load balancer"`}},
}

var healthCommon = []string{"interval", "healthy_for", "deadline", "timeout", "unit", "pid_file"}

var healthSchemas = map[string]*hcl.BodySchema{
	"http":    {Attributes: attrs(append([]string{"url", "status", "body_matches"}, healthCommon...)...)},
	"tcp":     {Attributes: attrs(append([]string{"address"}, healthCommon...)...)},
	"command": {Attributes: attrs(append([]string{"command"}, healthCommon...)...)},
	"haproxy": {Attributes: attrs(healthCommon...)},
}

var healthRequired = map[string][][2]string{
	"http":    {{"url", `url = "http://${host.address}:8080/healthz"`}},
	"tcp":     {{"address", `address = "${host.address}:5432"`}},
	"command": {{"command", `command = "appd -ping"`}},
}

var fileSchema = &hcl.BodySchema{
	Attributes: attrs("source", "template", "dest", "mode", "owner", "validate", "role"),
}

var fileRequired = [][2]string{{"source", `source = "conf/app.conf"`}, {"dest", `dest = "/etc/app/app.conf"`}}

var artifactSchema = &hcl.BodySchema{
	Attributes: attrs("source", "sha256", "dest", "unpack", "keep", "owner", "mode", "validate", "fetch"),
}

var artifactRequired = [][2]string{
	{"source", `source = "https://artifacts.example.com/app-${host.vars.app_version}.tar.gz"`},
	{"sha256", `sha256 = host.vars.app_sha256`},
	{"dest", `dest = "/opt/app"`},
}

var planNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// planImpl keeps what ForHost and Render need: the per-host expressions.
type planImpl struct {
	stateDir    *hcl.Attribute
	check       *hcl.Attribute
	restart     *hcl.Attribute
	diagnostics *hcl.Attribute
	install     *hcl.Attribute
	prefetch    *hcl.Attribute
	drain       *block
	files       []*block
	artifacts   []*block
	dir         string // the plan's directory: artifact sources on the controller are relative to it
	health      []*block

	sources sourceCache // what Render parsed from each file, shared by every host
	roles   roleCache   // roles' defaults and vars read at each revision
}

// block is a drain, file or health block kept for per-host evaluation.
type block struct {
	label  string // drain/health kind, file name
	attrs  hcl.Attributes
	blocks hcl.Blocks // nested blocks, where the schema has some
	def    hcl.Range
}

// Load reads filename and parses it with Parse.
func Load(filename string) (*Plan, hcl.Diagnostics) {
	src, err := os.ReadFile(filename)
	if err != nil {
		return nil, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Cannot read plan file",
			Detail:   fmt.Sprintf("read %s: %v", filename, err),
		}}
	}
	return Parse(filename, src)
}

// Parse decodes a plan file. filename names the file in diagnostics and
// anchors relative inventory and repo paths. It reports every problem it
// finds, each with a source range. The plan is nil when there is any
// error; warnings come back with a usable plan.
//
// Plan-wide attributes are evaluated here with plan.name in scope;
// per-host attributes are checked as far as they can be without a host
// (types, and the values of those that do not use host.* or revision) and
// kept for ForHost.
func Parse(filename string, src []byte) (*Plan, hcl.Diagnostics) {
	f, diags := hclsyntax.ParseConfig(src, filename, hcl.InitialPos)
	if diags.HasErrors() {
		return nil, diags
	}
	content, cdiags := f.Body.Content(rootSchema)
	diags = append(diags, cdiags...)

	var plans []*hcl.Block
	for _, b := range content.Blocks {
		if b.Type == "plan" {
			plans = append(plans, b)
		}
	}
	if len(plans) == 0 {
		start := hcl.Range{Filename: filename, Start: hcl.InitialPos, End: hcl.InitialPos}
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Missing plan block",
			Detail:   `A plan file holds exactly one block: plan "NAME" { ... }.`,
			Subject:  &start,
		})
		return nil, diags
	}
	for _, extra := range plans[1:] {
		rng := extra.DefRange
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Duplicate plan block",
			Detail:   fmt.Sprintf("A plan file holds exactly one plan block; the first is at %s.", plans[0].DefRange),
			Subject:  &rng,
		})
	}
	p, pdiags := decodePlan(filename, plans[0])
	diags = append(diags, pdiags...)
	sortByPosition(diags)
	if diags.HasErrors() {
		return nil, diags
	}
	return p, diags
}

func decodePlan(filename string, blk *hcl.Block) (*Plan, hcl.Diagnostics) {
	d := &decoder{}
	p := &Plan{Name: blk.Labels[0], Filename: filename, OnFailure: "halt", impl: &planImpl{}}
	if !planNameRE.MatchString(p.Name) {
		d.errorf(blk.LabelRanges[0], "Invalid plan name",
			"The plan name names its state directory and lock, so it must start with a letter or digit and hold only letters, digits, '.', '_' and '-'; got %q.", p.Name)
	}
	if dir, err := filepath.Abs(filepath.Dir(filename)); err == nil {
		p.Dir = dir
	} else {
		p.Dir = filepath.Dir(filename)
	}

	content, cdiags := blk.Body.Content(planSchema)
	d.add(cdiags)
	a := content.Attributes

	for _, req := range [][2]string{
		{"hosts", `hosts = "web"`},
		{"revision", `revision = "v1.4.2" (a tag or a full commit SHA)`},
		{"restart", `restart = "systemctl restart appd"`},
	} {
		if a[req[0]] == nil && !misspelled(cdiags, req[0]) {
			d.errorf(blk.DefRange, "Missing "+req[0],
				"plan %q must set %s, for example: %s.", p.Name, req[0], req[1])
		}
	}

	ctx := planContext(p.Name)
	if s, ok := d.planString(a["inventory"], ctx, "the path of an Ansible inventory file"); ok {
		p.Inventory = p.abs(s)
	}
	if s, ok := d.planString(a["hosts"], ctx, `a host pattern such as "web" or "web:&prod"`); ok {
		p.Hosts = s
	}
	if s, ok := d.planString(a["revision"], ctx, "a tag or a full 40-character commit SHA"); ok {
		if strings.ContainsAny(s, " \t\n") {
			d.errorf(a["revision"].Expr.Range(), "Invalid revision", "revision must be a tag or a full commit SHA; %q holds white space.", s)
		}
		p.Revision = s
	}
	if s, ok := d.planString(a["repo"], ctx, "the path of a git repository"); ok {
		p.Repo = p.abs(s)
	} else if a["repo"] == nil {
		if root, found := repoContaining(p.Dir); found {
			p.Repo = root
		} else {
			d.warnf(blk.DefRange, "No git repository",
				"No git repository contains %s, and the plan sets no repo; set repo to the repository holding the deployable files.", p.Dir)
		}
	}
	if d.planWide(a["batch"]) {
		if qs, ok := d.batch(a["batch"], ctx); ok {
			p.Batch = qs
		}
	}
	if d.planWide(a["max_in_flight"]) {
		if v, ok := d.eval(a["max_in_flight"], ctx); ok {
			if q, ok := d.quantityValue(a["max_in_flight"], a["max_in_flight"].Expr.Range(), v, 1); ok {
				p.MaxInFlight = q
			}
		}
	}
	if a["batch"] != nil && a["max_in_flight"] != nil {
		rng := a["max_in_flight"].NameRange
		d.errorf(rng, "Both batch and max_in_flight",
			"The plan sets both batch (line %d) and max_in_flight (line %d): batch rolls in batches that each wait for their slowest host, max_in_flight keeps a rolling window of that many hosts out at a time. Keep one of them.",
			a["batch"].NameRange.Start.Line, rng.Start.Line)
	}
	if d.planWide(a["max_failures"]) {
		if q, ok := d.quantity(a["max_failures"], ctx); ok {
			p.MaxFailures = q
		}
	}
	if s, ok := d.planString(a["on_failure"], ctx, `"rollback", "rollback_all" or "halt"`); ok {
		if s != "rollback" && s != "rollback_all" && s != "halt" {
			d.errorf(a["on_failure"].Expr.Range(), "Invalid on_failure",
				`on_failure must be "rollback" (failed hosts go back to their previous revision), "rollback_all" (the failed hosts and every host the run already changed go back) or "halt" (they stay drained for inspection); got %q.`, s)
		} else {
			p.OnFailure = s
		}
	}
	if d.planWide(a["pause"]) {
		if dur, ok := d.duration(a["pause"], ctx, false); ok {
			p.Pause = dur
		}
	}
	if d.planWide(a["min_in_service"]) {
		if q, ok := d.quantity(a["min_in_service"], ctx); ok {
			p.MinInService = q
		}
	}
	if d.planWide(a["expect_hosts"]) {
		p.ExpectHosts = d.expectHosts(a["expect_hosts"], ctx)
	}
	if d.planWide(a["allow_downtime"]) {
		p.AllowDowntime, _ = d.boolean(a["allow_downtime"], ctx)
	}
	if d.planWide(a["become"]) {
		p.Become, _ = d.boolean(a["become"], ctx)
	}
	if d.planWide(a["ssh_keepalive"]) {
		p.SSHKeepalive, _ = d.duration(a["ssh_keepalive"], ctx, true)
	}
	if d.planWide(a["ssh_keepalive_count"]) {
		p.SSHKeepaliveCount, _ = d.integer(a["ssh_keepalive_count"], ctx, 1, 100, "a whole number from 1 to 100")
	}
	if d.planWide(a["approve_after"]) {
		p.ApproveAfter = d.approveAfter(a["approve_after"], ctx)
	}

	impl := p.impl
	impl.stateDir, impl.check, impl.restart, impl.diagnostics = a["state_dir"], a["check"], a["restart"], a["diagnostics"]
	impl.install, impl.prefetch, impl.dir = a["install"], a["prefetch"], p.Dir

	fileNames := map[string]hcl.Range{}
	artifactNames := map[string]hcl.Range{}
	sawHealth := false
	for _, c := range cdiags { // a health block without its kind label is its own error too
		if strings.HasSuffix(c.Summary, " for health") {
			sawHealth = true
		}
	}
	var analysisBlocks []*hcl.Block
	hookNames := map[string]hcl.Range{}
	waveNames := map[string]hcl.Range{}
	for _, b := range content.Blocks {
		switch b.Type {
		case "drain":
			if impl.drain != nil {
				d.errorf(b.DefRange, "Duplicate drain block",
					"A plan has at most one drain block; the first is at %s.", impl.drain.def)
				continue
			}
			impl.drain = d.labelled(b, drainSchemas, drainRequired, "drain")
			p.HasDrain = true
		case "backend":
			if p.Backend != nil {
				d.errorf(b.DefRange, "Duplicate backend block",
					"A plan has at most one backend block; the first is at %s.", p.Backend.DefRange)
				continue
			}
			p.Backend = d.backend(p, b)
		case "analysis":
			analysisBlocks = append(analysisBlocks, b)
		case "hook":
			if h := d.hook(p, b, hookNames); h != nil {
				p.Hooks = append(p.Hooks, h)
			}
		case "notify":
			if n := d.notify(p, b); n != nil {
				p.Notify = append(p.Notify, n)
			}
		case "wave":
			if w := d.wave(p, b, waveNames); w != nil {
				p.Waves = append(p.Waves, w)
			}
		case "health":
			sawHealth = true // a health block of an unknown kind is its own error, not "no health block"
			if h := d.labelled(b, healthSchemas, healthRequired, "health"); h != nil {
				impl.health = append(impl.health, h)
			}
		case "file":
			name := b.Labels[0]
			if first, dup := fileNames[name]; dup {
				d.errorf(b.LabelRanges[0], "Duplicate file block",
					"Each file block needs its own name; %q is already used at %s.", name, first)
				continue
			}
			fileNames[name] = b.DefRange
			bc, bd := b.Body.Content(fileSchema)
			d.add(bd)
			d.require(b, bc.Attributes, fileRequired, bd)
			impl.files = append(impl.files, &block{label: name, attrs: bc.Attributes, def: b.DefRange})
		case "artifact":
			name := b.Labels[0]
			if first, dup := artifactNames[name]; dup {
				d.errorf(b.LabelRanges[0], "Duplicate artifact block",
					"Each artifact block needs its own name; %q is already used at %s.", name, first)
				continue
			}
			artifactNames[name] = b.DefRange
			bc, bd := b.Body.Content(artifactSchema)
			d.add(bd)
			d.require(b, bc.Attributes, artifactRequired, bd)
			impl.artifacts = append(impl.artifacts, &block{label: name, attrs: bc.Attributes, def: b.DefRange})
		}
	}
	d.checkWaves(p.Waves)
	if len(p.Waves) > 0 && a["max_in_flight"] != nil {
		d.errorf(a["max_in_flight"].NameRange, "Waves with max_in_flight",
			"A plan with wave blocks rolls each wave in batches (the wave's batch or the plan's); max_in_flight does not apply to waves yet. Use batch instead.")
	}
	for i, b := range analysisBlocks {
		if i > 0 {
			d.errorf(b.DefRange, "Duplicate analysis block",
				"A plan has at most one analysis block; the first is at %s.", analysisBlocks[0].DefRange)
			continue
		}
		p.Analysis = d.analysis(p, b, ctx, impl.drain)
	}
	if len(impl.files) == 0 && len(impl.artifacts) == 0 && impl.install == nil {
		d.errorf(blk.DefRange, "Missing file block",
			`plan %q must deploy something: at least one file "NAME" block with source (a path in the repository) and dest (the path on the host), an artifact "NAME" block, or an install command.`, p.Name)
	}
	if len(impl.health) == 0 && !sawHealth {
		d.warnf(blk.DefRange, "No health block",
			"Without a health block a host returns to the load balancer right after its restart, unchecked; add one, for example health \"tcp\" { address = \"${host.address}:8080\" }.")
	}
	for _, h := range impl.health {
		if h.label == "haproxy" && (impl.drain == nil || impl.drain.label != "haproxy") {
			d.errorf(h.def, "Health check needs an haproxy drain",
				`health "haproxy" reads the server's state from the load balancer named in a drain "haproxy" block, and this plan has none.`)
		}
	}

	// Check per-host attributes as far as possible without a host.
	d.hostSpec(impl, placeholderContext(p.Name, false), placeholderContext(p.Name, true))
	return p, d.diags
}

// abs makes a plan-relative path absolute.
func (p *Plan) abs(s string) string {
	if s == "" || filepath.IsAbs(s) {
		return s
	}
	return filepath.Join(p.Dir, s)
}

// repoContaining finds the root of the git work tree holding dir.
func repoContaining(dir string) (string, bool) {
	r, err := git.PlainOpenWithOptions(dir, &git.PlainOpenOptions{DetectDotGit: true, EnableDotGitCommonDir: true})
	if err != nil {
		return "", false
	}
	wt, err := r.Worktree()
	if err != nil {
		return "", false
	}
	return wt.Filesystem.Root(), true
}

// require reports each missing attribute of a block. An attribute the
// block's content diagnostics already offer as "did you mean" (sorce for
// source) is not also reported missing: one mistake, one diagnostic.
func (d *decoder) require(b *hcl.Block, got hcl.Attributes, required [][2]string, content hcl.Diagnostics) {
	for _, req := range required {
		if got[req[0]] == nil && !misspelled(content, req[0]) {
			d.errorf(b.DefRange, "Missing "+req[0],
				"%s %q must set %s, for example: %s.", b.Type, b.Labels[0], req[0], req[1])
		}
	}
}

// misspelled reports whether diags hold an "Unsupported argument" whose
// suggestion is name: the attribute is there, under a wrong name.
func misspelled(diags hcl.Diagnostics, name string) bool {
	want := fmt.Sprintf("Did you mean %q?", name)
	for _, d := range diags {
		if d.Summary == "Unsupported argument" && strings.Contains(d.Detail, want) {
			return true
		}
	}
	return false
}

// labelled decodes a drain or health block whose label is its kind.
func (d *decoder) labelled(b *hcl.Block, schemas map[string]*hcl.BodySchema, required map[string][][2]string, what string) *block {
	kind := b.Labels[0]
	schema, ok := schemas[kind]
	if !ok {
		var kinds []string
		for _, k := range sortedKeys(schemas) {
			kinds = append(kinds, strconv.Quote(k))
		}
		d.errorf(b.LabelRanges[0], "Unknown "+what+" kind",
			"A %s block's label is its kind, one of %s; got %q.", what, strings.Join(kinds, ", "), kind)
		return nil
	}
	content, diags := b.Body.Content(schema)
	d.add(diags)
	d.require(b, content.Attributes, required[kind], diags)
	return &block{label: kind, attrs: content.Attributes, blocks: content.Blocks, def: b.DefRange}
}

// planWide refuses host.* and revision in a plan-wide attribute. It
// returns whether attr may be evaluated.
func (d *decoder) planWide(attr *hcl.Attribute) bool {
	if attr == nil {
		return false
	}
	ok := true
	for _, tr := range attr.Expr.Variables() {
		switch root := tr.RootName(); root {
		case "host", "revision":
			d.errorf(tr.SourceRange(), "Per-host value in a plan-wide attribute",
				"%s is evaluated once for the whole plan, before any host is chosen, so only plan.name is available in it; %s can be used in per-host attributes (state_dir, check, restart, diagnostics, and the drain, file and health blocks).", attr.Name, root)
			ok = false
		}
	}
	return ok
}

func (d *decoder) planString(attr *hcl.Attribute, ctx *hcl.EvalContext, what string) (string, bool) {
	if !d.planWide(attr) {
		return "", false
	}
	return d.nonEmpty(attr, ctx, what)
}

func (d *decoder) expectHosts(attr *hcl.Attribute, ctx *hcl.EvalContext) *Range {
	v, ok := d.eval(attr, ctx)
	if !ok {
		return nil
	}
	switch v.Type() {
	case cty.Number:
		n, ok := d.wholeNumber(attr, attr.Expr.Range(), v, 1, maxQuantity, `a host count of at least 1, or a range string such as "10..14"`)
		if !ok {
			return nil
		}
		return &Range{Min: n, Max: n}
	case cty.String:
		r, err := parseRange(v.AsString())
		if err != nil {
			d.errorf(attr.Expr.Range(), "Invalid expect_hosts", `expect_hosts must be a host count such as 12 or a range such as "10..14"; %v.`, err)
			return nil
		}
		return &r
	default:
		d.typeError(attr, attr.Expr.Range(), `a host count such as 12 or a range string such as "10..14"`, v)
		return nil
	}
}

func (d *decoder) approveAfter(attr *hcl.Attribute, ctx *hcl.EvalContext) []int {
	v, ok := d.eval(attr, ctx)
	if !ok {
		return nil
	}
	vals, rngs, isList := d.elements(attr, v)
	if !isList {
		d.typeError(attr, attr.Expr.Range(), "a list of batch numbers (the first batch is 1), such as [1]", v)
		return nil
	}
	out := make([]int, 0, len(vals))
	for i, e := range vals {
		if n, ok := d.wholeNumber(attr, rngs[i], e, 1, maxQuantity, "a list of batch numbers, the first batch being 1"); ok {
			out = append(out, n)
		}
	}
	sort.Ints(out)
	return out
}

// sortByPosition orders diagnostics as they appear in the file, so a
// reader can fix them top to bottom.
func sortByPosition(diags hcl.Diagnostics) {
	sort.SliceStable(diags, func(i, j int) bool {
		a, b := diags[i].Subject, diags[j].Subject
		switch {
		case a == nil || b == nil:
			return a == nil && b != nil
		case a.Filename != b.Filename:
			return a.Filename < b.Filename
		}
		return a.Start.Byte < b.Start.Byte
	})
}
