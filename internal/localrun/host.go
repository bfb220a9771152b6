package localrun

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/user"
	"strconv"
	"strings"

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
	if target == "root" {
		return "sudo -n sh -c " + shell.Quote(cmd)
	}
	return "sudo -n -u " + shell.Quote(target) + " sh -c " + shell.Quote(cmd)
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

// WriteFile writes data to path atomically: a temporary file in the same
// directory gets the mode (and owner), is synced, then renamed over path.
func (h Host) WriteFile(ctx context.Context, path string, data []byte, mode os.FileMode, owner string) error {
	if path == "" {
		return fmt.Errorf("local: write file: empty path")
	}
	p := shell.Quote(path)
	var b strings.Builder
	b.WriteString("set -e; ")
	fmt.Fprintf(&b, "d=$(dirname %s); ", p)
	b.WriteString(`t=$(mktemp "$d/.rollout.XXXXXX"); trap 'rm -f "$t"' EXIT; cat >"$t"; `)
	fmt.Fprintf(&b, `n=$(wc -c <"$t"); if [ $n -ne %d ]; then echo "short write: got $n of %d bytes" >&2; exit 1; fi; `, len(data), len(data))
	fmt.Fprintf(&b, `chmod %s "$t"; `, octal(mode))
	if owner != "" {
		fmt.Fprintf(&b, `chown %s "$t"; `, shell.Quote(owner))
	}
	fmt.Fprintf(&b, `sync "$t" 2>/dev/null || sync; mv -f "$t" %s; trap - EXIT`, p)
	if err := h.Run(ctx, b.String(), bytes.NewReader(data), nil, nil); err != nil {
		return fmt.Errorf("local: write %s: %w", path, err)
	}
	return nil
}

func octal(m os.FileMode) string {
	v := uint32(m.Perm())
	if m&os.ModeSetuid != 0 {
		v |= 0o4000
	}
	if m&os.ModeSetgid != 0 {
		v |= 0o2000
	}
	if m&os.ModeSticky != 0 {
		v |= 0o1000
	}
	return "0" + strconv.FormatUint(uint64(v), 8)
}

// Dial connects from this machine.
func (Host) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}
