package plan

import (
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rollout-sh/rollout/internal/shell"
	"github.com/rollout-sh/rollout/inventory"
)

const hostPlan = `plan "web" {
  repo      = "/r"
  inventory = "inv.ini"
  hosts     = "web"
  revision  = "v2"
  state_dir = "${host.vars.root}/state"
  check     = "appd -check ${host.vars.evil}"
  restart   = "printf %s ${host.vars.evil}"
  diagnostics = ["journalctl -u ${host.vars.unit} -n 50", "echo %{ for g in host.groups }${g} %{ endfor }"]
  drain "haproxy" {
    endpoints = ["unix:${host.vars.root}/lb.sock", "tcp:127.0.0.1:9999"]
    backend   = "web"
    ramp      = [10, "50%", 100]
  }
  file "app.conf" {
    source   = "conf/${host.vars.kind}.tmpl"
    template = true
    dest     = "${host.vars.root}/etc/${host.vars.evil}"
    mode     = "0600"
    owner    = "app:app"
    validate = "appd -check -config %s -name ${host.name}"
  }
  file "static" {
    source = "./static/index.html"
    dest   = "/srv/www/index.html"
  }
  health "http" {
    url          = "http://${host.address}:${host.port}/healthz?x=${host.vars.evil}"
    body_matches = "ok"
  }
  health "command" {
    command     = "appd -ping ${host.vars.evil} ${revision}"
    healthy_for = "3s"
    deadline    = "30s"
    pid_file    = "${host.vars.root}/appd.pid"
  }
}
`

func mustParse(t *testing.T, src string) *Plan {
	t.Helper()
	p, diags := Parse("rollout.hcl", []byte(src))
	if diags.HasErrors() {
		t.Fatalf("parse: %s", diagsText(diags))
	}
	return p
}

func TestForHost(t *testing.T) {
	dir := t.TempDir()
	evil := "$(touch " + dir + "/pwned); 'q'"
	h := &inventory.Host{
		Name: "web1", Address: "127.0.0.1", Port: 2201, User: "deploy",
		Groups: []string{"prod", "web"},
		Vars: map[string]any{
			"root": "/srv/w1", "evil": evil, "unit": "appd", "kind": "app",
		},
	}
	p := mustParse(t, hostPlan)
	hs, diags := p.ForHost(h, "9fceb02d0ae598e95dc970b74767f19372d61af8")
	if diags.HasErrors() {
		t.Fatalf("ForHost: %s", diagsText(diags))
	}
	want := &HostSpec{
		Host:     h,
		StateDir: "/srv/w1/state",
		Check:    "appd -check " + shell.Quote(evil),
		Restart:  "printf %s " + shell.Quote(evil),
		Diagnostics: []string{
			"journalctl -u appd -n 50",
			"echo prod web ",
		},
		Drain: Drain{
			Kind:      "haproxy",
			Endpoints: []string{"unix:/srv/w1/lb.sock", "tcp:127.0.0.1:9999"},
			Backend:   "web",
			Server:    "web1",
			Timeout:   2 * time.Minute,
			Ramp:      []int{10, 50, 100},
		},
		Files: []FileSpec{
			{
				Name: "app.conf", Source: "conf/app.tmpl", Template: true, Engine: EngineHCL,
				Dest: "/srv/w1/etc/" + evil, Mode: 0o600, Owner: "app:app",
				Validate: "appd -check -config %s -name web1",
			},
			{Name: "static", Source: "static/index.html", Dest: "/srv/www/index.html", Mode: 0o644},
		},
		Health: []Health{
			{
				Kind: "http", URL: "http://127.0.0.1:2201/healthz?x=" + evil, Status: 200, BodyMatches: "ok",
				Interval: time.Second, HealthyFor: 10 * time.Second, Deadline: 2 * time.Minute, Timeout: 5 * time.Second,
			},
			{
				Kind: "command", Command: "appd -ping " + shell.Quote(evil) + " 9fceb02d0ae598e95dc970b74767f19372d61af8",
				Status: 200, Interval: time.Second, HealthyFor: 3 * time.Second, Deadline: 30 * time.Second, Timeout: 5 * time.Second,
				PidFile: "/srv/w1/appd.pid",
			},
		},
	}
	// Every file keeps the host's scope for Render; the rest is compared
	// field by field.
	for i := range hs.Files {
		if sc := hs.Files[i].scope; sc == nil || sc.host != hs.Host || sc.ctx == nil {
			t.Errorf("file %s: scope %+v, want the host's", hs.Files[i].Name, sc)
		}
		hs.Files[i].scope = nil
	}
	if !reflect.DeepEqual(hs, want) {
		t.Errorf("ForHost:\n got %+v\nwant %+v", *hs, *want)
	}

	// The restart command runs the inventory value as one word: it is
	// printed, never executed.
	out, err := exec.Command("sh", "-c", hs.Restart).Output()
	if err != nil {
		t.Fatalf("sh: %v", err)
	}
	if string(out) != evil {
		t.Errorf("restart printed %q, want the value %q", out, evil)
	}
	if _, err := os.Stat(filepath.Join(dir, "pwned")); err == nil {
		t.Error("inventory data ran as shell code")
	}
}

func TestForHostBecomeAndCommandDrain(t *testing.T) {
	src := strings.Replace(minimal(`repo = "/r"
become = true
drain "command" {
  via      = host.vars.lb
  drain    = "lbctl off ${host.name}"
  undrain  = "lbctl on ${host.name}"
  sessions = "lbctl count ${host.name} ${plan.name}"
  timeout  = "30s"
}`), "", "", 1)
	p := mustParse(t, src)
	tests := []struct {
		host      inventory.Host
		planBec   bool
		want      Drain
		wantBecom bool
	}{
		{
			host: inventory.Host{Name: "web;1", Vars: map[string]any{"lb": "lb 1"}},
			want: Drain{Kind: "command", Via: "lb 1", Timeout: 30 * time.Second, Ramp: []int{100},
				DrainCmd: "lbctl off 'web;1'", UndrainCmd: "lbctl on 'web;1'", SessionsCmd: "lbctl count 'web;1' web"},
			wantBecom: true,
		},
		{
			host: inventory.Host{Name: "web2", Become: true, Vars: map[string]any{"lb": "lb2"}},
			want: Drain{Kind: "command", Via: "lb2", Timeout: 30 * time.Second, Ramp: []int{100},
				DrainCmd: "lbctl off web2", UndrainCmd: "lbctl on web2", SessionsCmd: "lbctl count web2 web"},
			wantBecom: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.host.Name, func(t *testing.T) {
			hs, diags := p.ForHost(&tt.host, "v1")
			if diags.HasErrors() {
				t.Fatal(diagsText(diags))
			}
			if !reflect.DeepEqual(hs.Drain, tt.want) {
				t.Errorf("drain:\n got %+v\nwant %+v", hs.Drain, tt.want)
			}
			if hs.Become != tt.wantBecom {
				t.Errorf("Become = %v", hs.Become)
			}
			if hs.StateDir != DefaultStateDir {
				t.Errorf("StateDir = %q", hs.StateDir)
			}
		})
	}
}

func TestForHostQuotesNestedValues(t *testing.T) {
	src := strings.Replace(minimal(`repo = "/r"`), `"systemctl restart appd"`,
		`"run ${host.vars.list[1]} ${host.vars.map.k} ${host.vars.n} ${host.vars.ok} %{ for k, v in host.vars.map }${k}=${v}%{ endfor }"`, 1)
	p := mustParse(t, src)
	h := &inventory.Host{Name: "w", Vars: map[string]any{
		"list": []any{"a", "b c"},
		"map":  map[string]any{"k": "x;y", "$(id)": "v"},
		"n":    int64(8080),
		"ok":   true,
	}}
	hs, diags := p.ForHost(h, "v1")
	if diags.HasErrors() {
		t.Fatal(diagsText(diags))
	}
	want := `run 'b c' 'x;y' 8080 true '$(id)'=vk='x;y'`
	if hs.Restart != want {
		t.Errorf("restart = %q, want %q", hs.Restart, want)
	}
}

func TestForHostDiagnostics(t *testing.T) {
	tests := []struct {
		name    string
		replace [2]string
		vars    map[string]any
		summary string
		at      string
	}{
		{"missing var", [2]string{`"/etc/a.conf"`, `"/etc/${host.vars.nope}"`}, nil, "Unsupported attribute", ".nope"},
		{"mode from a var", [2]string{`dest   = "/etc/a.conf"`, `dest = "/etc/a.conf"` + "\n    mode = host.vars.mode"}, map[string]any{"mode": "999"}, "Invalid mode", "host.vars.mode"},
		{"relative dest from a var", [2]string{`"/etc/a.conf"`, `host.vars.dest`}, map[string]any{"dest": "etc/a"}, "Invalid dest", "host.vars.dest"},
		{"duration from a var", [2]string{`address = "${host.address}:80"`, `address = "${host.address}:80"` + "\n    interval = host.vars.iv"}, map[string]any{"iv": "often"}, "Invalid duration", "host.vars.iv"},
		{"port from a var", [2]string{`"${host.address}:80"`, `"${host.address}:${host.vars.p}"`}, map[string]any{"p": "http"}, "Invalid address", `"${host.address}:${host.vars.p}"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := strings.Replace(minimal(`repo = "/r"`), tt.replace[0], tt.replace[1], 1)
			p := mustParse(t, src)
			hs, diags := p.ForHost(&inventory.Host{Name: "web7", Address: "10.0.0.7", Vars: tt.vars}, "v1")
			if hs != nil {
				t.Error("got a HostSpec despite errors")
			}
			for _, d := range diags {
				if d.Summary != tt.summary {
					continue
				}
				if got, want := diagPos(d), "rollout.hcl:"+posOf(t, src, tt.at); got != want {
					t.Errorf("at %s, want %s", got, want)
				}
				if !strings.Contains(d.Detail, `host "web7"`) {
					t.Errorf("detail does not name the host: %q", d.Detail)
				}
				return
			}
			t.Errorf("no %q in\n%s", tt.summary, diagsText(diags))
		})
	}
}

func TestForHostDuplicateDest(t *testing.T) {
	src := strings.Replace(minimal(`repo = "/r"
file "b" {
  source = "b"
  dest   = "/etc/${host.vars.x}.conf"
}`), "", "", 1)
	p := mustParse(t, src)
	if _, diags := p.ForHost(&inventory.Host{Name: "w", Vars: map[string]any{"x": "b"}}, "v1"); diags.HasErrors() {
		t.Fatalf("distinct dests refused: %s", diagsText(diags))
	}
	_, diags := p.ForHost(&inventory.Host{Name: "w", Vars: map[string]any{"x": "a"}}, "v1")
	if len(diags) == 0 || diags[0].Summary != "Duplicate dest" || !strings.Contains(diags[0].Detail, "/etc/a.conf") {
		t.Errorf("want a duplicate dest error, got %s", diagsText(diags))
	}
}

func TestRender(t *testing.T) {
	p := mustParse(t, minimal(`repo = "/r"`))
	h := &inventory.Host{
		Name: "web1", Address: "10.0.0.1", Groups: []string{"prod", "web"},
		Vars: map[string]any{"port": int64(8080), "tls": true, "evil": "$(x) 'q'"},
	}
	const rev = "9fceb02d0ae598e95dc970b74767f19372d61af8"
	tmpl := "listen ${host.vars.port}\n" +
		"%{ if host.vars.tls ~}\nssl on\n%{ endif ~}\n" +
		"%{ for g in host.groups ~}\ngroup ${g}\n%{ endfor ~}\n" +
		"name ${host.name} rev ${revision} plan ${plan.name} raw ${host.vars.evil} literal $${x} %%{y}\n"
	tests := []struct {
		name string
		file FileSpec
		src  string
		want string
	}{
		{"template", FileSpec{Source: "conf/app.conf.tmpl", Template: true}, tmpl,
			"listen 8080\nssl on\ngroup prod\ngroup web\nname web1 rev " + rev + " plan web raw $(x) 'q' literal ${x} %{y}\n"},
		{"not a template", FileSpec{Source: "bin/blob"}, "${not} \x00\xff evaluated", "${not} \x00\xff evaluated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, diags := p.Render(tt.file, []byte(tt.src), h, rev)
			if diags.HasErrors() {
				t.Fatal(diagsText(diags))
			}
			if string(out) != tt.want {
				t.Errorf("got %q\nwant %q", out, tt.want)
			}
		})
	}
}

func TestRenderErrors(t *testing.T) {
	p := mustParse(t, minimal(`repo = "/r"`))
	h := &inventory.Host{Name: "web3", Vars: map[string]any{}}
	tests := []struct {
		name    string
		src     string
		summary string
		pos     string
	}{
		{"missing var", "a\nb\nport ${host.vars.port}\n", "Unsupported attribute", "conf/app.conf.tmpl@9fceb02:3:17"},
		{"syntax", "a\n%{ if }\n", "Invalid expression", "conf/app.conf.tmpl@9fceb02:2:7"},
		{"unclosed if", "x\n%{ if true }\ny\n", "Unterminated template string", "conf/app.conf.tmpl@9fceb02:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, diags := p.Render(FileSpec{Source: "conf/app.conf.tmpl", Template: true}, []byte(tt.src), h, "9fceb02d0ae598e95dc970b74767f19372d61af8")
			if out != nil || !diags.HasErrors() {
				t.Fatalf("want an error, got %q", out)
			}
			d := diags[0]
			if !strings.HasPrefix(diagPos(d), tt.pos) {
				t.Errorf("at %s, want %s", diagPos(d), tt.pos)
			}
			if !strings.Contains(d.Detail, `host "web3"`) {
				t.Errorf("detail does not name the host: %q", d.Detail)
			}
			t.Logf("%s: %s; %s", diagPos(d), d.Summary, d.Detail)
		})
	}
}

func TestToCty(t *testing.T) {
	tests := []struct {
		in   any
		want string // rendered through a template
	}{
		{"s", "s"},
		{int64(3), "3"},
		{3, "3"},
		{uint16(7), "7"},
		{2.5, "2.5"},
		{math.NaN(), "NaN"},
		{math.Inf(1), "+Inf"},
		{true, "true"},
		{[]string{"a", "b"}, "a,b,"},
		{[]any{"a", int64(1)}, "a,1,"},
		{map[string]string{"k": "v"}, "k=v;"},
	}
	p := mustParse(t, minimal(`repo = "/r"`))
	for _, tt := range tests {
		var tmpl string
		switch tt.in.(type) {
		case []string, []any:
			tmpl = "%{ for x in host.vars.v }${x},%{ endfor }"
		case map[string]string:
			tmpl = "%{ for k, x in host.vars.v }${k}=${x};%{ endfor }"
		default:
			tmpl = "${host.vars.v}"
		}
		out, diags := p.Render(FileSpec{Source: "t", Template: true}, []byte(tmpl), &inventory.Host{Name: "h", Vars: map[string]any{"v": tt.in}}, "v1")
		if diags.HasErrors() {
			t.Errorf("%T %v: %s", tt.in, tt.in, diagsText(diags))
			continue
		}
		if string(out) != tt.want {
			t.Errorf("%T %v rendered %q, want %q", tt.in, tt.in, out, tt.want)
		}
	}
}

func TestValidateCommand(t *testing.T) {
	f := FileSpec{Validate: "sshd -t -f %s && echo %s"}
	if got, want := f.ValidateCommand("/etc/ssh/.sshd_config.rollout new"), "sshd -t -f '/etc/ssh/.sshd_config.rollout new' && echo '/etc/ssh/.sshd_config.rollout new'"; got != want {
		t.Errorf("got %q want %q", got, want)
	}
}

// healthy_for = "0s" means one passing round is enough (the benchmark uses
// it); interval and deadline must still be positive.
func TestHealthyForZeroIsAllowed(t *testing.T) {
	p := mustParse(t, minimal(`health "http" {
  url         = "http://127.0.0.1/healthz"
  healthy_for = "0s"
}`))
	spec, diags := p.ForHost(&inventory.Host{Name: "web1", Address: "127.0.0.1"}, "v2")
	if diags.HasErrors() {
		t.Fatalf("ForHost: %s", diagsText(diags))
	}
	if len(spec.Health) == 0 || spec.Health[0].Kind != "http" || spec.Health[0].HealthyFor != 0 {
		t.Fatalf("health = %+v, want healthy_for 0", spec.Health)
	}
	if _, diags := Parse("rollout.hcl", []byte(minimal(`health "http" {
  url      = "http://127.0.0.1/healthz"
  interval = "0s"
}`))); !diags.HasErrors() {
		t.Fatal("interval = 0s was accepted")
	}
}
