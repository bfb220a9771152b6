package rollout

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/rollout-sh/rollout/plan"
)

// SavedFormat identifies a saved plan file.
const SavedFormat = "rollout-saved-plan/1"

// SavedPlan is what `rollout plan --out FILE` wrote: exactly what `rollout
// apply FILE` will do, and what it observed, so that apply can refuse when
// anything changed since.
type SavedPlan struct {
	Format          string      `json:"format"`
	Created         time.Time   `json:"created"`
	PlanFile        string      `json:"plan_file"` // absolute
	Plan            string      `json:"plan"`
	Revision        string      `json:"revision"`
	PlanSHA256      string      `json:"plan_sha256"`
	InventorySHA256 string      `json:"inventory_sha256"` // inventory.Digest: what the inventory resolved to
	Limit           string      `json:"limit,omitempty"`
	Batch           string      `json:"batch,omitempty"`
	MaxInFlight     string      `json:"max_in_flight,omitempty"`
	Batches         [][]string  `json:"batches"`
	Hosts           []SavedHost `json:"hosts"`
	// LastRun is the last run in the plan's (shared) journal when the
	// plan was saved; a run started since that touched a host makes the
	// saved plan stale.
	LastRun string `json:"last_run,omitempty"`
}

// SavedHost is one host as the plan saw it.
type SavedHost struct {
	Host     string            `json:"host"`
	Revision string            `json:"revision"` // recorded in its current.json ("" = none)
	Live     map[string]string `json:"live"`     // dest → sha256 observed ("" = missing)
	Rendered map[string]string `json:"rendered"` // dest → sha256 apply will write
}

func fileSHA(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// NewSaved builds the saved plan of pr from a read-only look at its hosts.
// Every host must have been read.
func NewSaved(pr *Prepared, views []HostView, now time.Time) (*SavedPlan, error) {
	abs, err := filepath.Abs(pr.Req.PlanFile)
	if err != nil {
		return nil, err
	}
	s := &SavedPlan{Format: SavedFormat, Created: now.UTC(), PlanFile: abs, Plan: pr.Plan.Name, Revision: pr.Revision,
		Limit: pr.Req.Limit, Batch: pr.Req.Batch, MaxInFlight: pr.Req.MaxInFlight, Batches: pr.Batches}
	if s.PlanSHA256, err = fileSHA(pr.Req.PlanFile); err != nil {
		return nil, err
	}
	s.InventorySHA256 = pr.Inventory.Digest()
	byName := map[string]HostView{}
	for _, v := range views {
		byName[v.Name] = v
	}
	for _, t := range pr.Targets {
		v, ok := byName[t.Host.Name]
		if !ok || v.Err != nil {
			return nil, fmt.Errorf("%s could not be read, so a saved plan would not know what it changes: %v", t.Host.Name, v.Err)
		}
		h := SavedHost{Host: t.Host.Name, Revision: revOf(v.State), Live: map[string]string{}, Rendered: map[string]string{}}
		for _, f := range t.Tracked() {
			h.Live[f.Dest] = v.Live[f.Dest]
			h.Rendered[f.Dest] = f.SHA256
		}
		s.Hosts = append(s.Hosts, h)
	}
	return s, nil
}

// Write stores the saved plan atomically.
func (s *SavedPlan) Write(path string) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// LoadSaved reads path if it is a saved plan; ok is false for anything else
// (a plan file, say).
func LoadSaved(path string) (s *SavedPlan, ok bool, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, false, nil
	}
	if !bytes.HasPrefix(bytes.TrimSpace(b), []byte("{")) || !bytes.Contains(b, []byte(SavedFormat)) {
		return nil, false, nil
	}
	s = &SavedPlan{}
	if err := json.Unmarshal(b, s); err != nil {
		return nil, true, refuse("rollout plan --out "+path+"  # makes a new one", "saved plan %s is corrupt: %v", path, err)
	}
	if s.Format != SavedFormat {
		return nil, true, refuse("rollout plan --out "+path+"  # makes a new one with this version", "saved plan %s has format %q, want %q", path, s.Format, SavedFormat)
	}
	return s, true, nil
}

func stale(s *SavedPlan, format string, args ...any) error {
	return refuse(fmt.Sprintf("rollout plan %s --out FILE  # look again and save a new plan", s.PlanFile), "stale plan: "+format, args...)
}

// PrepareSaved prepares exactly what s says, refusing (exit 2) when the plan
// file, the inventory, the revision or what would be rendered changed.
// Hosts' deployed revisions and live files are checked by Run through
// Options.Expect.
func PrepareSaved(s *SavedPlan) (*Prepared, error) {
	if sum, err := fileSHA(s.PlanFile); err != nil {
		return nil, stale(s, "cannot read the plan file %s: %v", s.PlanFile, err)
	} else if sum != s.PlanSHA256 {
		return nil, stale(s, "the plan file %s changed since the plan was saved", s.PlanFile)
	}
	pr, err := Prepare(Request{PlanFile: s.PlanFile, Limit: s.Limit, Batch: s.Batch, MaxInFlight: s.MaxInFlight, Revision: s.Revision})
	if err != nil {
		return nil, err
	}
	if pr.Inventory.Digest() != s.InventorySHA256 {
		return nil, stale(s, "the inventory (its hosts, their order, groups or variables, group_vars/host_vars included) changed since the plan was saved")
	}
	if pr.Revision != s.Revision {
		return nil, stale(s, "the revision resolves to %s now (planned %s)", plan.ShortRev(pr.Revision), plan.ShortRev(s.Revision))
	}
	want := map[string]SavedHost{}
	for _, h := range s.Hosts {
		want[h.Host] = h
	}
	if len(want) != len(pr.Targets) {
		return nil, stale(s, "the scope selects %d hosts now (planned %d)", len(pr.Targets), len(want))
	}
	for _, t := range pr.Targets {
		h, ok := want[t.Host.Name]
		if !ok {
			return nil, stale(s, "%s is targeted now but was not in the plan", t.Host.Name)
		}
		for _, f := range t.Tracked() {
			if h.Rendered[f.Dest] != f.SHA256 {
				return nil, stale(s, "%s: %s would render differently now", t.Host.Name, f.Dest)
			}
		}
	}
	return pr, nil
}

// Expect turns the saved observations into Options.Expect.
func (s *SavedPlan) Expect() map[string]SavedHost {
	m := map[string]SavedHost{}
	for _, h := range s.Hosts {
		m[h.Host] = h
	}
	return m
}

// staleHosts compares what a run observes with what the saved plan saw.
func staleHosts(expect map[string]SavedHost, hosts map[string]*hostInfo, order []string) []string {
	var out []string
	for _, name := range order {
		want, ok := expect[name]
		if !ok {
			continue
		}
		h := hosts[name]
		if got := revOf(h.old); got != want.Revision {
			out = append(out, fmt.Sprintf("%s is now at %s (planned from %s)", name, shortOrNone(got), shortOrNone(want.Revision)))
			continue
		}
		var changed []string
		for dest, sum := range want.Live {
			if h.live[dest] != sum {
				changed = append(changed, dest)
			}
		}
		sort.Strings(changed)
		if len(changed) > 0 {
			out = append(out, fmt.Sprintf("%s: %s changed on the host since the plan was saved", name, strings.Join(changed, ", ")))
		}
	}
	return out
}

func shortOrNone(rev string) string {
	if rev == "" {
		return "nothing recorded"
	}
	return plan.ShortRev(rev)
}
