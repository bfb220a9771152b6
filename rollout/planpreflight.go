package rollout

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync"

	"github.com/rollout-sh/rollout/rollout/event"
	"github.com/rollout-sh/rollout/validate"
)

// PlanPreflight is apply's fleet-wide preflight as `plan` runs it: on each
// named target host every file is staged beside its destination, its
// validator runs on the staged copy, and the copy is removed — nothing
// drained, nothing live changed, nothing restarted. It returns, per host
// that apply's preflight would refuse, what failed.
func PlanPreflight(ctx context.Context, pr *Prepared, hosts []string, env Env, forks int) (map[string]PreflightRefusal, error) {
	want := map[string]bool{}
	for _, h := range hosts {
		want[h] = true
	}
	failed := map[string]PreflightRefusal{}
	var vh []validate.Host
	for _, t := range pr.Targets {
		if !want[t.Host.Name] {
			continue
		}
		conn, err := env.Connect(ctx, t.Host)
		if err != nil {
			failed[t.Host.Name] = PreflightRefusal{What: "cannot connect", Message: err.Error()}
			continue
		}
		vh = append(vh, validate.Host{Name: t.Host.Name, Conn: conn, Files: t.Files})
	}
	if len(vh) == 0 {
		return failed, nil
	}
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	tag := "plan-" + hex.EncodeToString(b) // the staged copies' names: validate.StagedPath
	var mu sync.Mutex
	emit := func(e event.Event) {
		if e.Event == event.PreflightHost && e.Status == event.StatusFailed {
			mu.Lock()
			failed[e.Host] = PreflightRefusal{What: preflightWhat(e.Message), Message: e.Message}
			mu.Unlock()
		}
	}
	v := env.Validator
	if v == nil {
		v = validate.Remote{}
	}
	if _, err := v.Preflight(ctx, vh, tag, forks, emit); err != nil {
		return nil, err
	}
	return failed, nil
}

// PreflightRefusal is why apply's preflight would refuse a host: What in
// apply's summary words ("file app.conf (conf/app.conf.tmpl@09a536a)
// rejected by its validator"), Message the whole report (the validator's
// output).
type PreflightRefusal struct {
	What    string `json:"what"`
	Message string `json:"message"`
}
