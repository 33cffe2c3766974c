package transforms

import (
	"fmt"
	"testing"
	"time"
	"unsafe"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/passert"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
)

func init() {
	register.Function1x1(latenessSummary)
	register.Function2x1(partialSummary)
}

func latenessSummary(e Event) string {
	return fmt.Sprintf("%s late=%v too_late=%v", e.EventID, e.Late, e.TooLate)
}

func TestWindowStartEnd(t *testing.T) {
	const minute = int64(60_000)
	tests := []struct {
		t, size, start, end int64
	}{
		{0, minute, 0, minute},
		{1, minute, 0, minute},
		{minute - 1, minute, 0, minute},
		{minute, minute, minute, 2 * minute},
		{minute + 1, minute, minute, 2 * minute},
		{1_772_366_430_123, minute, 1_772_366_400_000, 1_772_366_460_000},
		{-1, minute, -minute, 0},
		{-minute + 1, minute, -minute, 0},
		{-minute, minute, -minute, 0},
		{-minute - 1, minute, -2 * minute, -minute},
		{-2 * minute, minute, -2 * minute, -minute},
		{7, 1, 7, 8},
		{-7, 1, -7, -6},
		{-5, 10, -10, 0},
		{5, 10, 0, 10},
	}
	for _, tt := range tests {
		if got := WindowStart(tt.t, tt.size); got != tt.start {
			t.Errorf("WindowStart(%d, %d) = %d, want %d", tt.t, tt.size, got, tt.start)
		}
		if got := WindowEnd(tt.t, tt.size); got != tt.end {
			t.Errorf("WindowEnd(%d, %d) = %d, want %d", tt.t, tt.size, got, tt.end)
		}
	}
}

// The defining property of a fixed window: it holds t, is aligned to a
// multiple of the size and is one size long.
func TestWindowStartProperties(t *testing.T) {
	for _, size := range []int64{1, 3, 1000, 60_000, 3_600_000} {
		for tm := -3*size - 7; tm <= 3*size+7; tm += max(size/13, 1) {
			start, end := WindowStart(tm, size), WindowEnd(tm, size)
			if !(start <= tm && tm < end) {
				t.Fatalf("size %d t %d: window [%d, %d) does not hold t", size, tm, start, end)
			}
			if start%size != 0 || end-start != size {
				t.Fatalf("size %d t %d: window [%d, %d) is not aligned or not one size long", size, tm, start, end)
			}
		}
	}
}

// ClassifyLateness sets the flags in the batch it is given (a copy of every
// event was 470 MB of a 1M-event run) and sends that batch on.
func TestClassifyLatenessInPlace(t *testing.T) {
	cfg := WindowConfig{Size: time.Minute, AllowedLateness: 10 * time.Minute}
	f := &classifyLatenessFn{SizeMillis: cfg.Size.Milliseconds(), LatenessMillis: cfg.AllowedLateness.Milliseconds()}
	w := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixMilli()
	const n = 4096
	in := EventBatch{Events: make([]Event, n)}
	for i := range in.Events {
		// Arrivals from on time to 20 minutes after the window's end; stale
		// flags that the step must overwrite.
		in.Events[i] = Event{EventID: fmt.Sprint(i), EventTime: w, IngestTime: w + int64(i)*20*60_000/n, Late: i%2 == 0, TooLate: i%3 == 0}
	}
	var out EventBatch
	alloc := bytesAllocatedBy(func() { f.ProcessElement(in, func(b EventBatch) { out = b }) })
	if len(out.Events) != n || &out.Events[0] != &in.Events[0] {
		t.Fatalf("sent %d events, in the input's array: %v", len(out.Events), len(out.Events) > 0 && &out.Events[0] == &in.Events[0])
	}
	end := w + 60_000
	for i, ev := range out.Events {
		tooLate := ev.IngestTime >= end+cfg.AllowedLateness.Milliseconds()
		late := !tooLate && ev.IngestTime >= end
		if ev.Late != late || ev.TooLate != tooLate || ev.EventID != fmt.Sprint(i) {
			t.Fatalf("event %d (%s, arrived %d ms after the end): late=%v too_late=%v, want %v %v", i, ev.EventID, ev.IngestTime-end, ev.Late, ev.TooLate, late, tooLate)
		}
	}
	if alloc > n*uint64(unsafe.Sizeof(Event{}))/4 {
		t.Fatalf("allocated %d bytes to classify %d events", alloc, n)
	}
}

// TestClassifyLatenessOnPrism: window [12:00, 12:01), skew 5 s, allowed
// lateness 10 min. The watermark estimate is arrival − 5 s, or the source's
// watermark when it read the event if later: late from 12:01:05 of arrival
// (12:01 of watermark), too late from 12:11:05 (12:11).
func TestClassifyLatenessOnPrism(t *testing.T) {
	cfg := WindowConfig{Size: time.Minute, AllowedLateness: 10 * time.Minute, WatermarkSkew: 5 * time.Second}
	w := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	ev := func(id string, eventOffset, arrivalOffset time.Duration, late, tooLate bool) Event {
		return Event{EventID: id, EventTime: w.Add(eventOffset).UnixMilli(), IngestTime: w.Add(arrivalOffset).UnixMilli(), Late: late, TooLate: tooLate}
	}
	read := func(e Event, watermarkOffset time.Duration) Event {
		e.ReadWatermark = w.Add(watermarkOffset).UnixMilli()
		return e
	}
	tests := []struct {
		ev            Event
		late, tooLate bool
	}{
		{ev("on-time", 30*time.Second, 31*time.Second, false, false), false, false},
		{ev("first-ms", 0, time.Minute, false, false), false, false},
		{ev("last-on-time", 30*time.Second, time.Minute+5*time.Second-time.Millisecond, false, false), false, false},
		{ev("first-late", 30*time.Second, time.Minute+5*time.Second, false, false), true, false},
		{ev("last-ms-of-window-late", time.Minute-time.Millisecond, time.Minute+5*time.Second, false, false), true, false},
		{ev("late", 30*time.Second, 5*time.Minute, false, false), true, false},
		{ev("last-late", 30*time.Second, 11*time.Minute+5*time.Second-time.Millisecond, false, false), true, false},
		{ev("first-too-late", 30*time.Second, 11*time.Minute+5*time.Second, false, false), false, true},
		{ev("too-late", 0, time.Hour, false, false), false, true},
		// Flags that came in are recomputed, not kept.
		{ev("stale-flags", 30*time.Second, 40*time.Second, true, true), false, false},
		{ev("stale-late", 30*time.Second, 2*time.Hour, true, false), false, true},
		// Arrival before the event time (a clock ahead) is on time.
		{ev("early-arrival", 30*time.Second, 0, false, false), false, false},
		// Read under a source watermark past its publish time (a crashed
		// run's message, redelivered minutes later): judged by the later.
		{read(ev("redelivered-late", 30*time.Second, 30*time.Second, false, false), 2*time.Minute), true, false},
		{read(ev("redelivered-too-late", 30*time.Second, 5*time.Minute, false, false), 11*time.Minute), false, true},
		{read(ev("watermark-behind-arrival", 30*time.Second, 11*time.Minute+5*time.Second, false, false), time.Minute), false, true},
	}
	in := make([]Event, len(tests))
	want := make([]any, len(tests))
	for i, tt := range tests {
		in[i] = tt.ev
		want[i] = fmt.Sprintf("%s late=%v too_late=%v", tt.ev.EventID, tt.late, tt.tooLate)
	}
	ptest.BuildAndRun(t, func(s beam.Scope) {
		classified := ClassifyLateness(s, BatchEvents(s, beam.CreateList(s, in)), cfg)
		passert.Equals(s, beam.ParDo(s, latenessSummary, Unbatch(s, classified)), want...)
	})
}

// PreAggregate leaves out the too-late events and counts the late ones, per
// window and key; a flag pair that says both counts as too late.
func TestPreAggregateDropsTooLateOnPrism(t *testing.T) {
	w := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixMilli()
	ev := func(id string, offset int64, late, tooLate bool) Event {
		return Event{EventID: id, EventType: TypeClick, EventTime: w + offset, UserID: "u-" + id, CampaignID: "c1", Platform: "meta", Late: late, TooLate: tooLate}
	}
	in := EventBatch{Events: []Event{
		ev("none", 0, false, false), ev("late", 1, true, false), ev("too-late", 2, false, true),
		ev("both", 3, true, true), ev("late-2", 4, true, false), ev("next-window", 60_000, false, false),
	}}
	ptest.BuildAndRun(t, func(s beam.Scope) {
		parts := PreAggregate(s, beam.Create(s, in), WindowConfig{Size: time.Minute})
		passert.Equals(s, beam.ParDo(s, partialSummary, parts),
			"c1|meta|click events=3 late=2 users=3", "c1|meta|click events=1 late=0 users=1")
	})
}

func partialSummary(key string, m Metrics) string {
	campaign, platform, eventType := SplitMetricKey(key)
	return fmt.Sprintf("%s|%s|%s events=%d late=%d users=%d", campaign, platform, eventType, m.Events, m.LateEvents, m.UniqueUsers())
}
