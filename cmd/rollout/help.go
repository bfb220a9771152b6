package main

import (
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// The words every plan command's help shares.
const (
	planArgHelp = `PLAN is the plan file; it defaults to rollout.hcl in the current directory.`
	scopeHelp   = `[scope] is --limit PATTERN (an Ansible host pattern: 'web', 'web1,web2',
'web:!web3') and --batch SIZES (like Ansible's serial: 1, 25%, or 1,25%).
apply and rollback need one of them, or a batch in the plan: a run of every
host at once is refused, and so is a --limit that selects every host.`
)

// help is a command's long description and examples.
type help struct {
	long    string
	example string
}

// commandHelp is the help of every command, by its path under rollout.
var commandHelp = map[string]help{
	"version": {
		long: `version prints rollout's version and the commit it was built from (also: rollout --version).`,
		example: `  rollout version
  rollout version --ui json`,
	},
	"validate": {
		long: `validate checks a plan without touching any host: the HCL decodes, the
revision is pinned (a tag or a full commit SHA, never a branch), every file
source exists at that revision, every template renders for every host, the
batches are sound, and the safety rules apply enforces hold. It reads the
inventory and its variables at the pinned revision, and warns about
anything that is read from the working tree instead.

` + planArgHelp,
		example: `  rollout validate
  rollout validate plan.hcl
  rollout validate plan.hcl --limit web1 --batch 1`,
	},
	"hosts": {
		long: `hosts lists the hosts the plan's pattern selects (narrowed by --limit), as
ansible-inventory would, with the address and user rollout connects with.
--vars shows each host's merged variables at the pinned revision (or at
--revision), secrets redacted.

` + planArgHelp,
		example: `  rollout hosts
  rollout hosts plan.hcl --limit 'web:!web3'
  rollout hosts plan.hcl --vars --revision v1`,
	},
	"plan": {
		long: `plan shows what apply would do, changing nothing: the commit, the batches,
and per host the files that change, the variables that moved and the
hosts already at the revision. Online (the default) it reads each host's
recorded state over SSH; --offline reads only the repository and the
inventory. --out saves the plan; apply SAVED then applies exactly it, or
refuses if anything changed since.

` + planArgHelp + `
` + scopeHelp,
		example: `  rollout plan plan.hcl --known-hosts fleet/known_hosts
  rollout plan plan.hcl --offline --diff
  rollout plan plan.hcl --detailed-exitcode      # exit 4 when changes are pending
  rollout plan plan.hcl --out rollout.plan.json`,
	},
	"apply": {
		long: `apply rolls the plan's pinned revision across its hosts, batch by batch:
every file is staged and validated on every targeted host first (nothing
drained), then per host: drain from every load balancer, wait for zero
sessions, install (atomic rename), check, restart, a stable health window,
undrain with a weight ramp, record. A failure stops the run and puts the
host back as the plan's on_failure says.

It asks before starting; --yes answers in CI (it does not pass approval
gates: --auto-approve does). --revision deploys another revision than the
pin. SAVED is a plan saved with rollout plan --out.

A revision that a rollback (or on_failure = "rollback") took the hosts back
from is refused, naming the rollback run, so that a CI re-run does not
redeploy it: pin another revision, or pass --retry when you mean it.

` + planArgHelp + `
` + scopeHelp,
		example: `  rollout apply plan.hcl --batch 1 --known-hosts fleet/known_hosts
  rollout apply plan.hcl --limit web1 --yes
  rollout apply rollout.plan.json --yes
  rollout apply plan.hcl --revision v2 --batch 1,25% --yes --ui json
  rollout apply plan.hcl --retry --batch 1 --yes   # deploy a rolled-back revision again, on purpose`,
	},
	"rollback": {
		long: `rollback deploys an earlier revision through the same pipeline as apply
(validators, drain, health window), reading its files and variables at that
revision; it never makes or needs a revert commit. Without --revision it
goes back to the last revision that completed on every targeted host
before the current one. --to is the same as --revision.

Each host it takes back records the revision it left, who rolled back,
when and why (--reason) in its current.json and in the journal: status
and plan then say that the plan pins a rolled-back revision, and a plain
apply of it is refused until --retry.

` + planArgHelp + `
` + scopeHelp,
		example: `  rollout rollback plan.hcl --batch 1 --yes
  rollout rollback plan.hcl --revision v1 --batch 1 --yes --reason "checkout errors"
  rollout rollback plan.hcl --limit web1 --yes`,
	},
	"status": {
		long: `status shows per host the revision deployed and the one before it, the
last run that touched it, drift (live files edited by hand), locks and
each load balancer's view, read over SSH and from the journal (a repair
is a run too). It says when the plan pins a revision the hosts were rolled
back from, and groups the hosts by revision when the fleet is mixed.
--detailed-exitcode exits 4 when a host needs attention or a change is
pending (a rolled-back pin, a mixed fleet).

` + planArgHelp,
		example: `  rollout status plan.hcl --known-hosts fleet/known_hosts
  rollout status plan.hcl --limit web1 --ui json
  rollout status plan.hcl --detailed-exitcode`,
	},
	"history": {
		long: `history lists the plan's past runs from the journal (local, or the plan's
etcd backend). --replay plays a run again through the views; --follow
streams the run in progress, from any machine that shares the backend.

` + planArgHelp,
		example: `  rollout history plan.hcl
  rollout history plan.hcl --replay last --speed 0
  rollout history plan.hcl --follow`,
	},
	"repair": {
		long: `repair puts back what a dead or failed run left: hosts left drained or
half-done return to their state before that run, and the dead run's locks
are taken over, whether or not a host needed putting back. It asks first;
--yes answers in CI.

` + planArgHelp,
		example: `  rollout repair plan.hcl --known-hosts fleet/known_hosts
  rollout repair plan.hcl --limit web2 --yes`,
	},
	"unlock": {
		long: `unlock removes a stale lock left by a run that died. A live run's lock is
refused; repair is the usual way back, as it also puts back what the dead
run left. It asks first; --yes answers in CI.

` + planArgHelp,
		example: `  rollout unlock plan.hcl
  rollout unlock plan.hcl --limit web1 --yes`,
	},
	"backend": {
		long: `backend works on the state backend that holds the plan's lock and journal:
the local .rollout directory beside the plan, or etcd for a team.`,
		example: `  rollout backend migrate plan.hcl`,
	},
	"backend migrate": {
		long: `backend migrate copies the local journal into the plan's etcd backend: only
what etcd lacks, so it is safe to run again.

` + planArgHelp,
		example: `  rollout backend migrate plan.hcl
  rollout backend migrate plan.hcl --ui json`,
	},
}

// globalFor says which global flags do something for a command (by its
// path); a flag not listed here is left out of that command's help. Flags
// are still accepted everywhere: a printed command that carries them
// pastes as it is.
var globalFor = func() map[string][]string {
	ssh := []string{"known-hosts", "accept-new-host-keys", "ssh-config", "ssh-keepalive", "ssh-keepalive-count", "forks"}
	run := append([]string{"ui", "yes", "state-dir", "verbose", "debug", "operator"}, ssh...)
	return map[string][]string{
		"version":         {"ui"},
		"validate":        {"ui"},
		"hosts":           {"ui"},
		"plan":            append([]string{"ui", "state-dir"}, ssh...),
		"apply":           run,
		"rollback":        run,
		"repair":          run,
		"unlock":          append([]string{"ui", "yes", "state-dir"}, ssh...),
		"status":          append([]string{"ui", "state-dir"}, ssh...),
		"history":         {"ui", "state-dir", "verbose", "debug"},
		"backend migrate": {"ui", "state-dir"},
		"init":            {"yes"},
		"backend":         {},
		"completion":      {},
	}
}()

// applyHelp gives every command its long description and examples, shows
// each only the global flags that do something for it, and makes a
// mistyped flag's error say which flag was meant.
func applyHelp(root *cobra.Command) {
	walk(root, func(c *cobra.Command) {
		h, ok := commandHelp[commandPath(c)]
		if !ok {
			return
		}
		if c.Long == "" {
			c.Long = h.long
		}
		if c.Example == "" {
			c.Example = h.example
		}
	})
	cobra.AddTemplateFunc("globalFlagUsages", globalFlagUsages)
	root.SetUsageTemplate(strings.Replace(root.UsageTemplate(),
		`{{if .HasAvailableInheritedFlags}}

Global Flags:
{{.InheritedFlags.FlagUsages | trimTrailingWhitespaces}}{{end}}`,
		`{{with globalFlagUsages .}}

Global Flags:
{{.}}{{end}}`, 1))
}

// commandPath is c's path under rollout: "apply", "backend migrate".
func commandPath(c *cobra.Command) string {
	return strings.TrimPrefix(c.CommandPath(), c.Root().Name()+" ")
}

func walk(c *cobra.Command, fn func(*cobra.Command)) {
	fn(c)
	for _, s := range c.Commands() {
		walk(s, fn)
	}
}

// globalFlagUsages is the "Global Flags" section of c's help: the
// inherited flags that do something for c (all of them for a command
// globalFor does not list).
func globalFlagUsages(c *cobra.Command) string {
	path := commandPath(c)
	if strings.HasPrefix(path, "completion ") { // cobra's own: the script for a shell
		path = "completion"
	}
	keep, listed := globalFor[path]
	fs := pflag.NewFlagSet(c.Name(), pflag.ContinueOnError)
	c.InheritedFlags().VisitAll(func(f *pflag.Flag) {
		if f.Hidden || listed && !contains(keep, f.Name) {
			return
		}
		fs.AddFlag(f)
	})
	return strings.TrimRight(fs.FlagUsages(), " \n")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// didYouMean adds to an unknown flag's error the flag meant: the closest
// of c's own and global flags, or the commands that have the flag.
func didYouMean(c *cobra.Command, err error) error {
	msg := err.Error()
	name, ok := unknownFlag(msg)
	if !ok {
		return err
	}
	best, dist := "", 3
	visit := func(f *pflag.Flag) {
		if f.Hidden {
			return
		}
		if d := editDistance(name, f.Name); d < dist || d == dist && best == "" {
			best, dist = f.Name, d
		}
	}
	c.Flags().VisitAll(visit)
	c.InheritedFlags().VisitAll(visit)
	if best != "" && dist <= 2 {
		return fmt.Errorf("%s; did you mean --%s?", msg, best)
	}
	var others []string
	walk(c.Root(), func(o *cobra.Command) {
		if o != c && !o.Hidden && o.Runnable() && o.LocalNonPersistentFlags().Lookup(name) != nil {
			others = append(others, "rollout "+commandPath(o))
		}
	})
	if len(others) > 0 {
		sort.Strings(others)
		return fmt.Errorf("%s; --%s is a flag of %s", msg, name, strings.Join(others, ", "))
	}
	return err
}

// unknownFlag reads the flag's name from pflag's "unknown flag: --name".
func unknownFlag(msg string) (string, bool) {
	const prefix = "unknown flag: --"
	if !strings.HasPrefix(msg, prefix) {
		return "", false
	}
	name, _, _ := strings.Cut(msg[len(prefix):], "=")
	return name, name != ""
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
