// Package cmdout shortens command output for error messages.
package cmdout

import (
	"strings"
	"unicode/utf8"
)

// LastLine returns the last non-blank line of s, trimmed.
func LastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// Clip returns s cut to at most n bytes (on a rune boundary) with "…"
// appended when it was cut.
func Clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// Tail is the last three lines of s joined with " | ", after ": " (for an
// error message), or "" when s is blank.
func Tail(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	lines := strings.Split(s, "\n")
	if len(lines) > 3 {
		lines = lines[len(lines)-3:]
	}
	return ": " + strings.Join(lines, " | ")
}
