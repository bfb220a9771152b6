package fleet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// PrometheusBinary is the Prometheus server the tests start (Debian's
// prometheus).
const PrometheusBinary = "prometheus"

// Prometheus is a Prometheus server on a loopback port with its own config
// and storage, scraping the given targets every second.
type Prometheus struct {
	Dir    string
	URL    string // http://127.0.0.1:PORT
	Config string
	Proc   Process
	exited <-chan struct{}
}

// StartPrometheus starts Prometheus under dir scraping targets
// (host:port, path /metrics) every second, and waits until it is ready.
func StartPrometheus(ctx context.Context, dir string, targets []string) (*Prometheus, error) {
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		return nil, err
	}
	ports, err := freePorts(1)
	if err != nil {
		return nil, err
	}
	p := &Prometheus{Dir: dir, URL: fmt.Sprintf("http://127.0.0.1:%d", ports[0]), Config: filepath.Join(dir, "prometheus.yml")}
	var ts []string
	for _, t := range targets {
		ts = append(ts, fmt.Sprintf("%q", t))
	}
	cfg := fmt.Sprintf(`# written by rollout's internal/fleet
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: haproxy
    static_configs:
      - targets: [%s]
`, strings.Join(ts, ", "))
	if err := os.WriteFile(p.Config, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	argv := []string{PrometheusBinary, "--config.file=" + p.Config, "--storage.tsdb.path=" + filepath.Join(dir, "data"),
		"--web.listen-address=" + strings.TrimPrefix(p.URL, "http://"), "--log.level=warn"}
	proc, exited, err := startProcess("prometheus", argv, filepath.Join(dir, "prometheus.log"), p.Config, false)
	if err != nil {
		return nil, err
	}
	p.Proc, p.exited = proc, exited
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err = poll(wctx, "prometheus", exited, 50*time.Millisecond, func() error {
		req, _ := http.NewRequestWithContext(wctx, http.MethodGet, p.URL+"/-/ready", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/-/ready: %s %s", resp.Status, b)
		}
		return nil
	})
	if err != nil {
		_ = p.Kill()
		return nil, fmt.Errorf("%w; see %s", err, filepath.Join(dir, "prometheus.log"))
	}
	return p, nil
}

// Kill stops the Prometheus this started (its PID, checked against its
// config path) at once, as a crash would.
func (p *Prometheus) Kill() error {
	if !p.Proc.Running() {
		return nil
	}
	if err := syscall.Kill(p.Proc.PID, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill prometheus: %w", err)
	}
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		return fmt.Errorf("prometheus (pid %d) survived SIGKILL", p.Proc.PID)
	}
	return nil
}

// StartPrometheusT starts Prometheus for a test scraping targets and kills
// it in t.Cleanup. A missing prometheus fails the test under ROLLOUT_E2E=1
// (skips otherwise).
func StartPrometheusT(t testing.TB, targets []string) *Prometheus {
	t.Helper()
	RequireTool(t, PrometheusBinary)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := StartPrometheus(ctx, dir, targets)
	if err != nil {
		t.Fatalf("start prometheus: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			if b, err := os.ReadFile(filepath.Join(dir, "prometheus.log")); err == nil {
				t.Logf("--- tail of prometheus log ---\n%s", tail(b, 15))
			}
		}
		if err := p.Kill(); err != nil {
			t.Errorf("stop prometheus: %v", err)
		}
	})
	return p
}

// WaitScraped waits until query returns at least one series.
func (p *Prometheus) WaitScraped(ctx context.Context, query string) error {
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return poll(wctx, "prometheus scrape", p.exited, 200*time.Millisecond, func() error {
		req, _ := http.NewRequestWithContext(wctx, http.MethodGet, p.URL+"/api/v1/query?query="+url.QueryEscape(query), nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if !strings.Contains(string(b), `"value"`) {
			return fmt.Errorf("%s: no series yet: %s", query, b)
		}
		return nil
	})
}
