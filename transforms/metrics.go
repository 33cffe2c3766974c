package transforms

import (
	"encoding/binary"
	"errors"
	"math"
	"reflect"
	"strings"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/axiomhq/hyperloglog"
	"github.com/zeebo/xxh3"
)

func init() {
	register.Combiner1[Metrics](&MergeMetricsFn{})
	beam.RegisterCoder(reflect.TypeOf((*Metrics)(nil)).Elem(), encodeMetrics, decodeMetrics)
}

// Metrics is the aggregate of one (window, campaign, platform, event type):
// both the partial sums a bundle builds and the accumulator of the combine.
// Money and engagement are integer micros so that a sum is exact whatever
// order partial sums are merged in. Users is a HyperLogLog sketch (precision
// 14, about 0.8% standard error), so unique users merge across bundles and
// panes without keeping the ids.
type Metrics struct {
	Events                int64
	LateEvents            int64
	ConversionValueMicros int64
	EngagementMicros      int64
	Currency              string // "" when none, "MIXED" when the key saw more than one
	MaxIngestTime         int64  // newest arrival folded in, unix ms: the pane's freshness
	// Partials counts the partial aggregates merged in. Panes accumulate, and
	// a pane fires only when a partial arrived, so a later pane of a window
	// key always has a higher count: it is the pane's version.
	Partials int64
	Users    *hyperloglog.Sketch
}

// MixedCurrency marks an aggregate over conversions in more than one currency.
const MixedCurrency = "MIXED"

// Add folds one event into m.
func (m *Metrics) Add(ev *Event) {
	m.Events++
	if ev.Late {
		m.LateEvents++
	}
	if ev.HasConversionValue {
		m.ConversionValueMicros = addMicros(m.ConversionValueMicros, ev.ConversionValueMicros())
	}
	if ev.HasEngagementScore {
		m.EngagementMicros += int64(ev.EngagementScore*1e6 + 0.5)
	}
	m.mergeCurrency(ev.Currency)
	m.MaxIngestTime = max(m.MaxIngestTime, ev.IngestTime)
	if m.Users == nil {
		m.Users = hyperloglog.New14()
	}
	m.Users.InsertHash(xxh3.HashString(ev.UserID))
}

func (m *Metrics) mergeCurrency(c string) {
	switch {
	case c == "" || c == m.Currency:
	case m.Currency == "":
		// A copy: an event's strings are slices of its whole decoded
		// batch (decodeEventBatch), and an accumulator lives as long as
		// its bundle, so holding the slice would keep the batch alive.
		m.Currency = strings.Clone(c)
	default:
		m.Currency = MixedCurrency
	}
}

// addMicros adds two sums of conversion value, which validation keeps
// non-negative, and stops at math.MaxInt64 (about 9.2 trillion in the
// currency) instead of wrapping to a negative sum: 9,224 conversions at the
// largest valid value (10⁹) in one window key reach it. Stopping there keeps
// the sum a combiner's (associative and commutative) and makes a capped
// value plain to see. Engagement cannot come near it (10⁸ micros an event).
func addMicros(a, b int64) int64 {
	s := a + b
	if b > 0 && s < a {
		return math.MaxInt64
	}
	return s
}

// Merge folds o into m. o is not modified and shares nothing with m after.
func (m *Metrics) Merge(o Metrics) {
	m.Events += o.Events
	m.LateEvents += o.LateEvents
	m.ConversionValueMicros = addMicros(m.ConversionValueMicros, o.ConversionValueMicros)
	m.EngagementMicros += o.EngagementMicros
	m.mergeCurrency(o.Currency)
	m.MaxIngestTime = max(m.MaxIngestTime, o.MaxIngestTime)
	m.Partials += o.Partials
	switch {
	case o.Users == nil:
	case m.Users == nil:
		m.Users = o.Users.Clone()
	default:
		if err := m.Users.Merge(o.Users); err != nil {
			panic(err) // only on a precision mismatch: a programming error
		}
	}
}

// UniqueUsers is the sketch's estimate of distinct users.
func (m *Metrics) UniqueUsers() int64 {
	if m.Users == nil {
		return 0
	}
	return int64(m.Users.Estimate())
}

// MergeMetricsFn is the CombineFn of CampaignMetrics. Its input is a partial
// Metrics, not an event, so every step is a merge: the runner may lift it
// (Dataflow does) and Prism, which will not lift a combine under a count
// trigger, still only shuffles one partial per key per bundle.
type MergeMetricsFn struct{}

// CreateAccumulator returns an empty aggregate.
func (*MergeMetricsFn) CreateAccumulator() Metrics { return Metrics{} }

// AddInput folds a partial aggregate into the accumulator.
func (*MergeMetricsFn) AddInput(acc, in Metrics) Metrics {
	acc.Merge(in)
	acc.Partials++
	return acc
}

// MergeAccumulators merges two accumulators.
func (*MergeMetricsFn) MergeAccumulators(a, b Metrics) Metrics { a.Merge(b); return a }

// ExtractOutput returns the accumulator itself.
func (*MergeMetricsFn) ExtractOutput(a Metrics) Metrics { return a }

// metricKeySep joins the parts of a metric key, which stays a plain string,
// the cheapest thing to shuffle. A campaign id may contain it (validation
// bounds ids' length, not their characters); platform and event type are
// enums that do not, so SplitMetricKey cuts from the right.
const metricKeySep = "\x1f"

// MetricKey is the grouping key of CampaignMetrics (the window is the fourth
// part, carried by Beam).
func MetricKey(ev *Event) string {
	return ev.CampaignID + metricKeySep + ev.Platform + metricKeySep + ev.EventType
}

// SplitMetricKey returns campaign, platform and event type.
func SplitMetricKey(k string) (campaign, platform, eventType string) {
	rest, eventType := cutLast(k)
	campaign, platform = cutLast(rest)
	return campaign, platform, eventType
}

// cutLast splits s around its last metricKeySep (s and "" if there is none).
func cutLast(s string) (before, after string) {
	if i := strings.LastIndex(s, metricKeySep); i >= 0 {
		return s[:i], s[i+len(metricKeySep):]
	}
	return s, ""
}

func encodeMetrics(m Metrics) ([]byte, error) {
	b := make([]byte, 0, 64)
	for _, v := range [...]int64{m.Events, m.LateEvents, m.ConversionValueMicros, m.EngagementMicros, m.MaxIngestTime, m.Partials} {
		b = binary.AppendVarint(b, v)
	}
	b = binary.AppendUvarint(b, uint64(len(m.Currency)))
	b = append(b, m.Currency...)
	if m.Users == nil {
		return append(b, 0), nil
	}
	b = append(b, 1)
	return m.Users.AppendBinary(b)
}

var errMetricsEncoding = errors.New("transforms: bad Metrics encoding")

func decodeMetrics(b []byte) (Metrics, error) {
	var m Metrics
	for _, p := range [...]*int64{&m.Events, &m.LateEvents, &m.ConversionValueMicros, &m.EngagementMicros, &m.MaxIngestTime, &m.Partials} {
		v, k := binary.Varint(b)
		if k <= 0 {
			return m, errMetricsEncoding
		}
		*p, b = v, b[k:]
	}
	cur, b, err := readBytes(b)
	if err != nil || len(b) < 1 {
		return m, errMetricsEncoding
	}
	m.Currency = string(cur)
	if b[0] == 1 {
		m.Users = hyperloglog.New14()
		if err := m.Users.UnmarshalBinary(b[1:]); err != nil {
			return m, err
		}
	}
	return m, nil
}
