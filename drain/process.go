package drain

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// An HAProxy reload (master-worker USR2, `systemctl reload`, `-sf`) starts
// a new process that takes over the listeners and starts from the
// configuration's server states, while a connection opened before the
// reload keeps talking to the old process (MACHINE-FACTS: "HAProxy
// master-worker reload"). A client that keeps connections (Options.Keep)
// would then drain a server in a process that no longer takes traffic. With
// Options.Track the client follows the process that serves: before each
// state change and "show stat" read (at most Options.CheckEvery apart), and
// every Options.Watch while it has a server out of service, it opens a
// fresh connection and asks "show info" which process answers. On a change
// it drops the connections to the old process, re-applies the state and
// weight of every server it has changed and not yet put back, and reports
// it (Options.OnReload) before anything else goes through.

// Process identifies the HAProxy process that answers new connections.
type Process struct {
	Pid     int   // "Pid"
	Started int64 // "Start_time_sec" (0 on HAProxy versions without it)
}

func (p Process) String() string {
	if p.Pid == 0 {
		return "an unknown process"
	}
	return "pid " + strconv.Itoa(p.Pid)
}

// Reapplied is one server whose state a reload had reset and the client put
// back.
type Reapplied struct {
	Host    string // the inventory host ("" when set without one)
	Backend string
	Server  string
	State   string // ready, drain or maint ("" when only the weight was set)
	Weight  int    // percent, or -1 when not set
	Err     error  // nil when re-applied
}

// Reload is one change of the serving process behind an endpoint.
type Reload struct {
	Endpoint string
	From, To Process
	Servers  []Reapplied // in backend/server order
}

// Err is the first server that could not be re-applied, or nil.
func (r Reload) Err() error {
	for _, s := range r.Servers {
		if s.Err != nil {
			return s.Err
		}
	}
	return nil
}

// Summary says what happened in one line: "unix:/x: HAProxy reloaded (pid
// 10 → pid 12); re-applied web/h2 maint, web/h3 weight 50%".
func (r Reload) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: HAProxy reloaded or restarted (%s → %s)", r.Endpoint, r.From, r.To)
	if len(r.Servers) == 0 {
		b.WriteString("; no server was out of service")
		return b.String()
	}
	var ok, bad []string
	for _, s := range r.Servers {
		what := s.Backend + "/" + s.Server
		if s.State != "" {
			what += " " + s.State
		}
		if s.Weight >= 0 {
			what += " weight " + strconv.Itoa(s.Weight) + "%"
		}
		if s.Err != nil {
			bad = append(bad, what+" ("+oneLine(s.Err.Error())+")")
		} else {
			ok = append(ok, what)
		}
	}
	if len(ok) > 0 {
		b.WriteString("; re-applied " + strings.Join(ok, ", "))
	}
	if len(bad) > 0 {
		b.WriteString("; could not re-apply " + strings.Join(bad, ", "))
	}
	return b.String()
}

// wanted is the state the client last set on a server and has not put back
// to "ready at 100%".
type wanted struct {
	host   string
	state  string // "" = not set by this client
	weight int    // -1 = not set
}

// ReapplyError is a server whose state could not be re-applied after a
// reload: the serving process may send it traffic.
type ReapplyError struct {
	Endpoint string
	Server   string // backend/server
	From, To Process
	Err      error
}

func (e *ReapplyError) Error() string {
	return fmt.Sprintf("haproxy %s: reloaded (%s → %s) and %s could not be taken out of service again: %v; it may be taking traffic", e.Endpoint, e.From, e.To, e.Server, e.Err)
}

func (e *ReapplyError) Unwrap() error { return e.Err }

// parseInfo reads the process identity and whether it is stopping from a
// "show info" reply.
func parseInfo(text string) (p Process, stopping bool) {
	for _, line := range strings.Split(text, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch k {
		case "Pid":
			p.Pid, _ = strconv.Atoi(v)
		case "Start_time_sec":
			p.Started, _ = strconv.ParseInt(v, 10, 64)
		case "Stopping":
			stopping = v == "1"
		}
	}
	return p, stopping
}

// remember records a state change that HAProxy accepted.
func (a *RuntimeAPI) remember(host, backend, server, state string, weight int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	key := backend + "/" + server
	w := a.wanted[key]
	if w == nil {
		w = &wanted{weight: -1}
	}
	if host != "" {
		w.host = host
	}
	if state != "" {
		w.state = state
	}
	if weight >= 0 {
		w.weight = weight
	}
	delete(a.reapplyErr, key)
	if (w.state == "" || w.state == "ready") && (w.weight < 0 || w.weight == 100) {
		delete(a.wanted, key)
		return
	}
	a.wanted[key] = w
	if a.opt.Track && a.opt.Watch > 0 && !a.watching && !a.closed {
		a.watching = true
		go a.watch()
	}
}

// watch checks the serving process every Options.Watch while the client
// has a server out of service, so a reload while a host restarts (when
// rollout sends nothing to HAProxy) is caught.
func (a *RuntimeAPI) watch() {
	for {
		time.Sleep(a.opt.Watch)
		a.mu.Lock()
		if len(a.wanted) == 0 || a.closed {
			a.watching = false
			a.mu.Unlock()
			return
		}
		a.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), defaultTimeout)
		_ = a.verify(ctx, a.opt.Watch/2)
		cancel()
	}
}

// Verify makes sure the client talks to the HAProxy process that serves,
// checking afresh unless a check started less than maxAge ago; on a reload
// it re-applies the client's server states first (see Options.Track). It
// returns an error when the endpoint cannot be checked; a server whose
// state could not be re-applied is reported by Held.
func (a *RuntimeAPI) Verify(ctx context.Context, maxAge time.Duration) error {
	if !a.opt.Track {
		return nil
	}
	return a.verify(ctx, maxAge)
}

func (a *RuntimeAPI) verify(ctx context.Context, maxAge time.Duration) error {
	asked := time.Now()
	select {
	case a.checking <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("haproxy %s: checking which process serves: %w", a.where(), ctx.Err())
	}
	defer func() { <-a.checking }()
	a.mu.Lock()
	fresh := !a.checked.IsZero() && (a.checked.After(asked) || maxAge > 0 && time.Since(a.checked) < maxAge)
	a.mu.Unlock()
	if fresh {
		return nil
	}
	started := time.Now()
	// the connection of the last check answers first: a process that a
	// reload told to stop says "Stopping: 1" on it, a restarted one has
	// closed it; only then is a new connection needed
	a.mu.Lock()
	kept := a.checkConn
	a.checkConn = nil
	a.mu.Unlock()
	if kept != nil {
		replies, err := kept.exchange(ctx, []string{"show info"})
		if err == nil {
			p, stopping := parseInfo(replies[0].text)
			a.mu.Lock()
			// (an HAProxy whose show info names no Pid cannot be told
			// apart from its successor: the kept connection is as good)
			if !stopping && p == a.proc && kept.procGen == a.procGen {
				a.checked = started
				a.checkConn = kept
				a.mu.Unlock()
				return nil
			}
			a.mu.Unlock()
		}
		a.drop(kept)
	}
	for {
		cc, err := a.dialCLI(ctx)
		if err != nil {
			return err
		}
		replies, err := cc.exchange(ctx, []string{"show info"})
		if err != nil {
			a.drop(cc)
			return fmt.Errorf("haproxy %s: show info: %w", a.where(), ctxErr(ctx, err))
		}
		p, stopping := parseInfo(replies[0].text)
		if stopping {
			// the old process, still accepting for a moment during a
			// reload: the new one takes over the socket in a few ms
			a.drop(cc)
			t := time.NewTimer(20 * time.Millisecond)
			select {
			case <-t.C:
				continue
			case <-ctx.Done():
				t.Stop()
				return fmt.Errorf("haproxy %s: show info: the process answering is stopping (a reload under way): %w", a.where(), ctx.Err())
			}
		}
		a.mu.Lock()
		prev := a.proc
		changed := p.Pid != 0 && prev.Pid != 0 && p != prev
		if p.Pid != 0 {
			a.proc = p
		}
		if !changed {
			a.checked = started
			a.mu.Unlock()
			a.keepCheck(cc)
			return nil
		}
		// every connection opened before now may reach the old process
		a.procGen++
		a.gen++ // "show stat" snapshots are the old process's
		cc.procGen = a.procGen
		idle := a.idle
		a.idle = nil
		a.open -= len(idle)
		a.mu.Unlock()
		for _, c := range idle {
			c.timer.Stop()
			c.conn.Close()
		}
		r := a.reapply(ctx, cc, prev, p)
		a.mu.Lock()
		a.checked = started
		a.reloads++
		a.mu.Unlock()
		if a.opt.OnReload != nil {
			a.opt.OnReload(r)
		}
		return nil
	}
}

// reapply puts every server the client has out of service back into that
// state on the new process, with no state change of the client's in
// flight, through cc (which it releases or closes).
func (a *RuntimeAPI) reapply(ctx context.Context, cc *cliConn, from, to Process) Reload {
	a.stateMu.Lock()
	defer a.stateMu.Unlock()
	a.mu.Lock()
	keys := make([]string, 0, len(a.wanted))
	for k := range a.wanted {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var servers []Reapplied
	var cmds []string
	var owner []int
	for _, k := range keys {
		w := a.wanted[k]
		b, s, _ := strings.Cut(k, "/")
		servers = append(servers, Reapplied{Host: w.host, Backend: b, Server: s, State: w.state, Weight: w.weight})
		// weight before state, as a ramp does
		if w.weight >= 0 {
			cmds = append(cmds, "set server "+k+" weight "+strconv.Itoa(w.weight)+"%")
			owner = append(owner, len(servers)-1)
		}
		if w.state != "" {
			cmds = append(cmds, "set server "+k+" state "+w.state)
			owner = append(owner, len(servers)-1)
		}
	}
	a.mu.Unlock()
	r := Reload{Endpoint: a.where(), From: from, To: to, Servers: servers}
	var err error
	var replies []cliReply
	if len(cmds) > 0 {
		replies, err = cc.exchange(ctx, cmds)
	}
	if err != nil {
		a.drop(cc)
	} else {
		a.keepCheck(cc)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for i := range cmds {
		s := &r.Servers[owner[i]]
		var cerr error
		switch {
		case err != nil:
			cerr = fmt.Errorf("%s: %w", cmds[i], err)
		case strings.TrimSpace(replies[i].text) != "":
			cerr = &ReplyError{Endpoint: a.where(), Command: cmds[i], Reply: oneLine(strings.TrimSpace(replies[i].text))}
		}
		if cerr != nil && s.Err == nil {
			s.Err = cerr
			a.reapplyErr[s.Backend+"/"+s.Server] = &ReapplyError{Endpoint: a.where(), Server: s.Backend + "/" + s.Server, From: from, To: to, Err: cerr}
		}
	}
	return r
}

// Held returns the error of a server whose state the client could not
// re-apply after a reload, or nil.
func (a *RuntimeAPI) Held(backend, server string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.reapplyErr[backend+"/"+server]
}

// Reloads counts the process changes the client has seen.
func (a *RuntimeAPI) Reloads() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.reloads
}

// dialCLI opens a new connection (never an idle one) for a check. The
// check has a connection slot of its own: with Track, commands use at
// most Options.MaxConns-1 connections (see dataConns), and checks run one
// at a time on one kept connection (a new one only when that one no longer
// reaches the serving process), so the socket never sees more than
// MaxConns from this client.
func (a *RuntimeAPI) dialCLI(ctx context.Context) (*cliConn, error) {
	return a.dialNew(ctx, true)
}

// drop closes a check's connection.
func (a *RuntimeAPI) drop(cc *cliConn) {
	cc.conn.Close()
	a.mu.Lock()
	a.open--
	a.mu.Unlock()
}

// keepCheck keeps cc for the next check (closing it when the client was
// closed meanwhile).
func (a *RuntimeAPI) keepCheck(cc *cliConn) {
	a.mu.Lock()
	if a.closed || !a.opt.Keep {
		a.mu.Unlock()
		a.drop(cc)
		return
	}
	a.checkConn = cc
	a.mu.Unlock()
}

// dataConns is how many connections commands may use at once.
func (a *RuntimeAPI) dataConns() int {
	if a.opt.Track && a.opt.MaxConns > 1 {
		return a.opt.MaxConns - 1
	}
	return a.opt.MaxConns
}

// isDisabled: the reply of a process that a reload told to stop.
func isDisabled(err error) bool {
	var re *ReplyError
	return errors.As(err, &re) && strings.HasPrefix(re.Reply, "Proxy is disabled")
}
