package plan

import (
	"errors"
	"io/fs"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/rollout-sh/rollout/internal/gittree"
)

// TreeFS is the tree of one commit as an io/fs file system (paths
// relative to the repository root), read through the repository's lock
// and its per-commit file cache.
type TreeFS = gittree.TreeFS

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
	return gittree.New(r.repo, plumbing.NewHash(commit), &r.mu, func(name string) ([]byte, error) { return r.ReadFile(commit, name) }), nil
}
