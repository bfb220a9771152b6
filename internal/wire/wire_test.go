package wire

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/rollout-sh/rollout/remote"
)

func TestHintRecognisesHostKeyErrorsThroughWrapping(t *testing.T) {
	unknown := fmt.Errorf("web1: %w", remote.ErrHostKeyUnknown)
	changed := fmt.Errorf("web2: dial: %w", remote.ErrHostKeyChanged)
	if h := Hint(unknown); !strings.Contains(h, "--accept-new-host-keys") {
		t.Errorf("Hint(unknown) = %q", h)
	}
	if h := Hint(changed); !strings.Contains(h, "attack") || strings.Contains(h, "--accept-new") {
		t.Errorf("Hint(changed) = %q: must warn and must not suggest accepting", h)
	}
	// a message that merely mentions the words is not a host key error
	if h := Hint(errors.New("unknown host key changed in config file")); h != "" {
		t.Errorf("Hint(plain text) = %q, want none", h)
	}
}
