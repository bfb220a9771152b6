package wire

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rollout-sh/rollout/analysis"
	"github.com/rollout-sh/rollout/drain"
	"github.com/rollout-sh/rollout/internal/localrun"
)

type fakeStat struct {
	ep   string
	rows []drain.Stat
	err  error
}

func (f fakeStat) Endpoint() string { return f.ep }
func (f fakeStat) Stat(context.Context, string) ([]drain.Stat, error) {
	return f.rows, f.err
}

// One LB of a pair failing is reported in Unread; the other is read.
func TestReadStats(t *testing.T) {
	row := func(server, req, e5 string) drain.Stat {
		return drain.Stat{Server: server, Fields: map[string]string{"svname": server, "req_tot": req, "hrsp_2xx": req, "hrsp_5xx": e5, "rtime": "3"}}
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := ReadStats(context.Background(), []StatReader{
		fakeStat{ep: "unix:/lb1.sock", rows: []drain.Stat{row("web1", "100", "2"), row("web2", "90", "0")}},
		fakeStat{ep: "unix:/lb2.sock", err: errors.New("connection refused")},
		fakeStat{ep: "unix:/lb3.sock", rows: []drain.Stat{row("web1", "x", "0")}},
	}, "web", func() time.Time { return now })
	if got := s.LBs["unix:/lb1.sock"]["web1"]; got.Requests != 100 || got.Errors != 2 || got.RTimeKind != analysis.RTimeAvgHAProxy {
		t.Errorf("lb1 web1 %+v", got)
	}
	if !strings.Contains(s.Unread["unix:/lb2.sock"], "connection refused") || !strings.Contains(s.Unread["unix:/lb3.sock"], "req_tot") {
		t.Errorf("unread %v", s.Unread)
	}
	if len(s.LBs) != 1 || !s.At.Equal(now) {
		t.Errorf("snapshot %+v", s)
	}
}

// The command source reads the counters a command prints, and reports a
// failing or garbled command as unread, with its words.
func TestCommandSource(t *testing.T) {
	ctx := context.Background()
	s := (&commandSource{run: localrun.Runner{}, cmd: "printf 'web1 10 1 250\\nweb2 20 0\\n'"}).Read(ctx)
	if c := s.LBs[analysis.CommandLB]["web1"]; c.Requests != 10 || c.Errors != 1 || c.RTime != 250 {
		t.Errorf("web1 %+v (unread %v)", c, s.Unread)
	}
	s = (&commandSource{run: localrun.Runner{}, cmd: "echo oops >&2; exit 3"}).Read(ctx)
	if !strings.Contains(s.Unread[analysis.CommandLB], "oops") {
		t.Errorf("failing command: %v", s.Unread)
	}
	s = (&commandSource{run: localrun.Runner{}, cmd: "echo hello"}).Read(ctx)
	if !strings.Contains(s.Unread[analysis.CommandLB], "printed something else") {
		t.Errorf("garbled output: %v", s.Unread)
	}
}
