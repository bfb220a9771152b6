// Command fleet starts and stops the local demo fleet of internal/fleet.
//
//	fleet up DIR [-hosts 4] [-haproxy 1] [-app PATH] [-restart PATH]
//	fleet down DIR
//	fleet status DIR
//	fleet env DIR       shell variables for scripts: eval "$(fleet env DIR)"
//
// `up` starts the processes detached (they outlive the command), saves
// DIR/fleet.json and writes DIR/inventory.ini; `down` stops them by the
// pids in DIR/fleet.json.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rollout-sh/rollout/internal/fleet"
	"github.com/rollout-sh/rollout/internal/shell"
)

const usage = `usage:
  fleet up DIR [-hosts 4] [-haproxy 1] [-app PATH] [-restart PATH]
  fleet down DIR
  fleet status DIR
  fleet env DIR
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch verb, rest := args[0], args[1:]; verb {
	case "up":
		err = up(ctx, rest, stdout, stderr)
	case "down":
		err = withDir(rest, func(dir string) error { return down(dir, stdout) })
	case "status":
		err = withDir(rest, func(dir string) error { return status(dir, stdout) })
	case "env":
		err = withDir(rest, func(dir string) error { return env(dir, stdout) })
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "fleet: unknown command %q\n%s", verb, usage)
		return 2
	}
	var ue usageError
	switch {
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "fleet: %v\n%s", err, usage)
		return 2
	case err != nil:
		fmt.Fprintf(stderr, "fleet: %v\n", err)
		return 1
	}
	return 0
}

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func withDir(args []string, fn func(dir string) error) error {
	if len(args) != 1 || strings.HasPrefix(args[0], "-") {
		return usageError{"want exactly one DIR"}
	}
	return fn(args[0])
}

func up(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("fleet up", flag.ContinueOnError)
	fs.SetOutput(stderr)
	hosts := fs.Int("hosts", 4, "number of hosts (web1..webN)")
	lbs := fs.Int("haproxy", 1, "number of HAProxy instances (2 = an HA pair)")
	app := fs.String("app", "", "demo-app `binary` (default: none, sshd and HAProxy only)")
	restart := fs.String("restart", "", "restart-app `script` (default: restart-app next to -app)")
	// DIR may come before or after the flags.
	var dir string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		dir, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	if dir == "" && fs.NArg() == 1 {
		dir = fs.Arg(0)
	} else if fs.NArg() != 0 || dir == "" {
		return usageError{"want exactly one DIR"}
	}
	if *app != "" && *restart == "" {
		*restart = filepath.Join(filepath.Dir(*app), "restart-app")
	}
	if old, err := fleet.Load(dir); err == nil && anyRunning(old) {
		return fmt.Errorf("a fleet is already running in %s: run `fleet down %s` first", dir, dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	// Leftovers of an earlier fleet (keys, host roots) are replaced.
	old, _ := filepath.Glob(filepath.Join(dir, "lb*"))
	for _, sub := range append(old, filepath.Join(dir, "hosts"), filepath.Join(dir, "logs")) {
		if err := os.RemoveAll(sub); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	f, err := fleet.Start(ctx, fleet.Options{
		Dir: dir, Hosts: *hosts, HAProxy: *lbs,
		AppBinary: *app, RestartScript: *restart, Detach: true,
	})
	if err != nil {
		return err
	}
	inv := filepath.Join(f.Dir, "inventory.ini")
	if err := f.WriteInventory(inv); err != nil {
		_ = f.Stop()
		return err
	}
	fmt.Fprintf(stdout, "fleet up in %s\n", f.Dir)
	printSummary(f, stdout)
	fmt.Fprintf(stdout, "inventory:   %s\n", inv)
	fmt.Fprintf(stdout, "stop with:   fleet down %s\n", f.Dir)
	return nil
}

func printSummary(f *fleet.Fleet, w io.Writer) {
	fmt.Fprintf(w, "%-8s %-9s %-9s %s\n", "HOST", "SSH PORT", "APP PORT", "ROOT")
	for _, h := range f.Hosts {
		fmt.Fprintf(w, "%-8s %-9d %-9d %s\n", h.Name, h.SSHPort, h.AppPort, h.Root)
	}
	for i, sock := range f.HAProxySockets {
		fmt.Fprintf(w, "haproxy %d:   frontend %s  admin socket %s  backend %s\n", i+1, f.FrontendURL(i), sock, f.Backend)
	}
	fmt.Fprintf(w, "ssh key:     %s\n", f.ClientKey)
	fmt.Fprintf(w, "known_hosts: %s\n", f.KnownHosts)
	if len(f.Hosts) > 0 {
		fmt.Fprintf(w, "try:         ssh %s true\n", shell.Join(f.SSHArgs(f.Hosts[0])...))
	}
}

func anyRunning(f *fleet.Fleet) bool {
	for _, p := range f.Processes {
		if p.Running() {
			return true
		}
	}
	return false
}

func down(dir string, stdout io.Writer) error {
	f, err := fleet.Load(dir)
	if err != nil {
		return err
	}
	if err := f.Stop(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "fleet in %s stopped\n", f.Dir)
	return nil
}

func status(dir string, w io.Writer) error {
	f, err := fleet.Load(dir)
	if err != nil {
		return err
	}
	printSummary(f, w)
	fmt.Fprintln(w)
	down := 0
	for _, p := range f.Processes {
		state := "running"
		if !p.Running() {
			state = "STOPPED"
			down++
		}
		fmt.Fprintf(w, "%-12s pid %-7d %s\n", p.Name, p.PID, state)
	}
	client := &http.Client{Timeout: 2 * time.Second}
	for _, h := range f.Hosts {
		pid, err := f.AppPID(h)
		app := "no app pid"
		if err == nil {
			app = "pid " + strconv.Itoa(pid)
		}
		fmt.Fprintf(w, "%-12s %-11s %s\n", "app "+h.Name, app, probe(client, h))
	}
	for i := range f.HAProxySockets {
		st, err := f.ServerStatus(i)
		if err != nil {
			fmt.Fprintf(w, "%v\n", err)
			continue
		}
		var parts []string
		for _, h := range f.Hosts {
			parts = append(parts, h.Name+"="+st[h.Name])
		}
		fmt.Fprintf(w, "haproxy %d: %s\n", i+1, strings.Join(parts, " "))
	}
	if down > 0 {
		return fmt.Errorf("%d of %d fleet processes are not running", down, len(f.Processes))
	}
	return nil
}

// probe summarises GET / and GET /healthz of a host's app.
func probe(c *http.Client, h fleet.Host) string {
	base := "http://" + net.JoinHostPort(h.Address(), strconv.Itoa(h.AppPort))
	resp, err := c.Get(base + "/healthz")
	if err != nil {
		return "healthz: down"
	}
	resp.Body.Close()
	out := "healthz: " + resp.Status
	if resp, err = c.Get(base + "/"); err == nil {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
		resp.Body.Close()
		out += "  / " + strings.TrimSpace(string(b))
	}
	return out
}

// env prints shell assignments describing the fleet.
func env(dir string, w io.Writer) error {
	f, err := fleet.Load(dir)
	if err != nil {
		return err
	}
	var socks, fronts, hosts []string
	for i, s := range f.HAProxySockets {
		socks = append(socks, s)
		fronts = append(fronts, f.FrontendURL(i))
	}
	for _, h := range f.Hosts {
		hosts = append(hosts, h.Name)
	}
	vars := []struct{ k, v string }{
		{"FLEET_DIR", f.Dir},
		{"FLEET_HOSTS", strings.Join(hosts, " ")},
		{"FLEET_KEY", f.ClientKey},
		{"FLEET_KNOWN_HOSTS", f.KnownHosts},
		{"FLEET_INVENTORY", filepath.Join(f.Dir, "inventory.ini")},
		{"FLEET_SOCKETS", strings.Join(socks, " ")},
		{"FLEET_FRONTENDS", strings.Join(fronts, " ")},
		{"FLEET_BACKEND", f.Backend},
	}
	for _, kv := range vars {
		fmt.Fprintf(w, "%s=%s\n", kv.k, shell.Quote(kv.v))
	}
	return nil
}
