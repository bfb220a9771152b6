// Package drain holds the load-balancer drivers a rolling upgrade uses to take
// a host out of traffic and put it back: haproxy (runtime API), command (any
// LB with a CLI) and none (no load balancer, written out on purpose).
//
// Every driver has the same method set, which the engine declares as its own
// interface:
//
//	Check(ctx) error                    // preflight, changes nothing
//	Drain(ctx) error                    // stop new traffic, on every LB
//	Sessions(ctx) (int, error)          // current + queued sessions, summed over LBs
//	Settle(ctx) error                   // after zero sessions (haproxy: maint)
//	Undrain(ctx) error                  // back in service
//	SetWeight(ctx, pct int) error       // ramp step, percent of the configured weight
//	Serving(ctx) (bool, string, error)  // does the LB itself report the host up
//
// The package does not import the engine or the SSH client: what it needs
// from them comes in through Runner and Dialer.
package drain

import (
	"context"
	"net"

	"github.com/rollout-sh/rollout/internal/transport"
)

// Runner runs a shell command on a host (remote.Client satisfies it).
type Runner = transport.Runner

// Dialer opens a stream from a host or from here.
type Dialer = transport.Dialer

// LocalDialer dials on this machine.
func LocalDialer() Dialer {
	var d net.Dialer
	return d.DialContext
}

// None is the driver for hosts without a load balancer. The plan must say
// why (drain "none" { reason = "..." }); every step does nothing.
type None struct {
	Reason string
}

// NewNone returns a driver that does nothing.
func NewNone(reason string) *None { return &None{Reason: reason} }

// Check does nothing.
func (*None) Check(context.Context) error { return nil }

// Drain does nothing.
func (*None) Drain(context.Context) error { return nil }

// Sessions is always 0.
func (*None) Sessions(context.Context) (int, error) { return 0, nil }

// Settle does nothing.
func (*None) Settle(context.Context) error { return nil }

// Undrain does nothing.
func (*None) Undrain(context.Context) error { return nil }

// SetWeight does nothing.
func (*None) SetWeight(context.Context, int) error { return nil }

// Serving is always true: there is no LB to ask.
func (n *None) Serving(context.Context) (bool, string, error) {
	return true, "no load balancer (" + n.Reason + ")", nil
}
