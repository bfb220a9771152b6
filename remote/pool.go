package remote

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// Pool keeps one Client per host (by Target.Name) for the whole run. Jump
// hosts are shared through the pool too. It is safe for concurrent use.
type Pool struct {
	cfg Config

	mu      sync.Mutex
	closed  bool
	entries map[string]*poolEntry
}

type poolEntry struct {
	ready  chan struct{} // closed when the dial finished
	client *Client
	err    error
}

// NewPool returns an empty pool whose clients use cfg.
func NewPool(cfg Config) *Pool {
	return &Pool{cfg: cfg, entries: map[string]*poolEntry{}}
}

// Get returns the client for t, dialling it the first time. Concurrent Gets
// for one name share a single dial. A failed dial is not cached, and a
// connection that has died is dialled again.
func (p *Pool) Get(ctx context.Context, t Target) (*Client, error) {
	name := normalizeTarget(t).Name
	for attempt := 0; ; attempt++ {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, fmt.Errorf("ssh %s: pool is closed", name)
		}
		e, ok := p.entries[name]
		if ok && isReady(e) && e.client != nil && !e.client.alive() {
			delete(p.entries, name)
			ok = false
		}
		if !ok {
			e = &poolEntry{ready: make(chan struct{})}
			p.entries[name] = e
			p.mu.Unlock()
			p.dialEntry(ctx, t, e)
		} else {
			p.mu.Unlock()
		}

		select {
		case <-e.ready:
		case <-ctx.Done():
			return nil, fmt.Errorf("ssh %s: %w", name, ctx.Err())
		}
		if e.err == nil {
			return e.client, nil
		}
		// Another caller's cancellation is not our failure: try again.
		if ctx.Err() == nil && errors.Is(e.err, context.Canceled) && attempt < 3 {
			continue
		}
		return nil, e.err
	}
}

func isReady(e *poolEntry) bool {
	select {
	case <-e.ready:
		return true
	default:
		return false
	}
}

func (p *Pool) dialEntry(ctx context.Context, t Target, e *poolEntry) {
	c, err := dial(ctx, t, p.cfg, func(ctx context.Context, j Target) (*Client, bool, error) {
		jc, err := p.Get(ctx, j)
		return jc, false, err
	})
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		e.err = err
		if p.entries[normalizeTarget(t).Name] == e {
			delete(p.entries, normalizeTarget(t).Name)
		}
	} else if p.closed {
		c.Close()
		e.err = fmt.Errorf("ssh %s: pool is closed", c.name)
	} else {
		e.client = c
	}
	close(e.ready)
}

// Close closes every client. Get fails afterwards.
func (p *Pool) Close() error {
	p.mu.Lock()
	p.closed = true
	entries := p.entries
	p.entries = map[string]*poolEntry{}
	p.mu.Unlock()
	var errs []error
	for _, e := range entries {
		if isReady(e) && e.client != nil {
			errs = append(errs, e.client.Close())
		}
	}
	return errors.Join(errs...)
}
