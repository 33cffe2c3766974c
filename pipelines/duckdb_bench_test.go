package pipelines

import (
	"context"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/campaignpulse/campaignpulse/pipelines/generator"
	"github.com/campaignpulse/campaignpulse/transforms"
)

// BenchmarkWarehouseCommitLatency measures what DuckDB's automatic checkpoint
// does to a streaming run's freshness, apart from the rest of the pipeline:
// four writers commit fact_marketing_events rows the way the sink does (a
// bundle's CSV, one COPY), 500 rows each every 100 ms, i.e. 20,000 rows/s,
// and the benchmark reports the commits' latency percentiles. One iteration
// is one 100 ms tick, so run it for a minute to reach a 256 MB checkpoint:
//
//	go test -run=XXX -bench=WarehouseCommitLatency -benchtime=600x ./pipelines/
//
// (with `yes > /dev/null` running twice beside it to share the two cores as a
// streaming run does). Sub-benchmarks by checkpoint_threshold: DuckDB's
// default (16 MB), a smaller one and the sink's (256 MB).
func BenchmarkWarehouseCommitLatency(b *testing.B) {
	const writers, rowsPerTick, tick = 4, 500, 100 * time.Millisecond
	events := validGeneratedEvents(100_000)
	for _, threshold := range []string{"8MB", "16MB", "256MB"} {
		b.Run("checkpoint_threshold="+threshold, func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "w.duckdb")
			wh, err := OpenWarehouse(path)
			if err != nil {
				b.Fatal(err)
			}
			defer wh.Release()
			if _, err := wh.DB().Exec("SET checkpoint_threshold = '" + threshold + "'"); err != nil {
				b.Fatal(err)
			}
			var mu sync.Mutex
			var latencies []time.Duration
			var wg sync.WaitGroup
			start := time.Now()
			b.ResetTimer()
			for w := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					f := &stagedTable{Path: path, Table: transforms.TableEvents}
					if err := f.Setup(context.Background()); err != nil {
						b.Error(err)
						return
					}
					defer f.Teardown()
					k := w * len(events) / writers
					for i := range b.N {
						time.Sleep(time.Until(start.Add(time.Duration(i) * tick)))
						for range rowsPerTick {
							f.addEvent(&events[k%len(events)], time.Now())
							k++
						}
						t0 := time.Now()
						if err := f.FinishBundle(context.Background(), func(int64) {}); err != nil {
							b.Error(err)
							return
						}
						d := time.Since(t0)
						mu.Lock()
						latencies = append(latencies, d)
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			if len(latencies) == 0 {
				return
			}
			slices.Sort(latencies)
			q := func(p float64) float64 {
				return float64(latencies[int(p*float64(len(latencies)-1))].Microseconds()) / 1000
			}
			b.ReportMetric(q(0.5), "p50-ms")
			b.ReportMetric(q(0.99), "p99-ms")
			b.ReportMetric(q(1), "max-ms")
			b.ReportMetric(float64(writers*rowsPerTick*b.N)/time.Since(start).Seconds(), "rows/s")
		})
	}
}

// BenchmarkDeadLetterSink stages and commits bundles of 16 dead letters with
// the payload of the generator's oversize event (64 KiB of JSON, the largest
// rows the sink writes), as the sink does: CSV, one COPY a bundle. It
// reports the payload bytes committed per second.
func BenchmarkDeadLetterSink(b *testing.B) {
	g := generator.Default()
	g.MaxPayloadBytes = transforms.DefaultMaxPayloadBytes
	var payload []byte
	for i := int64(0); payload == nil; i++ {
		if g.Kind(i) == generator.Malformed && g.MalformedCode(i) == transforms.CodeOversizePayload {
			payload = g.Message(i, nil).Data
		}
	}
	d := transforms.DeadLetter{Stage: transforms.StageParse, ErrorCode: transforms.CodeOversizePayload,
		ErrorMessage: "payload too large", EventID: "e1", Payload: payload, Source: "meta", ProcessingTime: 1, PipelineVersion: "bench"}
	row := transforms.NewDeadLetterRow(d)
	f := &stagedTable{Path: filepath.Join(b.TempDir(), "w.duckdb"), Table: transforms.TableDeadLetters}
	if err := f.Setup(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer f.Teardown()
	const perBundle = 16
	b.SetBytes(int64(perBundle * len(payload)))
	b.ResetTimer()
	for range b.N {
		for range perBundle {
			if err := f.add(row); err != nil {
				b.Fatal(err)
			}
		}
		if err := f.FinishBundle(context.Background(), func(int64) {}); err != nil {
			b.Fatal(err)
		}
	}
}
