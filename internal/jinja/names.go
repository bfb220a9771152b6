package jinja

import (
	"strings"

	"github.com/nikolalohinski/gonja/v2/config"
	"github.com/nikolalohinski/gonja/v2/tokens"
)

// Names returns every identifier that appears inside the expressions and
// statements of src ({{ ... }}, {% ... %}), each once, in the order they
// first appear. It over-approximates the names a template reads (filter,
// test and attribute names, loop variables and keywords are in it too):
// callers use it to know which variables a template may need, so that
// variables can be rendered lazily, only when a template can use them.
func Names(src []byte) []string {
	if !HasSyntax(string(src)) {
		return nil
	}
	cfg := config.New()
	s := tokens.LexAll(string(src), cfg)
	seen := map[string]bool{}
	var out []string
	for !s.End() {
		t := s.Next()
		if t == nil {
			break
		}
		if t.Type == tokens.Name && !seen[t.Val] {
			seen[t.Val] = true
			out = append(out, t.Val)
		}
	}
	return out
}

// HasSyntax reports whether s may hold Jinja2 that renders to something
// else than s itself: an expression, a statement or a comment opening.
func HasSyntax(s string) bool {
	return strings.Contains(s, "{{") || strings.Contains(s, "{%") || strings.Contains(s, "{#")
}
