package pipelines

import (
	"os"
	"runtime/debug"
)

// DefaultMemoryLimit is the Go heap's soft limit of a local run when
// $GOMEMLIMIT does not set one. Prism keeps a stage's pending input in the
// same process as the pipeline's code; with the default GC pacing alone the
// heap grows to twice what is live before it is collected. A soft limit
// makes the collector work harder near it instead (it is not a cap: a run
// that needs more gets more). 768 MiB: a 1M-event enriched run keeps 300-
// 500 MB live; at 1 GiB its peak RSS was 1.59-1.67 GB, at 768 MiB 1.43-1.44
// GB, and the run was no slower (3 alternating runs each: 41,700 and 46,800
// events/s medians, within this machine's noise).
const DefaultMemoryLimit = 768 << 20

// StreamingMemoryLimit is the soft limit of a local streaming run. A
// streaming run keeps a Dedup horizon (10 minutes) of ids in state and in
// Dedup's cache, so its live heap grows for ten minutes at a steady rate:
// at 20,000 events/s under DefaultMemoryLimit the collector ran without a
// pause from about 45 s on, took most of a core, and the run fell behind
// (reads stalled, messages were redelivered). 4 GiB: the same run kept up.
const StreamingMemoryLimit = 4 << 30

// StreamingGCPercent is the GOGC of a local streaming run: the heap may grow
// to five times what is live before a collection, within
// StreamingMemoryLimit. With the default 100, a third of the pipeline
// process's CPU at 20,000 events/s was the collector, and with the Java
// emulator on the other core the run fell behind (freshness p95 89 s, the
// read 330,000 messages behind); with 400 the same run kept up (p95 8.6 s).
const StreamingGCPercent = 400

// LimitMemory applies limit (DefaultMemoryLimit or StreamingMemoryLimit)
// unless $GOMEMLIMIT is set. Call it after beam.Init: the limits are sized
// for a local run, and on a Dataflow worker Init runs the SDK harness and
// never returns, so the worker keeps the runtime's defaults (a worker VM's
// memory is its own; a 768 MiB soft limit there would make the collector
// run without a pause once the live heap passed it).
func LimitMemory(limit int64) {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(limit)
	}
}

// TuneGCForStreaming applies StreamingGCPercent unless $GOGC is set.
func TuneGCForStreaming() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(StreamingGCPercent)
	}
}
