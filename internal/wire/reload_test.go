package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/rollout-sh/rollout/drain"
	"github.com/rollout-sh/rollout/rollout/event"
	"github.com/rollout-sh/rollout/ui"
)

// A reload a runtime API client saw reaches the run's event stream as
// lb_reload, naming the hosts re-applied, failed when one could not be;
// nothing is emitted outside a run; its keys are the documented ones.
func TestReloadBecomesAnLBReloadEvent(t *testing.T) {
	w := &Wiring{}
	var got []event.Event
	w.reloaded(drain.Reload{Endpoint: "unix:/x"}) // no run: dropped
	w.setNotice(func(e event.Event) { got = append(got, e) })
	r := drain.Reload{Endpoint: "unix:/x", From: drain.Process{Pid: 10}, To: drain.Process{Pid: 12}, Servers: []drain.Reapplied{
		{Host: "web2", Backend: "web", Server: "web2", State: "maint", Weight: -1},
		{Host: "web3", Backend: "web", Server: "web3", State: "ready", Weight: 50, Err: errors.New("No such server.")},
	}}
	w.reloaded(r)
	w.setNotice(nil)
	w.reloaded(r)
	if len(got) != 1 {
		t.Fatalf("%d events, want 1: %+v", len(got), got)
	}
	e := got[0]
	if e.Event != event.LBReload || e.Status != event.StatusFailed || strings.Join(e.Hosts, ",") != "web2,web3" {
		t.Errorf("event %+v", e)
	}
	for _, want := range []string{"pid 10 → pid 12", "re-applied web/web2 maint", "could not re-apply web/web3 ready weight 50%"} {
		if !strings.Contains(e.Message, want) {
			t.Errorf("message %q lacks %q", e.Message, want)
		}
	}
	var buf bytes.Buffer
	ui.NewJSON(&buf).Emit(e)
	var m map[string]json.RawMessage
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range m {
		if k != "time" && k != "run" && k != "event" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	doc, err := os.ReadFile("../../docs/json-events.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `lb_reload` +\\|(.*)\\|$").FindSubmatch(doc)
	if row == nil {
		t.Fatal("docs/json-events.md's field index has no lb_reload row")
	}
	var documented []string
	for _, f := range strings.Fields(string(row[1])) {
		documented = append(documented, strings.Trim(f, "`"))
	}
	sort.Strings(documented)
	if strings.Join(keys, " ") != strings.Join(documented, " ") {
		t.Errorf("lb_reload keys %v, documented %v", keys, documented)
	}
}
