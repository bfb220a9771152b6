package plan

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// maxQuantity bounds counts so that arithmetic on them cannot overflow.
const maxQuantity = 1_000_000

// ParseQuantity parses a count ("3") or a percentage ("25%"). Counts are
// whole numbers from 0 to 1000000, percentages whole numbers from 0 to 100.
// Signs, fractions and spaces inside the number are refused; spaces around
// it are ignored.
func ParseQuantity(s string) (Quantity, error) {
	t := strings.TrimSpace(s)
	pct := strings.HasSuffix(t, "%")
	digits := strings.TrimSuffix(t, "%")
	if digits == "" {
		return Quantity{}, fmt.Errorf("quantity %q: expected a whole number such as 3 or a percentage such as 25%%", s)
	}
	for _, r := range digits {
		if r < '0' || r > '9' {
			return Quantity{}, fmt.Errorf("quantity %q: expected a whole number such as 3 or a percentage such as 25%%", s)
		}
	}
	if len(digits) > 7 {
		return Quantity{}, fmt.Errorf("quantity %q: at most %d", s, maxQuantity)
	}
	n, err := strconv.Atoi(digits)
	if err != nil {
		return Quantity{}, fmt.Errorf("quantity %q: %w", s, err)
	}
	if pct && n > 100 {
		return Quantity{}, fmt.Errorf("quantity %q: a percentage is at most 100%%", s)
	}
	if !pct && n > maxQuantity {
		return Quantity{}, fmt.Errorf("quantity %q: at most %d", s, maxQuantity)
	}
	return Quantity{N: n, Percent: pct, Set: true}, nil
}

// ParseBatchSpec parses the --batch flag: quantities separated by commas,
// such as "1,25%" (first batch one host, then 25% of the hosts per batch).
// Every entry must be at least 1 (or 1%).
func ParseBatchSpec(s string) ([]Quantity, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("batch: empty; expected sizes such as 1,25%")
	}
	parts := strings.Split(s, ",")
	out := make([]Quantity, 0, len(parts))
	for i, p := range parts {
		q, err := ParseQuantity(p)
		if err != nil {
			return nil, fmt.Errorf("batch entry %d: %w", i+1, err)
		}
		if q.N == 0 {
			return nil, fmt.Errorf("batch entry %d: %q: a batch holds at least one host", i+1, strings.TrimSpace(p))
		}
		out = append(out, q)
	}
	return out, nil
}

// String formats q as it would be written in a plan: "3" or "25%".
// An unset quantity is "".
func (q Quantity) String() string {
	if !q.Set {
		return ""
	}
	if q.Percent {
		return strconv.Itoa(q.N) + "%"
	}
	return strconv.Itoa(q.N)
}

// Of is the number of hosts q stands for out of total, with batch
// semantics (Ansible's serial): a count is returned as it is (it is not
// capped at total); a percentage is total*N/100 rounded down, but at least
// 1 when N > 0 and total > 0, so "25%" of 3 hosts is 1. "0%" and an unset
// quantity are 0.
func (q Quantity) Of(total int) int {
	if !q.Percent {
		return q.N
	}
	n := q.OfFloor(total)
	if n == 0 && q.N > 0 && total > 0 {
		return 1
	}
	return n
}

// OfFloor is like Of with plain rounding down and no minimum: "25%" of 3 is
// 0. max_failures uses it, so a small percentage of a small fleet tolerates
// no failure.
func (q Quantity) OfFloor(total int) int {
	if !q.Percent {
		return q.N
	}
	if total <= 0 {
		return 0
	}
	return total * q.N / 100
}

// ofCeil is a percentage rounded up, for floors that must not be undercut.
func (q Quantity) ofCeil(total int) int {
	if !q.Percent {
		return q.N
	}
	if total <= 0 {
		return 0
	}
	return (total*q.N + 99) / 100
}

// Batches splits hosts into batches the way Ansible's serial does: entry i
// of spec is the size of batch i, computed with Of against the total number
// of hosts; the last entry repeats until every host is in a batch. Order is
// preserved, every host appears exactly once, and no batch is empty. A nil
// or empty spec, or an entry of size 0, takes all the remaining hosts in
// one batch.
func Batches(spec []Quantity, hosts []string) [][]string {
	if len(hosts) == 0 {
		return nil
	}
	total := len(hosts)
	var out [][]string
	rest := hosts
	for i := 0; len(rest) > 0; i++ {
		size := len(rest)
		if len(spec) > 0 {
			q := spec[min(i, len(spec)-1)]
			if n := q.Of(total); n > 0 && n < size {
				size = n
			}
		}
		batch := make([]string, size)
		copy(batch, rest[:size])
		out = append(out, batch)
		rest = rest[size:]
	}
	return out
}

// FailureLimit is how many of total targeted hosts may fail before the run
// halts: the run halts as soon as failures > FailureLimit(total). It is
// max_failures with percentages of total rounded down, so the default
// (0) and any percentage that rounds to 0 halt on the first failure.
func (p *Plan) FailureLimit(total int) int {
	return p.MaxFailures.OfFloor(total)
}

// MinServing is how many servers of a pool of the given size must keep
// serving at every moment: min_in_service, with a percentage of the pool
// rounded up (the floor is never undercut: "75%" of 3 is 3). Unset, it is 1.
// The result is not capped at pool; a floor above the pool size means no
// server may be drained.
func (p *Plan) MinServing(pool int) int {
	if !p.MinInService.Set {
		return 1
	}
	return p.MinInService.ofCeil(pool)
}

// Contains reports whether n is within the range, bounds included.
func (r Range) Contains(n int) bool { return n >= r.Min && n <= r.Max }

// String is "12" for an exact count and "10..14" for a range.
func (r Range) String() string {
	if r.Min == r.Max {
		return strconv.Itoa(r.Min)
	}
	return strconv.Itoa(r.Min) + ".." + strconv.Itoa(r.Max)
}

// parseRange parses expect_hosts written as a string: "12" or "10..14".
func parseRange(s string) (Range, error) {
	lo, hi, isRange := strings.Cut(strings.TrimSpace(s), "..")
	if !isRange {
		hi = lo
	}
	a, err := ParseQuantity(lo)
	if err != nil || a.Percent {
		return Range{}, fmt.Errorf("expect_hosts %q: expected a number such as 12 or a range such as \"10..14\"", s)
	}
	b, err := ParseQuantity(hi)
	if err != nil || b.Percent {
		return Range{}, fmt.Errorf("expect_hosts %q: expected a number such as 12 or a range such as \"10..14\"", s)
	}
	if a.N < 1 || a.N > b.N {
		return Range{}, fmt.Errorf("expect_hosts %q: expected 1 <= low <= high", s)
	}
	return Range{Min: a.N, Max: b.N}, nil
}
