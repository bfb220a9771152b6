package jinja

import (
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestAnsibleFilters: expected outputs are ansible-core 2.14's;
// TestTemplateMatchesAnsible checks the same constructs against ansible.
func TestAnsibleFilters(t *testing.T) {
	vars := map[string]any{
		"m": "Ansible managed", "two": "a\nb", "v": "1.4.2", "l": []any{"a", "b", "c"},
		"d1": map[string]any{"a": map[string]any{"x": int64(1)}, "l": []any{int64(1)}},
		"d2": map[string]any{"a": map[string]any{"y": int64(2)}, "l": []any{int64(2)}},
	}
	tests := []struct{ src, want string }{
		{"{{ m | comment }}", "#\n# Ansible managed\n#"},
		{"{{ two | comment('c') }}", "//\n// a\n// b\n//"},
		{"{{ m | comment('cblock') }}", "/*\n *\n * Ansible managed\n *\n */"},
		{"{{ m | comment('xml') }}", "<!--\n -\n - Ansible managed\n -\n-->"},
		{"{{ m | comment('erlang') }}", "%\n% Ansible managed\n%"},
		{"{{ m | comment(decoration='; ') }}", ";\n; Ansible managed\n;"},
		{"{{ m | comment('plain', prefix='#+', postfix='#-', prefix_count=2) }}", "#+\n#+\n# Ansible managed\n#-"},
		{"{{ v is version('1.4', '<=') }} {{ v is version('1.4', '>') }} {{ '1.10' is version_compare('1.9', 'gt') }}", "False True True"},
		{"{{ '1.0.0-rc.1' is version('1.0.0', '<', None, 'semver') }} {{ '1.2b3' is version('1.2', 'lt', true) }} {{ v is version('1.4.2') }}", "True True True"},
		{"{{ 'x' | hash('sha1') }} {{ 'x' | hash('md5') }} {{ 'x' | checksum }}", "11f6ad8ec52a2984abaafd7c3b516503785c2072 9dd4e461268c8034f5c8564e155c67a6 11f6ad8ec52a2984abaafd7c3b516503785c2072"},
		{"{{ l | difference(['b']) }} {{ l | union(['d','a']) }} {{ l | intersect(['c','a']) }} {{ l | symmetric_difference(['c','z']) }}", "['a', 'c'] ['a', 'b', 'c', 'd'] ['a', 'c'] ['a', 'b', 'z']"},
		{"{{ d1 | combine(d2) }} {{ d1 | combine(d2, recursive=true) }} {{ d1 | combine(d2, list_merge='append') }}", "{'a': {'y': 2}, 'l': [2]} {'a': {'x': 1, 'y': 2}, 'l': [2]} {'a': {'y': 2}, 'l': [1, 2]}"},
		{"{{ d2 | dict2items }} {{ [{'key':'a','value':1}] | items2dict }}", "[{'key': 'a', 'value': {'y': 2}}, {'key': 'l', 'value': [2]}] {'a': 1}"},
		{"{{ 'a1b22' | regex_findall('\\\\d+') }} {{ 'a.b*c' | regex_escape }}", "['1', '22'] a\\.b\\*c"},
	}
	for _, tt := range tests {
		out, err := Render("t.j2", []byte(tt.src), vars)
		if err != nil {
			t.Errorf("%s: %v", tt.src, err)
			continue
		}
		if string(out) != tt.want {
			t.Errorf("%s:\n got %q\nwant %q", tt.src, out, tt.want)
		}
	}
}

func TestRefusedFilters(t *testing.T) {
	for _, src := range []string{"{{ 'x' | password_hash('sha512') }}", "{{ [1, 2] | random }}", "{{ [1, 2] | shuffle }}"} {
		_, err := Render("t.j2", []byte(src), nil)
		if err == nil || !strings.Contains(err.Error(), "refused") {
			t.Errorf("%s: want a refusal, got %v", src, err)
		}
	}
}

func TestSetUnpacking(t *testing.T) {
	vars := map[string]any{"c": map[string]any{"k": "v"}}
	out, err := Render("t.j2", []byte("{% set n, o = (c.items() | list)[0] %}{{ n }}={{ o }}{% set a, b, d = [1, 2, 3] %} {{ a + b + d }}"), vars)
	if err != nil || string(out) != "k=v 6" {
		t.Fatalf("got %q, %v", out, err)
	}
	if _, err := Render("t.j2", []byte("{% set a, b = [1] %}"), nil); err == nil {
		t.Fatal("unpacking one value into two names must be an error")
	}
}

func TestMapFromYAMLKeepsOrder(t *testing.T) {
	var n yaml.Node
	if err := yaml.Unmarshal([]byte("zeta: 1\nalpha:\n  y: [a, {k: v}]\n  b: true\n"), &n); err != nil {
		t.Fatal(err)
	}
	v, err := MapFromYAML(&n)
	if err != nil {
		t.Fatal(err)
	}
	m := v.(*Map)
	inner, _ := m.Get("alpha")
	if got := strings.Join(m.Keys, ","); got != "zeta,alpha" {
		t.Errorf("keys %s, want the file's order zeta,alpha", got)
	}
	if got := strings.Join(inner.(*Map).Keys, ","); got != "y,b" {
		t.Errorf("nested keys %s, want y,b", got)
	}
	// the engine still sees a mapping (in sorted order until the evaluator is ours)
	out, err := Render("t.j2", []byte("{{ d.zeta }} {{ d.alpha.y[1].k }} {% for k in d %}{{ k }}{% endfor %}"), map[string]any{"d": m})
	if err != nil || string(out) != "1 v alphazeta" {
		t.Fatalf("got %q, %v", out, err)
	}
}

func TestAnsibleManaged(t *testing.T) {
	src := []byte("{{ ansible_managed | comment }}\n")
	out, err := RenderWith("t.j2", src, map[string]any{"ansible_managed": "from group_vars"}, Options{})
	if err != nil || string(out) != "#\n# Ansible managed\n#\n" {
		t.Errorf("default: got %q, %v", out, err)
	}
	out, err = RenderWith("t.j2", src, nil, Options{AnsibleManaged: "Managed by rollout"})
	if err != nil || string(out) != "#\n# Managed by rollout\n#\n" {
		t.Errorf("ansible.cfg's: got %q, %v", out, err)
	}
	if _, err := RenderWith("t.j2", src, nil, Options{AnsibleManaged: "Ansible managed: {file} modified on %Y-%m-%d"}); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("placeholders: want a refusal, got %v", err)
	}
}

func TestJinja2Header(t *testing.T) {
	out, err := Render("t.j2", []byte("#jinja2: lstrip_blocks: True, trim_blocks: False\n  {% if true %}\nx\n  {% endif %}\n"), nil)
	if err != nil || string(out) != "\nx\n" {
		t.Errorf("got %q, %v", out, err)
	}
	for _, bad := range []string{"#jinja2: trim_blocks=True\n", "#jinja2: autoescape: True\n", "#jinja2: newline_sequence: '\\r\\n'\n"} {
		if _, err := Render("t.j2", []byte(bad), nil); err == nil {
			t.Errorf("%q: want an error", bad)
		}
	}
}
