package rollout

import (
	"errors"

	"github.com/rollout-sh/rollout/rollback"
)

// AsRefusal is err as the engine's refusal (exit 2) when rollback refused
// (a *rollback.Refusal: no revision to go back to, or a way back that
// cannot be rehearsed); any other error is returned as it is.
func AsRefusal(err error) error {
	var rr *rollback.Refusal
	if errors.As(err, &rr) {
		return &Refusal{Problem: rr.Problem, Next: rr.Next}
	}
	return err
}
