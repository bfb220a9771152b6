package plan

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rollout-sh/rollout/inventory"
)

// loadInventory writes files into a temporary directory and loads its
// inventory.ini.
func loadInventory(t *testing.T, files map[string]string) (*inventory.Inventory, string) {
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
	inv, err := inventory.Load(filepath.Join(dir, "inventory.ini"))
	if err != nil {
		t.Fatal(err)
	}
	return inv, dir
}

// The case: a template inside a list in group_vars is rendered,
// and when it cannot be, the diagnostic names the variable, its file and
// line, the host and the template line, and nothing is rendered.
func TestRenderJinjaNestedVariables(t *testing.T) {
	p := mustParse(t, minimal(`repo = "/r"`))
	inv, dir := loadInventory(t, map[string]string{
		"inventory.ini":      "[web]\nweb1\nweb2 ntp_area=de\n",
		"group_vars/web.yml": "ntp_servers: [\"0{{ '.' + ntp_area if ntp_area else '' }}.pool.ntp.org\"]\n",
		"host_vars/web1.yml": "other: 1\n",
	})
	f := FileSpec{Name: "ntp", Source: "ntp.conf.j2", Template: true, Engine: EngineJinja2}
	src := []byte("# ntp\n{% for s in ntp_servers %}server {{ s }}\n{% endfor %}")
	out, diags := p.Render(f, src, inv.Host("web2"), "v1")
	if diags.HasErrors() || string(out) != "# ntp\nserver 0.de.pool.ntp.org\n" {
		t.Fatalf("web2: %q %s", out, diagsText(diags))
	}
	out, diags = p.Render(f, src, inv.Host("web1"), "v1")
	if !diags.HasErrors() || out != nil {
		t.Fatalf("web1: rendered %q without an error", out)
	}
	d := diags[0]
	for _, want := range []string{`host "web1"`, `variable "ntp_servers" (` + filepath.Join(dir, "group_vars", "web.yml") + `:1)`, "'ntp_area' is undefined", "template ntp.conf.j2@v1, line 2"} {
		if !strings.Contains(d.Detail, want) {
			t.Errorf("diagnostic %q does not say %q", d.Detail, want)
		}
	}
	if d.Summary != "Jinja2 variable failed" || d.Subject == nil || d.Subject.Start.Line != 2 {
		t.Errorf("diagnostic %s: want summary \"Jinja2 variable failed\" at line 2", diagsText(diags))
	}
}

// BenchmarkRenderHostvarsLoop renders, for each of 200 hosts, a template
// reading a templated variable of every host through hostvars: each
// host's variable is rendered once for the fleet (inventory.Shared), not
// once per reader.
func BenchmarkRenderHostvarsLoop(b *testing.B) {
	var ini strings.Builder
	ini.WriteString("[web]\n")
	for i := 0; i < 200; i++ {
		fmt.Fprintf(&ini, "web%d port=%d", i, 8000+i)
		for k := 0; k < 20; k++ {
			fmt.Fprintf(&ini, " v%d=x%d", k, k)
		}
		ini.WriteString(" url=\"http://{{ inventory_hostname }}:{{ port }}\"\n")
	}
	inv, err := inventory.ParseINI("inventory.ini", []byte(ini.String()))
	if err != nil {
		b.Fatal(err)
	}
	p, diags := Parse("rollout.hcl", []byte(minimal(`repo = "/r"`)))
	if diags.HasErrors() {
		b.Fatal(diagsText(diags))
	}
	f := FileSpec{Name: "a", Source: "a.j2", Template: true, Engine: EngineJinja2}
	src := []byte("{% for o in groups['web'] %}{{ hostvars[o].url }}{% endfor %}")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, h := range inv.Hosts() {
			if _, diags := p.Render(f, src, h, "v1"); diags.HasErrors() {
				b.Fatal(diagsText(diags))
			}
		}
	}
}

// Renders of one plan share hosts' rendered variables: each value is
// still its own host's, and a failure rendered by an earlier render is
// still found, and named, by a later one (even where the engine prints
// it instead of failing, in a list literal).
func TestRenderSharesHostVariables(t *testing.T) {
	p := mustParse(t, minimal(`repo = "/r"`))
	inv, _ := loadInventory(t, map[string]string{
		"inventory.ini":      "[web]\nweb1 port=1\nweb2 port=2\n",
		"group_vars/web.yml": "url: \"u{{ port }}-{{ inventory_hostname }}\"\nbad: \"{{ nope }}\"\n",
	})
	f := FileSpec{Name: "a", Source: "a.j2", Template: true, Engine: EngineJinja2}
	for _, h := range inv.Hosts() {
		out, diags := p.Render(f, []byte("{{ url }} {{ hostvars['web1'].url }} {{ hostvars['web2'].url }}"), h, "v1")
		if want := "u" + fmt.Sprint(h.Vars["port"]) + "-" + h.Name + " u1-web1 u2-web2"; diags.HasErrors() || string(out) != want {
			t.Errorf("%s: %q %s, want %q", h.Name, out, diagsText(diags), want)
		}
	}
	for _, src := range []string{"{{ bad }}", "{{ [bad] | join(',') }}", "{{ [hostvars['web1'].bad] | join(',') }}"} {
		for _, h := range inv.Hosts() {
			out, diags := p.Render(f, []byte(src), h, "v1")
			if !diags.HasErrors() || !strings.Contains(diags[0].Detail, `variable "bad"`) {
				t.Errorf("%s %s: %q %s, want an error naming bad", h.Name, src, out, diagsText(diags))
			}
		}
	}
}
