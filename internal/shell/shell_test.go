package shell

import (
	"os/exec"
	"testing"
)

func TestQuoteRoundTripsThroughSh(t *testing.T) {
	for _, s := range []string{"", "plain", "a b", "$(touch /tmp/x)", "it's", `"dq"`, "a;b|c&d", "`id`", "new\nline", "-n", "*"} {
		out, err := exec.Command("sh", "-c", "printf %s "+Quote(s)).Output()
		if err != nil {
			t.Fatalf("sh failed for %q: %v", s, err)
		}
		if string(out) != s {
			t.Errorf("Quote(%q) went through sh as %q", s, out)
		}
	}
}
