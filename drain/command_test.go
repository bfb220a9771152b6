package drain

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

type exitError int

func (e exitError) Error() string   { return fmt.Sprintf("exit status %d", int(e)) }
func (e exitError) ExitStatus() int { return int(e) }

type reply struct {
	stdout, stderr string
	exit           int
	err            error
}

// scriptRunner answers each command from a table and records what ran.
type scriptRunner struct {
	replies map[string]reply
	ran     []string
}

func (r *scriptRunner) Run(_ context.Context, cmd string, _ io.Reader, stdout, stderr io.Writer) error {
	r.ran = append(r.ran, cmd)
	rep, ok := r.replies[cmd]
	if !ok {
		return errors.New("unexpected command " + cmd)
	}
	io.WriteString(stdout, rep.stdout)
	io.WriteString(stderr, rep.stderr)
	if rep.err != nil {
		return rep.err
	}
	if rep.exit != 0 {
		return exitError(rep.exit)
	}
	return nil
}

func TestCommandSessions(t *testing.T) {
	tests := []struct {
		name    string
		rep     reply
		want    int
		wantErr string
	}{
		{name: "number", rep: reply{stdout: "12\n"}, want: 12},
		{name: "zero with blanks", rep: reply{stdout: "  0 \n\n"}, want: 0},
		{name: "words", rep: reply{stdout: "sessions: 3\n"}, wantErr: `sessions web1: command "lbctl sessions web1" printed "sessions: 3", want a number of sessions`},
		{name: "empty", rep: reply{stdout: ""}, wantErr: `printed ""`},
		{name: "negative", rep: reply{stdout: "-1"}, wantErr: `printed "-1"`},
		{name: "exit 2 with stderr", rep: reply{stdout: "partial\n", stderr: "lbctl: connect: refused\n", exit: 2}, wantErr: `sessions web1: command "lbctl sessions web1": exit status 2: lbctl: connect: refused`},
		{name: "exit 1 stdout only", rep: reply{stdout: "line1\nno such pool\n", exit: 1}, wantErr: "exit status 1: no such pool"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &scriptRunner{replies: map[string]reply{"lbctl sessions web1": tt.rep}}
			c := NewCommand("web1", r, "lbctl drain web1", "lbctl undrain web1", "lbctl sessions web1")
			n, err := c.Sessions(context.Background())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if n != tt.want {
				t.Errorf("sessions = %d, want %d", n, tt.want)
			}
		})
	}
}

func TestCommandSteps(t *testing.T) {
	ctx := context.Background()
	r := &scriptRunner{replies: map[string]reply{
		"lbctl drain web1":   {},
		"lbctl undrain web1": {stderr: "lbctl: pool locked\n", exit: 1},
	}}
	c := NewCommand("web1", r, "lbctl drain web1", "lbctl undrain web1", "")
	if err := c.Check(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	n, err := c.Sessions(ctx)
	if err != nil || n != 0 {
		t.Fatalf("sessions = %d, %v; want 0 without a sessions command", n, err)
	}
	for _, f := range []func(context.Context) error{c.Settle, func(ctx context.Context) error { return c.SetWeight(ctx, 10) }} {
		if err := f(ctx); err != nil {
			t.Fatal(err)
		}
	}
	err = c.Undrain(ctx)
	if err == nil || err.Error() != `undrain web1: command "lbctl undrain web1": exit status 1: lbctl: pool locked` {
		t.Fatalf("undrain err = %v", err)
	}
	var es interface{ ExitStatus() int }
	if !errors.As(err, &es) || es.ExitStatus() != 1 {
		t.Errorf("exit status not reachable through the error: %v", err)
	}
	if got := strings.Join(r.ran, "|"); got != "lbctl drain web1|lbctl undrain web1" {
		t.Errorf("ran %q", got)
	}
}

func TestCommandCheckRunsSessions(t *testing.T) {
	r := &scriptRunner{replies: map[string]reply{"lbctl sessions web1": {stdout: "n/a"}}}
	c := NewCommand("web1", r, "d", "u", "lbctl sessions web1")
	if err := c.Check(context.Background()); err == nil || !strings.Contains(err.Error(), "check web1") {
		t.Fatalf("err = %v", err)
	}
}

func TestNone(t *testing.T) {
	ctx := context.Background()
	n := NewNone("single cron host")
	for _, f := range []func(context.Context) error{n.Check, n.Drain, n.Settle, n.Undrain} {
		if err := f(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if s, err := n.Sessions(ctx); s != 0 || err != nil {
		t.Fatalf("sessions %d %v", s, err)
	}
	ok, detail, err := n.Serving(ctx)
	if !ok || err != nil || !strings.Contains(detail, "single cron host") {
		t.Fatalf("serving %v %q %v", ok, detail, err)
	}
}

// Every driver has the method set the engine declares.
var _ interface {
	Check(context.Context) error
	Drain(context.Context) error
	Sessions(context.Context) (int, error)
	Settle(context.Context) error
	Undrain(context.Context) error
	SetWeight(context.Context, int) error
	Serving(context.Context) (bool, string, error)
} = (*HAProxy)(nil)

var _ interface {
	Drain(context.Context) error
	Serving(context.Context) (bool, string, error)
	SetWeight(context.Context, int) error
} = (*Command)(nil)

var _ interface {
	Drain(context.Context) error
	Serving(context.Context) (bool, string, error)
	SetWeight(context.Context, int) error
} = (*None)(nil)
