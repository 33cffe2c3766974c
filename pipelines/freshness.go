package pipelines

import (
	"sync/atomic"
	"time"
)

// Freshness is how long events took from their publish time to their row
// being visible in the warehouse: the DuckDB sink records every event row it
// commits (now − the event's publish time). Like Progress it lives in the
// process, which is where Prism runs the workers, so a local streaming run
// can print its percentiles while it runs.
var Freshness freshnessHistogram

// freshnessBucket is the histogram's resolution; freshnessBuckets cover ten
// minutes, and longer delays count in the last bucket.
const (
	freshnessBucket  = 10 * time.Millisecond
	freshnessBuckets = int(10 * time.Minute / freshnessBucket)
)

// freshnessHistogram counts delays in fixed 10 ms buckets: exact enough for
// percentiles in seconds, lock-free for the sinks' bundles, 480 KB.
type freshnessHistogram struct {
	on      atomic.Bool
	buckets [freshnessBuckets]atomic.Int64
}

// Enable starts recording (from zero). A bounded run never enables it: its
// publish times are simulated, so delays would mean nothing.
func (h *freshnessHistogram) Enable() {
	for i := range h.buckets {
		h.buckets[i].Store(0)
	}
	h.on.Store(true)
}

// Disable stops recording.
func (h *freshnessHistogram) Disable() { h.on.Store(false) }

// enabled reports whether sinks should record.
func (h *freshnessHistogram) enabled() bool { return h.on.Load() }

// record counts the delay from publishedMillis (unix ms) to now.
func (h *freshnessHistogram) record(now time.Time, publishedMillis int64) {
	d := now.Sub(time.UnixMilli(publishedMillis))
	i := int(max(d, 0) / freshnessBucket)
	h.buckets[min(i, freshnessBuckets-1)].Add(1)
}

// FreshnessSnapshot is a copy of the histogram's counts.
type FreshnessSnapshot []int64

// Snapshot copies the counts.
func (h *freshnessHistogram) Snapshot() FreshnessSnapshot {
	s := make(FreshnessSnapshot, freshnessBuckets)
	for i := range s {
		s[i] = h.buckets[i].Load()
	}
	return s
}

// Since returns the counts recorded after earlier was taken.
func (s FreshnessSnapshot) Since(earlier FreshnessSnapshot) FreshnessSnapshot {
	d := make(FreshnessSnapshot, len(s))
	for i := range s {
		d[i] = s[i]
		if earlier != nil {
			d[i] -= earlier[i]
		}
	}
	return d
}

// Count is the number of delays recorded.
func (s FreshnessSnapshot) Count() int64 {
	var n int64
	for _, c := range s {
		n += c
	}
	return n
}

// Quantile returns the q-quantile (0 < q ≤ 1) of the delays, as the upper
// edge of its bucket (so never optimistic), or 0 with no data.
func (s FreshnessSnapshot) Quantile(q float64) time.Duration {
	n := s.Count()
	if n == 0 {
		return 0
	}
	rank := int64(q*float64(n) + 0.999999)
	var seen int64
	for i, c := range s {
		seen += c
		if seen >= max(rank, 1) {
			return time.Duration(i+1) * freshnessBucket
		}
	}
	return time.Duration(len(s)) * freshnessBucket
}
