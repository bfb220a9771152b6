package journal

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rollout-sh/rollout/rollout/event"
)

// FuzzJournal feeds arbitrary bytes to the journal as a file left on disk
// (torn writes, garbage, huge lines). Read and Runs never panic; when Read
// accepts the file, Open repairs its tail and a record appended after that
// reads back as the last event, after exactly the events read before.
func FuzzJournal(f *testing.F) {
	rec := `{"time":"2026-11-22T03:01:12Z","run":"r-1","event":"run_start","plan":"web","revision":"aaa"}`
	f.Add([]byte(""))
	f.Add([]byte(rec + "\n"))
	f.Add([]byte(rec + "\n" + rec[:20]))
	f.Add([]byte(rec))
	f.Add([]byte("\n\n" + rec + "\n{not json}\n" + rec + "\n"))
	f.Add([]byte(`{"run":"r-2","event":"host_done","host":"web1","status":"ok","counts":{"ok":1}}` + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), File)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		before, rerr := Read(path)
		_ = Runs(before)
		j, err := Open(path)
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		marker := event.Event{Time: time.Unix(1, 0).UTC(), Run: "r-fuzz", Event: event.Log, Message: "appended"}
		if err := j.Append(marker); err != nil {
			t.Fatalf("append: %v", err)
		}
		j.Close()
		after, err := Read(path)
		if rerr != nil {
			return // a corrupt record in the middle stays an error; nothing more to check
		}
		if err != nil {
			t.Fatalf("a journal Read accepted before Open became unreadable after an append: %v", err)
		}
		if len(after) != len(before)+1 {
			t.Fatalf("read %d events before the append and %d after, want %d", len(before), len(after), len(before)+1)
		}
		if last := after[len(after)-1]; last.Run != "r-fuzz" || last.Message != "appended" {
			t.Fatalf("the appended record reads back as %+v", last)
		}
	})
}
