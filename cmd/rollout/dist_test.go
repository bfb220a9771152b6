package main

import (
	"bytes"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/rollout-sh/rollout/internal/fleet"
)

// checkoutRoot is the directory holding go.mod (tests run in cmd/rollout).
func checkoutRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil || !bytes.HasPrefix(b, []byte("module github.com/rollout-sh/rollout\n")) {
		t.Fatalf("go.mod at %s: %v", root, err)
	}
	return root
}

func makeTarget(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command("make", append([]string{"--no-print-directory"}, args...)...)
	cmd.Dir = checkoutRoot(t)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// `make dist` for one target (the cheap one this machine runs): a static
// binary named after the version, stamped with version and commit, and a
// SHA256SUMS that matches it.
func TestMakeDist(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a release binary")
	}
	fleet.RequireTool(t, "make")
	fleet.RequireTool(t, "sha256sum")
	target := runtime.GOOS + "/" + runtime.GOARCH
	dir := t.TempDir()
	makeTarget(t, "dist", "DIST_DIR="+dir, "DIST_TARGETS="+target, "VERSION=v9.8.7-test", "COMMIT=0123456789abcdef0123456789abcdef01234567")
	bin := filepath.Join(dir, "rollout-v9.8.7-test-"+runtime.GOOS+"-"+runtime.GOARCH)
	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("%s --version: %v\n%s", bin, err, out)
	}
	if !strings.HasPrefix(string(out), "rollout v9.8.7-test (commit 0123456789abcdef0123456789abcdef01234567, ") {
		t.Errorf("--version = %q", out)
	}
	if v, _ := exec.Command(bin, "version").Output(); string(v) != string(out) {
		t.Errorf("version = %q, --version = %q", v, out)
	}
	if runtime.GOOS == "linux" {
		f, err := elf.Open(bin)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Errorf("%s has a dynamic loader (PT_INTERP): not static", bin)
			}
		}
	}
	sums, err := os.ReadFile(filepath.Join(dir, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(bin)
	sum := sha256.Sum256(b)
	want := hex.EncodeToString(sum[:]) + "  " + filepath.Base(bin) + "\n"
	if string(sums) != want {
		t.Errorf("SHA256SUMS = %q, want %q", sums, want)
	}
}

// `make install` puts the binary, a man page per command and the
// completions where the shells look for them.
func TestMakeInstall(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	fleet.RequireTool(t, "make")
	tmp := t.TempDir()
	dest := filepath.Join(tmp, "root")
	makeTarget(t, "install", "DESTDIR="+dest, "PREFIX=/usr/local", "BIN_DIR="+filepath.Join(tmp, "bin"), "MAN_DIR="+filepath.Join(tmp, "man"))
	for _, p := range []string{
		"bin/rollout",
		"share/man/man1/rollout.1", "share/man/man1/rollout-apply.1", "share/man/man1/rollout-init.1",
		"share/bash-completion/completions/rollout",
		"share/zsh/site-functions/_rollout",
		"share/fish/vendor_completions.d/rollout.fish",
	} {
		st, err := os.Stat(filepath.Join(dest, "usr/local", p))
		if err != nil || st.Size() == 0 {
			t.Errorf("%s: %v (empty or missing)", p, err)
		}
	}
}

// `go install github.com/rollout-sh/rollout/cmd/rollout@latest` needs the
// module path in go.mod to be the import path of this repository and the
// command to live at cmd/rollout; a binary built that way (no -ldflags)
// still reports its commit from the build info.
func TestGoInstallPath(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	root := checkoutRoot(t)
	out, err := exec.Command("go", "list", "-C", root, "-f", "{{.ImportPath}} {{.Name}}", "./cmd/rollout").Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(out)); got != "github.com/rollout-sh/rollout/cmd/rollout main" {
		t.Fatalf("go list ./cmd/rollout = %q", got)
	}
	gobin := t.TempDir()
	cmd := exec.Command("go", "install", "./cmd/rollout")
	cmd.Dir, cmd.Env = root, append(os.Environ(), "GOBIN="+gobin)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go install: %v\n%s", err, out)
	}
	v, err := exec.Command(filepath.Join(gobin, "rollout"), "--version").Output()
	if err != nil || !strings.HasPrefix(string(v), "rollout ") {
		t.Fatalf("installed rollout --version = %q, %v", v, err)
	}
}
