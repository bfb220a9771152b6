package wire

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"time"

	"github.com/rollout-sh/rollout/analysis"
	"github.com/rollout-sh/rollout/analysis/prometheus"
	"github.com/rollout-sh/rollout/drain"
	"github.com/rollout-sh/rollout/internal/localrun"
	"github.com/rollout-sh/rollout/plan"
	"github.com/rollout-sh/rollout/rollout"
)

// readTimeout bounds one reading of the analysis source.
const readTimeout = 10 * time.Second

// NewAnalyser builds the source of the plan's canary analysis: the
// per-server counters of "show stat" on every LB of the drain "haproxy"
// block, the output of the analysis command, or the plan's PromQL queries.
func (w *Wiring) NewAnalyser(ctx context.Context, a *plan.Analysis, t *rollout.Target) (rollout.Analyser, error) {
	switch a.Kind {
	case "haproxy":
		d := t.Spec.Drain
		if d.Kind != "haproxy" {
			return nil, fmt.Errorf("analysis \"haproxy\" needs a drain \"haproxy\" block")
		}
		// the run's one client per endpoint, shared with the drain
		// drivers: analysis adds no connections to the stats socket
		src := &statSource{backend: d.Backend}
		for _, ep := range d.Endpoints {
			api, err := w.RuntimeAPI(ctx, d.Via, ep)
			if err != nil {
				return nil, err
			}
			src.lbs = append(src.lbs, api)
		}
		return src, nil
	case "command":
		var r drain.Runner = localrun.Runner{}
		if a.Via != "" {
			c, err := w.via(ctx, a.Via)
			if err != nil {
				return nil, err
			}
			r = c
		}
		return &commandSource{run: r, cmd: a.Command}, nil
	case "prometheus":
		return newPrometheus(a.Prometheus, os.LookupEnv)
	}
	return nil, fmt.Errorf("unknown analysis kind %q", a.Kind)
}

// StatReader is what the HAProxy source needs of an LB client: the server
// rows of one backend's "show stat". drain.RuntimeAPI satisfies it; a
// pooled client per endpoint can replace it without touching the rest.
type StatReader interface {
	Endpoint() string
	Stat(ctx context.Context, backend string) ([]drain.Stat, error)
}

// statSource reads every server of the backend on every LB.
type statSource struct {
	backend string
	lbs     []*drain.RuntimeAPI
}

func (s *statSource) Read(ctx context.Context) analysis.Snapshot {
	readers := make([]StatReader, len(s.lbs))
	for i, l := range s.lbs {
		readers[i] = l
	}
	return ReadStats(ctx, readers, s.backend, time.Now)
}

// ReadStats reads one snapshot of the backend's server counters from every
// LB; an LB that fails is listed in Unread.
func ReadStats(ctx context.Context, lbs []StatReader, backend string, now func() time.Time) analysis.Snapshot {
	snap := analysis.Snapshot{LBs: map[string]map[string]analysis.Counters{}, Unread: map[string]string{}}
	for _, lb := range lbs {
		rctx, cancel := context.WithTimeout(ctx, readTimeout)
		rows, err := lb.Stat(rctx, backend)
		cancel()
		if err != nil {
			snap.Unread[lb.Endpoint()] = err.Error()
			continue
		}
		servers := map[string]analysis.Counters{}
		var bad error
		for _, row := range rows {
			c, err := analysis.HAProxyCounters(row.Fields)
			if err != nil {
				bad = err
				break
			}
			servers[row.Server] = c
		}
		if bad != nil {
			snap.Unread[lb.Endpoint()] = bad.Error()
			continue
		}
		snap.LBs[lb.Endpoint()] = servers
	}
	snap.At = now()
	return snap
}

// commandSource runs the plan's analysis command and reads its counters.
type commandSource struct {
	run drain.Runner
	cmd string
}

func (c *commandSource) Read(ctx context.Context) analysis.Snapshot {
	snap := analysis.Snapshot{LBs: map[string]map[string]analysis.Counters{}, Unread: map[string]string{}}
	rctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	var out, errOut bytes.Buffer
	err := c.run.Run(rctx, c.cmd, nil, &out, &errOut)
	snap.At = time.Now()
	if err != nil {
		snap.Unread[analysis.CommandLB] = fmt.Sprintf("`%s`: %v %s", c.cmd, err, bytes.TrimSpace(errOut.Bytes()))
		return snap
	}
	servers, err := analysis.ParseCommandOutput(out.String())
	if err != nil {
		snap.Unread[analysis.CommandLB] = fmt.Sprintf("`%s` printed something else: %v", c.cmd, err)
		return snap
	}
	snap.LBs[analysis.CommandLB] = servers
	return snap
}

// newPrometheus builds the analysis "prometheus" source, with the
// credentials the plan names read from the environment.
func newPrometheus(p *plan.Prometheus, env func(string) (string, bool)) (*prometheus.Source, error) {
	if p == nil {
		return nil, fmt.Errorf("analysis \"prometheus\" has no source")
	}
	secret := func(attr, name string) (string, error) {
		if name == "" {
			return "", nil
		}
		v, ok := env(name)
		if !ok || v == "" {
			return "", fmt.Errorf("%s names %s, which is not set in the environment", attr, name)
		}
		return v, nil
	}
	cfg := prometheus.Config{Address: p.Address, ServerLabel: p.ServerLabel, CAFile: p.CAFile,
		CertFile: p.CertFile, KeyFile: p.KeyFile, InsecureSkipVerify: p.InsecureSkipVerify, Timeout: readTimeout}
	for _, q := range []struct {
		name string
		src  plan.PromQL
		dst  *prometheus.Query
	}{{"requests", p.Requests, &cfg.Requests}, {"errors", p.Errors, &cfg.Errors}, {"response_time", p.ResponseTime, &cfg.ResponseTime}} {
		if q.src.Expr != "" {
			*q.dst = prometheus.Query{Name: q.name, Expr: q.src.Expr, At: q.src.Where()}
		}
	}
	var err error
	if cfg.Username, err = secret("username_env", p.UsernameEnv); err != nil {
		return nil, err
	}
	if cfg.Password, err = secret("password_env", p.PasswordEnv); err != nil {
		return nil, err
	}
	if cfg.BearerToken, err = secret("bearer_token_env", p.BearerTokenEnv); err != nil {
		return nil, err
	}
	return prometheus.New(cfg)
}
