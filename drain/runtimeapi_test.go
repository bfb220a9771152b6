package drain

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestNewRuntimeAPIEndpoint(t *testing.T) {
	tests := []struct {
		endpoint, network, addr string
		wantErr                 string
	}{
		{endpoint: "unix:/run/haproxy/admin.sock", network: "unix", addr: "/run/haproxy/admin.sock"},
		{endpoint: "tcp:127.0.0.1:9999", network: "tcp", addr: "127.0.0.1:9999"},
		{endpoint: "tcp:lb1.example:9999", network: "tcp", addr: "lb1.example:9999"},
		{endpoint: "tcp:[::1]:9999", network: "tcp", addr: "[::1]:9999"},
		{endpoint: "/run/haproxy/admin.sock", wantErr: "want unix:"},
		{endpoint: "unix:", wantErr: "want unix:"},
		{endpoint: "unix:relative.sock", wantErr: "absolute"},
		{endpoint: "tcp:127.0.0.1", wantErr: "missing port"},
		{endpoint: "tcp:127.0.0.1:http", wantErr: "want tcp:HOST:PORT"},
		{endpoint: "tcp::9999", wantErr: "want tcp:HOST:PORT"},
		{endpoint: "udp:127.0.0.1:9999", wantErr: "unknown kind"},
	}
	for _, tt := range tests {
		t.Run(tt.endpoint, func(t *testing.T) {
			a, err := NewRuntimeAPI(tt.endpoint, nil)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if a.network != tt.network || a.addr != tt.addr {
				t.Errorf("got %s %s, want %s %s", a.network, a.addr, tt.network, tt.addr)
			}
		})
	}
}

func TestParseStatByHeaderName(t *testing.T) {
	orders := [][]string{
		{"pxname", "svname", "qcur", "scur", "status", "weight", ""},
		{"weight", "status", "scur", "svname", "qcur", "pxname"},
		{"scur", "lastchg", "pxname", "qcur", "weight", "svname", "status", "check_desc", ""},
	}
	for _, cols := range orders {
		t.Run(strings.Join(cols, ","), func(t *testing.T) {
			vals := map[string]string{"pxname": "web", "svname": "web2", "qcur": "3", "scur": "7", "status": "UP 1/3", "weight": "55", "lastchg": "12", "check_desc": "Layer4 check passed"}
			row := make([]string, len(cols))
			for i, c := range cols {
				row[i] = vals[c]
			}
			reply := "# " + strings.Join(cols, ",") + "\n" + strings.Join(row, ",") + "\n\n"
			rows, err := parseStat(reply)
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) != 1 {
				t.Fatalf("got %d rows, want 1", len(rows))
			}
			got := rows[0]
			if got.Proxy != "web" || got.Server != "web2" || got.Status != "UP 1/3" || got.Scur != 7 || got.Qcur != 3 || got.Weight != 55 {
				t.Errorf("got %+v", got)
			}
			if got.Fields["scur"] != "7" {
				t.Errorf("Fields[scur] = %q", got.Fields["scur"])
			}
		})
	}
}

func TestParseStatRefusalsAndGarbage(t *testing.T) {
	tests := []struct {
		name, reply, want string
		reply2            bool // a *ReplyError
	}{
		{name: "no such proxy", reply: "No such proxy.\n\n", want: "No such proxy.", reply2: true},
		{name: "permission", reply: "\nPermission denied\n\n", want: "Permission denied", reply2: true},
		{name: "empty", reply: "", want: "empty reply", reply2: true},
		{name: "missing status column", reply: "# pxname,svname,scur\nweb,a,1\n", want: `no "status" column`},
		{name: "bad number", reply: "# pxname,svname,status,scur\nweb,a,UP,many\n", want: `column scur: "many" is not a number`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseStat(tt.reply)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
			var re *ReplyError
			if errors.As(err, &re) != tt.reply2 {
				t.Errorf("ReplyError = %v, want %v", !tt.reply2, tt.reply2)
			}
		})
	}
}

func TestStatAgainstFakeSocket(t *testing.T) {
	lb := newFakeLB(t, "web", &fakeServer{name: "a", status: "UP", scur: 2, qcur: 1, wght: 100}, &fakeServer{name: "b", status: "MAINT", wght: 100})
	lb.columns = []string{"status", "svname", "weight", "scur", "pxname", "qcur"}
	api, err := NewRuntimeAPI(lb.endpoint(), nil)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := api.Stat(context.Background(), "web")
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].Server != "a" || rows[0].Scur != 2 || rows[0].Qcur != 1 || rows[1].Status != "MAINT" {
		t.Fatalf("rows = %+v", rows)
	}
	if got := lb.commands(); len(got) != 1 || got[0] != "show stat web 4 -1" {
		t.Errorf("commands = %q", got)
	}
	_, err = api.Stat(context.Background(), "nope")
	if err == nil || !strings.Contains(err.Error(), "haproxy "+lb.endpoint()+": show stat nope 4 -1: No such proxy.") {
		t.Errorf("unknown backend err = %v", err)
	}
}

func TestSetCommandsAndReplies(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		do      func(a *RuntimeAPI) error
		level   string
		sent    string // "" = nothing may reach the socket
		wantErr string
	}{
		{name: "drain", do: func(a *RuntimeAPI) error { return a.SetState(ctx, "web", "a", "drain") }, sent: "set server web/a state drain"},
		{name: "maint", do: func(a *RuntimeAPI) error { return a.SetState(ctx, "web", "a", "maint") }, sent: "set server web/a state maint"},
		{name: "weight", do: func(a *RuntimeAPI) error { return a.SetWeight(ctx, "web", "a", 10) }, sent: "set server web/a weight 10%"},
		{name: "no such server", do: func(a *RuntimeAPI) error { return a.SetState(ctx, "web", "zz", "drain") }, sent: "set server web/zz state drain", wantErr: "set server web/zz state drain: No such server."},
		{name: "no such backend", do: func(a *RuntimeAPI) error { return a.SetState(ctx, "db", "a", "ready") }, sent: "set server db/a state ready", wantErr: "set server db/a state ready: No such backend."},
		{name: "permission", level: "operator", do: func(a *RuntimeAPI) error { return a.SetState(ctx, "web", "a", "drain") }, sent: "set server web/a state drain", wantErr: "Permission denied"},
		{name: "unknown command", do: func(a *RuntimeAPI) error { return a.expectEmpty(ctx, "frobnicate") }, sent: "frobnicate", wantErr: "frobnicate: Unknown command, but maybe one of the following ones is a better match: …"},
		{name: "bad state", do: func(a *RuntimeAPI) error { return a.SetState(ctx, "web", "a", "down") }, wantErr: `server state "down"`},
		{name: "bad weight", do: func(a *RuntimeAPI) error { return a.SetWeight(ctx, "web", "a", 150) }, wantErr: "want 0..100"},
		{name: "semicolon injection", do: func(a *RuntimeAPI) error { return a.SetState(ctx, "web", "a;shutdown frontend fe", "drain") }, wantErr: "cannot contain"},
		{name: "newline", do: func(a *RuntimeAPI) error { _, err := a.Exec(ctx, "show info\nshutdown"); return err }, wantErr: "spans lines"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lb := newFakeLB(t, "web", &fakeServer{name: "a", status: "UP", wght: 100})
			if tt.level != "" {
				lb.level = tt.level
			}
			api, err := NewRuntimeAPI(lb.endpoint(), nil)
			if err != nil {
				t.Fatal(err)
			}
			err = tt.do(api)
			if tt.wantErr == "" && err != nil {
				t.Fatalf("err = %v", err)
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				if tt.sent != "" && !strings.Contains(err.Error(), lb.endpoint()) {
					t.Errorf("err %q does not name the endpoint", err)
				}
			}
			got := lb.commands()
			if tt.sent == "" {
				if len(got) != 0 {
					t.Fatalf("sent %q, want nothing sent", got)
				}
				return
			}
			if len(got) != 1 || got[0] != tt.sent {
				t.Errorf("sent %q, want %q", got, tt.sent)
			}
		})
	}
}

func TestExecUnreachable(t *testing.T) {
	api, err := NewRuntimeAPI("unix:"+t.TempDir()+"/missing.sock", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = api.Exec(context.Background(), "show info")
	if err == nil || !strings.Contains(err.Error(), "missing.sock") {
		t.Fatalf("err = %v, want an error naming the socket", err)
	}
}
