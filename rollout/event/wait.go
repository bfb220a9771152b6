package event

// Wait is why a run is waiting between batches: the Status of a waiting
// event. The string values are part of the JSON contract
// (docs/json-events.md); views and prompts compare against these
// constants, never against string literals.
type Wait string

const (
	WaitApproval Wait = "approval"        // a person must approve the next batch (approve_after)
	WaitBake     Wait = "bake"            // the plan's pause: the batch just done bakes before the next starts
	WaitPaused   Wait = "paused"          // the operator paused the run after the current batch
	WaitInFlight Wait = "batch in flight" // a batch is running; never announced
)

// WaitReason is the reason of a waiting event ("" for any other event).
func (e Event) WaitReason() Wait {
	if e.Event != Waiting {
		return ""
	}
	return Wait(e.Status)
}
