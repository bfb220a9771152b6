// Package transport holds what the engine, the drain and health drivers
// and the SSH client must agree on without importing each other: how a
// command runs on a host, how a stream is opened from it, and the sentinel
// for a host that can no longer be seen.
package transport

import (
	"context"
	"errors"
	"io"
	"net"
)

// Runner runs a shell command on a host (remote.Client satisfies it). A
// non-zero exit returns an error implementing interface{ ExitStatus() int }.
type Runner interface {
	Run(ctx context.Context, cmd string, stdin io.Reader, stdout, stderr io.Writer) error
}

// Dialer opens a stream: network "unix" (a path) or "tcp" (host:port),
// either locally (net.Dialer) or through an SSH connection.
type Dialer func(ctx context.Context, network, addr string) (net.Conn, error)

// ErrLost means the connection to a host (or the remote shell that runs its
// commands) ended underneath an operation. Whatever the operation was doing
// on the host is unknown: it may have run, partly run, or not run at all.
// It is a transport failure, never a verdict about the host's service.
var ErrLost = errors.New("connection to the host lost")

// Lost reports whether err is, or wraps, ErrLost.
func Lost(err error) bool { return errors.Is(err, ErrLost) }
