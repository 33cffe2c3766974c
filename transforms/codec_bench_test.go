package transforms_test

import (
	"fmt"
	"testing"

	"github.com/campaignpulse/campaignpulse/pipelines/generator"
	"github.com/campaignpulse/campaignpulse/transforms"
)

// BenchmarkEventBatchCodec measures what an event costs to cross Dedup's
// shuffle: a batch of generated valid events encoded (binary, then zstd) and
// decoded, per event, with the bytes an event takes on the wire. A bounded
// run's batches hold a few hundred events (BatchForDedup spreads a bundle
// over a few hundred keys); 4,096 is MaxBatch.
func BenchmarkEventBatchCodec(b *testing.B) {
	for _, n := range []int{256, 4096} {
		batch := validBatch(b, n)
		enc := transforms.EncodeEventBatchForTest(batch)
		perEvent := func(b *testing.B) {
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/event")
			b.ReportMetric(float64(len(enc))/float64(n), "wire_B/event")
		}
		b.Run(fmt.Sprintf("encode/events=%d", n), func(b *testing.B) {
			for b.Loop() {
				enc = transforms.EncodeEventBatchForTest(batch)
			}
			perEvent(b)
		})
		b.Run(fmt.Sprintf("decode/events=%d", n), func(b *testing.B) {
			for b.Loop() {
				out, err := transforms.DecodeEventBatchForTest(enc)
				if err != nil || len(out.Events) != n {
					b.Fatalf("decoded %d events (want %d): %v", len(out.Events), n, err)
				}
			}
			perEvent(b)
		})
	}
}

// validBatch is n of the generator's events as they leave ValidateSchema.
// Over 90% of the generator's events are valid, so 2n events hold n.
func validBatch(b *testing.B, n int) transforms.EventBatch {
	g := generator.Default()
	events := g.ValidEvents(int64(2 * n))
	if len(events) < n {
		b.Fatalf("only %d of %d generated events are valid", len(events), 2*n)
	}
	return transforms.EventBatch{Events: events[:n]}
}
