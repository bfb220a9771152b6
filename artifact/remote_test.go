package artifact

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/rollout-sh/rollout/internal/localrun"
	"github.com/rollout-sh/rollout/plan"
)

func readLink(t *testing.T, p string) string {
	t.Helper()
	s, err := os.Readlink(p)
	if err != nil {
		return ""
	}
	return s
}

func TestRemoteStageSwitchRestorePrune(t *testing.T) {
	if _, err := exec.LookPath("tar"); err != nil {
		t.Skip("no tar")
	}
	dest := filepath.Join(t.TempDir(), "opt", "app")
	builds := map[string][]byte{}
	for _, v := range []string{"1", "2", "3", "4"} {
		builds[v] = mkTar(t, true, tentry{name: "bin/app", body: "#!/bin/sh\necho " + v + "\n", mode: 0o755}, tentry{name: "VERSION", body: v})
	}
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		b, ok := builds[strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/app-"), ".tar.gz")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(b)
	}))
	defer srv.Close()
	spec := func(v string) plan.ArtifactSpec {
		return plan.ArtifactSpec{Name: "app", Source: srv.URL + "/app-" + v + ".tar.gz", SHA256: Sum(builds[v]), Dest: dest,
			Unpack: true, Keep: 3, Mode: 0o644, Validate: "test -x %s/bin/app", Fetch: plan.FetchController}
	}
	ctx := context.Background()
	conn := localrun.Runner{}
	r := NewRemote()

	v1 := spec("1")
	if err := r.Stage(ctx, conn, []plan.ArtifactSpec{v1}); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(ReleaseDir(v1), "VERSION"))
	if err != nil || string(got) != "1" {
		t.Fatalf("release 1: %q, %v", got, err)
	}
	if _, err := os.Stat(ReleaseDir(v1) + ".partial"); !os.IsNotExist(err) {
		t.Errorf("partial left: %v", err)
	}
	prev, err := r.Switch(ctx, conn, []plan.ArtifactSpec{v1})
	if err != nil || prev["app"] != "" {
		t.Fatalf("switch: %v %v", prev, err)
	}
	if l := readLink(t, Current(v1)); l != LinkTarget(v1.SHA256) {
		t.Errorf("current -> %q", l)
	}
	// staged again: no download
	before := hits.Load()
	if err := r.Stage(ctx, conn, []plan.ArtifactSpec{v1}); err != nil || hits.Load() != before {
		t.Errorf("restaging a release on the host: %v, %d requests", err, hits.Load()-before)
	}
	v2 := spec("2")
	if err := r.Stage(ctx, conn, []plan.ArtifactSpec{v2}); err != nil {
		t.Fatal(err)
	}
	prev, err = r.Switch(ctx, conn, []plan.ArtifactSpec{v2})
	if err != nil || prev["app"] != LinkTarget(v1.SHA256) {
		t.Fatalf("switch 2: %v %v", prev, err)
	}
	if err := r.Restore(ctx, conn, []plan.ArtifactSpec{v2}, prev); err != nil || readLink(t, Current(v2)) != LinkTarget(v1.SHA256) {
		t.Fatalf("restore: %v, current -> %q", err, readLink(t, Current(v2)))
	}
	// 2, 3, 4 in turn, keep 3: 1 goes once it is neither current nor previous
	for _, v := range []string{"2", "3", "4"} {
		a := spec(v)
		if err := r.Stage(ctx, conn, []plan.ArtifactSpec{a}); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Switch(ctx, conn, []plan.ArtifactSpec{a}); err != nil {
			t.Fatal(err)
		}
	}
	gone, err := r.Prune(ctx, conn, []plan.ArtifactSpec{spec("4")}, map[string][]string{"app": {ID(spec("3").SHA256)}})
	if err != nil {
		t.Fatal(err)
	}
	if len(gone) != 1 || filepath.Base(gone[0]) != ID(v1.SHA256) {
		t.Errorf("pruned %v, want release 1 only", gone)
	}
	for _, v := range []string{"2", "3", "4"} {
		if _, err := os.Stat(ReleaseDir(spec(v))); err != nil {
			t.Errorf("release %s: %v", v, err)
		}
	}

	// a validator that fails removes the release it staged
	bad := spec("1")
	bad.Validate = "test -e %s/nope"
	if err := r.Stage(ctx, conn, []plan.ArtifactSpec{bad}); err == nil || !strings.Contains(err.Error(), "validator") {
		t.Errorf("failing validator: %v", err)
	}
	if _, err := os.Stat(ReleaseDir(bad)); !os.IsNotExist(err) {
		t.Errorf("a release its validator refused is still there: %v", err)
	}
	// a wrong checksum and a 404 stage nothing
	wrong := spec("1")
	wrong.Validate = ""
	wrong.SHA256 = strings.Repeat("e", 64)
	var ce *ChecksumError
	if err := r.Stage(ctx, conn, []plan.ArtifactSpec{wrong}); !errors.As(err, &ce) {
		t.Errorf("wrong checksum: %v", err)
	}
	missing := spec("9")
	missing.SHA256 = strings.Repeat("d", 64)
	if err := r.Stage(ctx, conn, []plan.ArtifactSpec{missing}); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("404: %v", err)
	}
}

func TestRemoteHostFetch(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		if _, err := exec.LookPath("wget"); err != nil {
			t.Skip("neither curl nor wget")
		}
	}
	build := mkTar(t, true, tentry{name: "VERSION", body: "h"})
	hostile := mkTar(t, true, tentry{name: "etc", kind: '2', link: "/etc"})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/app.tar.gz":
			_, _ = w.Write(build)
		case "/evil.tar.gz":
			_, _ = w.Write(hostile)
		case "/tool":
			_, _ = w.Write([]byte("#!/bin/sh\n"))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	dest := filepath.Join(t.TempDir(), "app")
	ctx := context.Background()
	r := NewRemote()
	a := plan.ArtifactSpec{Name: "app", Source: srv.URL + "/app.tar.gz", SHA256: Sum(build), Dest: dest, Unpack: true, Keep: 3, Fetch: plan.FetchHost}
	if err := r.Stage(ctx, localrun.Runner{}, []plan.ArtifactSpec{a}); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(ReleaseDir(a), "VERSION")); err != nil || string(b) != "h" {
		t.Errorf("host fetch: %q %v", b, err)
	}
	tool := plan.ArtifactSpec{Name: "tool", Source: srv.URL + "/tool", SHA256: Sum([]byte("#!/bin/sh\n")), Dest: dest + "-tool", Keep: 3, Mode: 0o755, Fetch: plan.FetchHost}
	if err := r.Stage(ctx, localrun.Runner{}, []plan.ArtifactSpec{tool}); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(filepath.Join(ReleaseDir(tool), "tool")); err != nil || st.Mode().Perm() != 0o755 {
		t.Errorf("host fetch of a file: %v %v", st, err)
	}
	wrong := a
	wrong.SHA256 = strings.Repeat("1", 64)
	var ce *ChecksumError
	if err := r.Stage(ctx, localrun.Runner{}, []plan.ArtifactSpec{wrong}); !errors.As(err, &ce) || ce.Actual != Sum(build) {
		t.Errorf("host checksum: %v", err)
	}
	evil := plan.ArtifactSpec{Name: "evil", Source: srv.URL + "/evil.tar.gz", SHA256: Sum(hostile), Dest: dest + "-evil", Unpack: true, Keep: 3, Fetch: plan.FetchHost}
	if err := r.Stage(ctx, localrun.Runner{}, []plan.ArtifactSpec{evil}); !errors.Is(err, ErrUnsafe) {
		t.Errorf("hostile archive fetched by the host: %v", err)
	}
	if ents, _ := os.ReadDir(Releases(evil)); len(ents) != 0 {
		t.Errorf("hostile archive left %v", ents)
	}
}

func TestToPrune(t *testing.T) {
	tests := []struct {
		list             []string
		keep             int
		current, protect string
		want             string
	}{
		{[]string{"e", "d", "c", "b", "a"}, 3, "e", "d", "b a"},
		{[]string{"e", "d", "c", "b", "a"}, 3, "a", "b", "d c"}, // going back: current and previous are old
		{[]string{"e", "d.partial", "c"}, 2, "e", "", ""},       // a partial is not a release
		{[]string{"c", "b", "a"}, 2, "", "", "a"},               // no current
		{[]string{"c", "b", "a"}, 1, "c", "a", "b"},             // keep below 2 is 2
		{[]string{"x.download", ".current.rollout-new", "x"}, 2, "x", "", ""},
	}
	for _, tt := range tests {
		if got := strings.Join(ToPrune(tt.list, tt.keep, tt.current, tt.protect), " "); got != tt.want {
			t.Errorf("ToPrune(%v, %d, %q, %q) = %q, want %q", tt.list, tt.keep, tt.current, tt.protect, got, tt.want)
		}
	}
}
