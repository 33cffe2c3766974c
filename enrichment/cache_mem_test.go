package enrichment

import (
	"runtime"
	"testing"
	"time"
)

// TestCacheEntryCost measures what one cached user costs, so a cache size
// can be turned into memory: --enrich_cache_size × this × 2 tables at most.
// It fails if an entry costs more than 1 KiB (a leak or a bloated value).
func TestCacheEntryCost(t *testing.T) {
	const n = 100_000
	heap := func() int64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return int64(m.HeapAlloc)
	}
	before := heap()
	c := newTTLCache[*User](n, time.Hour)
	for i := 0; i < 2*n; i++ {
		u := SeedUser(42, i, 2*n)
		c.Add(u.ID, &u)
	}
	after := heap()
	per := (after - before) / n
	t.Logf("%d cached users: %.1f MB, %d bytes an entry", c.Len(), float64(after-before)/1e6, per)
	if c.Len() != n || per > 1024 {
		t.Errorf("cache holds %d entries at %d bytes each; want %d at ≤ 1 KiB", c.Len(), per, n)
	}
	runtime.KeepAlive(c)
}
