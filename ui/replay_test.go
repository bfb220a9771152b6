package ui

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/rollout-sh/rollout/rollout/event"
)

func TestReplaySpeedZeroDeliversAllInOrder(t *testing.T) {
	events := newScenario().events
	var rec recorder
	if err := Replay(context.Background(), events, &rec, 0); err != nil {
		t.Fatal(err)
	}
	if got := rec.Events(); !reflect.DeepEqual(got, events) {
		t.Fatalf("replay delivered %d events, not the %d recorded ones in order", len(got), len(events))
	}
}

func TestReplayStopsOnContext(t *testing.T) {
	// An hour between the two events: Replay must be waiting when the
	// context ends, and must not deliver the second one.
	events := []event.Event{
		{Time: t0, Event: event.RunStart},
		{Time: t0.Add(time.Hour), Event: event.RunDone},
	}
	ctx, cancel := context.WithCancel(context.Background())
	sink := sinkFunc(func(e event.Event) {
		if e.Event == event.RunStart {
			cancel()
		}
	})
	var rec recorder
	err := Replay(ctx, events, multi{sink, &rec}, 1)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if got := rec.Events(); len(got) != 1 {
		t.Fatalf("delivered %d events, want 1", len(got))
	}
}

func TestReplayCancelledBeforeStart(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var rec recorder
	if err := Replay(ctx, newScenario().events, &rec, 0); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if n := len(rec.Events()); n != 0 {
		t.Fatalf("delivered %d events after cancel", n)
	}
}

type sinkFunc func(event.Event)

func (f sinkFunc) Emit(e event.Event) { f(e) }

type multi []event.Sink

func (m multi) Emit(e event.Event) {
	for _, s := range m {
		s.Emit(e)
	}
}
