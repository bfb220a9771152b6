package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/rollout-sh/rollout/internal/fleet"
)

// The CI recipes of examples/ci run here as they are written: the shell
// of every `run:` step (GitHub Actions) and every before_script/script/
// after_script line (GitLab CI) is taken from the YAML and executed, in
// job order, against the nginx example's fleet. Steps that only move
// files between jobs (checkout, upload/download-artifact) are what the
// shared working directory already does. Secrets are the only values the
// test supplies; any other ${{ }} expression fails the test.

type ghWorkflow struct {
	Jobs map[string]struct {
		If    string `yaml:"if"`
		Needs any    `yaml:"needs"`
		Steps []struct {
			Name string            `yaml:"name"`
			ID   string            `yaml:"id"`
			Uses string            `yaml:"uses"`
			If   string            `yaml:"if"`
			Env  map[string]string `yaml:"env"`
			Run  string            `yaml:"run"`
		} `yaml:"steps"`
	} `yaml:"jobs"`
}

type glJob struct {
	Extends      string   `yaml:"extends"`
	When         string   `yaml:"when"`
	BeforeScript []string `yaml:"before_script"`
	Script       []string `yaml:"script"`
	AfterScript  []string `yaml:"after_script"`
}

// ciRunner runs recipe shell in the config repo with a CI-like environment:
// a fresh HOME, rollout on PATH, no terminal.
type ciRunner struct {
	t       *testing.T
	dir     string
	env     []string
	secrets map[string]string
}

func newCIRunner(t *testing.T, n *nginxFleet) *ciRunner {
	home := t.TempDir()
	key, known := mustRead(t, n.f.ClientKey), mustRead(t, n.f.KnownHosts)
	env := []string{
		"HOME=" + home,
		"PATH=" + filepath.Dir(rolloutBin(t)) + ":" + os.Getenv("PATH"),
		"CI=true",
	}
	return &ciRunner{t: t, dir: n.dir, env: env, secrets: map[string]string{"SSH_PRIVATE_KEY": key, "SSH_KNOWN_HOSTS": known}}
}

var ghExpr = regexp.MustCompile(`\$\{\{\s*([^}]*?)\s*\}\}`)

// expand evaluates the only expressions a step's env may hold: secrets.
func (c *ciRunner) expand(v string) string {
	return ghExpr.ReplaceAllStringFunc(v, func(m string) string {
		expr := ghExpr.FindStringSubmatch(m)[1]
		name, ok := strings.CutPrefix(expr, "secrets.")
		if !ok || c.secrets[name] == "" {
			c.t.Fatalf("recipe expression %s: the test only supplies secrets", m)
		}
		return c.secrets[name]
	})
}

// sh runs script with the given shell flags and extra env, returning the
// exit code and combined output.
func (c *ciRunner) sh(shell []string, script string, extra ...string) (int, string) {
	c.t.Helper()
	cmd := exec.Command(shell[0], append(shell[1:], "-c", script)...)
	cmd.Dir = c.dir
	cmd.Env = append(append([]string{}, c.env...), extra...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), out.String()
	} else if err != nil {
		c.t.Fatal(err)
	}
	return 0, out.String()
}

// GitHub runs `run:` with `bash --noprofile --norc -eo pipefail {0}`.
var ghShell = []string{"bash", "--noprofile", "--norc", "-eo", "pipefail"}

// ghJob runs one job's steps like the runner: a failed step skips the rest
// except `if: always()` ones. It returns whether the job succeeded.
func (c *ciRunner) ghJob(wf *ghWorkflow, name string, files map[string]string) bool {
	c.t.Helper()
	job, ok := wf.Jobs[name]
	if !ok {
		c.t.Fatalf("the workflow has no job %q", name)
	}
	failed := false
	for _, st := range job.Steps {
		if st.Run == "" {
			continue // actions/checkout, upload/download-artifact: the shared dir
		}
		if failed && st.If != "always()" {
			continue
		}
		extra := []string{"GITHUB_OUTPUT=" + files["output"], "GITHUB_STEP_SUMMARY=" + files["summary"]}
		for k, v := range st.Env {
			extra = append(extra, k+"="+c.expand(v))
		}
		code, out := c.sh(ghShell, st.Run, extra...)
		c.t.Logf("github %s / %s: exit %d\n%s", name, st.Name, code, out)
		if code != 0 {
			failed = true
		}
	}
	return !failed
}

func ghOutputs(t *testing.T, path string) map[string]string {
	out := map[string]string{}
	b, _ := os.ReadFile(path)
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			out[k] = v
		}
	}
	return out
}

func TestCIRecipesGitHubActions(t *testing.T) {
	t.Parallel()
	fleet.RequireTool(t, "jq")
	n := setupNginx(t, 2)
	mustCopy(t, filepath.Join(moduleRoot(t), "examples/ci/rollout-summary.sh"), filepath.Join(n.dir, "ci/rollout-summary.sh"))
	var wf ghWorkflow
	if err := yaml.Unmarshal([]byte(mustRead(t, filepath.Join(moduleRoot(t), "examples/ci/github-actions.yml"))), &wf); err != nil {
		t.Fatalf("github-actions.yml: %v", err)
	}
	if got := wf.Jobs["apply"].If; got != "needs.plan.outputs.changes == 'true'" {
		t.Fatalf("the apply job's condition changed (%q): update this test", got)
	}
	c := newCIRunner(t, n)
	tmp := t.TempDir()
	files := func(job string) map[string]string {
		return map[string]string{"output": filepath.Join(tmp, job+".output"), "summary": filepath.Join(tmp, job+".summary.md")}
	}

	plan := files("plan1")
	if !c.ghJob(&wf, "plan", plan) {
		t.Fatal("plan job failed")
	}
	if ghOutputs(t, plan["output"])["changes"] != "true" {
		t.Fatalf("plan job: changes = %q, want true", ghOutputs(t, plan["output"])["changes"])
	}
	if s := mustRead(t, plan["summary"]); !strings.Contains(s, "### rollout plan") || !strings.Contains(s, "web1") {
		t.Errorf("plan summary:\n%s", s)
	}
	if _, err := os.Stat(filepath.Join(n.dir, "rollout.plan.json")); err != nil {
		t.Fatalf("no saved plan: %v", err)
	}
	n.wantPages(t, "initial", "after the plan job")

	apply := files("apply1")
	if !c.ghJob(&wf, "apply", apply) {
		t.Fatal("apply job failed")
	}
	sum := mustRead(t, apply["summary"])
	short := n.tags["v2"][:7]
	for _, want := range []string{"### rollout apply of plan `nginx` at `" + short + "`: **ok** (exit 0)", "| web1 | ok | " + short + " |", "| web2 | ok | " + short + " |", "counts: ok 2"} {
		if !strings.Contains(sum, want) {
			t.Errorf("apply summary lacks %q:\n%s", want, sum)
		}
	}
	n.wantPages(t, "v2", "after the apply job")

	// nothing left to do: the plan job says so, the apply job would not run
	again := files("plan2")
	if !c.ghJob(&wf, "plan", again) {
		t.Fatal("second plan job failed")
	}
	if got := ghOutputs(t, again["output"])["changes"]; got != "false" {
		t.Errorf("second plan: changes = %q, want false", got)
	}
}

// GitLab runs before_script and script in one bash with -eo pipefail, and
// after_script in a new shell, also after a failed script.
var glShell = []string{"bash", "--noprofile", "--norc", "-eo", "pipefail"}

func (c *ciRunner) glJob(jobs map[string]glJob, name string, extra ...string) (int, string) {
	c.t.Helper()
	job := jobs[name]
	lines := job.Script
	if job.Extends != "" {
		lines = append(append([]string{}, jobs[job.Extends].BeforeScript...), lines...)
	}
	env := append([]string{"SSH_PRIVATE_KEY=" + c.secrets["SSH_PRIVATE_KEY"], "SSH_KNOWN_HOSTS=" + c.secrets["SSH_KNOWN_HOSTS"]}, extra...)
	code, out := c.sh(glShell, strings.Join(lines, "\n"), env...)
	c.t.Logf("gitlab %s: exit %d\n%s", name, code, out)
	if len(job.AfterScript) > 0 {
		acode, aout := c.sh(glShell, strings.Join(job.AfterScript, "\n"), env...)
		c.t.Logf("gitlab %s after_script: exit %d\n%s", name, acode, aout)
	}
	return code, out
}

func TestCIRecipesGitLab(t *testing.T) {
	t.Parallel()
	fleet.RequireTool(t, "jq")
	n := setupNginx(t, 2)
	mustCopy(t, filepath.Join(moduleRoot(t), "examples/ci/rollout-summary.sh"), filepath.Join(n.dir, "ci/rollout-summary.sh"))
	// top-level keys are jobs (mappings) or settings such as stages (a list)
	var top map[string]yaml.Node
	if err := yaml.Unmarshal([]byte(mustRead(t, filepath.Join(moduleRoot(t), "examples/ci/gitlab-ci.yml"))), &top); err != nil {
		t.Fatalf("gitlab-ci.yml: %v", err)
	}
	jobs := map[string]glJob{}
	for name, node := range top {
		if node.Kind != yaml.MappingNode || name == "variables" || name == "default" {
			continue
		}
		var j glJob
		if err := node.Decode(&j); err != nil {
			t.Fatalf("gitlab-ci.yml: job %s: %v", name, err)
		}
		jobs[name] = j
	}
	if jobs["apply"].When != "manual" {
		t.Fatalf("the apply job is not manual (when: %q)", jobs["apply"].When)
	}
	c := newCIRunner(t, n)

	if code, _ := c.glJob(jobs, "plan"); code != 0 {
		t.Fatalf("plan job: exit %d", code)
	}
	dotenv := mustRead(t, filepath.Join(n.dir, "plan.env"))
	if strings.TrimSpace(dotenv) != "ROLLOUT_CHANGES=true" {
		t.Fatalf("plan.env = %q", dotenv)
	}
	changes := "ROLLOUT_CHANGES=true"

	// The reviewed plan no longer matches the world (here: a variable was
	// added to the inventory after the review): the apply job refuses and
	// touches nothing.
	inv := filepath.Join(n.dir, "inventory.ini")
	orig := mustRead(t, inv)
	mustWrite(t, inv, orig+"\n[web:vars]\nmaintenance_note=edited-after-review\n")
	code, out := c.glJob(jobs, "apply", changes)
	if code != 2 {
		t.Fatalf("apply of a stale plan: exit %d, want 2\n%s", code, out)
	}
	if !strings.Contains(out, "stale plan") {
		t.Errorf("the refusal does not say the plan is stale:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(n.dir, "rollout-summary.md")); err != nil {
		t.Errorf("after_script wrote no summary for the refused run: %v", err)
	}
	n.wantPages(t, "initial", "after the refused apply")

	// put the inventory back: the same plan is current again and applies
	mustWrite(t, inv, orig)
	if code, _ := c.glJob(jobs, "apply", changes); code != 0 {
		t.Fatalf("apply job: exit %d", code)
	}
	sum := mustRead(t, filepath.Join(n.dir, "rollout-summary.md"))
	short := n.tags["v2"][:7]
	for _, want := range []string{"**ok** (exit 0)", "| web1 | ok | " + short + " |", "| web2 | ok | " + short + " |"} {
		if !strings.Contains(sum, want) {
			t.Errorf("summary lacks %q:\n%s", want, sum)
		}
	}
	n.wantPages(t, "v2", "after the apply job")

	// a pipeline with nothing to change: plan says false, apply is a no-op
	if code, _ := c.glJob(jobs, "plan"); code != 0 {
		t.Fatal("second plan job failed")
	}
	if got := strings.TrimSpace(mustRead(t, filepath.Join(n.dir, "plan.env"))); got != "ROLLOUT_CHANGES=false" {
		t.Errorf("second plan.env = %q", got)
	}
	if code, out := c.glJob(jobs, "apply", "ROLLOUT_CHANGES=false"); code != 0 || !strings.Contains(out, "nothing to change") {
		t.Errorf("apply with nothing to change: exit %d\n%s", code, out)
	}
	if sum := mustRead(t, filepath.Join(n.dir, "rollout-summary.md")); strings.Contains(sum, "| web1 |") {
		t.Errorf("the summary of a job that applied nothing shows an earlier run:\n%s", sum)
	}
}
