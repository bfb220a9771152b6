package backend

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/rollout-sh/rollout/internal/clock"
	"github.com/rollout-sh/rollout/journal"
	"github.com/rollout-sh/rollout/rollout/event"
)

// Key layout under the prefix (docs/team.md):
//
//	<prefix><plan>/lock                 the plan lock: LockInfo JSON, on a lease (TTL = the lock TTL)
//	<prefix><plan>/index/<run>          the run's index: {"run","records"}; its version = records written
//	<prefix><plan>/runs/<run>/<seq>     one journal record (an event as JSON); seq is 1-based, 10 digits
//
// A record and its run's index are written in one transaction that
// requires the index to be at the previous record (no gap, no second
// writer) and, while the run holds the lock, the lock to be on the run's
// lease (a run that lost its lock cannot write).
const seqDigits = 10

// Etcd is the etcd backend. The local journal file is kept as a cache:
// every record goes there too, also when etcd cannot be reached.
type Etcd struct {
	cli       *clientv3.Client
	endpoints []string
	prefix    string
	plan      string
	timeout   time.Duration
	cache     *journal.Local

	mu      sync.Mutex
	seq     map[string]int64 // run → records in etcd
	pending []event.Event    // records in the cache and not yet in etcd, in order
	broken  error            // the last write failure; later records wait for Close
	lease   clientv3.LeaseID // the held lock's lease, 0 when none
}

// OpenEtcd connects to the cluster c names and checks that it answers.
func OpenEtcd(ctx context.Context, c Config, planName string, cache *journal.Local) (*Etcd, error) {
	if c.Timeout <= 0 {
		c.Timeout = 5 * time.Second
	}
	cfg := clientv3.Config{
		Endpoints:   c.Endpoints,
		DialTimeout: c.Timeout,
		Username:    c.Username,
		Password:    c.Password,
		Logger:      zap.NewNop(),
		// keepalives find a dead member so requests move to a live one
		DialKeepAliveTime:    2 * time.Second,
		DialKeepAliveTimeout: 2 * time.Second,
	}
	if c.CAFile != "" || c.CertFile != "" {
		ti := transport.TLSInfo{CertFile: c.CertFile, KeyFile: c.KeyFile, TrustedCAFile: c.CAFile}
		tc, err := ti.ClientConfig()
		if err != nil {
			return nil, fmt.Errorf("state backend etcd: tls: %w", err)
		}
		cfg.TLS = tc
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		return nil, &UnreachableError{Endpoints: c.Endpoints, Err: err}
	}
	e := &Etcd{cli: cli, endpoints: c.Endpoints, prefix: c.Prefix, plan: planName, timeout: c.Timeout, cache: cache, seq: map[string]int64{}}
	cctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	if _, err := cli.Get(cctx, e.planPrefix(planName), clientv3.WithPrefix(), clientv3.WithCountOnly()); err != nil {
		cli.Close()
		return nil, &UnreachableError{Endpoints: c.Endpoints, Err: err}
	}
	return e, nil
}

// Describe names the backend in messages.
func (e *Etcd) Describe() string { return "etcd " + strings.Join(e.endpoints, ",") + " " + e.prefix }

func (e *Etcd) planPrefix(plan string) string { return e.prefix + plan + "/" }
func (e *Etcd) lockKey(plan string) string    { return e.planPrefix(plan) + "lock" }
func (e *Etcd) indexKey(plan, run string) string {
	return e.planPrefix(plan) + "index/" + run
}
func (e *Etcd) runsPrefix(plan string) string { return e.planPrefix(plan) + "runs/" }
func (e *Etcd) recordKey(plan, run string, seq int64) string {
	return fmt.Sprintf("%s%s/%0*d", e.runsPrefix(plan), run, seqDigits, seq)
}

func (e *Etcd) where() string { return "etcd " + strings.Join(e.endpoints, ",") }

func (e *Etcd) op(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, e.timeout)
}

// Lock puts the plan lock on a new lease of the lock's TTL, kept alive
// until Release. When the lease is lost (it expired because etcd could
// not be reached for a TTL, or `rollout unlock` revoked it) Lost reports
// journal.ErrLockLost.
func (e *Etcd) Lock(ctx context.Context, plan string, info journal.LockInfo) (journal.HeldLock, error) {
	if info.TTL <= 0 {
		info.TTL = journal.DefaultLockTTL
	}
	now := time.Now()
	info.Acquired, info.Renewed = now, now
	val, err := json.Marshal(info)
	if err != nil {
		return nil, err
	}
	octx, cancel := e.op(ctx)
	defer cancel()
	g, err := e.cli.Grant(octx, int64(math.Ceil(info.TTL.Seconds())))
	if err != nil {
		return nil, fmt.Errorf("lock %s on %s: grant a lease: %w", plan, e.where(), err)
	}
	key := e.lockKey(plan)
	resp, err := e.cli.Txn(octx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, string(val), clientv3.WithLease(g.ID))).
		Else(clientv3.OpGet(key)).Commit()
	if err != nil {
		_, _ = e.cli.Revoke(context.WithoutCancel(octx), g.ID)
		return nil, fmt.Errorf("lock %s on %s: %w", plan, e.where(), err)
	}
	if !resp.Succeeded {
		_, _ = e.cli.Revoke(octx, g.ID)
		locked := &journal.LockedError{Plan: plan, Where: e.where(), Path: key, Now: now}
		if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) > 0 {
			if li := e.parseLock(octx, kvs[0].Value, clientv3.LeaseID(kvs[0].Lease)); li != nil {
				locked.Info = *li
			}
		}
		return nil, locked
	}
	kctx, kcancel := context.WithCancel(context.WithoutCancel(ctx))
	ka, err := e.cli.KeepAlive(kctx, g.ID)
	if err != nil {
		kcancel()
		_, _ = e.cli.Revoke(octx, g.ID)
		return nil, fmt.Errorf("lock %s on %s: keep the lease alive: %w", plan, e.where(), err)
	}
	e.mu.Lock()
	e.lease = g.ID
	e.mu.Unlock()
	h := &etcdHeld{e: e, key: key, lease: g.ID, cancel: kcancel, lost: make(chan error, 1), done: make(chan struct{})}
	go h.watch(ka, info.TTL)
	return h, nil
}

type etcdHeld struct {
	e      *Etcd
	key    string
	lease  clientv3.LeaseID
	cancel context.CancelFunc
	lost   chan error
	done   chan struct{}

	mu       sync.Mutex
	released bool
	once     sync.Once
	err      error
}

func (h *etcdHeld) watch(ka <-chan *clientv3.LeaseKeepAliveResponse, ttl time.Duration) {
	defer close(h.done)
	defer close(h.lost)
	for range ka {
	}
	h.mu.Lock()
	released := h.released
	h.mu.Unlock()
	if !released {
		h.lost <- fmt.Errorf("%w: the lease %x of %s on %s expired or was revoked (no keepalive answered within the lock TTL %s, or `rollout unlock`)",
			journal.ErrLockLost, int64(h.lease), h.key, h.e.where(), ttl)
	}
}

func (h *etcdHeld) Lost() <-chan error { return h.lost }

// Release revokes the lease, which deletes the lock key.
func (h *etcdHeld) Release(ctx context.Context) error {
	h.once.Do(func() {
		h.mu.Lock()
		h.released = true
		h.mu.Unlock()
		h.e.mu.Lock()
		if h.e.lease == h.lease {
			h.e.lease = 0
		}
		h.e.mu.Unlock()
		h.cancel()
		<-h.done
		octx, cancel := h.e.op(ctx)
		defer cancel()
		if _, err := h.e.cli.Revoke(octx, h.lease); err != nil && !strings.Contains(err.Error(), "requested lease not found") {
			h.err = fmt.Errorf("release lock %s on %s: %w", h.key, h.e.where(), err)
		}
	})
	return h.err
}

// parseLock reads a lock value; Renewed is when its lease was last kept
// alive, as far as its remaining TTL tells.
func (e *Etcd) parseLock(ctx context.Context, val []byte, lease clientv3.LeaseID) *journal.LockInfo {
	var li journal.LockInfo
	if json.Unmarshal(val, &li) != nil {
		return nil
	}
	if lease != 0 {
		if ttl, err := e.cli.TimeToLive(ctx, lease); err == nil && ttl.TTL > 0 {
			li.Renewed = time.Now().Add(time.Duration(ttl.TTL)*time.Second - li.TTL)
		}
	}
	return &li
}

// ReadLock returns who holds the plan lock, or nil.
func (e *Etcd) ReadLock(ctx context.Context, plan string) (*journal.LockInfo, error) {
	octx, cancel := e.op(ctx)
	defer cancel()
	resp, err := e.cli.Get(octx, e.lockKey(plan))
	if err != nil {
		return nil, fmt.Errorf("read lock %s on %s: %w", plan, e.where(), err)
	}
	if len(resp.Kvs) == 0 {
		return nil, nil
	}
	li := e.parseLock(octx, resp.Kvs[0].Value, clientv3.LeaseID(resp.Kvs[0].Lease))
	if li == nil {
		return nil, fmt.Errorf("read lock %s on %s: %w", plan, e.where(), journal.ErrLockUnreadable)
	}
	return li, nil
}

// BreakLock revokes the lock's lease (`rollout unlock`): the run holding
// it finds its lock lost and stops safely.
func (e *Etcd) BreakLock(ctx context.Context, plan string) error {
	octx, cancel := e.op(ctx)
	defer cancel()
	key := e.lockKey(plan)
	resp, err := e.cli.Get(octx, key)
	if err != nil {
		return fmt.Errorf("break lock %s on %s: %w", plan, e.where(), err)
	}
	if len(resp.Kvs) == 0 {
		return nil
	}
	if l := clientv3.LeaseID(resp.Kvs[0].Lease); l != 0 {
		if _, err := e.cli.Revoke(octx, l); err == nil {
			return nil
		}
	}
	if _, err := e.cli.Delete(octx, key); err != nil {
		return fmt.Errorf("break lock %s on %s: %w", plan, e.where(), err)
	}
	return nil
}

// Record writes ev to the local cache and then to etcd, one key per
// record, in a transaction with its run's index. After a failure, later
// records only go to the cache (the run is stopping); Close tries once
// more to send them, and `rollout backend migrate` sends what is left.
func (e *Etcd) Record(ctx context.Context, ev event.Event) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	cacheErr := e.cache.Record(ctx, ev)
	e.pending = append(e.pending, ev)
	if e.broken != nil {
		return e.broken
	}
	if err := e.flushLocked(ctx); err != nil {
		e.broken = err
		return err
	}
	return cacheErr
}

func (e *Etcd) flushLocked(ctx context.Context) error {
	for len(e.pending) > 0 {
		ev := e.pending[0]
		if err := e.putLocked(ctx, ev); err != nil {
			return fmt.Errorf("journal record %s of run %s to %s: %w", ev.Event, ev.Run, e.where(), err)
		}
		e.pending = e.pending[1:]
	}
	return nil
}

func (e *Etcd) putLocked(ctx context.Context, ev event.Event) error {
	octx, cancel := e.op(ctx)
	defer cancel()
	n, ok := e.seq[ev.Run]
	if !ok {
		resp, err := e.cli.Get(octx, e.indexKey(e.plan, ev.Run))
		if err != nil {
			return err
		}
		if len(resp.Kvs) > 0 {
			n = resp.Kvs[0].Version
		}
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	for {
		// each try gets a slice of the budget, so a request stuck on a
		// member that just died (or a leader election) is tried again on
		// another member before the budget is spent
		actx, acancel := context.WithTimeout(octx, max(e.timeout/3, time.Second))
		ok, err = e.appendTxn(actx, e.plan, ev.Run, n, b, e.lease)
		acancel()
		if err == nil && !ok && e.landed(octx, ev.Run, n, b) {
			ok = true // an earlier try was applied, its answer lost
		}
		if err == nil {
			break
		}
		// a member went away under the request: try another until the
		// timeout; the index check makes a repeat harmless
		if clock.Sleep(octx, 100*time.Millisecond) != nil {
			return err
		}
	}
	if !ok {
		if e.lease != 0 {
			if resp, err := e.cli.Get(octx, e.lockKey(e.plan)); err == nil && (len(resp.Kvs) == 0 || clientv3.LeaseID(resp.Kvs[0].Lease) != e.lease) {
				return fmt.Errorf("not written: %w: %s is gone or another run's, so this run may not write the shared journal", journal.ErrLockLost, e.lockKey(e.plan))
			}
		}
		return errors.New("not written: another process wrote to this run")
	}
	e.seq[ev.Run] = n + 1
	return nil
}

// landed reports whether record n+1 of run is already rec.
func (e *Etcd) landed(ctx context.Context, run string, n int64, rec []byte) bool {
	resp, err := e.cli.Get(ctx, e.recordKey(e.plan, run, n+1))
	return err == nil && len(resp.Kvs) == 1 && string(resp.Kvs[0].Value) == string(rec)
}

// appendTxn writes record number n+1 of run, provided the index is at n
// and (lease ≠ 0) the plan lock is on lease.
func (e *Etcd) appendTxn(ctx context.Context, plan, run string, n int64, rec []byte, lease clientv3.LeaseID) (bool, error) {
	idx := e.indexKey(plan, run)
	conds := []clientv3.Cmp{clientv3.Compare(clientv3.Version(idx), "=", n)}
	if lease != 0 {
		conds = append(conds, clientv3.Compare(clientv3.LeaseValue(e.lockKey(plan)), "=", lease))
	}
	iv, _ := json.Marshal(map[string]any{"run": run, "records": n + 1})
	resp, err := e.cli.Txn(ctx).If(conds...).
		Then(clientv3.OpPut(e.recordKey(plan, run, n+1), string(rec)), clientv3.OpPut(idx, string(iv))).
		Commit()
	if err != nil {
		return false, err
	}
	return resp.Succeeded, nil
}

// Warnings are the local cache's.
func (e *Etcd) Warnings() []string { return e.cache.Warnings() }

// Pending is how many records are only in the local cache.
func (e *Etcd) Pending() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.pending)
}

// Events reads the shared journal of plan.
func (e *Etcd) Events(ctx context.Context, plan string) ([]event.Event, error) {
	octx, cancel := e.op(ctx)
	defer cancel()
	resp, err := e.cli.Get(octx, e.runsPrefix(plan), clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
	if err != nil {
		return nil, fmt.Errorf("read the journal of %s from %s: %w", plan, e.where(), err)
	}
	byRun := map[string][]event.Event{}
	var order []string
	for _, kv := range resp.Kvs {
		var ev event.Event
		if err := json.Unmarshal(kv.Value, &ev); err != nil {
			return nil, fmt.Errorf("read the journal from %s: %s: corrupt record: %w", e.where(), kv.Key, err)
		}
		if _, ok := byRun[ev.Run]; !ok {
			order = append(order, ev.Run)
		}
		byRun[ev.Run] = append(byRun[ev.Run], ev)
	}
	sort.SliceStable(order, func(i, j int) bool { return byRun[order[i]][0].Time.Before(byRun[order[j]][0].Time) })
	var out []event.Event
	for _, r := range order {
		out = append(out, byRun[r]...)
	}
	return out, nil
}

// Follow streams run's records as they are written (empty run: the run
// holding the lock, or the last unfinished one; it waits for one to
// start), from its first record to its run_done.
func (e *Etcd) Follow(ctx context.Context, plan, run string, fn func(event.Event)) error {
	for run == "" {
		li, err := e.ReadLock(ctx, plan)
		if err != nil {
			return err
		}
		if li != nil {
			run = li.RunID
			break
		}
		evs, err := e.Events(ctx, plan)
		if err != nil {
			return err
		}
		if run = journal.CurrentRun(evs); run != "" {
			break
		}
		if err := clock.Sleep(ctx, 250*time.Millisecond); err != nil {
			return err
		}
	}
	prefix := e.runsPrefix(plan) + run + "/"
	octx, cancel := e.op(ctx)
	resp, err := e.cli.Get(octx, prefix, clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
	cancel()
	if err != nil {
		return fmt.Errorf("follow run %s on %s: %w", run, e.where(), err)
	}
	var last int64
	deliver := func(key, val []byte) (bool, error) {
		seq, _ := strconv.ParseInt(strings.TrimPrefix(string(key), prefix), 10, 64)
		if seq <= last {
			return false, nil
		}
		last = seq
		var ev event.Event
		if err := json.Unmarshal(val, &ev); err != nil {
			return false, fmt.Errorf("follow run %s: %s: corrupt record: %w", run, key, err)
		}
		fn(ev)
		return ev.Event == event.RunDone, nil
	}
	for _, kv := range resp.Kvs {
		if done, err := deliver(kv.Key, kv.Value); done || err != nil {
			return err
		}
	}
	wctx, wcancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer wcancel()
	wc := e.cli.Watch(wctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision+1))
	for wr := range wc {
		if err := wr.Err(); err != nil {
			return fmt.Errorf("follow run %s on %s: %w", run, e.where(), err)
		}
		for _, we := range wr.Events {
			if we.Type != clientv3.EventTypePut {
				continue
			}
			if done, err := deliver(we.Kv.Key, we.Kv.Value); done || err != nil {
				return err
			}
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("follow run %s on %s: the watch ended", run, e.where())
}

// MigrateResult counts what Migrate did.
type MigrateResult struct {
	Runs, Copied, Present int
}

// Migrate copies the records of events (a local journal) that etcd does
// not have yet: for each run, the records after the ones its index
// counts. Running it again copies nothing.
func (e *Etcd) Migrate(ctx context.Context, plan string, events []event.Event) (MigrateResult, error) {
	var res MigrateResult
	for _, r := range journal.Runs(events) {
		if r.Plan != "" && r.Plan != plan {
			continue
		}
		res.Runs++
		octx, cancel := e.op(ctx)
		resp, err := e.cli.Get(octx, e.indexKey(plan, r.ID))
		cancel()
		if err != nil {
			return res, fmt.Errorf("migrate run %s to %s: %w", r.ID, e.where(), err)
		}
		var n int64
		if len(resp.Kvs) > 0 {
			n = resp.Kvs[0].Version
		}
		res.Present += int(min(n, int64(len(r.Events))))
		for i := n; i < int64(len(r.Events)); i++ {
			b, err := json.Marshal(r.Events[i])
			if err != nil {
				return res, err
			}
			octx, cancel := e.op(ctx)
			ok, err := e.appendTxn(octx, plan, r.ID, i, b, 0)
			cancel()
			if err != nil {
				return res, fmt.Errorf("migrate run %s to %s: %w", r.ID, e.where(), err)
			}
			if !ok {
				return res, fmt.Errorf("migrate run %s to %s: another process is writing this run", r.ID, e.where())
			}
			res.Copied++
		}
	}
	return res, nil
}

// Close sends the records that a failure kept in the cache only (one
// more try), then closes the client and the cache. An error says how
// many records etcd lacks.
func (e *Etcd) Close() error {
	e.mu.Lock()
	var err error
	if len(e.pending) > 0 {
		err = e.flushLocked(context.Background())
		if err != nil {
			err = fmt.Errorf("%d journal record(s) are only in the local cache %s (%v); when etcd is back: rollout backend migrate", len(e.pending), e.cache.Journal, err)
		}
	}
	e.mu.Unlock()
	return errors.Join(err, e.cli.Close(), e.cache.Close())
}
