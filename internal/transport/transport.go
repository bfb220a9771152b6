// Package transport holds what the engine, the health gates and the SSH
// client must agree on without importing each other: the sentinel for a
// host that can no longer be seen.
package transport

import "errors"

// ErrLost means the connection to a host (or the remote shell that runs its
// commands) ended underneath an operation. Whatever the operation was doing
// on the host is unknown: it may have run, partly run, or not run at all.
// It is a transport failure, never a verdict about the host's service.
var ErrLost = errors.New("connection to the host lost")

// Lost reports whether err is, or wraps, ErrLost.
func Lost(err error) bool { return errors.Is(err, ErrLost) }
