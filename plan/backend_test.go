package plan

import (
	"strings"
	"testing"
)

func TestParseBackend(t *testing.T) {
	p, diags := Parse("/srv/plans/rollout.hcl", []byte(minimal(`repo = "/r"
  backend "etcd" {
    endpoints = ["https://etcd1:2379", "http://127.0.0.1:2379"]
    prefix    = "/teams/${plan.name}"
    tls {
      ca_file   = "ca.pem"
      cert_file = "/etc/c.pem"
      key_file  = "/etc/k.pem"
    }
  }`)))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	b := p.Backend
	if b == nil || b.Kind != "etcd" || len(b.Endpoints) != 2 || b.Prefix != "/teams/web/" || b.CAFile != "/srv/plans/ca.pem" || b.CertFile != "/etc/c.pem" || b.KeyFile != "/etc/k.pem" {
		t.Fatalf("backend = %+v", b)
	}
	p, diags = Parse("/srv/plans/rollout.hcl", []byte(minimal(`repo = "/r"`)))
	if diags.HasErrors() || p.Backend != nil {
		t.Fatalf("no block: %+v %v", p.Backend, diags)
	}
	p, diags = Parse("/srv/plans/rollout.hcl", []byte(minimal("repo = \"/r\"\n  backend \"local\" {}")))
	if diags.HasErrors() || p.Backend == nil || p.Backend.Kind != "local" {
		t.Fatalf("local: %+v %v", p.Backend, diags)
	}
}

func TestParseBackendDiagnostics(t *testing.T) {
	tests := []struct {
		name, extra, at, summary, detail string
	}{
		{"unknown kind", "backend \"consul\" {}", `"consul"`, "Unknown backend kind", `"local"`},
		{"no endpoints", "backend \"etcd\" {}", `backend "etcd"`, "Missing endpoints", "endpoints = ["},
		{"bad endpoint", "backend \"etcd\" { endpoints = [\"etcd1:2379\"] }", `["etcd1`, "Invalid etcd endpoint", "http(s)://HOST:PORT"},
		{"relative prefix", "backend \"etcd\" {\n endpoints = [\"http://a:1\"]\n prefix = \"rollout\"\n}", `"rollout"`, "Invalid prefix", `start with "/"`},
		{"cert without key", "backend \"etcd\" {\n endpoints = [\"http://a:1\"]\n tls { cert_file = \"c\" }\n}", `tls`, "Incomplete client certificate", "both cert_file and key_file"},
		{"credentials in the plan", "backend \"etcd\" {\n endpoints = [\"http://a:1\"]\n password = \"x\"\n}", `password`, "Unsupported argument", `"password" is not expected`},
		{"duplicate", "backend \"local\" {}\nbackend \"local\" {}", "backend \"local\" {}\n  inventory", "Duplicate backend block", "the first is at"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := minimal("repo = \"/r\"\n" + tt.extra)
			_, diags := Parse("rollout.hcl", []byte(src))
			for _, d := range diags {
				if d.Summary == tt.summary && strings.Contains(d.Detail, tt.detail) {
					want := "rollout.hcl:" + posOf(t, src, tt.at)
					if diagPos(d) != want {
						t.Errorf("at %s, want %s", diagPos(d), want)
					}
					return
				}
			}
			t.Fatalf("no %q diagnostic with %q in:\n%s", tt.summary, tt.detail, diagsText(diags))
		})
	}
}
