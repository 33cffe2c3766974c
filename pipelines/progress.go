package pipelines

import (
	"fmt"
	"io"
	"sync/atomic"
	"time"
)

// Progress counts what this process has read and written. Prism runs the
// pipeline's workers inside the launching process, so a local run can report
// progress while it runs; on Dataflow the counters of the job are the place
// to look.
var Progress struct {
	Read, Events, Panes, DeadLetters atomic.Int64
}

// ReportProgress prints a progress line every interval until stop is closed.
// It counts from the totals at its start: a process that runs several
// pipelines (the bench, the tests) reports each run's own progress.
func ReportProgress(w io.Writer, interval time.Duration, total int64, stop <-chan struct{}) {
	start := time.Now()
	read0, events0, dead0, panes0 := Progress.Read.Load(), Progress.Events.Load(), Progress.DeadLetters.Load(), Progress.Panes.Load()
	acked0, answered0, failed0, _ := AckStats()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			read := Progress.Read.Load() - read0
			el := time.Since(start).Seconds()
			pct := ""
			if total > 0 {
				pct = fmt.Sprintf(" (%.0f%%)", 100*float64(read)/float64(total))
			}
			acks := ""
			if acked, answered, failed, sending := AckStats(); acked > acked0 {
				// A Pub/Sub run: how far Pub/Sub's answers trail the
				// source's acks (what a kill now would make it send again).
				acks = fmt.Sprintf(" acked=%d ack_answered=%d ack_errors=%d ack_in_flight=%d",
					acked-acked0, answered-answered0, failed-failed0, sending)
			}
			fmt.Fprintf(w, "progress: %5.1fs read=%d%s events_written=%d dead_letters=%d panes=%d rate=%.0f/s%s\n",
				el, read, pct, Progress.Events.Load()-events0, Progress.DeadLetters.Load()-dead0, Progress.Panes.Load()-panes0, float64(read)/el, acks)
		}
	}
}
