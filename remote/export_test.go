package remote

import (
	"context"
	"io"
	"os"
)

// WriteFrom exposes the streaming form of WriteFile, so tests can cut the
// stream short.
func WriteFrom(ctx context.Context, c *Client, path string, r io.Reader, size int64, mode os.FileMode) error {
	return c.writeFrom(ctx, path, r, size, mode, "")
}
