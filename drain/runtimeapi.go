package drain

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// defaultTimeout bounds one runtime API command when ctx has no deadline.
const defaultTimeout = 10 * time.Second

// maxReply bounds what one command may answer (a show stat of a huge config
// is well below this).
const maxReply = 16 << 20

// RuntimeAPI is a client of one HAProxy runtime API socket ("stats socket
// ... level admin"). Every command uses a fresh connection: in
// non-interactive mode HAProxy answers one line of commands and closes.
type RuntimeAPI struct {
	endpoint string // as written: unix:/path or tcp:host:port
	network  string
	addr     string
	dial     Dialer
}

// NewRuntimeAPI parses endpoint ("unix:/run/haproxy/admin.sock" or
// "tcp:HOST:PORT"). dial nil means the local machine.
func NewRuntimeAPI(endpoint string, dial Dialer) (*RuntimeAPI, error) {
	network, addr, ok := strings.Cut(endpoint, ":")
	switch {
	case !ok || addr == "":
		return nil, fmt.Errorf("haproxy endpoint %q: want unix:/path/to/admin.sock or tcp:HOST:PORT", endpoint)
	case network == "unix":
		if !strings.HasPrefix(addr, "/") {
			return nil, fmt.Errorf("haproxy endpoint %q: the socket path must be absolute", endpoint)
		}
	case network == "tcp":
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("haproxy endpoint %q: %w", endpoint, err)
		}
		if p, err := strconv.Atoi(port); host == "" || err != nil || p < 1 || p > 65535 {
			return nil, fmt.Errorf("haproxy endpoint %q: want tcp:HOST:PORT", endpoint)
		}
	default:
		return nil, fmt.Errorf("haproxy endpoint %q: unknown kind %q, want unix:PATH or tcp:HOST:PORT", endpoint, network)
	}
	if dial == nil {
		dial = LocalDialer()
	}
	return &RuntimeAPI{endpoint: endpoint, network: network, addr: addr, dial: dial}, nil
}

// Endpoint returns the endpoint as it was given.
func (a *RuntimeAPI) Endpoint() string { return a.endpoint }

// Exec sends one command line and returns the whole reply. It does not judge
// the reply: see SetState and Stat for that.
func (a *RuntimeAPI) Exec(ctx context.Context, cmd string) (string, error) {
	if strings.ContainsAny(cmd, "\r\n") {
		return "", fmt.Errorf("haproxy %s: command %q spans lines", a.endpoint, cmd)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultTimeout)
		defer cancel()
	}
	conn, err := a.dial(ctx, a.network, a.addr)
	if err != nil {
		return "", fmt.Errorf("haproxy %s: %w", a.endpoint, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl) // a Dialer through SSH may not support deadlines
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	if _, err := io.WriteString(conn, cmd+"\n"); err != nil {
		return "", fmt.Errorf("haproxy %s: %s: %w", a.endpoint, cmd, ctxErr(ctx, err))
	}
	b, err := io.ReadAll(io.LimitReader(conn, maxReply))
	if err != nil {
		return "", fmt.Errorf("haproxy %s: %s: %w", a.endpoint, cmd, ctxErr(ctx, err))
	}
	return string(b), nil
}

func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// ReplyError is a runtime API command that HAProxy refused.
type ReplyError struct {
	Endpoint string
	Command  string
	Reply    string // trimmed, e.g. "No such server."
}

func (e *ReplyError) Error() string {
	return fmt.Sprintf("haproxy %s: %s: %s", e.Endpoint, e.Command, e.Reply)
}

// Stat is one row of "show stat": a server (or the BACKEND aggregate).
type Stat struct {
	Proxy  string // pxname
	Server string // svname
	Status string // UP, UP 1/3, DOWN, DOWN 1/2, NOLB, DRAIN, MAINT, MAINT (via ...), no check
	Scur   int    // current sessions
	Qcur   int    // queued requests
	Weight int    // current effective weight
	Fields map[string]string
}

// Stat returns the server rows of backend ("show stat BACKEND 4 -1"),
// reading columns by their header names.
func (a *RuntimeAPI) Stat(ctx context.Context, backend string) ([]Stat, error) {
	if err := checkName("backend", backend); err != nil {
		return nil, fmt.Errorf("haproxy %s: %w", a.endpoint, err)
	}
	cmd := "show stat " + backend + " 4 -1"
	reply, err := a.Exec(ctx, cmd)
	if err != nil {
		return nil, err
	}
	rows, err := parseStat(reply)
	if err != nil {
		var re *ReplyError
		if errors.As(err, &re) {
			re.Endpoint, re.Command = a.endpoint, cmd
			return nil, re
		}
		return nil, fmt.Errorf("haproxy %s: %s: %w", a.endpoint, cmd, err)
	}
	out := rows[:0]
	for _, r := range rows {
		if r.Proxy == backend && r.Server != "BACKEND" && r.Server != "FRONTEND" {
			out = append(out, r)
		}
	}
	return out, nil
}

// parseStat parses a "show stat" CSV reply. Anything that does not start
// with the "# pxname," header is HAProxy refusing the command; it comes back
// as a *ReplyError without endpoint and command.
func parseStat(reply string) ([]Stat, error) {
	body := strings.TrimLeft(reply, "\r\n")
	if !strings.HasPrefix(body, "# ") {
		msg := strings.TrimSpace(reply)
		if msg == "" {
			msg = "empty reply"
		}
		return nil, &ReplyError{Reply: oneLine(msg)}
	}
	r := csv.NewReader(strings.NewReader(strings.TrimPrefix(body, "# ")))
	r.FieldsPerRecord = -1
	r.ReuseRecord = false
	header, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("stat header: %w", err)
	}
	col := make(map[string]int, len(header))
	for i, name := range header {
		name = strings.TrimSpace(name)
		if name != "" {
			col[name] = i
		}
	}
	for _, need := range []string{"pxname", "svname", "status"} {
		if _, ok := col[need]; !ok {
			return nil, fmt.Errorf("stat header has no %q column", need)
		}
	}
	var rows []Stat
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("stat csv: %w", err)
		}
		fields := make(map[string]string, len(col))
		for name, i := range col {
			if i < len(rec) {
				fields[name] = rec[i]
			}
		}
		s := Stat{Proxy: fields["pxname"], Server: fields["svname"], Status: fields["status"], Fields: fields}
		for _, n := range []struct {
			name string
			dst  *int
		}{{"scur", &s.Scur}, {"qcur", &s.Qcur}, {"weight", &s.Weight}} {
			v := fields[n.name]
			if v == "" {
				continue
			}
			x, err := strconv.Atoi(v)
			if err != nil {
				return nil, fmt.Errorf("stat %s/%s: column %s: %q is not a number", s.Proxy, s.Server, n.name, v)
			}
			*n.dst = x
		}
		rows = append(rows, s)
	}
	return rows, nil
}

// SetState sets a server's admin state: "ready", "drain" or "maint".
func (a *RuntimeAPI) SetState(ctx context.Context, backend, server, state string) error {
	switch state {
	case "ready", "drain", "maint":
	default:
		return fmt.Errorf("haproxy %s: server state %q: want ready, drain or maint", a.endpoint, state)
	}
	return a.set(ctx, backend, server, "state "+state)
}

// SetWeight sets a server's weight to pct percent of its configured weight.
// With HAProxy's default weight 1 anything below 100% rounds to 0: configure
// "weight 100" on servers that ramp.
func (a *RuntimeAPI) SetWeight(ctx context.Context, backend, server string, pct int) error {
	if pct < 0 || pct > 100 {
		return fmt.Errorf("haproxy %s: weight %d%%: want 0..100", a.endpoint, pct)
	}
	return a.set(ctx, backend, server, "weight "+strconv.Itoa(pct)+"%")
}

// set runs "set server B/S ARGS"; success is an empty reply.
func (a *RuntimeAPI) set(ctx context.Context, backend, server, args string) error {
	if err := checkName("backend", backend); err != nil {
		return fmt.Errorf("haproxy %s: %w", a.endpoint, err)
	}
	if err := checkName("server", server); err != nil {
		return fmt.Errorf("haproxy %s: %w", a.endpoint, err)
	}
	cmd := "set server " + backend + "/" + server + " " + args
	return a.expectEmpty(ctx, cmd)
}

func (a *RuntimeAPI) expectEmpty(ctx context.Context, cmd string) error {
	reply, err := a.Exec(ctx, cmd)
	if err != nil {
		return err
	}
	if msg := strings.TrimSpace(reply); msg != "" {
		return &ReplyError{Endpoint: a.endpoint, Command: cmd, Reply: oneLine(msg)}
	}
	return nil
}

// oneLine keeps the first line of a long reply ("Unknown command, but maybe
// one of the following..." lists every command).
func oneLine(s string) string {
	first, rest, _ := strings.Cut(s, "\n")
	if rest != "" {
		return strings.TrimSpace(first) + " …"
	}
	return s
}

// checkName refuses names that would change the meaning of a runtime API
// line: HAProxy splits commands on ';' and arguments on blanks, so a server
// name taken from inventory data must not contain them.
func checkName(kind, name string) error {
	if name == "" {
		return fmt.Errorf("empty %s name", kind)
	}
	for _, r := range name {
		if r <= ' ' || r == 0x7f || r == ';' || r == '\\' || r == '/' || r == '#' {
			return fmt.Errorf("%s name %q: HAProxy names cannot contain %q", kind, name, r)
		}
	}
	return nil
}
