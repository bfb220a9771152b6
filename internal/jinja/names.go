package jinja

import (
	"strings"

	"github.com/nikolalohinski/gonja/v2/config"
	"github.com/nikolalohinski/gonja/v2/tokens"
)

// Names returns the identifiers that appear inside the expressions and
// statements of src ({{ ... }}, {% ... %}) as names, each once, in the
// order they first appear: not attribute names (after "."), filter names
// (after "|") or test names (after "is", "is not"). It over-approximates
// the names a template reads (loop variables, keyword arguments and
// keywords are in it too): callers use it to know which variables a
// template may need, so that variables are rendered only when a template
// can use them.
func Names(src []byte) []string {
	if !HasSyntax(string(src)) {
		return nil
	}
	cfg := config.New()
	s := tokens.LexAll(string(src), cfg)
	seen := map[string]bool{}
	var out []string
	var prev, prev2 *tokens.Token
	for !s.End() {
		t := s.Next()
		if t == nil {
			break
		}
		if t.Type == tokens.Name && !seen[t.Val] && !follows(prev, prev2) {
			seen[t.Val] = true
			out = append(out, t.Val)
		}
		prev2, prev = prev, t
	}
	return out
}

// follows reports whether a name after prev2 prev is an attribute, a
// filter or a test rather than a variable.
func follows(prev, prev2 *tokens.Token) bool {
	if prev == nil {
		return false
	}
	switch {
	case prev.Type == tokens.Dot, prev.Type == tokens.Pipe:
		return true
	case prev.Type != tokens.String && prev.Val == "is":
		return true
	case prev.Type != tokens.String && prev.Val == "not" && prev2 != nil && prev2.Type != tokens.String && prev2.Val == "is":
		return true
	}
	return false
}

// HasSyntax reports whether s may hold Jinja2 that renders to something
// else than s itself: an expression, a statement or a comment opening.
func HasSyntax(s string) bool {
	return strings.Contains(s, "{{") || strings.Contains(s, "{%") || strings.Contains(s, "{#")
}
