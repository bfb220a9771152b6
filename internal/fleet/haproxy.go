package fleet

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// HAProxyBinary is the path of the HAProxy the fleet runs.
const HAProxyBinary = "/usr/sbin/haproxy"

// maxSocketPath is the longest unix socket path Linux accepts (sun_path
// holds 108 bytes including the terminating NUL).
const maxSocketPath = 107

// haproxyConfig is HAProxy's config; metricsPort > 0 adds a frontend
// serving the built-in Prometheus exporter there.
func (f *Fleet) haproxyConfig(sock string, frontendPort, metricsPort int) string {
	var b strings.Builder
	expose := ""
	if f.MasterWorker {
		expose = " expose-fd listeners"
	}
	fmt.Fprintf(&b, `# written by rollout's internal/fleet
global
    stats socket %s mode 600 level admin%s
    stats timeout 30s
    maxconn 4096
    # every request and its termination state in the haproxy-N.log (-db:
    # stdout), so a failed client request can be traced to its server
    log stdout format raw local0

defaults
    mode http
    log global
    option httplog
    retries 0
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout http-request 10s
    timeout queue 10s

frontend fe
    bind 127.0.0.1:%d
    default_backend %s

backend %s
    balance roundrobin
    option httpchk GET /healthz
`, sock, expose, frontendPort, f.Backend, f.Backend)
	for _, h := range f.Hosts {
		fmt.Fprintf(&b, "    server %s %s check inter 200ms fall 2 rise 2 weight 100\n", h.Name, net.JoinHostPort(h.Address(), strconv.Itoa(h.AppPort)))
	}
	if metricsPort > 0 {
		fmt.Fprintf(&b, `
frontend metrics
    bind 127.0.0.1:%d
    http-request use-service prometheus-exporter if { path /metrics }
    http-request return status 404
`, metricsPort)
	}
	return b.String()
}

// startHAProxy starts HAProxy number n (1-based) and waits until its admin
// socket answers and its frontend accepts connections.
func (f *Fleet) startHAProxy(ctx context.Context, n, frontendPort int, detach bool) error {
	name := "haproxy " + strconv.Itoa(n)
	dir := filepath.Join(f.Dir, "lb"+strconv.Itoa(n))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	sock := filepath.Join(dir, "admin.sock")
	if len(sock) > maxSocketPath {
		return fmt.Errorf("%s: socket path %s is longer than %d bytes: use a shorter fleet dir", name, sock, maxSocketPath)
	}
	cfgPath := filepath.Join(dir, "haproxy.cfg")
	logPath := filepath.Join(f.Dir, "logs", "haproxy-"+strconv.Itoa(n)+".log")
	const attempts = 3
	metricsPort := 0
	for attempt := 1; ; attempt++ {
		if f.metrics {
			ports, err := freePorts(1)
			if err != nil {
				return err
			}
			metricsPort = ports[0]
		}
		if err := os.WriteFile(cfgPath, []byte(f.haproxyConfig(sock, frontendPort, metricsPort)), 0o644); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		p, exited, err := startProcess(name, f.haproxyArgv(cfgPath), logPath, cfgPath, detach)
		if err != nil {
			return err
		}
		f.Processes = append(f.Processes, p)
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err = poll(wctx, name, exited, 20*time.Millisecond, func() error {
			out, err := adminCommand(sock, "show info")
			if err != nil {
				return err
			}
			if !strings.Contains(out, "Name: HAProxy") {
				return fmt.Errorf("unexpected show info answer %q", out)
			}
			for _, port := range []int{frontendPort, metricsPort} {
				if port == 0 {
					continue
				}
				c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
				if err != nil {
					return err
				}
				c.Close()
			}
			return nil
		})
		cancel()
		if err == nil {
			f.HAProxySockets = append(f.HAProxySockets, sock)
			f.FrontendPorts = append(f.FrontendPorts, frontendPort)
			if metricsPort > 0 {
				f.MetricsPorts = append(f.MetricsPorts, metricsPort)
			}
			return nil
		}
		if !errors.Is(err, errExited) || attempt == attempts {
			return fmt.Errorf("%w; see %s", err, logPath)
		}
		ports, perr := freePorts(1)
		if perr != nil {
			return perr
		}
		frontendPort = ports[0]
	}
}

func (f *Fleet) haproxyArgv(cfgPath string) []string {
	if f.MasterWorker {
		return []string{HAProxyBinary, "-W", "-db", "-f", cfgPath}
	}
	return []string{HAProxyBinary, "-db", "-f", cfgPath}
}

// servingPid is the pid of the HAProxy worker that a new connection to
// sock reaches, 0 when none answers or only a stopping one does.
func servingPid(sock string) int {
	out, err := adminCommand(sock, "show info")
	if err != nil || strings.Contains(out, "\nStopping: 1") {
		return 0
	}
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, "Pid: "); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return 0
}

// HAProxyPid is the pid of HAProxy lb's serving worker (the process itself
// without MasterWorker), 0 when none answers.
func (f *Fleet) HAProxyPid(lb int) int { return servingPid(f.HAProxySockets[lb]) }

// ReloadHAProxy reloads HAProxy lb as `systemctl reload haproxy` does in
// master-worker mode (USR2 to the master): a new worker starts from the
// configuration (server states reset to it) and the old one finishes its
// connections. It returns once a new connection reaches the new worker.
func (f *Fleet) ReloadHAProxy(ctx context.Context, lb int) error {
	if !f.MasterWorker {
		return errors.New("reload haproxy: the fleet was started without MasterWorker")
	}
	name := "haproxy " + strconv.Itoa(lb+1)
	p, ok := f.process(name)
	if !ok || !p.Running() {
		return fmt.Errorf("reload %s: not running", name)
	}
	old := servingPid(f.HAProxySockets[lb])
	reloads := func() int {
		b, _ := os.ReadFile(p.Log)
		return strings.Count(string(b), "Reloading HAProxy")
	}
	n := reloads()
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	// a master that has just started ignores USR2 for a moment: send it
	// again until the master says it reloads
	for reloads() == n {
		if err := syscall.Kill(p.PID, syscall.SIGUSR2); err != nil {
			return fmt.Errorf("reload %s: %w", name, err)
		}
		t := time.NewTimer(100 * time.Millisecond)
		select {
		case <-wctx.Done():
			t.Stop()
			return fmt.Errorf("reload %s: the master never reloaded; see %s", name, p.Log)
		case <-t.C:
		}
	}
	return poll(wctx, name, nil, 5*time.Millisecond, func() error {
		if pid := servingPid(f.HAProxySockets[lb]); pid == 0 || pid == old {
			return fmt.Errorf("the old worker (pid %d) still answers", old)
		}
		return nil
	})
}

// RestartHAProxy stops HAProxy lb and starts it again with the same
// configuration and ports: every runtime state (drain, maint, weights) is
// lost, and the admin socket is gone in between.
func (f *Fleet) RestartHAProxy(ctx context.Context, lb int) error {
	name := "haproxy " + strconv.Itoa(lb+1)
	i := f.processIndex(name)
	if i < 0 {
		return fmt.Errorf("restart %s: not started by this fleet", name)
	}
	p := f.Processes[i]
	if err := stopPIDs([]Process{p}, 5*time.Second); err != nil {
		return fmt.Errorf("restart %s: %w", name, err)
	}
	np, exited, err := startProcess(name, f.haproxyArgv(p.Marker), p.Log, p.Marker, false)
	if err != nil {
		return err
	}
	f.Processes[i] = np
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return poll(wctx, name, exited, 5*time.Millisecond, func() error {
		if servingPid(f.HAProxySockets[lb]) == 0 {
			return errors.New("no answer on the admin socket")
		}
		return nil
	})
}

// adminCommand sends one command line to an HAProxy admin socket and returns
// the whole answer.
func adminCommand(sock, command string) (string, error) {
	c, err := net.DialTimeout("unix", sock, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, command+"\n"); err != nil {
		return "", err
	}
	b, err := io.ReadAll(c)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// Admin sends a runtime API command to HAProxy number lb (0-based) and returns
// its answer, e.g. Admin(0, "show servers state web").
func (f *Fleet) Admin(lb int, command string) (string, error) {
	if lb < 0 || lb >= len(f.HAProxySockets) {
		return "", fmt.Errorf("haproxy %d: no such load balancer (fleet has %d)", lb, len(f.HAProxySockets))
	}
	out, err := adminCommand(f.HAProxySockets[lb], command)
	if err != nil {
		return "", fmt.Errorf("haproxy %d: %s: %w", lb+1, command, err)
	}
	return out, nil
}

// ServerStatus returns the status column of `show stat` for every server of
// the backend on HAProxy number lb (0-based): "UP", "DOWN", "DRAIN", "MAINT",
// or a transitional "UP 1/2".
func (f *Fleet) ServerStatus(lb int) (map[string]string, error) {
	out, err := f.Admin(lb, "show stat "+f.Backend+" 4 -1")
	if err != nil {
		return nil, err
	}
	out = strings.TrimPrefix(strings.TrimSpace(out), "# ")
	r := csv.NewReader(strings.NewReader(out))
	r.FieldsPerRecord = -1
	rows, err := r.ReadAll()
	if err != nil || len(rows) == 0 {
		return nil, fmt.Errorf("haproxy %d: parse show stat: %v", lb+1, err)
	}
	col := map[string]int{}
	for i, name := range rows[0] {
		col[name] = i
	}
	sv, okS := col["svname"]
	st, okT := col["status"]
	if !okS || !okT {
		return nil, fmt.Errorf("haproxy %d: show stat has no svname/status column", lb+1)
	}
	res := map[string]string{}
	for _, row := range rows[1:] {
		if len(row) > max(sv, st) {
			res[row[sv]] = row[st]
		}
	}
	return res, nil
}

// FrontendURL is the base URL of HAProxy number lb's HTTP frontend.
func (f *Fleet) FrontendURL(lb int) string {
	return "http://127.0.0.1:" + strconv.Itoa(f.FrontendPorts[lb])
}

// FillStatsSocket takes every connection an HAProxy stats socket will
// take, its 10 (stats maxconn) and its accept backlog, until connecting
// fails with EAGAIN; then once more after a moment, because HAProxy frees
// the slots of connections closed just before asynchronously. Close the
// returned connections to free the socket again.
func FillStatsSocket(sock string) ([]net.Conn, error) {
	var held []net.Conn
	for round := 0; round < 2; round++ {
		for {
			if len(held) == 200 {
				closeAll(held)
				return nil, fmt.Errorf("%s: 200 connections and it still accepts: not a stock stats socket", sock)
			}
			c, err := net.Dial("unix", sock)
			if err != nil {
				if !errors.Is(err, syscall.EAGAIN) {
					closeAll(held)
					return nil, fmt.Errorf("filling %s: %w", sock, err)
				}
				break
			}
			held = append(held, c)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return held, nil
}

func closeAll(cs []net.Conn) {
	for _, c := range cs {
		c.Close()
	}
}
