package pipelines

import (
	"fmt"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/window"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/passert"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/teststream"
	"github.com/campaignpulse/campaignpulse/transforms"
)

func init() {
	register.DoFn2x0[string, func(transforms.Message)](&arrivalFn{})
	register.Function1x1(paneSummary)
	register.Function1x1(eventSummary)
}

// arrivalFn turns a test payload into a message with the arrival time the
// test gives its event id (0: unknown, as from a file).
type arrivalFn struct {
	Arrival map[string]int64
}

func (f *arrivalFn) ProcessElement(payload string, emit func(transforms.Message)) {
	id := payload[len(`{"event_id":"`):][:2]
	emit(transforms.Message{Data: []byte(payload), PublishTime: f.Arrival[id], Source: "teststream"})
}

func paneSummary(r transforms.MetricsRow) string {
	return fmt.Sprintf("%s %s events=%d late=%d", r.WindowStart.Format("15:04"), r.CampaignID, r.Events, r.LateEvents)
}

func eventSummary(ev transforms.Event) string {
	return fmt.Sprintf("%s late=%v too_late=%v", ev.EventID, ev.Late, ev.TooLate)
}

// TestLateDataOnPrism drives event time by hand with TestStream and shows the
// lateness policy end to end, on Prism:
//   - e1, on time, is counted in the window's on-time pane;
//   - e2 arrives after the window closed but within the allowed lateness: a
//     later pane of the same window counts it, flagged late;
//   - e3 arrives past the allowed lateness: ClassifyLateness leaves it out of
//     the aggregates, and it is still in the event-grain rows;
//   - e5 arrived within the allowed lateness but is read after the watermark
//     has passed the window's end plus the allowed lateness (a Pub/Sub
//     backlog delivered out of order): the pipeline counts it late, so the
//     aggregates must too; the runner keeps the window open LatenessMargin
//     longer for it (without the margin the GroupByKey drops it);
//   - e4 has no arrival time (a file source), so only the runner can tell it
//     is too late: past the margin too, the window has expired and the
//     GroupByKey drops it from the aggregates; it too is still in the
//     event-grain rows.
func TestLateDataOnPrism(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) int64 { return t0.Add(d).UnixMilli() }
	event := func(id string, ts time.Duration) string {
		return fmt.Sprintf(`{"event_id":"%s","schema_version":"1.0","event_type":"click","timestamp":%q,"user_id":"u1","campaign_id":"cmp_0001","platform":"meta"}`,
			id, t0.Add(ts).Format(time.RFC3339Nano))
	}
	o := &Options{MaxPayloadBytes: transforms.DefaultMaxPayloadBytes, MaxFutureSkew: time.Hour,
		Window: transforms.DefaultWindowConfig, Dedup: transforms.DefaultDedupConfig}
	o.Window.Size = time.Minute // window [12:00, 12:01), allowed lateness 10 min, skew 5 s, margin 2 min

	ts := teststream.NewConfig()
	must(t, ts.AddElements(at(10*time.Second), event("e1", 10*time.Second)))
	must(t, ts.AdvanceWatermark(at(70*time.Second))) // the window's on-time pane fires
	must(t, ts.AddElements(at(20*time.Second), event("e2", 20*time.Second)))
	must(t, ts.AdvanceWatermark(at(12*time.Minute))) // past end + allowed lateness, within the margin
	must(t, ts.AddElements(at(30*time.Second), event("e3", 30*time.Second), event("e5", 50*time.Second)))
	must(t, ts.AdvanceWatermark(at(14*time.Minute))) // past end + allowed lateness + margin: the window expires
	must(t, ts.AddElements(at(40*time.Second), event("e4", 40*time.Second)))
	must(t, ts.AdvanceWatermarkToInfinity())

	p, s := beam.NewPipelineWithRoot()
	msgs := beam.ParDo(s, &arrivalFn{Arrival: map[string]int64{
		"e1": at(11 * time.Second),
		"e2": at(90 * time.Second),                // watermark estimate 85 s: past the end (60 s), within 60 s + 10 min
		"e3": at(12*time.Minute + 10*time.Second), // past 60 s + 10 min
		"e5": at(10*time.Minute + 50*time.Second), // 10:45 after skew: within 60 s + 10 min, read at 12 min
	}}, teststream.Create(s, ts))
	out := Transform(s, o, transforms.BatchMessages(s, msgs))

	panes := paneSummaries(s, out)
	// Each pane exactly once: a pane that would repeat the one before is
	// not emitted (pipelines/prism/README.md, change 14).
	passert.Equals(s, panes,
		"12:00 cmp_0001 events=1 late=0",
		"12:00 cmp_0001 events=3 late=2") // Prism fires the late pane when the window closes
	passert.Equals(s, beam.ParDo(s, eventSummary, transforms.Unbatch(s, flatten(s, out.Events))),
		"e1 late=false too_late=false",
		"e2 late=true too_late=false",
		"e3 late=false too_late=true",
		"e4 late=false too_late=false",
		"e5 late=true too_late=false")
	ptest.RunAndValidate(t, p)
}

// TestEachPaneOnce: a pane is emitted only when data came since the window
// key's last pane. A key whose elements all came before its on-time pane gets
// that one pane in a streaming run (TestStream) and in a bounded one, where
// the watermark jumps to the end at once; with early panes on processing time
// it gets one early pane and no on-time pane. Released Prism emitted the
// closing pane too, a copy of the on-time one, so every window key of a
// bounded run had two identical pane rows, and an on-time pane that repeated
// the early one (pipelines/prism/README.md, change 14).
func TestEachPaneOnce(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	event := func(id, campaign string, ts time.Duration) string {
		return fmt.Sprintf(`{"event_id":"%s","schema_version":"1.0","event_type":"click","timestamp":%q,"user_id":"u1","campaign_id":"%s","platform":"meta"}`,
			id, t0.Add(ts).Format(time.RFC3339Nano), campaign)
	}
	o := &Options{MaxPayloadBytes: transforms.DefaultMaxPayloadBytes, MaxFutureSkew: time.Hour,
		Window: transforms.DefaultWindowConfig, Dedup: transforms.DefaultDedupConfig}
	o.Window.Size = time.Minute
	want := []any{"12:00 cmp_0001 events=2 late=0", "12:01 cmp_0001 events=1 late=0", "12:00 cmp_0002 events=1 late=0"}
	payloads := []string{event("e1", "cmp_0001", 10*time.Second), event("e2", "cmp_0001", 20*time.Second),
		event("e3", "cmp_0001", 70*time.Second), event("e4", "cmp_0002", 30*time.Second)}

	t.Run("streaming", func(t *testing.T) {
		ts := teststream.NewConfig()
		must(t, ts.AddElements(t0.Add(75*time.Second).UnixMilli(), payloads[0], payloads[1], payloads[3]))
		must(t, ts.AdvanceWatermark(t0.Add(70*time.Second).UnixMilli())) // 12:00's on-time panes
		must(t, ts.AddElements(t0.Add(80*time.Second).UnixMilli(), payloads[2]))
		must(t, ts.AdvanceWatermark(t0.Add(3*time.Minute).UnixMilli())) // 12:01's
		must(t, ts.AdvanceWatermarkToInfinity())                        // both windows close
		checkPanes(t, o, func(s beam.Scope) beam.PCollection { return teststream.Create(s, ts) }, want...)
	})
	t.Run("streaming with early panes", func(t *testing.T) {
		so := *o
		so.Source = SourcePubSub // unbounded: early panes every EarlyFiring of processing time
		ts := teststream.NewConfig()
		must(t, ts.AddElements(t0.Add(75*time.Second).UnixMilli(), payloads[0], payloads[1], payloads[3]))
		ts.AdvanceProcessingTime(int64(2 * so.Window.EarlyFiring / time.Millisecond)) // 12:00's early panes
		must(t, ts.AdvanceWatermark(t0.Add(70*time.Second).UnixMilli()))              // its on-time panes: nothing new
		must(t, ts.AddElements(t0.Add(80*time.Second).UnixMilli(), payloads[2]))
		ts.AdvanceProcessingTime(int64(2 * so.Window.EarlyFiring / time.Millisecond)) // 12:01's early pane
		must(t, ts.AdvanceWatermarkToInfinity())
		checkPanes(t, &so, func(s beam.Scope) beam.PCollection { return teststream.Create(s, ts) }, want...)
	})
	t.Run("bounded", func(t *testing.T) {
		checkPanes(t, o, func(s beam.Scope) beam.PCollection { return beam.CreateList(s, payloads) }, want...)
	})
}

// checkPanes runs Transform over the payloads source makes (arrival times
// unknown) and checks that its pane rows, as paneSummary prints them, are
// exactly want.
func checkPanes(t *testing.T, o *Options, source func(beam.Scope) beam.PCollection, want ...any) {
	t.Helper()
	p, s := beam.NewPipelineWithRoot()
	msgs := beam.ParDo(s, &arrivalFn{}, source(s))
	out := Transform(s, o, transforms.BatchMessages(s, msgs))
	passert.Equals(s, paneSummaries(s, out), want...)
	ptest.RunAndValidate(t, p)
}

// paneSummaries is every pane row of out, as paneSummary prints it, in the
// global window (so that passert sees them all together).
func paneSummaries(s beam.Scope, out LaneOutputs) beam.PCollection {
	return beam.ParDo(s, paneSummary, beam.WindowInto(s, window.NewGlobalWindows(), out.Panes))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestDedupCatchesRepeatsOfVeryLateEvents: on a streaming runner the
// watermark can be far past an event's horizon epoch when the event arrives
// (a too-late event). Dedup must still remember its id for a horizon after
// its arrival, so a retry a moment later is caught, not counted twice.
func TestDedupCatchesRepeatsOfVeryLateEvents(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) int64 { return t0.Add(d).UnixMilli() }
	payload := fmt.Sprintf(`{"event_id":"x1","schema_version":"1.0","event_type":"click","timestamp":%q,"user_id":"u1","campaign_id":"cmp_0001","platform":"meta"}`,
		t0.Add(10*time.Second).Format(time.RFC3339Nano))
	o := &Options{MaxPayloadBytes: transforms.DefaultMaxPayloadBytes, MaxFutureSkew: time.Hour,
		Window: transforms.DefaultWindowConfig, Dedup: transforms.DefaultDedupConfig}
	o.Window.Size = time.Minute // the epoch of 12:00:10 is [12:00, 12:10): forgotten at 12:20 by the epoch rule alone

	ts := teststream.NewConfig()
	must(t, ts.AdvanceWatermark(at(25*time.Minute)))
	must(t, ts.AddElements(at(25*time.Minute), payload))
	must(t, ts.AdvanceWatermark(at(26*time.Minute))) // a timer set for 12:20 would fire here
	must(t, ts.AddElements(at(26*time.Minute), payload))
	must(t, ts.AdvanceWatermarkToInfinity())

	p, s := beam.NewPipelineWithRoot()
	msgs := beam.ParDo(s, &arrivalFn{Arrival: map[string]int64{"x1": at(25 * time.Minute)}}, teststream.Create(s, ts))
	out := Transform(s, o, transforms.BatchMessages(s, msgs))
	passert.Equals(s, beam.ParDo(s, eventSummary, transforms.Unbatch(s, flatten(s, out.Events))),
		"x1 late=false too_late=true")
	ptest.RunAndValidate(t, p)
}

// TestDedupRemembersIdsWhenTheWatermarkJumpsToTheEnd: a drain (or the end of
// a bounded input) moves the watermark to the end of time while events read
// just before are still on their way to Dedup. Every expiry timer fires then;
// a repeat that arrives after it must still be caught.
func TestDedupRemembersIdsWhenTheWatermarkJumpsToTheEnd(t *testing.T) {
	// Events of now, as a live source reads them: their horizon has not
	// passed on the wall clock when the watermark jumps.
	t0 := time.Now().UTC().Truncate(time.Second)
	at := func(d time.Duration) int64 { return t0.Add(d).UnixMilli() }
	payload := fmt.Sprintf(`{"event_id":"x1","schema_version":"1.0","event_type":"click","timestamp":%q,"user_id":"u1","campaign_id":"cmp_0001","platform":"meta"}`,
		t0.Format(time.RFC3339Nano))
	o := &Options{MaxPayloadBytes: transforms.DefaultMaxPayloadBytes, MaxFutureSkew: time.Hour,
		Window: transforms.DefaultWindowConfig, Dedup: transforms.DefaultDedupConfig}

	ts := teststream.NewConfig()
	must(t, ts.AddElements(at(0), payload))
	must(t, ts.AdvanceWatermark(at(24*time.Hour))) // the drain's jump: x1's expiry timer fires
	must(t, ts.AddElements(at(0), payload))        // its repeat, read before the jump
	must(t, ts.AdvanceWatermarkToInfinity())

	p, s := beam.NewPipelineWithRoot()
	msgs := beam.ParDo(s, &arrivalFn{Arrival: map[string]int64{"x1": at(time.Second)}}, teststream.Create(s, ts))
	out := Transform(s, o, transforms.BatchMessages(s, msgs))
	passert.Count(s, transforms.Unbatch(s, flatten(s, out.Events)), "events", 1)
	ptest.RunAndValidate(t, p)
}
