package drain

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }
func (c *fakeClock) sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.t = c.t.Add(d)
	return nil
}

// readings returns its values in turn, then the last one forever.
type readings struct {
	vals []int
	err  error
	i    int
}

func (r *readings) Sessions(context.Context) (int, error) {
	if r.err != nil && r.i == len(r.vals) {
		return 0, r.err
	}
	v := r.vals[min(r.i, len(r.vals)-1)]
	r.i++
	return v, nil
}

func TestWaitZero(t *testing.T) {
	boom := errors.New("haproxy lb1: connection refused")
	tests := []struct {
		name     string
		vals     []int
		err      error
		timeout  time.Duration
		wantSeen []int
		wantErr  error
		wantMsg  string
	}{
		{name: "already zero", vals: []int{0}, timeout: time.Minute, wantSeen: []int{0}},
		{name: "drains", vals: []int{5, 3, 1, 0}, timeout: time.Minute, wantSeen: []int{5, 3, 1, 0}},
		// interval 1s, timeout 3s: readings at 0s 1s 2s 3s, then give up.
		{name: "timeout", vals: []int{9, 8, 7, 7, 7, 7}, timeout: 3 * time.Second, wantSeen: []int{9, 8, 7, 7}, wantErr: ErrDrainTimeout, wantMsg: "7 sessions still open after 3s"},
		{name: "timeout in minutes", vals: []int{2}, timeout: 2 * time.Minute, wantErr: ErrDrainTimeout, wantMsg: "2 sessions still open after 2m"},
		{name: "lb error", vals: []int{4}, err: boom, timeout: time.Minute, wantSeen: []int{4}, wantErr: boom},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := &fakeClock{t: time.Unix(1000, 0)}
			var seen []int
			err := WaitZero(context.Background(), &readings{vals: tt.vals, err: tt.err}, tt.timeout, time.Second, clk.now, clk.sleep, func(n int) { seen = append(seen, n) })
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if tt.wantMsg != "" && err.Error() != tt.wantMsg {
				t.Errorf("message = %q, want %q", err, tt.wantMsg)
			}
			if tt.wantSeen != nil && !slices.Equal(seen, tt.wantSeen) {
				t.Errorf("progress saw %v, want %v", seen, tt.wantSeen)
			}
			if tt.wantErr == ErrDrainTimeout && clk.t.Sub(time.Unix(1000, 0)) != tt.timeout {
				t.Errorf("waited %s of fake time, want exactly the timeout %s", clk.t.Sub(time.Unix(1000, 0)), tt.timeout)
			}
		})
	}
}

func TestWaitZeroCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	clk := &fakeClock{t: time.Unix(0, 0)}
	err := WaitZero(ctx, &readings{vals: []int{3}}, time.Minute, time.Second, clk.now, clk.sleep, nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}
