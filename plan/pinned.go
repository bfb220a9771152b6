package plan

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
)

// Pinned is the machine's file system as a release sees it: every path
// inside the repository's work tree is read from one commit's tree (what
// is committed there, never what lies in the work tree), every other path
// from the disk. It is rooted at "/" — a name is an absolute path without
// its leading slash — so the inventory loader asks for the paths users
// write (inventory.Files). Reads inside the repository are recorded, so
// that Changes can name what the work tree has that the commit has not.
type Pinned struct {
	tree *TreeFS
	repo *Repo
	root string // the repository root as a name of this file system
	os   fs.FS

	// fallback: a repository path the commit does not have is read from
	// the disk (WithFallback)
	fallback bool

	mu   *sync.Mutex
	seen map[string]seenKind // repository paths read through the tree
	disk map[string]bool     // repository paths read from the disk all the same (FromDisk)
}

type seenKind int

const (
	seenFile    seenKind = iota + 1 // read (or stat'd) and found a file
	seenMissing                     // looked for, not at the commit
	seenDir                         // listed
)

// Pinned returns the file system that reads the repository at commit.
func (r *Repo) Pinned(commit string) (*Pinned, error) {
	t, err := r.FS(commit)
	if err != nil {
		return nil, err
	}
	root := r.path
	if abs, err := filepath.Abs(root); err == nil {
		root = abs
	}
	return &Pinned{tree: t, repo: r, root: strings.TrimPrefix(filepath.ToSlash(filepath.Clean(root)), "/"), os: os.DirFS("/"), mu: &sync.Mutex{}, seen: map[string]seenKind{}, disk: map[string]bool{}}, nil
}

// Commit is the commit the repository is read at.
func (p *Pinned) Commit() string { return p.tree.Commit() }

// Root is the repository's root directory (an OS path).
func (p *Pinned) Root() string { return "/" + p.root }

// InRepo reports whether the OS path is inside the repository's work
// tree, and its path relative to the repository root.
func (p *Pinned) InRepo(path string) (string, bool) {
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	return p.repoPath(strings.TrimPrefix(filepath.ToSlash(filepath.Clean(path)), "/"))
}

// WithFallback is p reading a repository path that the commit does not
// have from the disk, without recording it: for ansible.cfg, which may
// be kept out of the repository and names only where the inventory is
// and how hosts are reached.
func (p *Pinned) WithFallback() *Pinned {
	q := *p
	q.fallback = true
	return &q
}

// AtCommit reports whether the commit has the OS path (a file or a
// directory), without recording the look.
func (p *Pinned) AtCommit(path string) bool {
	rel, ok := p.InRepo(path)
	if !ok {
		return false
	}
	_, err := p.tree.Stat(rel)
	return err == nil
}

// FromDisk makes p read the OS path (and everything below it) from the
// disk although it is inside the repository: an inventory the commit
// does not have, which the caller accepts as not pinned.
func (p *Pinned) FromDisk(path string) {
	if rel, ok := p.InRepo(path); ok {
		p.mu.Lock()
		p.disk[rel] = true
		p.mu.Unlock()
	}
}

// rel maps a name of this file system to a repository path read from
// the commit.
func (p *Pinned) rel(name string) (string, bool) {
	rel, ok := p.repoPath(name)
	if !ok {
		return "", false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for d := rel; ; {
		if p.disk[d] {
			return "", false
		}
		i := strings.LastIndexByte(d, '/')
		if i < 0 {
			break
		}
		d = d[:i]
	}
	return rel, true
}

// repoPath maps a name of this file system to a repository path.
func (p *Pinned) repoPath(name string) (string, bool) {
	switch {
	case name == p.root:
		return ".", true
	case strings.HasPrefix(name, p.root+"/"):
		rel := name[len(p.root)+1:]
		if rel == ".git" || strings.HasPrefix(rel, ".git/") {
			return "", false
		}
		return rel, true
	}
	return "", false
}

func (p *Pinned) note(rel string, err error, k seenKind) {
	if errors.Is(err, fs.ErrNotExist) {
		k = seenMissing
	} else if err != nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if old, ok := p.seen[rel]; !ok || k > old {
		p.seen[rel] = k
	}
}

// Open opens name (fs.FS).
func (p *Pinned) Open(name string) (fs.File, error) {
	if rel, ok := p.rel(name); ok {
		f, err := p.tree.Open(rel)
		if p.fallback && errors.Is(err, fs.ErrNotExist) {
			return p.os.Open(name)
		}
		k := seenFile
		if err == nil {
			if st, serr := f.Stat(); serr == nil && st.IsDir() {
				k = seenDir
			}
		}
		p.note(rel, err, k)
		return f, err
	}
	return p.os.Open(name)
}

// Stat describes name (fs.StatFS).
func (p *Pinned) Stat(name string) (fs.FileInfo, error) {
	if rel, ok := p.rel(name); ok {
		st, err := p.tree.Stat(rel)
		if p.fallback && errors.Is(err, fs.ErrNotExist) {
			return fs.Stat(p.os, name)
		}
		if err == nil && st.IsDir() {
			return st, nil // a directory stat'd is not yet listed
		}
		p.note(rel, err, seenFile)
		return st, err
	}
	return fs.Stat(p.os, name)
}

// ReadFile reads name (fs.ReadFileFS).
func (p *Pinned) ReadFile(name string) ([]byte, error) {
	if rel, ok := p.rel(name); ok {
		b, err := p.tree.ReadFile(rel)
		if p.fallback && errors.Is(err, fs.ErrNotExist) {
			return fs.ReadFile(p.os, name)
		}
		p.note(rel, err, seenFile)
		return b, err
	}
	return fs.ReadFile(p.os, name)
}

// ReadDir lists name (fs.ReadDirFS).
func (p *Pinned) ReadDir(name string) ([]fs.DirEntry, error) {
	if rel, ok := p.rel(name); ok {
		list, err := p.tree.ReadDir(rel)
		if p.fallback && errors.Is(err, fs.ErrNotExist) {
			return fs.ReadDir(p.os, name)
		}
		p.note(rel, err, seenDir)
		return list, err
	}
	return fs.ReadDir(p.os, name)
}

// Read is every repository path read through p, sorted.
func (p *Pinned) Read() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for rel, k := range p.seen {
		if k == seenFile {
			out = append(out, rel)
		}
	}
	sort.Strings(out)
	return out
}

// Change is a file that rollout read at the commit and that the work tree
// has otherwise: its content differs, it is missing from the commit, or
// it is gone from the work tree.
type Change struct {
	Path string // relative to the repository root
	// How: "uncommitted" (the work tree differs from HEAD too),
	// "committed after" (HEAD has the work tree's content; the pinned
	// commit has not), "deleted" (in the commit, not in the work tree).
	How string
	// Missing: the commit does not have the file at all (only the work
	// tree, or a later commit, does).
	Missing bool
}

// Changes compares what was read through p with the work tree, and with
// HEAD to tell an uncommitted edit from a later commit. A directory
// listed at the commit reports the files the work tree adds to it
// (hidden files aside).
func (p *Pinned) Changes() []Change {
	p.mu.Lock()
	seen := make(map[string]seenKind, len(p.seen))
	for k, v := range p.seen {
		seen[k] = v
	}
	p.mu.Unlock()

	head, _ := p.repo.ResolveAny("HEAD")
	atHead := func(rel string) ([]byte, bool) {
		if head == "" {
			return nil, false
		}
		b, err := p.repo.ReadFile(head, rel)
		return b, err == nil
	}
	how := func(rel string, disk []byte) string {
		if h, ok := atHead(rel); ok && bytes.Equal(h, disk) {
			return "committed after"
		}
		return "uncommitted"
	}
	onDisk := func(rel string) ([]byte, bool) {
		full := filepath.Join("/"+p.root, filepath.FromSlash(rel))
		st, err := os.Stat(full)
		if err != nil || st.IsDir() {
			return nil, false
		}
		b, err := os.ReadFile(full)
		return b, err == nil
	}
	found := map[string]Change{}
	for rel, k := range seen {
		switch k {
		case seenFile:
			disk, ok := onDisk(rel)
			if !ok {
				found[rel] = Change{Path: rel, How: "deleted"}
				continue
			}
			if b, err := p.tree.ReadFile(rel); err == nil && !bytes.Equal(b, disk) {
				found[rel] = Change{Path: rel, How: how(rel, disk)}
			}
		case seenMissing:
			if disk, ok := onDisk(rel); ok {
				found[rel] = Change{Path: rel, How: how(rel, disk), Missing: true}
			}
		case seenDir:
			list, err := p.tree.ReadDir(rel)
			if err != nil {
				continue
			}
			have := map[string]bool{}
			for _, e := range list {
				have[e.Name()] = true
			}
			entries, err := os.ReadDir(filepath.Join("/"+p.root, filepath.FromSlash(rel)))
			if err != nil {
				continue
			}
			for _, e := range entries {
				if have[e.Name()] || strings.HasPrefix(e.Name(), ".") || e.IsDir() {
					continue
				}
				sub := e.Name()
				if rel != "." {
					sub = rel + "/" + sub
				}
				if _, done := found[sub]; done || seen[sub] != 0 {
					continue
				}
				if disk, ok := onDisk(sub); ok {
					found[sub] = Change{Path: sub, How: how(sub, disk), Missing: true}
				}
			}
		}
	}
	out := make([]Change, 0, len(found))
	for _, c := range found {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}
