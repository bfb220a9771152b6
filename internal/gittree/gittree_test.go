package gittree

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
)

// commitTree writes files (path → content; a "+x" suffix on the path
// makes it executable, "@link " content a symbolic link to the rest)
// into a new repository in dir and commits them (go-git only, no git
// binary); it returns the repository and the commit.
func commitTree(t testing.TB, dir string, files map[string]string) (*git.Repository, plumbing.Hash) {
	t.Helper()
	for name, content := range files {
		mode := os.FileMode(0o644)
		if n, ok := cutSuffix(name, "+x"); ok {
			name, mode = n, 0o755
		}
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if target, ok := cutPrefix(content, "@link "); ok {
			if err := os.Symlink(target, p); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	repo, h, err := CommitAll(dir, "tree")
	if err != nil {
		t.Fatal(err)
	}
	return repo, h
}

func cutSuffix(s, suf string) (string, bool) {
	if len(s) >= len(suf) && s[len(s)-len(suf):] == suf {
		return s[:len(s)-len(suf)], true
	}
	return s, false
}

func cutPrefix(s, pre string) (string, bool) {
	if len(s) >= len(pre) && s[:len(pre)] == pre {
		return s[len(pre):], true
	}
	return s, false
}

func TestTreeFSIsAnFS(t *testing.T) {
	dir := t.TempDir()
	repo, h := commitTree(t, dir, map[string]string{
		"inventory.ini":           "[web]\nweb1\n",
		"group_vars/web.yml":      "a: 1\n",
		"group_vars/db/main.yml":  "b: 2\n",
		"scripts/inv.py+x":        "#!/bin/sh\n",
		"group_vars/z-link.yml":   "@link web.yml",
		"deep/er/still/file.json": "{}",
	})
	tree := New(repo, h, nil, nil)
	// the standard library's conformance test: Open, ReadDir, Stat,
	// ReadFile, Sub and Glob agree with each other
	if err := fstest.TestFS(tree, "group_vars/z-link.yml", "inventory.ini", "group_vars/web.yml", "group_vars/db/main.yml", "scripts/inv.py", "deep/er/still/file.json"); err != nil {
		t.Fatal(err)
	}
	b, err := fs.ReadFile(tree, "group_vars/db/main.yml")
	if err != nil || string(b) != "b: 2\n" {
		t.Errorf("ReadFile = %q, %v", b, err)
	}
	st, err := fs.Stat(tree, "scripts/inv.py")
	if err != nil || st.Mode()&0o111 == 0 {
		t.Errorf("an executable file in git is not executable in the tree: %v %v", st, err)
	}
	// a link is followed inside the tree, never out of it
	if b, err := fs.ReadFile(tree, "group_vars/z-link.yml"); err != nil || string(b) != "a: 1\n" {
		t.Errorf("a symbolic link inside the tree: %q, %v", b, err)
	}
	repo2, h2 := commitTree(t, t.TempDir(), map[string]string{"escape.yml": "@link ../../etc/passwd"})
	if _, err := fs.ReadFile(New(repo2, h2, nil, nil), "escape.yml"); err == nil {
		t.Error("a symbolic link out of the repository was followed")
	}
	if _, err := fs.Stat(tree, "group_vars/nope.yml"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a missing file: %v, want fs.ErrNotExist", err)
	}
	// the work tree is not what is read
	if err := os.WriteFile(filepath.Join(dir, "group_vars/web.yml"), []byte("a: 9\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "group_vars/new.yml"), []byte("c: 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, _ := fs.ReadFile(tree, "group_vars/web.yml"); string(b) != "a: 1\n" {
		t.Errorf("read the work tree's edit: %q", b)
	}
	if _, err := fs.Stat(tree, "group_vars/new.yml"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("an uncommitted file is in the tree: %v", err)
	}
}
