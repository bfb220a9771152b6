package inventory

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Files is where an inventory, its group_vars/ and host_vars/ and
// ansible.cfg are read from: an io/fs file system rooted at "/", so the
// paths users write (inventory.ini, ../inventories/prod) are the names
// it is asked for, made absolute and without the leading slash. The
// local disk is os.DirFS("/"); rollout gives a view in which the paths
// inside the config repository come from the pinned commit's tree
// (plan.Pinned), so a revision fixes the variables as it fixes the
// templates.
type Files = fs.FS

// Disk is the local file system as Files.
var Disk Files = os.DirFS("/")

// reader reads OS paths from a Files, reporting errors with the OS path.
type reader struct{ fsys fs.FS }

func (r reader) fs() fs.FS {
	if r.fsys == nil {
		return Disk
	}
	return r.fsys
}

// FSName is path as a name of a Files rooted at "/": absolute, cleaned,
// without the leading slash ("." for "/").
func FSName(path string) string {
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	name := strings.TrimPrefix(filepath.ToSlash(filepath.Clean(path)), "/")
	if name == "" {
		return "."
	}
	return name
}

// osErr puts the OS path back into a *fs.PathError.
func osErr(path string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return &fs.PathError{Op: pe.Op, Path: path, Err: pe.Err}
	}
	return err
}

func (r reader) readFile(path string) ([]byte, error) {
	b, err := fs.ReadFile(r.fs(), FSName(path))
	return b, osErr(path, err)
}

func (r reader) stat(path string) (fs.FileInfo, error) {
	st, err := fs.Stat(r.fs(), FSName(path))
	return st, osErr(path, err)
}

func (r reader) readDir(path string) ([]fs.DirEntry, error) {
	list, err := fs.ReadDir(r.fs(), FSName(path))
	return list, osErr(path, err)
}
