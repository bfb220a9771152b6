package plan

import (
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
