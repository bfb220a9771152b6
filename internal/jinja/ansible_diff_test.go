package jinja

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/rollout-sh/rollout/internal/fleet"
)

// TestTemplateMatchesAnsible renders every template under
// testdata/ansible-diff with ansible-core's template module (one
// ansible-playbook run for all of them) and with RenderWith, from the same
// vars.yml, and requires the same bytes.
func TestTemplateMatchesAnsible(t *testing.T) {
	fleet.RequireTool(t, "ansible-playbook")
	dir, err := filepath.Abs("testdata/ansible-diff")
	if err != nil {
		t.Fatal(err)
	}
	templates, err := filepath.Glob(filepath.Join(dir, "*.j2"))
	if err != nil || len(templates) == 0 {
		t.Fatalf("no templates in %s: %v", dir, err)
	}
	out := t.TempDir()
	work := t.TempDir()
	playbook := filepath.Join(work, "render.yml")
	if err := os.WriteFile(playbook, []byte(`- hosts: localhost
  gather_facts: false
  vars_files: [`+filepath.Join(dir, "vars.yml")+`]
  tasks:
    - template:
        src: "{{ item }}"
        dest: "{{ out }}/{{ item | basename }}"
      loop: "{{ query('fileglob', dir + '/*.j2') }}"
`), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ansible-playbook", "-i", "localhost,", "-c", "local",
		"-e", "ansible_python_interpreter=/usr/bin/python3", "-e", "out="+out, "-e", "dir="+dir, playbook)
	cmd.Dir = work
	cmd.Env = append(os.Environ(), "ANSIBLE_CONFIG="+filepath.Join(work, "none.cfg"), "ANSIBLE_NOCOLOR=1",
		"ANSIBLE_LOCAL_TEMP="+filepath.Join(work, "tmp"), "ANSIBLE_HOME="+filepath.Join(work, "home"))
	if o, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ansible-playbook: %v\n%s", err, o)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "vars.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var vars map[string]any
	if err := yaml.Unmarshal(raw, &vars); err != nil {
		t.Fatal(err)
	}
	vars = normalize(vars).(map[string]any)
	for _, tpl := range templates {
		name := filepath.Base(tpl)
		t.Run(name, func(t *testing.T) {
			want, err := os.ReadFile(filepath.Join(out, name))
			if err != nil {
				t.Fatal(err)
			}
			src, err := os.ReadFile(tpl)
			if err != nil {
				t.Fatal(err)
			}
			got, err := RenderWith(name, src, vars, Options{})
			if err != nil {
				t.Fatalf("rollout: %v\nansible renders:\n%s", err, want)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("rollout renders\n%q\nansible renders\n%q\n%s", got, want, firstDiff(got, want))
			}
		})
	}
}

func firstDiff(a, b []byte) string {
	al, bl := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
	for i := 0; i < len(al) && i < len(bl); i++ {
		if al[i] != bl[i] {
			return "line " + strconv.Itoa(i+1) + ":\n rollout: " + al[i] + "\n ansible: " + bl[i]
		}
	}
	return "lengths differ"
}
