package plan

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/rollout-sh/rollout/inventory"
)

// commitFiles writes files into a new repository, commits them and
// returns the repository and the commit.
func commitFiles(t *testing.T, files map[string]string) (*Repo, string, string) {
	t.Helper()
	dir := t.TempDir()
	r, err := git.PlainInit(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	wt, err := r.Worktree()
	if err != nil {
		t.Fatal(err)
	}
	for p, c := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := wt.Add(p); err != nil {
			t.Fatal(err)
		}
	}
	h, err := wt.Commit("c", &git.CommitOptions{Author: &object.Signature{Name: "t", Email: "t@example.com", When: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}})
	if err != nil {
		t.Fatal(err)
	}
	repo, err := OpenRepo(dir)
	if err != nil {
		t.Fatal(err)
	}
	return repo, h.String(), dir
}

// roleFiles is a role as ansible-playbook runs it; TestRoleRendersAsAnsible
// expects what ansible-core 2.14 wrote for it (a play with roles: [app],
// gather_facts: no, the same inventory).
var roleFiles = map[string]string{
	"roles/app/defaults/main.yml":  "motd: \"hello {{ inventory_hostname }}\"\nport: 80\nonly_default: \"d-{{ port }}\"\nboth: default\n",
	"roles/app/vars/main.yml":      "both: \"rolevars-{{ port }}\"\n",
	"roles/app/files/f.txt":        "file line1\n\n\n",
	"roles/app/templates/inner.j2": "tpl {{ motd }}\n",
	"roles/app/templates/main.j2":  "[{{ lookup(\"file\", \"f.txt\") }}]\n[{{ lookup(\"template\", \"inner.j2\") }}]\n{{ port }} {{ only_default }} {{ both }}\n{{ query(\"file\", \"f.txt\") }}\n",
	"files/top.txt":                "top\n",
}

const roleWant = "[file line1]\n[tpl hello web1\n]\n9 d-9 rolevars-9\n['file line1']\n"

func rolePlan(t *testing.T, role string) (*Plan, FileSpec) {
	t.Helper()
	p := mustParse(t, strings.Replace(minimal(`repo = "/r"`), `source = "a.conf"`, `source = "roles/app/templates/main.j2"
    template = "jinja2"
    role = "`+role+`"`, 1))
	hs, diags := p.ForHost(&inventory.Host{Name: "web1", Vars: map[string]any{}}, "v1")
	if diags.HasErrors() {
		t.Fatal(diagsText(diags))
	}
	return p, hs.Files[0]
}

func TestRoleRendersAsAnsible(t *testing.T) {
	repo, rev, dir := commitFiles(t, roleFiles)
	// the working tree is never read: a change there does not count
	if err := os.WriteFile(filepath.Join(dir, "roles/app/vars/main.yml"), []byte("both: working-tree\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	inv, _ := loadInventory(t, map[string]string{
		"inventory.ini":      "[web]\nweb1 port=9\n",
		"group_vars/web.yml": "both: groupvars\n",
	})
	p, f := rolePlan(t, "roles/app")
	if f.Role != "roles/app" {
		t.Fatalf("role = %q", f.Role)
	}
	src, err := repo.ReadFile(rev, f.Source)
	if err != nil {
		t.Fatal(err)
	}
	out, diags := p.RenderAt(repo, f, src, inv.Host("web1"), rev)
	if diags.HasErrors() {
		t.Fatal(diagsText(diags))
	}
	if string(out) != roleWant {
		t.Errorf("got %q\nwant %q", out, roleWant)
	}
	// without the repository, a role is an error, not ignored
	if _, diags := p.Render(f, src, inv.Host("web1"), rev); !diags.HasErrors() {
		t.Error("Render without a repository ignored the role")
	}
}

func TestRoleErrors(t *testing.T) {
	repo, rev, _ := commitFiles(t, map[string]string{
		"roles/app/templates/main.j2": "x",
		"roles/app/defaults/main.yml": "bad: \"{{ nope }}\"\n",
		"roles/bad/defaults/main.yml": "- not a mapping\n",
	})
	h := &inventory.Host{Name: "web1", Vars: map[string]any{}}
	tests := []struct {
		role, src string
		want      []string
	}{
		{"roles/missing", "x", []string{"Role not in the repository", `"roles/missing"`, "not a directory of the repository at " + ShortRev(rev)}},
		{"roles/bad", "x", []string{"Invalid role variables", "roles/bad/defaults/main.yml:1", "expected a mapping"}},
		{"roles/app", "{{ bad }}", []string{"Jinja2 variable failed", `variable "bad" (roles/app/defaults/main.yml:1)`, "'nope' is undefined"}},
		{"roles/app", "{{ lookup('env', 'HOME') }}", []string{"lookup('env', \"HOME\"): refused: the controller's environment is not pinned"}},
		{"roles/app", "{{ lookup('pipe', 'date') }}", []string{"lookup('pipe', \"date\"): refused", "not pinned"}},
		{"roles/app", "{{ lookup('file', 'none.txt') }}", []string{"not found in the repository", "roles/app/files/none.txt", "files/none.txt"}},
		{"roles/app", "{{ lookup('file', '/etc/passwd') }}", []string{"outside the repository"}},
		{"roles/app", "{{ lookup('password', 'x') }}", []string{"the password lookup is not supported"}},
	}
	for _, tt := range tests {
		p, f := rolePlan(t, tt.role)
		out, diags := p.RenderAt(repo, f, []byte(tt.src), h, rev)
		if !diags.HasErrors() || out != nil {
			t.Errorf("%s %s: rendered %q, want an error", tt.role, tt.src, out)
			continue
		}
		text := diagsText(diags)
		for _, w := range tt.want {
			if !strings.Contains(text, w) {
				t.Errorf("%s %s: %s does not say %q", tt.role, tt.src, text, w)
			}
		}
		if strings.HasPrefix(tt.want[0], "Role not") && (diags[0].Subject == nil || diags[0].Subject.Start.Line == 0) {
			t.Errorf("%s: no subject at the role attribute", tt.role)
		}
	}
}

func TestLookupSearchesRoleThenRepository(t *testing.T) {
	repo, rev, _ := commitFiles(t, roleFiles)
	h := &inventory.Host{Name: "web1", Vars: map[string]any{}}
	p, f := rolePlan(t, "roles/app")
	out, diags := p.RenderAt(repo, f, []byte("{{ lookup('file', 'top.txt') }}|{{ lookup('file', 'files/f.txt', rstrip=false) }}|{{ lookup('file', 'f.txt', 'top.txt') }}"), h, rev)
	if diags.HasErrors() {
		t.Fatal(diagsText(diags))
	}
	if want := "top|file line1\n\n\n|file line1,top"; string(out) != want {
		t.Errorf("got %q, want %q", out, want)
	}
}
