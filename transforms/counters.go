package transforms

import "github.com/apache/beam/sdks/v2/go/pkg/beam"

// The pipeline's counters, all under Namespace. The reconcile line of a run is
// read from them: in = valid + duplicates + dead-lettered.
var (
	counterIn           = beam.NewCounter(Namespace, CounterIn)
	counterParsed       = beam.NewCounter(Namespace, "parsed")
	counterDeadParse    = beam.NewCounter(Namespace, CounterDeadLetterParse)
	counterDeadValidate = beam.NewCounter(Namespace, CounterDeadLetterValidate)
	counterValid        = beam.NewCounter(Namespace, "validated")
	counterDuplicates   = beam.NewCounter(Namespace, CounterDuplicates)
	counterUnique       = beam.NewCounter(Namespace, CounterUnique)
	counterLate         = beam.NewCounter(Namespace, CounterLate)
	counterTooLate      = beam.NewCounter(Namespace, CounterTooLate)
	counterDedupExpired = beam.NewCounter(Namespace, "dedup_keys_expired")
	counterDedupKept    = beam.NewCounter(Namespace, "dedup_keys_kept_at_end")
	counterDedupRebuilt = beam.NewCounter(Namespace, "dedup_keys_read")
)

// Counter names read back by the run summary.
const (
	CounterIn         = "events_in"
	CounterDuplicates = "duplicates"
	CounterUnique     = "unique_events"
	CounterLate       = "late_events"
	CounterTooLate    = "too_late_events"
)

// The dead-letter counters, one a stage, each named dead_letter_<stage>. The
// dead-letter alert (terraform/modules/monitoring) sums every counter of
// that name over events_in, so a stage that dead-letters records counts them
// under its name here, or an outage that dead-letters at that stage alerts
// no one.
const (
	CounterDeadLetterParse    = "dead_letter_" + StageParse
	CounterDeadLetterValidate = "dead_letter_" + StageValidate
	CounterDeadLetterEnrich   = "dead_letter_" + StageEnrich
	CounterDeadLetterSink     = "dead_letter_" + StageSink
)

// DeadLetterCounters maps each stage to its dead-letter counter; the
// monitoring test checks that the alert matches every one.
var DeadLetterCounters = map[string]string{
	StageParse: CounterDeadLetterParse, StageValidate: CounterDeadLetterValidate,
	StageEnrich: CounterDeadLetterEnrich, StageSink: CounterDeadLetterSink,
}
