package enrichment

import (
	"runtime"
	"testing"
	"time"
)

// TestTTLCacheExpiresAndEvicts: an entry is served until its TTL and not
// after; the least recently used one goes when the cache is full.
func TestTTLCacheExpiresAndEvicts(t *testing.T) {
	// A TTL a stalled test goroutine cannot outlast between an Add and the
	// Get after it on a loaded machine.
	const ttl = time.Second
	c := newTTLCache[int](2, ttl)
	c.Add("a", 1)
	c.Add("b", 2)
	if v, ok := c.Get("a"); !ok || v != 1 {
		t.Fatalf("a = %d, %v; want 1", v, ok)
	}
	c.Add("c", 3) // b is the least recently used
	if _, ok := c.Get("b"); ok || c.Len() != 2 {
		t.Errorf("after a third entry in a cache of two: b still served, or %d entries", c.Len())
	}
	time.Sleep(ttl + 50*time.Millisecond)
	if v, ok := c.Get("a"); ok {
		t.Errorf("a served after its TTL: %d", v)
	}
	c.Add("a", 4) // a fresh answer is served again
	if v, ok := c.Get("a"); !ok || v != 4 {
		t.Errorf("a = %d, %v after a new answer; want 4", v, ok)
	}
}

// TestTTLCacheStartsNoGoroutine: golang-lru's expirable.LRU started a
// goroutine per cache that nothing stopped, two for every Lookup opened.
func TestTTLCacheStartsNoGoroutine(t *testing.T) {
	before := runtime.NumGoroutine()
	caches := make([]*ttlCache[*User], 20)
	for i := range caches {
		caches[i] = newTTLCache[*User](10, time.Minute)
		caches[i].Purge()
	}
	if after := runtime.NumGoroutine(); after > before {
		t.Errorf("20 caches made and purged: %d goroutines more", after-before)
	}
	runtime.KeepAlive(caches)
}
