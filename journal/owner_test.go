package journal

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestOwnerDead(t *testing.T) {
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	me := "tester@" + host
	now := time.Now()

	if dead, why := OwnerDead(LockInfo{Owner: me, PID: os.Getpid(), Acquired: now}); dead {
		t.Errorf("this live process is reported dead: %s", why)
	}

	// a pid that ran and exited
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	dead, why := OwnerDead(LockInfo{Owner: me, PID: cmd.Process.Pid, Acquired: now})
	if !dead || !strings.Contains(why, "not running on this machine") {
		t.Errorf("exited pid %d: dead=%v %q, want dead (not running)", cmd.Process.Pid, dead, why)
	}

	// a live pid that started after the lock was taken: reused
	dead, why = OwnerDead(LockInfo{Owner: me, PID: os.Getpid(), Acquired: now.Add(-24 * 365 * time.Hour)})
	if !dead || !strings.Contains(why, "another process now") {
		t.Errorf("pid reused after the lock: dead=%v %q, want dead (another process)", dead, why)
	}

	// another machine: never provably dead
	if dead, _ := OwnerDead(LockInfo{Owner: "tester@elsewhere-" + host, PID: cmd.Process.Pid, Acquired: now}); dead {
		t.Error("a lock taken on another machine is reported dead")
	}
}
