package bench

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/rollout-sh/rollout/rollout/event"
)

// WaitPhases are the phases of a host's pipeline that wait on the world
// rather than on rollout: the LB draining the server to zero sessions, the
// plan's restart command, the health gate, and the LB taking the server
// back (ramp steps and its own check reporting UP). They include the round
// trips rollout makes inside them, so a ratio built on them flatters
// rollout slightly.
var WaitPhases = map[event.Phase]bool{
	event.PhaseDrain:   true,
	event.PhaseRestart: true,
	event.PhaseHealth:  true,
	event.PhaseUndrain: true,
}

// Waits is what one `rollout apply --ui json` run spent waiting, from the
// timestamps of its events.
type Waits struct {
	// Total sums every host's wait phases (hosts of one batch overlap, so
	// with batches larger than 1 this exceeds the wall time of the waits).
	Total time.Duration
	// Critical sums, batch by batch, the waits of the batch's slowest host:
	// the least time the run could take if rollout itself cost nothing
	// (plus any pause between batches, which this plan has none of).
	Critical time.Duration
	// Pauses is the time spent in `waiting` events (pauses between batches,
	// approvals) up to the next event.
	Pauses time.Duration
	Hosts  int // hosts that had a host_phase
}

// Unavoidable is what the run could not have been faster than: the
// critical path of the waits plus the pauses.
func (w Waits) Unavoidable() time.Duration { return w.Critical + w.Pauses }

// ParseWaits reads a JSON event stream (one event per line) and returns
// its waits. An error names the line that is not an event, or says the
// stream had no host phases at all.
func ParseWaits(stream []byte) (Waits, error) {
	type open struct {
		phase event.Phase
		at    time.Time
	}
	cur := map[string]open{}
	perHost := map[string]time.Duration{}
	batchOf := map[string]int{}
	var w Waits
	var pauseStart time.Time
	sc := bufio.NewScanner(bytes.NewReader(stream))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	line := 0
	for sc.Scan() {
		line++
		if b := bytes.TrimSpace(sc.Bytes()); len(b) == 0 || bytes.HasPrefix(b, []byte("warning: ")) {
			// blank, or a warning rollout writes on stderr, which the run's
			// output file holds too: not an event
			continue
		}
		var e event.Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return Waits{}, fmt.Errorf("event stream line %d: %w", line, err)
		}
		if !pauseStart.IsZero() {
			w.Pauses += e.Time.Sub(pauseStart)
			pauseStart = time.Time{}
		}
		if e.Event == event.Waiting {
			pauseStart = e.Time
		}
		if e.Host == "" || (e.Event != event.HostPhase && e.Event != event.HostDone) {
			continue
		}
		if e.Batch > 0 {
			batchOf[e.Host] = e.Batch
		}
		if o, ok := cur[e.Host]; ok && WaitPhases[o.phase] && (e.Event == event.HostDone || e.Phase != o.phase) {
			perHost[e.Host] += e.Time.Sub(o.at)
		}
		if e.Event == event.HostDone {
			delete(cur, e.Host)
			continue
		}
		if o, ok := cur[e.Host]; !ok || o.phase != e.Phase {
			cur[e.Host] = open{e.Phase, e.Time}
		}
	}
	if err := sc.Err(); err != nil {
		return Waits{}, fmt.Errorf("event stream: %w", err)
	}
	if len(batchOf) == 0 {
		return Waits{}, errors.New("event stream: no host_phase events (was it `rollout apply --ui json`?)")
	}
	slowest := map[int]time.Duration{}
	for h, d := range perHost {
		w.Total += d
		slowest[batchOf[h]] = max(slowest[batchOf[h]], d)
	}
	for _, d := range slowest {
		w.Critical += d
	}
	w.Hosts = len(batchOf)
	return w, nil
}
