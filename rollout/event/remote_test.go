package event

import (
	"strings"
	"testing"
)

func TestTail(t *testing.T) {
	for _, tc := range []struct {
		in           string
		lines, bytes int
		want         string
		omitted      int
	}{
		{"", 3, 100, "", 0},
		{"a\nb\nc\n", 3, 100, "a\nb\nc", 0},
		{"a\nb\nc\n", 2, 100, "b\nc", 2},
		{"a\nb\nc", 1, 100, "c", 4},
		{"aaaa\nbb\ncc", 5, 6, "bb\ncc", 5},
		{"abcdefgh", 5, 3, "fgh", 5},
		{"xéé", 5, 3, "é", 3}, // never half a rune
	} {
		got, omitted := Tail(tc.in, tc.lines, tc.bytes)
		if got != tc.want || omitted != tc.omitted {
			t.Errorf("Tail(%q, %d, %d) = %q, %d; want %q, %d", tc.in, tc.lines, tc.bytes, got, omitted, tc.want, tc.omitted)
		}
	}
}

func TestNewRemoteIsBounded(t *testing.T) {
	big := strings.Repeat("0123456789\n", 10000)
	r := NewRemote("journalctl", 0, big)
	if n := strings.Count(r.Output, "\n") + 1; n != RemoteTailLines || len(r.Output) > RemoteTailBytes {
		t.Errorf("kept %d lines, %d bytes; want %d lines within %d bytes", n, len(r.Output), RemoteTailLines, RemoteTailBytes)
	}
	if r.Omitted+len(r.Output)+1 != len(big) {
		t.Errorf("omitted %d bytes, kept %d, of %d", r.Omitted, len(r.Output), len(big))
	}
}
