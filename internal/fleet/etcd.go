package fleet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// EtcdBinary is the etcd server the fleet starts (Debian's etcd-server).
const EtcdBinary = "etcd"

// Etcd is an etcd cluster of one or more members on loopback ports, for
// the etcd state backend's tests.
type Etcd struct {
	Dir     string
	Members []*EtcdMember
	cluster string // --initial-cluster
	token   string
}

// EtcdMember is one etcd server.
type EtcdMember struct {
	Name      string
	ClientURL string
	PeerURL   string
	DataDir   string
	Proc      Process
	exited    <-chan struct{}
}

// StartEtcd starts an n-member cluster under dir and waits until every
// member reports healthy.
func StartEtcd(ctx context.Context, dir string, n int) (*Etcd, error) {
	if n < 1 {
		return nil, errors.New("etcd: want at least one member")
	}
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		return nil, err
	}
	ports, err := freePorts(2 * n)
	if err != nil {
		return nil, err
	}
	e := &Etcd{Dir: dir, token: "rollout-test-" + filepath.Base(dir)}
	var cluster []string
	for i := range n {
		m := &EtcdMember{
			Name:      fmt.Sprintf("m%d", i+1),
			ClientURL: fmt.Sprintf("http://127.0.0.1:%d", ports[2*i]),
			PeerURL:   fmt.Sprintf("http://127.0.0.1:%d", ports[2*i+1]),
		}
		m.DataDir = filepath.Join(dir, m.Name+".etcd")
		cluster = append(cluster, m.Name+"="+m.PeerURL)
		e.Members = append(e.Members, m)
	}
	e.cluster = strings.Join(cluster, ",")
	for i := range e.Members {
		if err := e.start(i); err != nil {
			_ = e.Stop()
			return nil, err
		}
	}
	for i := range e.Members {
		if err := e.waitHealthy(ctx, i); err != nil {
			_ = e.Stop()
			return nil, err
		}
	}
	return e, nil
}

func (e *Etcd) start(i int) error {
	m := e.Members[i]
	argv := []string{EtcdBinary, "--name", m.Name, "--data-dir", m.DataDir,
		"--listen-client-urls", m.ClientURL, "--advertise-client-urls", m.ClientURL,
		"--listen-peer-urls", m.PeerURL, "--initial-advertise-peer-urls", m.PeerURL,
		"--initial-cluster", e.cluster, "--initial-cluster-state", "new", "--initial-cluster-token", e.token}
	p, exited, err := startProcess("etcd "+m.Name, argv, filepath.Join(e.Dir, "logs", "etcd-"+m.Name+".log"), m.DataDir, false)
	if err != nil {
		return err
	}
	m.Proc, m.exited = p, exited
	return nil
}

// waitHealthy waits until member i answers /health with "true" (which
// needs a quorum).
func (e *Etcd) waitHealthy(ctx context.Context, i int) error {
	m := e.Members[i]
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return poll(wctx, "etcd "+m.Name, m.exited, 50*time.Millisecond, func() error {
		req, _ := http.NewRequestWithContext(wctx, http.MethodGet, m.ClientURL+"/health", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if !strings.Contains(string(b), `"health":"true"`) {
			return fmt.Errorf("health: %s", b)
		}
		return nil
	})
}

// Endpoints are the members' client URLs.
func (e *Etcd) Endpoints() []string {
	var out []string
	for _, m := range e.Members {
		out = append(out, m.ClientURL)
	}
	return out
}

// Kill stops member i at once (SIGKILL), as a crash would.
func (e *Etcd) Kill(i int) error {
	m := e.Members[i]
	if !m.Proc.Running() {
		return nil
	}
	if err := syscall.Kill(m.Proc.PID, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill etcd %s: %w", m.Name, err)
	}
	select {
	case <-m.exited:
	case <-time.After(10 * time.Second):
		return fmt.Errorf("etcd %s (pid %d) survived SIGKILL", m.Name, m.Proc.PID)
	}
	return nil
}

// Restart starts a killed member again on its data dir and waits until
// the cluster answers through it.
func (e *Etcd) Restart(ctx context.Context, i int) error {
	if err := e.start(i); err != nil {
		return err
	}
	return e.waitHealthy(ctx, i)
}

// Stop stops every member by PID. It kills them (SIGKILL): a member left
// without a quorum can take long to stop on SIGTERM, and a test cluster's
// data is thrown away.
func (e *Etcd) Stop() error {
	var errs []error
	for i := range e.Members {
		if e.Members[i].Proc.PID > 0 {
			errs = append(errs, e.Kill(i))
		}
	}
	return errors.Join(errs...)
}

// StartEtcdT starts an n-member etcd cluster for a test and stops it in
// t.Cleanup. A missing etcd fails the test under ROLLOUT_E2E=1 (skips
// otherwise).
func StartEtcdT(t testing.TB, n int) *Etcd {
	t.Helper()
	RequireTool(t, EtcdBinary)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	e, err := StartEtcd(ctx, dir, n)
	if err != nil {
		t.Fatalf("start etcd: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, m := range e.Members {
				if b, err := os.ReadFile(filepath.Join(dir, "logs", "etcd-"+m.Name+".log")); err == nil {
					t.Logf("--- tail of etcd %s log ---\n%s", m.Name, tail(b, 15))
				}
			}
		}
		if err := e.Stop(); err != nil {
			t.Errorf("stop etcd: %v", err)
		}
	})
	return e
}
