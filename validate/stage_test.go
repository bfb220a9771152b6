package validate

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/rollout-sh/rollout/internal/localrun"
	"github.com/rollout-sh/rollout/plan"
	"github.com/rollout-sh/rollout/rollout/event"
)

const rev = "09a536a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6"

// appConf is a rendered file for dest whose validator fails on a line
// that says colour, printing the path it checked (as real validators do).
func appConf(dest, content string) plan.Rendered {
	return plan.Rendered{
		FileSpec: plan.FileSpec{Name: "app.conf", Source: "conf/app.conf.tmpl", Template: true, Dest: dest, Mode: 0o640,
			Validate: `if grep -q colour %s; then echo "%s:6: unknown key \"colour\""; exit 3; fi`},
		Revision: rev, Content: []byte(content),
	}
}

func TestStageWritesBesideDestAndValidates(t *testing.T) {
	dir := t.TempDir()
	dest := filepath.Join(dir, "etc", "app.conf")
	staged, err, invalid := Remote{}.Stage(context.Background(), localrun.Runner{}, []plan.Rendered{appConf(dest, "version = 2\n")}, "stage-r1", false)
	if err != nil || invalid != nil {
		t.Fatalf("stage: %v / %v", err, invalid)
	}
	sp := staged[dest]
	if sp != filepath.Join(dir, "etc", ".app.conf.rollout-stage-r1") || sp != StagedPath(dest, "stage-r1") {
		t.Fatalf("staged at %q, want beside %s", sp, dest)
	}
	b, rerr := os.ReadFile(sp)
	if rerr != nil || string(b) != "version = 2\n" {
		t.Fatalf("staged copy: %q, %v", b, rerr)
	}
	if st, _ := os.Stat(sp); st.Mode().Perm() != 0o640 {
		t.Errorf("staged mode %v, want 0640", st.Mode().Perm())
	}
	if _, serr := os.Stat(dest); !os.IsNotExist(serr) {
		t.Errorf("staging touched the destination: %v", serr)
	}
	Remote{}.Unstage(context.Background(), localrun.Runner{}, staged)
	if _, serr := os.Stat(sp); !os.IsNotExist(serr) {
		t.Errorf("Unstage left %s", sp)
	}
}

// A validator's rejection names the file by source@commit, never by the
// staged path, and not by host: the same bad file reads the same
// everywhere.
func TestRejectionNamesOriginNotStagedPath(t *testing.T) {
	dir := t.TempDir()
	dest := filepath.Join(dir, "app.conf")
	staged, err, invalid := Remote{}.Stage(context.Background(), localrun.Runner{}, []plan.Rendered{appConf(dest, "colour = blue\n")}, "preflight-r1", true)
	if err != nil || invalid == nil {
		t.Fatalf("want the validator's rejection, got err %v, invalid %v", err, invalid)
	}
	msg := invalid.Error()
	for _, want := range []string{`file "app.conf" from conf/app.conf.tmpl@09a536a`, "validator `if grep -q colour %s;", "status 3",
		`conf/app.conf.tmpl@09a536a:6: unknown key "colour"`} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, ".rollout-") || strings.Contains(msg, dir) {
		t.Errorf("message names the staged path:\n%s", msg)
	}
	if _, serr := os.Stat(staged[dest]); !os.IsNotExist(serr) {
		t.Errorf("discard left the staged copy %s", staged[dest])
	}
}

// A failure to stage (here: the destination's directory is a file) is an
// error, not a validator's verdict, and the validators do not run.
func TestStagingFailureIsNotAVerdict(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "etc"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	f := appConf(filepath.Join(dir, "etc", "app.conf"), "colour = blue\n")
	_, err, invalid := Remote{}.Stage(context.Background(), localrun.Runner{}, []plan.Rendered{f}, "stage-r1", false)
	if err == nil || invalid != nil {
		t.Fatalf("err %v, invalid %v: want a staging error and no verdict", err, invalid)
	}
	if !strings.Contains(err.Error(), `file "app.conf": staging beside `) {
		t.Errorf("staging error %q does not name the file", err)
	}
}

func TestCheckNamesCommandAndOutput(t *testing.T) {
	if err := (Remote{}).Check(context.Background(), localrun.Runner{}, " "); err != nil {
		t.Errorf("an empty check failed: %v", err)
	}
	err := Remote{}.Check(context.Background(), localrun.Runner{}, "echo 'line 3: bad'; exit 1")
	if err == nil || !strings.HasPrefix(err.Error(), "check `echo 'line 3: bad'; exit 1`: ") || !strings.Contains(err.Error(), "line 3: bad") {
		t.Errorf("check error %v does not name the command and its output", err)
	}
}

type sink struct {
	mu sync.Mutex
	ev []event.Event
}

func (s *sink) emit(e event.Event) { s.mu.Lock(); s.ev = append(s.ev, e); s.mu.Unlock() }

// Preflight on hosts with the same bad file gives one identical message per
// host (views group them), names the failed hosts in order, and leaves
// nothing staged.
func TestPreflightSameFailureSameMessage(t *testing.T) {
	var hosts []Host
	var dirs []string
	for _, n := range []string{"web1", "web2", "web3"} {
		d := t.TempDir()
		dirs = append(dirs, d)
		content := "colour = blue\n"
		if n == "web2" {
			content = "version = 2\n"
		}
		hosts = append(hosts, Host{Name: n, Conn: localrun.Runner{}, Files: []plan.Rendered{appConf(filepath.Join(d, "app.conf"), content)}})
	}
	var s sink
	failed, err := Remote{}.Preflight(context.Background(), hosts, "preflight-r1", 2, s.emit)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(failed, ",") != "web1,web3" {
		t.Errorf("failed = %v, want web1,web3", failed)
	}
	msgs := map[string]string{}
	for _, e := range s.ev {
		if e.Event == event.PreflightHost {
			msgs[e.Host] = e.Message
		}
	}
	if msgs["web1"] == "" || msgs["web1"] != msgs["web3"] || msgs["web2"] != "" {
		t.Errorf("want one identical message for web1 and web3 and none for web2: %q", msgs)
	}
	if first, last := s.ev[0], s.ev[len(s.ev)-1]; first.Event != event.PreflightStart || len(first.Hosts) != 3 ||
		last.Event != event.PreflightDone || last.Status != event.StatusFailed {
		t.Errorf("events %+v, want preflight_start … preflight_done failed", s.ev)
	}
	for _, d := range dirs {
		if m, _ := filepath.Glob(filepath.Join(d, ".*.rollout-*")); len(m) > 0 {
			t.Errorf("preflight left %v", m)
		}
	}
}
