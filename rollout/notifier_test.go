package rollout

import (
	"context"
	"path/filepath"
	"sync"
	"testing"

	"github.com/rollout-sh/rollout/journal"
	"github.com/rollout-sh/rollout/rollout/event"
)

// fakeNotifier records what the run tells it, and at Settle reports
// through the run's emitter as package notify does.
type fakeNotifier struct {
	mu      sync.Mutex
	emit    func(event.Event)
	settled int
}

func (n *fakeNotifier) Attach(emit func(event.Event)) { n.mu.Lock(); n.emit = emit; n.mu.Unlock() }
func (n *fakeNotifier) Settle() {
	n.mu.Lock()
	emit := n.emit
	n.settled++
	n.mu.Unlock()
	emit(event.Event{Event: event.Log, Level: "warn", Message: "2 notifications to http://x were not delivered"})
}

// The notifier settles once, just before run_done, and what it records
// is in the journal and the stream before run_done.
func TestNotifierSettlesBeforeRunDone(t *testing.T) {
	f := newFleet(t, 2, `batch = [1]`)
	pr, err := Prepare(Request{PlanFile: f.planFile})
	if err != nil {
		t.Fatal(err)
	}
	n := &fakeNotifier{}
	env := f.env()
	env.Notifier = n
	store := &journal.Local{Dir: filepath.Join(f.dir, ".rollout"), Journal: filepath.Join(f.dir, "journal.jsonl")}
	defer store.Close()
	if _, err := Run(context.Background(), pr, env, Options{RunID: "r-notify", Backend: store, Owner: "test@here"}, nil); err != nil {
		t.Fatal(err)
	}
	if n.settled != 1 {
		t.Fatalf("settled %d times", n.settled)
	}
	journaled, err := store.Events(context.Background(), "web")
	if err != nil {
		t.Fatal(err)
	}
	f.rec.mu.Lock()
	stream := append([]event.Event{}, f.rec.events...)
	f.rec.mu.Unlock()
	for name, evs := range map[string][]event.Event{"stream": stream, "journal": journaled} {
		if len(evs) < 2 || evs[len(evs)-1].Event != event.RunDone || evs[len(evs)-2].Event != event.Log ||
			evs[len(evs)-2].Message != "2 notifications to http://x were not delivered" || evs[len(evs)-2].Run != "r-notify" {
			t.Errorf("%s does not end with the notifier's record, then run_done: %+v", name, evs[max(0, len(evs)-2):])
		}
	}
}
