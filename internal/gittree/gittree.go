// Package gittree shows the tree of one git commit as an io/fs file
// system, read from the object store (never a work tree, never a
// checkout). plan reads a pinned revision through it; the inventory's
// tests read their trees through it too, so the inventory loader is
// proven over a commit as over the disk.
package gittree

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// TreeFS is the tree of one commit as an io/fs file system: paths are
// relative to the repository root, in fs.FS's slash form. go-git is not
// safe for concurrent use: every look at the repository holds mu. Files
// carry mode 0644 (0755 when git records them executable) and a zero
// modification time; a symbolic link cannot be read (its content is a
// link target, not a file).
type TreeFS struct {
	mu     sync.Locker
	repo   *git.Repository
	commit plumbing.Hash
	read   func(name string) ([]byte, error)
}

// New is the tree of commit in repo. mu guards repo (nil: a lock of its
// own); read, when not nil, reads a regular file's content (a caller's
// cache) and is called without mu held.
func New(repo *git.Repository, commit plumbing.Hash, mu sync.Locker, read func(name string) ([]byte, error)) *TreeFS {
	if mu == nil {
		mu = &sync.Mutex{}
	}
	return &TreeFS{mu: mu, repo: repo, commit: commit, read: read}
}

// Commit is the commit this file system shows.
func (t *TreeFS) Commit() string { return t.commit.String() }

// entry is what the tree holds at name: a directory's entries, or a
// file's mode and size. A symbolic link is followed inside the tree (a
// target outside it, or a chain of more than 8, is an error); real is the
// path finally looked at.
func (t *TreeFS) entry(name string) (real string, mode filemode.FileMode, size int64, dir []object.TreeEntry, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	c, err := t.repo.CommitObject(t.commit)
	if err != nil {
		return "", 0, 0, nil, err
	}
	tree, err := c.Tree()
	if err != nil {
		return "", 0, 0, nil, err
	}
	for hops := 0; ; hops++ {
		if name == "." {
			return name, filemode.Dir, 0, tree.Entries, nil
		}
		e, err := tree.FindEntry(name)
		if err != nil {
			if errors.Is(err, object.ErrEntryNotFound) || errors.Is(err, object.ErrDirectoryNotFound) || errors.Is(err, object.ErrFileNotFound) {
				return "", 0, 0, nil, fs.ErrNotExist
			}
			return "", 0, 0, nil, err
		}
		switch e.Mode {
		case filemode.Dir:
			sub, err := tree.Tree(name)
			if err != nil {
				return "", 0, 0, nil, err
			}
			return name, filemode.Dir, 0, sub.Entries, nil
		case filemode.Submodule:
			return "", 0, 0, nil, fs.ErrNotExist
		case filemode.Symlink:
			if hops == 8 {
				return "", 0, 0, nil, errors.New("too many levels of symbolic links")
			}
			f, err := tree.TreeEntryFile(e)
			if err != nil {
				return "", 0, 0, nil, err
			}
			target, err := f.Contents()
			if err != nil {
				return "", 0, 0, nil, err
			}
			next := path.Clean(path.Join(path.Dir(name), target))
			if path.IsAbs(target) || next == ".." || strings.HasPrefix(next, "../") {
				return "", 0, 0, nil, fmt.Errorf("a symbolic link to %s, outside the repository", target)
			}
			name = next
			continue
		}
		size, err := t.repo.Storer.EncodedObjectSize(e.Hash)
		if err != nil {
			return "", 0, 0, nil, err
		}
		return name, e.Mode, size, nil, nil
	}
}

func pathErr(op, name string, err error) error {
	return &fs.PathError{Op: op, Path: name, Err: err}
}

// Stat describes name without reading a file's content.
func (t *TreeFS) Stat(name string) (fs.FileInfo, error) {
	if !fs.ValidPath(name) {
		return nil, pathErr("stat", name, fs.ErrInvalid)
	}
	_, mode, size, _, err := t.entry(name)
	if err != nil {
		return nil, pathErr("stat", name, err)
	}
	return treeInfo{name: pathBase(name), mode: mode, size: size}, nil
}

// ReadFile reads the file name from the commit.
func (t *TreeFS) ReadFile(name string) ([]byte, error) {
	if !fs.ValidPath(name) || name == "." {
		return nil, pathErr("read", name, fs.ErrInvalid)
	}
	real, mode, _, _, err := t.entry(name)
	if err != nil {
		return nil, pathErr("read", name, err)
	}
	if mode == filemode.Dir {
		return nil, pathErr("read", name, errors.New("is a directory"))
	}
	if t.read != nil {
		b, err := t.read(real)
		if err != nil {
			return nil, pathErr("read", name, err)
		}
		return bytes.Clone(b), nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	c, err := t.repo.CommitObject(t.commit)
	if err != nil {
		return nil, pathErr("read", name, err)
	}
	f, err := c.File(real)
	if err != nil {
		return nil, pathErr("read", name, err)
	}
	content, err := f.Contents()
	if err != nil {
		return nil, pathErr("read", name, err)
	}
	return []byte(content), nil
}

// ReadDir lists the directory name, sorted by file name.
func (t *TreeFS) ReadDir(name string) ([]fs.DirEntry, error) {
	if !fs.ValidPath(name) {
		return nil, pathErr("readdir", name, fs.ErrInvalid)
	}
	_, mode, _, entries, err := t.entry(name)
	if err != nil {
		return nil, pathErr("readdir", name, err)
	}
	if mode != filemode.Dir {
		return nil, pathErr("readdir", name, errors.New("not a directory"))
	}
	out := make([]fs.DirEntry, 0, len(entries))
	for _, e := range entries {
		if e.Mode == filemode.Submodule {
			continue
		}
		out = append(out, treeDirEntry{t: t, dir: name, e: e})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out, nil
}

// Open opens name for reading (fs.FS).
func (t *TreeFS) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, pathErr("open", name, fs.ErrInvalid)
	}
	_, mode, size, _, err := t.entry(name)
	if err != nil {
		return nil, pathErr("open", name, err)
	}
	info := treeInfo{name: pathBase(name), mode: mode, size: size}
	if mode == filemode.Dir {
		list, err := t.ReadDir(name)
		if err != nil {
			return nil, err
		}
		return &treeDir{info: info, entries: list}, nil
	}
	b, err := t.ReadFile(name)
	if err != nil {
		return nil, err
	}
	return &treeFile{info: info, Reader: bytes.NewReader(b)}, nil
}

func pathBase(name string) string {
	if name == "." {
		return "."
	}
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		return name[i+1:]
	}
	return name
}

type treeInfo struct {
	name string
	mode filemode.FileMode
	size int64
}

func (i treeInfo) Name() string       { return i.name }
func (i treeInfo) Size() int64        { return i.size }
func (i treeInfo) ModTime() time.Time { return time.Time{} }
func (i treeInfo) IsDir() bool        { return i.mode == filemode.Dir }
func (i treeInfo) Sys() any           { return nil }
func (i treeInfo) Mode() fs.FileMode {
	switch i.mode {
	case filemode.Dir:
		return fs.ModeDir | 0o755
	case filemode.Executable:
		return 0o755
	case filemode.Symlink:
		return fs.ModeSymlink | 0o777
	}
	return 0o644
}

type treeDirEntry struct {
	t   *TreeFS
	dir string
	e   object.TreeEntry
}

func (d treeDirEntry) Name() string { return d.e.Name }
func (d treeDirEntry) IsDir() bool  { return d.Type().IsDir() }

// Type is the type of what the entry is, a symbolic link followed (as
// Info, which is Stat, follows it).
func (d treeDirEntry) Type() fs.FileMode {
	if d.e.Mode == filemode.Symlink {
		if st, err := d.Info(); err == nil {
			return st.Mode().Type()
		}
	}
	return treeInfo{mode: d.e.Mode}.Mode().Type()
}
func (d treeDirEntry) Info() (fs.FileInfo, error) {
	name := d.e.Name
	if d.dir != "." {
		name = d.dir + "/" + name
	}
	return d.t.Stat(name)
}

type treeFile struct {
	info treeInfo
	*bytes.Reader
}

func (f *treeFile) Stat() (fs.FileInfo, error) { return f.info, nil }
func (f *treeFile) Close() error               { return nil }

type treeDir struct {
	info    treeInfo
	entries []fs.DirEntry
	next    int
}

func (d *treeDir) Stat() (fs.FileInfo, error) { return d.info, nil }
func (d *treeDir) Close() error               { return nil }
func (d *treeDir) Read([]byte) (int, error) {
	return 0, pathErr("read", d.info.name, errors.New("is a directory"))
}

func (d *treeDir) ReadDir(n int) ([]fs.DirEntry, error) {
	rest := d.entries[d.next:]
	if n <= 0 {
		d.next = len(d.entries)
		return rest, nil
	}
	if len(rest) == 0 {
		return nil, io.EOF
	}
	n = min(n, len(rest))
	d.next += n
	return rest[:n], nil
}
