package rollout

import (
	"bytes"
	"encoding/json"
	"reflect"
	"sort"

	"github.com/rollout-sh/rollout/inventory"
	"github.com/rollout-sh/rollout/journal"
)

// VarChange is one merged variable of a host that differs between the
// revision it runs and the target. From and To are JSON values (secrets
// redacted as `hosts --vars` shows them); an absent side is omitted.
type VarChange struct {
	Name string          `json:"name"`
	From json.RawMessage `json:"from,omitempty"`
	To   json.RawMessage `json:"to,omitempty"`
}

// VarsChanges are t's variables that differ from those its host was
// last deployed with (st, what the host records). With an inventory the
// revisions pin, that is a diff of the two revisions' variables; with
// one no revision pins, only the recorded hash can be compared, and a
// difference is reported as a change of the variable "*" with no sides.
// Nothing recorded, or a recorded revision the repository lacks: none.
func (pr *Prepared) VarsChanges(t *Target, st *journal.HostState) []VarChange {
	if st == nil || st.Revision == "" || t.Vars == nil {
		return nil
	}
	if pr.Release == nil || pr.Repo == nil || !pr.Release.Pinned() {
		if st.VarsSHA256 != "" && st.VarsSHA256 != t.VarsSHA256 {
			return []VarChange{{Name: "*"}}
		}
		return nil
	}
	if !pr.Repo.HasCommit(st.Revision) {
		return nil
	}
	old, err := pr.Release.HostAt(t.Host, st.Revision)
	if err != nil {
		return nil
	}
	return DiffVars(old.Vars, t.Vars.Vars)
}

// DiffVars is the variables that differ between from and to, by name,
// secrets redacted.
func DiffVars(from, to map[string]any) []VarChange {
	a, b := inventory.Redact(from, false), inventory.Redact(to, false)
	names := map[string]bool{}
	for k := range from {
		names[k] = true
	}
	for k := range to {
		names[k] = true
	}
	var out []VarChange
	for k := range names {
		va, inA := from[k]
		vb, inB := to[k]
		if inA == inB && reflect.DeepEqual(va, vb) {
			continue
		}
		c := VarChange{Name: k}
		if inA {
			c.From = jsonValue(a[k])
		}
		if inB {
			c.To = jsonValue(b[k])
		}
		if inA && inB && string(c.From) == string(c.To) { // a secret (or a secret inside), changed
			c.To = json.RawMessage(`"` + inventory.Redacted + ` (changed)"`)
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func jsonValue(v any) json.RawMessage {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return json.RawMessage(`null`)
	}
	return bytes.TrimRight(buf.Bytes(), "\n")
}

// String is the change as plan shows it: app_version: "1.2.3" → "1.2.4".
func (c VarChange) String() string {
	if c.Name == "*" {
		return "variables changed since deployed (the inventory is not pinned: only their hash is recorded)"
	}
	from, to := string(c.From), string(c.To)
	if from == "" {
		from = "(unset)"
	}
	if to == "" {
		to = "(unset)"
	}
	return c.Name + ": " + from + " → " + to
}
