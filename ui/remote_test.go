package ui

import (
	"bytes"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/rollout-sh/rollout/rollout/event"
)

// What the restart and the validators printed on a host is shown with -v
// only, prefixed by the host; without -v, and in the TUI's log, not at all.
func TestRemoteOutputOnlyWithVerbose(t *testing.T) {
	events := newScenario().events
	plain := func(verbose bool) string {
		var buf bytes.Buffer
		p := NewPlain(&buf, PlainOptions{Verbose: verbose})
		for _, e := range events {
			p.Emit(e)
		}
		return buf.String()
	}
	v := plain(true)
	for _, want := range []string{
		"web1             validate   ok       file \"app.conf\" (preflight)  `appd -check -config",
		"\n    web1 | config ok: 3 keys\n",
		"web1   [batch 1] restart    ok       `systemctl restart appd`  exit 0  no output\n",
	} {
		if !strings.Contains(v, want) {
			t.Errorf("-v lacks %q:\n%s", want, v)
		}
	}
	if q := plain(false); strings.Contains(q, "config ok") || strings.Contains(q, "`systemctl restart appd`") {
		t.Errorf("without -v the remote output is shown:\n%s", q)
	}
	var m tea.Model = NewModel(nil, fixedNow)
	for _, e := range events {
		m, _ = m.Update(e)
	}
	if log := strings.Join(m.(Model).log, "\n"); strings.Contains(log, "config ok") || strings.Contains(log, "`systemctl") {
		t.Errorf("the TUI log shows remote output:\n%s", log)
	}
}

func TestRemoteOutputLinesSayWhatWasLeftOut(t *testing.T) {
	e := event.Event{Time: t0, Event: event.RemoteOutput, Host: "web2", Batch: 2, Phase: event.PhaseRestart, Status: event.StatusFailed,
		Remote: event.NewRemote("restart.sh", 3, strings.Repeat("noise\n", 30)+"fatal: port in use\n")}
	got := strings.Join(newFormatter().format(e, nil), "\n")
	for _, want := range []string{"restart    failed   `restart.sh`  exit 3", "    web2 | … (66 bytes before these lines left out)", "    web2 | fatal: port in use"} {
		if !strings.Contains(got, want) {
			t.Errorf("lacks %q:\n%s", want, got)
		}
	}
	e.Remote = &event.Remote{Command: "restart.sh", ExitStatus: event.RemoteExitUnknown}
	if got := newFormatter().format(e, nil)[0]; !strings.HasSuffix(got, "`restart.sh`  did not finish  no output") {
		t.Errorf("unfinished command: %q", got)
	}
}

// docs/json-events.md's table of `remote` keys is event.Remote's.
func TestJSONRemoteSchemaMatchesDocs(t *testing.T) {
	doc, err := os.ReadFile("../docs/json-events.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(doc), "### `remote_output`")
	if !ok {
		t.Fatal("docs/json-events.md has no remote_output section")
	}
	sec, _, _ = strings.Cut(sec, "\n### ")
	var documented []string
	for _, m := range regexp.MustCompile("(?m)^\\| `([a-z_]+)` \\|").FindAllStringSubmatch(sec, -1) {
		documented = append(documented, m[1])
	}
	var fields []string
	rt := reflect.TypeOf(event.Remote{})
	for i := 0; i < rt.NumField(); i++ {
		fields = append(fields, strings.Split(rt.Field(i).Tag.Get("json"), ",")[0])
	}
	sort.Strings(documented)
	sort.Strings(fields)
	if strings.Join(documented, " ") != strings.Join(fields, " ") {
		t.Errorf("the docs list remote keys %q, event.Remote has %q", documented, fields)
	}
}
