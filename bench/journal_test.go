package bench

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/rollout-sh/rollout/journal"
	"github.com/rollout-sh/rollout/rollout/event"
)

// BenchmarkScaleJournalAppend: journal appends from 1 and from 256
// concurrent pipelines (a 10,000-host run has hundreds of hosts' events in
// flight). Each Append returns once its record is written and fsynced;
// concurrent ones share commits, so the parallel figure per record is far
// below one fsync.
//
//	go test -run '^$' -bench ScaleJournalAppend ./bench/
func BenchmarkScaleJournalAppend(b *testing.B) {
	for _, par := range []int{1, 256} {
		b.Run(fmt.Sprintf("pipelines=%d", par), func(b *testing.B) {
			j, err := journal.Open(filepath.Join(b.TempDir(), journal.File))
			if err != nil {
				b.Fatal(err)
			}
			defer j.Close()
			e := event.Event{Time: time.Now(), Run: "r-bench", Event: event.HostPhase, Host: "web0001", Phase: event.PhaseHealth, Status: event.StatusOK}
			b.SetParallelism(par)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := j.Append(e); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
