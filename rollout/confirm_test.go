package rollout

import (
	"context"
	"sync"
	"testing"

	"github.com/rollout-sh/rollout/rollout/event"
)

// confirmingDrainer is an LB that, like HAProxy, shows a server that just
// came back as up but unconfirmed ("UP 1/2") until its next check.
type confirmingDrainer struct {
	*fakeDrainer
	mu      sync.Mutex
	pending int // Confirmed answers false this many more times after an undrain
	asked   int
	confirm func(host string)
}

func (d *confirmingDrainer) Undrain(ctx context.Context) error {
	d.mu.Lock()
	d.pending = 3
	d.mu.Unlock()
	return d.fakeDrainer.Undrain(ctx)
}

func (d *confirmingDrainer) Confirmed(ctx context.Context) (bool, string, error) {
	up, _, err := d.fakeDrainer.Serving(ctx)
	d.mu.Lock()
	defer d.mu.Unlock()
	d.asked++
	if d.pending > 0 {
		d.pending--
		return false, "UP 1/2", err
	}
	d.confirm(d.host)
	return up, "UP", err
}

// A host counts as back in service only once the LB confirmed it with its
// own check, not when it first shows up after leaving maint.
func TestEngineUndrainWaitsForTheLBsConfirmation(t *testing.T) {
	f := newFleet(t, 2, "batch = [1]")
	var mu sync.Mutex
	confirmed := map[string]bool{}
	doneBeforeConfirmed := []string{}
	env := f.env()
	var drainers []*confirmingDrainer
	env.NewDrainer = func(_ context.Context, tg *Target) (Drainer, error) {
		d := &confirmingDrainer{
			fakeDrainer: &fakeDrainer{host: tg.Host.Name, rec: f.rec, mu: &f.lbMu, state: f.lbState, sessions: f.sessions},
			confirm:     func(h string) { mu.Lock(); confirmed[h] = true; mu.Unlock() },
		}
		mu.Lock()
		drainers = append(drainers, d)
		mu.Unlock()
		return d, nil
	}
	env.Sink = sinkFunc(func(e event.Event) {
		f.rec.Emit(e)
		if e.Event == event.HostDone {
			mu.Lock()
			if !confirmed[e.Host] {
				doneBeforeConfirmed = append(doneBeforeConfirmed, e.Host)
			}
			mu.Unlock()
		}
	})
	pr, err := Prepare(Request{PlanFile: f.planFile})
	must(t, err)
	res, err := Run(context.Background(), pr, env, Options{RunID: "r-confirm", Owner: "t@here", LocalDir: f.dir + "/.rollout"}, nil)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	for _, h := range []string{"web1", "web2"} {
		if res.Outcomes[h] != event.OutcomeOK {
			t.Errorf("%s = %s, want ok", h, res.Outcomes[h])
		}
	}
	if len(doneBeforeConfirmed) > 0 {
		t.Errorf("host_done before the LB confirmed the server: %v", doneBeforeConfirmed)
	}
	asked := 0
	for _, d := range drainers {
		asked += d.asked
	}
	if asked < 2*4 {
		t.Errorf("Confirmed asked %d times, want at least 4 per host (3 unconfirmed answers, then UP)", asked)
	}
}
