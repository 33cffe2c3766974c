package enrichment

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"
	"unsafe"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/campaignpulse/campaignpulse/transforms"
)

// TestEnrichAllocatesOneContextBlockABatch: Enrich gives each event it sends
// on a context, and the contexts of a batch are one allocation that the
// events point into, not one an event. The lookup is left unopened (as after
// a failed open), so every event takes the "pass" rule's unavailable context
// through the same code as an enriched one, without a Bigtable.
func TestEnrichAllocatesOneContextBlockABatch(t *testing.T) {
	const batches, size = 8, 512
	cfg := DefaultConfig.WithDefaults()
	cfg.OnUnavailable, cfg.MicroBatchEvents = OnUnavailablePass, batches*size
	f := &enrichFn{Cfg: cfg, retryAt: time.Now().Add(time.Hour), reported: true}
	in := make([]transforms.EventBatch, batches)
	for b := range in {
		in[b].Events = make([]transforms.Event, size)
		for i := range in[b].Events {
			in[b].Events[i] = transforms.Event{EventID: fmt.Sprintf("e-%d-%d", b, i), UserID: "u", CampaignID: "c"}
		}
	}
	var out []transforms.EventBatch
	emit := func(_ beam.EventTime, b transforms.EventBatch) { out = append(out, b) }
	dead := func(beam.EventTime, transforms.DeadLetter) { t.Error("pass rule: no dead letter expected") }
	ctx := context.Background()
	for _, b := range in[:batches-1] {
		f.ProcessElement(ctx, 0, b, emit, dead)
	}
	out = make([]transforms.EventBatch, 0, batches)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f.ProcessElement(ctx, 0, in[batches-1], emit, dead) // fills the micro-batch: flushes all of it
	runtime.ReadMemStats(&after)

	if len(out) != batches {
		t.Fatalf("%d batches out, want %d", len(out), batches)
	}
	block := uintptr(size) * unsafe.Sizeof(transforms.Enrichment{})
	for b, batch := range out {
		first := uintptr(unsafe.Pointer(batch.Events[0].Enrichment))
		for i, ev := range batch.Events {
			if ev.Enrichment == nil || ev.Enrichment.Status != transforms.EnrichUnavailable {
				t.Fatalf("batch %d event %d: context %+v, want status %q", b, i, ev.Enrichment, transforms.EnrichUnavailable)
			}
			if p := uintptr(unsafe.Pointer(ev.Enrichment)); p-first >= block {
				t.Fatalf("batch %d event %d: context outside its batch's block", b, i)
			}
		}
	}
	mallocs := after.Mallocs - before.Mallocs
	t.Logf("%d events enriched in %d batches: %d allocations", batches*size, batches, mallocs)
	if mallocs > batches*size/16 {
		t.Errorf("%d allocations for %d batches of %d events: want a few a batch, not one an event", mallocs, batches, size)
	}
}
