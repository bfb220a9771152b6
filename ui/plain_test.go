package ui

import (
	"bytes"
	"strings"
	"sync"
	"testing"

	"github.com/charmbracelet/x/exp/teatest"

	"github.com/rollout-sh/rollout/rollout/event"
)

func plainOutput(t *testing.T, opts PlainOptions, events []event.Event) string {
	t.Helper()
	var buf bytes.Buffer
	p := NewPlain(&buf, opts)
	for _, e := range events {
		p.Emit(e)
	}
	if err := p.Err(); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func TestPlainGolden(t *testing.T) {
	out := plainOutput(t, PlainOptions{}, newScenario().events)
	teatest.RequireEqualOutput(t, []byte(out))
}

func TestPlainVerboseGolden(t *testing.T) {
	out := plainOutput(t, PlainOptions{Verbose: true, Width: 60}, newScenario().events)
	teatest.RequireEqualOutput(t, []byte(out))
}

func TestPlainNoEscapesWithoutColor(t *testing.T) {
	for _, verbose := range []bool{false, true} {
		out := plainOutput(t, PlainOptions{Verbose: verbose}, newScenario().events)
		if strings.Contains(out, "\x1b") {
			t.Errorf("verbose=%v: escape sequence in plain output without colour:\n%q", verbose, out)
		}
	}
}

func TestPlainColorOnlyChangesStyling(t *testing.T) {
	events := newScenario().events
	colored := plainOutput(t, PlainOptions{Color: true}, events)
	if !strings.Contains(colored, "\x1b[") {
		t.Fatal("Color: true wrote no escape sequence")
	}
	plain := plainOutput(t, PlainOptions{}, events)
	if got := stripANSI(colored); got != plain {
		t.Errorf("coloured output differs from plain beyond styling:\n%s", lineDiff(plain, got))
	}
}

func TestPlainFailureLineCarriesReason(t *testing.T) {
	out := plainOutput(t, PlainOptions{}, newScenario().events)
	var failed string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "web3") && strings.Contains(l, " drained ") {
			failed = l
			break
		}
	}
	if !strings.Contains(failed, "NRestarts 0 -> 1") {
		t.Errorf("host_done line of the failed host lacks its reason: %q", failed)
	}
	if !strings.Contains(out, `    | appd[812]: panic: config: unknown key "workers"`) {
		t.Error("diagnostics of the failed host are not shown")
	}
	if !strings.HasSuffix(out, "next: "+nextStep+"\n") {
		t.Errorf("output does not end with the next command:\n%s", out)
	}
}

func TestPlainThinsProgressUnlessVerbose(t *testing.T) {
	events := newScenario().events
	count := func(out, what string) int {
		n := 0
		for _, l := range strings.Split(out, "\n") {
			if strings.Contains(l, what) {
				n++
			}
		}
		return n
	}
	quiet := plainOutput(t, PlainOptions{}, events)
	loud := plainOutput(t, PlainOptions{Verbose: true}, events)
	// web1 reports 12 sessions three times, then 3, then 0.
	if got := count(quiet, "12 sessions left"); got != 1 {
		t.Errorf("quiet: %d lines with 12 sessions, want 1", got)
	}
	if got := count(loud, "12 sessions left"); got != 3 {
		t.Errorf("verbose: %d lines with 12 sessions, want 3", got)
	}
	// web1's window runs 1..10 once; web3's starts at 3 and restarts at 0.
	if got := count(quiet, "stable "); got != 3 {
		t.Errorf("quiet: %d health lines, want 3 (start, start, restart)", got)
	}
	if got := count(loud, "stable "); got != 12 {
		t.Errorf("verbose: %d health lines, want 12", got)
	}
	if strings.Contains(quiet, "probe http://") || !strings.Contains(loud, "probe http://") {
		t.Error("debug logs must show only when verbose")
	}
}

func TestPlainConcurrentEmit(t *testing.T) {
	var buf bytes.Buffer
	p := NewPlain(&buf, PlainOptions{})
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				p.Emit(event.Event{Event: event.Log, Level: "info", Message: "hello"})
			}
		}()
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 200 {
		t.Fatalf("%d lines, want 200", len(lines))
	}
	for _, l := range lines {
		if !strings.HasSuffix(l, "log        info     hello") {
			t.Fatalf("interleaved line %q", l)
		}
	}
}

func TestFormatEventLine(t *testing.T) {
	f := newFormatter()
	f.observe(event.Event{Event: event.RunStart, Batches: [][]string{{"web1"}, {"web2"}}})
	e := event.Event{Time: t0.Add(12 * 1e9), Event: event.DrainSessions, Host: "web2", Batch: 1, Sessions: event.Int(12)}
	got := f.format(e, nil)
	want := "03:01:12 web2   [batch 1] drain      running  12 sessions left"
	if len(got) != 1 || got[0] != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

func stripANSI(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == 0x1b && i+1 < len(s) && s[i+1] == '[' {
			j := i + 2
			for j < len(s) && (s[j] < 0x40 || s[j] > 0x7e) {
				j++
			}
			i = j
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := 0; i < max(len(w), len(g)); i++ {
		var a, c string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			c = g[i]
		}
		if a != c {
			b.WriteString("- " + a + "\n+ " + c + "\n")
		}
	}
	return b.String()
}

// The same preflight failure on many hosts is printed once, with its hosts.
func TestPlainGroupsPreflightFailures(t *testing.T) {
	var b strings.Builder
	p := NewPlain(&b, PlainOptions{})
	msg := "file \"app.conf\": validator `appd -check -config /etc/app/app.conf.rollout-staged` rejected the new content: exit status 1\nline 6: unknown key \"colour\""
	p.Emit(event.Event{Event: event.PreflightStart, Hosts: []string{"web1", "web2", "web3", "web4"}})
	for _, h := range []string{"web1", "web2", "web3"} {
		p.Emit(event.Event{Event: event.PreflightHost, Host: h, Status: event.StatusFailed, Message: msg})
	}
	p.Emit(event.Event{Event: event.PreflightHost, Host: "web4", Status: event.StatusFailed, Message: "file \"app.conf\": staging: disk full"})
	p.Emit(event.Event{Event: event.PreflightDone, Status: event.StatusFailed, Message: "4 host(s) failed preflight"})
	out := b.String()
	if n := strings.Count(out, `unknown key "colour"`); n != 1 {
		t.Errorf("the same failure is printed %d times, want once:\n%s", n, out)
	}
	for _, want := range []string{"preflight failed on 3 host(s) (web1, web2, web3):", "preflight failed on 1 host(s) (web4):", "disk full"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// A preflight group lists its hosts in the run's order (the inventory's),
// not in the order they finished; groups come in the order of their first
// host.
func TestPlainPreflightGroupInRunOrder(t *testing.T) {
	var b strings.Builder
	p := NewPlain(&b, PlainOptions{})
	p.Emit(event.Event{Event: event.RunStart, Batches: [][]string{{"web1"}, {"web2", "web3", "web4", "web5"}}})
	p.Emit(event.Event{Event: event.PreflightStart, Hosts: []string{"web1", "web2", "web3", "web4", "web5"}})
	for _, h := range []string{"web5", "web4", "web2", "web1", "web3"} {
		msg := "file \"app.conf\": validator rejected it"
		if h == "web5" {
			msg = "staging: disk full"
		}
		p.Emit(event.Event{Event: event.PreflightHost, Host: h, Status: event.StatusFailed, Message: msg})
	}
	p.Emit(event.Event{Event: event.PreflightDone, Status: event.StatusFailed})
	out := b.String()
	first := strings.Index(out, "preflight failed on 4 host(s) (web1, web2, web3, web4):")
	second := strings.Index(out, "preflight failed on 1 host(s) (web5):")
	if first < 0 || second < first {
		t.Errorf("the groups do not list their hosts in run order, web1's group first:\n%s", out)
	}
}

// The summary's next: line is only ever the command, so it works when
// pasted; a message that says more comes on the line before it.
func TestPlainNextLineIsTheCommand(t *testing.T) {
	tests := []struct {
		msg, next string
		want      []string // the summary's last lines
	}{
		{"done; check with: rollout status p.hcl", "rollout status p.hcl", []string{"done; check with: rollout status p.hcl", "next: rollout status p.hcl"}},
		{"rollout repair p.hcl", "rollout repair p.hcl", []string{"web1  ok       -", "next: rollout repair p.hcl"}},
		{"left drained for inspection: web1", "", []string{"web1  ok       -", "left drained for inspection: web1"}},
	}
	for _, tt := range tests {
		var b strings.Builder
		p := NewPlain(&b, PlainOptions{})
		p.Emit(event.Event{Event: event.RunStart, Batches: [][]string{{"web1"}}})
		p.Emit(event.Event{Event: event.HostDone, Host: "web1", Status: string(event.OutcomeOK)})
		p.Emit(event.Event{Event: event.RunDone, Status: "ok", Message: tt.msg, Next: tt.next})
		lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
		got := lines[len(lines)-len(tt.want):]
		for i := range got {
			got[i] = strings.TrimRight(got[i], " ")
		}
		if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
			t.Errorf("message %q next %q ends:\n%s\nwant:\n%s", tt.msg, tt.next, strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
		}
	}
}
