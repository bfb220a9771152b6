package ui

import (
	"encoding/json"
	"io"
	"sync"

	"github.com/rollout-sh/rollout/rollout/event"
)

// JSON writes each event as one JSON object on its own line (json.Marshal
// of event.Event) and nothing else. It is an event.Sink and safe for
// concurrent use. The schema is documented in docs/json-events.md.
type JSON struct {
	mu  sync.Mutex
	w   io.Writer
	err error
}

// NewJSON returns a JSON view writing to w.
func NewJSON(w io.Writer) *JSON {
	return &JSON{w: w}
}

// Emit writes the event as one line.
func (j *JSON) Emit(e event.Event) {
	b, err := json.Marshal(e)
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.err != nil {
		return
	}
	if err != nil {
		j.err = err
		return
	}
	if _, err := j.w.Write(append(b, '\n')); err != nil {
		j.err = err
	}
}

// Err returns the first error encoding or writing an event, if any.
func (j *JSON) Err() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.err
}

var _ event.Sink = (*JSON)(nil)
