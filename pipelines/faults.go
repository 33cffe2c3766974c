package pipelines

import (
	"fmt"
	"sync/atomic"
	"time"
)

// Fault injection, for the tests of what a failed bundle costs (nothing: the
// runner retries it). cmd/campaignpulse --fail_event_writes_for=D sets
// Options.FailEventWritesFor: the DuckDB sink of fact_marketing_events then
// fails every bundle, before its COPY, for D from the first bundle it sees.
// Not a template parameter: it has no business on Dataflow.

// InjectedFailures counts the event-sink bundles failed on purpose.
var InjectedFailures atomic.Int64

// failWindowStart is when the failure window opened (unix ns), 0 before.
var failWindowStart atomic.Int64

// ResetInjectedFailures closes the window and zeroes the count, for a new
// run in the same process.
func ResetInjectedFailures() {
	InjectedFailures.Store(0)
	failWindowStart.Store(0)
}

// injectFailure reports whether the calling bundle must fail: it is in the
// window of length d opened by the first bundle that asked.
func injectFailure(d time.Duration) bool {
	now := time.Now().UnixNano()
	failWindowStart.CompareAndSwap(0, now)
	if now-failWindowStart.Load() >= int64(d) {
		return false
	}
	InjectedFailures.Add(1)
	return true
}

// errInjectedFailure is the error of an injected failure.
func errInjectedFailure(d time.Duration, rows int64) error {
	return fmt.Errorf("injected failure (--fail_event_writes_for=%s): %d rows not committed", d, rows)
}

// PrismRetriesBundles reports whether this binary was built with the patched
// Prism of pipelines/prism (everything make builds or tests), which retries a
// failed bundle; the released Prism fails the job on the first one. The
// Makefile sets the build tag prism_patched along with the go.mod that
// replaces the SDK (prism_patched.go).
func PrismRetriesBundles() bool { return prismPatched }
