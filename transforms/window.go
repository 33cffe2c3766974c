package transforms

import (
	"context"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/mtime"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/window"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/window/trigger"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
)

func init() {
	register.DoFn2x0[EventBatch, func(EventBatch)](&classifyLatenessFn{})
	register.DoFn3x0[context.Context, EventBatch, func(beam.EventTime, string, Metrics)](&preAggregateFn{})
	register.Emitter3[beam.EventTime, string, Metrics]()
	register.DoFn4x0[beam.Window, string, Metrics, func(MetricsRow)](&paneRowFn{})
	register.Emitter1[MetricsRow]()
}

// WindowConfig is the event-time policy of the aggregates.
type WindowConfig struct {
	Size            time.Duration // fixed window length (60 s)
	AllowedLateness time.Duration // how long after a window's end late data still updates it
	EarlyFiring     time.Duration // processing-time delay of the speculative panes before the end of a window; 0: none
	// WatermarkSkew is how far the source's watermark trails arrival time.
	// An event is late when arrival − skew is past the end of its window, and
	// too late when that is past the end plus the allowed lateness.
	WatermarkSkew time.Duration
	// LatenessMargin is how much longer than AllowedLateness the runner keeps
	// a window open. The pipeline decides lateness from arrival time, but a
	// source's watermark follows only what it has read: behind a backlog that
	// Pub/Sub delivers out of order, the watermark can pass a message's
	// arrival time before the message is read, and the runner would drop it
	// from the aggregates although the pipeline counted it in. The margin
	// covers read delays up to its length; what is too late is still decided
	// by ClassifyLateness alone.
	LatenessMargin time.Duration
	// MaxPartialKeys bounds the partial aggregates one bundle holds in memory.
	MaxPartialKeys int
	// RunID names the pipeline run in every pane row (MetricsRow.RunID):
	// panes accumulate within one run only, so a reader needs it to add a
	// second run's panes of a window to the first's instead of taking the
	// latest for the whole.
	RunID string
}

// DefaultWindowConfig is what the flags default to.
var DefaultWindowConfig = WindowConfig{
	Size: time.Minute, AllowedLateness: 10 * time.Minute, EarlyFiring: 5 * time.Second,
	WatermarkSkew: 5 * time.Second, LatenessMargin: 2 * time.Minute, MaxPartialKeys: 100_000,
}

// ClassifyLateness marks each event of a batch Late or TooLate from its
// arrival time, or from its source's watermark when the source emitted it
// if that is later (Event.ReadWatermark). PreAggregate later leaves the
// too-late events out.
//
// Why decide here and not only at the GroupByKey: a runner drops data past the
// allowed lateness silently, so the pipeline could neither count it nor prove
// it was kept. Deciding from arrival time makes the split deterministic and
// counted; the window's own allowed lateness below is longer by
// LatenessMargin, so on a runner whose watermark follows arrival time
// (Pub/Sub's does) the GroupByKey drops nothing this step let through, even
// when a backlog is read minutes behind the watermark. A message delivered
// long after it was published (a crashed run's, which Pub/Sub sends again
// once its lease lapses; the emulator takes up to 10 minutes) can arrive
// behind its source's watermark by more than that margin: by its publish
// time it would be late, and counted in a pane the runner never fires, so
// it is judged by the watermark its source had when it read it.
//
// It owns its input: it sets the flags in the batches it is given rather
// than copying every event (470 MB of a 1M-event run's allocation), so
// batches must have no other consumer (in Build they are ValidateSchema's
// valid output, which feeds ClassifyLateness alone).
func ClassifyLateness(s beam.Scope, events beam.PCollection, cfg WindowConfig) beam.PCollection {
	s = s.Scope("ClassifyLateness")
	return beam.ParDo(s, &classifyLatenessFn{
		SizeMillis: cfg.Size.Milliseconds(), LatenessMillis: cfg.AllowedLateness.Milliseconds(), SkewMillis: cfg.WatermarkSkew.Milliseconds(),
	}, events)
}

// WindowEnd returns the exclusive end, in unix ms, of the fixed window of size
// sizeMillis that holds t.
func WindowEnd(t, sizeMillis int64) int64 { return WindowStart(t, sizeMillis) + sizeMillis }

// WindowStart returns the start, in unix ms, of the fixed window that holds t.
func WindowStart(t, sizeMillis int64) int64 {
	start := t - t%sizeMillis
	if t < 0 && t%sizeMillis != 0 {
		start -= sizeMillis
	}
	return start
}

type classifyLatenessFn struct {
	SizeMillis, LatenessMillis, SkewMillis int64
}

func (f *classifyLatenessFn) ProcessElement(b EventBatch, emit func(EventBatch)) {
	for i := range b.Events { // in place: see ClassifyLateness
		ev := &b.Events[i]
		watermark := max(ev.IngestTime-f.SkewMillis, ev.ReadWatermark)
		ev.ReadWatermark = 0 // used: it need not cross the shuffle
		end := WindowEnd(ev.EventTime, f.SizeMillis)
		ev.TooLate = watermark >= end+f.LatenessMillis
		ev.Late = !ev.TooLate && watermark >= end
	}
	emit(b)
}

// CampaignMetrics aggregates events per (one-minute window, campaign,
// platform, event type) and returns one MetricsRow per emitted pane.
//
// Panes fire early every EarlyFiring of processing time while a window is
// open, on time when the watermark passes its end, and once per late arrival
// within the allowed lateness; they accumulate, so the newest pane of a key is
// its whole truth within the run. Each row carries a pane_version counted by
// the pipeline itself (Prism does not report pane info reliably), so a reader
// picks the newest pane per key without guessing, and the run's id
// (cfg.RunID), so a reader adds up the runs that wrote panes of one window.
func CampaignMetrics(s beam.Scope, events beam.PCollection, cfg WindowConfig) beam.PCollection {
	s = s.Scope("CampaignMetrics")
	return AggregatePanes(s, cfg, PreAggregate(s, events, cfg))
}

// PreAggregate is the first half of CampaignMetrics: per-bundle partial
// aggregates, KV<metric key, Metrics>, timestamped in their window, of
// batches of events. It leaves out the too-late events and counts the late
// and the too late: run it after Dedup, so a repeat is not counted twice.
func PreAggregate(s beam.Scope, events beam.PCollection, cfg WindowConfig) beam.PCollection {
	s = s.Scope("PreAggregate")
	return beam.ParDo(s, &preAggregateFn{SizeMillis: cfg.Size.Milliseconds(), MaxKeys: cfg.MaxPartialKeys}, events)
}

// AggregatePanes is the second half of CampaignMetrics: it windows the
// partials (of any number of PreAggregate steps, flattened), combines them per
// key and window, and numbers the panes.
func AggregatePanes(s beam.Scope, cfg WindowConfig, partials ...beam.PCollection) beam.PCollection {
	s = s.Scope("AggregatePanes")
	in := partials[0]
	if len(partials) > 1 {
		in = beam.Flatten(s, partials...)
	}
	windowed := beam.WindowInto(s, window.NewFixedWindows(cfg.Size), in,
		beam.Trigger(cfg.Trigger()), beam.AllowedLateness(cfg.AllowedLateness+cfg.LatenessMargin), beam.PanesAccumulate())
	combined := beam.CombinePerKey(s, &MergeMetricsFn{}, windowed)
	return beam.ParDo(s, &paneRowFn{RunID: cfg.RunID}, combined)
}

// Trigger is the firing policy of the aggregates: on time at the end of the
// window, a late pane for every late arrival and, when EarlyFiring is set,
// speculative panes every EarlyFiring of processing time before the end.
// A bounded run sets no early firing: all its data is present at once, and a
// processing-time trigger would only keep the runner waiting for its timer.
func (cfg WindowConfig) Trigger() trigger.Trigger {
	t := trigger.AfterEndOfWindow().LateFiring(trigger.AfterCount(1))
	if cfg.EarlyFiring > 0 {
		t = t.EarlyFiring(trigger.AfterProcessingTime().PlusDelay(cfg.EarlyFiring))
	}
	return t
}

// preAggregateFn sums a bundle's events per (window, key) before the shuffle:
// the combiner lifting Prism skips under a count trigger, done by hand. Each
// partial is emitted with its window's last timestamp, so WindowInto puts it
// in the same window its events belong to.
type preAggregateFn struct {
	SizeMillis int64
	MaxKeys    int

	parts         map[partialKey]*Metrics
	late, tooLate int64
}

type partialKey struct {
	windowStart int64
	key         string
}

func (f *preAggregateFn) ProcessElement(ctx context.Context, b EventBatch, emit func(beam.EventTime, string, Metrics)) {
	if f.parts == nil {
		f.parts = make(map[partialKey]*Metrics)
	}
	for i := range b.Events {
		ev := &b.Events[i]
		switch {
		case ev.TooLate:
			f.tooLate++
			continue
		case ev.Late:
			f.late++
		}
		k := partialKey{windowStart: WindowStart(ev.EventTime, f.SizeMillis), key: MetricKey(ev)}
		m := f.parts[k]
		if m == nil {
			if f.MaxKeys > 0 && len(f.parts) >= f.MaxKeys {
				f.flush(emit) // bound memory: a bundle over very many keys sends its partials early
			}
			m = &Metrics{}
			f.parts[k] = m
		}
		m.Add(ev)
	}
}

func (f *preAggregateFn) FinishBundle(ctx context.Context, emit func(beam.EventTime, string, Metrics)) {
	f.flush(emit)
	f.parts = nil
	counterLate.Inc(ctx, f.late)
	counterTooLate.Inc(ctx, f.tooLate)
	f.late, f.tooLate = 0, 0
}

func (f *preAggregateFn) flush(emit func(beam.EventTime, string, Metrics)) {
	for k, m := range f.parts {
		emit(mtime.FromMilliseconds(k.windowStart+f.SizeMillis-1), k.key, *m)
	}
	clear(f.parts)
}

// paneRowFn turns a fired pane into its row. The pane's version is the
// number of partials it merged: Prism reports no usable pane index (every
// pane comes as EARLY, index 0), and a stateful counter would cost a state
// round trip per pane.
type paneRowFn struct{ RunID string }

func (f *paneRowFn) ProcessElement(w beam.Window, key string, m Metrics, emit func(MetricsRow)) {
	iw := w.(window.IntervalWindow)
	emit(NewMetricsRow(iw.Start.ToTime(), iw.End.ToTime(), key, m.Partials, m, f.RunID))
}
