package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Usage is what one measured command cost the controller. The command runs
// under `rollout-bench measure`, a child subreaper: processes the tool
// leaves behind (ssh ControlPersist masters, daemonized helpers) are
// re-parented to it, stopped once the tool exits, and reaped, so that
// RUSAGE_CHILDREN covers the whole process tree.
type Usage struct {
	Argv     []string `json:"argv"`
	ExitCode int      `json:"exit_code"`
	WallS    float64  `json:"wall_s"` // start of the tool to its exit (leftovers are not waited for)
	UserS    float64  `json:"user_s"` // user CPU of the whole tree, leftovers included
	SysS     float64  `json:"sys_s"`
	// MaxRSSMiB is the largest resident set of any single process of the
	// tree (ru_maxrss of RUSAGE_CHILDREN).
	MaxRSSMiB float64 `json:"max_rss_mib"`
	// TreeRSSMiB is the peak of the summed resident sets of every process
	// of the tree at once, sampled every 50 ms from /proc.
	TreeRSSMiB float64 `json:"tree_rss_mib"`
	Leftovers  int     `json:"leftovers"` // processes still running when the tool exited
}

// CPUS is user + system CPU seconds.
func (u Usage) CPUS() float64 { return u.UserS + u.SysS }

const prSetChildSubreaper = 36

// runMeasure is `rollout-bench measure -o FILE -- ARGV...`: run ARGV with
// this process's stdio and environment, write a Usage as JSON to FILE and
// exit with ARGV's exit code.
func runMeasure(args []string) int {
	fs := flag.NewFlagSet("measure", flag.ContinueOnError)
	out := fs.String("o", "", "write the usage as JSON to this file (required)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	argv := fs.Args()
	if *out == "" || len(argv) == 0 {
		fmt.Fprintln(os.Stderr, "usage: rollout-bench measure -o FILE -- COMMAND [ARG...]")
		return 2
	}
	if _, _, e := syscall.RawSyscall6(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0, 0, 0, 0); e != 0 {
		fmt.Fprintf(os.Stderr, "rollout-bench measure: prctl(PR_SET_CHILD_SUBREAPER): %v\n", e)
		return 1
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, os.Stdout, os.Stderr
	self := os.Getpid()
	stop := make(chan struct{})
	peak := make(chan int64, 1)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "rollout-bench measure: %v\n", err)
		return 127
	}
	go func() {
		var p int64
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			p = max(p, treeRSS(self))
			select {
			case <-stop:
				peak <- p
				return
			case <-t.C:
			}
		}
	}()
	err := cmd.Wait()
	wall := time.Since(start)
	u := Usage{Argv: argv, WallS: wall.Seconds()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		u.ExitCode = ee.ExitCode()
	case err != nil:
		fmt.Fprintf(os.Stderr, "rollout-bench measure: %v\n", err)
		u.ExitCode = 127
	}
	u.Leftovers = reapLeftovers(self)
	close(stop)
	u.TreeRSSMiB = float64(<-peak) / (1 << 20)
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru); err != nil {
		fmt.Fprintf(os.Stderr, "rollout-bench measure: getrusage: %v\n", err)
		return 1
	}
	u.UserS = time.Duration(syscall.TimevalToNsec(ru.Utime)).Seconds()
	u.SysS = time.Duration(syscall.TimevalToNsec(ru.Stime)).Seconds()
	u.MaxRSSMiB = float64(ru.Maxrss) / 1024 // KiB on Linux
	b, _ := json.Marshal(u)
	if err := os.WriteFile(*out, b, 0o644); err != nil {
		fmt.Fprintf(os.Stderr, "rollout-bench measure: %v\n", err)
		return 1
	}
	return u.ExitCode
}

// reapLeftovers stops the processes re-parented to us after the tool
// exited (SIGTERM, SIGKILL after 5 s) and reaps them; it returns how many
// there were.
func reapLeftovers(self int) int {
	signalled := map[int]bool{}
	deadline := time.Now().Add(5 * time.Second)
	for {
		for {
			var ws syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
		kids := children(self)
		if len(kids) == 0 {
			return len(signalled)
		}
		for _, k := range kids {
			sig := syscall.SIGTERM
			if time.Now().After(deadline) {
				sig = syscall.SIGKILL
			} else if signalled[k] {
				continue
			}
			signalled[k] = true
			_ = syscall.Kill(k, sig)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// children lists the child processes of pid (of all its threads).
func children(pid int) []int {
	tasks, _ := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/children")
	var kids []int
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if k, err := strconv.Atoi(f); err == nil {
				kids = append(kids, k)
			}
		}
	}
	return kids
}

// treeRSS sums the resident set sizes (bytes) of pid's descendants.
func treeRSS(pid int) int64 {
	var sum int64
	page := int64(os.Getpagesize())
	seen := map[int]bool{}
	stack := children(pid)
	for len(stack) > 0 {
		p := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[p] {
			continue
		}
		seen[p] = true
		if b, err := os.ReadFile("/proc/" + strconv.Itoa(p) + "/statm"); err == nil {
			if f := strings.Fields(string(b)); len(f) > 1 {
				if n, err := strconv.ParseInt(f[1], 10, 64); err == nil {
					sum += n * page
				}
			}
		}
		stack = append(stack, children(p)...)
	}
	return sum
}
