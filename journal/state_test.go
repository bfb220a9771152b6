package journal

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rollout-sh/rollout/internal/localrun"
)

// nasty is a directory name that breaks any unquoted use in sh.
const nasty = "state dir; $(touch PWNED) `x` 'q' \"d\" *"

var lr = localrun.Runner{}

func TestStateRoundTrip(t *testing.T) {
	ctx := context.Background()
	base := t.TempDir()
	stateDir := filepath.Join(base, nasty)
	plan := "web -app"

	st, err := ReadState(ctx, lr, stateDir, plan)
	if err != nil || st != nil {
		t.Fatalf("ReadState before any write = %v, %v; want nil, nil", st, err)
	}
	want := &HostState{
		Plan: plan, Revision: "bbb", PreviousRevision: "aaa",
		Files: map[string]string{"/etc/app/app.conf": strings.Repeat("ab", 32)},
		RunID: "r-1", Time: time.Date(2026, 11, 22, 3, 1, 12, 0, time.FixedZone("X", 3600)), Host: "web1",
		DeployedBy: "octocat",
	}
	for i := range 2 { // a second write replaces the first
		if i == 1 {
			want.Revision, want.PreviousRevision = "ccc", "bbb"
		}
		if err := WriteState(ctx, lr, stateDir, plan, want); err != nil {
			t.Fatal(err)
		}
		got, err := ReadState(ctx, lr, stateDir, plan)
		if err != nil {
			t.Fatal(err)
		}
		if !got.Time.Equal(want.Time) || got.Time.Location() != time.UTC {
			t.Errorf("time = %v, want %v in UTC", got.Time, want.Time)
		}
		w := *want
		w.Time = got.Time
		if !reflect.DeepEqual(*got, w) {
			t.Errorf("round trip:\n got %+v\nwant %+v", *got, w)
		}
	}
	entries, err := os.ReadDir(filepath.Join(stateDir, plan))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != StateFile {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("state dir holds %v, want only %s (no temp files)", names, StateFile)
	}
	// host-side state is not readable by other users
	if fi, _ := os.Stat(filepath.Join(stateDir, plan, StateFile)); fi.Mode().Perm() != 0o600 {
		t.Errorf("current.json mode %v, want 0600", fi.Mode().Perm())
	}
	if fi, _ := os.Stat(filepath.Join(stateDir, plan)); fi.Mode().Perm() != 0o700 {
		t.Errorf("state dir mode %v, want 0700", fi.Mode().Perm())
	}
	assertNoInjection(t, base)
}

// cutRunner passes only the first half of stdin, as a connection that
// drops mid-transfer would.
type cutRunner struct{ Runner }

func (c cutRunner) Run(ctx context.Context, cmd string, stdin io.Reader, stdout, stderr io.Writer) error {
	if stdin != nil {
		b, _ := io.ReadAll(stdin)
		stdin = bytes.NewReader(b[:len(b)/2])
	}
	return c.Runner.Run(ctx, cmd, stdin, stdout, stderr)
}

func TestWriteStateCutShortLeavesOldState(t *testing.T) {
	ctx := context.Background()
	stateDir := t.TempDir()
	old := &HostState{Plan: "web", Revision: "aaa", RunID: "r-1"}
	if err := WriteState(ctx, lr, stateDir, "web", old); err != nil {
		t.Fatal(err)
	}
	err := WriteState(ctx, cutRunner{lr}, stateDir, "web", &HostState{Plan: "web", Revision: "bbb"})
	if err == nil || !strings.Contains(err.Error(), "short write") {
		t.Fatalf("WriteState with half its input: err = %v, want short write", err)
	}
	got, err := ReadState(ctx, lr, stateDir, "web")
	if err != nil || got == nil || got.Revision != "aaa" {
		t.Errorf("state after failed write = %+v, %v; want revision aaa", got, err)
	}
	entries, _ := os.ReadDir(filepath.Join(stateDir, "web"))
	if len(entries) != 1 {
		t.Errorf("failed write left %d entries in the state dir, want 1", len(entries))
	}
}

func TestReadStateErrors(t *testing.T) {
	tests := []struct {
		name    string
		content string
		plan    string
		wantErr string
	}{
		{name: "corrupt json", content: "{\"plan\": ", plan: "web", wantErr: "corrupt"},
		{name: "empty file", content: "", plan: "web", wantErr: "corrupt"},
		{name: "plan with slash", plan: "a/b", wantErr: "cannot name a state directory"},
		{name: "plan dotdot", plan: "..", wantErr: "cannot name a state directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stateDir := t.TempDir()
			p := filepath.Join(stateDir, "web", StateFile)
			os.MkdirAll(filepath.Dir(p), 0o755)
			if err := os.WriteFile(p, []byte(tt.content), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := ReadState(context.Background(), lr, stateDir, tt.plan)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
			}
			if tt.plan == "web" && !strings.Contains(err.Error(), p) {
				t.Errorf("err = %v, want it to name %s", err, p)
			}
		})
	}
}

func TestFileHashes(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, nasty)
	os.MkdirAll(dir, 0o755)
	sum := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }
	files := map[string]string{
		filepath.Join(dir, "a.conf"):            "alpha\n",
		filepath.Join(dir, "-n"):                "dash",
		filepath.Join(dir, "new\nline  two"):    "",
		filepath.Join(dir, "back\\slash $HOME"): "b",
	}
	for p, c := range files {
		if err := os.WriteFile(p, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	missing := filepath.Join(dir, "missing.conf")
	var paths []string
	want := map[string]string{missing: ""}
	for p, c := range files {
		paths = append(paths, p)
		want[p] = sum(c)
	}
	paths = append(paths, missing)

	got, err := FileHashes(context.Background(), lr, paths)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("FileHashes:\n got %v\nwant %v", got, want)
	}
	assertNoInjection(t, base)

	if _, err := FileHashes(context.Background(), lr, []string{dir}); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("FileHashes(directory) err = %v, want not a regular file", err)
	}
	if got, err := FileHashes(context.Background(), lr, nil); err != nil || len(got) != 0 {
		t.Errorf("FileHashes(nil) = %v, %v", got, err)
	}
}

// assertNoInjection fails if a quoted value ran as shell code.
func assertNoInjection(t *testing.T, base string) {
	t.Helper()
	for _, p := range []string{filepath.Join(base, "PWNED"), "PWNED"} {
		if _, err := os.Stat(p); err == nil {
			t.Fatalf("%s exists: a value was run as shell code", p)
		}
	}
}

// A symlink to a directory (an artifact's current) hashes as the text of
// its target; a symlink to a file still hashes as the file.
func TestFileHashesLinkToDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), nasty)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "releases", "abc"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "f"), []byte("x"), 0o644))
	must(os.Symlink("releases/abc", filepath.Join(dir, "current")))
	must(os.Symlink("f", filepath.Join(dir, "lf")))
	sum := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }
	got, err := FileHashes(context.Background(), lr, []string{filepath.Join(dir, "current"), filepath.Join(dir, "lf")})
	if err != nil {
		t.Fatal(err)
	}
	if got[filepath.Join(dir, "current")] != sum("releases/abc") || got[filepath.Join(dir, "lf")] != sum("x") {
		t.Errorf("FileHashes = %v", got)
	}
}

// deployed_by is the marker's name for the operator; a marker written
// before rollout recorded it reads back with none.
func TestStateDeployedByJSON(t *testing.T) {
	b, err := json.Marshal(HostState{Plan: "web", Revision: "r", DeployedBy: "tanuki"})
	if err != nil || !strings.Contains(string(b), `"deployed_by":"tanuki"`) {
		t.Fatalf("marshal = %s, %v; want deployed_by", b, err)
	}
	var old HostState
	if err := json.Unmarshal([]byte(`{"plan":"web","revision":"r","files":{},"run_id":"r-1","time":"2026-11-22T03:04:55Z","host":"web1"}`), &old); err != nil || old.DeployedBy != "" {
		t.Fatalf("an old marker = %+v, %v; want no deployed_by", old, err)
	}
	b, _ = json.Marshal(old)
	if strings.Contains(string(b), "deployed_by") {
		t.Errorf("a marker without an operator writes %s; want deployed_by left out", b)
	}
}
