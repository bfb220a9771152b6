package jinja

import (
	"slices"
	"testing"
)

func TestNames(t *testing.T) {
	tests := []struct {
		src  string
		want []string
	}{
		{"plain text, no names", nil},
		{"{{ a }} and {{ b | default(c) }}", []string{"a", "b", "c"}},
		{"{% for x in hostvars[h].y %}{{ x ~ 'lit' }}{% endfor %}", []string{"for", "x", "hostvars", "h", "endfor"}},
		{"{{ a is defined }} {{ b is not sameas c }} {{ d|e(f) }} {{ g.h.i }}", []string{"a", "b", "c", "d", "f", "g"}},
		{"{# {{ hidden }} #}text", nil},
		{"{{ 'a' + \"{{ b }}\" }}", nil},
	}
	for _, tt := range tests {
		got := Names([]byte(tt.src))
		if !slices.Equal(got, tt.want) {
			t.Errorf("Names(%q) = %q, want %q", tt.src, got, tt.want)
		}
	}
}
