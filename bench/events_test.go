package bench

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/rollout-sh/rollout/rollout/event"
)

// stream builds a JSON event stream; each step is (host, batch, phase or
// "" for host_done, seconds after t0).
func stream(t *testing.T, steps ...any) []byte {
	t.Helper()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var b strings.Builder
	for i := 0; i < len(steps); i += 4 {
		e := event.Event{Host: steps[i].(string), Batch: steps[i+1].(int), Time: t0.Add(time.Duration(steps[i+3].(float64) * float64(time.Second)))}
		if p := steps[i+2].(string); p == "" {
			e.Event, e.Status = event.HostDone, string(event.OutcomeOK)
		} else {
			e.Event, e.Phase, e.Status = event.HostPhase, event.Phase(p), event.StatusRunning
		}
		if e.Host == "" {
			e.Event = event.Waiting
		}
		line, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	return []byte(b.String())
}

func TestParseWaitsCriticalPathTakesTheSlowestHostOfEachBatch(t *testing.T) {
	s := stream(t,
		// batch 1: a waits 1 (drain) + 2 (restart) = 3; b waits 1 (health)
		"a", 1, "lock", 0.0, "a", 1, "drain", 1.0, "a", 1, "stage", 2.0, "a", 1, "restart", 3.0, "a", 1, "record", 5.0, "a", 1, "", 6.0,
		"b", 1, "lock", 0.0, "b", 1, "health", 4.0, "b", 1, "record", 5.0, "b", 1, "", 6.0,
		// a pause of 2 between batches
		"", 0, "", 6.0,
		// batch 2: c waits 0.5 (undrain), up to its host_done
		"c", 2, "lock", 8.0, "c", 2, "undrain", 9.0, "c", 2, "", 9.5,
	)
	w, err := ParseWaits(s)
	if err != nil {
		t.Fatal(err)
	}
	if w.Critical != 3500*time.Millisecond {
		t.Errorf("critical path %v, want 3.5s (batch 1: a's 3s; batch 2: c's 0.5s)", w.Critical)
	}
	if w.Total != 4500*time.Millisecond {
		t.Errorf("total %v, want 4.5s (3 + 1 + 0.5)", w.Total)
	}
	if w.Pauses != 2*time.Second {
		t.Errorf("pauses %v, want 2s (the waiting event up to c's lock)", w.Pauses)
	}
	if w.Unavoidable() != 5500*time.Millisecond {
		t.Errorf("unavoidable %v, want 5.5s", w.Unavoidable())
	}
	if w.Hosts != 3 {
		t.Errorf("hosts %d, want 3", w.Hosts)
	}
}

func TestParseWaitsRefusesAStreamWithoutHostPhases(t *testing.T) {
	if _, err := ParseWaits([]byte(`{"event":"run_done","status":"ok"}` + "\n")); err == nil || !strings.Contains(err.Error(), "no host_phase") {
		t.Errorf("err = %v, want one saying there are no host_phase events", err)
	}
	if _, err := ParseWaits([]byte("not json\n")); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("err = %v, want one naming line 1", err)
	}
}
