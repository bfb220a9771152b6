package plan

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// ErrUnknownRevision is wrapped by errors for a revision the repository
// does not have.
var ErrUnknownRevision = errors.New("unknown revision")

// ErrNoSuchFile is wrapped by ReadFile's error for a path the commit does
// not hold.
var ErrNoSuchFile = errors.New("no such file")

// NotPinnedError refuses a revision that can move: a branch, HEAD, a short
// hash, or a symbolic expression such as main~1. Commit is what it points
// to now, the value to pin instead.
type NotPinnedError struct {
	Rev    string
	Kind   string // "branch", "HEAD", "short hash" or "symbolic"
	Commit string
}

func (e *NotPinnedError) Error() string {
	switch e.Kind {
	case "short hash":
		return fmt.Sprintf("revision %q is a short hash, and a short hash can become ambiguous; pin the full hash it expands to: revision = %q", e.Rev, e.Commit)
	case "branch":
		return fmt.Sprintf("revision %q is a branch, and a branch moves; pin the commit it points to now: revision = %q", e.Rev, e.Commit)
	case "HEAD":
		return fmt.Sprintf("revision %q is HEAD, and HEAD moves; pin the commit it points to now: revision = %q", e.Rev, e.Commit)
	default:
		return fmt.Sprintf("revision %q is relative to a ref that moves; pin the commit it points to now: revision = %q", e.Rev, e.Commit)
	}
}

// Repo reads a git repository's object store: it resolves revisions and
// reads files from commits, never from the working tree, and never checks
// anything out. It is safe for concurrent use (go-git is not: every call
// holds a mutex).
type Repo struct {
	mu   sync.Mutex
	path string
	repo *git.Repository

	// files caches ReadFile's answers: a path at a commit never changes,
	// and rendering a fleet reads the same few files once per host.
	files map[fileKey]fileRead
}

type fileKey struct{ commit, path string }

type fileRead struct {
	b   []byte
	err error
}

// OpenRepo opens the git repository at path or at the nearest directory
// above it holding one.
func OpenRepo(path string) (*Repo, error) {
	r, err := git.PlainOpenWithOptions(path, &git.PlainOpenOptions{DetectDotGit: true, EnableDotGitCommonDir: true})
	if err != nil {
		return nil, fmt.Errorf("open git repository %s: %w", path, err)
	}
	root := path
	if wt, err := r.Worktree(); err == nil {
		root = wt.Filesystem.Root()
	}
	return &Repo{path: root, repo: r}, nil
}

// Path is the repository's root directory.
func (r *Repo) Path() string { return r.path }

// ShortRev is the first 7 characters of a commit hash, the way git shows
// it. Anything that is not a hash longer than 7 (a tag) is returned as it is.
func ShortRev(sha string) string {
	if len(sha) > 7 && isHex(sha) {
		return sha[:7]
	}
	return sha
}

func isHex(s string) bool {
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') && (c < 'A' || c > 'F') {
			return false
		}
	}
	return s != ""
}

func isFullHash(s string) bool { return len(s) == 40 && isHex(s) }

func (r *Repo) unknown(rev string) error {
	return fmt.Errorf("%w: %q is not in the git repository %s", ErrUnknownRevision, rev, r.path)
}

// ResolvePinned resolves a revision that cannot move: a full 40-hex commit
// hash present in the repository (or the hash of an annotated tag object,
// peeled to its commit), or a tag (an annotated tag is peeled to its
// commit). It returns the full commit hash in lower case. A branch,
// HEAD, a short hash, or an expression such as main~1 is refused with a
// *NotPinnedError naming the commit to pin; a revision the repository
// lacks with an error wrapping ErrUnknownRevision.
func (r *Repo) ResolvePinned(rev string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if rev == "" {
		return "", fmt.Errorf("%w: empty revision; expected a tag or a full commit hash", ErrUnknownRevision)
	}
	if isFullHash(rev) {
		h := plumbing.NewHash(strings.ToLower(rev))
		if _, err := r.repo.CommitObject(h); err != nil {
			// what `git rev-parse TAG` prints for an annotated tag: the
			// tag object's hash, as immutable as a commit's; peel it
			if tag, terr := r.repo.TagObject(h); terr == nil {
				if c, cerr := tag.Commit(); cerr == nil {
					return c.Hash.String(), nil
				}
			}
			return "", r.unknown(rev)
		}
		return h.String(), nil
	}
	if isExpression(rev) {
		commit, err := r.resolveAny(rev)
		if err != nil {
			return "", err
		}
		kind := "symbolic"
		if strings.HasPrefix(rev, "HEAD") || strings.HasPrefix(rev, "@") {
			kind = "HEAD"
		}
		return "", &NotPinnedError{Rev: rev, Kind: kind, Commit: commit}
	}
	if ref := r.lookupRef(rev); ref != nil {
		commit, err := r.commitOfRef(ref)
		if err != nil {
			return "", fmt.Errorf("resolve %q in %s: %w", rev, r.path, err)
		}
		name := ref.Name()
		switch {
		case name.IsTag():
			return commit, nil
		case name.IsBranch() || name.IsRemote() && !strings.HasSuffix(name.String(), "/HEAD"):
			return "", &NotPinnedError{Rev: rev, Kind: "branch", Commit: commit}
		case strings.HasSuffix(name.String(), "HEAD"):
			return "", &NotPinnedError{Rev: rev, Kind: "HEAD", Commit: commit}
		default:
			return "", &NotPinnedError{Rev: rev, Kind: "symbolic", Commit: commit}
		}
	}
	if len(rev) >= 4 && isHex(rev) {
		commit, err := r.resolveAny(rev)
		if err == nil && strings.HasPrefix(commit, strings.ToLower(rev)) {
			return "", &NotPinnedError{Rev: rev, Kind: "short hash", Commit: commit}
		}
	}
	return "", r.unknown(rev)
}

// isExpression reports revision syntax beyond a plain name: ~ ^ @ { : and
// white space, or a path that climbs out of refs/.
func isExpression(rev string) bool {
	return strings.ContainsAny(rev, "~^@{}: \t\n\\") || strings.Contains(rev, "..")
}

// lookupRef finds the reference rev names, in git's order (so a tag wins
// over a branch of the same name), without following symbolic refs.
func (r *Repo) lookupRef(rev string) *plumbing.Reference {
	for _, rule := range plumbing.RefRevParseRules {
		name := plumbing.ReferenceName(fmt.Sprintf(rule, rev))
		if ref, err := r.repo.Reference(name, false); err == nil {
			return ref
		}
	}
	return nil
}

// commitOfRef follows a reference and peels tags down to a commit.
func (r *Repo) commitOfRef(ref *plumbing.Reference) (string, error) {
	resolved, err := storer.ResolveReference(r.repo.Storer, ref.Name())
	if err != nil {
		return "", err
	}
	return r.peel(resolved.Hash())
}

// peel follows annotated tags (also nested ones) to the commit.
func (r *Repo) peel(h plumbing.Hash) (string, error) {
	for range 10 {
		if _, err := r.repo.CommitObject(h); err == nil {
			return h.String(), nil
		}
		tag, err := r.repo.TagObject(h)
		if err != nil {
			return "", fmt.Errorf("%s does not point at a commit", h)
		}
		h = tag.Target
	}
	return "", fmt.Errorf("%s: tag chain too long", h)
}

// ResolveAny resolves any revision git understands (full or short hash,
// tag, branch, HEAD, main~2, ...) to a full commit hash. It is for looks
// such as `rollout plan --revision`, never for what apply deploys.
func (r *Repo) ResolveAny(rev string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.resolveAny(rev)
}

func (r *Repo) resolveAny(rev string) (commit string, err error) {
	if rev == "" {
		return "", fmt.Errorf("%w: empty revision", ErrUnknownRevision)
	}
	defer func() {
		// go-git's revision walker can dereference a missing commit on
		// odd input; a bad revision must not crash the CLI.
		if p := recover(); p != nil {
			commit, err = "", r.unknown(rev)
		}
	}()
	h, err := r.repo.ResolveRevision(plumbing.Revision(rev))
	if err != nil || h == nil || h.IsZero() {
		return "", r.unknown(rev)
	}
	return h.String(), nil
}

// HasCommit reports whether sha is a full commit hash the repository holds.
func (r *Repo) HasCommit(sha string) bool {
	if !isFullHash(sha) {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	_, err := r.repo.CommitObject(plumbing.NewHash(strings.ToLower(sha)))
	return err == nil
}

// ReadFile reads path (relative to the repository root) from the tree of
// commit, a full hash. A missing path (or a directory) is an error
// wrapping ErrNoSuchFile naming path@short; a symbolic link is refused,
// since its content is a link target and not the file to deploy.
// Answers are cached per commit and path; callers must not modify the
// bytes returned.
func (r *Repo) ReadFile(commit, path string) ([]byte, error) {
	if !isFullHash(commit) {
		return nil, fmt.Errorf("read %s: %w: %q is not a full commit hash", path, ErrUnknownRevision, commit)
	}
	clean, err := cleanRepoPath(path)
	if err != nil {
		return nil, fmt.Errorf("read %s@%s: %w", path, ShortRev(commit), err)
	}
	k := fileKey{strings.ToLower(commit), clean}
	r.mu.Lock()
	defer r.mu.Unlock()
	if got, ok := r.files[k]; ok {
		return got.b, got.err
	}
	b, err := r.readFile(k.commit, clean, path)
	if r.files == nil {
		r.files = map[fileKey]fileRead{}
	}
	r.files[k] = fileRead{b, err}
	return b, err
}

// readFile reads clean at commit from the object store; r.mu is held.
func (r *Repo) readFile(commit, clean, path string) ([]byte, error) {
	c, err := r.repo.CommitObject(plumbing.NewHash(strings.ToLower(commit)))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, r.unknown(commit))
	}
	tree, err := c.Tree()
	if err != nil {
		return nil, fmt.Errorf("read %s@%s: tree: %w", clean, ShortRev(commit), err)
	}
	f, err := tree.File(clean)
	if errors.Is(err, object.ErrFileNotFound) || errors.Is(err, object.ErrDirectoryNotFound) || errors.Is(err, object.ErrEntryNotFound) {
		return nil, fmt.Errorf("%w: %s@%s", ErrNoSuchFile, clean, ShortRev(commit))
	}
	if err != nil {
		return nil, fmt.Errorf("read %s@%s: %w", clean, ShortRev(commit), err)
	}
	if f.Mode == filemode.Symlink {
		return nil, fmt.Errorf("read %s@%s: a symbolic link in the repository; point source at the file it links to", clean, ShortRev(commit))
	}
	rd, err := f.Reader()
	if err != nil {
		return nil, fmt.Errorf("read %s@%s: %w", clean, ShortRev(commit), err)
	}
	defer rd.Close()
	b, err := io.ReadAll(rd)
	if err != nil {
		return nil, fmt.Errorf("read %s@%s: %w", clean, ShortRev(commit), err)
	}
	return b, nil
}

// Describe is a one-line name for a commit: the short hash, the tags that
// point at it, and its subject, e.g. "9fceb02 v2: fix timeout" or
// "9fceb02 fix timeout" without a tag. A commit the repository lacks is
// just its short hash.
func (r *Repo) Describe(sha string) string {
	short := ShortRev(sha)
	if !isFullHash(sha) {
		return short
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	h := plumbing.NewHash(strings.ToLower(sha))
	c, err := r.repo.CommitObject(h)
	if err != nil {
		return short
	}
	subject, _, _ := strings.Cut(strings.TrimSpace(c.Message), "\n")
	var tags []string
	if iter, err := r.repo.Tags(); err == nil {
		_ = iter.ForEach(func(ref *plumbing.Reference) error {
			if commit, err := r.peel(ref.Hash()); err == nil && commit == h.String() {
				tags = append(tags, ref.Name().Short())
			}
			return nil
		})
	}
	if len(tags) == 0 {
		return strings.TrimSpace(short + " " + subject)
	}
	sort.Strings(tags)
	return short + " " + strings.Join(tags, ", ") + ": " + subject
}
