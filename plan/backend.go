package plan

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// Backend is the plan's state backend block: where the plan lock and the
// journal live. Nil in Plan when the plan has no backend block (the local
// default). Credentials never live in the plan: they come from the
// environment (ROLLOUT_BACKEND_USERNAME, ROLLOUT_BACKEND_PASSWORD).
type Backend struct {
	Kind      string   // "local" or "etcd"
	Endpoints []string // etcd client URLs, e.g. https://etcd1:2379
	Prefix    string   // key prefix, default "/rollout/"
	CAFile    string   // tls block, absolute paths ("" = not set)
	CertFile  string
	KeyFile   string
	DefRange  hcl.Range
}

// BackendKinds are the backend block labels.
var BackendKinds = []string{"local", "etcd"}

var backendSchemas = map[string]*hcl.BodySchema{
	"local": {},
	"etcd": {
		Attributes: attrs("endpoints", "prefix"),
		Blocks:     []hcl.BlockHeaderSchema{{Type: "tls"}},
	},
}

var tlsSchema = &hcl.BodySchema{Attributes: attrs("ca_file", "cert_file", "key_file")}

// DefaultBackendPrefix is the etcd key prefix when the block sets none.
const DefaultBackendPrefix = "/rollout/"

func (d *decoder) backend(p *Plan, b *hcl.Block) *Backend {
	kind := b.Labels[0]
	schema, ok := backendSchemas[kind]
	if !ok {
		d.errorf(b.LabelRanges[0], "Unknown backend kind",
			`A backend block's label is its kind, "local" (the default: lock and journal in the local state dir) or "etcd" (shared by a team); got %q.`, kind)
		return nil
	}
	content, diags := b.Body.Content(schema)
	d.add(diags)
	be := &Backend{Kind: kind, DefRange: b.DefRange}
	if kind == "local" {
		return be
	}
	ctx := planContext(p.Name)
	a := content.Attributes
	if a["endpoints"] == nil && !misspelled(diags, "endpoints") {
		d.errorf(b.DefRange, "Missing endpoints",
			`backend "etcd" must set endpoints, the client URLs of the etcd members, for example: endpoints = ["https://etcd1:2379", "https://etcd2:2379", "https://etcd3:2379"].`)
	} else if d.planWide(a["endpoints"]) {
		if eps, ok := d.strList(a["endpoints"], ctx); ok {
			if len(eps) == 0 {
				d.errorf(a["endpoints"].Expr.Range(), "Empty endpoints", "endpoints must name at least one etcd client URL, such as \"https://etcd1:2379\".")
			}
			for _, ep := range eps {
				if err := checkEtcdEndpoint(ep); err != nil {
					d.errorf(a["endpoints"].Expr.Range(), "Invalid etcd endpoint", "%v", err)
				}
			}
			be.Endpoints = eps
		}
	}
	be.Prefix = DefaultBackendPrefix
	if s, ok := d.planString(a["prefix"], ctx, `a key prefix such as "/rollout/"`); ok {
		if !strings.HasPrefix(s, "/") {
			d.errorf(a["prefix"].Expr.Range(), "Invalid prefix", "prefix must start with \"/\", like \"/rollout/\"; got %q.", s)
		}
		if !strings.HasSuffix(s, "/") {
			s += "/"
		}
		be.Prefix = s
	}
	for _, tb := range content.Blocks {
		tc, td := tb.Body.Content(tlsSchema)
		d.add(td)
		for _, f := range []struct {
			name string
			dst  *string
		}{{"ca_file", &be.CAFile}, {"cert_file", &be.CertFile}, {"key_file", &be.KeyFile}} {
			if s, ok := d.planString(tc.Attributes[f.name], ctx, "a file path"); ok {
				*f.dst = p.abs(s)
			}
		}
		if (be.CertFile == "") != (be.KeyFile == "") {
			d.errorf(tb.DefRange, "Incomplete client certificate", "tls needs both cert_file and key_file for a client certificate, or neither.")
		}
	}
	return be
}

// checkEtcdEndpoint accepts http:// and https:// URLs with a host and a port.
func checkEtcdEndpoint(ep string) error {
	u, err := url.Parse(ep)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" || u.Port() == "" {
		return fmt.Errorf("%q is not an etcd client URL: want http(s)://HOST:PORT, such as \"https://etcd1:2379\"", ep)
	}
	return nil
}
