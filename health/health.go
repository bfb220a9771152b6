// Package health decides whether a restarted host is healthy: probes (http,
// tcp, command, haproxy) that must pass continuously for a window, a flap
// guard that fails the gate the moment the process restarts, and a deadline.
//
// The package does not import the engine or the SSH client: what it needs
// from them comes in through Runner and Dialer.
package health

import (
	"context"
	"time"

	"github.com/rollout-sh/rollout/internal/transport"
)

// Runner runs a shell command on a host (remote.Client satisfies it).
type Runner = transport.Runner

// Dialer opens a stream from a host or from here.
type Dialer = transport.Dialer

// Probe is one health check. nil means healthy; an error says why not.
type Probe interface {
	Probe(ctx context.Context) error
}

// ProbeFunc adapts a function to Probe.
type ProbeFunc func(ctx context.Context) error

// Probe calls f.
func (f ProbeFunc) Probe(ctx context.Context) error { return f(ctx) }

// Clock is the time source of a Gate; tests pass a fake one.
type Clock interface {
	Now() time.Time
	Sleep(ctx context.Context, d time.Duration) error
}

// RealClock is the wall clock; Sleep returns ctx.Err() when ctx ends first.
func RealClock() Clock { return realClock{} }

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
