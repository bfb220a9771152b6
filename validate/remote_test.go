package validate

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rollout-sh/rollout/internal/localrun"
	"github.com/rollout-sh/rollout/plan"
	"github.com/rollout-sh/rollout/rollout/event"
)

// What a validator and the check print goes to the context's remote sink
// (the run journals it as remote_output): per file, with the command as it
// ran and its exit status.
func TestStageAndCheckReportRemoteOutput(t *testing.T) {
	var s sink
	ctx := event.WithRemoteSink(context.Background(), event.RemoteEmitter(s.emit, "web1", 2))
	dest := filepath.Join(t.TempDir(), "app.conf")
	if _, err, invalid := (Remote{}).Stage(ctx, localrun.Runner{}, []plan.Rendered{appConf(dest, "colour = blue\n")}, "stage-r1", false); err != nil || invalid == nil {
		t.Fatalf("err %v invalid %v, want a rejection", err, invalid)
	}
	if err := (Remote{}).Check(ctx, localrun.Runner{}, "echo all good; echo warn >&2"); err != nil {
		t.Fatal(err)
	}
	if len(s.ev) != 2 {
		t.Fatalf("events %+v, want one remote_output for the validator and one for the check", s.ev)
	}
	v, c := s.ev[0], s.ev[1]
	staged := StagedPath(dest, "stage-r1")
	if v.Event != event.RemoteOutput || v.Host != "web1" || v.Batch != 2 || v.Phase != event.PhaseValidate || v.Status != event.StatusFailed ||
		v.Message != `file "app.conf"` || v.Remote.ExitStatus != 3 || !strings.Contains(v.Remote.Command, staged) ||
		v.Remote.Output != staged+`:6: unknown key "colour"` {
		t.Errorf("validator: %+v %+v", v, v.Remote)
	}
	if c.Phase != event.PhaseCheck || c.Status != event.StatusOK || c.Remote.Command != "echo all good; echo warn >&2" ||
		c.Remote.ExitStatus != 0 || c.Remote.Output != "all good\nwarn" {
		t.Errorf("check: %+v %+v", c, c.Remote)
	}
}

// Preflight reports each host's validator output under that host, noted
// as preflight and outside any batch.
func TestPreflightReportsRemoteOutputPerHost(t *testing.T) {
	var hosts []Host
	for _, n := range []string{"web1", "web2"} {
		hosts = append(hosts, Host{Name: n, Conn: localrun.Runner{}, Files: []plan.Rendered{appConf(filepath.Join(t.TempDir(), "app.conf"), "version = 2\n")}})
	}
	var s sink
	if _, err := (Remote{}).Preflight(context.Background(), hosts, "preflight-r1", 2, s.emit); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, e := range s.ev {
		if e.Event == event.RemoteOutput {
			if e.Batch != 0 || e.Message != `file "app.conf" (preflight)` || e.Remote.ExitStatus != 0 || e.Status != event.StatusOK {
				t.Errorf("preflight remote_output %+v %+v", e, e.Remote)
			}
			seen[e.Host] = true
		}
	}
	if !seen["web1"] || !seen["web2"] {
		t.Errorf("remote_output for %v, want web1 and web2", seen)
	}
}
