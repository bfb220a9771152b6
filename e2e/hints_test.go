package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rollout-sh/rollout/rollout/event"
)

// pasteNext runs a `next:` command as an operator pastes it: through sh,
// in the plan's dir, with the binary on PATH.
func (e *env) pasteNext(t *testing.T, next string) result {
	t.Helper()
	cmd := exec.Command("sh", "-c", next)
	cmd.Dir = e.dir
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(rolloutBin(t))+":"+os.Getenv("PATH"))
	var so, se strings.Builder
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("pasting %q: %v", next, err)
	}
	return result{so.String(), se.String(), code}
}

// lastNext is the command of the last `next:` line in out.
func lastNext(t *testing.T, out string) string {
	t.Helper()
	i := strings.LastIndex(out, "next: ")
	if i < 0 {
		t.Fatalf("no next: line in\n%s", out)
	}
	line, _, _ := strings.Cut(out[i+len("next: "):], "\n")
	return strings.TrimSpace(line)
}

// Issue 12: the hints of a run are the user's own command line plus what
// is needed, so they work when pasted — on a real fleet:
//   - unreachable host: "go on without them" narrows the user's --limit
//     (web1:web2:web4 without web4 is web1:web2, not web1:web2:web4:!web4)
//     and keeps --batch and --yes;
//   - plan, after a partial run, shows the batches apply will run (the
//     hosts still to change) and the hosts it skips;
//   - a gate nobody can approve: the rerun keeps --limit and --batch and
//     adds --auto-approve;
//   - a failed preflight says what failed, on which hosts, in words, in
//     run_done's message, and next is the command.
func TestHintsKeepTheUsersScope(t *testing.T) {
	t.Parallel()
	e := setup(t, 4, 1)
	v2 := e.tags["v2"]
	e.writePlan(v2, "halt", "0s")
	e.waitAllUp(t)
	kh := e.f.KnownHosts

	// web4 does not answer: its ssh port is one nobody listens on
	inv := filepath.Join(e.dir, "inventory.ini")
	good, err := os.ReadFile(inv)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	web4 := e.host(t, "web4")
	bad := strings.Replace(string(good), fmt.Sprintf("ansible_port=%d ", web4.SSHPort), fmt.Sprintf("ansible_port=%d ", closed), 1)
	if bad == string(good) {
		t.Fatalf("web4's port is not in the inventory:\n%s", good)
	}
	if err := os.WriteFile(inv, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	r := e.rollout("apply", "--limit", "web1:web2:web4", "--batch", "1", "--yes", "--ui", "plain")
	if r.code != 2 {
		dump(t, r)
		t.Fatalf("web4 unreachable: exit %d, want 2", r.code)
	}
	_, goOn, ok := strings.Cut(lastNext(t, r.stderr), "go on without them: ")
	want := "rollout apply rollout.hcl --limit web1:web2 --batch 1 --yes --known-hosts " + kh
	if !ok || goOn != want {
		t.Fatalf("go on without web4:\n got %q\nwant %q\n%s", goOn, want, r.stderr)
	}
	before := e.appVersion(t, web4)
	if p := e.pasteNext(t, goOn); p.code != 0 {
		dump(t, p)
		t.Fatalf("pasting %q: exit %d", goOn, p.code)
	}
	for _, h := range []string{"web1", "web2", "web3", "web4"} {
		want := map[string]string{"web1": "version=2", "web2": "version=2"}[h]
		if want == "" {
			want = before // untouched
		}
		if got := e.appVersion(t, e.host(t, h)); got != want {
			t.Errorf("after pasting, %s answers %q, want %q", h, got, want)
		}
	}
	if err := os.WriteFile(inv, good, 0o644); err != nil {
		t.Fatal(err)
	}

	// plan shows what apply will do: web1 and web2 are done
	r = e.rollout("plan", "--batch", "1", "--ui", "plain")
	if r.code != 0 {
		dump(t, r)
		t.Fatalf("plan: exit %d", r.code)
	}
	for _, want := range []string{"batch 1: web3\n", "batch 2: web4\n", "skipped, already at " + v2[:7] + ": web1, web2\n"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("plan lacks %q (the batches apply will run):\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "batch 3") || strings.Contains(r.stdout, "batch 1: web1") {
		t.Errorf("plan batches hosts apply skips:\n%s", r.stdout)
	}

	// a gate no one can approve: the rerun is the user's command plus --auto-approve
	e.extra = `  approve_after = [1]`
	e.writePlan(v2, "halt", "0s")
	r = e.rollout("apply", "--limit", "web3:web4", "--batch", "1", "--yes", "--ui", "plain")
	if r.code != 1 {
		dump(t, r)
		t.Fatalf("stopped at the gate: exit %d, want 1", r.code)
	}
	next := lastNext(t, r.stdout)
	want = "rollout apply rollout.hcl --limit web3:web4 --batch 1 --yes --auto-approve --known-hosts " + kh
	if next != want {
		t.Errorf("at the gate, next:\n got %q\nwant %q\n%s", next, want, r.stdout)
	}
	if p := e.pasteNext(t, next); p.code != 0 {
		dump(t, p)
		t.Fatalf("pasting %q: exit %d", next, p.code)
	}
	if got := e.appVersion(t, web4); got != "version=2" {
		t.Errorf("after pasting the gate's next, web4 answers %q", got)
	}

	// a failed preflight: what failed, in words, on which hosts (in order)
	broken := e.tags["broken-config"]
	e.writePlan(broken, "halt", "0s")
	wantMsg := fmt.Sprintf("preflight: file app.conf (conf/app.conf.tmpl@%s) rejected by its validator on 4 hosts (web1, web2, web3, web4); nothing was changed", broken[:7])
	wantNext := "rollout apply rollout.hcl --batch 1 --yes --known-hosts " + kh
	j := e.rollout("apply", "--batch", "1", "--yes", "--ui", "json")
	var done event.Event
	for _, ev := range parseEvents(t, j.stdout) {
		if ev.Event == event.RunDone {
			done = ev
		}
	}
	if j.code != 1 || !strings.HasPrefix(done.Message, wantMsg) || done.Next != wantNext {
		t.Errorf("preflight run_done: exit %d\n message %q\n    want %q…\n next %q\n want %q", j.code, done.Message, wantMsg, done.Next, wantNext)
	}
	if strings.Contains(done.Message, "the run failed") || strings.Contains(done.Message, "host(s) failed") {
		t.Errorf("run_done message is not in words: %q", done.Message)
	}
	p := e.rollout("apply", "--batch", "1", "--yes", "--ui", "plain")
	if !strings.Contains(p.stdout, "\n"+wantMsg) || lastNext(t, p.stdout) != wantNext {
		t.Errorf("plain view of the failed preflight does not end with the message and next:\n%s", p.stdout)
	}
}
