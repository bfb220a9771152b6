package plan

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

type testRepo struct {
	dir        string
	branch     string // the default branch, where HEAD points
	c1, c2, c3 string
	v2TagObj   string // hash of the annotated tag object
}

// newTestRepo makes a repository with three commits:
// c1 (lightweight tag v1; branch release), c2 (annotated tag v2 and
// lightweight tag stable), c3 (untagged, the default branch and HEAD).
func newTestRepo(t *testing.T) *testRepo {
	t.Helper()
	dir := t.TempDir()
	r, err := git.PlainInit(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	wt, err := r.Worktree()
	if err != nil {
		t.Fatal(err)
	}
	when := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	commit := func(content, msg string) string {
		t.Helper()
		if err := os.MkdirAll(filepath.Join(dir, "conf"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "conf", "app.conf"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := wt.Add("conf/app.conf"); err != nil {
			t.Fatal(err)
		}
		when = when.Add(time.Hour)
		h, err := wt.Commit(msg, &git.CommitOptions{Author: &object.Signature{Name: "t", Email: "t@example.com", When: when}})
		if err != nil {
			t.Fatal(err)
		}
		return h.String()
	}
	tr := &testRepo{dir: dir}
	tr.c1 = commit("port 1\n", "first commit\n\nbody")
	if _, err := r.CreateTag("v1", plumbing.NewHash(tr.c1), nil); err != nil {
		t.Fatal(err)
	}
	if err := r.Storer.SetReference(plumbing.NewHashReference(plumbing.NewBranchReferenceName("release"), plumbing.NewHash(tr.c1))); err != nil {
		t.Fatal(err)
	}
	tr.c2 = commit("port 2\n", "second commit")
	tag, err := r.CreateTag("v2", plumbing.NewHash(tr.c2), &git.CreateTagOptions{
		Tagger: &object.Signature{Name: "t", Email: "t@example.com", When: when}, Message: "release 2",
	})
	if err != nil {
		t.Fatal(err)
	}
	tr.v2TagObj = tag.Hash().String()
	if _, err := r.CreateTag("stable", plumbing.NewHash(tr.c2), nil); err != nil {
		t.Fatal(err)
	}
	tr.c3 = commit("port 3\n", "third commit")
	head, err := r.Reference(plumbing.HEAD, false)
	if err != nil {
		t.Fatal(err)
	}
	tr.branch = head.Target().Short()
	return tr
}

func TestResolvePinned(t *testing.T) {
	tr := newTestRepo(t)
	repo, err := OpenRepo(tr.dir)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		rev      string
		want     string
		kind     string // NotPinnedError kind
		commit   string // NotPinnedError commit
		unknown  bool
		contains string
	}{
		{rev: tr.c1, want: tr.c1},
		{rev: strings.ToUpper(tr.c2), want: tr.c2},
		{rev: "v1", want: tr.c1},
		{rev: "v2", want: tr.c2},
		{rev: "refs/tags/v2", want: tr.c2},
		{rev: tr.v2TagObj, want: tr.c2}, // what git rev-parse v2 prints for an annotated tag
		{rev: "stable", want: tr.c2},
		{rev: tr.branch, kind: "branch", commit: tr.c3,
			contains: `revision "` + tr.branch + `" is a branch, and a branch moves; pin the commit it points to now: revision = "` + tr.c3 + `"`},
		{rev: "release", kind: "branch", commit: tr.c1},
		{rev: "refs/heads/release", kind: "branch", commit: tr.c1},
		{rev: "HEAD", kind: "HEAD", commit: tr.c3, contains: `revision "HEAD" is HEAD, and HEAD moves`},
		{rev: "HEAD~1", kind: "HEAD", commit: tr.c2},
		{rev: "v2~1", kind: "symbolic", commit: tr.c1},
		{rev: tr.c2[:7], kind: "short hash", commit: tr.c2,
			contains: `pin the full hash it expands to: revision = "` + tr.c2 + `"`},
		{rev: tr.c1[:12], kind: "short hash", commit: tr.c1},
		{rev: "nope", unknown: true, contains: `"nope" is not in the git repository ` + tr.dir},
		{rev: "0000000000000000000000000000000000000001", unknown: true},
		{rev: "abcdef0", unknown: true},
		{rev: "HEAD~10", unknown: true},
		{rev: "", unknown: true},
		{rev: "../../etc/passwd", unknown: true},
	}
	for _, tt := range tests {
		t.Run(tt.rev, func(t *testing.T) {
			got, err := repo.ResolvePinned(tt.rev)
			var np *NotPinnedError
			switch {
			case tt.want != "":
				if err != nil || got != tt.want {
					t.Errorf("got %q, %v; want %q", got, err, tt.want)
				}
			case tt.kind != "":
				if !errors.As(err, &np) || np.Kind != tt.kind || np.Commit != tt.commit || np.Rev != tt.rev {
					t.Errorf("got %q, %#v; want NotPinnedError{%q, %q}", got, err, tt.kind, tt.commit)
				}
			case tt.unknown:
				if !errors.Is(err, ErrUnknownRevision) {
					t.Errorf("got %q, %v; want ErrUnknownRevision", got, err)
				}
			}
			if tt.contains != "" && (err == nil || !strings.Contains(err.Error(), tt.contains)) {
				t.Errorf("error %v does not contain %q", err, tt.contains)
			}
			if err != nil && got != "" {
				t.Errorf("returned %q with an error", got)
			}
		})
	}
}

func TestResolveAny(t *testing.T) {
	tr := newTestRepo(t)
	repo, err := OpenRepo(filepath.Join(tr.dir, "conf")) // found by walking up
	if err != nil {
		t.Fatal(err)
	}
	if repo.Path() != tr.dir {
		t.Errorf("Path = %q, want %q", repo.Path(), tr.dir)
	}
	tests := []struct{ rev, want string }{
		{tr.branch, tr.c3}, {"HEAD", tr.c3}, {"HEAD~2", tr.c1}, {tr.c2[:7], tr.c2},
		{"v2", tr.c2}, {"v1", tr.c1}, {"release", tr.c1}, {tr.c1, tr.c1},
	}
	for _, tt := range tests {
		if got, err := repo.ResolveAny(tt.rev); err != nil || got != tt.want {
			t.Errorf("ResolveAny(%q) = %q, %v; want %q", tt.rev, got, err, tt.want)
		}
	}
	for _, bad := range []string{"nope", "", "HEAD~9", "^", "@{"} {
		if _, err := repo.ResolveAny(bad); !errors.Is(err, ErrUnknownRevision) {
			t.Errorf("ResolveAny(%q) error = %v, want ErrUnknownRevision", bad, err)
		}
	}
}

func TestReadFileIgnoresWorkingTree(t *testing.T) {
	tr := newTestRepo(t)
	repo, err := OpenRepo(tr.dir)
	if err != nil {
		t.Fatal(err)
	}
	// Check out an older branch and make the tree dirty: what the pinned
	// commits hold must not change.
	r, err := git.PlainOpen(tr.dir)
	if err != nil {
		t.Fatal(err)
	}
	wt, _ := r.Worktree()
	if err := wt.Checkout(&git.CheckoutOptions{Branch: plumbing.NewBranchReferenceName("release")}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tr.dir, "conf", "app.conf"), []byte("hand edit\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tr.dir, "untracked.conf"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		commit, path string
		want         string
		noFile       bool
		errHas       string
	}{
		{commit: tr.c1, path: "conf/app.conf", want: "port 1\n"},
		{commit: tr.c2, path: "conf/app.conf", want: "port 2\n"},
		{commit: tr.c3, path: "./conf/app.conf", want: "port 3\n"},
		{commit: strings.ToUpper(tr.c3), path: "conf//app.conf", want: "port 3\n"},
		{commit: tr.c3, path: "untracked.conf", noFile: true, errHas: "untracked.conf@" + tr.c3[:7]},
		{commit: tr.c3, path: "conf", noFile: true},
		{commit: tr.c3, path: "conf/missing.conf", noFile: true, errHas: "conf/missing.conf@" + tr.c3[:7]},
		{commit: tr.c3, path: "../etc/passwd", errHas: "not a file inside the repository"},
		{commit: tr.c3, path: "/etc/passwd", errHas: "absolute"},
		{commit: tr.c3[:7], path: "conf/app.conf", errHas: "not a full commit hash"},
		{commit: "0000000000000000000000000000000000000001", path: "conf/app.conf", errHas: "unknown revision"},
	}
	for _, tt := range tests {
		got, err := repo.ReadFile(tt.commit, tt.path)
		switch {
		case tt.want != "":
			if err != nil || string(got) != tt.want {
				t.Errorf("ReadFile(%s, %s) = %q, %v; want %q", ShortRev(tt.commit), tt.path, got, err, tt.want)
			}
		default:
			if err == nil {
				t.Errorf("ReadFile(%s, %s) = %q, want an error", ShortRev(tt.commit), tt.path, got)
				continue
			}
			if errors.Is(err, ErrNoSuchFile) != tt.noFile {
				t.Errorf("ReadFile(%s, %s): %v; ErrNoSuchFile want %v", ShortRev(tt.commit), tt.path, err, tt.noFile)
			}
			if !strings.Contains(err.Error(), tt.errHas) {
				t.Errorf("ReadFile(%s, %s): %v; want it to contain %q", ShortRev(tt.commit), tt.path, err, tt.errHas)
			}
		}
	}
	if got, err := repo.ResolvePinned("v2"); err != nil || got != tr.c2 {
		t.Errorf("ResolvePinned(v2) after checkout = %q, %v", got, err)
	}
}

func TestHasCommitAndDescribe(t *testing.T) {
	tr := newTestRepo(t)
	repo, err := OpenRepo(tr.dir)
	if err != nil {
		t.Fatal(err)
	}
	has := []struct {
		sha  string
		want bool
	}{
		{tr.c1, true}, {strings.ToUpper(tr.c2), true}, {tr.c1[:7], false},
		{tr.v2TagObj, false}, {"0000000000000000000000000000000000000001", false}, {"v1", false},
	}
	for _, tt := range has {
		if got := repo.HasCommit(tt.sha); got != tt.want {
			t.Errorf("HasCommit(%s) = %v", tt.sha, got)
		}
	}
	desc := []struct{ sha, want string }{
		{tr.c1, tr.c1[:7] + " v1: first commit"},
		{tr.c2, tr.c2[:7] + " stable, v2: second commit"},
		{tr.c3, tr.c3[:7] + " third commit"},
		{"0000000000000000000000000000000000000001", "0000000"},
	}
	for _, tt := range desc {
		if got := repo.Describe(tt.sha); got != tt.want {
			t.Errorf("Describe(%s) = %q, want %q", ShortRev(tt.sha), got, tt.want)
		}
	}
}

func TestRepoConcurrentReads(t *testing.T) {
	tr := newTestRepo(t)
	repo, err := OpenRepo(tr.dir)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := []string{tr.c1, tr.c2, tr.c3}[i%3]
			if _, err := repo.ReadFile(c, "conf/app.conf"); err != nil {
				errs <- err
			}
			if _, err := repo.ResolvePinned("v2"); err != nil {
				errs <- err
			}
			repo.Describe(c)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestOpenRepoOutsideGit(t *testing.T) {
	if _, err := OpenRepo(t.TempDir()); err == nil {
		t.Error("OpenRepo of a plain directory succeeded")
	}
}

func TestShortRev(t *testing.T) {
	tests := []struct{ in, want string }{
		{"9fceb02d0ae598e95dc970b74767f19372d61af8", "9fceb02"},
		{"v1.2.3-rc1", "v1.2.3-rc1"},
		{"abc", "abc"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := ShortRev(tt.in); got != tt.want {
			t.Errorf("ShortRev(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
