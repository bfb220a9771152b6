package rollout

import (
	"context"
	"sync"
)

// Control lets a person steer a live run: pause after the current batch,
// resume, abort safely, approve, and Ctrl-C (first safe, second at once).
// The views call it; the runner reads it. Safe for concurrent use.
type Control struct {
	mu         sync.Mutex
	paused     bool
	stopping   bool
	approved   int // approvals given and not yet consumed
	interrupts int
	hard       context.CancelFunc
	wake       chan struct{}
}

// NewControl returns a Control with nothing pending.
func NewControl() *Control {
	return &Control{wake: make(chan struct{}, 1)}
}

func (c *Control) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Pause asks the run to stop after the current batch until Resume.
func (c *Control) Pause() { c.mu.Lock(); c.paused = true; c.mu.Unlock(); c.poke() }

// Resume undoes Pause.
func (c *Control) Resume() { c.mu.Lock(); c.paused = false; c.mu.Unlock(); c.poke() }

// Abort stops safely: hosts in flight finish (or are put back if they had
// not changed yet), no new batch starts.
func (c *Control) Abort() { c.mu.Lock(); c.stopping = true; c.mu.Unlock(); c.poke() }

// Approve approves a pending approval.
func (c *Control) Approve() { c.mu.Lock(); c.approved++; c.mu.Unlock(); c.poke() }

// Interrupt is Ctrl-C: the first acts like Abort, the second stops at once.
func (c *Control) Interrupt() {
	c.mu.Lock()
	c.interrupts++
	c.stopping = true
	n, hard := c.interrupts, c.hard
	c.mu.Unlock()
	if n >= 2 && hard != nil {
		hard()
	}
	c.poke()
}

func (c *Control) setHard(cancel context.CancelFunc) { c.mu.Lock(); c.hard = cancel; c.mu.Unlock() }

func (c *Control) snapshot() (paused, stopping bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.paused, c.stopping
}

func (c *Control) takeApproval() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.approved > 0 {
		c.approved--
		return true
	}
	return false
}

func (c *Control) isStopping() bool { _, s := c.snapshot(); return s }
