package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"
)

// results collects every run, by tool.
type results struct {
	n        int
	machine  string // described before the first run
	commit   string // the checkout's commit, read before the first run
	version  string // `rollout version` of the measured binary
	byTool   map[string][]runResult
	failures []string
	skipped  string // why a part was not measured
}

func (r *results) add(x runResult) {
	if r.byTool == nil {
		r.byTool = map[string][]runResult{}
	}
	r.byTool[x.tool] = append(r.byTool[x.tool], x)
	for _, p := range x.problems {
		r.failures = append(r.failures, fmt.Sprintf("%s (revision %d): %s", x.tool, x.revision, p))
	}
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func (r *results) col(tool string, f func(runResult) float64) []float64 {
	var xs []float64
	for _, x := range r.byTool[tool] {
		xs = append(xs, f(x))
	}
	return xs
}

func list(xs []float64, format string) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprintf(format, x)
	}
	return strings.Join(s, ", ")
}

var toolNames = map[string]string{
	"ansible": "Ansible (pipelining, ControlPersist)",
	"mitogen": "Ansible + Mitogen (`mitogen_linear`)",
	"rollout": "rollout `apply`",
	"noop":    "rollout no-op re-run (`apply`, nothing to change)",
	"plan":    "rollout `plan` online (next revision)",
}

var (
	wall    = func(x runResult) float64 { return x.usage.WallS }
	cpu     = func(x runResult) float64 { return x.usage.CPUS() }
	treeMiB = func(x runResult) float64 { return x.usage.TreeRSSMiB }
	maxRSS  = func(x runResult) float64 { return x.usage.MaxRSSMiB }
)

// markdown is the report: the machine, the side-by-side table, the ratios
// and rollout's own figures.
func (r *results) markdown(c config) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n## rollout-bench: %d hosts, batches of %d, %d run(s) per tool\n\n", c.n, c.batch, c.runs)
	fmt.Fprintf(&b, "%s; checkout at %s; measured binary: %s\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"), r.commit, r.version)
	if len(c.rolloutFlags) > 0 {
		fmt.Fprintf(&b, "Extra rollout flags: `%s`.\n\n", strings.Join(c.rolloutFlags, " "))
	}
	fmt.Fprintf(&b, "%s\n\n", r.machine)
	fmt.Fprintln(&b, "| tool | median wall (s) | wall of each run (s) | median CPU (s) | CPU of each run (s) | peak RSS, process tree (MiB) | largest process (MiB) | client requests (failed) |")
	fmt.Fprintln(&b, "|---|---|---|---|---|---|---|---|")
	for _, tool := range []string{"ansible", "mitogen", "rollout", "noop", "plan"} {
		runs := r.byTool[tool]
		if len(runs) == 0 {
			continue
		}
		var ok, failed int64
		bad := 0
		for _, x := range runs {
			ok += x.ok
			failed += x.fail
			if x.failed() {
				bad++
			}
		}
		name := toolNames[tool]
		if bad > 0 {
			name += fmt.Sprintf(" — **%d of %d runs FAILED**", bad, len(runs))
		}
		reqs := "—"
		if ok+failed > 0 {
			reqs = fmt.Sprintf("%d (%d)", ok+failed, failed)
		}
		fmt.Fprintf(&b, "| %s | %.2f | %s | %.2f | %s | %.0f | %.0f | %s |\n", name,
			median(r.col(tool, wall)), list(r.col(tool, wall), "%.2f"),
			median(r.col(tool, cpu)), list(r.col(tool, cpu), "%.2f"),
			slices.Max(r.col(tool, treeMiB)), slices.Max(r.col(tool, maxRSS)), reqs)
	}
	if ro := r.byTool["rollout"]; len(ro) > 0 {
		rw, rc, rm := median(r.col("rollout", wall)), median(r.col("rollout", cpu)), slices.Max(r.col("rollout", treeMiB))
		for i, tool := range []string{"ansible", "mitogen"} {
			if len(r.byTool[tool]) == 0 {
				continue
			}
			if i == 0 || len(r.byTool["ansible"]) == 0 {
				fmt.Fprintln(&b)
				fmt.Fprintln(&b, "| ratio of medians | wall | CPU | peak RSS (tree) |")
				fmt.Fprintln(&b, "|---|---|---|---|")
			}
			fmt.Fprintf(&b, "| %s ÷ rollout | %.1f× | %.1f× | %.1f× |\n", toolNames[tool],
				median(r.col(tool, wall))/rw, median(r.col(tool, cpu))/rc, slices.Max(r.col(tool, treeMiB))/rm)
		}
		var crit, ratio []float64
		for _, x := range ro {
			if x.waits != nil && x.waits.Unavoidable() > 0 {
				crit = append(crit, x.waits.Unavoidable().Seconds())
				ratio = append(ratio, x.usage.WallS/x.waits.Unavoidable().Seconds())
			}
		}
		if len(crit) > 0 {
			fmt.Fprintln(&b)
			fmt.Fprintln(&b, "| rollout apply | median | each run |")
			fmt.Fprintln(&b, "|---|---|---|")
			fmt.Fprintf(&b, "| unavoidable waits: critical path + pauses (s) | %.2f | %s |\n", median(crit), list(crit, "%.2f"))
			fmt.Fprintf(&b, "| overhead ratio: wall ÷ unavoidable waits | %.2f | %s |\n", median(ratio), list(ratio, "%.2f"))
		}
	}
	if r.skipped != "" {
		fmt.Fprintf(&b, "\nNote: %s.\n", r.skipped)
	}
	if len(r.failures) > 0 {
		fmt.Fprintf(&b, "\n**%d problem(s) — these numbers are not a valid measurement:**\n\n", len(r.failures))
		for _, f := range r.failures {
			fmt.Fprintf(&b, "- %s\n", f)
		}
	}
	return b.String()
}

// commit names the checkout's commit, with "+dirty" when it has changes.
func commit(root string) string {
	out, err := exec.Command("git", "-C", root, "rev-parse", "--short=12", "HEAD").Output()
	if err != nil {
		return "(unknown commit)"
	}
	c := strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "-C", root, "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
		c += "+dirty"
	}
	return "commit " + c
}

// machine describes the controller: CPUs, OS, and the versions that matter.
func machine() string {
	cpuModel := "?"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpuModel = strings.TrimSpace(v)
				break
			}
		}
	}
	osName := "?"
	if b, err := os.ReadFile("/etc/debian_version"); err == nil {
		osName = "Debian " + strings.TrimSpace(string(b))
	}
	first := func(name string, args ...string) string {
		out, err := exec.Command(name, args...).CombinedOutput()
		if err != nil {
			return "?"
		}
		l, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
		return l
	}
	load := "?"
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		load = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	return fmt.Sprintf("Machine: %d CPUs (%s), %s, %s; %s; %s; %s; ansible-mitogen %s; load average before the first run %s.",
		runtime.NumCPU(), cpuModel, osName, runtime.Version(),
		first("/usr/sbin/sshd", "-V"), first("/usr/sbin/haproxy", "-v"),
		first("ansible-playbook", "--version"),
		strings.TrimSpace(first("dpkg-query", "-W", "-f", "${Version}", "ansible-mitogen")), load)
}
