package remote

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"

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
		return c.shellRun(ctx, "write "+path, shell.WriteFileScript(path, int64(len(data)), mode, owner), bytes.NewReader(data), nil, nil)
	}
	return c.writeFrom(ctx, path, bytes.NewReader(data), int64(len(data)), mode, owner)
}

// writeFrom is WriteFile for a stream of size bytes.
func (c *Client) writeFrom(ctx context.Context, path string, r io.Reader, size int64, mode os.FileMode, owner string) error {
	if path == "" {
		return fmt.Errorf("%s: write file: empty path", c.name)
	}
	script := shell.WriteFileScript(path, size, mode, owner)
	// Errors name the host and "write PATH" already.
	return c.run(ctx, "write "+path, c.wrap(script), r, nil, nil)
}
