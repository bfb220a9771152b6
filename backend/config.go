// Package backend opens a plan's state backend: where its plan lock and
// journal live. "local" (the default) is the local state dir beside the
// plan (journal.Local); "etcd" shares both through an etcd cluster so that
// operators and CI runners on different machines see and respect each
// other's runs, with the local journal kept as a cache.
package backend

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/rollout-sh/rollout/journal"
	"github.com/rollout-sh/rollout/plan"
	"github.com/rollout-sh/rollout/rollout/event"
)

// Environment variables that choose and configure the backend without a
// plan change (CI). Each one overrides the plan's backend block.
const (
	EnvKind      = "ROLLOUT_BACKEND"           // local | etcd
	EnvEndpoints = "ROLLOUT_BACKEND_ENDPOINTS" // comma-separated client URLs
	EnvPrefix    = "ROLLOUT_BACKEND_PREFIX"
	EnvCAFile    = "ROLLOUT_BACKEND_CA_FILE"
	EnvCertFile  = "ROLLOUT_BACKEND_CERT_FILE"
	EnvKeyFile   = "ROLLOUT_BACKEND_KEY_FILE"
	EnvUsername  = "ROLLOUT_BACKEND_USERNAME"
	EnvPassword  = "ROLLOUT_BACKEND_PASSWORD"
)

// Config is the resolved backend setting: the plan's block, then the
// environment.
type Config struct {
	Kind      string
	Endpoints []string
	Prefix    string
	CAFile    string
	CertFile  string
	KeyFile   string
	Username  string
	Password  string
	// Timeout bounds each etcd request (default 5s): a journal write that
	// cannot reach a quorum within it stops the run safely.
	Timeout time.Duration
}

// Resolve merges the plan's backend block (nil: none) with the
// environment (getenv, os.Getenv when nil).
func Resolve(b *plan.Backend, getenv func(string) string) (Config, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	c := Config{Kind: "local", Prefix: plan.DefaultBackendPrefix}
	if b != nil {
		c.Kind, c.Endpoints, c.CAFile, c.CertFile, c.KeyFile = b.Kind, b.Endpoints, b.CAFile, b.CertFile, b.KeyFile
		if b.Prefix != "" {
			c.Prefix = b.Prefix
		}
	}
	if v := getenv(EnvKind); v != "" {
		c.Kind = v
	}
	if v := getenv(EnvEndpoints); v != "" {
		c.Endpoints = nil
		for _, ep := range strings.Split(v, ",") {
			if ep = strings.TrimSpace(ep); ep != "" {
				c.Endpoints = append(c.Endpoints, ep)
			}
		}
	}
	if v := getenv(EnvPrefix); v != "" {
		if !strings.HasSuffix(v, "/") {
			v += "/"
		}
		c.Prefix = v
	}
	for _, f := range []struct {
		env string
		dst *string
	}{{EnvCAFile, &c.CAFile}, {EnvCertFile, &c.CertFile}, {EnvKeyFile, &c.KeyFile}, {EnvUsername, &c.Username}, {EnvPassword, &c.Password}} {
		if v := getenv(f.env); v != "" {
			*f.dst = v
		}
	}
	switch c.Kind {
	case "local":
	case "etcd":
		if len(c.Endpoints) == 0 {
			return c, fmt.Errorf(`backend "etcd" has no endpoints: set endpoints in the plan's backend block or %s (comma-separated client URLs such as https://etcd1:2379)`, EnvEndpoints)
		}
	default:
		return c, fmt.Errorf("backend %q (from %s or the plan): want \"local\" or \"etcd\"", c.Kind, EnvKind)
	}
	return c, nil
}

// Store is what the commands use: the engine's lock and journal store,
// plus reading and following the shared journal and breaking a lock.
type Store interface {
	Describe() string
	Lock(ctx context.Context, plan string, info journal.LockInfo) (journal.HeldLock, error)
	Record(ctx context.Context, e event.Event) error
	// Events is every journal record of plan, runs in the order they
	// started, each run's records in the order they were written.
	Events(ctx context.Context, plan string) ([]event.Event, error)
	// Follow calls fn with every record of run (empty: the run in
	// progress) from its first until its run_done, or ctx ends.
	Follow(ctx context.Context, plan, run string, fn func(event.Event)) error
	ReadLock(ctx context.Context, plan string) (*journal.LockInfo, error)
	BreakLock(ctx context.Context, plan string) error
	// Warnings says what opening the local journal (or cache) changed
	// about its permissions.
	Warnings() []string
	Close() error
}

var _ Store = (*journal.Local)(nil)

// UnreachableError is a backend that did not answer: runs are refused
// (exit 2), never silently run against the local journal.
type UnreachableError struct {
	Endpoints []string
	Err       error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("state backend etcd at %s is unreachable: %v", strings.Join(e.Endpoints, ","), e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// Open opens the backend c for plan planName; localDir is the local state
// dir (the lock and journal of the local backend, the journal cache of
// etcd). An etcd backend is checked with one request; an unreachable one
// is an *UnreachableError.
func Open(ctx context.Context, c Config, planName, localDir string) (Store, error) {
	if c.Kind == "etcd" {
		return OpenEtcd(ctx, c, planName, journal.NewLocal(localDir))
	}
	return journal.NewLocal(localDir), nil
}
