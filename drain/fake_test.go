package drain

import (
	"bufio"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// fakeServer is one server row of a fake HAProxy.
type fakeServer struct {
	name, status     string
	scur, qcur, wght int
}

// fakeLB speaks enough of the HAProxy runtime API for unit tests of the
// protocol: one command line per connection, reply, close.
type fakeLB struct {
	mu      sync.Mutex
	backend string
	servers []*fakeServer
	columns []string // order of the show stat header
	level   string
	cmds    []string
	path    string
	ln      net.Listener
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
	defer c.Close()
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return
	}
	fmt.Fprint(c, f.handle(strings.TrimSuffix(line, "\n")))
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
