package plan

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestParseQuantity(t *testing.T) {
	tests := []struct {
		in      string
		want    Quantity
		wantErr string
	}{
		{"3", Quantity{N: 3, Set: true}, ""},
		{" 25% ", Quantity{N: 25, Percent: true, Set: true}, ""},
		{"0", Quantity{N: 0, Set: true}, ""},
		{"100%", Quantity{N: 100, Percent: true, Set: true}, ""},
		{"101%", Quantity{}, "at most 100%"},
		{"-1", Quantity{}, "whole number"},
		{"+1", Quantity{}, "whole number"},
		{"1.5", Quantity{}, "whole number"},
		{"%", Quantity{}, "whole number"},
		{"", Quantity{}, "whole number"},
		{"2 5", Quantity{}, "whole number"},
		{"99999999999999999999", Quantity{}, "at most"},
	}
	for _, tt := range tests {
		got, err := ParseQuantity(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseQuantity(%q) error = %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseQuantity(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

func TestParseBatchSpec(t *testing.T) {
	tests := []struct {
		in      string
		want    string // quantities joined with ","
		wantErr string
	}{
		{"1,25%", "1,25%", ""},
		{"1, 5, 10", "1,5,10", ""},
		{"30%", "30%", ""},
		{"", "", "empty"},
		{"1,,2", "", "entry 2"},
		{"0", "", "at least one host"},
		{"1,0%", "", "entry 2"},
		{"abc", "", "entry 1"},
	}
	for _, tt := range tests {
		got, err := ParseBatchSpec(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseBatchSpec(%q) error = %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		var s []string
		for _, q := range got {
			s = append(s, q.String())
		}
		if err != nil || strings.Join(s, ",") != tt.want {
			t.Errorf("ParseBatchSpec(%q) = %v, %v; want %s", tt.in, s, err, tt.want)
		}
	}
}

func TestQuantityOf(t *testing.T) {
	tests := []struct {
		q            string
		total        int
		of, ofFloor  int
		wantMinServe int
	}{
		{"30%", 10, 3, 3, 3},
		{"25%", 3, 1, 0, 1},
		{"25%", 12, 3, 3, 3},
		{"75%", 3, 2, 2, 3},
		{"75%", 12, 9, 9, 9},
		{"1%", 0, 0, 0, 0},
		{"0%", 10, 0, 0, 0},
		{"5", 3, 5, 5, 5},
		{"0", 10, 0, 0, 0},
		{"100%", 7, 7, 7, 7},
	}
	for _, tt := range tests {
		q, err := ParseQuantity(tt.q)
		if err != nil {
			t.Fatal(err)
		}
		if got := q.Of(tt.total); got != tt.of {
			t.Errorf("%s.Of(%d) = %d, want %d", tt.q, tt.total, got, tt.of)
		}
		if got := q.OfFloor(tt.total); got != tt.ofFloor {
			t.Errorf("%s.OfFloor(%d) = %d, want %d", tt.q, tt.total, got, tt.ofFloor)
		}
		p := &Plan{MinInService: q, MaxFailures: q}
		if got := p.MinServing(tt.total); got != tt.wantMinServe {
			t.Errorf("MinServing(%d) with %s = %d, want %d", tt.total, tt.q, got, tt.wantMinServe)
		}
		if got := p.FailureLimit(tt.total); got != tt.ofFloor {
			t.Errorf("FailureLimit(%d) with %s = %d, want %d", tt.total, tt.q, got, tt.ofFloor)
		}
	}
}

func TestUnsetQuantities(t *testing.T) {
	p := &Plan{}
	if got := p.FailureLimit(100); got != 0 {
		t.Errorf("FailureLimit unset = %d, want 0 (first failure halts)", got)
	}
	if got := p.MinServing(100); got != 1 {
		t.Errorf("MinServing unset = %d, want 1", got)
	}
}

func hostNames(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("h%02d", i+1)
	}
	return out
}

func sizes(batches [][]string) []int {
	out := make([]int, len(batches))
	for i, b := range batches {
		out[i] = len(b)
	}
	return out
}

func TestBatches(t *testing.T) {
	tests := []struct {
		spec  string // "" = nil spec
		hosts int
		want  []int
	}{
		{"1,5,10", 20, []int{1, 5, 10, 4}}, // Ansible's serial: [1, 5, 10]
		{"30%", 10, []int{3, 3, 3, 1}},     // Ansible's serial: "30%"
		{"25%", 3, []int{1, 1, 1}},         // rounds down to 0, at least 1
		{"1,25%", 12, []int{1, 3, 3, 3, 2}},
		{"1,25%", 1, []int{1}},
		{"50", 3, []int{3}},
		{"1,100%", 5, []int{1, 4}},
		{"", 4, []int{4}},
		{"2", 0, []int{}},
	}
	for _, tt := range tests {
		var spec []Quantity
		if tt.spec != "" {
			var err error
			if spec, err = ParseBatchSpec(tt.spec); err != nil {
				t.Fatal(err)
			}
		}
		hosts := hostNames(tt.hosts)
		got := Batches(spec, hosts)
		if !reflect.DeepEqual(sizes(got), tt.want) {
			t.Errorf("Batches(%q, %d hosts) sizes = %v, want %v", tt.spec, tt.hosts, sizes(got), tt.want)
		}
		checkBatches(t, got, hosts)
	}
}

// checkBatches asserts the invariants: order kept, every host once, no
// empty batch.
func checkBatches(t *testing.T, got [][]string, hosts []string) {
	t.Helper()
	var flat []string
	for _, b := range got {
		if len(b) == 0 {
			t.Errorf("empty batch in %v", got)
		}
		flat = append(flat, b...)
	}
	if len(flat) != len(hosts) || (len(hosts) > 0 && !reflect.DeepEqual(flat, hosts)) {
		t.Errorf("batches %v do not hold hosts %v once each, in order", got, hosts)
	}
}

func TestBatchesDoNotAlias(t *testing.T) {
	hosts := hostNames(4)
	got := Batches([]Quantity{{N: 2, Set: true}}, hosts)
	got[0][0] = "changed"
	if hosts[0] != "h01" {
		t.Error("Batches returned slices sharing the caller's array")
	}
}

func TestRange(t *testing.T) {
	tests := []struct {
		in        string
		str       string
		in9, in12 bool
		wantErr   bool
	}{
		{"12", "12", false, true, false},
		{"10..14", "10..14", false, true, false},
		{" 9..9 ", "9", true, false, false},
		{"14..10", "", false, false, true},
		{"0", "", false, false, true},
		{"10%", "", false, false, true},
		{"a..b", "", false, false, true},
	}
	for _, tt := range tests {
		r, err := parseRange(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("parseRange(%q) error = %v", tt.in, err)
			continue
		}
		if err != nil {
			continue
		}
		if r.String() != tt.str || r.Contains(9) != tt.in9 || r.Contains(12) != tt.in12 {
			t.Errorf("%q: String %q Contains(9) %v Contains(12) %v", tt.in, r.String(), r.Contains(9), r.Contains(12))
		}
	}
}
