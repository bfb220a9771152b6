package gittree

import (
	"fmt"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// CommitAll makes dir a git repository (when it is not one) and commits
// everything in its work tree with a fixed author and date, with go-git
// alone (no git binary, no identity needed). Tests use it to read the
// same files from a commit as from the disk.
func CommitAll(dir, message string) (*git.Repository, plumbing.Hash, error) {
	repo, err := git.PlainOpen(dir)
	if err != nil {
		if repo, err = git.PlainInit(dir, false); err != nil {
			return nil, plumbing.ZeroHash, fmt.Errorf("git init %s: %w", dir, err)
		}
	}
	wt, err := repo.Worktree()
	if err != nil {
		return nil, plumbing.ZeroHash, err
	}
	if err := wt.AddWithOptions(&git.AddOptions{All: true}); err != nil {
		return nil, plumbing.ZeroHash, fmt.Errorf("git add %s: %w", dir, err)
	}
	sig := &object.Signature{Name: "rollout", Email: "rollout@rollout.invalid", When: time.Unix(1767268800, 0).UTC()}
	h, err := wt.Commit(message, &git.CommitOptions{Author: sig, Committer: sig, AllowEmptyCommits: true})
	if err != nil {
		return nil, plumbing.ZeroHash, fmt.Errorf("git commit %s: %w", dir, err)
	}
	return repo, h, nil
}
