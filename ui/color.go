package ui

import (
	"io"
	"os"

	"golang.org/x/term"
)

// ColorEnabled reports whether output to w should be coloured: only when w
// is a terminal, NO_COLOR is unset (or empty, as no-color.org says) and
// TERM is not "dumb".
func ColorEnabled(w io.Writer) bool {
	if os.Getenv("NO_COLOR") != "" || os.Getenv("TERM") == "dumb" {
		return false
	}
	f, ok := w.(interface{ Fd() uintptr })
	if !ok {
		return false
	}
	return term.IsTerminal(int(f.Fd()))
}
