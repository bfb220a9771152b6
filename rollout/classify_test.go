package rollout

import (
	"errors"
	"reflect"
	"testing"

	"github.com/rollout-sh/rollout/journal"
	"github.com/rollout-sh/rollout/plan"
)

func TestClassify(t *testing.T) {
	const rev, old = "2222222222222222222222222222222222222222", "1111111111111111111111111111111111111111"
	files := []Rendered{
		{FileSpec: plan.FileSpec{Name: "app", Dest: "/etc/app.conf"}, SHA256: "new-app"},
		{FileSpec: plan.FileSpec{Name: "env", Dest: "/etc/app.env"}, SHA256: "new-env"},
	}
	atOld := &journal.HostState{Revision: old, Files: map[string]string{"/etc/app.conf": "old-app", "/etc/app.env": "old-env"}}
	atRev := &journal.HostState{Revision: rev, Files: map[string]string{"/etc/app.conf": "new-app", "/etc/app.env": "new-env"}}
	// at rev, and it recorded a file the target no longer names
	atRevExtra := &journal.HostState{Revision: rev, Files: map[string]string{"/etc/app.conf": "new-app", "/etc/app.env": "new-env", "/etc/gone.conf": "gone"}}
	tests := []struct {
		name      string
		st        *journal.HostState
		live      map[string]string
		want      HostAction
		wantDrift []string
		wantFiles []FileChange
	}{
		{name: "not read (offline)", st: nil, live: nil, want: HostChange,
			wantFiles: []FileChange{FileUnknown, FileUnknown}},
		{name: "fresh host", st: nil, live: map[string]string{"/etc/app.conf": "", "/etc/app.env": ""}, want: HostChange,
			wantFiles: []FileChange{FileNew, FileNew}},
		{name: "at the previous revision", st: atOld, live: map[string]string{"/etc/app.conf": "old-app", "/etc/app.env": "old-env"}, want: HostChange,
			wantFiles: []FileChange{FileChanged, FileChanged}},
		{name: "at the previous revision, one file already right", st: atOld, live: map[string]string{"/etc/app.conf": "old-app", "/etc/app.env": "new-env"}, want: HostDrift,
			wantDrift: []string{"/etc/app.env"}, wantFiles: []FileChange{FileChanged, FileSame}},
		{name: "hand-edited since the previous revision", st: atOld, live: map[string]string{"/etc/app.conf": "edited", "/etc/app.env": "old-env"}, want: HostDrift,
			wantDrift: []string{"/etc/app.conf"}, wantFiles: []FileChange{FileChanged, FileChanged}},
		{name: "a recorded file deleted by hand", st: atOld, live: map[string]string{"/etc/app.conf": "old-app", "/etc/app.env": ""}, want: HostDrift,
			wantDrift: []string{"/etc/app.env"}, wantFiles: []FileChange{FileChanged, FileNew}},
		{name: "at the target with matching files", st: atRev, live: map[string]string{"/etc/app.conf": "new-app", "/etc/app.env": "new-env"}, want: HostSkip,
			wantFiles: []FileChange{FileSame, FileSame}},
		{name: "at the target, a file edited by hand", st: atRev, live: map[string]string{"/etc/app.conf": "new-app", "/etc/app.env": "edited"}, want: HostDrift,
			wantDrift: []string{"/etc/app.env"}, wantFiles: []FileChange{FileSame, FileChanged}},
		{name: "files right but nothing recorded", st: nil, live: map[string]string{"/etc/app.conf": "new-app", "/etc/app.env": "new-env"}, want: HostChange,
			wantFiles: []FileChange{FileSame, FileSame}},
		{name: "files right, recorded at another revision", st: &journal.HostState{Revision: old, Files: map[string]string{"/etc/app.conf": "new-app", "/etc/app.env": "new-env"}},
			live: map[string]string{"/etc/app.conf": "new-app", "/etc/app.env": "new-env"}, want: HostChange, wantFiles: []FileChange{FileSame, FileSame}},
		// the run skips it: what it changes matches; the dropped file's edit is reported as drift
		{name: "at the target, a file no longer in the plan edited", st: atRevExtra,
			live: map[string]string{"/etc/app.conf": "new-app", "/etc/app.env": "new-env", "/etc/gone.conf": "edited"}, want: HostSkip,
			wantDrift: []string{"/etc/gone.conf"}, wantFiles: []FileChange{FileSame, FileSame}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Classify(files, rev, tt.st, tt.live)
			if c.Action != tt.want {
				t.Errorf("action = %s, want %s", c.Action, tt.want)
			}
			if !reflect.DeepEqual(c.Drift, tt.wantDrift) {
				t.Errorf("drift = %v, want %v", c.Drift, tt.wantDrift)
			}
			var got []FileChange
			for _, f := range c.Files {
				got = append(got, f.Change)
				if f.Live != tt.live[f.Dest] {
					t.Errorf("%s: live = %q, want %q", f.Dest, f.Live, tt.live[f.Dest])
				}
			}
			if !reflect.DeepEqual(got, tt.wantFiles) {
				t.Errorf("files = %v, want %v", got, tt.wantFiles)
			}
			if c.Current != revOf(tt.st) {
				t.Errorf("current = %q, want %q", c.Current, revOf(tt.st))
			}
		})
	}
}

// A host that could not be read is unknown, whatever else the view holds;
// the same view read is what the runner's rule says.
func TestHostViewClass(t *testing.T) {
	tg := &Target{Files: []Rendered{{FileSpec: plan.FileSpec{Name: "app", Dest: "/a"}, SHA256: "x"}}}
	st := &journal.HostState{Revision: "r", Files: map[string]string{"/a": "x"}}
	v := HostView{State: st, Live: map[string]string{"/a": "x"}}
	if got := v.Class(tg, "r").Action; got != HostSkip {
		t.Errorf("readable host at the target: %s, want skip", got)
	}
	v.Err = errors.New("ssh: connection refused")
	c := v.Class(tg, "r")
	if c.Action != HostUnknown || c.Files[0].Change != FileUnknown || c.Current != "" {
		t.Errorf("unreadable host: %+v, want unknown with unknown files", c)
	}
}
