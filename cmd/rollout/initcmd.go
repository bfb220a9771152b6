package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/rollout-sh/rollout/inventory"
	"github.com/rollout-sh/rollout/plan"
	"github.com/rollout-sh/rollout/rollout"
)

// initOptions are the answers `rollout init` needs. On a terminal every
// one that was not given as a flag is asked for, with the detected value
// as the default; without a terminal the flags and detected values are
// used as they are.
type initOptions struct {
	*GlobalOptions
	Out       string
	Force     bool
	Name      string
	Inventory string
	Hosts     string
	LBSocket  string
	Backend   string
	Service   string
	Restart   string
	HealthURL string
	Revision  string
	Files     []string // SOURCE=DEST

	set map[string]bool // flags given on the command line
}

func newInitCmd(ios *IOStreams, g *GlobalOptions) *cobra.Command {
	o := &initOptions{GlobalOptions: g}
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Write a commented starter rollout.hcl for an existing inventory and config repo",
		Long: `init looks at the current directory — an Ansible inventory (or ansible.cfg naming
one), group_vars/ and host_vars/, a templates/ directory, the git repository —
and writes a commented starter plan that ` + "`rollout validate`" + ` accepts. On a
terminal it asks for the group, the load balancer socket and backend, the
service, its restart command and health URL; otherwise it takes flags.`,
		Example: `  rollout init
  rollout init --inventory inventory.ini --hosts web --backend web \
    --lb-socket /run/haproxy/admin.sock --service nginx \
    --health-url 'http://${host.address}/healthz' --file conf/nginx.conf=/etc/nginx/nginx.conf`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.set = map[string]bool{}
			cmd.Flags().Visit(func(f *pflag.Flag) { o.set[f.Name] = true })
			return initRun(ios, o)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.Out, "out", "o", "rollout.hcl", "plan file to write")
	f.BoolVar(&o.Force, "force", false, "overwrite an existing plan file")
	f.StringVar(&o.Name, "name", "", "plan name (default: the host group)")
	f.StringVar(&o.Inventory, "inventory", "", "Ansible inventory (default: ansible.cfg's, or inventory.ini / inventory.yml / hosts)")
	f.StringVar(&o.Hosts, "hosts", "", "host pattern to roll (default: the group named web, or the inventory's only group)")
	f.StringVar(&o.LBSocket, "lb-socket", "/run/haproxy/admin.sock", "HAProxy admin socket (unix:PATH or tcp:HOST:PORT; a bare path means unix)")
	f.StringVar(&o.Backend, "backend", "", "HAProxy backend the hosts serve in (default: the host pattern)")
	f.StringVar(&o.Service, "service", "", "the service being upgraded (default: the host pattern)")
	f.StringVar(&o.Restart, "restart", "", "restart command (default: systemctl restart SERVICE)")
	f.StringVar(&o.HealthURL, "health-url", "", "URL that answers 200 when a host is healthy (default: http://${host.address}/)")
	f.StringVar(&o.Revision, "revision", "", "tag or full commit to pin (default: the repository's HEAD commit)")
	f.StringArrayVar(&o.Files, "file", nil, "SOURCE=DEST: a file in the repo and where it goes on the hosts (repeatable; default: everything committed under templates/)")
	return cmd
}

// layout is what init found in the directory.
type layout struct {
	dir        string // where the plan goes
	ansibleCfg bool
	varsDirs   []string // group_vars, host_vars
	inv        *inventory.Inventory
	invPath    string // as written in the plan (relative to it)
	repo       *plan.Repo
	repoRoot   string
	head       string
	files      []initFile
}

type initFile struct {
	source, dest string
	template     string // "", "hcl" or "jinja2"
	committed    bool
}

func initRun(ios *IOStreams, o *initOptions) error {
	out, err := filepath.Abs(o.Out)
	if err != nil {
		return err
	}
	if _, err := os.Stat(out); err == nil && !o.Force {
		return &rollout.Refusal{
			Problem: fmt.Sprintf("init: %s exists; nothing was written", o.Out),
			Next:    "rollout init --force --out " + shellWord(o.Out) + "   (or another --out)",
		}
	}
	l := &layout{dir: filepath.Dir(out)}
	if err := l.detect(o); err != nil {
		return err
	}
	ask := newAsker(ios, o)
	if ask.on {
		fmt.Fprintf(ios.Out, "rollout init: writing %s. Press Enter to keep [the default].\n", o.Out)
		l.describe(ios)
	}
	groups := l.inv.GroupNames()
	if o.Hosts == "" {
		o.Hosts = defaultGroup(groups)
	}
	o.Hosts = ask.str("hosts", "host pattern to roll (groups: "+strings.Join(groups, ", ")+")", o.Hosts)
	if _, err := l.inv.Select(o.Hosts); err != nil {
		return &rollout.Refusal{
			Problem: fmt.Sprintf("init: hosts %q: %v", o.Hosts, err),
			Next:    "rollout init --inventory " + shellWord(l.invPath) + " --hosts " + shellWord(defaultGroup(groups)),
		}
	}
	if o.Backend == "" {
		o.Backend = o.Hosts
	}
	if o.Service == "" {
		o.Service = o.Hosts
	}
	o.LBSocket = ask.str("lb-socket", "HAProxy admin socket", o.LBSocket)
	o.Backend = ask.str("backend", "HAProxy backend", o.Backend)
	o.Service = ask.str("service", "service (systemd unit) being upgraded", o.Service)
	if o.Restart == "" {
		o.Restart = "systemctl restart " + o.Service
	}
	o.Restart = ask.str("restart", "restart command", o.Restart)
	if o.HealthURL == "" {
		o.HealthURL = "http://${host.address}/"
	}
	o.HealthURL = ask.str("health-url", "health URL (answers 200 when healthy)", o.HealthURL)
	if o.Revision == "" {
		o.Revision = l.head
	}
	o.Revision = ask.str("revision", "revision to pin (tag or full hash)", o.Revision)
	if len(o.Files) > 0 {
		l.files = nil
		for _, spec := range o.Files {
			src, dest, ok := strings.Cut(spec, "=")
			if !ok || src == "" || !strings.HasPrefix(dest, "/") {
				return &rollout.Refusal{Problem: fmt.Sprintf("init: --file %q: want SOURCE=/absolute/dest", spec), Next: "rollout init --file conf/app.conf=/etc/app/app.conf"}
			}
			l.files = append(l.files, l.file(src, dest))
		}
	} else if len(l.files) == 0 && ask.on {
		src := ask.str("", "a config file to deploy (path in the repository)", "")
		dest := ask.str("", "where it goes on the hosts (absolute path)", "/etc/"+o.Service+"/"+filepath.Base(src))
		if src != "" {
			l.files = append(l.files, l.file(src, dest))
		}
	}
	active := 0
	for _, f := range l.files {
		if f.committed {
			active++
		}
	}
	if active == 0 {
		return &rollout.Refusal{
			Problem: "init: nothing to deploy: no committed file under templates/ and no --file; a plan needs at least one file",
			Next:    "rollout init --file conf/" + o.Service + ".conf=/etc/" + o.Service + "/" + o.Service + ".conf",
		}
	}
	if o.Name == "" {
		o.Name = planName(o.Hosts)
	}
	text := renderInitPlan(o, l)
	if err := os.WriteFile(out, []byte(text), 0o644); err != nil {
		return fmt.Errorf("init: %w", err)
	}
	next := "rollout validate"
	if filepath.Base(o.Out) != "rollout.hcl" || filepath.Dir(out) != mustGetwd() {
		next += " " + shellWord(o.Out)
	}
	fmt.Fprintf(ios.Out, "wrote %s (plan %q, %s, %d file(s)); read the CHECK comments in it.\n", o.Out, o.Name, o.Hosts, active)
	if mustCount(l.inv, o.Hosts) == 1 {
		fmt.Fprintf(ios.Out, "warning: hosts = %q selects one host: validate refuses it until you uncomment allow_downtime = true (rolling it means downtime)\n", o.Hosts)
	}
	fmt.Fprintf(ios.Out, "  next: %s\n", next)
	return nil
}

func mustGetwd() string { d, _ := os.Getwd(); return d }

// detect finds the inventory, the Ansible layout, the repository and the
// templates.
func (l *layout) detect(o *initOptions) error {
	if _, err := os.Stat(filepath.Join(l.dir, "ansible.cfg")); err == nil {
		l.ansibleCfg = true
	}
	for _, d := range []string{"group_vars", "host_vars"} {
		if st, err := os.Stat(filepath.Join(l.dir, d)); err == nil && st.IsDir() {
			l.varsDirs = append(l.varsDirs, d)
		}
	}
	candidates := []string{o.Inventory}
	if o.Inventory == "" {
		candidates = append(ansibleCfgInventory(filepath.Join(l.dir, "ansible.cfg")),
			"inventory.ini", "inventory.yml", "inventory.yaml", "hosts", "hosts.ini", "hosts.yml", "inventory")
	}
	var tried []string
	for _, c := range candidates {
		if c == "" {
			continue
		}
		p := c
		if !filepath.IsAbs(p) {
			p = filepath.Join(l.dir, c)
		}
		if _, err := os.Stat(p); err != nil {
			if o.Inventory != "" {
				return &rollout.Refusal{Problem: fmt.Sprintf("init: --inventory %s: %v", o.Inventory, err), Next: "rollout init --inventory path/to/inventory.ini"}
			}
			continue
		}
		inv, err := inventory.Load(p)
		if err != nil {
			tried = append(tried, fmt.Sprintf("%s: %v", c, err))
			continue
		}
		l.inv = inv
		if rel, err := filepath.Rel(l.dir, p); err == nil && !strings.HasPrefix(rel, "..") {
			l.invPath = rel
		} else {
			l.invPath = p
		}
		break
	}
	if l.inv == nil {
		problem := "init: no inventory found (looked for ansible.cfg's inventory, inventory.ini, inventory.yml, hosts)"
		if len(tried) > 0 {
			problem = "init: no inventory could be read: " + strings.Join(tried, "; ")
		}
		return &rollout.Refusal{Problem: problem, Next: "rollout init --inventory path/to/inventory.ini"}
	}
	repo, err := plan.OpenRepo(l.dir)
	if err != nil {
		return &rollout.Refusal{
			Problem: fmt.Sprintf("init: %s is not in a git repository; rollout deploys files from a pinned commit", l.dir),
			Next:    "git init && git add -A && git commit -m 'config' && rollout init",
		}
	}
	l.repo, l.repoRoot = repo, repo.Path()
	if head, err := repo.ResolveAny("HEAD"); err == nil {
		l.head = head
	} else {
		return &rollout.Refusal{
			Problem: fmt.Sprintf("init: the repository %s has no commit yet", l.repoRoot),
			Next:    "git add -A && git commit -m 'config' && rollout init",
		}
	}
	tdir := filepath.Join(l.dir, "templates")
	if st, err := os.Stat(tdir); err == nil && st.IsDir() {
		_ = filepath.WalkDir(tdir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || strings.HasPrefix(d.Name(), ".") {
				return nil
			}
			rel, _ := filepath.Rel(l.repoRoot, p)
			inTemplates, _ := filepath.Rel(tdir, p)
			name := strings.TrimSuffix(strings.TrimSuffix(inTemplates, ".j2"), ".tmpl")
			l.files = append(l.files, l.file(filepath.ToSlash(rel), "/etc/"+serviceOr(o, "app")+"/"+filepath.ToSlash(name)))
			return nil
		})
	}
	return nil
}

func serviceOr(o *initOptions, def string) string {
	switch {
	case o.Service != "":
		return o.Service
	case o.Hosts != "":
		return planName(o.Hosts)
	}
	return def
}

// file describes one deployable file; source is relative to the plan's
// directory on the command line and to the repository root in the plan.
func (l *layout) file(source, dest string) initFile {
	rel := source
	if !strings.HasPrefix(source, "/") {
		if r, err := filepath.Rel(l.repoRoot, filepath.Join(l.dir, source)); err == nil {
			rel = filepath.ToSlash(r)
		}
	}
	f := initFile{source: rel, dest: dest}
	switch {
	case strings.HasSuffix(rel, ".j2"):
		f.template = "jinja2"
	case strings.HasSuffix(rel, ".tmpl"):
		f.template = "hcl"
	}
	if _, err := l.repo.ReadFile(l.head, rel); err == nil {
		f.committed = true
	}
	return f
}

func (l *layout) describe(ios *IOStreams) {
	fmt.Fprintf(ios.Out, "  inventory: %s (%d hosts; groups %s)\n", l.invPath, len(l.inv.Hosts()), strings.Join(l.inv.GroupNames(), ", "))
	if l.ansibleCfg || len(l.varsDirs) > 0 {
		fmt.Fprintf(ios.Out, "  Ansible layout: %s\n", strings.Join(l.ansibleBits(), ", "))
	}
	fmt.Fprintf(ios.Out, "  repository: %s at %s\n", l.repoRoot, plan.ShortRev(l.head))
	for _, f := range l.files {
		fmt.Fprintf(ios.Out, "  file: %s\n", f.source)
	}
}

func (l *layout) ansibleBits() []string {
	var bits []string
	if l.ansibleCfg {
		bits = append(bits, "ansible.cfg")
	}
	for _, d := range l.varsDirs {
		bits = append(bits, d+"/")
	}
	return bits
}

// ansibleCfgInventory returns the inventory named in ansible.cfg's
// [defaults] section, if any.
func ansibleCfgInventory(path string) []string {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			section = strings.TrimSpace(line[1 : len(line)-1])
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if ok && section == "defaults" && (strings.TrimSpace(k) == "inventory" || strings.TrimSpace(k) == "hostfile") {
			var out []string
			for _, p := range strings.Split(v, ",") {
				if p = strings.TrimSpace(p); p != "" {
					out = append(out, p)
				}
			}
			return out
		}
	}
	return nil
}

func defaultGroup(groups []string) string {
	for _, g := range groups {
		if g == "web" {
			return g
		}
	}
	if len(groups) > 0 {
		return groups[0]
	}
	return "all"
}

// planName makes a plan label from a host pattern ("web:&prod" → "web-prod").
func planName(pattern string) string {
	var b strings.Builder
	for _, r := range pattern {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
			b.WriteRune(r)
		default:
			if s := b.String(); s != "" && !strings.HasSuffix(s, "-") {
				b.WriteByte('-')
			}
		}
	}
	name := strings.Trim(b.String(), "-.")
	if name == "" {
		return "web"
	}
	return name
}

// shellWord quotes s for pasting into a shell when it needs it.
func shellWord(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@%+=:,./_-") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// asker asks on a terminal for values whose flag was not given.
type asker struct {
	ios *IOStreams
	o   *initOptions
	in  *bufio.Reader
	on  bool
}

func newAsker(ios *IOStreams, o *initOptions) *asker {
	return &asker{ios: ios, o: o, in: bufio.NewReader(ios.In), on: ios.CanPrompt() && !o.Yes}
}

func (a *asker) str(flag, question, def string) string {
	if !a.on || (flag != "" && a.o.set[flag]) {
		return def
	}
	if def != "" {
		fmt.Fprintf(a.ios.Out, "%s [%s]: ", question, def)
	} else {
		fmt.Fprintf(a.ios.Out, "%s: ", question)
	}
	line, _ := a.in.ReadString('\n') // end of input: keep the default
	if line = strings.TrimSpace(line); line != "" {
		return line
	}
	return def
}

// hclString quotes s as an HCL string literal; ${...} and %{...} stay
// template syntax (the user writes ${host.address} on purpose).
func hclString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}

func renderInitPlan(o *initOptions, l *layout) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("# rollout plan written by `rollout init`. Reference: docs/plan.md.\n")
	w("# Lines marked CHECK are guesses: read them before the first apply.\n")
	w("#\n#   rollout validate            # static checks; touches no host\n")
	w("#   rollout plan --limit HOST   # what would change on HOST (read-only)\n")
	w("#   rollout apply --limit HOST  # the first, canary host\n")
	if l.ansibleCfg || len(l.varsDirs) > 0 {
		w("#\n# Ansible layout found (%s): rollout reads the inventory as\n", strings.Join(l.ansibleBits(), ", "))
		w("# ansible-core does, so host.vars.* below sees the same variables.\n")
	}
	w("plan %s {\n", hclString(o.Name))
	w("  inventory = %s\n", hclString(l.invPath))
	w("  hosts     = %s\n", hclString(o.Hosts))
	w("  # The commit to roll: a tag or a full hash, never a branch. CHECK: pin\n")
	w("  # a tag of the config you mean to deploy (git tag v1 && revision = \"v1\").\n")
	w("  revision  = %s\n", hclString(o.Revision))
	w("  batch     = [1, \"25%%\"]   # one canary host, then a quarter of the pool at a time\n")
	w("  max_failures = 0          # the first failed host halts the run\n")
	w("  on_failure   = \"halt\"     # a failed host stays drained for inspection; \"rollback\" once hosts have a previous revision\n")
	w("  # min_in_service = \"75%%\" # never fewer serving backends than this\n")
	n := mustCount(l.inv, o.Hosts)
	w("  # expect_hosts   = %d      # refuse a pattern that selects another number of hosts\n", n)
	if n == 1 {
		w("  # CHECK: hosts selects one host, so rolling it takes the service down.\n")
		w("  # rollout refuses that unless you accept it here:\n")
		w("  # allow_downtime = true\n")
	}
	w("\n")
	sock := o.LBSocket
	if !strings.HasPrefix(sock, "unix:") && !strings.HasPrefix(sock, "tcp:") {
		sock = "unix:" + sock
	}
	w("  # Taken out of every load balancer before anything changes. List both\n")
	w("  # LBs of an HA pair. The socket needs `stats socket ... level admin`.\n")
	w("  drain \"haproxy\" {\n")
	w("    endpoints = [%s]\n", hclString(sock))
	w("    backend   = %s\n", hclString(o.Backend))
	w("    server    = host.name   # CHECK: the server's name in the backend\n")
	w("    timeout   = \"2m\"        # wait this long for sessions to reach zero\n")
	w("    ramp      = [\"10%%\", \"50%%\", \"100%%\"]\n")
	w("  }\n\n")
	for _, f := range l.files {
		name := filepath.Base(strings.TrimSuffix(strings.TrimSuffix(f.source, ".j2"), ".tmpl"))
		prefix := ""
		switch {
		case !f.committed:
			w("  # %s is not committed at %s: commit it, then uncomment.\n", f.source, plan.ShortRev(o.Revision))
			prefix = "# "
		}
		w("  %sfile %s {\n", prefix, hclString(name))
		w("  %s  source   = %s\n", prefix, hclString(f.source))
		switch f.template {
		case "hcl":
			w("  %s  template = true   # HCL template: ${host.name}, ${host.vars.NAME}\n", prefix)
		case "jinja2":
			w("  %s  template = \"jinja2\"   # Ansible-style: {{ inventory_hostname }}, group_vars, hostvars (docs/ansible.md)\n", prefix)
		}
		w("  %s  dest     = %s   # CHECK\n", prefix, hclString(f.dest))
		w("  %s  # validate = \"%s -t -c %%s\"   # the service's syntax check of the staged copy\n", prefix, o.Service)
		w("  %s}\n\n", prefix)
	}
	w("  # check = \"%s -t\"   # whole-config check after files are in place, before the restart\n", o.Service)
	w("  restart = %s\n\n", hclString(o.Restart))
	w("  health \"http\" {\n")
	w("    url         = %s\n", hclString(o.HealthURL))
	w("    status      = 200\n")
	w("    healthy_for = \"10s\"   # must pass continuously this long\n")
	w("    deadline    = \"2m\"\n")
	w("    # unit     = %s   # flap guard: a systemd restart during the window fails the host\n", hclString(o.Service))
	w("  }\n")
	w("}\n")
	return b.String()
}

func mustCount(inv *inventory.Inventory, pattern string) int {
	hs, _ := inv.Select(pattern)
	return len(hs)
}
