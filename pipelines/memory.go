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
// that needs more gets more).
const DefaultMemoryLimit = 1 << 30

// LimitMemory applies DefaultMemoryLimit unless $GOMEMLIMIT is set.
func LimitMemory() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(DefaultMemoryLimit)
	}
}
