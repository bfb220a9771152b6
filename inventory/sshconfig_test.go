package inventory

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const testSSHConfig = `Host bastion
    HostName bastion.example.net
    User jump
    Port 2201
    IdentityFile ~/.ssh/bastion_key

Host web*.internal !web9.internal
    User webops
    IdentityFile %d/.ssh/%r@%h
    ProxyJump bastion

Host alias-db
    HostName %h.db.example.com
    Port 2022

Host direct
    ProxyJump none

Host *
    User fallback
    Port 2222
    IdentityFile ~/.ssh/id_default
`

func loadTestSSHConfig(t *testing.T, src string) *SSHConfig {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := LoadSSHConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	c.home, c.localUser = "/home/me", "me"
	return c
}

func TestSSHConfigEndpoint(t *testing.T) {
	c := loadTestSSHConfig(t, testSSHConfig)
	tests := []struct {
		name string
		host Host
		want Endpoint
	}{
		{
			name: "pattern, Host * defaults, tokens, ProxyJump",
			host: Host{Name: "web1", Address: "web1.internal"},
			want: Endpoint{Alias: "web1.internal", Address: "web1.internal", Port: 2222, User: "webops",
				IdentityFiles: []string{"/home/me/.ssh/webops@web1.internal", "/home/me/.ssh/id_default"}, ProxyJump: "bastion"},
		},
		{
			name: "negated pattern",
			host: Host{Name: "web9.internal", Address: "web9.internal"},
			want: Endpoint{Alias: "web9.internal", Address: "web9.internal", Port: 2222, User: "fallback",
				IdentityFiles: []string{"/home/me/.ssh/id_default"}},
		},
		{
			name: "inventory port, user and key win",
			host: Host{Name: "web2", Address: "web2.internal", Port: 22, User: "deploy", KeyFile: "/keys/deploy"},
			want: Endpoint{Alias: "web2.internal", Address: "web2.internal", Port: 22, User: "deploy",
				IdentityFiles: []string{"/keys/deploy", "/home/me/.ssh/deploy@web2.internal", "/home/me/.ssh/id_default"}, ProxyJump: "bastion"},
		},
		{
			name: "HostName with %h",
			host: Host{Name: "alias-db", Address: "alias-db"},
			want: Endpoint{Alias: "alias-db", Address: "alias-db.db.example.com", Port: 2022, User: "fallback",
				IdentityFiles: []string{"/home/me/.ssh/id_default"}},
		},
		{
			name: "matches ansible_host, not the inventory name",
			host: Host{Name: "bastion-inv", Address: "bastion"},
			want: Endpoint{Alias: "bastion", Address: "bastion.example.net", Port: 2201, User: "jump",
				IdentityFiles: []string{"/home/me/.ssh/bastion_key", "/home/me/.ssh/id_default"}},
		},
		{
			name: "inventory name is not matched when ansible_host is set",
			host: Host{Name: "bastion", Address: "10.0.0.9"},
			want: Endpoint{Alias: "10.0.0.9", Address: "10.0.0.9", Port: 2222, User: "fallback",
				IdentityFiles: []string{"/home/me/.ssh/id_default"}},
		},
		{
			name: "host matching is case-insensitive like ssh",
			host: Host{Name: "BASTION", Address: "BASTION"},
			want: Endpoint{Alias: "BASTION", Address: "bastion.example.net", Port: 2201, User: "jump",
				IdentityFiles: []string{"/home/me/.ssh/bastion_key", "/home/me/.ssh/id_default"}},
		},
		{
			name: "ProxyJump none",
			host: Host{Name: "direct", Address: "direct"},
			want: Endpoint{Alias: "direct", Address: "direct", Port: 2222, User: "fallback",
				IdentityFiles: []string{"/home/me/.ssh/id_default"}},
		},
		{
			name: "empty Address falls back to the name",
			host: Host{Name: "alias-db"},
			want: Endpoint{Alias: "alias-db", Address: "alias-db.db.example.com", Port: 2022, User: "fallback",
				IdentityFiles: []string{"/home/me/.ssh/id_default"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := c.Endpoint(&tt.host)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestSSHConfigMissingFile(t *testing.T) {
	c, err := LoadSSHConfig(filepath.Join(t.TempDir(), "nope"))
	if err != nil {
		t.Fatal(err)
	}
	c.localUser = "me"
	got := c.Endpoint(&Host{Name: "web1", Address: "10.0.0.1"})
	want := Endpoint{Alias: "10.0.0.1", Address: "10.0.0.1", Port: 22, User: "me"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestSSHConfigParseError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config")
	if err := os.WriteFile(path, []byte("Match exec \"true\"\n  User x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadSSHConfig(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("err = %v, want a parse error naming the file", err)
	}
}

func TestResolveJump(t *testing.T) {
	c := loadTestSSHConfig(t, testSSHConfig)
	bastion := Endpoint{Alias: "bastion", Address: "bastion.example.net", Port: 2201, User: "jump",
		IdentityFiles: []string{"/home/me/.ssh/bastion_key", "/home/me/.ssh/id_default"}}
	tests := []struct {
		spec    string
		want    []Endpoint
		wantErr string
	}{
		{spec: "", want: nil},
		{spec: "none", want: nil},
		{spec: "bastion", want: []Endpoint{bastion}},
		{spec: "admin@bastion:2300", want: []Endpoint{{Alias: "bastion", Address: "bastion.example.net", Port: 2300, User: "admin",
			IdentityFiles: []string{"/home/me/.ssh/bastion_key", "/home/me/.ssh/id_default"}}}},
		{spec: "web1.internal", want: []Endpoint{{Alias: "web1.internal", Address: "web1.internal", Port: 2222, User: "webops",
			IdentityFiles: []string{"/home/me/.ssh/webops@web1.internal", "/home/me/.ssh/id_default"}, ProxyJump: "bastion"}}},
		{spec: "bastion, web1.internal", want: []Endpoint{bastion, {Alias: "web1.internal", Address: "web1.internal", Port: 2222, User: "webops",
			IdentityFiles: []string{"/home/me/.ssh/webops@web1.internal", "/home/me/.ssh/id_default"}}}},
		{spec: "ssh://u@[::1]:2200", want: []Endpoint{{Alias: "::1", Address: "::1", Port: 2200, User: "u",
			IdentityFiles: []string{"/home/me/.ssh/id_default"}}}},
		{spec: "[::1]", want: []Endpoint{{Alias: "::1", Address: "::1", Port: 2222, User: "fallback",
			IdentityFiles: []string{"/home/me/.ssh/id_default"}}}},
		{spec: "a@b@host", want: []Endpoint{{Alias: "host", Address: "host", Port: 2222, User: "a@b",
			IdentityFiles: []string{"/home/me/.ssh/id_default"}}}},
		{spec: "@host", wantErr: "user name"},
		{spec: "host:abc", wantErr: "port"},
		{spec: "host:0", wantErr: "port"},
		{spec: "a,,b", wantErr: "empty hop"},
		{spec: "user@", wantErr: "host name"},
		{spec: "[::1", wantErr: "[address]"},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			got, err := c.ResolveJump(tt.spec)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestInventoryThroughSSHConfig(t *testing.T) {
	c := loadTestSSHConfig(t, testSSHConfig)
	inv := mustINI(t, "[web]\nweb1 ansible_host=web1.internal\nweb2 ansible_host=web2.internal ansible_port=22 ansible_user=deploy\n")
	tests := []struct {
		host       string
		port       int
		user, jump string
	}{
		{"web1", 2222, "webops", "bastion"},
		{"web2", 22, "deploy", "bastion"},
	}
	for _, tt := range tests {
		ep := c.Endpoint(inv.Host(tt.host))
		if ep.Port != tt.port || ep.User != tt.user || ep.ProxyJump != tt.jump {
			t.Errorf("%s: %+v", tt.host, ep)
		}
	}
}
