package health

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"time"

	"github.com/rollout-sh/rollout/internal/cmdout"
)

// maxBody is how much of a response body is read and matched.
const maxBody = 64 << 10

// HTTP probes url with GET: healthy when the status is status (0 means 200)
// and, if bodyMatches is not empty, the body matches that regular
// expression. client nil means a client with a 5s timeout.
func HTTP(client *http.Client, url string, status int, bodyMatches string) (Probe, error) {
	if client == nil {
		client = &http.Client{Timeout: 5 * time.Second}
	}
	if status == 0 {
		status = http.StatusOK
	}
	var re *regexp.Regexp
	if bodyMatches != "" {
		var err error
		if re, err = regexp.Compile(bodyMatches); err != nil {
			return nil, fmt.Errorf("health http %s: body_matches: %w", url, err)
		}
	}
	if _, err := http.NewRequest(http.MethodGet, url, nil); err != nil {
		return nil, fmt.Errorf("health http: %w", err)
	}
	return &httpProbe{client: client, url: url, status: status, re: re}, nil
}

type httpProbe struct {
	client *http.Client
	url    string
	status int
	re     *regexp.Regexp
}

func (p *httpProbe) Probe(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url, nil)
	if err != nil {
		return fmt.Errorf("GET %s: %w", p.url, err)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		var ue interface{ Unwrap() error }
		if errors.As(err, &ue) && ue.Unwrap() != nil {
			err = ue.Unwrap() // *url.Error repeats method and URL
		}
		return fmt.Errorf("GET %s: %w", p.url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return fmt.Errorf("GET %s: reading body: %w", p.url, err)
	}
	if resp.StatusCode != p.status {
		return fmt.Errorf("GET %s: status %d, want %d", p.url, resp.StatusCode, p.status)
	}
	if p.re != nil && !p.re.Match(body) {
		return fmt.Errorf("GET %s: body %q does not match %q", p.url, cmdout.Clip(string(body), 80), p.re.String())
	}
	return nil
}

// TCP probes that addr (host:port) accepts a connection. dial nil means
// the local machine.
func TCP(dial Dialer, addr string) Probe {
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	return ProbeFunc(func(ctx context.Context) error {
		c, err := dial(ctx, "tcp", addr)
		if err != nil {
			return fmt.Errorf("tcp %s: %w", addr, err)
		}
		c.Close()
		return nil
	})
}

// Command runs cmd (already rendered and quoted) through r: exit 0 is
// healthy; otherwise the error carries the last line it printed, stderr
// first.
func Command(r Runner, cmd string) Probe {
	return ProbeFunc(func(ctx context.Context) error {
		_, err := run(ctx, r, cmd)
		return err
	})
}

// Serving turns a drain driver's Serving method into a probe: the load
// balancer's own health checks must report the server up (health
// "haproxy").
func Serving(f func(ctx context.Context) (bool, string, error)) Probe {
	return ProbeFunc(func(ctx context.Context) error {
		ok, detail, err := f(ctx)
		if err != nil {
			return fmt.Errorf("load balancer: %w", err)
		}
		if !ok {
			return fmt.Errorf("load balancer reports %s", detail)
		}
		return nil
	})
}

// run runs cmd and returns its stdout; a failure names the command and the
// last line it printed.
func run(ctx context.Context, r Runner, cmd string) (string, error) {
	var stdout, stderr bytes.Buffer
	if err := r.Run(ctx, cmd, nil, &stdout, &stderr); err != nil {
		for _, out := range []string{stderr.String(), stdout.String()} {
			if line := cmdout.LastLine(out); line != "" {
				return "", fmt.Errorf("%s: %w: %s", cmd, err, cmdout.Clip(line, 200))
			}
		}
		return "", fmt.Errorf("%s: %w", cmd, err)
	}
	return stdout.String(), nil
}
