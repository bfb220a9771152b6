package drain

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// HAProxy drains one server of one backend on every HAProxy of a pool (an
// HA pair has two endpoints) through the runtime API. Every step runs on
// every LB; a step that fails on any LB fails, so a host never counts as
// drained while one LB still sends it traffic.
//
// States used: Drain → "drain" (no new sessions, checks keep running),
// Settle → "maint" (after sessions reached zero), Undrain → "ready".
type HAProxy struct {
	host, backend, server string
	apis                  []*RuntimeAPI
}

// NewHAProxy returns the driver for server in backend on every endpoint
// ("unix:/path/admin.sock" or "tcp:HOST:PORT"), each with a one-off client.
// host names the target host in errors. dial nil means the local machine.
// A run with many hosts shares clients instead: see NewHAProxyClients.
func NewHAProxy(host string, endpoints []string, dial Dialer, backend, server string) (*HAProxy, error) {
	if len(endpoints) == 0 {
		return nil, fmt.Errorf("haproxy drain for %s: no endpoints", host)
	}
	seen := map[string]bool{}
	var apis []*RuntimeAPI
	for _, ep := range endpoints {
		if seen[ep] {
			return nil, fmt.Errorf("haproxy drain for %s: endpoint %q listed twice", host, ep)
		}
		seen[ep] = true
		api, err := NewRuntimeAPI(ep, dial)
		if err != nil {
			return nil, fmt.Errorf("haproxy drain for %s: %w", host, err)
		}
		apis = append(apis, api)
	}
	return NewHAProxyClients(host, apis, backend, server)
}

// NewHAProxyClients returns the driver for server in backend on the LBs of
// apis, which other hosts' drivers may share (one client per endpoint for
// a whole run keeps rollout under the stats socket's connection limit and
// lets it batch the commands and "show stat" reads of many hosts).
func NewHAProxyClients(host string, apis []*RuntimeAPI, backend, server string) (*HAProxy, error) {
	if len(apis) == 0 {
		return nil, fmt.Errorf("haproxy drain for %s: no endpoints", host)
	}
	if err := checkName("backend", backend); err != nil {
		return nil, fmt.Errorf("haproxy drain for %s: %w", host, err)
	}
	if err := checkName("server", server); err != nil {
		return nil, fmt.Errorf("haproxy drain for %s: %w", host, err)
	}
	return &HAProxy{host: host, backend: backend, server: server, apis: apis}, nil
}

// Check verifies, changing nothing, that every LB answers, that the socket
// has admin level, and that backend/server exists there: one line per LB.
func (h *HAProxy) Check(ctx context.Context) error {
	return h.each("check", func(a *RuntimeAPI) error {
		cmd := "get weight " + h.backend + "/" + h.server
		replies, err := a.do(ctx, "show cli level", cmd)
		if err != nil {
			return err
		}
		// HAProxy before 2.0 has no "show cli level"; then the first
		// state change will tell.
		if l := strings.TrimSpace(replies[0].text); l != "admin" && !strings.HasPrefix(l, "Unknown command") {
			return &LevelError{Endpoint: a.where(), Level: l}
		}
		msg := strings.TrimSpace(replies[1].text)
		if msg == "" {
			msg = "empty reply"
		}
		if isRefusal(msg) || replies[1].severity != 0 && replies[1].severity <= 3 {
			return &ReplyError{Endpoint: a.where(), Command: cmd, Reply: oneLine(msg)}
		}
		return nil
	})
}

func isRefusal(msg string) bool {
	for _, p := range []string{"empty reply", "No such", "Permission denied", "Unknown command", "Require "} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

// Drain sets the server to "drain" on every LB: no new sessions, current
// ones finish, health checks keep running.
func (h *HAProxy) Drain(ctx context.Context) error {
	return h.each("drain", func(a *RuntimeAPI) error { return a.setState(ctx, h.host, h.backend, h.server, "drain") })
}

// Settle sets the server to "maint" on every LB, once its sessions reached
// zero. HAProxy stops health-checking a server in maint.
func (h *HAProxy) Settle(ctx context.Context) error {
	return h.each("settle", func(a *RuntimeAPI) error { return a.setState(ctx, h.host, h.backend, h.server, "maint") })
}

// Undrain sets the server to "ready" on every LB. It does not touch the
// weight: to ramp, call SetWeight with the first step before Undrain.
func (h *HAProxy) Undrain(ctx context.Context) error {
	return h.each("undrain", func(a *RuntimeAPI) error { return a.setState(ctx, h.host, h.backend, h.server, "ready") })
}

// SetWeight sets the weight to pct percent of the configured weight on
// every LB.
func (h *HAProxy) SetWeight(ctx context.Context, pct int) error {
	return h.each(fmt.Sprintf("weight %d%%", pct), func(a *RuntimeAPI) error { return a.setWeight(ctx, h.host, h.backend, h.server, pct) })
}

// Hold confirms, right before the host is restarted, that no LB sends it
// new traffic: on every LB it checks afresh which process serves (a reload
// re-applies the drain first), that the drain could be re-applied after
// any reload, and that the serving process has the server in DRAIN or
// MAINT. An error means the host must not be restarted.
func (h *HAProxy) Hold(ctx context.Context) error {
	return h.each("hold", func(a *RuntimeAPI) error {
		if err := a.Verify(ctx, 0); err != nil {
			return err
		}
		if err := a.Held(h.backend, h.server); err != nil {
			return err
		}
		st, err := h.stat(ctx, a)
		if err != nil {
			return err
		}
		if takesTraffic(st.Status) {
			return &ReplyError{Endpoint: a.where(), Command: "show stat " + h.backend + " 4 -1",
				Reply: h.backend + "/" + h.server + " is " + st.Status + ": the serving process sends it traffic"}
		}
		return nil
	})
}

// Sessions is the sum over every LB of the server's current sessions and
// queued requests.
func (h *HAProxy) Sessions(ctx context.Context) (int, error) {
	total := 0
	err := h.each("sessions", func(a *RuntimeAPI) error {
		st, err := h.stat(ctx, a)
		if err != nil {
			return err
		}
		total += st.Scur + st.Qcur
		return nil
	})
	if err != nil {
		return 0, err
	}
	return total, nil
}

// Serving reports whether every LB's own health checks have the server up,
// and each LB's status ("unix:/run/haproxy/admin.sock UP, tcp:lb2:9999 DOWN
// 1/2"). Checks-up statuses are UP and "UP n/m" (HAProxy shows "UP 1/3" right
// after a server leaves maint, until the next check passes; a server going
// down passes through it too, which a stable health window catches), DRAIN
// (HAProxy shows DRAIN only while checks pass) and "no check". DOWN, "DOWN
// n/m", NOLB and MAINT are false. HAProxy does not check a server in maint,
// so move it to drain (Drain) before waiting on this.
func (h *HAProxy) Serving(ctx context.Context) (bool, string, error) {
	return h.every(ctx, "serving", checksUp)
}

// Confirmed reports whether every LB has the server plainly "UP" (or "no
// check"): taking traffic and confirmed by a health check since it came
// back. Right after a server leaves maint HAProxy shows "UP 1/2" — up, but
// one failed check from DOWN — until its next check passes; a run does not
// call a host back in service before that check.
func (h *HAProxy) Confirmed(ctx context.Context) (bool, string, error) {
	return h.every(ctx, "confirmed", func(status string) bool { return status == "UP" || status == "no check" })
}

// every reports whether good holds for the server's status on every LB,
// and each LB's status ("unix:/run/haproxy/admin.sock UP, tcp:lb2:9999
// DOWN 1/2").
func (h *HAProxy) every(ctx context.Context, what string, good func(string) bool) (bool, string, error) {
	ok := true
	var parts []string
	err := h.each(what, func(a *RuntimeAPI) error {
		st, err := h.stat(ctx, a)
		if err != nil {
			return err
		}
		if !good(st.Status) {
			ok = false
		}
		parts = append(parts, a.endpoint+" "+st.Status)
		return nil
	})
	if err != nil {
		return false, strings.Join(parts, ", "), err
	}
	return ok, strings.Join(parts, ", "), nil
}

func (h *HAProxy) stat(ctx context.Context, a *RuntimeAPI) (Stat, error) {
	rows, err := a.Stat(ctx, h.backend)
	if err != nil {
		return Stat{}, err
	}
	for _, r := range rows {
		if r.Server == h.server {
			return r, nil
		}
	}
	return Stat{}, &ReplyError{Endpoint: a.where(), Command: "show stat " + h.backend + " 4 -1", Reply: "No such server " + h.backend + "/" + h.server + "."}
}

// Stats returns every server row of the backend on every LB, by endpoint,
// through the shared clients (one "show stat" read per LB serves every
// host asking at once). For analyses that compare this host's server with
// the others, e.g. error counters ("econ", "eresp", "hrsp_5xx") by column
// name in Fields.
func (h *HAProxy) Stats(ctx context.Context) (map[string][]Stat, error) {
	out := map[string][]Stat{}
	err := h.each("stats", func(a *RuntimeAPI) error {
		rows, err := a.Stat(ctx, h.backend)
		if err != nil {
			return err
		}
		out[a.endpoint] = rows
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Server returns the server this driver drains and its backend.
func (h *HAProxy) Server() (backend, server string) { return h.backend, h.server }

// each runs f on every LB, even after one failed (so Undrain restores every
// LB it can reach), and joins the errors under "STEP HOST: ".
func (h *HAProxy) each(step string, f func(*RuntimeAPI) error) error {
	var errs []error
	for _, a := range h.apis {
		if err := f(a); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%s %s: %w", step, h.host, errors.Join(errs...))
}

// ServerState is one server of the backend as every LB sees it.
type ServerState struct {
	Server  string
	Status  string            // the worst status across LBs
	Serving bool              // UP (or "UP n/m", "no check") on every LB
	PerLB   map[string]string // endpoint → status; "absent" when that LB does not know the server
}

// Pool returns every server of the backend with its state on every LB, for
// the capacity floor. A server is serving only when every LB sends it
// traffic: status UP, "no check", or "UP n/m" (checks are failing but HAProxy
// still sends it traffic until it goes DOWN). DRAIN, MAINT, DOWN, "DOWN n/m"
// (not yet up), NOLB and absent are not serving.
func (h *HAProxy) Pool(ctx context.Context) ([]ServerState, error) {
	var order []string
	byName := map[string]*ServerState{}
	err := h.each("pool", func(a *RuntimeAPI) error {
		rows, err := a.Stat(ctx, h.backend)
		if err != nil {
			return err
		}
		for _, r := range rows {
			s, ok := byName[r.Server]
			if !ok {
				s = &ServerState{Server: r.Server, PerLB: map[string]string{}}
				byName[r.Server] = s
				order = append(order, r.Server)
			}
			s.PerLB[a.endpoint] = r.Status
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]ServerState, 0, len(order))
	for _, name := range order {
		s := byName[name]
		s.Serving = true
		for _, a := range h.apis {
			st, ok := s.PerLB[a.endpoint]
			if !ok {
				st = "absent"
				s.PerLB[a.endpoint] = st
			}
			if !takesTraffic(st) {
				s.Serving = false
			}
			if s.Status == "" || statusRank(st) > statusRank(s.Status) {
				s.Status = st
			}
		}
		out = append(out, *s)
	}
	return out, nil
}

// takesTraffic: the LB sends new sessions to a server with this status.
func takesTraffic(status string) bool {
	return status == "UP" || status == "no check" || strings.HasPrefix(status, "UP ")
}

// checksUp: the LB's health checks have the server up, whatever its admin
// state (DRAIN shows only for a server whose checks pass).
func checksUp(status string) bool {
	return takesTraffic(status) || strings.HasPrefix(status, "DRAIN")
}

// statusRank orders statuses from best to worst, for ServerState.Status.
func statusRank(status string) int {
	switch {
	case status == "UP":
		return 0
	case status == "no check":
		return 1
	case strings.HasPrefix(status, "UP "):
		return 2
	case strings.HasPrefix(status, "NOLB"):
		return 3
	case strings.HasPrefix(status, "DRAIN"):
		return 4
	case strings.HasPrefix(status, "MAINT"):
		return 5
	case strings.HasPrefix(status, "DOWN"):
		return 6
	default: // absent or unknown
		return 7
	}
}
