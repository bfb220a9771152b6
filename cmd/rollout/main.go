// Command rollout rolls a pinned git revision across a fleet behind load
// balancers, one batch at a time. See README.md and docs/.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	os.Exit(mainWithSignals())
}

// mainWithSignals wires Ctrl-C / SIGTERM: while a run is live, the first
// signal asks it to stop safely and the second stops it at once; otherwise a
// signal cancels the command.
func mainWithSignals() int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ios := SystemIO()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		for range sigs {
			if f := ios.interrupt(); f != nil {
				f()
				continue
			}
			cancel()
		}
	}()
	return run(ctx, os.Args[1:], ios)
}
