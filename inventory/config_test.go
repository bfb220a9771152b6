package inventory

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseConfig(t *testing.T) {
	dir := writeTree(t, map[string]string{"ansible.cfg": `# comment
[defaults]
inventory = hosts, more/
remote_user = deploy
private_key_file = keys/id_ed25519
forks = 7
host_key_checking = False

[ssh_connection]
ssh_args = -o ControlMaster=auto -o StrictHostKeyChecking=no
`})
	cfg, err := ParseConfig(filepath.Join(dir, "ansible.cfg"), mustRead(t, filepath.Join(dir, "ansible.cfg")))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{filepath.Join(dir, "hosts"), filepath.Join(dir, "more")}; !reflect.DeepEqual(cfg.Inventory, want) {
		t.Errorf("Inventory = %v, want %v", cfg.Inventory, want)
	}
	if cfg.Defaults.RemoteUser != "deploy" || cfg.Defaults.PrivateKeyFile != filepath.Join(dir, "keys/id_ed25519") || cfg.Forks != 7 {
		t.Errorf("cfg = %+v", cfg)
	}
	if len(cfg.Warnings) != 2 || !strings.Contains(cfg.Warnings[0], "ansible.cfg:7: host_key_checking = False is not honoured") ||
		!strings.Contains(cfg.Warnings[1], "ansible.cfg:10: ssh_args") {
		t.Errorf("warnings = %q", cfg.Warnings)
	}
	if _, err := ParseConfig("bad.cfg", []byte("[defaults]\nforks = many\n")); err == nil || !strings.HasPrefix(err.Error(), "bad.cfg:2: ") {
		t.Errorf("bad forks: %v", err)
	}
}

// ansible.cfg is found as ansible-core finds it: $ANSIBLE_CONFIG first,
// then the current directory, then (rollout) the plan's directory.
func TestFindConfigOrder(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"env/my.cfg":          "[defaults]\nremote_user = from-env\n",
		"cwd/ansible.cfg":     "[defaults]\nremote_user = from-cwd\n",
		"plandir/ansible.cfg": "[defaults]\nremote_user = from-plan-dir\n",
	})
	t.Setenv("HOME", filepath.Join(dir, "home"))
	wd, _ := os.Getwd()
	defer os.Chdir(wd)
	if err := os.Chdir(filepath.Join(dir, "cwd")); err != nil {
		t.Fatal(err)
	}
	t.Setenv("ANSIBLE_CONFIG", filepath.Join(dir, "env/my.cfg"))
	if cfg, _ := FindConfig(filepath.Join(dir, "plandir")); cfg.Defaults.RemoteUser != "from-env" {
		t.Errorf("with ANSIBLE_CONFIG: %+v", cfg)
	}
	t.Setenv("ANSIBLE_CONFIG", "")
	if cfg, _ := FindConfig(filepath.Join(dir, "plandir")); cfg.Defaults.RemoteUser != "from-cwd" {
		t.Errorf("cwd: %+v", cfg)
	}
	if err := os.Chdir(dir); err != nil {
		t.Fatal(err)
	}
	if cfg, _ := FindConfig(filepath.Join(dir, "plandir")); cfg.Defaults.RemoteUser != "from-plan-dir" {
		t.Errorf("plan dir: %+v", cfg)
	}
}

// remote_user and private_key_file apply to hosts that do not set their
// own, as in Ansible.
func TestConfigDefaultsApply(t *testing.T) {
	dir := writeTree(t, map[string]string{"hosts": "a\nb ansible_user=own ansible_ssh_private_key_file=/own\n"})
	inv, err := loadBoth(t, dir, []string{filepath.Join(dir, "hosts")}, Options{Defaults: Defaults{RemoteUser: "deploy", PrivateKeyFile: "/k"}})
	if err != nil {
		t.Fatal(err)
	}
	if a := inv.Host("a"); a.User != "deploy" || a.KeyFile != "/k" {
		t.Errorf("a = %+v", a)
	}
	if b := inv.Host("b"); b.User != "own" || b.KeyFile != "/own" {
		t.Errorf("b = %+v", b)
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Digest changes with anything the inventory resolves to, wherever it was
// written (here a group_vars file), and only then.
func TestDigest(t *testing.T) {
	dir := writeTree(t, map[string]string{"hosts": "[web]\nw1\nw2\n", "group_vars/web.yml": "port: 1\n"})
	load := func() string {
		inv, err := loadBoth(t, dir, []string{filepath.Join(dir, "hosts")}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		return inv.Digest()
	}
	a, b := load(), load()
	if a != b {
		t.Fatal("digest of the same inventory differs")
	}
	if err := os.WriteFile(filepath.Join(dir, "group_vars/web.yml"), []byte("port: 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if load() == a {
		t.Error("a group_vars change left the digest unchanged")
	}
	if err := os.WriteFile(filepath.Join(dir, "hosts"), []byte("[web]\nw2\nw1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := load()
	if err := os.WriteFile(filepath.Join(dir, "hosts"), []byte("[web]\nw1\nw2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if load() == c {
		t.Error("a change of host order left the digest unchanged")
	}
}
