package pipelines

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// TestStreamingOnThePubSubEmulator is make run-streaming, small: the official
// Pub/Sub emulator (started by the run), one topic and subscription per
// source, the native source on Prism as an unbounded job, the publisher at
// 2,000 events/s for 6 s, then a drain. Every published event must be
// accounted for exactly as the generator made it, every valid event must be
// in the warehouse once, and every event row must have a freshness sample.
func TestStreamingOnThePubSubEmulator(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the Pub/Sub emulator")
	}
	if os.Getenv("PUBSUB_EMULATOR_HOST") != "" {
		t.Skip("PUBSUB_EMULATOR_HOST is set: this test starts its own emulator")
	}
	o := testOptions(t, 1)
	o.PubSub = DefaultPubSubConfig
	o.PubSub.Streams = 2
	sc := DefaultStreamingConfig
	sc.Rate, sc.Duration, sc.ProgressEvery = 2000, 6*time.Second, time.Second
	sc.TopicPrefix = "cp-test-"
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var log strings.Builder
	rep, err := RunStreaming(ctx, o, sc, &log)
	t.Log(log.String())
	if err != nil {
		t.Fatal(err)
	}
	sum := rep.Summary
	if rep.Publish.Published != 12_000 || rep.Publish.Failed != 0 {
		t.Fatalf("published %d, failed %d; want 12000 and 0", rep.Publish.Published, rep.Publish.Failed)
	}
	if sum.Expected == nil || !sum.Streaming {
		t.Fatal("the summary was not checked against the generator")
	}
	if p := sum.Problems(); len(p) > 0 {
		t.Fatalf("does not reconcile: %v", p)
	}
	e := sum.Expected
	if sum.Valid != e.Valid || sum.DeadLetters != e.Malformed || e.Malformed == 0 || e.Duplicates == 0 {
		t.Errorf("valid=%d dead=%d, generator: %+v", sum.Valid, sum.DeadLetters, *e)
	}
	w, err := OpenWarehouse(o.Warehouse)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Release()
	var rows, ids int64
	if err := w.DB().QueryRow(`select count(*), count(distinct event_id) from fact_marketing_events`).Scan(&rows, &ids); err != nil {
		t.Fatal(err)
	}
	if rows != e.Valid || ids != e.Valid {
		t.Errorf("fact_marketing_events has %d rows and %d distinct ids; the generator published %d valid events", rows, ids, e.Valid)
	}
	if n := rep.Freshness.Count(); n != rows {
		t.Errorf("%d freshness samples for %d event rows", n, rows)
	}
	if p50, p99 := rep.Freshness.Quantile(0.5), rep.Freshness.Quantile(0.99); p50 <= 0 || p99 < p50 {
		t.Errorf("freshness p50 %s p99 %s", p50, p99)
	}
	t.Logf("published %d, freshness p50 %s p95 %s p99 %s", rep.Publish.Published,
		rep.Freshness.Quantile(0.5), rep.Freshness.Quantile(0.95), rep.Freshness.Quantile(0.99))
}
