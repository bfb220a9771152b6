// Package wire connects the engine to the real drivers: SSH (remote), load
// balancers (drain) and health gates (health). The CLI and the end-to-end
// tests use it; the engine itself only knows its own small interfaces.
package wire

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/rollout-sh/rollout/drain"
	"github.com/rollout-sh/rollout/health"
	"github.com/rollout-sh/rollout/internal/localrun"
	"github.com/rollout-sh/rollout/inventory"
	"github.com/rollout-sh/rollout/remote"
	"github.com/rollout-sh/rollout/rollout"
	"github.com/rollout-sh/rollout/rollout/event"
)

// The SSH keepalive used when Options leave it 0: a connection that
// answers none of DefaultKeepaliveCountMax requests sent
// DefaultKeepaliveInterval apart is lost.
const (
	DefaultKeepaliveInterval = remote.DefaultKeepaliveInterval
	DefaultKeepaliveCountMax = remote.DefaultKeepaliveCountMax
)

// Options are the SSH settings of the command line.
type Options struct {
	KnownHosts        string
	AcceptNewHostKeys bool
	SSHConfig         string
	ConnectTimeout    time.Duration
	// SSH keepalive: interval and unanswered requests before a
	// connection is lost (0: remote's defaults).
	KeepaliveInterval time.Duration
	KeepaliveCountMax int
}

// Wiring holds one SSH connection per host and one runtime API client per
// HAProxy endpoint for the whole run.
type Wiring struct {
	inv   *inventory.Inventory
	ssh   *inventory.SSHConfig
	mu    sync.Mutex
	pools map[becomeKey]*remote.Pool
	lbs   map[string]*drain.RuntimeAPI
	opts  Options
	// notice is the run's event emitter while a run is under way (see
	// rollout.Env.LBNotices)
	notice func(event.Event)
}

// becomeKey selects the pool: connections that become another user are
// kept apart from those that do not.
type becomeKey struct {
	become bool
	user   string
}

// Conn is the run's connection to one host: an SSH client, or this
// machine for ansible_connection=local.
type Conn interface {
	rollout.Conn
	Output(ctx context.Context, cmd string) ([]byte, error)
}

// New prepares the wiring for hosts of inv.
func New(inv *inventory.Inventory, opts Options) (*Wiring, error) {
	cfg, err := inventory.LoadSSHConfig(opts.SSHConfig)
	if err != nil {
		return nil, fmt.Errorf("ssh config: %w", err)
	}
	return &Wiring{inv: inv, ssh: cfg, pools: map[becomeKey]*remote.Pool{}, lbs: map[string]*drain.RuntimeAPI{}, opts: opts}, nil
}

// Close closes every connection.
func (w *Wiring) Close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, a := range w.lbs { // before the SSH connections they may go through
		_ = a.Close()
	}
	for _, p := range w.pools {
		_ = p.Close()
	}
}

func (w *Wiring) pool(become bool, user string) *remote.Pool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !become {
		user = ""
	}
	k := becomeKey{become, user}
	p := w.pools[k]
	if p == nil {
		p = remote.NewPool(remote.Config{KnownHostsFile: w.opts.KnownHosts, AcceptNewHostKeys: w.opts.AcceptNewHostKeys,
			ConnectTimeout: w.opts.ConnectTimeout, KeepaliveInterval: w.opts.KeepaliveInterval, KeepaliveCountMax: w.opts.KeepaliveCountMax,
			Become: become, BecomeUser: user})
		w.pools[k] = p
	}
	return p
}

// Target resolves how to reach h: inventory values first, then ssh_config,
// with ProxyJump hops.
func (w *Wiring) Target(h *inventory.Host) (remote.Target, error) {
	ep := w.ssh.Endpoint(h)
	t := remote.Target{Name: h.Name, Address: ep.Address, Port: ep.Port, User: ep.User, IdentityFiles: ep.IdentityFiles}
	if ep.ProxyJump != "" {
		hops, err := w.ssh.ResolveJump(ep.ProxyJump)
		if err != nil {
			return t, fmt.Errorf("%s: ProxyJump %q: %w", h.Name, ep.ProxyJump, err)
		}
		var jump *remote.Target
		for _, hop := range hops {
			jt := remote.Target{Name: hop.Alias, Address: hop.Address, Port: hop.Port, User: hop.User, IdentityFiles: hop.IdentityFiles, Jump: jump}
			jump = &jt
		}
		t.Jump = jump
	}
	return t, nil
}

// Connect returns the run's connection to h: SSH, or this machine for a
// host with ansible_connection=local. Any other connection is refused.
func (w *Wiring) Connect(ctx context.Context, h *inventory.Host) (Conn, error) {
	if err := h.CheckConnection(); err != nil {
		return nil, err
	}
	if h.Connection == inventory.ConnectionLocal {
		return localrun.Host{Become: h.Become, BecomeUser: h.BecomeUser}, nil
	}
	t, err := w.Target(h)
	if err != nil {
		return nil, err
	}
	return w.pool(h.Become, h.BecomeUser).Get(ctx, t)
}

// Env returns the engine's environment with sink receiving events.
func (w *Wiring) Env(sink event.Sink) rollout.Env {
	return rollout.Env{
		Connect: func(ctx context.Context, h *inventory.Host) (rollout.Conn, error) {
			c, err := w.Connect(ctx, h)
			if err != nil {
				return nil, err
			}
			return c, nil
		},
		NewDrainer:  w.NewDrainer,
		LBNotices:   w.setNotice,
		NewGate:     w.NewGate,
		NewAnalyser: w.NewAnalyser,
		Sink:        sink,
		Hint:        Hint,
	}
}

// via returns the connection of the inventory host named name.
func (w *Wiring) via(ctx context.Context, name string) (Conn, error) {
	vh := w.inv.Host(name)
	if vh == nil {
		return nil, fmt.Errorf("via = %q: no such host in the inventory", name)
	}
	return w.Connect(ctx, vh)
}

// NewDrainer builds the drain driver of the target's plan.
func (w *Wiring) NewDrainer(ctx context.Context, t *rollout.Target) (rollout.Drainer, error) {
	d := t.Spec.Drain
	switch d.Kind {
	case "haproxy":
		if len(d.Endpoints) == 0 {
			return nil, fmt.Errorf("haproxy drain for %s: no endpoints", t.Host.Name)
		}
		var apis []*drain.RuntimeAPI
		seen := map[string]bool{}
		for _, ep := range d.Endpoints {
			if seen[ep] {
				return nil, fmt.Errorf("haproxy drain for %s: endpoint %q listed twice", t.Host.Name, ep)
			}
			seen[ep] = true
			a, err := w.RuntimeAPI(ctx, d.Via, ep)
			if err != nil {
				return nil, fmt.Errorf("haproxy drain for %s: %w", t.Host.Name, err)
			}
			apis = append(apis, a)
		}
		h, err := drain.NewHAProxyClients(t.Host.Name, apis, d.Backend, d.Server)
		if err != nil {
			return nil, err
		}
		return haproxy{h}, nil
	case "command":
		var r drain.Runner
		var err error
		if d.Via != "" {
			r, err = w.via(ctx, d.Via)
		} else {
			r, err = w.Connect(ctx, t.Host)
		}
		if err != nil {
			return nil, err
		}
		return drain.NewCommand(t.Host.Name, r, d.DrainCmd, d.UndrainCmd, d.SessionsCmd), nil
	case "none", "":
		return drain.NewNone(d.Reason), nil
	}
	return nil, fmt.Errorf("unknown drain kind %q", d.Kind)
}

// RuntimeAPI returns the run's one client of the HAProxy endpoint, reached
// through the inventory host via ("" for this machine). Every host's driver
// shares it, so a run stays under the stats socket's connection limit
// (drain.RunOptions) whatever the number of hosts and --forks.
func (w *Wiring) RuntimeAPI(ctx context.Context, via, endpoint string) (*drain.RuntimeAPI, error) {
	key := via + "\x00" + endpoint
	w.mu.Lock()
	a := w.lbs[key]
	w.mu.Unlock()
	if a != nil {
		return a, nil
	}
	dial := drain.LocalDialer()
	if via != "" {
		c, err := w.via(ctx, via)
		if err != nil {
			return nil, err
		}
		dial = c.Dial
	}
	opt := drain.RunOptions
	opt.Via = via
	opt.OnReload = w.reloaded
	a, err := drain.NewRuntimeAPIOptions(endpoint, dial, opt)
	if err != nil {
		return nil, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if prev := w.lbs[key]; prev != nil { // another host got there first
		return prev, nil
	}
	w.lbs[key] = a
	return a, nil
}

func (w *Wiring) setNotice(emit func(event.Event)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.notice = emit
}

// reloaded reports an HAProxy reload or restart that a runtime API client
// saw and re-applied the run's server states after.
func (w *Wiring) reloaded(r drain.Reload) {
	w.mu.Lock()
	emit := w.notice
	w.mu.Unlock()
	if emit == nil {
		return
	}
	e := event.Event{Event: event.LBReload, Status: event.StatusOK, Message: r.Summary()}
	if r.Err() != nil {
		e.Status = event.StatusFailed
	}
	for _, s := range r.Servers {
		if s.Host != "" {
			e.Hosts = append(e.Hosts, s.Host)
		}
	}
	emit(e)
}

// haproxy adds the pool view the capacity floor needs.
type haproxy struct{ *drain.HAProxy }

func (h haproxy) Members(ctx context.Context) ([]rollout.Member, error) {
	states, err := h.Pool(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]rollout.Member, len(states))
	for i, s := range states {
		out[i] = rollout.Member{Name: s.Server, Serving: s.Serving, Status: s.Status}
	}
	return out, nil
}

// NewGate builds the health gate of the target's plan: every health block's
// probe must pass; the longest window and deadline apply; a pid_file or
// unit adds the flap guard.
func (w *Wiring) NewGate(ctx context.Context, t *rollout.Target, d rollout.Drainer, quick bool) (rollout.Gate, error) {
	hs := t.Spec.Health
	if len(hs) == 0 {
		return nil, nil
	}
	conn, err := w.Connect(ctx, t.Host)
	if err != nil {
		return nil, err
	}
	g := &health.Gate{} // the events and errors around it name the host
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		var nd net.Dialer
		dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		c, err := nd.DialContext(dctx, network, addr)
		cancel()
		if err == nil {
			return c, nil
		}
		// only reachable from the host itself: go through its SSH connection
		if c, serr := conn.Dial(ctx, network, addr); serr == nil {
			return c, nil
		}
		return nil, err
	}
	for _, h := range hs {
		timeout := h.Timeout
		if timeout <= 0 {
			timeout = 5 * time.Second
		}
		var p health.Probe
		switch h.Kind {
		case "http":
			client := &http.Client{Timeout: timeout, Transport: &http.Transport{DialContext: dial, DisableKeepAlives: true}}
			p, err = health.HTTP(client, h.URL, h.Status, h.BodyMatches)
			if err != nil {
				return nil, err
			}
		case "tcp":
			p = health.TCP(dial, h.Address)
		case "command":
			p = health.Command(conn, h.Command)
		case "haproxy":
			p = health.Serving(d.Serving)
		default:
			return nil, fmt.Errorf("unknown health kind %q", h.Kind)
		}
		g.Probes = append(g.Probes, p)
		if g.Interval == 0 || h.Interval < g.Interval {
			g.Interval = h.Interval
		}
		g.HealthyFor = max(g.HealthyFor, h.HealthyFor)
		g.Deadline = max(g.Deadline, h.Deadline)
		switch {
		case h.PidFile != "" && g.Guard == nil:
			g.Guard = health.PidFile(conn, h.PidFile)
		case h.Unit != "" && g.Guard == nil:
			g.Guard = health.SystemdUnit(conn, h.Unit)
		}
	}
	if quick {
		g.HealthyFor = 0
	}
	return gate{g}, nil
}

type gate struct{ g *health.Gate }

func (g gate) Wait(ctx context.Context, progress func(rollout.Progress)) error {
	return g.g.Wait(ctx, func(p health.Progress) {
		progress(rollout.Progress{Elapsed: p.Elapsed, Window: p.Window, LastErr: p.LastErr})
	})
}

// Hint is the next command for a connection error: what to do about an
// unknown or a changed host key, or about a load balancer that cannot be
// reached or does not know the server (drain.Hint).
func Hint(err error) string {
	switch {
	case errors.Is(err, remote.ErrHostKeyChanged):
		return "do not continue until you know why the host key changed (it may be an attack); if the change is expected, remove the old key with ssh-keygen -R"
	case errors.Is(err, remote.ErrHostKeyUnknown):
		return "verify the host keys, then rerun with --accept-new-host-keys (records them like StrictHostKeyChecking=accept-new)"
	}
	return drain.Hint(err)
}
