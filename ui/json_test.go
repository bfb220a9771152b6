package ui

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/charmbracelet/x/exp/teatest"

	"github.com/rollout-sh/rollout/rollout/event"
)

func jsonLines(t *testing.T, events []event.Event) []string {
	t.Helper()
	var buf bytes.Buffer
	j := NewJSON(&buf)
	for _, e := range events {
		j.Emit(e)
	}
	if err := j.Err(); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if !strings.HasSuffix(out, "\n") {
		t.Fatalf("output does not end with a newline: %q", out)
	}
	return strings.Split(strings.TrimSuffix(out, "\n"), "\n")
}

func TestJSONEveryLineParses(t *testing.T) {
	events := newScenario().events
	lines := jsonLines(t, events)
	if len(lines) != len(events) {
		t.Fatalf("%d lines for %d events", len(lines), len(events))
	}
	for i, l := range lines {
		var got event.Event
		if err := json.Unmarshal([]byte(l), &got); err != nil {
			t.Fatalf("line %d does not parse: %v\n%s", i+1, err, l)
		}
		want, _ := json.Marshal(events[i])
		again, _ := json.Marshal(got)
		if string(want) != string(again) {
			t.Errorf("line %d does not round-trip:\n%s\n%s", i+1, want, again)
		}
	}
	var last map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil {
		t.Fatal(err)
	}
	if last["event"] != "run_done" || last["exit_code"] != float64(1) || last["counts"] == nil {
		t.Errorf("last line is not a run_done with exit_code and counts: %s", lines[len(lines)-1])
	}
}

// TestJSONSchema pins the keys that appear for each event kind, as the
// scenario emits them. A change here changes what CI parses:
// docs/json-events.md must change with it.
func TestJSONSchema(t *testing.T) {
	keys := map[string]map[string]bool{}
	var kinds []string
	for _, l := range jsonLines(t, newScenario().events) {
		var m map[string]json.RawMessage
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatal(err)
		}
		var kind string
		if err := json.Unmarshal(m["event"], &kind); err != nil {
			t.Fatal(err)
		}
		if keys[kind] == nil {
			keys[kind] = map[string]bool{}
			kinds = append(kinds, kind)
		}
		for k := range m {
			keys[kind][k] = true
		}
	}
	var b strings.Builder
	for _, kind := range kinds {
		var ks []string
		for k := range keys[kind] {
			ks = append(ks, k)
		}
		sort.Strings(ks)
		fmt.Fprintf(&b, "%s: %s\n", kind, strings.Join(ks, " "))
	}
	teatest.RequireEqualOutput(t, []byte(b.String()))
}

// TestJSONKindsCovered makes sure the schema test sees every kind the
// event package defines.
func TestJSONKindsCovered(t *testing.T) {
	all := []event.Kind{
		event.RunStart, event.PreflightStart, event.PreflightHost, event.PreflightDone,
		event.BatchStart, event.BatchDone, event.HostPhase, event.DrainSessions,
		event.HealthProgress, event.RampStep, event.HostDone, event.Waiting,
		event.Approved, event.Log, event.RunDone, event.RemoteOutput,
	}
	seen := map[event.Kind]bool{}
	for _, e := range newScenario().events {
		seen[e.Event] = true
	}
	for _, k := range all {
		if !seen[k] {
			t.Errorf("the scenario has no %s event", k)
		}
	}
}

func TestJSONWritesNothingElse(t *testing.T) {
	var buf bytes.Buffer
	j := NewJSON(&buf)
	j.Emit(event.Event{Time: t0, Run: testRun, Event: event.Log, Level: "info", Message: "line one\nline <two>"})
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 1 {
		t.Fatalf("a message with a newline took %d lines", len(lines))
	}
	want := `{"time":"2025-03-01T03:01:00Z","run":"r-20250301-030100","event":"log","message":"line one\nline \u003ctwo\u003e","level":"info"}`
	if lines[0] != want {
		t.Errorf("got  %s\nwant %s", lines[0], want)
	}
}

type failingWriter struct{ n int }

func (f *failingWriter) Write(p []byte) (int, error) {
	f.n++
	return 0, fmt.Errorf("broken pipe")
}

func TestJSONKeepsFirstWriteError(t *testing.T) {
	w := &failingWriter{}
	j := NewJSON(w)
	j.Emit(event.Event{Event: event.Approved})
	j.Emit(event.Event{Event: event.Approved})
	if j.Err() == nil {
		t.Fatal("no error reported")
	}
	if w.n != 1 {
		t.Errorf("wrote %d times after an error, want 1", w.n)
	}
}
