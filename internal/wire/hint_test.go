package wire

import (
	"fmt"
	"strings"
	"syscall"
	"testing"

	"github.com/rollout-sh/rollout/drain"
)

// The LB preflight's hint follows the cause: a full socket is not a typo
// in the drain block.
func TestHintForLoadBalancerErrors(t *testing.T) {
	full := fmt.Errorf("web1: drain: check web1: %w", &drain.ConnectError{Endpoint: "unix:/run/haproxy/admin.sock", Cause: drain.CauseConnLimit, Attempts: 40, Err: syscall.EAGAIN})
	if h := Hint(full); !strings.Contains(h, "stats maxconn") || strings.Contains(h, "drain block") {
		t.Errorf("connection limit: hint = %q", h)
	}
	names := fmt.Errorf("web1: drain: check web1: %w", &drain.ReplyError{Endpoint: "unix:/run/haproxy/admin.sock", Command: "get weight web/x", Reply: "No such server."})
	if h := Hint(names); !strings.Contains(h, "drain block") {
		t.Errorf("unknown server: hint = %q", h)
	}
}
