package wire

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rollout-sh/rollout/internal/localrun"
	"github.com/rollout-sh/rollout/inventory"
)

// ansible_connection=local runs on this machine without SSH (an address
// that no sshd listens on proves no dial happens); other connection
// plugins are refused, never tried over SSH.
func TestConnectLocalAndRefusedConnections(t *testing.T) {
	dir := t.TempDir()
	src := "[web]\nw1 ansible_connection=local ansible_host=192.0.2.1 ansible_port=1\nw2 ansible_connection=docker\n"
	path := filepath.Join(dir, "inv.ini")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	inv, err := inventory.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := New(inv, Options{SSHConfig: filepath.Join(dir, "none")})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	ctx := context.Background()
	c, err := w.Connect(ctx, inv.Host("w1"))
	if err != nil {
		t.Fatalf("local host: %v", err)
	}
	if _, ok := c.(localrun.Host); !ok {
		t.Fatalf("local host got %T, want localrun.Host", c)
	}
	dest := filepath.Join(dir, "out.conf")
	if err := c.WriteFile(ctx, dest, []byte("hello\n"), 0o640, ""); err != nil {
		t.Fatal(err)
	}
	out, err := c.Output(ctx, "cat "+dest)
	if err != nil || string(out) != "hello\n" {
		t.Fatalf("cat = %q, %v", out, err)
	}
	if st, _ := os.Stat(dest); st.Mode().Perm() != 0o640 {
		t.Errorf("mode = %v", st.Mode())
	}
	_, err = w.Connect(ctx, inv.Host("w2"))
	if err == nil || !strings.Contains(err.Error(), "ansible_connection=docker is not supported") || !strings.Contains(err.Error(), "w2") {
		t.Fatalf("docker host: err = %v", err)
	}
	// the implicit localhost is local too
	lh := inv.Host("localhost")
	if lh == nil || !lh.Implicit || lh.Connection != inventory.ConnectionLocal {
		t.Fatalf("implicit localhost = %+v", lh)
	}
}
