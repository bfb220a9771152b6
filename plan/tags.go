package plan

import (
	"fmt"
	"sort"

	"github.com/go-git/go-git/v5/plumbing"
)

// Tags lists the repository's tag names, sorted: the revisions a plan may
// pin besides full hashes (shell completion offers them).
func (r *Repo) Tags() ([]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	iter, err := r.repo.Tags()
	if err != nil {
		return nil, fmt.Errorf("list tags of %s: %w", r.path, err)
	}
	var names []string
	err = iter.ForEach(func(ref *plumbing.Reference) error {
		names = append(names, ref.Name().Short())
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list tags of %s: %w", r.path, err)
	}
	sort.Strings(names)
	return names, nil
}
