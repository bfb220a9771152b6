package validate

import (
	"context"
	"fmt"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/rollout-sh/rollout/internal/cmdout"
	"github.com/rollout-sh/rollout/internal/shell"
	"github.com/rollout-sh/rollout/internal/transport"
	"github.com/rollout-sh/rollout/plan"
	"github.com/rollout-sh/rollout/rollout/event"
)

// Remote stages and validates files on the hosts themselves, over their
// connections. The zero value is ready to use.
type Remote struct{}

// StagedPath is where dest's new content is staged for tag (a step and
// the run ID, "preflight-r-…"): a hidden file in dest's directory, so that
// moving it into place is a rename on the same filesystem.
func StagedPath(dest, tag string) string {
	return path.Join(path.Dir(dest), "."+path.Base(dest)+".rollout-"+tag)
}

// Stage writes every file next to its destination (nothing live changes)
// and runs the validators on the staged copies, in one command. err is a
// failure to stage (or to reach the host); invalid is a validator's
// rejection. staged maps each destination to its staged copy (including
// copies that may have been half written, for cleanup). With discard the
// staged copies are removed in the same command (preflight).
func (Remote) Stage(ctx context.Context, conn transport.Runner, files []plan.Rendered, tag string, discard bool) (staged map[string]string, err, invalid error) {
	staged = map[string]string{}
	var parts []string
	var all []string
	for _, f := range files {
		sp := StagedPath(f.Dest, tag)
		all = append(all, sp)
		parts = append(parts, stageScript(f.Dest, sp, f.Content, f.Mode, f.Owner))
	}
	var checked []plan.Rendered
	for _, f := range files {
		if f.Validate != "" {
			checked = append(checked, f)
			parts = append(parts, userCommand(f.ValidateCommand(StagedPath(f.Dest, tag))))
		}
	}
	finally := ""
	if discard && len(all) > 0 {
		finally = "rm -f -- " + shell.Join(all...)
	}
	res, err := shell.RunParts(ctx, conn, parts, false, finally)
	if err != nil {
		for i, f := range files {
			staged[f.Dest] = all[i] // may have been written: clean up
		}
		return staged, fmt.Errorf("staging: %w", err), nil
	}
	for i, f := range files {
		if !res[i].Ran {
			break
		}
		staged[f.Dest] = all[i]
		if res[i].Status != 0 {
			return staged, fmt.Errorf("file %q: staging beside %s: exited with status %d%s", f.Name, f.Dest, res[i].Status, cmdout.Tail(res[i].Out)), nil
		}
	}
	for i, f := range checked {
		pr := res[len(files)+i]
		if pr.Ran { // journal what it printed (remote_output)
			event.RemoteSinkOf(ctx)(event.PhaseValidate, event.ValidatorNote(f.Name, tag), f.ValidateCommand(StagedPath(f.Dest, tag)), pr.Status, pr.Out)
		}
		if pr.Ran && pr.Status != 0 {
			return staged, nil, rejected(f, staged[f.Dest], pr)
		}
	}
	return staged, nil, nil
}

// rejected is a validator's verdict on f, naming the file by its origin:
// the staged path (which differs per host and per run) is replaced by
// source@commit in the validator's output, so the same bad file reads the
// same on every host.
func rejected(f plan.Rendered, staged string, pr shell.PartResult) error {
	origin := f.Origin()
	out := pr.Out
	if staged != "" {
		out = strings.ReplaceAll(out, staged, origin)
	}
	return fmt.Errorf("file %q from %s: validator `%s` rejected the new content: exited with status %d%s", f.Name, origin, f.Validate, pr.Status, cmdout.Tail(out))
}

// Unstage removes staged copies (best effort, also after the run's context
// is cancelled).
func (Remote) Unstage(ctx context.Context, conn transport.Runner, staged map[string]string) {
	if len(staged) == 0 {
		return
	}
	var paths []string
	for _, sp := range staged {
		paths = append(paths, sp)
	}
	sort.Strings(paths)
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	_ = conn.Run(rctx, "rm -f "+shell.Join(paths...), nil, nil, nil)
}

// Check runs the plan's whole-config check (check = "nginx -t", say) once
// the files are in place, before the restart. An empty cmd passes.
func (Remote) Check(ctx context.Context, conn transport.Runner, cmd string) error {
	if strings.TrimSpace(cmd) == "" {
		return nil
	}
	var out strings.Builder
	err := conn.Run(ctx, shell.Merged(cmd), nil, &out, &out)
	event.RemoteSinkOf(ctx)(event.PhaseCheck, "", cmd, event.ExitStatus(err), out.String()) // journal what it printed (remote_output)
	if err != nil {
		return fmt.Errorf("check `%s`: %w%s", cmd, err, cmdout.Tail(out.String()))
	}
	return nil
}

// userCommand runs an operator's command as its own shell program: a
// syntax error in it fails that part only.
func userCommand(cmd string) string {
	return "eval " + shell.Quote(cmd)
}

// stageScript writes content to sp (next to dest; nothing live changes),
// checks its length, and gives it its mode and owner.
func stageScript(dest, sp string, content []byte, mode os.FileMode, owner string) string {
	var b strings.Builder
	b.WriteString("set -e\nd=" + shell.Quote(path.Dir(dest)) + "; t=" + shell.Quote(sp) + "\n")
	b.WriteString(`mkdir -p -- "$d"` + "\n")
	b.WriteString(`rm -f -- "$t"` + "\n")
	b.WriteString(`(umask 077; ` + shell.Printf(content) + ` >"$t")` + "\n")
	fmt.Fprintf(&b, `n=$(wc -c <"$t"); if [ $n -ne %d ]; then echo "short write: $n of %d bytes"; exit 1; fi`+"\n", len(content), len(content))
	fmt.Fprintf(&b, `chmod %s "$t"`+"\n", shell.OctalMode(mode))
	if owner != "" {
		fmt.Fprintf(&b, `chown %s "$t"`+"\n", shell.Quote(owner))
	}
	b.WriteString(`sync -- "$t" 2>/dev/null || sync`)
	return b.String()
}
