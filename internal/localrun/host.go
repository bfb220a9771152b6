package localrun

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/user"

	"github.com/rollout-sh/rollout/internal/shell"
)

// Host is this machine as a host of the run (Ansible's
// ansible_connection=local): commands run with sh, as another user
// through `sudo -n` when Become says so, files are written atomically
// next to their destination, and dials are made from here.
type Host struct {
	Become     bool
	BecomeUser string // "" = root
}

// wrap applies become: nothing when this process already is the user.
func (h Host) wrap(cmd string) string {
	if !h.Become {
		return cmd
	}
	target := h.BecomeUser
	if target == "" {
		target = "root"
	}
	if u, err := user.Current(); err == nil && u.Username == target {
		return cmd
	}
	return shell.Sudo(target) + shell.Quote(cmd)
}

// Run runs cmd with sh -c (see Runner.Run), through sudo when Become.
func (h Host) Run(ctx context.Context, cmd string, stdin io.Reader, stdout, stderr io.Writer) error {
	return Runner{}.Run(ctx, h.wrap(cmd), stdin, stdout, stderr)
}

// Output runs cmd and returns its stdout.
func (h Host) Output(ctx context.Context, cmd string) ([]byte, error) {
	var out bytes.Buffer
	err := h.Run(ctx, cmd, nil, &out, nil)
	return out.Bytes(), err
}

// WriteFile writes data to path atomically (see shell.WriteFileScript),
// as Become says.
func (h Host) WriteFile(ctx context.Context, path string, data []byte, mode os.FileMode, owner string) error {
	if path == "" {
		return fmt.Errorf("local: write file: empty path")
	}
	script := shell.WriteFileScript(path, int64(len(data)), mode, owner)
	if err := h.Run(ctx, script, bytes.NewReader(data), nil, nil); err != nil {
		return fmt.Errorf("local: write %s: %w", path, err)
	}
	return nil
}

// Dial connects from this machine.
func (Host) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}
