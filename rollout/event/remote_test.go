package event

import (
	"context"
	"errors"
	"fmt"
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

type exitErr struct{ n int }

func (e exitErr) Error() string   { return "exit" }
func (e exitErr) ExitStatus() int { return e.n }

func TestExitStatusAndValidatorNote(t *testing.T) {
	if ExitStatus(nil) != 0 || ExitStatus(fmt.Errorf("restart: %w", exitErr{3})) != 3 || ExitStatus(errors.New("connection lost")) != RemoteExitUnknown {
		t.Error("ExitStatus does not read the status through wrapping, or invents one")
	}
	for tag, want := range map[string]string{"stage-r-1": `file "a"`, "preflight-r-1": `file "a" (preflight)`, "rollback-r-1": `file "a" (rollback)`} {
		if got := ValidatorNote("a", tag); got != want {
			t.Errorf("ValidatorNote(a, %s) = %q, want %q", tag, got, want)
		}
	}
	var got []Event
	RemoteSinkOf(context.Background())(PhaseRestart, "", "x", 0, "") // no sink: nothing, no panic
	sink := RemoteEmitter(func(e Event) { got = append(got, e) }, "web1", 1)
	sink(PhaseRestart, "", "  ", 0, "") // nothing ran
	sink(PhaseRestart, "", "restart", 1, "boom")
	if len(got) != 1 || got[0].Status != StatusFailed || got[0].Host != "web1" || got[0].Batch != 1 || got[0].Remote.Output != "boom" {
		t.Errorf("emitted %+v", got)
	}
}
