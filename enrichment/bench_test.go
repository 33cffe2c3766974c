package enrichment_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/campaignpulse/campaignpulse/enrichment"
	"github.com/campaignpulse/campaignpulse/pipelines/generator"
)

// BenchmarkResolveColdBatch times one batched lookup of 1,000 distinct users
// that are all cache misses (the cache holds 1,000 entries and each batch
// names the next 1,000 users), against the in-process Bigtable: the client's
// ReadRows over a row list, decoding and caching. make bench times the same
// path against cbtemulator (lookup_keys_per_s).
func BenchmarkResolveColdBatch(b *testing.B) {
	gen := generator.Default()
	cfg, _ := startSeeded(b, gen)
	cfg.CacheSize = coldBatch
	ctx := context.Background()
	l, err := enrichment.OpenLookup(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	resolveColdBatches(ctx, b, l, userBatches(gen))
}

// coldBatch is how many distinct users one timed lookup names.
const coldBatch = 1000

// userBatches splits the seeded users into batches of coldBatch ids.
func userBatches(gen generator.Config) [][]string {
	users := enrichment.SeededUsers(gen, enrichment.DefaultUnsyncedShare)
	batches := make([][]string, users/coldBatch)
	for k := range batches {
		for i := k * coldBatch; i < (k+1)*coldBatch; i++ {
			batches[k] = append(batches[k], generator.UserID(i))
		}
	}
	return batches
}

// resolveColdBatches times b.N lookups, one batch each, through a cache of
// coldBatch entries, so every key is a miss, and reports keys/s.
func resolveColdBatches(ctx context.Context, b *testing.B, l *enrichment.Lookup, batches [][]string) {
	l.Resolve(ctx, nil, []string{generator.CampaignID(0)}) // dial
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		a, st := l.Resolve(ctx, batches[n%len(batches)], nil)
		if a.UsersErr != nil {
			b.Fatal(a.UsersErr)
		}
		if st.Hits != 0 {
			b.Fatalf("cache hits in a cold batch: %+v", st)
		}
	}
	b.ReportMetric(float64(b.N*coldBatch)/b.Elapsed().Seconds(), "keys/s")
}

// BenchmarkResolveColdBatchEmulator is BenchmarkResolveColdBatch against the
// official emulator (a separate process, as Bigtable is), for several row
// list chunkings of the 1,000 keys.
func BenchmarkResolveColdBatchEmulator(b *testing.B) {
	emu, err := enrichment.StartEmulator(context.Background())
	if err != nil {
		b.Fatalf("this benchmark needs the Cloud Bigtable emulator: %v", err)
	}
	b.Cleanup(emu.Stop)
	gen := generator.Default()
	cfg := enrichment.Config{Project: "bench", Instance: "enrichment", Endpoint: emu.Addr}.WithDefaults()
	seed(b, cfg, gen)
	batches := userBatches(gen)
	for _, chunk := range []int{1000, 500, 250} {
		b.Run(fmt.Sprintf("chunk=%d", chunk), func(b *testing.B) {
			c := cfg
			c.CacheSize, c.MaxKeysPerRead = coldBatch, chunk
			ctx := context.Background()
			l, err := enrichment.OpenLookup(ctx, c)
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			resolveColdBatches(ctx, b, l, batches)
		})
	}
}
