package plan

import (
	"os"
	"testing"

	"github.com/rollout-sh/rollout/inventory"
)

func FuzzParseQuantity(f *testing.F) {
	for _, s := range []string{"3", "25%", "0", "100%", "101%", "-1", " 7 ", "%", "1e3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q, err := ParseQuantity(s)
		if err != nil {
			return
		}
		if !q.Set || q.N < 0 || (q.Percent && q.N > 100) || q.N > maxQuantity {
			t.Fatalf("ParseQuantity(%q) = %+v out of bounds", s, q)
		}
		back, err := ParseQuantity(q.String())
		if err != nil || back != q {
			t.Fatalf("%q: round trip through %q gave %+v, %v", s, q.String(), back, err)
		}
		for _, total := range []int{0, 1, 3, 10, 1000} {
			if n := q.Of(total); n < 0 || (q.Percent && n > total) {
				t.Fatalf("%q.Of(%d) = %d", s, total, n)
			}
			if q.OfFloor(total) > q.Of(total) {
				t.Fatalf("%q: OfFloor(%d) above Of", s, total)
			}
		}
	})
}

func FuzzParseBatchSpec(f *testing.F) {
	for _, s := range []string{"1,25%", "1,5,10", "30%", "", ",", "0", "1,,2", "100%,1"} {
		f.Add(s, uint8(12))
	}
	f.Fuzz(func(t *testing.T, s string, n uint8) {
		spec, err := ParseBatchSpec(s)
		if err != nil {
			return
		}
		if len(spec) == 0 {
			t.Fatalf("ParseBatchSpec(%q) accepted an empty spec", s)
		}
		for _, q := range spec {
			if !q.Set || q.N < 1 {
				t.Fatalf("ParseBatchSpec(%q) holds %+v", s, q)
			}
		}
		hosts := hostNames(int(n))
		checkBatches(t, Batches(spec, hosts), hosts)
	})
}

func FuzzParse(f *testing.F) {
	if src, err := os.ReadFile("testdata/spec.hcl"); err == nil {
		f.Add(src)
	}
	f.Add([]byte(minimal(`repo = "/r"`)))
	f.Add([]byte(hostPlan))
	f.Add([]byte(`plan "x" { batch = [1, "25%"] }`))
	f.Add([]byte(minimal(`repo = "/r"
  notify "webhook" {
    url     = "https://${env.HOOK_HOST}/h"
    events  = ["run_start", "host_failed"]
    headers = { Authorization = "Bearer ${env.T}", "X-A" = "b" }
  }`)))
	f.Fuzz(func(t *testing.T, src []byte) {
		p, diags := Parse("fuzz.hcl", src)
		if diags.HasErrors() {
			if p != nil {
				t.Fatal("a plan came back with errors")
			}
			return
		}
		if p == nil || p.Name == "" || p.impl == nil {
			t.Fatalf("no usable plan without errors: %+v", p)
		}
		// Evaluating for a host must not panic either.
		p.ForHost(&inventory.Host{Name: "h", Vars: map[string]any{"root": "/srv"}}, "v1")
		for _, n := range p.Notify {
			_, _, _, _ = n.Resolve(func(string) (string, bool) { return "x", true })
		}
	})
}
