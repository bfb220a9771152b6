package plan

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"sort"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// TreeFS is the tree of one commit as an io/fs file system: paths are
// relative to the repository root, in fs.FS's slash form. It reads the
// object store only (never the working tree, never a checkout), through
// the repository's lock and its per-commit file cache, so it is safe for
// concurrent use. Files carry mode 0644 (0755 when git records them
// executable) and a zero modification time; a symbolic link is refused
// when opened, as ReadFile refuses it.
type TreeFS struct {
	r      *Repo
	commit string
}

// FS returns the tree of commit (a full hash the repository has) as a
// file system.
func (r *Repo) FS(commit string) (*TreeFS, error) {
	if !isFullHash(commit) {
		return nil, &fs.PathError{Op: "open", Path: ".", Err: errors.New("not a full commit hash: " + commit)}
	}
	commit = strings.ToLower(commit)
	r.mu.Lock()
	_, err := r.repo.CommitObject(plumbing.NewHash(commit))
	r.mu.Unlock()
	if err != nil {
		return nil, r.unknown(commit)
	}
	return &TreeFS{r: r, commit: commit}, nil
}

// Commit is the commit this file system shows.
func (t *TreeFS) Commit() string { return t.commit }

// entry is what the tree holds at name: a directory's entries, or a
// file's mode. ok is false when the tree holds nothing there.
func (t *TreeFS) entry(name string) (mode filemode.FileMode, size int64, dir []object.TreeEntry, err error) {
	t.r.mu.Lock()
	defer t.r.mu.Unlock()
	c, err := t.r.repo.CommitObject(plumbing.NewHash(t.commit))
	if err != nil {
		return 0, 0, nil, err
	}
	tree, err := c.Tree()
	if err != nil {
		return 0, 0, nil, err
	}
	if name == "." {
		return filemode.Dir, 0, tree.Entries, nil
	}
	e, err := tree.FindEntry(name)
	if err != nil {
		if errors.Is(err, object.ErrEntryNotFound) || errors.Is(err, object.ErrDirectoryNotFound) || errors.Is(err, object.ErrFileNotFound) {
			return 0, 0, nil, fs.ErrNotExist
		}
		return 0, 0, nil, err
	}
	switch e.Mode {
	case filemode.Dir:
		sub, err := tree.Tree(name)
		if err != nil {
			return 0, 0, nil, err
		}
		return filemode.Dir, 0, sub.Entries, nil
	case filemode.Submodule:
		return 0, 0, nil, fs.ErrNotExist
	}
	size, err = t.r.repo.Storer.EncodedObjectSize(e.Hash)
	if err != nil {
		return 0, 0, nil, err
	}
	return e.Mode, size, nil, nil
}

func pathErr(op, name string, err error) error {
	return &fs.PathError{Op: op, Path: name, Err: err}
}

// Stat describes name without reading a file's content.
func (t *TreeFS) Stat(name string) (fs.FileInfo, error) {
	if !fs.ValidPath(name) {
		return nil, pathErr("stat", name, fs.ErrInvalid)
	}
	mode, size, _, err := t.entry(name)
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
	mode, _, _, err := t.entry(name)
	if err != nil {
		return nil, pathErr("read", name, err)
	}
	if mode == filemode.Dir {
		return nil, pathErr("read", name, errors.New("is a directory"))
	}
	b, err := t.r.ReadFile(t.commit, name)
	if err != nil {
		return nil, pathErr("read", name, err)
	}
	return bytes.Clone(b), nil
}

// ReadDir lists the directory name, sorted by file name.
func (t *TreeFS) ReadDir(name string) ([]fs.DirEntry, error) {
	if !fs.ValidPath(name) {
		return nil, pathErr("readdir", name, fs.ErrInvalid)
	}
	mode, _, entries, err := t.entry(name)
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
	mode, size, _, err := t.entry(name)
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

func (d treeDirEntry) Name() string      { return d.e.Name }
func (d treeDirEntry) IsDir() bool       { return d.e.Mode == filemode.Dir }
func (d treeDirEntry) Type() fs.FileMode { return treeInfo{mode: d.e.Mode}.Mode().Type() }
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
