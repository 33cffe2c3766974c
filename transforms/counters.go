package transforms

import "github.com/apache/beam/sdks/v2/go/pkg/beam"

// The pipeline's counters, all under Namespace. The reconcile line of a run is
// read from them: in = valid + duplicates + dead-lettered.
var (
	counterIn           = beam.NewCounter(Namespace, CounterIn)
	counterParsed       = beam.NewCounter(Namespace, "parsed")
	counterDeadParse    = beam.NewCounter(Namespace, "dead_letter_parse")
	counterDeadValidate = beam.NewCounter(Namespace, "dead_letter_validate")
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
