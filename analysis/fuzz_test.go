package analysis

import (
	"math"
	"testing"
)

// FuzzParseCommandOutput: whatever a command prints, the parser returns an
// error or servers whose counters make sense; it never panics.
func FuzzParseCommandOutput(f *testing.F) {
	for _, s := range []string{"web1 100 2 2500\nweb2 200 0\n", "# c\n\nweb1 0 0", "web1 1 2", "web1 9999999999999999999 0", "a b c d e", "web1 1 0 NaN", "web1 1 0 +Inf"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, out string) {
		servers, err := ParseCommandOutput(out)
		if err != nil {
			return
		}
		if len(servers) == 0 {
			t.Fatal("no error and no servers")
		}
		for name, c := range servers {
			if c.Requests < 0 || c.Errors < 0 || c.Errors > c.Requests || c.RTime < 0 || math.IsNaN(c.RTime) || math.IsInf(c.RTime, 0) {
				t.Fatalf("%s: %+v", name, c)
			}
		}
	})
}
