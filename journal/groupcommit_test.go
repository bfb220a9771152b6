package journal

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rollout-sh/rollout/rollout/event"
)

// Records appended while a commit is in flight share the next one: 64
// pipelines appending at once pay far fewer fsyncs than records, and every
// record is in the file, whole.
func TestAppendsCommitInGroups(t *testing.T) {
	path := filepath.Join(t.TempDir(), File)
	j, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	const writers, each = 64, 20
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if err := j.Append(ev(fmt.Sprintf("w%d", w), event.Log, fmt.Sprintf("h%d", i))); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	j.mu.Lock()
	commits := j.commits
	j.mu.Unlock()
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := Read(path)
	if err != nil || len(got) != writers*each {
		t.Fatalf("read %d events (%v), want %d", len(got), err, writers*each)
	}
	t.Logf("%d records in %d commits", writers*each, commits)
	if commits >= writers*each {
		t.Errorf("%d commits for %d concurrent records: appends do not share commits", commits, writers*each)
	}
}

// The durability rule: a step is acted on only after Append returned, and
// then its record is on disk. A child appends from many goroutines and,
// after each Append returns, "acts" (writes the record's name to another
// file); it is SIGKILLed mid-stream. Every act the child made must have
// its record in the journal, and the journal must read.
func TestAppendIsDurableBeforeTheStepIsActedOn(t *testing.T) {
	if os.Getenv("ROLLOUT_JOURNAL_CHILD") != "" {
		appendAndActUntilKilled(os.Getenv("ROLLOUT_JOURNAL_CHILD"))
		return
	}
	for round := range 3 {
		dir := t.TempDir()
		cmd := exec.Command(os.Args[0], "-test.run", "^TestAppendIsDurableBeforeTheStepIsActedOn$")
		cmd.Env = append(os.Environ(), "ROLLOUT_JOURNAL_CHILD="+dir)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// kill it once it has acted a while (bounded: the child stops by itself after 20000 records)
		acts := filepath.Join(dir, "acts")
		deadline := time.Now().Add(20 * time.Second)
		for {
			st, err := os.Stat(acts)
			if err == nil && st.Size() > int64(2000*(round+1)) || time.Now().After(deadline) {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()

		evs, err := Read(filepath.Join(dir, File))
		if err != nil {
			t.Fatalf("round %d: the journal does not read after the kill: %v", round, err)
		}
		recorded := map[string]bool{}
		for _, e := range evs {
			recorded[e.Host] = true
		}
		f, err := os.Open(acts)
		if err != nil {
			t.Fatal(err)
		}
		acted := 0
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			name := sc.Text()
			if !strings.HasSuffix(name, ".") { // an act torn by the kill itself
				continue
			}
			acted++
			if !recorded[strings.TrimSuffix(name, ".")] {
				t.Errorf("round %d: %s was acted on, but its record is not in the journal", round, name)
			}
		}
		f.Close()
		if acted == 0 {
			t.Fatalf("round %d: the child acted on nothing before it was killed", round)
		}
		t.Logf("round %d: %d acts, %d records survive the kill", round, acted, len(evs))
	}
}

// appendAndActUntilKilled is the child of the durability test.
func appendAndActUntilKilled(dir string) {
	j, err := Open(filepath.Join(dir, File))
	if err != nil {
		os.Exit(3)
	}
	acts, err := os.OpenFile(filepath.Join(dir, "acts"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		os.Exit(3)
	}
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			for i := range 1250 {
				name := fmt.Sprintf("w%d-%d", w, i)
				if err := j.Append(ev("r1", event.HostPhase, name)); err != nil {
					os.Exit(4)
				}
				// the act: only now, and each in one write
				_, _ = acts.WriteString(name + ".\n")
			}
		})
	}
	wg.Wait()
	os.Exit(0)
}
