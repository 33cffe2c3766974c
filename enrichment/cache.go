package enrichment

import (
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// ttlCache is a size-bounded LRU whose entries expire after a TTL, checked
// when read. golang-lru's own expirable.LRU starts a goroutine per cache to
// evict expired entries and never stops it (v2.0.7 has no way to), so every
// Lookup opened left two goroutines behind, each holding its cache: a
// process that opens Lookups again (the bench, the tests, a local run after
// CloseShared) leaked them. Here an expired entry stays until it is read or
// pushed out by newer ones, so the size still bounds the memory. Safe for
// concurrent use.
type ttlCache[V any] struct {
	ttl time.Duration
	lru *lru.Cache[string, ttlEntry[V]]
}

type ttlEntry[V any] struct {
	v       V
	expires int64 // unix ns
}

func newTTLCache[V any](size int, ttl time.Duration) *ttlCache[V] {
	c, err := lru.New[string, ttlEntry[V]](max(size, 1))
	if err != nil { // only for a size below 1
		panic(err)
	}
	return &ttlCache[V]{ttl: ttl, lru: c}
}

// Get returns the value of key unless it is missing or expired.
func (c *ttlCache[V]) Get(key string) (V, bool) {
	e, ok := c.lru.Get(key)
	if !ok || time.Now().UnixNano() >= e.expires {
		var zero V
		return zero, false
	}
	return e.v, true
}

// Add caches v under key for the TTL.
func (c *ttlCache[V]) Add(key string, v V) {
	c.lru.Add(key, ttlEntry[V]{v: v, expires: time.Now().Add(c.ttl).UnixNano()})
}

// Len counts the entries, expired ones not read since included.
func (c *ttlCache[V]) Len() int { return c.lru.Len() }

// Purge empties the cache.
func (c *ttlCache[V]) Purge() { c.lru.Purge() }
