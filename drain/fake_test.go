package drain

import (
	"bufio"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeServer is one server row of a fake HAProxy.
type fakeServer struct {
	name, status     string
	scur, qcur, wght int
}

// fakeLB speaks enough of the HAProxy runtime API for unit tests of the
// protocol: lines of ';'-separated commands; without "prompt" one line per
// connection, reply, close; with it, every reply followed by "> " and the
// connection kept; "set severity-output number" prefixes messages.
type fakeLB struct {
	mu      sync.Mutex
	backend string
	servers []*fakeServer
	columns []string // order of the show stat header
	level   string
	cmds    []string // commands that reached the socket, without the session settings
	lines   int
	path    string
	ln      net.Listener

	conns, peakConns int // open connections now, and at most
	accepted         int
	delay            time.Duration // before answering a line
	closeAfter       int           // close a kept connection after this many lines (0: never)
}

var statColumns = []string{"pxname", "svname", "qcur", "qmax", "scur", "smax", "slim", "stot", "status", "weight", "act", "bck", "check_status", ""}

func newFakeLB(t *testing.T, backend string, servers ...*fakeServer) *fakeLB {
	t.Helper()
	f := &fakeLB{backend: backend, servers: servers, columns: statColumns, level: "admin"}
	f.path = filepath.Join(t.TempDir(), "admin.sock")
	ln, err := net.Listen("unix", f.path)
	if err != nil {
		t.Fatal(err)
	}
	f.ln = ln
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go f.serve(c)
		}
	}()
	return f
}

func (f *fakeLB) endpoint() string { return "unix:" + f.path }

func (f *fakeLB) serve(c net.Conn) {
	f.mu.Lock()
	f.conns++
	f.accepted++
	f.peakConns = max(f.peakConns, f.conns)
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.conns--
		f.mu.Unlock()
		c.Close()
	}()
	r := bufio.NewReader(c)
	prompt, severity := false, false
	for n := 1; ; n++ {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		f.mu.Lock()
		f.lines++
		delay := f.delay
		closeAfter := f.closeAfter
		f.mu.Unlock()
		time.Sleep(delay)
		var out strings.Builder
		for _, cmd := range strings.Split(strings.TrimSuffix(line, "\n"), ";") {
			var reply string
			switch cmd {
			case "prompt":
				prompt = !prompt
				reply = "\n"
			case "set severity-output number":
				severity = true
				reply = "\n"
			default:
				reply = f.handle(cmd)
				if severity {
					reply = withSeverity(cmd, reply)
				}
			}
			out.WriteString(reply)
			if prompt {
				out.WriteString("> ")
			}
		}
		fmt.Fprint(c, out.String())
		if !prompt || (closeAfter > 0 && n >= closeAfter) {
			return
		}
	}
}

// withSeverity adds HAProxy's "[N]: " to a message reply (3 errors, 6
// information); data (show stat, get weight) has none.
func withSeverity(cmd, reply string) string {
	switch {
	case cmd == "show cli level", strings.HasPrefix(reply, "Unknown command"):
		return "[6]: " + reply
	case strings.HasPrefix(reply, "No such"), strings.HasPrefix(reply, "\nPermission denied"), strings.HasPrefix(reply, "'"):
		return "[3]: " + strings.TrimPrefix(reply, "\n")
	}
	return reply
}

func (f *fakeLB) lineCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lines
}

func (f *fakeLB) acceptedCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.accepted
}

func (f *fakeLB) peak() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.peakConns
}

// count returns how many commands that reached the socket start with prefix.
func (f *fakeLB) count(prefix string) int {
	n := 0
	for _, c := range f.commands() {
		if strings.HasPrefix(c, prefix) {
			n++
		}
	}
	return n
}

func (f *fakeLB) commands() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.cmds...)
}

func (f *fakeLB) handle(cmd string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cmds = append(f.cmds, cmd)
	w := strings.Fields(cmd)
	switch {
	case cmd == "show cli level":
		return f.level + "\n\n"
	case len(w) == 5 && w[0] == "show" && w[1] == "stat":
		if w[2] != f.backend {
			return "No such proxy.\n\n"
		}
		return f.csv()
	case len(w) == 3 && w[0] == "get" && w[1] == "weight":
		s, msg := f.find(w[2])
		if s == nil {
			return msg
		}
		return fmt.Sprintf("%d (initial 100)\n\n", s.wght)
	case len(w) == 5 && w[0] == "set" && w[1] == "server":
		if f.level != "admin" {
			return "\nPermission denied\n\n"
		}
		s, msg := f.find(w[2])
		if s == nil {
			return msg
		}
		switch {
		case w[3] == "state" && w[4] == "drain":
			s.status = "DRAIN"
		case w[3] == "state" && w[4] == "maint":
			s.status = "MAINT"
		case w[3] == "state" && w[4] == "ready":
			s.status = "UP"
		case w[3] == "weight":
			var pct int
			fmt.Sscanf(w[4], "%d%%", &pct)
			s.wght = pct
		default:
			return "'set server <srv> state' expects 'ready', 'drain' and 'maint'.\n\n"
		}
		return "\n"
	}
	return "Unknown command, but maybe one of the following ones is a better match:\n  help : list\n\n"
}

func (f *fakeLB) find(bs string) (*fakeServer, string) {
	b, s, _ := strings.Cut(bs, "/")
	if b != f.backend {
		return nil, "No such backend.\n\n"
	}
	for _, sv := range f.servers {
		if sv.name == s {
			return sv, ""
		}
	}
	return nil, "No such server.\n\n"
}

func (f *fakeLB) csv() string {
	var b strings.Builder
	b.WriteString("# " + strings.Join(f.columns, ",") + "\n")
	for _, s := range f.servers {
		vals := map[string]string{
			"pxname": f.backend, "svname": s.name, "qcur": fmt.Sprint(s.qcur), "scur": fmt.Sprint(s.scur),
			"status": s.status, "weight": fmt.Sprint(s.wght), "act": "1", "bck": "0",
		}
		row := make([]string, len(f.columns))
		for i, c := range f.columns {
			row[i] = vals[c]
		}
		b.WriteString(strings.Join(row, ",") + "\n")
	}
	b.WriteString("\n")
	return b.String()
}

func (f *fakeLB) server(name string) fakeServer {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.servers {
		if s.name == name {
			return *s
		}
	}
	return fakeServer{}
}
