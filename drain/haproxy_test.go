package drain

import (
	"context"
	"strings"
	"testing"
)

func pair(t *testing.T) (*fakeLB, *fakeLB) {
	mk := func() *fakeLB {
		return newFakeLB(t, "web",
			&fakeServer{name: "web1", status: "UP", scur: 2, qcur: 1, wght: 100},
			&fakeServer{name: "web2", status: "UP", wght: 100},
		)
	}
	return mk(), mk()
}

func TestHAProxyEveryStepOnEveryLB(t *testing.T) {
	ctx := context.Background()
	lb1, lb2 := pair(t)
	lb2.columns = []string{"svname", "status", "pxname", "weight", "scur", "qcur"} // another version, another order
	lb2.servers[0].scur = 4
	h, err := NewHAProxy("web1.example", []string{lb1.endpoint(), lb2.endpoint()}, nil, "web", "web1")
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name   string
		do     func() error
		status string
		weight int
	}{
		{"check", func() error { return h.Check(ctx) }, "UP", 100},
		{"drain", func() error { return h.Drain(ctx) }, "DRAIN", 100},
		{"settle", func() error { return h.Settle(ctx) }, "MAINT", 100},
		{"weight", func() error { return h.SetWeight(ctx, 10) }, "MAINT", 10},
		{"undrain", func() error { return h.Undrain(ctx) }, "UP", 10},
		{"full", func() error { return h.SetWeight(ctx, 100) }, "UP", 100},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		for i, lb := range []*fakeLB{lb1, lb2} {
			got := lb.server("web1")
			if got.status != s.status || got.wght != s.weight {
				t.Errorf("after %s: lb%d web1 = %s weight %d, want %s weight %d", s.name, i+1, got.status, got.wght, s.status, s.weight)
			}
			if other := lb.server("web2"); other.status != "UP" || other.wght != 100 {
				t.Errorf("after %s: lb%d touched web2: %+v", s.name, i+1, other)
			}
		}
	}
	n, err := h.Sessions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2+1+4+1 {
		t.Errorf("sessions = %d, want 8 (scur+qcur summed over both LBs)", n)
	}
}

func TestHAProxyOneLBUnreachable(t *testing.T) {
	ctx := context.Background()
	lb1, lb2 := pair(t)
	lb2.ln.Close()
	h, err := NewHAProxy("web1.example", []string{lb1.endpoint(), lb2.endpoint()}, nil, "web", "web1")
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name string
		do   func() error
	}{
		{"check", func() error { return h.Check(ctx) }},
		{"drain", func() error { return h.Drain(ctx) }},
		{"sessions", func() error { _, err := h.Sessions(ctx); return err }},
		{"serving", func() error { _, _, err := h.Serving(ctx); return err }},
		{"pool", func() error { _, err := h.Pool(ctx); return err }},
	}
	for _, c := range checks {
		err := c.do()
		if err == nil {
			t.Fatalf("%s succeeded with lb2 unreachable", c.name)
		}
		want := c.name + " web1.example: haproxy " + lb2.endpoint()
		if !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%s: err = %q, want prefix %q", c.name, err, want)
		}
	}
	// The reachable LB still got the drain (Undrain after a failed drain
	// restores it).
	if got := lb1.server("web1").status; got != "DRAIN" {
		t.Errorf("lb1 web1 = %s, want DRAIN", got)
	}
}

func TestHAProxyCheck(t *testing.T) {
	tests := []struct {
		name, backend, server, level, want string
	}{
		{name: "ok", backend: "web", server: "web2", level: "admin"},
		{name: "unknown server", backend: "web", server: "web9", level: "admin", want: "check web9.example: haproxy LB: get weight web/web9: No such server."},
		{name: "unknown backend", backend: "db", server: "web1", level: "admin", want: "get weight db/web1: No such backend."},
		{name: "operator level", backend: "web", server: "web1", level: "operator", want: `level "operator", want admin`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lb1, _ := pair(t)
			lb1.level = tt.level
			h, err := NewHAProxy(tt.server+".example", []string{lb1.endpoint()}, nil, tt.backend, tt.server)
			if err != nil {
				t.Fatal(err)
			}
			err = h.Check(context.Background())
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
			} else {
				want := strings.ReplaceAll(tt.want, "LB", lb1.endpoint())
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("err = %v, want it to contain %q", err, want)
				}
			}
			for _, c := range lb1.commands() {
				if strings.HasPrefix(c, "set ") {
					t.Errorf("Check changed something: %q", c)
				}
			}
		})
	}
}

func TestHAProxySessionsUnknownServer(t *testing.T) {
	lb1, _ := pair(t)
	h, err := NewHAProxy("web9", []string{lb1.endpoint()}, nil, "web", "web9")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Sessions(context.Background()); err == nil || !strings.Contains(err.Error(), "No such server web/web9") {
		t.Fatalf("err = %v", err)
	}
}

func TestHAProxyServing(t *testing.T) {
	tests := []struct {
		s1, s2    string
		want      bool
		confirmed bool // back in service, confirmed by a check since
	}{
		{"UP", "UP", true, true},
		{"UP", "no check", true, true},
		{"DRAIN", "DRAIN", true, false}, // checks pass while drained: what a health gate needs
		{"UP", "DOWN 1/2", false, false},
		{"UP 1/3", "UP", true, false}, // just back from maint, or going down: the window decides; not yet confirmed
		{"UP", "UP 1/2", true, false},
		{"DRAIN 1/3", "DRAIN (agent)", true, false},
		{"NOLB", "UP", false, false},
		{"MAINT", "UP", false, false},
		{"UP", "DOWN", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.s1+"+"+tt.s2, func(t *testing.T) {
			lb1, lb2 := pair(t)
			lb1.servers[0].status, lb2.servers[0].status = tt.s1, tt.s2
			h, err := NewHAProxy("web1", []string{lb1.endpoint(), lb2.endpoint()}, nil, "web", "web1")
			if err != nil {
				t.Fatal(err)
			}
			ok, detail, err := h.Serving(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if ok != tt.want {
				t.Errorf("serving = %v, want %v (%s)", ok, tt.want, detail)
			}
			want := lb1.endpoint() + " " + tt.s1 + ", " + lb2.endpoint() + " " + tt.s2
			if detail != want {
				t.Errorf("detail = %q, want %q", detail, want)
			}
			ok, detail, err = h.Confirmed(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if ok != tt.confirmed || detail != want {
				t.Errorf("confirmed = %v (%s), want %v (%s)", ok, detail, tt.confirmed, want)
			}
		})
	}
}

func TestHAProxyPool(t *testing.T) {
	lb1 := newFakeLB(t, "web",
		&fakeServer{name: "a", status: "UP"},
		&fakeServer{name: "b", status: "UP"},
		&fakeServer{name: "c", status: "UP 1/3"},
		&fakeServer{name: "d", status: "no check"},
		&fakeServer{name: "e", status: "UP"},
	)
	lb2 := newFakeLB(t, "web",
		&fakeServer{name: "a", status: "UP"},
		&fakeServer{name: "b", status: "DRAIN"},
		&fakeServer{name: "c", status: "UP"},
		&fakeServer{name: "d", status: "DOWN 1/2"},
		&fakeServer{name: "f", status: "MAINT"},
	)
	h, err := NewHAProxy("a", []string{lb1.endpoint(), lb2.endpoint()}, nil, "web", "a")
	if err != nil {
		t.Fatal(err)
	}
	pool, err := h.Pool(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		server, status string
		serving        bool
	}{
		{"a", "UP", true},
		{"b", "DRAIN", false},
		{"c", "UP 1/3", true},
		{"d", "DOWN 1/2", false},
		{"e", "absent", false}, // lb2 does not know it
		{"f", "absent", false},
	}
	if len(pool) != len(want) {
		t.Fatalf("pool = %+v", pool)
	}
	for i, w := range want {
		p := pool[i]
		if p.Server != w.server || p.Status != w.status || p.Serving != w.serving {
			t.Errorf("pool[%d] = %s %q serving=%v, want %s %q serving=%v", i, p.Server, p.Status, p.Serving, w.server, w.status, w.serving)
		}
		if len(p.PerLB) != 2 {
			t.Errorf("pool[%d].PerLB = %v, want both LBs", i, p.PerLB)
		}
	}
	if pool[1].PerLB[lb1.endpoint()] != "UP" || pool[1].PerLB[lb2.endpoint()] != "DRAIN" {
		t.Errorf("b PerLB = %v", pool[1].PerLB)
	}
}

func TestNewHAProxyRefuses(t *testing.T) {
	tests := []struct {
		name      string
		endpoints []string
		backend   string
		server    string
		want      string
	}{
		{"no endpoints", nil, "web", "a", "no endpoints"},
		{"bad endpoint", []string{"unix:/a.sock", "lb2:9999"}, "web", "a", `endpoint "lb2:9999"`},
		{"twice", []string{"unix:/a.sock", "unix:/a.sock"}, "web", "a", "listed twice"},
		{"space in server", []string{"unix:/a.sock"}, "web", "a b", "cannot contain"},
		{"semicolon in backend", []string{"unix:/a.sock"}, "web;x", "a", "cannot contain"},
		{"empty server", []string{"unix:/a.sock"}, "web", "", "empty server name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewHAProxy("h", tt.endpoints, nil, tt.backend, tt.server)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}
