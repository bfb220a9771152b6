package remote

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/rollout-sh/rollout/internal/shell"
)

// WriteFile places data at path on the host, atomically: the bytes are
// streamed into a temporary file in the same directory, checked for length,
// given mode (and owner, "user" or "user:group", when not ""), synced, and
// renamed over path. A failure or interruption at any point leaves the
// previous content of path in place and removes the temporary file.
func (c *Client) WriteFile(ctx context.Context, path string, data []byte, mode os.FileMode, owner string) error {
	if path == "" {
		return fmt.Errorf("%s: write file: empty path", c.name)
	}
	if len(data) <= maxInlineStdin {
		// Through the host's shell: no session of its own.
		return c.shellRun(ctx, "write "+path, writeScript(path, int64(len(data)), mode, owner), bytes.NewReader(data), nil, nil)
	}
	return c.writeFrom(ctx, path, bytes.NewReader(data), int64(len(data)), mode, owner)
}

// writeFrom is WriteFile for a stream of size bytes.
func (c *Client) writeFrom(ctx context.Context, path string, r io.Reader, size int64, mode os.FileMode, owner string) error {
	if path == "" {
		return fmt.Errorf("%s: write file: empty path", c.name)
	}
	script := writeScript(path, size, mode, owner)
	// Errors name the host and "write PATH" already.
	return c.run(ctx, "write "+path, c.wrap(script), r, nil, nil)
}

// writeScript is the sh program that receives the file on stdin.
func writeScript(path string, size int64, mode os.FileMode, owner string) string {
	p := shell.Quote(path)
	var b strings.Builder
	b.WriteString("set -e; ")
	fmt.Fprintf(&b, "d=$(dirname %s); ", p)
	b.WriteString(`t=$(mktemp "$d/.rollout.XXXXXX"); `)
	b.WriteString(`trap 'rm -f "$t"' EXIT; trap 'exit 129' HUP; trap 'exit 130' INT; trap 'exit 143' TERM; `)
	b.WriteString(`cat >"$t"; `)
	// A stream cut short must never go live: check the length first.
	fmt.Fprintf(&b, `n=$(wc -c <"$t"); if [ $n -ne %d ]; then echo "short upload: got $n of %d bytes" >&2; exit 1; fi; `, size, size)
	fmt.Fprintf(&b, `chmod %s "$t"; `, octalMode(mode))
	if owner != "" {
		fmt.Fprintf(&b, `chown %s "$t"; `, shell.Quote(owner))
	}
	b.WriteString(`sync "$t" 2>/dev/null || sync; `)
	fmt.Fprintf(&b, `mv -f "$t" %s; `, p)
	b.WriteString("trap - EXIT")
	return b.String()
}

// octalMode renders mode for chmod, including setuid, setgid and sticky.
func octalMode(m os.FileMode) string {
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
