package journal

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// OwnerDead reports whether the run holding a lock is provably dead: the
// lock was taken on this machine (its owner is user@<this hostname>) and
// its pid is not running, or is running but started after the lock was
// taken (the pid was reused by another process). why says which, for the
// operator. A lock taken on another machine is never provably dead.
func OwnerDead(l LockInfo) (dead bool, why string) {
	at := strings.LastIndex(l.Owner, "@")
	host, err := os.Hostname()
	if at < 0 || err != nil || l.Owner[at+1:] != host || l.PID <= 0 {
		return false, ""
	}
	if err := syscall.Kill(l.PID, 0); errors.Is(err, syscall.ESRCH) {
		return true, fmt.Sprintf("pid %d is not running on this machine (%s)", l.PID, host)
	}
	started, ok := processStart(l.PID)
	// one second of slack: /proc's start time has clock-tick resolution
	// and the boot time whole seconds
	if ok && !l.Acquired.IsZero() && started.After(l.Acquired.Add(time.Second)) {
		return true, fmt.Sprintf("pid %d on this machine is another process now (started %s, after the lock was taken)",
			l.PID, started.UTC().Format(time.RFC3339))
	}
	return false, ""
}

// processStart is when pid started, from /proc (Linux).
func processStart(pid int) (time.Time, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return time.Time{}, false
	}
	// fields after the command name, which is in parentheses and may hold spaces
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return time.Time{}, false
	}
	f := strings.Fields(s[i+1:])
	const startField = 22 - 3 // field 22 of stat, counted after pid and comm
	if len(f) <= startField {
		return time.Time{}, false
	}
	ticks, err := strconv.ParseInt(f[startField], 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	boot, ok := bootTime()
	if !ok {
		return time.Time{}, false
	}
	const clkTck = 100 // USER_HZ on Linux
	return boot.Add(time.Duration(ticks) * time.Second / clkTck), true
}

func bootTime() (time.Time, bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return time.Time{}, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return time.Time{}, false
			}
			return time.Unix(n, 0), true
		}
	}
	return time.Time{}, false
}
