package plan

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/rollout-sh/rollout/inventory"
)

// A template is parsed once for the whole fleet, yet each host gets its
// own values and its own name in a diagnostic, and the same name with
// other bytes is parsed anew.
func TestRenderParsesEachTemplateOnce(t *testing.T) {
	p := mustParse(t, minimal(`repo = "/r"`))
	const rev = "9fceb02d0ae598e95dc970b74767f19372d61af8"
	f := FileSpec{Source: "conf/app.conf.tmpl", Template: true}
	src := []byte("port ${host.vars.port}\n")

	var wg sync.WaitGroup
	outs := make([]string, 50)
	for i := range outs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := &inventory.Host{Name: fmt.Sprintf("web%d", i), Vars: map[string]any{"port": int64(8000 + i)}}
			out, diags := p.Render(f, src, h, rev)
			if diags.HasErrors() {
				t.Errorf("web%d: %s", i, diagsText(diags))
			}
			outs[i] = string(out)
		}()
	}
	wg.Wait()
	for i, out := range outs {
		if want := fmt.Sprintf("port %d\n", 8000+i); out != want {
			t.Errorf("web%d got %q, want %q", i, out, want)
		}
	}
	first := p.impl.sources.m["conf/app.conf.tmpl@9fceb02"]
	if first == nil || first.expr == nil {
		t.Fatalf("the parsed template is not kept: %+v", p.impl.sources.m)
	}

	// A host without the variable: its own name in the error.
	_, diags := p.Render(f, src, &inventory.Host{Name: "web99", Vars: map[string]any{}}, rev)
	if !diags.HasErrors() || !strings.Contains(diagsText(diags), `"web99"`) {
		t.Errorf("want an error naming web99, got %s", diagsText(diags))
	}
	if p.impl.sources.m["conf/app.conf.tmpl@9fceb02"] != first {
		t.Error("the same bytes were parsed again")
	}

	// Other bytes under the same name are not served from the cache.
	out, diags := p.Render(f, []byte("other ${host.name}\n"), &inventory.Host{Name: "web1"}, rev)
	if diags.HasErrors() || string(out) != "other web1\n" {
		t.Errorf("got %q %s, want the new template's output", out, diagsText(diags))
	}
}
