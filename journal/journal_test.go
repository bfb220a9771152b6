package journal

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rollout-sh/rollout/rollout/event"
)

var t0 = time.Date(2026, 11, 22, 3, 1, 12, 0, time.UTC)

func ev(run string, kind event.Kind, host string) event.Event {
	return event.Event{Time: t0, Run: run, Event: kind, Host: host}
}

func line(t *testing.T, e event.Event) string {
	t.Helper()
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestAppendRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "plan dir; $x", Dir, File)
	j, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []event.Event{
		{Time: t0, Run: "r1", Event: event.RunStart, Plan: "web", Revision: "abc", Message: KindApply},
		{Time: t0.Add(time.Second), Run: "r1", Event: event.DrainSessions, Host: "web1", Sessions: event.Int(3)},
		{Time: t0.Add(2 * time.Second), Run: "r1", Event: event.HostDone, Host: "web1", Status: "ok", Message: "line1\nline2"},
	}
	for _, e := range want {
		j.Emit(e)
	}
	if err := j.Err(); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 { // it holds remote output
		t.Errorf("journal mode %v, want 0600", fi.Mode().Perm())
	}
	got, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("read %d events, want %d", len(got), len(want))
	}
	for i := range want {
		if line(t, got[i]) != line(t, want[i]) {
			t.Errorf("event %d = %s, want %s", i, line(t, got[i]), line(t, want[i]))
		}
	}
	b, _ := os.ReadFile(path)
	if n := strings.Count(string(b), "\n"); n != len(want) {
		t.Errorf("file has %d lines, want one per event (%d)", n, len(want))
	}

	// Reopening appends after what is there.
	j, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	j.Emit(ev("r2", event.RunStart, ""))
	j.Close()
	got, _ = Read(path)
	if len(got) != 4 || got[3].Run != "r2" {
		t.Errorf("after reopen: %d events, last %+v", len(got), got[len(got)-1])
	}
}

func TestEmitAfterCloseRemembersError(t *testing.T) {
	j, err := Open(filepath.Join(t.TempDir(), File))
	if err != nil {
		t.Fatal(err)
	}
	j.Close()
	j.Emit(ev("r1", event.RunStart, ""))
	j.Emit(ev("r1", event.RunDone, ""))
	if err := j.Err(); !errors.Is(err, ErrClosed) {
		t.Errorf("Err() = %v, want ErrClosed", err)
	}
}

func TestReadMissing(t *testing.T) {
	got, err := Read(filepath.Join(t.TempDir(), "nope", File))
	if err != nil || got != nil {
		t.Errorf("Read(missing) = %v, %v; want nil, nil", got, err)
	}
}

func TestReadTornAndCorrupt(t *testing.T) {
	a := line(t, ev("r1", event.RunStart, ""))
	b := line(t, ev("r1", event.HostPhase, "web1"))
	tests := []struct {
		name    string
		content string
		want    int    // events
		wantErr string // substring of the error; "" = no error
	}{
		{name: "whole", content: a + "\n" + b + "\n", want: 2},
		{name: "torn last line skipped", content: a + "\n" + b[:len(b)/2], want: 1},
		{name: "complete last line without newline kept", content: a + "\n" + b, want: 2},
		{name: "blank lines ignored", content: a + "\n\n" + b + "\n", want: 2},
		{name: "corrupt middle line", content: a + "\n{not json\n" + b + "\n", wantErr: ":2: corrupt record"},
		{name: "corrupt line with newline at the end", content: a + "\n" + b + "\n{\"time\":\n", wantErr: ":3: corrupt record"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), File)
			if err := os.WriteFile(path, []byte(tt.content), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := Read(path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), path+tt.wantErr) {
					t.Fatalf("Read error = %v, want one containing %q", err, path+tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tt.want {
				t.Errorf("read %d events, want %d", len(got), tt.want)
			}
		})
	}
}

func TestOpenRepairsTornTail(t *testing.T) {
	a := line(t, ev("r1", event.RunStart, ""))
	b := line(t, ev("r1", event.HostPhase, "web1"))
	tests := []struct {
		name    string
		content string
		want    []string // runs of the events read after one more append
	}{
		{name: "torn record cut off", content: a + "\n" + b[:10], want: []string{"r1", "r2"}},
		{name: "torn only record", content: b[:10], want: []string{"r2"}},
		{name: "complete record gets its newline", content: a + "\n" + b, want: []string{"r1", "r1", "r2"}},
		{name: "clean file untouched", content: a + "\n", want: []string{"r1", "r2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), File)
			if err := os.WriteFile(path, []byte(tt.content), 0o644); err != nil {
				t.Fatal(err)
			}
			j, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := j.Append(ev("r2", event.RunStart, "")); err != nil {
				t.Fatal(err)
			}
			j.Close()
			got, err := Read(path)
			if err != nil {
				t.Fatalf("Read after repair: %v", err)
			}
			var runs []string
			for _, e := range got {
				runs = append(runs, e.Run)
			}
			if fmt.Sprint(runs) != fmt.Sprint(tt.want) {
				t.Errorf("runs = %v, want %v", runs, tt.want)
			}
		})
	}
}

func TestConcurrentAppends(t *testing.T) {
	path := filepath.Join(t.TempDir(), File)
	// Two journals on the same file, as two processes would have, each
	// written by several goroutines.
	var js []*Journal
	for range 2 {
		j, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		js = append(js, j)
	}
	const writers, each = 8, 50
	big := strings.Repeat("x", 8000) // lines larger than a pipe buffer
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			j := js[w%len(js)]
			for i := range each {
				e := ev(fmt.Sprintf("w%d", w), event.Log, fmt.Sprintf("h%d", i))
				e.Message = big
				if err := j.Append(e); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	for _, j := range js {
		j.Close()
	}
	got, err := Read(path)
	if err != nil {
		t.Fatalf("interleaved lines? %v", err)
	}
	if len(got) != writers*each {
		t.Fatalf("read %d events, want %d", len(got), writers*each)
	}
	next := map[string]int{}
	for _, e := range got {
		if e.Message != big {
			t.Fatalf("event %s/%s has a damaged message", e.Run, e.Host)
		}
		if want := fmt.Sprintf("h%d", next[e.Run]); e.Host != want {
			t.Fatalf("writer %s: got %s, want %s (order within a writer is kept)", e.Run, e.Host, want)
		}
		next[e.Run]++
	}
}

func TestPathFor(t *testing.T) {
	if got, want := PathFor("/srv/deploy/rollout.hcl"), "/srv/deploy/.rollout/journal.jsonl"; got != want {
		t.Errorf("PathFor = %q, want %q", got, want)
	}
}

// The journal holds remote output: new journals are private to their
// owner, and looser ones left by an older version are tightened with a
// warning.
func TestJournalPermissions(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)

	dir := filepath.Join(t.TempDir(), ".rollout")
	path := filepath.Join(dir, File)
	j, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	j.Close()
	if w := j.Warnings(); len(w) != 0 {
		t.Errorf("a new journal warned: %v", w)
	}
	assertMode(t, dir, 0o700)
	assertMode(t, path, 0o600)

	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	j, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	j.Close()
	assertMode(t, dir, 0o700)
	assertMode(t, path, 0o600)
	if w := strings.Join(j.Warnings(), "\n"); !strings.Contains(w, dir+" was readable by other users (mode 0755)") ||
		!strings.Contains(w, path+" was readable by other users (mode 0644)") {
		t.Errorf("warnings do not name both tightened paths:\n%s", w)
	}
}

func assertMode(t *testing.T, name string, want os.FileMode) {
	t.Helper()
	st, err := os.Stat(name)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Mode().Perm(); got != want {
		t.Errorf("%s: mode %04o, want %04o", name, got, want)
	}
}
