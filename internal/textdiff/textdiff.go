// Package textdiff renders unified diffs of small text files (config
// files), for `rollout plan --diff`.
package textdiff

import (
	"fmt"
	"strings"
)

// MaxLines bounds the inputs: the LCS table is len(a)*len(b).
const MaxLines = 5000

type op struct {
	kind byte // ' ', '-', '+'
	text string
}

// Unified returns a unified diff of a and b with ctx lines of context, or ""
// when they are equal.
func Unified(aName, bName, a, b string, ctx int) string {
	if a == b {
		return ""
	}
	al, bl := lines(a), lines(b)
	if len(al) > MaxLines || len(bl) > MaxLines {
		return fmt.Sprintf("--- %s\n+++ %s\n(too large to diff: %d and %d lines)\n", aName, bName, len(al), len(bl))
	}
	ops := diff(al, bl)
	var out strings.Builder
	fmt.Fprintf(&out, "--- %s\n+++ %s\n", aName, bName)
	// group changes into hunks with ctx lines around them
	i := 0
	for i < len(ops) {
		if ops[i].kind == ' ' {
			i++
			continue
		}
		start := max(i-ctx, 0)
		end := i
		for end < len(ops) {
			if ops[end].kind != ' ' {
				end++
				continue
			}
			run := end
			for run < len(ops) && ops[run].kind == ' ' {
				run++
			}
			if run == len(ops) || run-end > 2*ctx {
				end = min(end+ctx, len(ops))
				break
			}
			end = run
		}
		aStart, bStart := position(ops, start)
		aLen, bLen := 0, 0
		for _, o := range ops[start:end] {
			if o.kind != '+' {
				aLen++
			}
			if o.kind != '-' {
				bLen++
			}
		}
		fmt.Fprintf(&out, "@@ -%s +%s @@\n", rng(aStart, aLen), rng(bStart, bLen))
		for _, o := range ops[start:end] {
			out.WriteByte(o.kind)
			out.WriteString(o.text)
			out.WriteByte('\n')
		}
		i = end
	}
	if !strings.HasSuffix(a, "\n") || !strings.HasSuffix(b, "\n") {
		out.WriteString("\\ (a file does not end with a newline)\n")
	}
	return out.String()
}

func rng(start, n int) string {
	if n == 0 {
		return fmt.Sprintf("%d,0", start)
	}
	if n == 1 {
		return fmt.Sprint(start + 1)
	}
	return fmt.Sprintf("%d,%d", start+1, n)
}

// position returns the 0-based line numbers in a and b where ops[i] starts.
func position(ops []op, i int) (a, b int) {
	for _, o := range ops[:i] {
		if o.kind != '+' {
			a++
		}
		if o.kind != '-' {
			b++
		}
	}
	return a, b
}

func lines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

// diff is a longest-common-subsequence edit script.
func diff(a, b []string) []op {
	n, m := len(a), len(b)
	lcs := make([][]int32, n+1)
	for i := range lcs {
		lcs[i] = make([]int32, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var ops []op
	i, j := 0, 0
	for i < n && j < m {
		switch {
		case a[i] == b[j]:
			ops = append(ops, op{' ', a[i]})
			i++
			j++
		case lcs[i+1][j] >= lcs[i][j+1]:
			ops = append(ops, op{'-', a[i]})
			i++
		default:
			ops = append(ops, op{'+', b[j]})
			j++
		}
	}
	for ; i < n; i++ {
		ops = append(ops, op{'-', a[i]})
	}
	for ; j < m; j++ {
		ops = append(ops, op{'+', b[j]})
	}
	return ops
}
