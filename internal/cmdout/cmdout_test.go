package cmdout

import (
	"testing"
	"unicode/utf8"
)

func TestLastLine(t *testing.T) {
	for in, want := range map[string]string{"": "", "one": "one", "a\nb\n\n": "b", "  x  \n  y  ": "y"} {
		if got := LastLine(in); got != want {
			t.Errorf("LastLine(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestClipKeepsRunes(t *testing.T) {
	if got := Clip("short", 10); got != "short" {
		t.Fatalf("Clip = %q", got)
	}
	got := Clip("ééééé", 3) // é is 2 bytes: cutting at 3 would split one
	if !utf8.ValidString(got) || got != "é…" {
		t.Fatalf("Clip = %q, want %q", got, "é…")
	}
}
