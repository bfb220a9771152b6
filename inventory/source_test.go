package inventory

import (
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/rollout-sh/rollout/internal/gittree"
)

// committed is root's files as a commit has them, the rest of the
// machine from the disk: what rollout reads an inventory inside the
// config repository through (plan.Pinned does the same over plan.Repo).
type committed struct {
	root string // as a name of a file system rooted at "/"
	tree fs.FS
}

func (c committed) route(name string) (fs.FS, string) {
	if name == c.root {
		return c.tree, "."
	}
	if rel, ok := strings.CutPrefix(name, c.root+"/"); ok && rel != ".git" && !strings.HasPrefix(rel, ".git/") {
		return c.tree, rel
	}
	return Disk, name
}

func (c committed) Open(name string) (fs.File, error) {
	f, n := c.route(name)
	return f.Open(n)
}

func (c committed) Stat(name string) (fs.FileInfo, error) {
	f, n := c.route(name)
	return fs.Stat(f, n)
}

func (c committed) ReadFile(name string) ([]byte, error) {
	f, n := c.route(name)
	return fs.ReadFile(f, n)
}

func (c committed) ReadDir(name string) ([]fs.DirEntry, error) {
	f, n := c.route(name)
	return fs.ReadDir(f, n)
}

// loadBoth is LoadWith run twice: from the disk, and with everything
// under root read from a git commit of it (no checkout). Both must give
// the same inventory — hosts in order, connection settings, groups,
// variables — the same warnings and the same error; it returns the disk's.
// Then the disk is changed under the commit, and the commit's reading
// must not move: what the tree holds is what is read.
func loadBoth(t *testing.T, root string, sources []string, opts Options) (*Inventory, error) {
	t.Helper()
	disk, derr := LoadWith(sources, opts)
	repo, h, err := gittree.CommitAll(root, "inventory")
	if err != nil {
		t.Fatal(err)
	}
	opts.FS = committed{root: FSName(root), tree: gittree.New(repo, h, nil, nil)}
	tree, terr := LoadWith(sources, opts)
	switch {
	case (derr == nil) != (terr == nil):
		t.Fatalf("from the disk: %v; from a commit: %v", derr, terr)
	case derr != nil:
		if derr.Error() != terr.Error() {
			t.Errorf("errors differ:\n disk:   %v\n commit: %v", derr, terr)
		}
		return disk, derr
	}
	same := func(tree *Inventory, when string) {
		t.Helper()
		if disk.Digest() != tree.Digest() {
			t.Errorf("%s: the inventory read from a commit differs from the disk's:\n disk:   %v\n commit: %v", when, hostsOf(disk), hostsOf(tree))
		}
		if !reflect.DeepEqual(disk.Warnings(), tree.Warnings()) {
			t.Errorf("%s: warnings differ:\n disk:   %q\n commit: %q", when, disk.Warnings(), tree.Warnings())
		}
	}
	same(tree, "committed")
	// scribble over every file of the work tree (and put them back
	// after): the commit's reading stays
	saved := map[string][]byte{}
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() && d.Name() == ".git" {
			return filepath.SkipDir
		}
		if !d.IsDir() && d.Type().IsRegular() {
			if b, err := os.ReadFile(p); err == nil {
				saved[p] = b
				_ = os.WriteFile(p, []byte("[scribbled]\nnot_the_committed_host\n"), 0o644)
			}
		}
		return nil
	})
	defer func() {
		for p, b := range saved {
			_ = os.WriteFile(p, b, 0o644)
		}
	}()
	again, err := LoadWith(sources, opts)
	if err != nil {
		t.Fatalf("from the commit after the work tree changed: %v", err)
	}
	same(again, "work tree changed")
	return disk, nil
}

func hostsOf(inv *Inventory) []Host {
	var out []Host
	for _, h := range inv.Hosts() {
		c := *h
		c.inv = nil
		out = append(out, c)
	}
	return out
}
