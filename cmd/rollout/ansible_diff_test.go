package main

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/rollout-sh/rollout/internal/fleet"
	"github.com/rollout-sh/rollout/internal/gittree"
)

// The differential test: every inventory of inventory/testdata/ansible is
// read by ansible-core itself (the code of `ansible-inventory -i INV --list`
// for the merged variables and of `ansible -i INV PATTERN --list-hosts` for
// the hosts each pattern selects, in order; oracle.py runs them all in one
// Python process, and a literal run of both commands checks that it
// answers as they do) and by `rollout hosts --ui json --vars`, and the
// answers must be the same: the hosts in the same order, the same address,
// port, user and key file, and the same merged variables. Each case is a
// directory: the inventory (a file named inventory*, hosts* or a directory
// named inventory), group_vars/ and host_vars/ where the case has them,
// playbook/ when the case has a playbook directory, and patterns (one per
// line).
func TestAnsibleDifferential(t *testing.T) {
	for _, tool := range []string{"ansible", "ansible-inventory"} {
		fleet.RequireTool(t, tool)
	}
	cases, err := filepath.Glob("../../inventory/testdata/ansible/[0-9]*")
	if err != nil || len(cases) < 20 {
		t.Fatalf("corpus: %d cases, %v", len(cases), err)
	}
	dirs := make([]string, len(cases))
	for i, c := range cases {
		dirs[i] = copyCase(t, c)
	}
	answers := askAnsible(t, dirs)
	crossCheckCLI(t, dirs[0], answers[0])
	for i, c := range cases {
		t.Run(filepath.Base(c), func(t *testing.T) {
			compareWithAnsible(t, dirs[i], answers[i])
		})
	}
	// the same inventories read from a git commit (the plan pins v1 of
	// the repository they are in), with every file of the work tree
	// scribbled over: rollout must still agree with ansible-core
	for i, c := range cases {
		commitCase(t, dirs[i])
		t.Run("from-a-commit/"+filepath.Base(c), func(t *testing.T) {
			compareWithAnsible(t, dirs[i], answers[i])
		})
	}
}

// commitCase commits dir as a repository tagged v1 and then overwrites
// every file of its work tree but the patterns.
func commitCase(t *testing.T, dir string) {
	t.Helper()
	repo, h, err := gittree.CommitAll(dir, "case")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := repo.CreateTag("v1", h, nil); err != nil {
		t.Fatal(err)
	}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() && d.Name() == ".git" {
			return filepath.SkipDir
		}
		if d.Type().IsRegular() && d.Name() != "patterns" {
			return os.WriteFile(p, []byte("[scribbled]\nnot_in_the_commit\n"), 0o644)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

type ansibleAnswer struct {
	patterns []string
	hosts    [][]string                // per pattern, in ansible's order
	hostvars map[string]map[string]any // merged variables per host
	listed   map[string]bool           // hosts of the inventory (not the implicit localhost)
}

// ansiblePython is the interpreter of the installed ansible (its #! line):
// the one that can import ansible-core.
func ansiblePython(t *testing.T) string {
	path, err := exec.LookPath("ansible")
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(string(data), "\n")
	fields := strings.Fields(strings.TrimPrefix(first, "#!"))
	if len(fields) == 0 {
		t.Fatalf("%s: no #! line", path)
	}
	if filepath.Base(fields[0]) == "env" && len(fields) > 1 {
		return fields[1]
	}
	return fields[0]
}

func askAnsible(t *testing.T, dirs []string) []*ansibleAnswer {
	type req struct {
		Inventory   string   `json:"inventory"`
		PlaybookDir string   `json:"playbook_dir"`
		Patterns    []string `json:"patterns"`
	}
	reqs := make([]req, len(dirs))
	answers := make([]*ansibleAnswer, len(dirs))
	for i, d := range dirs {
		inv, playbook := caseLayout(d)
		patterns, err := readPatterns(d)
		if err != nil {
			t.Fatal(err)
		}
		reqs[i] = req{inv, playbook, patterns}
		answers[i] = &ansibleAnswer{patterns: patterns}
	}
	in, _ := json.Marshal(reqs)
	outFile := filepath.Join(t.TempDir(), "answers.json")
	oracle, err := filepath.Abs("../../inventory/testdata/ansible/oracle.py")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(ansiblePython(t), oracle, outFile)
	cmd.Stdin = strings.NewReader(string(in))
	cmd.Env = ansibleEnv(t.TempDir())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("oracle.py: %v\n%s", err, out)
	}
	data, err := os.ReadFile(outFile)
	if err != nil {
		t.Fatal(err)
	}
	var raw []struct {
		List  json.RawMessage   `json:"list"`
		Hosts []json.RawMessage `json:"hosts"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	for i, r := range raw {
		a := answers[i]
		a.hostvars, a.listed = parseList(t, r.List)
		for _, h := range r.Hosts {
			var names []string
			if json.Unmarshal(h, &names) != nil {
				names = []string{} // {"error": ...}: ansible matched no host
			}
			a.hosts = append(a.hosts, names)
		}
	}
	return answers
}

// parseList reads ansible-inventory --list: _meta.hostvars, and every
// group's hosts.
func parseList(t *testing.T, raw json.RawMessage) (map[string]map[string]any, map[string]bool) {
	var list map[string]json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil {
		t.Fatal(err)
	}
	var meta struct {
		HostVars map[string]map[string]any `json:"hostvars"`
	}
	_ = json.Unmarshal(list["_meta"], &meta)
	listed := map[string]bool{}
	for name, g := range list {
		if name == "_meta" {
			continue
		}
		var grp struct {
			Hosts []string `json:"hosts"`
		}
		_ = json.Unmarshal(g, &grp)
		for _, h := range grp.Hosts {
			listed[h] = true
		}
	}
	if meta.HostVars == nil {
		meta.HostVars = map[string]map[string]any{}
	}
	return meta.HostVars, listed
}

// crossCheckCLI runs the two ansible commands themselves on one case and
// checks that oracle.py gave the same answers.
func crossCheckCLI(t *testing.T, dir string, a *ansibleAnswer) {
	inv, playbook := caseLayout(dir)
	cmd := exec.Command("ansible-inventory", "-i", inv, "--list", "--playbook-dir", playbook)
	cmd.Env = ansibleEnv(dir)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ansible-inventory: %v", err)
	}
	hv, _ := parseList(t, out)
	if !reflect.DeepEqual(jsonNormal(t, hv), jsonNormal(t, a.hostvars)) {
		t.Fatalf("oracle.py hostvars %v differ from ansible-inventory's %v", a.hostvars, hv)
	}
	cmd = exec.Command("ansible", "-i", inv, a.patterns[0], "--list-hosts")
	cmd.Env = ansibleEnv(dir)
	out, err = cmd.Output()
	if err != nil {
		t.Fatalf("ansible --list-hosts: %v", err)
	}
	var names []string
	for _, l := range strings.Split(string(out), "\n")[1:] {
		if l = strings.TrimSpace(l); l != "" {
			names = append(names, l)
		}
	}
	if !reflect.DeepEqual(names, a.hosts[0]) {
		t.Fatalf("oracle.py hosts %v differ from ansible --list-hosts %v", a.hosts[0], names)
	}
}

// caseLayout finds the inventory source and the playbook directory of a
// case directory.
func caseLayout(dir string) (inv, playbook string) {
	for _, name := range []string{"inventory", "inventory.yml", "inventory.yaml", "hosts", "hosts.yml"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			inv = filepath.Join(dir, name)
			break
		}
	}
	playbook = dir
	if st, err := os.Stat(filepath.Join(dir, "playbook")); err == nil && st.IsDir() {
		playbook = filepath.Join(dir, "playbook")
	}
	return inv, playbook
}

func copyCase(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), filepath.Base(src))
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

func readPatterns(dir string) ([]string, error) {
	data, err := os.ReadFile(filepath.Join(dir, "patterns"))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out, nil
}

// ansibleEnv keeps a user's or the machine's ansible.cfg out of the
// comparison and makes ansible quiet.
func ansibleEnv(dir string) []string {
	return append(os.Environ(), "ANSIBLE_CONFIG="+filepath.Join(dir, "no-ansible.cfg"),
		"ANSIBLE_NOCOLOR=1", "ANSIBLE_LOCALHOST_WARNING=0", "ANSIBLE_INVENTORY_UNPARSED_WARNING=0",
		"ANSIBLE_HOME="+filepath.Join(dir, ".ansible-home"))
}

// connection is what ansible-core connects with, from its merged
// variables: the legacy ansible_ssh_* names win when both are set (the
// ssh plugin lists them last).
func connection(name string, vars map[string]any) (addr string, port int, user, key string) {
	pick := func(names ...string) (any, bool) {
		for i := len(names) - 1; i >= 0; i-- {
			if v, ok := vars[names[i]]; ok && v != nil {
				return v, true
			}
		}
		return nil, false
	}
	addr, port = name, 22
	if v, ok := pick("ansible_host", "ansible_ssh_host"); ok {
		addr = fmt.Sprint(v)
		if m := simpleJinja.FindStringSubmatch(addr); m != nil {
			addr = fmt.Sprint(vars[m[1]])
		}
	}
	if v, ok := pick("ansible_port", "ansible_ssh_port"); ok {
		port, _ = strconv.Atoi(fmt.Sprint(v))
	}
	if v, ok := pick("ansible_user", "ansible_ssh_user"); ok {
		user = fmt.Sprint(v)
	}
	if v, ok := pick("ansible_private_key_file", "ansible_ssh_private_key_file"); ok {
		key = fmt.Sprint(v)
		if strings.HasPrefix(key, "~/") {
			home, _ := os.UserHomeDir()
			key = home + key[1:]
		}
	}
	return addr, port, user, key
}

var simpleJinja = regexp.MustCompile(`^\{\{\s*(\w+)\s*\}\}$`)

func compareWithAnsible(t *testing.T, dir string, ans *ansibleAnswer) {
	inv, playbook := caseLayout(dir)
	planPath := filepath.Join(playbook, "rollout.hcl")
	for i, pattern := range ans.patterns {
		plan := fmt.Sprintf("plan \"diff\" {\n  inventory = %s\n  hosts = %s\n  revision = \"v1\"\n  restart = \"true\"\n  drain \"none\" { reason = \"test\" }\n  file \"f\" {\n    source = \"f\"\n    dest = \"/tmp/f\"\n  }\n}\n",
			strconv.Quote(inv), strconv.Quote(pattern))
		if err := os.WriteFile(planPath, []byte(plan), 0o644); err != nil {
			t.Fatal(err)
		}
		r := rolloutCLI(t, "hosts", planPath, "--ui", "json", "--vars", "--show-secrets")
		want := ans.hosts[i]
		if len(want) == 0 {
			if r.code != 2 || !strings.Contains(r.out+r.errOut, "no hosts matched") {
				t.Errorf("pattern %q: ansible selects no host; rollout: %s", pattern, r)
			}
			continue
		}
		if r.code != 0 {
			t.Errorf("pattern %q: ansible selects %v; rollout: %s", pattern, want, r)
			continue
		}
		got := hostsFromJSON(t, r.out)
		names := make([]string, len(got))
		for j, h := range got {
			names[j] = h.Name
		}
		if !reflect.DeepEqual(names, want) {
			t.Errorf("pattern %q: rollout selects %v, ansible-core %v", pattern, names, want)
			continue
		}
		for _, h := range got {
			if !ans.listed[h.Name] {
				continue // the implicit localhost is not listed by ansible-inventory
			}
			vars := ans.hostvars[h.Name]
			addr, port, user, key := connection(h.Name, vars)
			if h.Address != addr || h.Port != port || h.User != user || h.KeyFile != key {
				t.Errorf("pattern %q host %s: rollout connects to %s@%s:%d key %q, ansible-core to %s@%s:%d key %q",
					pattern, h.Name, h.User, h.Address, h.Port, h.KeyFile, user, addr, port, key)
			}
			if a, b := jsonNormal(t, h.Vars), jsonNormal(t, vars); !reflect.DeepEqual(a, b) {
				t.Errorf("host %s: merged variables differ\nrollout: %s\nansible: %s", h.Name, jsonString(a), jsonString(b))
			}
		}
	}
}

func jsonNormal(t *testing.T, v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
