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
func ReportProgress(w io.Writer, interval time.Duration, total int64, stop <-chan struct{}) {
	start := time.Now()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			read := Progress.Read.Load()
			el := time.Since(start).Seconds()
			pct := ""
			if total > 0 {
				pct = fmt.Sprintf(" (%.0f%%)", 100*float64(read)/float64(total))
			}
			fmt.Fprintf(w, "progress: %5.1fs read=%d%s events_written=%d dead_letters=%d panes=%d rate=%.0f/s\n",
				el, read, pct, Progress.Events.Load(), Progress.DeadLetters.Load(), Progress.Panes.Load(), float64(read)/el)
		}
	}
}
