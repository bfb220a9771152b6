package rollout

import (
	"context"

	"github.com/rollout-sh/rollout/rollout/event"
)

// withRemoteOutput returns ctx carrying the sink that journals what the
// plan's commands print on host (restart, check, validators) as
// remote_output events: every run keeps them, the plain view shows them
// with -v.
func (r *run) withRemoteOutput(ctx context.Context, host string, batch int) context.Context {
	return event.WithRemoteSink(ctx, event.RemoteEmitter(r.emit, host, batch))
}
