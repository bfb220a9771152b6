// Package fleet runs a real local fleet for end-to-end tests, the demo and
// benchmarks: one OpenSSH sshd per host on a loopback port, HAProxy
// instances (with their runtime API) in front of the hosts, and the demo app
// (examples/demo/app) on every host, supervised by examples/demo/bin/restart-app.
//
// Hosts share this machine's filesystem: each has a root directory
// (Dir/hosts/NAME) holding etc/app.conf, run/, log/ and state/, which the
// inventory passes to plans as the host var "root".
package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Options say what fleet to start.
type Options struct {
	Dir   string   // all state goes here (keys, configs, host roots, logs, pids)
	Hosts int      // number of hosts, named web1..webN unless Names is given
	Names []string // host names; Hosts may then be 0

	HAProxy int // HAProxy instances in front of the hosts (0 = none, 2 = an HA pair)
	// MasterWorker runs HAProxy as Debian's unit does (-W, the admin socket
	// with "expose-fd listeners"), so ReloadHAProxy reloads it seamlessly.
	MasterWorker bool
	// Metrics gives each HAProxy a loopback frontend serving its built-in
	// Prometheus exporter at /metrics (MetricsPorts).
	Metrics bool

	AppBinary     string // a built demo-app; "" = no app is started
	RestartScript string // restart-app, used to start the app (required with AppBinary)
	// InitialConfig is the app.conf of the first start. Default: version 0
	// listening on 127.0.0.1:AppPort.
	InitialConfig func(h Host) string

	// Netns names hosts that run in a network namespace of their own,
	// reached through a veth pair (see CutNetwork). Needs root and iproute2.
	Netns []string
	// Delayable names hosts whose commands DelayCommands can slow down
	// (their sshd runs each command through a shell that sleeps first).
	Delayable []string

	// Detach starts processes in their own session so they outlive the
	// calling process (`fleet up`). Otherwise they are in their own process
	// group and get SIGKILL when the calling process dies, so a test binary
	// killed by -timeout leaves no sshd or HAProxy behind.
	Detach bool
}

// Host is one fleet host.
type Host struct {
	Name    string `json:"name"`
	SSHPort int    `json:"ssh_port"`
	AppPort int    `json:"app_port"`
	Root    string `json:"root"` // holds etc/, run/, log/, state/

	Addr      string `json:"addr,omitempty"`  // in a network namespace: its address ("" = 127.0.0.1, see Address)
	Netns     string `json:"netns,omitempty"` // the namespace's name
	Veth      string `json:"veth,omitempty"`  // this machine's end of its veth pair (the host's adds "p")
	Delayable bool   `json:"delayable,omitempty"`
}

// ConfigPath is the host's live app config.
func (h Host) ConfigPath() string { return filepath.Join(h.Root, "etc", "app.conf") }

// PIDFile is where the supervisor writes the app's pid.
func (h Host) PIDFile() string { return filepath.Join(h.Root, "run", "app.pid") }

// Fleet is a running fleet.
type Fleet struct {
	Dir   string `json:"dir"`
	Hosts []Host `json:"hosts"`

	ClientKey  string `json:"client_key"`  // private key authorized on every sshd (root)
	KnownHosts string `json:"known_hosts"` // every sshd's host key as [ADDRESS]:PORT

	MasterWorker   bool     `json:"master_worker,omitempty"`
	HAProxySockets []string `json:"haproxy_sockets"`         // admin socket paths, one per HAProxy
	FrontendPorts  []int    `json:"frontend_ports"`          // one HTTP frontend port per HAProxy
	MetricsPorts   []int    `json:"metrics_ports,omitempty"` // with Options.Metrics: each HAProxy's /metrics
	Backend        string   `json:"backend"`                 // "web"

	AppBinary     string `json:"app_binary,omitempty"`
	RestartScript string `json:"restart_script,omitempty"`

	// Processes are the sshd and HAProxy processes, stopped by PID. App
	// processes are found through each host's run/*.pid files instead,
	// because restarts replace them.
	Processes []Process `json:"processes"`

	metrics bool // Options.Metrics
}

var hostName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// Start starts a fleet. On error everything already started is stopped.
func Start(ctx context.Context, opts Options) (_ *Fleet, err error) {
	if opts.Dir == "" {
		return nil, errors.New("fleet: Options.Dir is required")
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("fleet: %w", err)
	}
	names := opts.Names
	if len(names) == 0 {
		for i := 1; i <= opts.Hosts; i++ {
			names = append(names, "web"+strconv.Itoa(i))
		}
	} else if opts.Hosts != 0 && opts.Hosts != len(names) {
		return nil, fmt.Errorf("fleet: Hosts is %d but %d Names are given", opts.Hosts, len(names))
	}
	if len(names) == 0 {
		return nil, errors.New("fleet: no hosts")
	}
	seen := map[string]bool{}
	for _, n := range names {
		if !hostName.MatchString(n) || seen[n] {
			return nil, fmt.Errorf("fleet: bad or duplicate host name %q", n)
		}
		seen[n] = true
	}
	for _, n := range append(append([]string{}, opts.Netns...), opts.Delayable...) {
		if !seen[n] {
			return nil, fmt.Errorf("fleet: Netns/Delayable name %q is not a host", n)
		}
	}
	if len(opts.Netns) > 0 {
		if err := NetnsAvailable(); err != nil {
			return nil, err
		}
	}
	if opts.HAProxy < 0 {
		return nil, errors.New("fleet: HAProxy must not be negative")
	}
	if err := Available(opts.HAProxy > 0); err != nil {
		return nil, err
	}
	if opts.AppBinary != "" {
		if opts.RestartScript == "" {
			return nil, errors.New("fleet: AppBinary needs RestartScript")
		}
		for _, p := range []*string{&opts.AppBinary, &opts.RestartScript} {
			if *p, err = filepath.Abs(*p); err != nil {
				return nil, fmt.Errorf("fleet: %w", err)
			}
			if _, err := os.Stat(*p); err != nil {
				return nil, fmt.Errorf("fleet: %w", err)
			}
		}
	}

	f := &Fleet{
		Dir:           dir,
		ClientKey:     filepath.Join(dir, "client_key"),
		KnownHosts:    filepath.Join(dir, "known_hosts"),
		Backend:       "web",
		MasterWorker:  opts.MasterWorker,
		AppBinary:     opts.AppBinary,
		RestartScript: opts.RestartScript,
		metrics:       opts.Metrics,
	}
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		return nil, fmt.Errorf("fleet: %w", err)
	}
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		return nil, fmt.Errorf("fleet: sshd privilege separation dir: %w", err)
	}
	defer func() {
		if err != nil {
			_ = f.Stop()
		}
	}()

	ports, err := freePorts(2*len(names) + opts.HAProxy)
	if err != nil {
		return nil, fmt.Errorf("fleet: %w", err)
	}
	for i, n := range names {
		h := Host{Name: n, SSHPort: ports[2*i], AppPort: ports[2*i+1], Root: filepath.Join(dir, "hosts", n)}
		for _, sub := range []string{"etc", "run", "log", "state"} {
			if err := os.MkdirAll(filepath.Join(h.Root, sub), 0o755); err != nil {
				return nil, fmt.Errorf("fleet: %w", err)
			}
		}
		h.Delayable = slices.Contains(opts.Delayable, n)
		f.Hosts = append(f.Hosts, h)
		if slices.Contains(opts.Netns, n) {
			if err := setupNetns(&f.Hosts[len(f.Hosts)-1]); err != nil {
				return nil, fmt.Errorf("fleet: %w", err)
			}
		}
	}

	if _, err := writeKeyPair(f.ClientKey, "rollout-fleet"); err != nil {
		return nil, fmt.Errorf("fleet: client key: %w", err)
	}
	authorized, err := os.ReadFile(f.ClientKey + ".pub")
	if err != nil {
		return nil, fmt.Errorf("fleet: %w", err)
	}
	if err := os.WriteFile(f.authorizedKeys(), authorized, 0o644); err != nil {
		return nil, fmt.Errorf("fleet: %w", err)
	}

	var known strings.Builder
	for i := range f.Hosts {
		pub, err := f.startSSHD(ctx, &f.Hosts[i], opts.Detach)
		if err != nil {
			return nil, fmt.Errorf("fleet: %w", err)
		}
		known.WriteString(knownHostsLine(f.Hosts[i].Address(), f.Hosts[i].SSHPort, pub) + "\n")
	}
	if err := os.WriteFile(f.KnownHosts, []byte(known.String()), 0o644); err != nil {
		return nil, fmt.Errorf("fleet: %w", err)
	}

	if opts.AppBinary != "" {
		initial := opts.InitialConfig
		if initial == nil {
			initial = DefaultConfig
		}
		for _, h := range f.Hosts {
			if err := f.startApp(ctx, h, initial(h)); err != nil {
				return nil, fmt.Errorf("fleet: %w", err)
			}
		}
	}

	for n := 1; n <= opts.HAProxy; n++ {
		if err := f.startHAProxy(ctx, n, ports[2*len(names)+n-1], opts.Detach); err != nil {
			return nil, fmt.Errorf("fleet: %w", err)
		}
	}
	if opts.AppBinary != "" && opts.HAProxy > 0 {
		if err := f.WaitServersUp(ctx, 30*time.Second); err != nil {
			return nil, fmt.Errorf("fleet: %w", err)
		}
	}
	if err := f.Save(); err != nil {
		return nil, err
	}
	return f, nil
}

// Available reports whether sshd (and HAProxy when haproxy is true) are
// installed, with an error naming what to install.
func Available(haproxy bool) error {
	var missing []string
	if _, err := os.Stat(SSHD); err != nil {
		missing = append(missing, "openssh-server ("+SSHD+")")
	}
	if haproxy {
		if _, err := os.Stat(HAProxyBinary); err != nil {
			missing = append(missing, "haproxy ("+HAProxyBinary+")")
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("fleet: %w: %s", ErrMissing, strings.Join(missing, ", "))
	}
	return nil
}

// ErrMissing is returned when a program the fleet runs is not installed.
var ErrMissing = errors.New("not installed")

// DefaultConfig is the app.conf a host starts with: version 0.
func DefaultConfig(h Host) string {
	return fmt.Sprintf("# initial config written by the fleet\nversion = 0\nmessage = \"initial config of %s\"\nlisten = %s:%d\n", h.Name, h.Address(), h.AppPort)
}

// startApp writes the initial config and runs the restart script, then waits
// for /healthz to answer 200.
func (f *Fleet) startApp(ctx context.Context, h Host, config string) error {
	if err := os.WriteFile(h.ConfigPath(), []byte(config), 0o644); err != nil {
		return fmt.Errorf("app %s: %w", h.Name, err)
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	argv := h.inNetns([]string{f.RestartScript, h.Root})
	cmd := exec.CommandContext(cctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "DEMO_APP="+f.AppBinary)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("app %s: %s %s: %w: %s", h.Name, f.RestartScript, h.Root, err, strings.TrimSpace(string(out)))
	}
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	url := fmt.Sprintf("http://%s/healthz", net.JoinHostPort(h.Address(), strconv.Itoa(h.AppPort)))
	client := &http.Client{Timeout: 2 * time.Second}
	err := poll(wctx, "app "+h.Name, nil, 50*time.Millisecond, func() error {
		resp, err := client.Get(url)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s", url, resp.Status)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("%w; see %s", err, filepath.Join(h.Root, "log"))
	}
	return nil
}

// WaitServersUp waits until every HAProxy reports every host's server UP.
func (f *Fleet) WaitServersUp(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return poll(ctx, "haproxy servers up", nil, 50*time.Millisecond, func() error {
		for lb := range f.HAProxySockets {
			st, err := f.ServerStatus(lb)
			if err != nil {
				return err
			}
			for _, h := range f.Hosts {
				if st[h.Name] != "UP" {
					return fmt.Errorf("haproxy %d: %s is %q", lb+1, h.Name, st[h.Name])
				}
			}
		}
		return nil
	})
}

// AppPID returns the pid of the host's app as its supervisor last wrote it.
func (f *Fleet) AppPID(h Host) (int, error) {
	return readPID(h.PIDFile())
}

func readPID(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return pid, nil
}

// appProcesses are the supervisor and app of every host, from their pid
// files; the marker (the host root) guards against recycled pids.
func (f *Fleet) appProcesses() []Process {
	var ps []Process
	for _, h := range f.Hosts {
		// restart-app runs `restart-app --supervise ROOT APP` and
		// `demo-app -config ROOT/etc/app.conf`.
		for _, p := range []struct{ name, marker string }{
			{"supervise", "--supervise " + h.Root + " "},
			{"app", h.ConfigPath()},
		} {
			pid, err := readPID(filepath.Join(h.Root, "run", p.name+".pid"))
			if err != nil {
				continue
			}
			ps = append(ps, Process{Name: p.name + " " + h.Name, PID: pid, Marker: p.marker,
				Log: filepath.Join(h.Root, "log", p.name+".log")})
		}
	}
	return ps
}

// Stop stops every process of the fleet by PID: apps and their supervisors
// first, then HAProxy and sshd (SIGTERM, then SIGKILL after 10s). Files stay.
func (f *Fleet) Stop() error {
	var errs []error
	apps := f.appProcesses()
	if err := stopPIDs(apps, 10*time.Second); err != nil {
		errs = append(errs, err)
	} else {
		for _, h := range f.Hosts {
			os.Remove(filepath.Join(h.Root, "run", "supervise.pid"))
			os.Remove(h.PIDFile())
		}
	}
	// A host whose network was cut keeps the sessions of connections
	// whose client is gone (nothing told it): end them with their sshd.
	for _, h := range f.Hosts {
		if p, ok := f.process("sshd " + h.Name); ok && h.Netns != "" && p.Running() {
			for _, c := range childPIDs(p.PID) {
				_ = syscall.Kill(c, syscall.SIGKILL)
			}
		}
	}
	if err := stopPIDs(f.Processes, 10*time.Second); err != nil {
		errs = append(errs, err)
	}
	if err := f.removeNamespaces(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("fleet stop: %w", err)
	}
	return nil
}

// StateFile is where Save writes the fleet, inside its Dir.
const StateFile = "fleet.json"

// Save writes Dir/fleet.json so that Load (`fleet down`, `fleet status`)
// can find the fleet again.
func (f *Fleet) Save() error {
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("fleet save: %w", err)
	}
	tmp := filepath.Join(f.Dir, StateFile+".tmp")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("fleet save: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(f.Dir, StateFile)); err != nil {
		return fmt.Errorf("fleet save: %w", err)
	}
	return nil
}

// Load reads a fleet saved in dir.
func Load(dir string) (*Fleet, error) {
	b, err := os.ReadFile(filepath.Join(dir, StateFile))
	if err != nil {
		return nil, fmt.Errorf("fleet load: %w", err)
	}
	var f Fleet
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("fleet load: %s: %w", filepath.Join(dir, StateFile), err)
	}
	return &f, nil
}

// WriteInventory writes an Ansible INI inventory with every host in group
// "web" (the backend name): ansible_host, ansible_port, ansible_user=root,
// ansible_ssh_private_key_file, and the host vars root and app_port.
func (f *Fleet) WriteInventory(path string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# written by rollout's internal/fleet for the fleet in %s\n", f.Dir)
	fmt.Fprintf(&b, "# ssh: known_hosts is %s\n", f.KnownHosts)
	fmt.Fprintf(&b, "[%s]\n", f.Backend)
	for _, h := range f.Hosts {
		fmt.Fprintf(&b, "%s ansible_host=%s ansible_port=%d ansible_user=root ansible_ssh_private_key_file=%s root=%s app_port=%d\n",
			h.Name, h.Address(), h.SSHPort, f.ClientKey, h.Root, h.AppPort)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("write inventory: %w", err)
	}
	return nil
}

// SSHArgs are the OpenSSH client arguments that reach host as root with the
// fleet's key, verifying its host key against KnownHosts.
func (f *Fleet) SSHArgs(h Host) []string {
	return []string{
		"-F", "/dev/null",
		"-i", f.ClientKey,
		"-o", "IdentitiesOnly=yes",
		"-o", "UserKnownHostsFile=" + f.KnownHosts,
		"-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "StrictHostKeyChecking=yes",
		"-o", "BatchMode=yes",
		"-o", "ConnectTimeout=10",
		"-p", strconv.Itoa(h.SSHPort),
		"root@" + h.Address(),
	}
}

// SSHCommand is an `ssh` command running cmd on host (see SSHArgs).
func (f *Fleet) SSHCommand(h Host, cmd string) *exec.Cmd {
	return exec.Command("ssh", append(f.SSHArgs(h), cmd)...)
}

// Host returns the host with that name.
func (f *Fleet) Host(name string) (Host, bool) {
	for _, h := range f.Hosts {
		if h.Name == name {
			return h, true
		}
	}
	return Host{}, false
}
