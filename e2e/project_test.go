package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// project is a config repository an end-to-end test writes and commits
// (an Ansible layout with a plan beside it, as operators keep them).
type project struct {
	t   *testing.T
	dir string
}

// write writes each file (path → content) under the project.
func (p project) write(files map[string]string) {
	p.t.Helper()
	for name, content := range files {
		path := filepath.Join(p.dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			p.t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			p.t.Fatal(err)
		}
	}
}

// git runs git in the project with a fixed identity and no user config,
// and returns its output.
func (p project) git(args ...string) string {
	p.t.Helper()
	cmd := exec.Command("git", append([]string{"-C", p.dir}, args...)...)
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t.invalid", "GIT_COMMITTER_NAME=t",
		"GIT_COMMITTER_EMAIL=t@t.invalid", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		p.t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// commit commits everything and tags it.
func (p project) commit(tag string) {
	p.t.Helper()
	if _, err := os.Stat(filepath.Join(p.dir, ".git")); err != nil {
		p.git("init", "-q", "-b", "main")
	}
	p.git("add", "-A")
	p.git("commit", "-q", "-m", tag)
	p.git("tag", tag)
}
