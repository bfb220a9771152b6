package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rollout-sh/rollout/internal/fleet"
	"github.com/rollout-sh/rollout/rollout/event"
)

// nginxFleet is the fleet of examples/nginx: sshd per host, HAProxy in
// front, and Debian's nginx on every host (each with its own root and port
// on loopback), already running an initial config as an existing fleet
// would. The config repository holds examples/nginx as it is, tagged v1,
// v2 (the revision the example pins) and broken (a directive nginx -t
// rejects, in the main config).
type nginxFleet struct {
	*env
	tags map[string]string
}

// nginxBootstrap is the config each host runs before rollout ever touched
// it: same pid file and port as the example's, an "initial" page.
func nginxBootstrap(h fleet.Host) string {
	return fmt.Sprintf(`pid %[1]s/run/nginx.pid;
error_log %[1]s/var/log/nginx/error.log;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path %[1]s/var/lib/nginx/body;
  proxy_temp_path %[1]s/var/lib/nginx/proxy;
  fastcgi_temp_path %[1]s/var/lib/nginx/fastcgi;
  uwsgi_temp_path %[1]s/var/lib/nginx/uwsgi;
  scgi_temp_path %[1]s/var/lib/nginx/scgi;
  server {
    listen 127.0.0.1:%[2]d;
    location = /healthz { return 200 "ok\n"; }
    location / { return 200 "%[3]s initial\n"; }
  }
}
`, h.Root, h.AppPort, h.Name)
}

func setupNginx(t *testing.T, hosts int) *nginxFleet {
	t.Helper()
	fleet.RequireTool(t, "nginx")
	fleet.RequireTool(t, "git")
	dir := t.TempDir()
	f := fleet.StartT(t, fleet.Options{Dir: filepath.Join(dir, "fleet"), Hosts: hosts, HAProxy: 1})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, h := range f.Hosts {
		for _, d := range []string{"etc/nginx/conf.d", "run", "var/log/nginx", "var/lib/nginx", "var/lib/rollout"} {
			if err := os.MkdirAll(filepath.Join(h.Root, d), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		conf := filepath.Join(h.Root, "etc/nginx/nginx.conf")
		if err := os.WriteFile(conf, []byte(nginxBootstrap(h)), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := f.StartNginx(ctx, h, conf, h.AppPort); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.WaitServersUp(ctx, 30*time.Second); err != nil {
		t.Fatal(err)
	}

	repo := filepath.Join(dir, "repo")
	src := filepath.Join(moduleRoot(t), "examples", "nginx")
	for _, p := range []string{"rollout.hcl", "README.md", "nginx/nginx.conf.tmpl", "nginx/conf.d/site.conf.tmpl"} {
		mustCopy(t, filepath.Join(src, p), filepath.Join(repo, p))
	}
	mustWrite(t, filepath.Join(repo, ".gitignore"), "inventory.ini\n.rollout/\n")
	n := &nginxFleet{env: &env{t: t, f: f, dir: repo, repo: repo, plan: filepath.Join(repo, "rollout.hcl")}, tags: map[string]string{}}
	n.git("init", "-q", "-b", "main")
	n.git("add", "-A")
	n.git("commit", "-q", "-m", "nginx config")
	n.git("tag", "v1")
	n.git("commit", "-q", "--allow-empty", "-m", "v2: same files, a new revision on the page")
	n.git("tag", "v2")
	broken := strings.Replace(mustRead(t, filepath.Join(repo, "nginx/nginx.conf.tmpl")), "keepalive_timeout 5s;", "keepalive_timeout 5s;\n  colour blue;", 1)
	mustWrite(t, filepath.Join(repo, "nginx/nginx.conf.tmpl"), broken)
	n.git("commit", "-q", "-am", "a directive nginx does not know")
	n.git("tag", "broken")
	for _, tag := range []string{"v1", "v2", "broken"} {
		n.tags[tag] = n.git("rev-parse", tag+"^{commit}")
	}
	n.git("checkout", "-q", "v1") // the working tree is never what is deployed

	// The example's inventory shape, with this fleet's addresses.
	var inv strings.Builder
	inv.WriteString("[web]\n")
	for _, h := range f.Hosts {
		fmt.Fprintf(&inv, "%s ansible_host=127.0.0.1 ansible_port=%d ansible_user=root ansible_ssh_private_key_file=%s nginx_port=%d root=%s\n",
			h.Name, h.SSHPort, f.ClientKey, h.AppPort, h.Root)
	}
	fmt.Fprintf(&inv, "\n[web:vars]\nhaproxy_socket=%s\n", f.HAProxySockets[0])
	mustWrite(t, filepath.Join(repo, "inventory.ini"), inv.String())
	return n
}

func (n *nginxFleet) git(args ...string) string {
	n.t.Helper()
	cmd := exec.Command("git", append([]string{"-C", n.dir}, args...)...)
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@rollout.invalid",
		"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@rollout.invalid", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		n.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// page is what nginx on h answers at /, straight from the host.
func (n *nginxFleet) page(h fleet.Host) string {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", h.AppPort))
	if err != nil {
		return "down: " + err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return strings.TrimSpace(string(b))
}

// wantPages fails the test unless every host serves the page of tag
// ("initial" for the config the fleet started with), saying when.
func (n *nginxFleet) wantPages(t *testing.T, tag, when string) {
	t.Helper()
	for _, h := range n.f.Hosts {
		want := h.Name + " initial"
		if tag != "initial" {
			want = h.Name + " revision " + n.tags[tag]
		}
		if got := n.page(h); got != want {
			t.Errorf("%s %s: serves %q, want %q", h.Name, when, got, want)
		}
	}
}

// masterPID is the pid in the host's nginx pid file.
func (n *nginxFleet) masterPID(h fleet.Host) string {
	return strings.TrimSpace(mustRead(n.t, filepath.Join(h.Root, "run/nginx.pid")))
}

func (n *nginxFleet) liveTree(h fleet.Host) map[string]string {
	out := map[string]string{}
	root := filepath.Join(h.Root, "etc/nginx")
	_ = filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			out[strings.TrimPrefix(p, root+"/")] = mustRead(n.t, p)
		}
		return nil
	})
	return out
}

// examples/nginx on the real fleet: a good config rolls under load with no
// failed request through HAProxy, by graceful reload (the master pid never
// changes, and the pid_file flap guard on it passes); a config nginx -t
// rejects is stopped by the validator before any host leaves HAProxy.
func TestNginxExample(t *testing.T) {
	t.Parallel()
	n := setupNginx(t, 3)
	pids := map[string]string{}
	for _, h := range n.f.Hosts {
		pids[h.Name] = n.masterPID(h)
		if got := n.page(h); got != h.Name+" initial" {
			t.Fatalf("%s serves %q before the rollout", h.Name, got)
		}
	}
	if r := n.rollout("validate"); r.code != 0 {
		dump(t, r)
		t.Fatal("rollout validate rejects examples/nginx/rollout.hcl")
	}

	// v2 under load: batches of the plan ([1, "50%"]), no --limit needed.
	r := n.applyUnderLoad(t, "apply", "--yes", "--ui", "json")
	evs := parseEvents(t, r.stdout)
	if last := evs[len(evs)-1]; last.Event != event.RunDone || last.Counts[event.OutcomeOK] != 3 {
		t.Fatalf("run_done = %+v", last)
	}
	phases := map[event.Phase]int{}
	for _, ev := range evs {
		if ev.Event == event.HostPhase && ev.Status == event.StatusRunning {
			phases[ev.Phase]++
		}
	}
	for _, p := range []event.Phase{event.PhaseDrain, event.PhaseValidate, event.PhaseCheck, event.PhaseRestart, event.PhaseHealth, event.PhaseUndrain} {
		if phases[p] != 3 {
			t.Errorf("phase %s ran on %d hosts, want 3", p, phases[p])
		}
	}
	n.wantPages(t, "v2", "after the rollout")
	for _, h := range n.f.Hosts {
		if pid := n.masterPID(h); pid != pids[h.Name] {
			t.Errorf("%s: nginx master pid %s → %s: a reload must keep the master", h.Name, pids[h.Name], pid)
		}
	}
	for name, s := range n.stats(t) {
		if s.Status != "UP" || s.Weight != 100 {
			t.Errorf("%s ends %s weight %d, want UP 100", name, s.Status, s.Weight)
		}
	}

	// broken: nginx -t -c <staged copy> rejects it on the first host in
	// preflight; nothing is drained, nothing live changes, nothing reloads.
	live := map[string]map[string]string{}
	for _, h := range n.f.Hosts {
		live[h.Name] = n.liveTree(h)
	}
	mustWrite(t, filepath.Join(n.dir, "broken.hcl"), strings.Replace(mustRead(t, n.plan), `revision     = "v2"`, `revision     = "broken"`, 1))
	r = n.rollout("apply", "broken.hcl", "--yes", "--ui", "json")
	if r.code != 1 {
		dump(t, r)
		t.Fatalf("apply broken: exit %d, want 1", r.code)
	}
	if !strings.Contains(r.stdout+r.stderr, `unknown directive \"colour\"`) && !strings.Contains(r.stdout+r.stderr, `unknown directive "colour"`) {
		dump(t, r)
		t.Errorf("the output does not show nginx -t's complaint")
	}
	preflightFailed := false
	for _, ev := range parseEvents(t, r.stdout) {
		if ev.Event == event.HostPhase && ev.Phase == event.PhaseDrain {
			t.Fatalf("%s was drained although its config failed nginx -t", ev.Host)
		}
		if ev.Event == event.PreflightDone && ev.Status == event.StatusFailed {
			preflightFailed = true
		}
	}
	if !preflightFailed {
		dump(t, r)
		t.Error("no preflight_done failed event")
	}
	for _, h := range n.f.Hosts {
		got := n.liveTree(h)
		if fmt.Sprint(got) != fmt.Sprint(live[h.Name]) {
			t.Errorf("%s: /etc/nginx changed (or a staged copy was left behind): %v", h.Name, keys(got))
		}
		if pid := n.masterPID(h); pid != pids[h.Name] {
			t.Errorf("%s: master pid changed to %s", h.Name, pid)
		}
	}
	n.wantPages(t, "v2", "after the refused run")
	for name, s := range n.stats(t) {
		if s.Status != "UP" || s.Weight != 100 {
			t.Errorf("%s is %s weight %d after the refused run", name, s.Status, s.Weight)
		}
	}
}

// applyUnderLoad runs rollout with args while a bounded HTTP load goes
// through HAProxy's frontend, and fails the test unless the run exited 0,
// no request failed, and HAProxy's error counters (connection and response
// errors, server aborts, 5xx) did not move.
func (e *env) applyUnderLoad(t *testing.T, args ...string) result {
	t.Helper()
	before := map[string]int{}
	for _, f := range []string{"econ", "eresp", "srv_abrt", "hrsp_5xx"} {
		before[f] = e.counter(t, f)
	}
	l := startLoad(e.frontend(), 4)
	r := e.rollout(args...)
	l.Stop()
	if r.code != 0 {
		dump(t, r)
		t.Fatalf("%s: exit %d", strings.Join(args, " "), r.code)
	}
	if l.Failed.Load() != 0 || l.OK.Load() == 0 {
		t.Fatalf("load through HAProxy: %d ok, %d failed: %v", l.OK.Load(), l.Failed.Load(), l.Errs())
	}
	for f, n := range before {
		if after := e.counter(t, f); after != n {
			t.Errorf("HAProxy %s grew from %d to %d", f, n, after)
		}
	}
	return r
}

func keys(m map[string]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

func mustWrite(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func mustCopy(t *testing.T, from, to string) { t.Helper(); mustWrite(t, to, mustRead(t, from)) }
