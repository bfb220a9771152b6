package plan

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/hashicorp/hcl/v2"
)

// posOf is the line:col where needle first occurs in src, computed
// independently of HCL.
func posOf(t *testing.T, src, needle string) string {
	t.Helper()
	i := strings.Index(src, needle)
	if i < 0 {
		t.Fatalf("test bug: %q not in source", needle)
	}
	line := strings.Count(src[:i], "\n") + 1
	col := i - strings.LastIndex(src[:i], "\n")
	return fmt.Sprintf("%d:%d", line, col)
}

func diagPos(d *hcl.Diagnostic) string {
	if d.Subject == nil {
		return "no subject"
	}
	return fmt.Sprintf("%s:%d:%d", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column)
}

func TestParseSpecExample(t *testing.T) {
	src, err := os.ReadFile("testdata/spec.hcl")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "rollout.hcl")
	p, diags := Parse(file, src)
	if diags.HasErrors() {
		t.Fatalf("diagnostics: %v", diags)
	}
	want := &Plan{
		Name:         "web",
		Filename:     file,
		Dir:          dir,
		Inventory:    filepath.Join(dir, "inventory.ini"),
		Hosts:        "web",
		Repo:         dir,
		Revision:     "9fceb02d0ae598e95dc970b74767f19372d61af8",
		Batch:        []Quantity{{N: 1, Set: true}, {N: 25, Percent: true, Set: true}},
		MaxFailures:  Quantity{N: 0, Set: true},
		OnFailure:    "rollback",
		Pause:        0,
		MinInService: Quantity{N: 75, Percent: true, Set: true},
		ExpectHosts:  &Range{Min: 12, Max: 12},
		HasDrain:     true,
	}
	got := *p
	got.impl = nil
	if !reflect.DeepEqual(&got, want) {
		t.Errorf("plan:\n got %+v\nwant %+v", got, *want)
	}
	if len(diags) != 0 {
		t.Errorf("unexpected warnings: %v", diags)
	}
}

func TestParseRepoDefault(t *testing.T) {
	root := t.TempDir()
	if _, err := git.PlainInit(root, false); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(root, "deploy", "web")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	noRepo := t.TempDir()
	tests := []struct {
		name     string
		file     string
		repoLine string
		wantRepo string
		wantWarn bool
	}{
		{"found by walking up", filepath.Join(sub, "rollout.hcl"), "", root, false},
		{"relative to the plan file", filepath.Join(sub, "rollout.hcl"), `repo = "../../other"`, filepath.Join(root, "other"), false},
		{"absolute", filepath.Join(sub, "rollout.hcl"), `repo = "/srv/repo"`, "/srv/repo", false},
		{"none found", filepath.Join(noRepo, "rollout.hcl"), "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, diags := Parse(tt.file, []byte(minimal(tt.repoLine)))
			if diags.HasErrors() {
				t.Fatalf("diagnostics: %v", diags)
			}
			if p.Repo != tt.wantRepo {
				t.Errorf("Repo = %q, want %q", p.Repo, tt.wantRepo)
			}
			if p.Inventory != filepath.Join(filepath.Dir(tt.file), "inv.ini") {
				t.Errorf("Inventory = %q, not relative to the plan file", p.Inventory)
			}
			gotWarn := len(diags) == 1 && diags[0].Severity == hcl.DiagWarning && strings.Contains(diags[0].Detail, "set repo")
			if gotWarn != tt.wantWarn {
				t.Errorf("warning = %v, want %v (%v)", gotWarn, tt.wantWarn, diags)
			}
		})
	}
}

// minimal is a valid plan with extra text on line 2.
func minimal(extra string) string {
	return `plan "web" {
` + extra + `
  inventory = "inv.ini"
  hosts     = "web"
  revision  = "v1"
  restart   = "systemctl restart appd"
  file "a" {
    source = "a.conf"
    dest   = "/etc/a.conf"
  }
  health "tcp" {
    address = "${host.address}:80"
  }
}
`
}

func TestParseDefaults(t *testing.T) {
	p, diags := Parse("/srv/plans/rollout.hcl", []byte(minimal(`repo = "/srv/repo"`)))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if p.OnFailure != "halt" || p.Batch != nil || p.MaxFailures.Set || p.MinInService.Set ||
		p.ExpectHosts != nil || p.Pause != 0 || p.AllowDowntime || p.Become || p.HasDrain {
		t.Errorf("defaults wrong: %+v", *p)
	}
	if p.FailureLimit(10) != 0 || p.MinServing(10) != 1 {
		t.Errorf("FailureLimit=%d MinServing=%d, want 0 and 1", p.FailureLimit(10), p.MinServing(10))
	}
}

func TestParsePlanWideValues(t *testing.T) {
	tests := []struct {
		extra string
		check func(p *Plan) bool
	}{
		{`batch = 3`, func(p *Plan) bool { return reflect.DeepEqual(p.Batch, []Quantity{{N: 3, Set: true}}) }},
		{`batch = "1,25%"`, func(p *Plan) bool {
			return reflect.DeepEqual(p.Batch, []Quantity{{N: 1, Set: true}, {N: 25, Percent: true, Set: true}})
		}},
		{`max_failures = "10%"`, func(p *Plan) bool { return p.MaxFailures == Quantity{N: 10, Percent: true, Set: true} }},
		{`pause = "1m30s"`, func(p *Plan) bool { return p.Pause == 90*time.Second }},
		{`ssh_keepalive = "2s"`, func(p *Plan) bool { return p.SSHKeepalive == 2*time.Second && p.SSHKeepaliveCount == 0 }},
		{`ssh_keepalive_count = 5`, func(p *Plan) bool { return p.SSHKeepaliveCount == 5 && p.SSHKeepalive == 0 }},
		{`expect_hosts = "10..14"`, func(p *Plan) bool { return *p.ExpectHosts == Range{10, 14} }},
		{`allow_downtime = true`, func(p *Plan) bool { return p.AllowDowntime }},
		{`become = true`, func(p *Plan) bool { return p.Become }},
		{`approve_after = [3, 1]`, func(p *Plan) bool { return reflect.DeepEqual(p.ApproveAfter, []int{1, 3}) }},
		{`hosts = "${plan.name}:&prod"`, func(p *Plan) bool { return p.Hosts == "web:&prod" }},
		{`drain "none" { reason = "no lb" }`, func(p *Plan) bool { return p.HasDrain }},
	}
	for _, tt := range tests {
		t.Run(tt.extra, func(t *testing.T) {
			src := minimal(`repo = "/r"`)
			if strings.HasPrefix(tt.extra, "hosts") {
				src = strings.Replace(src, `hosts     = "web"`, tt.extra, 1)
			} else {
				src = strings.Replace(src, `repo = "/r"`, `repo = "/r"`+"\n"+tt.extra, 1)
			}
			p, diags := Parse("rollout.hcl", []byte(src))
			if diags.HasErrors() {
				t.Fatal(diags)
			}
			if !tt.check(p) {
				t.Errorf("unexpected plan %+v", *p)
			}
		})
	}
}

func TestParseDiagnostics(t *testing.T) {
	tests := []struct {
		name    string
		src     string // whole file, or extra text for minimal when it has no "plan"
		at      string // the source text the diagnostic's subject starts at
		summary string
		detail  string
	}{
		{"unknown attribute", `colour = "red"`, `colour`, "Unsupported argument", `"colour" is not expected`},
		{"unknown block", "thing {\n}", `thing`, "Unsupported block type", `Blocks of type "thing" are not expected`},
		{"unknown top-level block", "foo \"x\" {\n}\n" + minimal(""), `foo`, "Unsupported block type", `"foo"`},
		{"wrong type bool", `allow_downtime = "yes"`, `"yes"`, "Incorrect attribute value type", "allow_downtime must be true or false; got string"},
		{"wrong type batch", `batch = true`, `true`, "Incorrect attribute value type", "batch must be a host count"},
		{"wrong type approve_after", `approve_after = "2"`, `"2"`, "Incorrect attribute value type", "list of batch numbers"},
		{"approve_after zero", `approve_after = [1, 0]`, `0]`, "Invalid approve_after", "first batch being 1"},
		{"bad on_failure", `on_failure = "retry"`, `"retry"`, "Invalid on_failure", `"rollback"`},
		{"bad hook at", "hook \"m\" {\nat = \"before\"\ncommand = \"true\"\n}", `"before"`, "Unknown hook time", `"before_run"`},
		{"hook without command", "hook \"m\" {\nat = \"before_run\"\n}", `hook "m"`, "Missing command", `command = "./migrate up"`},
		{"hook per host", "hook \"m\" {\nat = \"before_run\"\ncommand = \"echo ${host.name}\"\n}", `host.name`, "Per-host value in a plan-wide attribute", "command is evaluated once for the run"},
		{"duplicate hook", "hook \"m\" {\nat = \"before_run\"\ncommand = \"a\"\n}\nhook \"m\" {\nat = \"after_run\"\ncommand = \"b\"\n}", "\"m\" {\nat = \"after_run\"", "Duplicate hook block", `"m" is already used`},
		{"bad drain kind", "drain \"nginx\" {\n}", `"nginx"`, "Unknown drain kind", `one of "command", "haproxy", "none"; got "nginx"`},
		{"bad health kind", "health \"icmp\" {\n}", `"icmp"`, "Unknown health kind", `one of "command", "haproxy", "http", "tcp"`},
		{"duplicate drain", "drain \"none\" { reason = \"a\" }\ndrain \"none\" { reason = \"b\" }", `drain "none" { reason = "b"`, "Duplicate drain block", "the first is at rollout.hcl:3,"},
		{"duplicate file", "file \"a\" {\nsource = \"b\"\ndest = \"/b\"\n}", "\"a\" {\n    source = \"a.conf\"", "Duplicate file block", `"a" is already used`},
		{"bad duration", `pause = "5 minutes"`, `"5 minutes"`, "Invalid duration", `pause must be a duration such as "30s"`},
		{"bare number duration", `pause = 5`, `5`, "Invalid duration", "a bare number has no unit"},
		{"negative duration", `pause = "-1s"`, `"-1s"`, "Invalid duration", "zero or more"},
		{"zero ssh_keepalive", `ssh_keepalive = "0s"`, `"0s"`, "Invalid duration", "ssh_keepalive must be more than zero"},
		{"ssh_keepalive_count zero", `ssh_keepalive_count = 0`, `0`, "Invalid ssh_keepalive_count", "from 1 to 100"},
		{"bad quantity", `max_failures = "ten"`, `"ten"`, "Invalid max_failures", `percentage string such as "25%"`},
		{"fractional quantity", `max_failures = 1.5`, `1.5`, "Invalid max_failures", "whole number"},
		{"batch percent over 100", `batch = [1, "150%"]`, `"150%"`, "Invalid batch", "at most 100%"},
		{"batch zero", `batch = [0]`, `0]`, "Invalid batch", "from 1 to"},
		{"batch empty list", `batch = []`, `[]`, "Invalid batch", "at least one size"},
		{"bad expect_hosts", `expect_hosts = "14..10"`, `"14..10"`, "Invalid expect_hosts", "low <= high"},
		{"host in plan-wide", `batch = host.vars.batch`, `host.vars.batch`, "Per-host value in a plan-wide attribute", "only plan.name is available"},
		{"revision in plan-wide", `pause = revision`, `revision`, "Per-host value in a plan-wide attribute", "pause is evaluated once"},
		{"unknown variable", `state_dir = "/x/${hots.name}"`, `hots.name`, "Unknown variable", `"hots"`},
		{"unknown host attribute", `state_dir = "/x/${host.nmae}"`, `.nmae`, "Unsupported attribute", `"nmae"`},
		{"relative state_dir", `state_dir = "state"`, `"state"`, "Invalid state_dir", "absolute directory"},
		{"empty restart", strings.Replace(minimal(""), `"systemctl restart appd"`, `""`, 1), `""`, "Empty restart", "restart must not be empty"},
		{"bad mode", "file \"m\" {\nsource = \"m\"\ndest = \"/m\"\nmode = \"0999\"\n}", `"0999"`, "Invalid mode", `octal permission string such as "0644"`},
		{"numeric mode", "file \"m\" {\nsource = \"m\"\ndest = \"/m\"\nmode = 644\n}", `644`, "Invalid mode", "read as decimal"},
		{"validate without %s", "file \"m\" {\nsource = \"m\"\ndest = \"/m\"\nvalidate = \"nginx -t\"\n}", `"nginx -t"`, "Validate command without %s", "whose path replaces %s"},
		{"relative dest", "file \"m\" {\nsource = \"m\"\ndest = \"etc/m\"\n}", `"etc/m"`, "Invalid dest", "absolute path"},
		{"source outside repo", "file \"m\" {\nsource = \"../m\"\ndest = \"/m\"\n}", `"../m"`, "Invalid source", "not a file inside the repository"},
		{"bad owner", "file \"m\" {\nsource = \"m\"\ndest = \"/m\"\nowner = \"a b\"\n}", `"a b"`, "Invalid owner", `"user:group"`},
		{"template not bool or engine", "file \"m\" {\nsource = \"m\"\ndest = \"/m\"\ntemplate = \"maybe\"\n}", `"maybe"`, "Incorrect attribute value type", "template must be true (HCL template syntax), \"hcl\" or \"jinja2\""},
		{"unknown file attribute", "file \"m\" {\nsource = \"m\"\ndest = \"/m\"\nsrc = \"x\"\n}", `src =`, "Unsupported argument", `"src" is not expected`},
		{"file missing dest", "file \"m\" {\nsource = \"m\"\n}", `file "m"`, "Missing dest", `file "m" must set dest`},
		{"ramp not ending at 100", "drain \"haproxy\" {\nendpoints = [\"unix:/s\"]\nbackend = \"b\"\nramp = [\"10%\", \"50%\"]\n}", `["10%", "50%"]`, "Invalid ramp", "must end at 100% (full weight); it ends at 50%"},
		{"ramp not increasing", "drain \"haproxy\" {\nendpoints = [\"unix:/s\"]\nbackend = \"b\"\nramp = [\"50%\", \"10%\", \"100%\"]\n}", `"10%", "100%"]`, "Invalid ramp", "10% follows 50%"},
		{"ramp over 100", "drain \"haproxy\" {\nendpoints = [\"unix:/s\"]\nbackend = \"b\"\nramp = [50, 200]\n}", `200]`, "Invalid ramp", "from 1 to 100"},
		{"haproxy missing backend", "drain \"haproxy\" {\nendpoints = [\"unix:/s\"]\n}", `drain "haproxy"`, "Missing backend", `drain "haproxy" must set backend`},
		{"bad endpoint", "drain \"haproxy\" {\nendpoints = [\"http://lb\"]\nbackend = \"b\"\n}", `["http://lb"]`, "Invalid endpoint", `"tcp:HOST:PORT"`},
		{"ramp in command drain", "drain \"command\" {\ndrain = \"a\"\nundrain = \"b\"\nsessions = \"c\"\nramp = [100]\n}", `ramp`, "Unsupported argument", `"ramp" is not expected`},
		{"command drain missing sessions", "drain \"command\" {\ndrain = \"a\"\nundrain = \"b\"\n}", `drain "command"`, "Missing sessions", `sessions = "lbctl sessions`},
		{"none drain without reason", "drain \"none\" {\n}", `drain "none"`, "Missing reason", "must set reason"},
		{"bad health interval", "health \"http\" {\nurl = \"http://x/\"\ninterval = \"1 sec\"\n}", `"1 sec"`, "Invalid duration", "interval must be a duration"},
		{"zero health timeout", "health \"http\" {\nurl = \"http://x/\"\ntimeout = \"0s\"\n}", `"0s"`, "Invalid duration", "more than zero"},
		{"healthy_for beyond deadline", "health \"http\" {\nurl = \"http://x/\"\nhealthy_for = \"5m\"\n}", `"5m"`, "Health window longer than deadline", "healthy_for (5m0s) must be shorter than deadline (2m0s)"},
		{"bad status", "health \"http\" {\nurl = \"http://x/\"\nstatus = 700\n}", `700`, "Invalid status", "from 100 to 599"},
		{"bad url", "health \"http\" {\nurl = \"localhost:8080\"\n}", `"localhost:8080"`, "Invalid url", "http:// or https://"},
		{"bad regexp", "health \"http\" {\nurl = \"http://x/\"\nbody_matches = \"(\"\n}", `"("`, "Invalid body_matches", "regular expression"},
		{"url in tcp health", "health \"tcp\" {\naddress = \"a:1\"\nurl = \"http://x\"\n}", `url =`, "Unsupported argument", `"url" is not expected`},
		{"bad tcp address", "health \"tcp\" {\naddress = \"nohost\"\n}", `"nohost"`, "Invalid address", `"HOST:PORT"`},
		{"haproxy health without haproxy drain", "drain \"none\" { reason = \"x\" }\nhealth \"haproxy\" {\n}", `health "haproxy"`, "Health check needs an haproxy drain", `drain "haproxy"`},
		{"bad plan name", strings.Replace(minimal(""), `"web"`, `"web/1"`, 1), `"web/1"`, "Invalid plan name", `got "web/1"`},
		{"no plan block", "inventory = \"x\"\n", `inventory`, "Unsupported argument", `"inventory" is not expected`},
		{"two plan blocks", minimal("") + "plan \"db\" {\n}\n", `plan "db"`, "Duplicate plan block", "the first is at rollout.hcl:1,"},
		{"syntax error", "plan \"web\" {\n  hosts = \n}\n", "\n}\n", "Invalid expression", "Expected the start of an expression"},
		{"missing hosts", strings.Replace(minimal(""), `hosts     = "web"`, "", 1), `plan "web"`, "Missing hosts", "must set hosts"},
		{"missing revision", strings.Replace(minimal(""), `revision  = "v1"`, "", 1), `plan "web"`, "Missing revision", "a tag or a full commit SHA"},
		{"missing restart", strings.Replace(minimal(""), `restart   = "systemctl restart appd"`, "", 1), `plan "web"`, "Missing restart", "must set restart"},
		{"missing file", strings.Replace(minimal(""), "file \"a\" {\n    source = \"a.conf\"\n    dest   = \"/etc/a.conf\"\n  }", "", 1), `plan "web"`, "Missing file block", "at least one file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := tt.src
			if !strings.Contains(src, `plan "`) && tt.name != "no plan block" {
				src = minimal(`repo = "/r"` + "\n" + tt.src)
			}
			wantDiag(t, src, tt.at, tt.summary, tt.detail)
		})
	}
}

// wantDiag parses src, which must be refused with an error diagnostic
// summary starting at the text at, whose detail contains detail.
func wantDiag(t *testing.T, src, at, summary, detail string) {
	t.Helper()
	p, diags := Parse("rollout.hcl", []byte(src))
	if p != nil {
		t.Errorf("got a plan despite errors")
	}
	wantPos := "rollout.hcl:" + posOf(t, src, at)
	for _, d := range diags {
		if d.Summary == summary {
			if got := diagPos(d); got != wantPos {
				t.Errorf("%s at %s, want %s", d.Summary, got, wantPos)
			}
			if !strings.Contains(d.Detail, detail) {
				t.Errorf("detail %q does not contain %q", d.Detail, detail)
			}
			if d.Severity != hcl.DiagError {
				t.Errorf("severity %v, want error", d.Severity)
			}
			return
		}
	}
	t.Errorf("no %q diagnostic in:\n%v", summary, diagsText(diags))
}

func diagsText(diags hcl.Diagnostics) string {
	var b strings.Builder
	for _, d := range diags {
		fmt.Fprintf(&b, "  %s: %s; %s\n", diagPos(d), d.Summary, d.Detail)
	}
	return b.String()
}

// A few positions written out by hand, as a user would read them.
func TestParseDiagnosticPositionsLiteral(t *testing.T) {
	src := `plan "web" {
  repo      = "/r"
  inventory = "inv.ini"
  hosts     = "web"
  revision  = "v1"
  restart   = "systemctl restart appd"
  on_failure = "retry"
  file "a" {
    source = "a.conf"
    dest   = "/etc/a.conf"
    mode   = "rw-r--r--"
  }
}
`
	_, diags := Parse("deploy/rollout.hcl", []byte(src))
	got := map[string]bool{}
	for _, d := range diags {
		got[diagPos(d)+" "+d.Summary] = true
	}
	for _, want := range []string{
		"deploy/rollout.hcl:7:16 Invalid on_failure",
		"deploy/rollout.hcl:11:14 Invalid mode",
	} {
		if !got[want] {
			t.Errorf("missing %q in\n%s", want, diagsText(diags))
		}
	}
}

func TestParseReportsAllProblemsAtOnce(t *testing.T) {
	src := `plan "web" {
  repo       = "/r"
  hosts      = "web"
  revision   = "v1"
  batch      = [1, "200%"]
  on_failure = "retry"
  pause      = "soon"
  colour     = "red"
  drain "haproxy" {
    endpoints = ["unix:/s"]
    backend   = "b"
    ramp      = ["50%"]
  }
  drain "none" { reason = "x" }
  file "a" {
    source   = "a"
    dest     = "/a"
    validate = "check"
  }
  health "http" {
    url = "http://x/"
    interval = "fast"
  }
}
`
	_, diags := Parse("rollout.hcl", []byte(src))
	want := []string{
		"Missing restart", "Invalid batch", "Invalid on_failure",
		"Invalid duration", "Unsupported argument", "Invalid ramp", "Duplicate drain block",
		"Validate command without %s",
	}
	count := map[string]int{}
	for _, d := range diags {
		count[d.Summary]++
	}
	for _, w := range want {
		if count[w] == 0 {
			t.Errorf("missing %q", w)
		}
	}
	if count["Invalid duration"] != 2 {
		t.Errorf("want both bad durations (pause, interval), got %d", count["Invalid duration"])
	}
	if t.Failed() {
		t.Log(diagsText(diags))
	}
}

func TestParseMissingDrainIsNotAnError(t *testing.T) {
	p, diags := Parse("rollout.hcl", []byte(minimal(`repo = "/r"`)))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if p.HasDrain {
		t.Error("HasDrain = true without a drain block")
	}
}

func TestParseWarnsWithoutHealth(t *testing.T) {
	src := strings.Replace(minimal(`repo = "/r"`), "health \"tcp\" {\n    address = \"${host.address}:80\"\n  }", "", 1)
	p, diags := Parse("rollout.hcl", []byte(src))
	if p == nil || diags.HasErrors() {
		t.Fatalf("want a plan with a warning, got %v", diags)
	}
	if len(diags) != 1 || diags[0].Summary != "No health block" || diags[0].Severity != hcl.DiagWarning {
		t.Errorf("diags = %v", diagsText(diags))
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "rollout.hcl")
	if err := os.WriteFile(file, []byte(minimal(`repo = "."`)), 0o644); err != nil {
		t.Fatal(err)
	}
	p, diags := Load(file)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if p.Repo != dir || p.Filename != file {
		t.Errorf("Repo %q Filename %q", p.Repo, p.Filename)
	}
	if _, diags := Load(filepath.Join(dir, "missing.hcl")); !diags.HasErrors() || !strings.Contains(diags[0].Detail, "missing.hcl") {
		t.Errorf("missing file: %v", diags)
	}
}

// A health block of an unknown kind is one error, not also "No health block".
func TestParseUnknownHealthKindIsOneProblem(t *testing.T) {
	src := strings.Replace(minimal(`repo = "/r"`), `health "tcp"`, `health "tpc"`, 1)
	_, diags := Parse("rollout.hcl", []byte(src))
	var summaries []string
	for _, d := range diags {
		summaries = append(summaries, d.Summary)
	}
	if len(diags) != 1 || diags[0].Summary != "Unknown health kind" {
		t.Errorf("diagnostics %q, want just Unknown health kind", summaries)
	}
}

// inventory may be left out: ansible.cfg's [defaults] inventory then
// names it (rollout.Select refuses when neither does).
func TestInventoryOptional(t *testing.T) {
	p, diags := Parse("rollout.hcl", []byte(strings.Replace(minimal(""), `inventory = "inv.ini"`, "", 1)))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if p.Inventory != "" {
		t.Errorf("Inventory = %q, want empty", p.Inventory)
	}
}

// A misspelled required attribute is one diagnostic ("did you mean"), not
// also "Missing <attribute>" for the same mistake.
func TestParseMisspelledRequiredIsOneProblem(t *testing.T) {
	for _, tc := range []struct{ from, to, want string }{
		{`source = "a.conf"`, `sorce = "a.conf"`, `Did you mean "source"?`},
		{`address = "${host.address}:80"`, `adress = "${host.address}:80"`, `Did you mean "address"?`},
		{`restart   = "systemctl restart appd"`, `restat = "systemctl restart appd"`, `Did you mean "restart"?`},
	} {
		src := strings.Replace(minimal(`repo = "/r"`), tc.from, tc.to, 1)
		_, diags := Parse("rollout.hcl", []byte(src))
		var summaries []string
		for _, d := range diags {
			summaries = append(summaries, d.Summary)
		}
		if len(diags) != 1 || diags[0].Summary != "Unsupported argument" || !strings.Contains(diags[0].Detail, tc.want) {
			t.Errorf("%s: diagnostics %q, want just Unsupported argument with %s", tc.to, summaries, tc.want)
		}
	}
	// a required attribute truly missing is still reported
	src := strings.Replace(minimal(`repo = "/r"`), `source = "a.conf"`, ``, 1)
	if _, diags := Parse("rollout.hcl", []byte(src)); len(diags) != 1 || diags[0].Summary != "Missing source" {
		t.Errorf("no source at all: %v, want Missing source", diags)
	}
}

// A health block without its kind label is one error, not also "No health block".
func TestParseUnlabelledHealthIsOneProblem(t *testing.T) {
	src := strings.Replace(minimal(`repo = "/r"`), `health "tcp"`, `health`, 1)
	_, diags := Parse("rollout.hcl", []byte(src))
	var summaries []string
	for _, d := range diags {
		summaries = append(summaries, d.Summary)
	}
	if len(diags) != 1 || !strings.Contains(diags[0].Summary, "for health") {
		t.Errorf("diagnostics %q, want just the missing label", summaries)
	}
}
