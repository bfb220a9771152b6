package bench

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"mvdan.cc/sh/v3/expand"
	"mvdan.cc/sh/v3/interp"
	"mvdan.cc/sh/v3/syntax"

	"github.com/rollout-sh/rollout/internal/localrun"
	"github.com/rollout-sh/rollout/inventory"
	"github.com/rollout-sh/rollout/rollout"
	"github.com/rollout-sh/rollout/rollout/event"
)

// memConn is a "host" whose commands run in an in-process POSIX shell
// (mvdan.cc/sh/v3/interp) on a directory of this machine, with the few
// external commands the engine's scripts use (mkdir, mv, rm, cat,
// sha256sum, ...) written in Go: no process, no network, so what the
// engine itself costs per host shows. A command it does not know fails
// with status 127 and its name, so the benchmark fails loudly when the
// engine starts using a new one.
type memConn struct{}

func (memConn) Run(ctx context.Context, cmd string, stdin io.Reader, stdout, stderr io.Writer) error {
	file, err := syntax.NewParser().Parse(strings.NewReader(cmd), "")
	if err != nil {
		return fmt.Errorf("memconn: parse: %w", err)
	}
	if stdout == nil {
		stdout = io.Discard
	}
	var errb bytes.Buffer
	w := io.Writer(&errb)
	if stderr != nil {
		w = io.MultiWriter(stderr, &errb)
	}
	r, err := interp.New(interp.StdIO(stdin, stdout, w), interp.ExecHandlers(coreutils), interp.CallHandler(unsupported),
		interp.Env(expand.ListEnviron("PATH=/usr/bin:/bin", "HOME=/root", "LC_ALL=C")))
	if err != nil {
		return err
	}
	err = r.Run(ctx, file)
	var st interp.ExitStatus
	if errors.As(err, &st) {
		return &localrun.ExitError{Status: int(st), Stderr: strings.TrimSpace(errb.String())}
	}
	return err
}

func (memConn) WriteFile(_ context.Context, path string, data []byte, mode os.FileMode, _ string) error {
	tmp := path + ".tmp-bench"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func (memConn) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	return nil, errors.New("memconn: no network")
}

// unsupported replaces what the interpreter lacks: umask (files are
// created with fixed modes here), set -C (noclobber: nothing else writes
// these files during a benchmark) and trap on signals (nothing sends one).
func unsupported(_ context.Context, args []string) ([]string, error) {
	switch {
	case args[0] == "umask", len(args) == 2 && args[0] == "set" && args[1] == "-C":
		return []string{"true"}, nil
	case args[0] == "trap" && len(args) > 2 && args[len(args)-1] != "EXIT" && args[len(args)-1] != "ERR":
		return []string{"true"}, nil
	}
	return args, nil
}

// coreutils runs the external commands of the engine's scripts in Go.
func coreutils(next interp.ExecHandlerFunc) interp.ExecHandlerFunc {
	return func(ctx context.Context, args []string) error {
		hc := interp.HandlerCtx(ctx)
		fail := func(format string, a ...any) error {
			fmt.Fprintf(hc.Stderr, args[0]+": "+format+"\n", a...)
			return interp.ExitStatus(1)
		}
		var flags string
		var ops []string
		for i, a := range args[1:] {
			if a == "--" {
				ops = append(ops, args[i+2:]...)
				break
			}
			if strings.HasPrefix(a, "-") && len(a) > 1 && len(ops) == 0 && args[0] != "stat" {
				flags += a[1:]
				continue
			}
			ops = append(ops, a)
		}
		has := func(f string) bool { return strings.Contains(flags, f) }
		switch args[0] {
		case "true", "sync":
			return nil
		case "mkdir":
			for _, p := range ops {
				var err error
				if has("p") {
					err = os.MkdirAll(p, 0o755)
				} else {
					err = os.Mkdir(p, 0o755)
				}
				if err != nil {
					return fail("%v", err)
				}
			}
		case "rmdir":
			for _, p := range ops {
				if err := os.Remove(p); err != nil {
					return fail("%v", err)
				}
			}
		case "rm":
			for _, p := range ops {
				var err error
				if has("r") {
					err = os.RemoveAll(p)
				} else {
					err = os.Remove(p)
				}
				if err != nil && !(has("f") && errors.Is(err, os.ErrNotExist)) {
					return fail("%v", err)
				}
			}
		case "mv":
			if len(ops) != 2 {
				return fail("want 2 operands, got %q", ops)
			}
			if err := os.Rename(ops[0], ops[1]); err != nil {
				return fail("%v", err)
			}
		case "cp": // cp -p SRC DST
			if len(ops) != 2 {
				return fail("want 2 operands, got %q", ops)
			}
			fi, err := os.Stat(ops[0])
			if err != nil {
				return fail("%v", err)
			}
			data, err := os.ReadFile(ops[0])
			if err == nil {
				err = os.WriteFile(ops[1], data, fi.Mode().Perm())
			}
			if err == nil && has("p") {
				err = os.Chtimes(ops[1], fi.ModTime(), fi.ModTime())
			}
			if err != nil {
				return fail("%v", err)
			}
		case "cat":
			if len(ops) == 0 {
				_, err := io.Copy(hc.Stdout, hc.Stdin)
				return err
			}
			for _, p := range ops {
				b, err := os.ReadFile(p)
				if err != nil {
					return fail("%v", err)
				}
				hc.Stdout.Write(b)
			}
		case "sha256sum":
			h := sha256.New()
			if _, err := io.Copy(h, hc.Stdin); err != nil {
				return fail("%v", err)
			}
			fmt.Fprintf(hc.Stdout, "%s  -\n", hex.EncodeToString(h.Sum(nil)))
		case "chmod": // chmod OCTAL|go-rwx FILE...
			if len(ops) < 2 {
				return fail("want a mode and files, got %q", ops)
			}
			for _, p := range ops[1:] {
				fi, err := os.Stat(p)
				if err != nil {
					return fail("%v", err)
				}
				mode := fi.Mode().Perm() & 0o700
				if ops[0] != "go-rwx" {
					m, err := strconv.ParseUint(ops[0], 8, 32)
					if err != nil {
						return fail("only octal modes and go-rwx are implemented, got %q", ops[0])
					}
					mode = os.FileMode(m).Perm()
				}
				if err := os.Chmod(p, mode); err != nil {
					return fail("%v", err)
				}
			}
		case "wc": // wc -c, of stdin
			if flags != "c" || len(ops) != 0 {
				return fail("only wc -c <FILE is implemented, got %q", args)
			}
			n, err := io.Copy(io.Discard, hc.Stdin)
			if err != nil {
				return fail("%v", err)
			}
			fmt.Fprintln(hc.Stdout, n)
		case "stat": // stat -c %Y FILE: the modification time in Unix seconds
			if len(ops) != 3 || ops[0] != "-c" || ops[1] != "%Y" {
				return fail("only stat -c %%Y FILE is implemented, got %q", ops)
			}
			fi, err := os.Stat(ops[2])
			if err != nil {
				return fail("%v", err)
			}
			fmt.Fprintln(hc.Stdout, fi.ModTime().Unix())
		case "date": // date +%s
			fmt.Fprintln(hc.Stdout, time.Now().Unix())
		default:
			fmt.Fprintf(hc.Stderr, "memconn: %s: command not implemented in bench/engine_test.go\n", args[0])
			return interp.ExitStatus(127)
		}
		return nil
	}
}

type nopDrainer struct{}

func (nopDrainer) Check(context.Context) error                   { return nil }
func (nopDrainer) Drain(context.Context) error                   { return nil }
func (nopDrainer) Sessions(context.Context) (int, error)         { return 0, nil }
func (nopDrainer) Settle(context.Context) error                  { return nil }
func (nopDrainer) Undrain(context.Context) error                 { return nil }
func (nopDrainer) SetWeight(context.Context, int) error          { return nil }
func (nopDrainer) Serving(context.Context) (bool, string, error) { return true, "UP", nil }

type passGate struct{}

func (passGate) Wait(context.Context, func(rollout.Progress)) error { return nil }

// counter counts the run's events and remembers how hosts ended.
type counter struct {
	mu     sync.Mutex // the engine emits from many goroutines
	events int
	done   map[event.Outcome]int
	failed []string // the first failures' messages
}

func (c *counter) Emit(e event.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events++
	if e.Event == event.HostDone {
		c.done[event.Outcome(e.Status)]++
	}
	if e.Status == event.StatusFailed && len(c.failed) < 3 {
		c.failed = append(c.failed, fmt.Sprintf("%s %s %s: %s", e.Host, e.Event, e.Phase, e.Message))
	}
}

// BenchmarkScaleEngine10k runs the engine (rollout.Run, the real pipeline,
// journal and locks) over 10,000 hosts whose transport is memConn and whose
// load balancer and health gate are no-op fakes, in batches of 1, 1%, 5%,
// 25%. "apply" deploys a new revision to every host (each iteration
// alternates between two); "noop" re-runs the revision every host is on.
func BenchmarkScaleEngine10k(b *testing.B) {
	n := scaleHosts
	if s := os.Getenv("ROLLOUT_BENCH_ENGINE_HOSTS"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	dir := scaleDir(b, n)
	// The plan's commands must run in memConn: a validator and a restart
	// that are shell builtins.
	planFile := filepath.Join(dir, "engine.hcl")
	src, err := os.ReadFile(filepath.Join(dir, "rollout.hcl"))
	if err != nil {
		b.Fatal(err)
	}
	p := strings.NewReplacer(`"/usr/bin/app -check -config %s"`, `"test -s %s"`, `"systemctl restart app"`, `"true"`).Replace(string(src))
	roots := b.TempDir()
	p = strings.ReplaceAll(p, "${host.vars.root}", roots+"/${host.name}")
	if err := os.WriteFile(planFile, []byte(p), 0o644); err != nil {
		b.Fatal(err)
	}
	wd, _ := os.Getwd()
	if err := os.Chdir(dir); err != nil {
		b.Fatal(err)
	}
	defer os.Chdir(wd)
	for i := 1; i <= n; i++ {
		if err := os.MkdirAll(filepath.Join(roots, fmt.Sprintf("web%05d", i), "etc"), 0o755); err != nil {
			b.Fatal(err)
		}
	}
	repoCommit(b, filepath.Join(dir, "repo"), "v3")
	env := func(c *counter) rollout.Env {
		return rollout.Env{
			Connect:    func(context.Context, *inventory.Host) (rollout.Conn, error) { return memConn{}, nil },
			NewDrainer: func(context.Context, *rollout.Target) (rollout.Drainer, error) { return nopDrainer{}, nil },
			NewGate: func(context.Context, *rollout.Target, rollout.Drainer, bool) (rollout.Gate, error) {
				return passGate{}, nil
			},
			Sink: c,
		}
	}
	run := func(b *testing.B, rev string, i int) *counter {
		pr, err := rollout.Prepare(rollout.Request{PlanFile: planFile, Revision: rev})
		if err != nil {
			b.Fatal(err)
		}
		c := &counter{done: map[event.Outcome]int{}}
		res, err := rollout.Run(context.Background(), pr, env(c), rollout.Options{
			RunID: fmt.Sprintf("bench-%s-%d-%d", rev, i, time.Now().UnixNano()), Owner: "bench@here",
			LocalDir: filepath.Join(dir, ".rollout"), AutoApprove: true, Forks: 20,
		}, nil)
		if err != nil || res.ExitCode != 0 {
			msg := fmt.Sprint(err)
			if lines := strings.Count(msg, "\n") + 1; lines > 5 {
				msg = strings.Join(strings.SplitN(msg, "\n", 6)[:5], "\n") + fmt.Sprintf("\n... (%d lines in all)", lines)
			}
			b.Fatalf("engine run of %s: %s (exit %d, outcomes %v)\n%s", rev, msg, res.ExitCode, c.done, strings.Join(c.failed, "\n"))
		}
		return c
	}
	b.Run("apply", func(b *testing.B) {
		i := 0
		var c *counter
		for b.Loop() {
			rev := []string{"v2", "v3"}[i%2]
			c = run(b, rev, i)
			i++
		}
		if c.done[event.OutcomeOK] != n {
			b.Fatalf("%d hosts ok, want %d: %v", c.done[event.OutcomeOK], n, c.done)
		}
		b.ReportMetric(float64(c.events), "events")
	})
	b.Run("noop", func(b *testing.B) {
		run(b, "v3", 0) // apply may have left v2; b.Loop starts the timer
		var c *counter
		for b.Loop() {
			c = run(b, "v3", 0)
		}
		if c.done[event.OutcomeOK] != 0 {
			b.Fatalf("the no-op re-run changed hosts: %v", c.done)
		}
	})
}

// repoCommit adds a commit tagged tag to repo with a changed template.
func repoCommit(b *testing.B, repo, tag string) {
	b.Helper()
	p := filepath.Join(repo, "conf", "app.conf.tmpl")
	src, err := os.ReadFile(p)
	if err != nil {
		b.Fatal(err)
	}
	if bytes.Contains(src, []byte("version = 3")) {
		return
	}
	if err := os.WriteFile(p, bytes.Replace(src, []byte("version = 2"), []byte("version = 3"), 1), 0o644); err != nil {
		b.Fatal(err)
	}
	gitIn(b, repo, "add", "-A")
	gitIn(b, repo, "commit", "-qm", tag)
	gitIn(b, repo, "tag", tag)
}
