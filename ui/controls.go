package ui

// Controls steer a live run; the engine implements it. The TUI calls it when
// the operator presses a key. Calls must not block.
type Controls interface {
	Pause()     // pause after the current batch
	Resume()    // resume a paused run
	Abort()     // safe stop: finish what is in flight, leave nothing drained unless it failed
	Approve()   // approve a pending approval (a waiting event whose reason is event.WaitApproval)
	Interrupt() // Ctrl-C semantics: first call = safe stop, second = stop at once
}
