package inventory

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// loadProject writes files (path → content) into a temporary directory
// and loads its inventory.ini with the group_vars/host_vars beside it.
func loadProject(t *testing.T, files map[string]string) (*Inventory, string) {
	t.Helper()
	dir := t.TempDir()
	for p, c := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	inv, err := Load(filepath.Join(dir, "inventory.ini"))
	if err != nil {
		t.Fatal(err)
	}
	return inv, dir
}

func render(t *testing.T, h *Host, src string, sc *Scope) (string, error) {
	t.Helper()
	out, err := h.RenderTemplate("t.j2", []byte(src), sc)
	return string(out), err
}

// Expected outputs are what ansible-core 2.14 renders for the same
// variables (variables are templated lazily, at every depth).
func TestVariablesAreTemplatesAtEveryDepth(t *testing.T) {
	inv, _ := loadProject(t, map[string]string{
		"inventory.ini": "[web]\nweb1 port=8080\nweb2 port=8081\n",
		"group_vars/all.yml": `ntp_area: ""
ntp_servers: ["0{{ '.' + ntp_area if ntp_area else '' }}.pool.ntp.org", "1.{{ ntp_area or 'pool' }}.ntp.org"]
url: "http://{{ inventory_hostname }}:{{ port }}"
upstream:
  name: "{{ inventory_hostname_short }}"
  urls: ["{{ url }}/a", {deep: "{{ url }}/b"}]
chain1: "{{ chain2 }}!"
chain2: "{{ chain3 | upper }}"
chain3: "{{ port }}"
a_list: "{{ [1, 'two', true] }}"
a_dict: "{{ {'k': port} }}"
a_bool: "{{ port == 8080 }}"
a_num: "{{ port + 1 }}"
peer: "{{ hostvars['web2'].url }}"
`,
	})
	h := inv.Host("web1")
	tests := []struct{ src, want string }{
		{"{{ ntp_servers | join(' ') }}", "0.pool.ntp.org 1.pool.ntp.org"},
		{"{% for s in ntp_servers %}server {{ s }}\n{% endfor %}", "server 0.pool.ntp.org\nserver 1.pool.ntp.org\n"},
		{"{{ upstream.name }} {{ upstream.urls[0] }} {{ upstream.urls[1].deep }}", "web1 http://web1:8080/a http://web1:8080/b"},
		{"{{ chain1 }}", "8080!"},
		{"{{ a_list | length }} {{ a_list[1] }} {{ a_dict.k }} {{ a_bool is sameas true }} {{ a_num }}", "3 two 8080 True 8081"},
		{"{{ hostvars['web2'].url }} {{ hostvars.web2.upstream.urls[1].deep }}", "http://web2:8081 http://web2:8081/b"},
		{"{{ peer }}", "http://web2:8081"},
		{"{% for o in groups['web'] %}{{ hostvars[o]['url'] }};{% endfor %}", "http://web1:8080;http://web2:8081;"},
		{"{{ 'url' in hostvars['web2'] }}", "True"},
	}
	for _, tt := range tests {
		got, err := render(t, h, tt.src, nil)
		if err != nil {
			t.Errorf("%s: %v", tt.src, err)
			continue
		}
		if got != tt.want {
			t.Errorf("%s = %q, want %q", tt.src, got, tt.want)
		}
	}
}

func TestVariableErrorsNameVariableFileAndHost(t *testing.T) {
	inv, dir := loadProject(t, map[string]string{
		"inventory.ini": "[web]\nweb1\n[web:vars]\nini_var={{ nope }}\n",
		"group_vars/web.yml": `# comment
ntp_servers:
  - "0{{ '.' + ntp_area if ntp_area else '' }}.pool.ntp.org"
uses_bad: "x{{ ntp_servers[0] }}"
cyc_a: "{{ cyc_b }}"
cyc_b: "{{ cyc_a }}"
me: "{{ me }}"
bad_filter: "{{ 'x' | no_such_filter }}"
unused_bad: "{{ undefined_thing }}"
fine: "ok"
`,
		"host_vars/web1.yml": "hv: \"{{ missing_in_host_vars }}\"\n",
	})
	h := inv.Host("web1")
	gv := filepath.Join(dir, "group_vars", "web.yml")
	tests := []struct {
		src, varName, origin string
		msg                  []string
	}{
		{"{{ ntp_servers | join(',') }}", "ntp_servers", gv + ":2", []string{"'ntp_area' is undefined"}},
		{"line one\n{{ uses_bad }}", "uses_bad", gv + ":4", []string{`it uses variable "ntp_servers" (` + gv + ":2)", "'ntp_area' is undefined", "t.j2:2"}},
		{"{{ cyc_a }}", "cyc_a", gv + ":5", []string{"cyc_a → cyc_b → cyc_a"}},
		{"{{ me }}", "me", gv + ":7", []string{"me → me"}},
		{"{{ bad_filter }}", "bad_filter", gv + ":8", []string{"no_such_filter"}},
		{"{{ ini_var }}", "ini_var", filepath.Join(dir, "inventory.ini") + ":4", []string{"'nope' is undefined"}},
		{"{{ hv }}", "hv", filepath.Join(dir, "host_vars", "web1.yml") + ":1", []string{"'missing_in_host_vars' is undefined"}},
	}
	for _, tt := range tests {
		out, err := render(t, h, tt.src, nil)
		if err == nil {
			t.Errorf("%s: rendered %q, want an error", tt.src, out)
			continue
		}
		var ve *VarError
		if !errors.As(err, &ve) || !errors.Is(err, ErrVariable) {
			t.Errorf("%s: %v is not a *VarError", tt.src, err)
			continue
		}
		if ve.Var != tt.varName || ve.Origin != tt.origin || ve.Host != "web1" {
			t.Errorf("%s: variable %q origin %q host %q, want %q %q web1", tt.src, ve.Var, ve.Origin, ve.Host, tt.varName, tt.origin)
		}
		for _, m := range tt.msg {
			if !strings.Contains(err.Error(), m) {
				t.Errorf("%s: error %q does not say %q", tt.src, err, m)
			}
		}
	}
	// a failing variable the template does not use is no error, and it is
	// undefined to tests and default, as in Ansible
	got, err := render(t, h, "{{ fine }} {{ unused_bad is defined }} {{ unused_bad | default('d') }} {{ hostvars['web1'].fine }}", nil)
	if err != nil || got != "ok False d ok" {
		t.Errorf("got %q, %v; want \"ok False d ok\"", got, err)
	}
}

// As ansible-core renders every variable a template names before the
// template itself: a variable that fails otherwise than by being undefined
// (a cycle, a failing filter) fails a template that names it even where
// it is not used; one that is undefined (itself or through a variable it
// uses) is undefined to the template: `is defined` is false, default
// applies. (Checked against ansible-core 2.14.)
func TestNamedFailingVariable(t *testing.T) {
	h := &Host{Name: "h", Vars: map[string]any{
		"x": "{{ y if false else 1 }}", "y": "{{ x }}",
		"bf": "{{ 1 | no_such_filter }}",
		"uu": "{{ nope }}", "viauu": "{{ uu }}-x",
		"d": map[string]any{"bf": int64(1)},
	}}
	for src, want := range map[string]string{
		"{{ x }}":                 "x → y → x",
		"{{ 1 if true else bf }}": "no_such_filter",
	} {
		out, err := render(t, h, src, nil)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %q, %v; want an error saying %q", src, out, err, want)
		}
	}
	got, err := render(t, h, `{{ viauu is defined }} {{ viauu | default("dd") }}`, nil)
	if err != nil || got != "False dd" {
		t.Errorf("got %q, %v; want \"False dd\"", got, err)
	}
	// an attribute of the same name is not the variable
	if got, err := render(t, h, `{{ d.bf }}`, nil); err != nil || got != "1" {
		t.Errorf("got %q, %v; want \"1\"", got, err)
	}
}

func TestScopeLayersPrecedence(t *testing.T) {
	h := &Host{Name: "h", Vars: map[string]any{"port": int64(81), "both": "inventory", "uses_default": "{{ d_only }}-inv"}}
	sc := &Scope{
		Defaults: Layer{Vars: map[string]any{"port": int64(80), "d_only": "{{ port }}", "both": "default"}, Origins: map[string]string{"d_only": "roles/r/defaults/main.yml:2"}},
		Vars:     Layer{Vars: map[string]any{"both": "role-vars {{ port }}"}},
		Extra:    map[string]any{"rollout_revision": "abc"},
	}
	got, err := render(t, h, "{{ port }} {{ both }} {{ uses_default }} {{ rollout_revision }}", sc)
	if err != nil || got != "81 role-vars 81 81-inv abc" {
		t.Fatalf("got %q, %v", got, err)
	}
	// hostvars hold a host's own variables, without the role's (as in
	// ansible-core, where a play's role defaults and vars are not in
	// hostvars)
	got, err = render(t, h, "{{ hostvars['h'].port }} {{ hostvars['h'].both }} {{ hostvars['h'].d_only is defined }} {{ hostvars['h'].rollout_revision }}", sc)
	if err != nil || got != "81 inventory False abc" {
		t.Fatalf("hostvars: got %q, %v", got, err)
	}
	sc.Defaults.Vars["d_only"] = "{{ nope }}"
	_, err = render(t, h, "{{ uses_default }}", sc)
	if err == nil || !strings.Contains(err.Error(), "roles/r/defaults/main.yml:2") {
		t.Fatalf("error %v does not name the role's defaults file", err)
	}
}

func TestEvalConcat(t *testing.T) {
	tests := []struct {
		in   string
		want any
	}{
		{"[1, 'a', True, None, 2.5]", []any{int64(1), "a", true, nil, 2.5}},
		{"{'a': [1], \"b\": {}}", map[string]any{"a": []any{int64(1)}, "b": map[string]any{}}},
		{"[true, null]", []any{true, nil}},
		{"True", true},
		{"False", false},
		{"8080", "8080"},
		{"[not a literal", "[not a literal"},
		{"{1, 2}", "{1, 2}"},
		{"[1] x", "[1] x"},
	}
	for _, tt := range tests {
		got := evalConcat(tt.in)
		if !equalAny(got, tt.want) {
			t.Errorf("evalConcat(%q) = %#v, want %#v", tt.in, got, tt.want)
		}
	}
}

func equalAny(a, b any) bool {
	switch x := a.(type) {
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !equalAny(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k := range x {
			if !equalAny(x[k], y[k]) {
				return false
			}
		}
		return true
	}
	return a == b
}

// Where the template engine does not treat a failed variable as an error
// (a list literal; a filter that prints its input in its message), the
// failure is still found and named.
func TestFailedVariableHiddenFromTheEngine(t *testing.T) {
	h := &Host{Name: "web1", Vars: map[string]any{"bad": "{{ nope }}", "via_list": "{{ [bad] | join(',') }}"}}
	for _, src := range []string{"x\n{{ bad | trim }}", "{{ [bad] | join(',') }}", "{{ [1, bad] }}", "{{ via_list }}"} {
		out, err := render(t, h, src, nil)
		var ve *VarError
		if !errors.As(err, &ve) {
			t.Errorf("%s: got %q, %v; want a *VarError", src, out, err)
			continue
		}
		if !strings.Contains(err.Error(), `variable "bad"`) || !strings.Contains(err.Error(), "'nope' is undefined") {
			t.Errorf("%s: %v does not name bad and nope", src, err)
		}
	}
}
