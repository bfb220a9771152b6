package rollout

import (
	"context"
	"sort"

	"github.com/rollout-sh/rollout/journal"
)

// HostAction is what a run does with one host, decided from a look at it. It
// is the one classification `plan`, `apply` (the runner and its prompt)
// and `status` share.
type HostAction string

const (
	// HostChange: the host is not at the target revision, or its live
	// files differ from the target's: the run drains and changes it.
	HostChange HostAction = "change"
	// HostSkip: already at the target revision with matching files: the
	// run neither drains nor restarts it.
	HostSkip HostAction = "skip"
	// HostDrift: live files differ from what the recorded revision
	// deployed (a hand edit): the run refuses it without --adopt.
	HostDrift HostAction = "drift"
	// HostUnknown: the host could not be read.
	HostUnknown HostAction = "unknown"
)

// FileChange is what a run does to one file of the target.
type FileChange string

const (
	FileNew     FileChange = "new"     // missing on the host
	FileChanged FileChange = "changed" // on the host with other content
	FileSame    FileChange = "same"    // on the host as the target has it
	FileUnknown FileChange = "unknown" // the host was not read
)

// FileClass is one target file and its live state.
type FileClass struct {
	Name, Dest, SHA256 string
	Live               string // the live sha256 ("" = missing or not read)
	Change             FileChange
}

// Class is how one host stands against the target.
type Class struct {
	Action  HostAction
	Current string   // the recorded revision ("" = nothing recorded)
	Drift   []string // recorded files whose live content differs, sorted
	Files   []FileClass
}

// Classify decides what a run does with a host whose recorded state is st
// and whose live file hashes are live, for the target files at rev. A nil
// live means the host was not read (plan --offline): every file is
// unknown and the host counts as a change. A host at rev whose files
// match is skipped, even when a file it recorded and the target no longer
// names was edited; otherwise recorded files edited by hand are drift.
func Classify(files []Rendered, rev string, st *journal.HostState, live map[string]string) Class {
	c := Class{Action: HostChange, Current: revOf(st)}
	same := live != nil
	for _, f := range files {
		fc := FileClass{Name: f.Name, Dest: f.Dest, SHA256: f.SHA256, Change: FileUnknown}
		if live != nil {
			fc.Live = live[f.Dest]
			switch {
			case fc.Live == "":
				fc.Change = FileNew
			case fc.Live == f.SHA256:
				fc.Change = FileSame
			default:
				fc.Change = FileChanged
			}
			if fc.Change != FileSame {
				same = false
			}
		}
		c.Files = append(c.Files, fc)
	}
	if live == nil {
		return c
	}
	c.Drift = driftOf(st, live)
	switch {
	case same && st != nil && st.Revision == rev:
		c.Action = HostSkip
	case len(c.Drift) > 0:
		c.Action = HostDrift
	}
	return c
}

// unreadClass is the class of a host that could not be read.
func unreadClass(files []Rendered) Class {
	c := Classify(files, "", nil, nil)
	c.Action = HostUnknown
	return c
}

// Class classifies the host this look found against t at rev.
func (v HostView) Class(t *Target, rev string) Class {
	if v.Err != nil {
		return unreadClass(t.Tracked())
	}
	return Classify(t.Tracked(), rev, v.State, v.Live)
}

// Sort splits the targets of pr by what a run would do with them, from a
// read-only look (views, in target order): todo are the hosts it changes
// (the hosts it could not read among them, also in unknown: the run
// connects again), skip those already at the revision.
func Sort(pr *Prepared, views []HostView) (todo, skip, unknown []string) {
	for i, t := range pr.Targets {
		switch views[i].Class(t, pr.Revision).Action {
		case HostSkip:
			skip = append(skip, t.Host.Name)
		case HostUnknown:
			unknown = append(unknown, t.Host.Name)
			todo = append(todo, t.Host.Name)
		default:
			todo = append(todo, t.Host.Name)
		}
	}
	return todo, skip, unknown
}

// RunBatches are the batches a run of pr makes, from a read-only look at
// its hosts (views, in target order): the hosts it changes, batched by the
// plan's batch (as Run does: a resumed run starts with a canary again),
// and the hosts it skips, already at the revision. plan and the apply
// prompt both show these, so they say what the run will do.
func RunBatches(pr *Prepared, views []HostView) (batches [][]string, skip, unknown []string) {
	todo, skip, unknown := Sort(pr, views)
	return pr.Schedule(todo).Batches, skip, unknown
}

// driftOf lists the files whose live content differs from what the host's
// recorded revision deployed, sorted.
func driftOf(st *journal.HostState, live map[string]string) []string {
	if st == nil {
		return nil
	}
	var out []string
	for p, sum := range st.Files {
		if live[p] != sum {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

func revOf(st *journal.HostState) string {
	if st == nil {
		return ""
	}
	return st.Revision
}

// readPaths is every file whose live hash a look at a host needs: the
// target's files and extra, deduplicated and sorted.
func readPaths(files []Rendered, extra []string) []string {
	paths := append([]string(nil), extra...)
	for _, f := range files {
		paths = append(paths, f.Dest)
	}
	return dedupe(paths)
}

// finishRead completes a read of a host (in, from journal.Inspect or
// journal.AcquireHostLockAndInspect, the first command): the files its
// state records that the first command did not hash are hashed in one
// more. It is the one way the engine reads a host's state, for the runner
// and for Inspect.
func finishRead(ctx context.Context, conn Conn, in *journal.Inspection) error {
	more := unhashed(in.State, in.Live)
	if len(more) == 0 {
		return nil
	}
	extra, err := journal.FileHashes(ctx, conn, more)
	if err != nil {
		return err
	}
	if in.Live == nil {
		in.Live = map[string]string{}
	}
	for k, h := range extra {
		in.Live[k] = h
	}
	return nil
}

// unhashed lists the files recorded in st that live does not cover.
func unhashed(st *journal.HostState, live map[string]string) []string {
	if st == nil {
		return nil
	}
	var out []string
	for p := range st.Files {
		if _, ok := live[p]; !ok {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

func dedupe(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, v := range s {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	sort.Strings(out)
	return out
}
