package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/rollout-sh/rollout/internal/fleet"
	"github.com/rollout-sh/rollout/rollout/event"
)

// artifactServer serves builds on 127.0.0.1 and logs every request.
type artifactServer struct {
	*httptest.Server
	mu   sync.Mutex
	log  []string
	body map[string][]byte
}

func newArtifactServer(t *testing.T, body map[string][]byte) *artifactServer {
	s := &artifactServer{body: body}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.log = append(s.log, r.URL.Path)
		s.mu.Unlock()
		name := strings.TrimPrefix(r.URL.Path, "/")
		if name == "short.tar.gz" { // a download cut off half way
			b := s.body["app-2.tar.gz"]
			w.Header().Set("Content-Length", fmt.Sprint(len(b)))
			_, _ = w.Write(b[:len(b)/2])
			return
		}
		b, ok := s.body[name]
		if !ok {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(b)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *artifactServer) requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.log...)
}

// tarGz packs files (name → body; names under bin/ are executable).
func tarGz(t *testing.T, files map[string][]byte, links map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		mode := int64(0o644)
		if strings.HasPrefix(n, "bin/") {
			mode = 0o755
		}
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: mode, Size: int64(len(files[n])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		_, _ = tw.Write(files[n])
	}
	for n, target := range links {
		if err := tw.WriteHeader(&tar.Header{Name: n, Linkname: target, Typeflag: tar.TypeSymlink, Mode: 0o777}); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// artifactEnv is a fleet whose app binary is deployed as an artifact:
// builds served over HTTP, the inventory and its group_vars (version,
// file, sha256, fetch mode) committed in the repository, so each revision
// pins its build.
type artifactEnv struct {
	*env
	srv    *artifactServer
	builds map[string][]byte
	revs   map[string]string

	onFailure, healthyFor string
}

const artifactPlan = `plan "demo" {
  inventory  = %q
  hosts      = "web"
  repo       = %q
  revision   = %q
  state_dir  = "${host.vars.root}/state"
  on_failure = %q
  batch      = 1
%s
  artifact "app" {
    source   = "%s/${host.vars.app_file}"
    sha256   = host.vars.app_sha256
    dest     = "${host.vars.root}/opt/app"
    unpack   = true
    keep     = 2
    fetch    = host.vars.app_fetch
    validate = "test \"$(cat %%s/VERSION)\" = ${host.vars.app_version}"
  }
  file "app.conf" {
    source   = "conf/app.conf.tmpl"
    template = true
    dest     = "${host.vars.root}/etc/app.conf"
  }
  prefetch = "echo ${host.vars.app_version} >> ${host.vars.root}/prefetch.log"
  install  = "echo ${host.vars.app_version} >> ${host.vars.root}/install.log"
  restart  = "DEMO_APP=${host.vars.root}/opt/app/current/bin/demo-app %s ${host.vars.root}"
  health "http" {
    url         = "http://127.0.0.1:${host.vars.app_port}/healthz"
    interval    = "200ms"
    healthy_for = %q
    deadline    = "20s"
    pid_file    = "${host.vars.root}/run/app.pid"
  }
}
`

func setupArtifacts(t *testing.T) *artifactEnv {
	e := setup(t, 3, 1)
	bin, err := os.ReadFile(e.app)
	if err != nil {
		t.Fatal(err)
	}
	a := &artifactEnv{env: e, builds: map[string][]byte{}, revs: map[string]string{}, onFailure: "halt", healthyFor: "1s"}
	for _, v := range []string{"1", "2", "3", "5"} {
		a.builds["app-"+v+".tar.gz"] = tarGz(t, map[string][]byte{"bin/demo-app": bin, "VERSION": []byte(v)}, nil)
	}
	a.builds["evil.tar.gz"] = tarGz(t, map[string][]byte{"VERSION": []byte("6"), "../escape": []byte("pwned")}, map[string]string{"etc": "/etc"})
	a.srv = newArtifactServer(t, a.builds)
	if err := e.f.WriteInventory(filepath.Join(e.repo, "inventory.ini")); err != nil {
		t.Fatal(err)
	}
	conf := "version = ${host.vars.app_version}\nmessage = \"artifact ${host.vars.app_version}\"\nlisten = 127.0.0.1:${host.vars.app_port}\n"
	commit := func(name, version, file, sha, fetch string) {
		mustWrite(t, filepath.Join(e.repo, "group_vars", "web.yml"), fmt.Sprintf("app_version: %q\napp_file: %q\napp_sha256: %q\napp_fetch: %q\n", version, file, sha, fetch))
		body := conf
		if name == "crash" { // passes validate, then exits every second
			body += "exit_after = 1s\n"
		}
		a.revs[name] = e.commitConfig(t, "art-"+name, body)
	}
	b := a.builds
	commit("v1", "1", "app-1.tar.gz", sum(b["app-1.tar.gz"]), "controller")
	commit("v2", "2", "app-2.tar.gz", sum(b["app-2.tar.gz"]), "controller")
	commit("v3-host", "3", "app-3.tar.gz", sum(b["app-3.tar.gz"]), "host")
	commit("badsum", "2", "app-2.tar.gz", strings.Repeat("ab", 32), "controller")
	commit("missing", "4", "app-4.tar.gz", strings.Repeat("cd", 32), "controller")
	commit("short", "2", "short.tar.gz", sum(b["app-2.tar.gz"]), "controller")
	commit("evil", "6", "evil.tar.gz", sum(b["evil.tar.gz"]), "controller")
	commit("evil-host", "6", "evil.tar.gz", sum(b["evil.tar.gz"]), "host")
	commit("crash", "5", "app-5.tar.gz", sum(b["app-5.tar.gz"]), "controller")
	return a
}

func (a *artifactEnv) writePlan(rev string) {
	a.t.Helper()
	p := fmt.Sprintf(artifactPlan, filepath.Join(a.repo, "inventory.ini"), a.repo, a.revs[rev], a.onFailure, a.drain, a.srv.URL, a.restart, a.healthyFor)
	if err := os.WriteFile(a.plan, []byte(p), 0o644); err != nil {
		a.t.Fatal(err)
	}
}

func releaseID(b []byte) string { return sum(b)[:16] }

// at checks every host runs build v from its release, with current.json
// recording it.
func (a *artifactEnv) at(t *testing.T, v string) {
	t.Helper()
	id := releaseID(a.builds["app-"+v+".tar.gz"])
	for _, h := range a.f.Hosts {
		cur := filepath.Join(h.Root, "opt", "app", "current")
		if l, err := os.Readlink(cur); err != nil || l != "releases/"+id {
			t.Errorf("%s: current -> %q (%v), want releases/%s", h.Name, l, err, id)
		}
		if got := a.appVersion(t, h); got != "version="+v {
			t.Errorf("%s answers %q, want version=%s", h.Name, got, v)
		}
		pid, err := a.f.AppPID(h)
		if err != nil {
			t.Fatal(err)
		}
		exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		if exe != filepath.Join(h.Root, "opt", "app", "releases", id, "bin", "demo-app") {
			t.Errorf("%s runs %s, not the release's binary", h.Name, exe)
		}
		st := a.state(t, h)
		arts, _ := st["artifacts"].(map[string]any)
		app, _ := arts["app"].(map[string]any)
		if app["id"] != id || app["sha256"] != sum(a.builds["app-"+v+".tar.gz"]) || !strings.HasSuffix(fmt.Sprint(app["source"]), "/app-"+v+".tar.gz") {
			t.Errorf("%s current.json artifacts = %v", h.Name, st["artifacts"])
		}
	}
}

func (a *artifactEnv) releases(t *testing.T, h fleet.Host) []string {
	ents, err := os.ReadDir(filepath.Join(h.Root, "opt", "app", "releases"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	sort.Strings(out)
	return out
}

func lastLine(t *testing.T, path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}

// refusedInPreflight runs an apply that must stop in preflight: exit 1,
// no host drained or changed, and the output naming what says.
func (a *artifactEnv) refusedInPreflight(t *testing.T, rev string, says ...string) {
	t.Helper()
	a.writePlan(rev)
	snap := a.snapshot(t)
	r := a.rollout("apply", "--yes", "--ui", "json")
	if r.code != 1 {
		dump(t, r)
		t.Fatalf("%s: exit %d, want 1", rev, r.code)
	}
	for _, ev := range parseEvents(t, r.stdout) {
		if ev.Event == event.HostPhase && ev.Phase == event.PhaseDrain {
			t.Errorf("%s: %s was drained", rev, ev.Host)
		}
	}
	all := r.stdout + r.stderr
	for _, s := range append(says, "web1", "web2", "web3") {
		if !strings.Contains(all, s) {
			dump(t, r)
			t.Errorf("%s: the output does not say %q", rev, s)
		}
	}
	a.untouched(t, snap, rev)
	a.waitAllUp(t)
}

// The whole journey of a binary deployed as an artifact, on 3 hosts
// behind HAProxy under load: 1 → 2 with zero failed requests and one
// download; a re-run skips; a rollback to 1 switches back with no request
// to the artifact server and runs install with v1's version; bad
// checksums, a 404, a truncated download and hostile archives stop in
// preflight with nothing drained; fetch = "host" works; keep prunes, and
// a rollback to a pruned release fetches it again.
func TestArtifactUpgradeAndRollback(t *testing.T) {
	t.Parallel()
	a := setupArtifacts(t)
	b := a.builds
	a.waitAllUp(t)

	a.writePlan("v1")
	a.applyUnderLoad(t, "apply", "--yes", "--ui", "json")
	a.at(t, "1")

	// the hostile and broken ones, with v1 live: nothing drained
	a.refusedInPreflight(t, "badsum", a.srv.URL+"/app-2.tar.gz", "expected "+strings.Repeat("ab", 32), "actual "+sum(b["app-2.tar.gz"]))
	a.refusedInPreflight(t, "missing", a.srv.URL+"/app-4.tar.gz", "404")
	a.refusedInPreflight(t, "short", a.srv.URL+"/short.tar.gz", "truncated")
	a.refusedInPreflight(t, "evil", "unsafe archive", "../escape")
	a.refusedInPreflight(t, "evil-host", "unsafe archive")
	for _, h := range a.f.Hosts {
		for _, p := range []string{filepath.Join(h.Root, "opt", "app", "escape"), filepath.Join(h.Root, "opt", "escape"), filepath.Join(h.Root, "opt", "app", "releases", "escape")} {
			if _, err := os.Lstat(p); err == nil {
				t.Errorf("%s: the hostile archive wrote %s", h.Name, p)
			}
		}
		if got := a.releases(t, h); len(got) != 1 || got[0] != releaseID(b["app-1.tar.gz"]) {
			t.Errorf("%s: releases after the refusals: %v", h.Name, got)
		}
	}

	before := len(a.srv.requests())
	a.writePlan("v2")
	// plan shows each host's release change, and downloads nothing
	if r := a.rollout("plan", "--ui", "plain"); r.code != 0 || strings.Count(r.stdout, "artifact app release "+releaseID(b["app-2.tar.gz"])) != 3 {
		dump(t, r)
		t.Errorf("plan does not show the new release on every host")
	}
	if got := a.srv.requests()[before:]; len(got) != 0 {
		t.Errorf("plan made requests %v", got)
	}
	a.applyUnderLoad(t, "apply", "--yes", "--ui", "json")
	a.at(t, "2")
	if got := a.srv.requests()[before:]; len(got) != 1 || got[0] != "/app-2.tar.gz" {
		t.Errorf("apply of v2 made requests %v, want one download of /app-2.tar.gz", got)
	}

	// again: every host is at its release and skipped
	r := a.rollout("apply", "--yes", "--ui", "json")
	if r.code != 0 {
		dump(t, r)
		t.Fatalf("re-apply: exit %d", r.code)
	}
	for _, ev := range parseEvents(t, r.stdout) {
		if ev.Event == event.HostDone && ev.Status != string(event.OutcomeSkipped) {
			t.Errorf("re-apply: %s %s, want skipped", ev.Host, ev.Status)
		}
	}

	// back to v1: the kept release, no download, v1's install
	before = len(a.srv.requests())
	a.applyUnderLoad(t, "rollback", "--to", a.revs["v1"], "--yes", "--ui", "json")
	a.at(t, "1")
	if got := a.srv.requests()[before:]; len(got) != 0 {
		t.Errorf("rollback made requests %v, want none", got)
	}
	for _, h := range a.f.Hosts {
		if got := lastLine(t, filepath.Join(h.Root, "install.log")); got != "1" {
			t.Errorf("%s: install ran last with %q, want v1's 1", h.Name, got)
		}
		if got := lastLine(t, filepath.Join(h.Root, "prefetch.log")); got != "1" {
			t.Errorf("%s: prefetch ran last with %q, want 1", h.Name, got)
		}
	}

	// forward to 2 again (--retry: the rollback marked it; kept: no
	// download), then 3 fetched by each host; keep = 2 prunes 1, never
	// current (3) or previous (2)
	a.writePlan("v2")
	a.applyUnderLoad(t, "apply", "--retry", "--yes", "--ui", "json")
	a.at(t, "2")
	before = len(a.srv.requests())
	a.writePlan("v3-host")
	a.applyUnderLoad(t, "apply", "--yes", "--ui", "json")
	a.at(t, "3")
	if got := a.srv.requests()[before:]; len(got) != 3 {
		t.Errorf("fetch = host: requests %v, want one per host", got)
	}
	want := []string{releaseID(b["app-2.tar.gz"]), releaseID(b["app-3.tar.gz"])}
	sort.Strings(want)
	for _, h := range a.f.Hosts {
		if got := a.releases(t, h); strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("%s: releases %v, want %v (keep = 2)", h.Name, got, want)
		}
	}

	// status shows each host's release
	if r := a.rollout("status", "--ui", "plain"); !strings.Contains(r.stdout, "RELEASE") || strings.Count(r.stdout, "app="+releaseID(b["app-3.tar.gz"])) != 3 {
		dump(t, r)
		t.Errorf("status does not show the release of every host")
	}

	// a hand-moved current is drift
	h1 := a.f.Hosts[0]
	cur := filepath.Join(h1.Root, "opt", "app", "current")
	if out, err := exec.Command("ln", "-sfn", "releases/"+releaseID(b["app-2.tar.gz"]), cur).CombinedOutput(); err != nil {
		t.Fatalf("ln: %v %s", err, out)
	}
	if r := a.rollout("status", "--ui", "plain"); !strings.Contains(r.stdout, "DRIFT "+cur) {
		dump(t, r)
		t.Errorf("status does not report the moved current as drift")
	}
	if out, err := exec.Command("ln", "-sfn", "releases/"+releaseID(b["app-3.tar.gz"]), cur).CombinedOutput(); err != nil {
		t.Fatalf("ln: %v %s", err, out)
	}

	// back to v1, pruned: fetched again from v1's source and checksum
	before = len(a.srv.requests())
	a.applyUnderLoad(t, "rollback", "--to", a.revs["v1"], "--yes", "--ui", "json")
	a.at(t, "1")
	if got := a.srv.requests()[before:]; len(got) != 1 || got[0] != "/app-1.tar.gz" {
		t.Errorf("rollback to a pruned release made requests %v, want one download of /app-1.tar.gz", got)
	}

	// a build that crash-loops, with on_failure = "rollback": the canary
	// goes back to the release it ran, kept on the host (the only request
	// is the preflight's download of the new build), zero failed requests
	a.onFailure, a.healthyFor = "rollback", "3s"
	a.writePlan("crash")
	before = len(a.srv.requests())
	l := startLoad(a.frontend(), 4)
	r = a.rollout("apply", "--yes", "--ui", "json")
	l.Stop()
	if r.code != 1 {
		dump(t, r)
		t.Fatalf("crash: exit %d, want 1", r.code)
	}
	rolled := 0
	for _, ev := range parseEvents(t, r.stdout) {
		if ev.Event == event.HostDone && ev.Status == string(event.OutcomeRolledBack) {
			rolled++
		}
	}
	if rolled != 1 {
		dump(t, r)
		t.Errorf("%d hosts rolled back, want the canary", rolled)
	}
	a.waitAllUp(t)
	a.at(t, "1")
	if got := a.srv.requests()[before:]; len(got) != 1 || got[0] != "/app-5.tar.gz" {
		t.Errorf("crash and rollback made requests %v, want only the preflight's /app-5.tar.gz", got)
	}
	if l.Failed.Load() != 0 || l.OK.Load() == 0 {
		t.Errorf("load: %d ok, %d failed: %v", l.OK.Load(), l.Failed.Load(), l.Errs())
	}
	for _, h := range a.f.Hosts {
		if got := lastLine(t, filepath.Join(h.Root, "install.log")); got != "1" {
			t.Errorf("%s: install ran last with %q, want 1 (the way back's)", h.Name, got)
		}
	}
}

// SIGKILL of the controller between staging and the switch, during the
// switch (install) and after it (check), then the recovery an operator
// reads from rollout's next: lines: every host converges on build 2,
// running it from its release, with zero failed requests.
func TestArtifactKillAndRecover(t *testing.T) {
	t.Parallel()
	a := setupArtifacts(t)
	a.waitAllUp(t)
	a.writePlan("v1")
	a.applyUnderLoad(t, "apply", "--yes", "--ui", "json")
	l := startLoad(a.frontend(), 4)
	defer l.Stop()
	apply := []string{"apply", "--yes", "--ui", "json"}
	for i, p := range []string{"preflight_done", "host_phase:install", "host_phase:check"} {
		v := []string{"2", "1", "2"}[i]
		ok := t.Run(strings.ReplaceAll(p, ":", "-"), func(t *testing.T) {
			a.t = t
			a.writePlan("v" + v)
			bg := a.rcStart(t, apply...)
			bg.waitFor(t, p, func(ev event.Event) bool { return killKey(ev) == p })
			bg.killNow(t)
			a.fRecoverByNext(t, apply)
			a.waitAllUp(t)
			a.at(t, v)
		})
		if !ok {
			break
		}
	}
	a.t = t
	fNoClientErrors(t, l, "during kills and recoveries")
}
