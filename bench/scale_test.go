package bench

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rollout-sh/rollout/internal/fleet"
	"github.com/rollout-sh/rollout/inventory"
	"github.com/rollout-sh/rollout/plan"
	"github.com/rollout-sh/rollout/rollout"
)

// What grows with the fleet, at 10,000 hosts, with no host contacted:
//
//	make bench-scale   # = go test -run '^$' -bench Scale -benchmem ./bench/
//
// Numbers go to docs/benchmarks.md; nothing here asserts a duration.

const scaleHosts = 10_000

// scaleInventory is an INI inventory of n hosts in 4 datacenters × 25 racks,
// grouped web/db by number, with host vars, group vars and a children group.
func scaleInventory(n int) []byte {
	var b bytes.Buffer
	groups := map[string][]string{}
	var order []string
	add := func(g, h string) {
		if _, ok := groups[g]; !ok {
			order = append(order, g)
		}
		groups[g] = append(groups[g], h)
	}
	for i := 1; i <= n; i++ {
		h := fmt.Sprintf("web%05d", i)
		role := "web"
		if i%10 == 0 {
			role = "db"
		}
		add(role, h)
		add(fmt.Sprintf("dc%d", i%4+1), h)
		add(fmt.Sprintf("rack%02d", i%25), h)
	}
	for _, g := range order {
		fmt.Fprintf(&b, "[%s]\n", g)
		for _, h := range groups[g] {
			if g == "web" || g == "db" {
				var num int
				fmt.Sscanf(h, "web%d", &num)
				fmt.Fprintf(&b, "%s ansible_host=10.%d.%d.%d ansible_port=22 root=/srv/%s app_port=%d\n", h, num/65536, num/256%256, num%256, h, 8000+num%1000)
			} else {
				fmt.Fprintln(&b, h)
			}
		}
		fmt.Fprintln(&b)
	}
	b.WriteString("[prod:children]\ndc1\ndc2\ndc3\n\n[prod:vars]\nenv=prod\n\n[web:vars]\nansible_user=deploy\n")
	return b.Bytes()
}

func BenchmarkScaleInventoryParse10k(b *testing.B) {
	data := scaleInventory(scaleHosts)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		inv, err := inventory.ParseINI("inventory.ini", data)
		if err != nil {
			b.Fatal(err)
		}
		if len(inv.Hosts()) != scaleHosts {
			b.Fatalf("%d hosts, want %d", len(inv.Hosts()), scaleHosts)
		}
	}
}

// BenchmarkScalePatterns10k selects with the kinds of patterns a plan or
// --limit uses: a group, an intersection with an exclusion, a glob, a
// regular expression with a subscript, and a --limit.
func BenchmarkScalePatterns10k(b *testing.B) {
	inv, err := inventory.ParseINI("inventory.ini", scaleInventory(scaleHosts))
	if err != nil {
		b.Fatal(err)
	}
	patterns := []string{"web", "web:&prod:!rack07", "web0*5", "~web0[0-9]+7$", "db[0:99]", "all:!db"}
	b.ResetTimer()
	for b.Loop() {
		for _, p := range patterns {
			if _, err := inv.Select(p); err != nil {
				b.Fatalf("%s: %v", p, err)
			}
		}
		if _, err := inv.Limit("web", "dc1:&rack1*"); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(patterns)+1), "patterns/op")
}

func BenchmarkScaleBatches10k(b *testing.B) {
	names := make([]string, scaleHosts)
	for i := range names {
		names[i] = fmt.Sprintf("web%05d", i+1)
	}
	spec, err := plan.ParseBatchSpec("1,1%,5%,25%")
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if got := plan.Batches(spec, names); len(got) < 4 {
			b.Fatalf("%d batches", len(got))
		}
	}
}

// TestMain removes the plan dirs the benchmarks of this process shared.
func TestMain(m *testing.M) {
	code := m.Run()
	scaleDirs.Range(func(_, d any) bool { os.RemoveAll(d.(string)); return true })
	os.Exit(code)
}

// scaleDir writes a plan dir for n hosts: inventory, a git repository with
// a template and a plain file, and rollout.hcl with a drain, two files, a
// restart, an http health check and batches. It is made once per process.
var scaleDirs sync.Map // n → dir

func scaleDir(b *testing.B, n int) string {
	b.Helper()
	if d, ok := scaleDirs.Load(n); ok {
		return d.(string)
	}
	fleet.RequireTool(b, "git")
	dir, err := os.MkdirTemp("", "rollout-scale-")
	if err != nil {
		b.Fatal(err)
	}
	must := func(err error) {
		if err != nil {
			b.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(dir, "inventory.ini"), scaleInventory(n), 0o644))
	repo := filepath.Join(dir, "repo")
	must(os.MkdirAll(filepath.Join(repo, "conf"), 0o755))
	must(os.WriteFile(filepath.Join(repo, "conf", "app.conf.tmpl"), []byte(
		"# app config for ${host.name}\nversion = 2\nlisten = 0.0.0.0:${host.vars.app_port}\nroot = ${host.vars.root}\n%{ for g in host.groups ~}\ngroup = ${g}\n%{ endfor ~}\n"), 0o644))
	must(os.WriteFile(filepath.Join(repo, "conf", "limits.conf"), bytes.Repeat([]byte("# a static file, copied as is\n"), 40), 0o644))
	for _, args := range [][]string{{"init", "-q", "-b", "main"}, {"add", "-A"}, {"commit", "-qm", "v2"}, {"tag", "v2"}} {
		gitIn(b, repo, args...)
	}
	must(os.WriteFile(filepath.Join(dir, "rollout.hcl"), []byte(fmt.Sprintf(`plan "scale" {
  inventory = "inventory.ini"
  hosts     = "web:db"
  repo      = %q
  revision  = "v2"
  batch     = ["1", "1%%", "5%%", "25%%"]
  state_dir = "${host.vars.root}/state"
  drain "haproxy" {
    endpoints = ["unix:/run/haproxy/admin.sock"]
    backend   = "web"
  }
  file "app.conf" {
    source   = "conf/app.conf.tmpl"
    template = true
    dest     = "${host.vars.root}/etc/app.conf"
    validate = "/usr/bin/app -check -config %%s"
  }
  file "limits.conf" {
    source = "conf/limits.conf"
    dest   = "${host.vars.root}/etc/limits.conf"
  }
  restart = "systemctl restart app"
  health "http" {
    url = "http://${host.vars.ansible_host}:${host.vars.app_port}/healthz"
  }
}
`, repo)), 0o644))
	scaleDirs.Store(n, dir)
	return dir
}

// BenchmarkScalePrepare10k is everything `rollout plan --offline` and
// `apply` do before touching a host: parse the plan, load the inventory,
// select hosts, resolve the revision, evaluate the plan and render both
// files for every host, and plan the batches.
func BenchmarkScalePrepare10k(b *testing.B) {
	dir := scaleDir(b, scaleHosts)
	wd, _ := os.Getwd()
	if err := os.Chdir(dir); err != nil {
		b.Fatal(err)
	}
	defer os.Chdir(wd)
	b.ResetTimer()
	var targets int
	for b.Loop() {
		pr, err := rollout.Prepare(rollout.Request{PlanFile: "rollout.hcl"})
		if err != nil {
			b.Fatal(err)
		}
		targets = len(pr.Targets)
	}
	b.ReportMetric(float64(targets), "hosts")
}

// BenchmarkScalePlanOffline10k runs the real binary, `rollout plan
// --offline` on 10,000 hosts (the ones the plan selects), and reports its
// wall time and peak RSS. Targets (docs/benchmarks.md): under 1 s and
// under 100 MiB.
func BenchmarkScalePlanOffline10k(b *testing.B) {
	dir := scaleDir(b, scaleHosts)
	bin := filepath.Join(b.TempDir(), "rollout")
	if out, err := exec.Command("go", "build", "-o", bin, filepath.Join(root(), "cmd", "rollout")).CombinedOutput(); err != nil {
		b.Fatalf("build: %v\n%s", err, out)
	}
	b.ResetTimer()
	var wall, cpu time.Duration
	var rss int64
	var lines int
	for b.Loop() {
		cmd := exec.Command(bin, "plan", "--offline", "--ui", "plain")
		cmd.Dir = dir
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		start := time.Now()
		if err := cmd.Run(); err != nil {
			b.Fatalf("rollout plan --offline: %v\n%s\n%s", err, tail(out.String()), errb.String())
		}
		wall += time.Since(start)
		ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
		cpu += time.Duration(syscall.TimevalToNsec(ru.Utime) + syscall.TimevalToNsec(ru.Stime))
		rss = max(rss, ru.Maxrss)
		lines = strings.Count(out.String(), "\n")
	}
	b.ReportMetric(wall.Seconds()/float64(b.N), "wall-s")
	b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s")
	b.ReportMetric(float64(rss)/1024, "maxrss-MiB")
	b.ReportMetric(float64(lines), "output-lines")
}

// gitIn runs git in repo with a fixed identity and no user configuration.
func gitIn(b *testing.B, repo string, args ...string) {
	b.Helper()
	cmd := exec.Command("git", append([]string{"-C", repo}, args...)...)
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=b", "GIT_AUTHOR_EMAIL=b@x.invalid", "GIT_COMMITTER_NAME=b", "GIT_COMMITTER_EMAIL=b@x.invalid", "GIT_CONFIG_GLOBAL=/dev/null")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("git %v: %v\n%s", args, err, out)
	}
}

func tail(s string) string {
	if len(s) > 2000 {
		return "..." + s[len(s)-2000:]
	}
	return s
}
