package drain

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/rollout-sh/rollout/internal/cmdout"
)

// Command drives any load balancer that has a CLI: drain, undrain and
// sessions are shell commands, already rendered and quoted by the plan, run
// through a Runner (on the target host or on the plan's via host; the caller
// decides which).
type Command struct {
	host                              string
	r                                 Runner
	drainCmd, undrainCmd, sessionsCmd string
}

// NewCommand returns a command driver for host. An empty sessionsCmd means
// the LB cannot report sessions: Sessions is always 0.
func NewCommand(host string, r Runner, drainCmd, undrainCmd, sessionsCmd string) *Command {
	return &Command{host: host, r: r, drainCmd: drainCmd, undrainCmd: undrainCmd, sessionsCmd: sessionsCmd}
}

// Check runs the sessions command (read-only) to prove it works; with no
// sessions command there is nothing safe to try.
func (c *Command) Check(ctx context.Context) error {
	if c.sessionsCmd == "" {
		return nil
	}
	if _, err := c.sessions(ctx); err != nil {
		return fmt.Errorf("check %s: %w", c.host, err)
	}
	return nil
}

// Drain runs the drain command.
func (c *Command) Drain(ctx context.Context) error {
	if _, err := c.run(ctx, c.drainCmd); err != nil {
		return fmt.Errorf("drain %s: %w", c.host, err)
	}
	return nil
}

// Undrain runs the undrain command.
func (c *Command) Undrain(ctx context.Context) error {
	if _, err := c.run(ctx, c.undrainCmd); err != nil {
		return fmt.Errorf("undrain %s: %w", c.host, err)
	}
	return nil
}

// Sessions runs the sessions command, which must print one integer.
func (c *Command) Sessions(ctx context.Context) (int, error) {
	if c.sessionsCmd == "" {
		return 0, nil
	}
	n, err := c.sessions(ctx)
	if err != nil {
		return 0, fmt.Errorf("sessions %s: %w", c.host, err)
	}
	return n, nil
}

func (c *Command) sessions(ctx context.Context) (int, error) {
	out, err := c.run(ctx, c.sessionsCmd)
	if err != nil {
		return 0, err
	}
	s := strings.TrimSpace(out)
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("command %q printed %q, want a number of sessions", c.sessionsCmd, cmdout.Clip(s, 200))
	}
	return n, nil
}

// Settle does nothing: a command LB has no maintenance state of its own.
func (*Command) Settle(context.Context) error { return nil }

// SetWeight does nothing: the command drain has no weights.
func (*Command) SetWeight(context.Context, int) error { return nil }

// Serving is true: a command LB cannot say; health gates decide.
func (*Command) Serving(context.Context) (bool, string, error) {
	return true, "not reported by the command drain", nil
}

func (c *Command) run(ctx context.Context, cmd string) (string, error) {
	if cmd == "" {
		return "", errors.New("no command configured")
	}
	var stdout, stderr bytes.Buffer
	if err := c.r.Run(ctx, cmd, nil, &stdout, &stderr); err != nil {
		if line := cmdout.LastLine(stderr.String()); line != "" {
			return "", fmt.Errorf("command %q: %w: %s", cmd, err, line)
		}
		if line := cmdout.LastLine(stdout.String()); line != "" {
			return "", fmt.Errorf("command %q: %w: %s", cmd, err, line)
		}
		return "", fmt.Errorf("command %q: %w", cmd, err)
	}
	return stdout.String(), nil
}
