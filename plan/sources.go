package plan

import (
	"bytes"
	"sync"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/rollout-sh/rollout/internal/jinja"
)

// sourceCache keeps what Render learns from a file's bytes that does not
// depend on the host — the line of its first Jinja2 marker and its parsed
// HCL template — so a fleet of 10,000 hosts parses each template once,
// not once per host. Entries are keyed by SOURCE@SHORTREV and checked
// against the bytes, so different content under one name is never mixed up.
type sourceCache struct {
	mu sync.Mutex
	m  map[string]*parsedSource
}

type parsedSource struct {
	src     []byte
	markers int // jinja.HasMarkers(src)

	parseOnce sync.Once
	expr      hclsyntax.Expression
	diags     hcl.Diagnostics
}

// source returns the cache entry for name holding src. A plan built
// without Parse (p or its impl nil) gets a fresh, unshared entry.
func (p *Plan) source(name string, src []byte) *parsedSource {
	if p == nil || p.impl == nil {
		return &parsedSource{src: src, markers: jinja.HasMarkers(src)}
	}
	c := &p.impl.sources
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[name]; ok && bytes.Equal(e.src, src) {
		return e
	}
	e := &parsedSource{src: src, markers: jinja.HasMarkers(src)}
	if c.m == nil {
		c.m = map[string]*parsedSource{}
	}
	c.m[name] = e
	return e
}
