package rollout

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rollout-sh/rollout/internal/transport"
	"github.com/rollout-sh/rollout/inventory"
	"github.com/rollout-sh/rollout/remote"
	"github.com/rollout-sh/rollout/remote/sshtest"
	"github.com/rollout-sh/rollout/rollout/event"
)

// Round trips per host of one apply, through the real SSH client and its
// host session. docs/design.md ("Round trips per host") explains each; a
// change that adds one must update both.
const (
	applyRoundTrips = 8 // shell, lock+state+hashes, preflight, stage+validate, install, restart, record+cleanup, unlock
	noopRoundTrips  = 3 // shell, lock+state+hashes, unlock
)

// sshFleet is the engine fleet reached through the in-process SSH server:
// one client (and its counters) per host.
type sshFleet struct {
	*fleet
	srv     *sshtest.Server
	mu      sync.Mutex
	clients map[string]*remote.Client
}

func newSSHFleet(t *testing.T, hosts int) *sshFleet {
	t.Setenv("SSH_AUTH_SOCK", "")
	return &sshFleet{fleet: newFleet(t, hosts, ""), srv: sshtest.New(t), clients: map[string]*remote.Client{}}
}

func (f *sshFleet) run(t *testing.T) (*Result, map[string]int64) {
	t.Helper()
	f.mu.Lock()
	f.clients = map[string]*remote.Client{}
	f.mu.Unlock()
	env := f.env()
	env.Connect = func(ctx context.Context, h *inventory.Host) (Conn, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if c := f.clients[h.Name]; c != nil {
			return c, nil
		}
		tg := f.srv.Target()
		tg.Name = h.Name
		c, err := remote.Dial(ctx, tg, remote.Config{KnownHostsFile: f.srv.KnownHostsFile, ConnectTimeout: 5 * time.Second})
		if err != nil {
			return nil, err
		}
		t.Cleanup(func() { c.Close() })
		f.clients[h.Name] = c
		return c, nil
	}
	pr, err := Prepare(Request{PlanFile: f.planFile})
	if err != nil {
		t.Fatal(err)
	}
	res, err := Run(context.Background(), pr, env, Options{RunID: "r-rt-" + time.Now().Format("150405.000000"), Owner: "t@here"}, nil)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	trips := map[string]int64{}
	f.mu.Lock()
	for name, c := range f.clients {
		trips[name] = c.Stats().RoundTrips()
	}
	f.mu.Unlock()
	return res, trips
}

func TestApplyRoundTripsPerHost(t *testing.T) {
	f := newSSHFleet(t, 3)
	res, trips := f.run(t)
	t.Logf("apply: %v", trips)
	for _, h := range []string{"web1", "web2", "web3"} {
		if res.Outcomes[h] != event.OutcomeOK {
			t.Fatalf("%s: %s", h, res.Outcomes[h])
		}
		if trips[h] > applyRoundTrips {
			t.Errorf("%s: %d SSH round trips for one apply, budget %d (see docs/design.md)", h, trips[h], applyRoundTrips)
		}
		if trips[h] < applyRoundTrips-1 {
			t.Errorf("%s: only %d round trips: update the budget and docs/design.md", h, trips[h])
		}
	}
	// nothing to do: one look and the lock released
	res, trips = f.run(t)
	t.Logf("no-op rerun: %v", trips)
	for _, h := range []string{"web1", "web2", "web3"} {
		if res.Outcomes[h] != event.OutcomeSkipped {
			t.Fatalf("rerun %s: %s", h, res.Outcomes[h])
		}
		if trips[h] > noopRoundTrips {
			t.Errorf("rerun %s: %d SSH round trips, budget %d", h, trips[h], noopRoundTrips)
		}
	}
}

// losingConn is a host whose connection drops when cmd matches.
type losingConn struct {
	localConn
	at string
}

func (c losingConn) Run(ctx context.Context, cmd string, stdin io.Reader, stdout, stderr io.Writer) error {
	if strings.Contains(cmd, c.at) {
		return fmt.Errorf("ssh web2: run %q: %w (EOF)", cmd, transport.ErrLost)
	}
	return c.localConn.Run(ctx, cmd, stdin, stdout, stderr)
}

// Issue 14: a connection lost under a step is the host's state unknown,
// never a verdict (failed, rolled back, left drained) about its service.
func TestLostConnectionIsUnknown(t *testing.T) {
	for _, tc := range []struct{ name, gateErr, at string }{
		{name: "restart", at: "restarted"},
		{name: "health window", gateErr: "lost"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFleet(t, 3, `batch = [1, 2]`)
			env := f.env()
			env.Connect = func(_ context.Context, h *inventory.Host) (Conn, error) {
				if h.Name == "web2" && tc.at != "" {
					return losingConn{at: tc.at}, nil
				}
				return localConn{}, nil
			}
			if tc.gateErr != "" {
				f.unhealthy = func(h string) error {
					if h == "web2" {
						return fmt.Errorf("flap guard: pid file /run/app.pid: ssh web2: %w (EOF)", transport.ErrLost)
					}
					return nil
				}
			}
			pr, err := Prepare(Request{PlanFile: f.planFile})
			must(t, err)
			res, _ := Run(context.Background(), pr, env, Options{RunID: "r-lost", Owner: "t@here", LocalDir: filepath.Join(f.dir, ".rollout")}, nil)
			if res.Outcomes["web2"] != event.OutcomeUnknown {
				t.Fatalf("web2: %s, want unknown", res.Outcomes["web2"])
			}
			if res.Outcomes["web1"] != event.OutcomeOK {
				t.Errorf("web1: %s", res.Outcomes["web1"])
			}
			if !strings.Contains(res.Summary, "unknown state: web2") || res.Next != "rollout repair "+f.planFile {
				t.Errorf("summary = %q, next = %q", res.Summary, res.Next)
			}
			for _, e := range f.rec.events {
				if e.Event == event.HostDone && e.Host == "web2" {
					if !strings.Contains(e.Message, "connection lost") || strings.Contains(e.Message, "flapping") {
						t.Errorf("host_done message %q", e.Message)
					}
				}
			}
		})
	}
}
