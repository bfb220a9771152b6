package health

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rollout-sh/rollout/internal/transport"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// fakeClock never sleeps: Sleep moves time on.
type fakeClock struct {
	t      time.Time
	sleeps []time.Duration
}

func (c *fakeClock) Now() time.Time { return c.t }
func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.sleeps = append(c.sleeps, d)
	c.t = c.t.Add(d)
	return nil
}

// script answers round i with results[i] ('.' pass, 'x' fail), the last
// one forever; it records at what fake time it ran.
type script struct {
	clock   *fakeClock
	results string
	calls   []time.Duration
}

func (s *script) Probe(context.Context) error {
	i := min(len(s.calls), len(s.results)-1)
	s.calls = append(s.calls, s.clock.t.Sub(t0))
	if s.results[i] == 'x' {
		return fmt.Errorf("GET http://web1:8080/healthz: status 503, want 200")
	}
	return nil
}

func TestGateWindow(t *testing.T) {
	tests := []struct {
		name                 string
		results              string
		interval, window, dl time.Duration
		wantErr              error
		wantMsg              string
		wantRounds           int
		wantElapsed          []time.Duration // Progress.Elapsed per round
		wantTook             time.Duration   // fake time from start to the end
	}{
		{
			name: "exactly enough passing rounds", results: ".",
			interval: time.Second, window: 3 * time.Second, dl: time.Minute,
			wantRounds: 4, wantElapsed: secs(0, 1, 2, 3), wantTook: 3 * time.Second,
		},
		{
			name: "window zero: one round", results: ".",
			interval: time.Second, window: 0, dl: time.Minute,
			wantRounds: 1, wantElapsed: secs(0),
		},
		{
			name: "a failure restarts the window", results: "x..x....",
			interval: time.Second, window: 3 * time.Second, dl: time.Minute,
			wantRounds: 8, wantElapsed: secs(0, 0, 1, 0, 0, 1, 2, 3), wantTook: 7 * time.Second,
		},
		{
			name: "deadline", results: "x",
			interval: time.Second, window: 3 * time.Second, dl: 5 * time.Second,
			wantErr: ErrDeadline, wantMsg: "health http: not healthy for 3s within 5s: last probe: GET http://web1:8080/healthz: status 503, want 200",
			wantRounds: 6, wantTook: 5 * time.Second,
		},
		{
			name: "deadline mid-streak", results: "xxx.",
			interval: time.Second, window: 3 * time.Second, dl: 5 * time.Second,
			wantErr: ErrDeadline, wantMsg: "health http: not healthy for 3s within 5s: healthy for the last 2s only; last probe failure: GET http://web1:8080/healthz: status 503, want 200",
			wantRounds: 6, wantElapsed: secs(0, 0, 0, 0, 1, 2),
		},
		{
			name: "last round lands on the deadline", results: "xx.",
			interval: 2 * time.Second, window: 3 * time.Second, dl: 7 * time.Second,
			// rounds at 0 2 4 6 7: passing from 4, the window is met at 7.
			wantRounds: 5, wantElapsed: secs(0, 0, 0, 2, 3), wantTook: 7 * time.Second,
		},
		{
			name: "window longer than the deadline allows", results: ".",
			interval: time.Second, window: 2 * time.Minute, dl: 10 * time.Second,
			wantErr: ErrDeadline, wantMsg: "not healthy for 2m within 10s: healthy for the last 10s only", wantRounds: 11,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := &fakeClock{t: t0}
			p := &script{clock: clk, results: tt.results}
			g := &Gate{Name: "http", Probes: []Probe{p}, Interval: tt.interval, HealthyFor: tt.window, Deadline: tt.dl, Clock: clk}
			var seen []Progress
			err := g.Wait(context.Background(), func(pr Progress) { seen = append(seen, pr) })
			if tt.wantErr == nil && err != nil {
				t.Fatalf("err = %v", err)
			}
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				var f *Failure
				if !errors.As(err, &f) {
					t.Fatalf("err %T is not a *Failure", err)
				}
				if !strings.Contains(err.Error(), tt.wantMsg) {
					t.Errorf("message = %q, want it to contain %q", err, tt.wantMsg)
				}
			}
			if len(p.calls) != tt.wantRounds || len(seen) != tt.wantRounds {
				t.Errorf("rounds = %d (progress %d), want %d; probed at %v", len(p.calls), len(seen), tt.wantRounds, p.calls)
			}
			if tt.wantElapsed != nil {
				var got []time.Duration
				for _, s := range seen {
					got = append(got, s.Elapsed)
				}
				if !slices.Equal(got, tt.wantElapsed) {
					t.Errorf("progress elapsed = %v, want %v", got, tt.wantElapsed)
				}
			}
			for i, s := range seen {
				if s.Probes != i+1 || s.Window != tt.window {
					t.Errorf("progress[%d] = %+v", i, s)
				}
				if (s.LastErr != nil) != (p.results[min(i, len(p.results)-1)] == 'x') {
					t.Errorf("progress[%d].LastErr = %v for result %q", i, s.LastErr, p.results[min(i, len(p.results)-1)])
				}
			}
			if tt.wantTook != 0 && clk.t.Sub(t0) != tt.wantTook {
				t.Errorf("took %s of fake time, want %s", clk.t.Sub(t0), tt.wantTook)
			}
		})
	}
}

func secs(s ...int) []time.Duration {
	out := make([]time.Duration, len(s))
	for i, v := range s {
		out[i] = time.Duration(v) * time.Second
	}
	return out
}

// cmdRunner answers a command by calling fn with how many times that
// command has run before.
type cmdRunner struct {
	fn    func(cmd string, n int) (stdout, stderr string, exit int)
	count map[string]int
	ran   []string
}

func (r *cmdRunner) Run(_ context.Context, cmd string, _ io.Reader, stdout, stderr io.Writer) error {
	if r.count == nil {
		r.count = map[string]int{}
	}
	r.ran = append(r.ran, cmd)
	o, e, code := r.fn(cmd, r.count[cmd])
	r.count[cmd]++
	io.WriteString(stdout, o)
	io.WriteString(stderr, e)
	if code != 0 {
		return exitError(code)
	}
	return nil
}

type exitError int

func (e exitError) Error() string   { return fmt.Sprintf("exit status %d", int(e)) }
func (e exitError) ExitStatus() int { return int(e) }

// seq returns outputs[n], the last one forever.
func seq(outputs ...string) func(string, int) (string, string, int) {
	return func(_ string, n int) (string, string, int) {
		return outputs[min(n, len(outputs)-1)], "", 0
	}
}

func TestGateFlapGuard(t *testing.T) {
	tests := []struct {
		name       string
		guard      func(r Runner) Guard
		outputs    []string // guard command output per call: baseline first
		wantErr    error
		wantMsg    string
		wantRounds int
	}{
		{
			name: "pid file stable", guard: func(r Runner) Guard { return PidFile(r, "/run/appd.pid") },
			outputs: []string{"4121\nrunning\n"}, wantRounds: 4,
		},
		{
			name: "pid file changes", guard: func(r Runner) Guard { return PidFile(r, "/run/appd.pid") },
			outputs: []string{"4121\nrunning\n", "4121\nrunning\n", "4121\nrunning\n", "4188\nrunning\n"},
			wantErr: ErrFlapping, wantMsg: "health http: flapping: pid 4121 → 4188 during the 3s window", wantRounds: 3,
		},
		{
			name: "pid dies", guard: func(r Runner) Guard { return PidFile(r, "/run/appd.pid") },
			outputs: []string{"4121\nrunning\n", "4121\nstopped\n"},
			wantErr: ErrFlapping, wantMsg: "flapping: pid 4121 is not running during the 3s window", wantRounds: 1,
		},
		{
			name: "systemd restart counter", guard: func(r Runner) Guard { return SystemdUnit(r, "appd") },
			outputs: []string{"MainPID=4121\nNRestarts=0\n", "MainPID=4121\nNRestarts=0\n", "MainPID=4300\nNRestarts=2\n"},
			wantErr: ErrFlapping, wantMsg: "flapping: unit appd restarted 2 times during the 3s window", wantRounds: 2,
		},
		{
			name: "systemd pid change without a counted restart", guard: func(r Runner) Guard { return SystemdUnit(r, "appd") },
			outputs: []string{"NRestarts=0\nMainPID=4121\n", "NRestarts=0\nMainPID=4188\n"},
			wantErr: ErrFlapping, wantMsg: "flapping: unit appd: pid 4121 → 4188 during", wantRounds: 1,
		},
		{
			name: "systemd stable", guard: func(r Runner) Guard { return SystemdUnit(r, "appd") },
			outputs: []string{"MainPID=4121\nNRestarts=3\n"}, wantRounds: 4,
		},
		{
			name: "baseline waits for the pid file", guard: func(r Runner) Guard { return PidFile(r, "/run/appd.pid") },
			outputs: []string{"0\nunknown\n", "4121\nrunning\n"}, wantRounds: 5, // round 1 has no baseline: the window starts at round 2
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := &fakeClock{t: t0}
			r := &cmdRunner{fn: seq(tt.outputs...)}
			g := &Gate{Name: "http", Probes: []Probe{&script{clock: clk, results: "."}}, Guard: tt.guard(r),
				Interval: time.Second, HealthyFor: 3 * time.Second, Deadline: time.Minute, Clock: clk}
			rounds := 0
			err := g.Wait(context.Background(), func(Progress) { rounds++ })
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("message = %q, want it to contain %q", err, tt.wantMsg)
			}
			// A failed guard ends the gate in the round it is seen.
			if tt.wantErr != nil && rounds != tt.wantRounds-1 {
				t.Errorf("progress reported %d rounds before the failure, want %d", rounds, tt.wantRounds-1)
			}
			if tt.wantErr == nil && rounds != tt.wantRounds {
				t.Errorf("rounds = %d, want %d", rounds, tt.wantRounds)
			}
		})
	}
}

func TestGateFlapBeatsProbeFailure(t *testing.T) {
	clk := &fakeClock{t: t0}
	r := &cmdRunner{fn: seq("4121\nrunning\n", "4121\nstopped\n")}
	g := &Gate{Probes: []Probe{&script{clock: clk, results: "x"}}, Guard: PidFile(r, "/run/appd.pid"),
		Interval: time.Second, HealthyFor: 10 * time.Second, Deadline: time.Minute, Clock: clk}
	err := g.Wait(context.Background(), nil)
	if !errors.Is(err, ErrFlapping) || errors.Is(err, ErrDeadline) {
		t.Fatalf("err = %v, want flapping at once, not a wait for the deadline", err)
	}
	if clk.t != t0 {
		t.Errorf("waited %s before failing", clk.t.Sub(t0))
	}
}

func TestGateCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	clk := &fakeClock{t: t0}
	calls := 0
	p := ProbeFunc(func(context.Context) error {
		calls++
		if calls == 2 {
			cancel()
		}
		return errors.New("refused")
	})
	g := &Gate{Probes: []Probe{p}, Interval: time.Second, HealthyFor: time.Second, Deadline: time.Minute, Clock: clk}
	if err := g.Wait(ctx, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestGateAllProbesMustPass(t *testing.T) {
	clk := &fakeClock{t: t0}
	good := &script{clock: clk, results: "."}
	bad := &script{clock: clk, results: "x"}
	g := &Gate{Probes: []Probe{good, bad}, Interval: time.Second, HealthyFor: 0, Deadline: 2 * time.Second, Clock: clk}
	if err := g.Wait(context.Background(), nil); !errors.Is(err, ErrDeadline) {
		t.Fatalf("err = %v, want ErrDeadline while one probe fails", err)
	}
}

func TestRealClockSleepCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := RealClock().Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

// lostRunner answers the first n commands, then the connection is gone.
type lostRunner struct {
	inner Runner
	n     int
}

func (r *lostRunner) Run(ctx context.Context, cmd string, in io.Reader, stdout, stderr io.Writer) error {
	if r.n <= 0 {
		return fmt.Errorf("ssh web1: run %q: %w (EOF)", cmd, transport.ErrLost)
	}
	r.n--
	return r.inner.Run(ctx, cmd, in, stdout, stderr)
}

// Issue 14: a connection lost during the window (sshd killed) is not a
// verdict about the service: neither flapping nor a missed deadline.
func TestGateLostConnectionIsNoVerdict(t *testing.T) {
	for _, tc := range []struct {
		name  string
		guard func(Runner) Guard
		ok    string
	}{
		{"pid file", func(r Runner) Guard { return PidFile(r, "/run/appd.pid") }, "4121\nrunning\n"},
		{"systemd", func(r Runner) Guard { return SystemdUnit(r, "appd") }, "MainPID=4121\nNRestarts=0\n"},
	} {
		for _, answered := range []int{0, 2} { // lost before the baseline, and in the window
			clk := &fakeClock{t: t0}
			r := &lostRunner{inner: &cmdRunner{fn: seq(tc.ok)}, n: answered}
			g := &Gate{Name: "http", Probes: []Probe{&script{clock: clk, results: "."}}, Guard: tc.guard(r),
				Interval: time.Second, HealthyFor: 10 * time.Second, Deadline: time.Minute, Clock: clk}
			err := g.Wait(context.Background(), nil)
			var f *Failure
			if !errors.Is(err, transport.ErrLost) || errors.As(err, &f) || errors.Is(err, ErrFlapping) || errors.Is(err, ErrDeadline) {
				t.Errorf("%s, lost after %d answers: err = %v, want transport.ErrLost and no health verdict", tc.name, answered, err)
			}
			if strings.Contains(fmt.Sprint(err), "flapping") {
				t.Errorf("%s: message %q blames the service", tc.name, err)
			}
		}
	}
}
