// Command rollout-bench runs the same rolling upgrade with rollout, Ansible
// and Ansible + Mitogen on one real local fleet (OpenSSH sshd per host, the
// demo app, one stock HAProxy with `retries 0`, HTTP load running) and
// prints a side-by-side table: median wall time, controller CPU of the whole
// process tree, peak memory, and the ratios. It also measures rollout's
// no-op re-run and online `rollout plan`, and the overhead ratio of its
// applies (wall time ÷ the waits it cannot avoid).
//
//	make bench                 # N=20, three alternating runs per tool
//	make bench N=100 TOOLS=rollout
//	go run ./bench/cmd/rollout-bench -h
//
// Every run deploys a new revision, so every run does real work. A run
// counts only if the tool exits 0, every host ends on the new config and
// serves it, HAProxy has every server UP again, and the load saw zero failed
// requests; otherwise the bench says what went wrong and exits 1.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rollout-sh/rollout/bench"
	"github.com/rollout-sh/rollout/internal/fleet"
)

// mitogenStrategies is where Debian's ansible-mitogen installs its strategy
// plugins.
const mitogenStrategies = "/usr/lib/python3/dist-packages/ansible_mitogen/plugins/strategy"

type config struct {
	n, runs, batch int
	tools          []string
	rollout        string // the rollout binary
	root           string // this checkout
	out            string // results file (markdown); "" = stdout only
	keep           bool
	rolloutFlags   []string // added to every rollout command
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "measure" {
		os.Exit(runMeasure(os.Args[2:]))
	}
	var c config
	var tools, rolloutFlags string
	flag.IntVar(&c.n, "n", 20, "hosts in the fleet (1..200)")
	flag.IntVar(&c.runs, "runs", 3, "runs per tool, alternating between tools")
	flag.IntVar(&c.batch, "batch", 5, "batch size: rollout --batch and Ansible serial")
	flag.StringVar(&tools, "tools", "ansible,mitogen,rollout", "tools to compare, in the order each round runs them")
	flag.StringVar(&c.rollout, "rollout", "bin/rollout", "the rollout binary to measure (make bench builds it)")
	flag.StringVar(&c.root, "root", ".", "the rollout checkout (for examples/demo)")
	flag.StringVar(&c.out, "out", "", "also write the results (markdown) to this file")
	flag.StringVar(&rolloutFlags, "rollout-flags", "", "extra flags for every rollout command, space-separated (e.g. \"--forks 8\")")
	flag.BoolVar(&c.keep, "keep", false, "keep the work directory (fleet logs, playbook, event streams)")
	flag.Parse()
	for _, t := range strings.Split(tools, ",") {
		if t = strings.TrimSpace(t); t != "" {
			c.tools = append(c.tools, t)
		}
	}
	c.rolloutFlags = strings.Fields(rolloutFlags)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, c); err != nil {
		fmt.Fprintf(os.Stderr, "rollout-bench: %v\n", err)
		os.Exit(1)
	}
}

// bed is the test bed: the fleet, its repository and every tool's files.
type bed struct {
	c        config
	self     string // this executable, for `measure`
	work     string
	f        *fleet.Fleet
	app      string
	restart  string
	repo     string
	ansible  string // dir with ansible.cfg, playbook.yml, app.conf.j2
	revision int    // the last revision committed
}

func run(ctx context.Context, c config) error {
	if c.n < 1 || c.n > 200 || c.runs < 1 || c.batch < 1 {
		return fmt.Errorf("-n must be 1..200, -runs and -batch at least 1 (got %d, %d, %d)", c.n, c.runs, c.batch)
	}
	for _, t := range c.tools {
		if t != "rollout" && t != "ansible" && t != "mitogen" {
			return fmt.Errorf("-tools: unknown tool %q (want rollout, ansible, mitogen)", t)
		}
	}
	if err := requirements(c); err != nil {
		return err
	}
	b := &bed{c: c}
	var err error
	if b.self, err = os.Executable(); err != nil {
		return err
	}
	if c.rollout, err = filepath.Abs(c.rollout); err != nil {
		return err
	}
	if c.root, err = filepath.Abs(c.root); err != nil {
		return err
	}
	b.c = c
	// Short: HAProxy's socket path must stay under 108 bytes.
	if b.work, err = os.MkdirTemp("", "rb"); err != nil {
		return err
	}
	defer func() {
		if c.keep || err != nil {
			fmt.Printf("work directory kept: %s\n", b.work)
		} else {
			os.RemoveAll(b.work)
		}
	}()
	if err = b.setUp(ctx); err != nil {
		return err
	}
	defer func() {
		if serr := b.f.Stop(); serr != nil {
			fmt.Fprintf(os.Stderr, "rollout-bench: %v\n", serr)
		}
	}()
	var res results
	res, err = b.measureAll(ctx)
	report := res.markdown(c)
	fmt.Print(report)
	if c.out != "" {
		if werr := os.WriteFile(c.out, []byte(report), 0o644); werr != nil {
			return errors.Join(err, werr)
		}
		fmt.Printf("written to %s\n", c.out)
	}
	if err == nil && len(res.failures) > 0 {
		err = fmt.Errorf("%d problem(s) in the runs; the table is not a valid measurement:\n  %s", len(res.failures), strings.Join(res.failures, "\n  "))
	}
	return err
}

// requirements fails with what to install when a tool is missing.
func requirements(c config) error {
	var missing []string
	if err := fleet.Available(true); err != nil {
		missing = append(missing, err.Error())
	}
	need := map[string]string{"git": "git"}
	if slices.Contains(c.tools, "ansible") || slices.Contains(c.tools, "mitogen") {
		need["ansible-playbook"] = "ansible"
	}
	for cmd, pkg := range need {
		if _, err := exec.LookPath(cmd); err != nil {
			missing = append(missing, fmt.Sprintf("%s (apt-get install %s)", cmd, pkg))
		}
	}
	if slices.Contains(c.tools, "mitogen") {
		if _, err := os.Stat(filepath.Join(mitogenStrategies, "mitogen_linear.py")); err != nil {
			missing = append(missing, "ansible-mitogen (apt-get install ansible-mitogen)")
		}
	}
	if slices.Contains(c.tools, "rollout") {
		if _, err := os.Stat(c.rollout); err != nil {
			missing = append(missing, fmt.Sprintf("the rollout binary %s (make build)", c.rollout))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing: %s\nnext: make bench (its deps target installs them as root)", strings.Join(missing, "; "))
	}
	return nil
}

func (b *bed) setUp(ctx context.Context) error {
	b.app = filepath.Join(b.work, "demo-app")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", b.app, "./examples/demo/app")
	cmd.Dir = b.c.root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build demo-app in %s: %w\n%s", b.c.root, err, out)
	}
	b.restart = filepath.Join(b.c.root, "examples", "demo", "bin", "restart-app")
	fmt.Printf("starting %d sshd hosts with the demo app behind one HAProxy in %s ...\n", b.c.n, b.work)
	t0 := time.Now()
	f, err := fleet.Start(ctx, fleet.Options{Dir: filepath.Join(b.work, "f"), Hosts: b.c.n, HAProxy: 1, AppBinary: b.app, RestartScript: b.restart})
	if err != nil {
		return err
	}
	b.f = f
	fmt.Printf("fleet up in %.1fs\n", time.Since(t0).Seconds())
	if err := f.WriteInventory(filepath.Join(b.work, "inventory.ini")); err != nil {
		return err
	}
	b.repo = filepath.Join(b.work, "repo")
	if err := b.git("init", "-q", "-b", "main", b.repo); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(b.repo, "conf"), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(b.work, "rollout.hcl"), []byte(b.rolloutPlan()), 0o644); err != nil {
		return err
	}
	b.ansible = filepath.Join(b.work, "ansible")
	return b.writeAnsible()
}

// git runs git with a fixed identity and no user configuration.
func (b *bed) git(args ...string) error {
	cmd := exec.Command("git", args...)
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=bench", "GIT_AUTHOR_EMAIL=bench@rollout.invalid",
		"GIT_COMMITTER_NAME=bench", "GIT_COMMITTER_EMAIL=bench@rollout.invalid", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("git %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// expected is the app.conf every tool must leave on host h for revision k.
// rollout renders it from the repository's template, Ansible from
// app.conf.j2; both must produce exactly these bytes.
func expected(h fleet.Host, k int) string {
	return fmt.Sprintf("# demo-app config for %s, rendered by the bench\nversion = %d\nmessage = \"bench revision %d on %s\"\nlisten = 127.0.0.1:%d\n",
		h.Name, k, k, h.Name, h.AppPort)
}

// commit commits revision k of the template and tags it bench-K.
func (b *bed) commit(k int) (string, error) {
	tmpl := fmt.Sprintf("# demo-app config for ${host.name}, rendered by the bench\nversion = %d\nmessage = \"bench revision %d on ${host.name}\"\nlisten = 127.0.0.1:${host.vars.app_port}\n", k, k)
	if err := os.WriteFile(filepath.Join(b.repo, "conf", "app.conf.tmpl"), []byte(tmpl), 0o644); err != nil {
		return "", err
	}
	tag := "bench-" + strconv.Itoa(k)
	for _, args := range [][]string{{"add", "-A"}, {"commit", "-q", "-m", "revision " + strconv.Itoa(k)}, {"tag", tag}} {
		if err := b.git(append([]string{"-C", b.repo}, args...)...); err != nil {
			return "", err
		}
	}
	b.revision = k
	return tag, nil
}

func (b *bed) rolloutPlan() string {
	return fmt.Sprintf(`# the bench's rolling upgrade (written by rollout-bench): drain, validated
# template, restart, health gate, back into HAProxy; the revision comes from
# --revision on each run.
plan "bench" {
  inventory = "inventory.ini"
  hosts     = "web"
  repo      = %q
  revision  = "bench-1"
  state_dir = "${host.vars.root}/state"
  drain "haproxy" {
    endpoints = ["unix:%s"]
    backend   = "web"
    timeout   = "30s"
  }
%s  health "http" {
    url         = "http://127.0.0.1:${host.vars.app_port}/healthz"
    interval    = "100ms"
    healthy_for = "0s"
    deadline    = "30s"
  }
}
`, b.repo, b.f.HAProxySockets[0], fleet.DemoAppBlocks(b.app, b.restart))
}

// writeAnsible writes the playbook doing the same upgrade as rolloutPlan,
// in the way an Ansible user would: community.general.haproxy on the
// controller (drain until no sessions are left, then enable and wait for UP),
// template with validate, the restart command, uri with until. Pipelining
// and ControlPersist are on: Ansible's fastest settings.
func (b *bed) writeAnsible() error {
	if err := os.MkdirAll(filepath.Join(b.ansible, "cp"), 0o700); err != nil {
		return err
	}
	cfg := fmt.Sprintf(`# written by rollout-bench
[defaults]
inventory = %s
forks = %d
gathering = explicit
host_key_checking = True
interpreter_python = /usr/bin/python3
retry_files_enabled = False
deprecation_warnings = False
nocolor = True

[ssh_connection]
pipelining = True
ssh_args = %s
control_path_dir = %s
`, filepath.Join(b.work, "inventory.ini"), b.c.n, b.sshArgs(), filepath.Join(b.ansible, "cp"))
	haproxy := func(state string) string {
		extra := ""
		if state == "disabled" {
			extra = "\n        drain: true"
		}
		return fmt.Sprintf(`      community.general.haproxy:
        state: %s%s
        host: "{{ inventory_hostname }}"
        backend: web
        socket: "{{ haproxy_socket }}"
        wait: true
        wait_interval: 1
        wait_retries: 30
      delegate_to: localhost`, state, extra)
	}
	play := fmt.Sprintf(`# written by rollout-bench: the same rolling upgrade as ../rollout.hcl
- name: rolling upgrade of the demo app
  hosts: web
  serial: %d
  gather_facts: false
  any_errors_fatal: true
  vars:
    haproxy_socket: %s
    demo_app: %s
    restart_app: %s
  tasks:
    - name: drain in HAProxy until no sessions are left
%s
    - name: render the config, validated before it is installed
      ansible.builtin.template:
        src: app.conf.j2
        dest: "{{ root }}/etc/app.conf"
        mode: "0644"
        validate: "{{ demo_app }} -check -config %%s"
    - name: restart the app
      ansible.builtin.command: "{{ restart_app }} {{ root }}"
      environment:
        DEMO_APP: "{{ demo_app }}"
    - name: wait until the app is healthy
      ansible.builtin.uri:
        url: "http://127.0.0.1:{{ app_port }}/healthz"
      register: health
      until: health.status == 200
      retries: 30
      delay: 1
      delegate_to: localhost
    - name: back into HAProxy and wait until it reports UP
%s
`, b.c.batch, b.f.HAProxySockets[0], b.app, b.restart, haproxy("disabled"), haproxy("enabled"))
	tmpl := "# demo-app config for {{ inventory_hostname }}, rendered by the bench\nversion = {{ app_version }}\nmessage = \"bench revision {{ app_version }} on {{ inventory_hostname }}\"\nlisten = 127.0.0.1:{{ app_port }}\n"
	for name, body := range map[string]string{"ansible.cfg": cfg, "playbook.yml": play, "app.conf.j2": tmpl} {
		if err := os.WriteFile(filepath.Join(b.ansible, name), []byte(body), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// sshArgs are Ansible's ssh_args: one master connection per host kept for
// 60 s, the fleet's known_hosts, strict host key checking. Mitogen gets the
// same (it keeps its own connection per host for the run anyway).
func (b *bed) sshArgs() string {
	return "-o ControlMaster=auto -o ControlPersist=60s -F /dev/null -o IdentitiesOnly=yes -o UserKnownHostsFile=" + b.f.KnownHosts + " -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes"
}

// runResult is one measured run.
type runResult struct {
	tool     string // rollout, ansible, mitogen, noop, plan
	revision int
	usage    Usage
	ok, fail int64 // client requests answered / failed during the run
	waits    *bench.Waits
	problems []string
	log      string
}

func (r runResult) failed() bool { return len(r.problems) > 0 }

// measured runs argv under `rollout-bench measure` in dir with env added,
// with stdout and stderr to files named after the run.
func (b *bed) measured(ctx context.Context, name, dir string, env []string, argv ...string) (Usage, string, error) {
	usageFile := filepath.Join(b.work, "runs", name+".usage.json")
	outFile := filepath.Join(b.work, "runs", name+".out")
	if err := os.MkdirAll(filepath.Dir(usageFile), 0o755); err != nil {
		return Usage{}, "", err
	}
	out, err := os.Create(outFile)
	if err != nil {
		return Usage{}, "", err
	}
	defer out.Close()
	cmd := exec.CommandContext(ctx, b.self, append([]string{"measure", "-o", usageFile, "--"}, argv...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = out, out
	rerr := cmd.Run()
	var u Usage
	data, err := os.ReadFile(usageFile)
	if err != nil {
		return Usage{}, outFile, fmt.Errorf("%s: no measurement (%v): %w", name, rerr, err)
	}
	if err := json.Unmarshal(data, &u); err != nil {
		return Usage{}, outFile, fmt.Errorf("%s: %w", name, err)
	}
	return u, outFile, nil
}

// upgrade runs one rolling upgrade to a new revision with tool, under load,
// and verifies the fleet afterwards.
func (b *bed) upgrade(ctx context.Context, tool string, round int) (runResult, error) {
	if err := b.f.WaitServersUp(ctx, 60*time.Second); err != nil {
		return runResult{}, fmt.Errorf("before %s: %w", tool, err)
	}
	tag, err := b.commit(b.revision + 1)
	if err != nil {
		return runResult{}, err
	}
	k := b.revision
	name := fmt.Sprintf("%d-%s-r%d", round, tool, k)
	var dir string
	var env, argv []string
	switch tool {
	case "rollout":
		// --adopt: the Ansible runs in between rewrote app.conf behind
		// rollout's back, which rollout reports as drift otherwise.
		dir, argv = b.work, append([]string{b.c.rollout, "apply", "--revision", tag, "--batch", strconv.Itoa(b.c.batch), "--adopt", "--yes", "--ui", "json", "--known-hosts", b.f.KnownHosts}, b.c.rolloutFlags...)
	case "ansible", "mitogen":
		dir = b.ansible
		env = []string{"ANSIBLE_CONFIG=" + filepath.Join(b.ansible, "ansible.cfg")}
		if tool == "mitogen" {
			env = append(env, "ANSIBLE_STRATEGY_PLUGINS="+mitogenStrategies, "ANSIBLE_STRATEGY=mitogen_linear")
		}
		argv = []string{"ansible-playbook", "playbook.yml", "-e", "app_version=" + strconv.Itoa(k)}
	}
	fmt.Printf("round %d: %-8s → revision %d ... ", round, tool, k)
	load := fleet.StartLoad(b.f.FrontendURL(0)+"/", 4, 1_000_000, 5*time.Millisecond)
	u, log, err := b.measured(ctx, name, dir, env, argv...)
	ok, failed, errs := load.Stop()
	if err != nil {
		return runResult{}, err
	}
	r := runResult{tool: tool, revision: k, usage: u, ok: ok, fail: failed, log: log}
	if u.ExitCode != 0 {
		r.problems = append(r.problems, fmt.Sprintf("exit code %d (output: %s)", u.ExitCode, log))
	}
	if failed > 0 {
		r.problems = append(r.problems, fmt.Sprintf("%d of %d client requests failed, e.g. %s", failed, ok+failed, strings.Join(errs, "; ")))
	}
	if ok == 0 {
		r.problems = append(r.problems, "the load got no answer at all")
	}
	r.problems = append(r.problems, b.verify(ctx, k)...)
	if tool == "rollout" && u.ExitCode == 0 {
		stream, err := os.ReadFile(log)
		if err == nil {
			var w bench.Waits
			if w, err = bench.ParseWaits(stream); err == nil {
				r.waits = &w
			}
		}
		if err != nil {
			r.problems = append(r.problems, "overhead: "+err.Error())
		}
	}
	status := "ok"
	if r.failed() {
		status = "FAILED: " + strings.Join(r.problems, "; ")
	}
	fmt.Printf("%.1fs wall, %.2fs CPU, %d requests, %s\n", u.WallS, u.CPUS(), ok+failed, status)
	return r, nil
}

// verify checks that every host has revision k's config, serves it, and is
// UP in HAProxy.
func (b *bed) verify(ctx context.Context, k int) []string {
	var problems []string
	client := &http.Client{Timeout: 5 * time.Second}
	for _, h := range b.f.Hosts {
		got, err := os.ReadFile(h.ConfigPath())
		if err != nil || string(got) != expected(h, k) {
			first, _, _ := strings.Cut(strings.TrimPrefix(string(got), "# "), "\n")
			if v := regexp.MustCompile(`(?m)^version = .*$`).FindString(string(got)); v != "" {
				first = v
			}
			problems = append(problems, fmt.Sprintf("%s: %s does not hold revision %d (%v; it has %q)", h.Name, h.ConfigPath(), k, err, first))
			continue
		}
		resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/", h.AppPort))
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: app: %v", h.Name, err))
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := fmt.Sprintf("version=%d ", k); !strings.HasPrefix(string(body), want) {
			problems = append(problems, fmt.Sprintf("%s: app serves %q, want %q...", h.Name, strings.TrimSpace(string(body)), want))
		}
	}
	if len(problems) > 3 {
		problems = append(problems[:3], fmt.Sprintf("and %d more hosts", len(problems)-3))
	}
	if err := b.f.WaitServersUp(ctx, 10*time.Second); err != nil {
		problems = append(problems, "haproxy: "+err.Error())
	}
	return problems
}

// rolloutReadOnly runs the no-op re-run (`apply` of the revision every host
// is on) or the online `plan` of the next revision, and checks it did what
// it says: the no-op changes nothing, the plan reports pending changes.
func (b *bed) rolloutReadOnly(ctx context.Context, what string, i int) (runResult, error) {
	var argv []string
	cur := "bench-" + strconv.Itoa(b.revision)
	if what == "noop" {
		argv = []string{b.c.rollout, "apply", "--revision", cur, "--batch", strconv.Itoa(b.c.batch), "--yes", "--ui", "json", "--known-hosts", b.f.KnownHosts}
	} else {
		argv = []string{b.c.rollout, "plan", "--revision", "bench-next", "--detailed-exitcode", "--ui", "plain", "--known-hosts", b.f.KnownHosts}
	}
	argv = append(argv, b.c.rolloutFlags...)
	fmt.Printf("rollout %-4s #%d ... ", what, i)
	u, log, err := b.measured(ctx, fmt.Sprintf("%s-%d", what, i), b.work, nil, argv...)
	if err != nil {
		return runResult{}, err
	}
	r := runResult{tool: what, revision: b.revision, usage: u, log: log}
	out, _ := os.ReadFile(log)
	switch {
	case what == "noop" && u.ExitCode != 0:
		r.problems = append(r.problems, fmt.Sprintf("exit code %d (output: %s)", u.ExitCode, log))
	case what == "noop" && strings.Contains(string(out), `"phase":"restart"`):
		r.problems = append(r.problems, "the no-op re-run restarted something (output: "+log+")")
	case what == "plan" && u.ExitCode != 4:
		r.problems = append(r.problems, fmt.Sprintf("exit code %d, want 4 (changes pending) (output: %s)", u.ExitCode, log))
	}
	r.problems = append(r.problems, b.verify(ctx, b.revision)...)
	status := "ok"
	if r.failed() {
		status = "FAILED: " + strings.Join(r.problems, "; ")
	}
	fmt.Printf("%.2fs wall, %.2fs CPU, %s\n", u.WallS, u.CPUS(), status)
	return r, nil
}

func (b *bed) measureAll(ctx context.Context) (results, error) {
	res := results{n: b.c.n, machine: machine(), commit: commit(b.c.root), version: "(none)"}
	if out, err := exec.Command(b.c.rollout, "version").Output(); err == nil {
		res.version = strings.TrimSpace(string(out))
	}
	for round := 1; round <= b.c.runs; round++ {
		for _, tool := range b.c.tools {
			r, err := b.upgrade(ctx, tool, round)
			if err != nil {
				return res, err
			}
			res.add(r)
		}
	}
	if !slices.Contains(b.c.tools, "rollout") {
		return res, nil
	}
	ro := res.byTool["rollout"]
	lastOK := len(ro) > 0 && !ro[len(ro)-1].failed()
	if last := b.c.tools[len(b.c.tools)-1]; last != "rollout" || !lastOK {
		// The read-only runs need every host on rollout's last revision.
		r, err := b.upgrade(ctx, "rollout", b.c.runs+1)
		if err != nil {
			return res, err
		}
		if lastOK = !r.failed(); !lastOK {
			res.add(r)
		}
	}
	if !lastOK {
		res.skipped = "the no-op re-run and online plan were not measured: no rollout apply brought every host to its revision"
		fmt.Println(res.skipped)
		return res, nil
	}
	// The next revision, for `rollout plan` to find pending changes.
	cur := b.revision
	if _, err := b.commit(cur + 1); err != nil {
		return res, err
	}
	if err := b.git("-C", b.repo, "tag", "-f", "bench-next"); err != nil {
		return res, err
	}
	b.revision = cur
	for _, what := range []string{"noop", "plan"} {
		for i := 1; i <= b.c.runs; i++ {
			r, err := b.rolloutReadOnly(ctx, what, i)
			if err != nil {
				return res, err
			}
			res.add(r)
		}
	}
	return res, nil
}
