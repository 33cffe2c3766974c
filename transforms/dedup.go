package transforms

import (
	"context"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/mtime"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/state"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/timers"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/kamstrup/intmap"
)

func init() {
	register.DoFn2x0[EventBatch, func(beam.EventTime, int64, EventBatch)](&batchForDedupFn{})
	register.Emitter3[beam.EventTime, int64, EventBatch]()
	register.DoFn6x0[context.Context, state.Provider, timers.Provider, int64, EventBatch, func(beam.EventTime, EventBatch)](&dedupFn{})
	register.Emitter2[beam.EventTime, EventBatch]()
}

// DedupConfig sets the horizon and the parallelism of Dedup.
type DedupConfig struct {
	// Horizon is how long, in event time, an event_id is remembered: a repeat
	// is caught if it carries the same timestamp as the first copy (a retry
	// does) and arrives before the watermark passes the end of the first
	// copy's horizon epoch plus one more horizon, or one horizon past the
	// first copy's arrival, whichever is later (so a repeat of a very late
	// event is caught too).
	Horizon time.Duration
	// Buckets spreads the ids over this many keys per horizon epoch.
	Buckets int
	// MaxBatch caps the events buffered per key before a batch is sent on.
	MaxBatch int
	// MaxBuffered caps the events buffered over all keys: past it every
	// pending batch is sent on. It bounds the memory of a large bundle
	// (a file lane's bundle is its whole share of the input).
	MaxBuffered int
	// Lanes is how many lanes the keys are spread over (1 to MaxLanes); the
	// lane of a key is LaneOfKey(key).
	Lanes int
	// CacheIDs bounds the ids a worker process keeps decoded in memory
	// across bundles (about 16 bytes an id), over every Dedup instance it
	// runs; past it the least recently used keys are dropped and read again
	// from state when next seen.
	CacheIDs int
	// ExpireOnWatermark releases an epoch's ids when the watermark passes
	// its expiry even if the wall clock has not (see dedupFn.OnTimer). Set
	// it when the watermark may lead the wall clock: a Pub/Sub read stamped
	// by a producer's timestamp attribute, whose clock may run ahead.
	ExpireOnWatermark bool
}

// MaxLanes is the most lanes a dedup key can name.
const MaxLanes = 16

// LaneOfKey returns the lane a dedup key belongs to.
func LaneOfKey(key int64) int { return int(key & (MaxLanes - 1)) }

// DefaultDedupConfig is what the flags default to.
//
// MaxBuffered: a 1M-event file run holds 500,000 events a lane in its one
// bundle, spread over a few hundred keys that never fill a batch; buffered
// until the end of the bundle they were 425 MB of the heap. 65,536 events
// (about 30 MB) still make batches of a few hundred events.
var DefaultDedupConfig = DedupConfig{Horizon: 10 * time.Minute, Buckets: 64, MaxBatch: 4096, MaxBuffered: 65536, CacheIDs: 8 << 20}

// Dedup drops repeats of an event_id and counts them. It takes and returns
// batches of events (EventBatch). It is built for what a
// shuffle costs on Prism and Dataflow: instead of one element and one timer per
// id, each bundle groups its events by (horizon epoch, hash bucket) into
// batches; one stateful step per key keeps the 64-bit hashes of the ids it
// has seen and forgets them with one event-time timer per key when the epoch
// has passed. Dedup works in the global window, so nothing is ever dropped as
// late here; the output events carry their own event timestamps.
//
// Two distinct ids collide on a 64-bit hash with probability about n²/2⁶⁵ per
// key (under 10⁻⁹ for a million ids in a key), and such a collision would be
// counted as a duplicate.
func Dedup(s beam.Scope, events beam.PCollection, cfg DedupConfig) beam.PCollection {
	s = s.Scope("Dedup")
	return DedupBatches(s, BatchForDedup(s, events, cfg), cfg)
}

func (cfg DedupConfig) withDefaults() DedupConfig {
	if cfg.Buckets <= 0 {
		cfg.Buckets = DefaultDedupConfig.Buckets
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = DefaultDedupConfig.MaxBatch
	}
	if cfg.MaxBuffered <= 0 {
		cfg.MaxBuffered = DefaultDedupConfig.MaxBuffered
	}
	if cfg.CacheIDs <= 0 {
		cfg.CacheIDs = DefaultDedupConfig.CacheIDs
	}
	cfg.Lanes = min(max(cfg.Lanes, 1), MaxLanes)
	return cfg
}

// BatchForDedup is the first half of Dedup: it groups each bundle's events
// into KV<dedup key, EventBatch>. Build uses the halves directly to spread
// the keys over several lanes (see pipelines.Build).
func BatchForDedup(s beam.Scope, events beam.PCollection, cfg DedupConfig) beam.PCollection {
	s = s.Scope("BatchForDedup")
	cfg = cfg.withDefaults()
	return beam.ParDo(s, &batchForDedupFn{HorizonMillis: cfg.Horizon.Milliseconds(), Buckets: cfg.Buckets, MaxBatch: cfg.MaxBatch,
		MaxBuffered: cfg.MaxBuffered, Lanes: cfg.Lanes}, events)
}

// DedupBatches is the second half of Dedup: the keyed, stateful step that
// passes the first copy of each id and counts the rest.
//
// It owns its input: it compacts the batches it is given in place rather
// than copying the events it keeps, so batches must have no other consumer
// (in Build and Dedup they are BatchForDedup's, through the shuffle a
// stateful step needs, and feed DedupBatches alone).
func DedupBatches(s beam.Scope, batches beam.PCollection, cfg DedupConfig) beam.PCollection {
	s = s.Scope("DedupBatches")
	cfg = cfg.withDefaults()
	return beam.ParDo(s, &dedupFn{HorizonMillis: cfg.Horizon.Milliseconds(), Buckets: cfg.Buckets, CacheIDs: cfg.CacheIDs,
		ExpireOnWatermark: cfg.ExpireOnWatermark,
		Seen:              state.MakeBagState[[]byte]("seen"), Meta: state.MakeValueState[[]byte]("meta"), Expiry: timers.InEventTime("expiry")}, batches)
}

// dedupKey packs (epoch, bucket, lane) into one int64: cheap to encode and
// hash. The low four bits are the lane, bucket modulo lanes.
func dedupKey(eventTime, horizonMillis int64, buckets, lanes int, idHash uint64) int64 {
	bucket := int64(idHash % uint64(buckets))
	return ((eventTime/horizonMillis)*int64(buckets)+bucket)<<4 | bucket%int64(max(lanes, 1))
}

// epochOfKey is the horizon epoch a dedup key belongs to.
func epochOfKey(key int64, buckets int) int64 { return (key >> 4) / int64(buckets) }

// batchForDedupFn buffers a bundle's events by dedup key and emits one batch
// per key at the end of the bundle, or when the buffer holds MaxBuffered
// events or one key holds MaxBatch; either limit sends every pending batch
// on.
//
// It holds the input batches themselves (never altered: a collection may
// feed several steps) and each held event's key, and builds each key's batch
// only when it sends them, at its exact size. Appending every event to its
// key's growing batch as it came allocated three times the events' bytes (a
// 1M-event run: 1.67 GB for 470 MB of events, a third of the run's
// allocation up to its peak) in slices the collector then had to clear and
// scan.
type batchForDedupFn struct {
	HorizonMillis int64
	Buckets       int
	MaxBatch      int
	MaxBuffered   int
	Lanes         int

	held    []EventBatch // input batches not yet sent on, in order
	slots   []int32      // every held event's index in pending, in order: as many as the events held
	pending []pendingKey // keys of the held events, by first appearance
	slot    map[int64]int32
}

// pendingKey is one key's share of the held events.
type pendingKey struct {
	key     int64
	n       int
	minTime int64
}

func (f *batchForDedupFn) ProcessElement(b EventBatch, emit func(beam.EventTime, int64, EventBatch)) {
	if f.slot == nil {
		f.slot = make(map[int64]int32)
	}
	for events := b.Events; len(events) > 0; {
		n, full := f.hold(events)
		events = events[n:]
		if full || (f.MaxBuffered > 0 && len(f.slots) >= f.MaxBuffered) {
			f.FinishBundle(emit)
		}
	}
}

// hold takes events until one key holds MaxBatch and returns how many it
// took and whether it stopped for that key.
func (f *batchForDedupFn) hold(events []Event) (n int, full bool) {
	for _, ev := range events {
		k := dedupKey(ev.EventTime, f.HorizonMillis, f.Buckets, f.Lanes, ev.DedupHash())
		i, ok := f.slot[k]
		if !ok {
			i = int32(len(f.pending))
			f.slot[k] = i
			f.pending = append(f.pending, pendingKey{key: k, minTime: ev.EventTime})
		}
		f.slots = append(f.slots, i)
		p := &f.pending[i]
		p.n++
		p.minTime = min(p.minTime, ev.EventTime)
		n++
		if p.n >= f.MaxBatch {
			full = true
			break
		}
	}
	f.held = append(f.held, EventBatch{Events: events[:n]})
	return n, full
}

// FinishBundle sends every pending batch on: one exact-size slice a key,
// filled in the order the events came.
func (f *batchForDedupFn) FinishBundle(emit func(beam.EventTime, int64, EventBatch)) {
	out := make([][]Event, len(f.pending))
	for i, p := range f.pending {
		out[i] = make([]Event, 0, p.n)
	}
	j := 0
	for _, b := range f.held {
		for _, ev := range b.Events {
			i := f.slots[j]
			out[i] = append(out[i], ev)
			j++
		}
	}
	for i, p := range f.pending {
		emit(mtime.FromMilliseconds(p.minTime), p.key, EventBatch{Events: out[i]})
	}
	clear(f.held) // let the sent batches go
	f.held, f.slots, f.pending = f.held[:0], f.slots[:0], f.pending[:0]
	clear(f.slot)
}

// dedupFn keeps, per (epoch, bucket) key, the 64-bit hashes of the ids seen
// so far, and remembers them across bundles.
//
// Every state request is a round trip to the runner. On Prism under load (a
// streaming run sharing two cores with the Pub/Sub emulator) one took 50-100
// ms, and the step used to make four or five a batch (read the key's ids,
// write them all back, read and write the expiry) and decode the key's whole
// set in every bundle, a cost growing with the square of an epoch's events.
// So now:
//
//   - the ids live in a bag, and a batch appends only its new hashes (one
//     request a batch);
//   - the decoded sets stay in memory across bundles (a cache bounded by
//     CacheIDs), so a key's bag is read only when the cache cannot vouch for
//     it;
//   - the cache vouches for a key by a generation: the first batch of a
//     bundle that adds ids to a key writes a new random generation beside
//     them (with the expiry, in one small value), and the cached set carries
//     the generation it was built at. A bundle that fails leaves the old
//     generation in the runner's state, so its retry, or another worker,
//     finds a mismatch and rebuilds from the committed bag: a failed attempt
//     can never make a retried event look like a repeat.
type dedupFn struct {
	HorizonMillis     int64
	Buckets           int
	CacheIDs          int
	ExpireOnWatermark bool
	Seen              state.Bag[[]byte]   // chunks of 8-byte little-endian id hashes
	Meta              state.Value[[]byte] // dedupMeta, encoded
	Expiry            timers.EventTime

	cache  map[int64]*seenIDs // by key, across bundles
	share  *cacheShare        // the ids cache holds, as counted in the process's account
	clock  int64              // bumped per batch; orders keys for eviction
	bundle map[int64]*bundleKey
}

// cacheAccount counts the ids every Dedup instance of a process holds in its
// cache. The SDK harness builds an instance per plan, and a plan per bundle
// it runs at once, so a bound per instance would multiply by the runner's
// concurrency: CacheIDs bounds the process's total instead.
type cacheAccount struct{ ids atomic.Int64 }

// dedupCacheAccount is the process's account.
var dedupCacheAccount = &cacheAccount{}

// cacheShare is one instance's part of an account. The harness never tears
// an instance down (a failed bundle's plan is dropped whole), so the part
// goes back to the account when the instance is garbage collected.
type cacheShare struct {
	ids     atomic.Int64
	account *cacheAccount
}

// addCached counts n more (or, negative, fewer) ids in the cache.
func (f *dedupFn) addCached(n int) {
	if f.share == nil {
		f.share = &cacheShare{account: dedupCacheAccount}
		runtime.AddCleanup(f, func(s *cacheShare) { s.account.ids.Add(-s.ids.Load()) }, f.share)
	}
	f.share.ids.Add(int64(n))
	f.share.account.ids.Add(int64(n))
}

// seenIDs is one key's set of id hashes, as of generation gen.
type seenIDs struct {
	set     *intmap.Set[uint64]
	gen     int64
	lastUse int64
}

// bundleKey is what the current bundle knows of a key.
type bundleKey struct {
	ids  *seenIDs
	meta dedupMeta
	set  bool // the key has a meta: in state when the bundle read it, or written since
	// wrote: this bundle wrote a new generation for the key.
	wrote bool
}

// dedupMeta is a key's small value: the generation of its ids and when its
// expiry timer is set for (unix ms).
type dedupMeta struct {
	Gen      int64
	ExpiryAt int64
}

func (m dedupMeta) encode() []byte {
	return binary.LittleEndian.AppendUint64(binary.LittleEndian.AppendUint64(make([]byte, 0, 16), uint64(m.Gen)), uint64(m.ExpiryAt))
}

func decodeDedupMeta(b []byte) (dedupMeta, bool) {
	if len(b) != 16 {
		return dedupMeta{}, false
	}
	return dedupMeta{Gen: int64(binary.LittleEndian.Uint64(b)), ExpiryAt: int64(binary.LittleEndian.Uint64(b[8:]))}, true
}

// readMeta reads the key's meta from state: false when it has none (or an
// unreadable one). A state read failure is the runner's to retry; it loses
// nothing, so it panics.
func (f *dedupFn) readMeta(sp state.Provider) (dedupMeta, bool) {
	raw, ok, err := f.Meta.Read(sp)
	if err != nil {
		panic(err)
	}
	meta, valid := decodeDedupMeta(raw)
	return meta, ok && valid
}

func (f *dedupFn) StartBundle(_ context.Context, _ func(beam.EventTime, EventBatch)) {
	f.bundle = map[int64]*bundleKey{}
}

// key returns what the bundle knows of key, reading the key's meta once a
// bundle and its bag only when the cache has no set of that generation.
func (f *dedupFn) key(ctx context.Context, sp state.Provider, key int64, extra int) *bundleKey {
	if bk := f.bundle[key]; bk != nil {
		return bk
	}
	if f.bundle == nil {
		f.bundle = map[int64]*bundleKey{}
	}
	if f.cache == nil {
		f.cache = map[int64]*seenIDs{}
	}
	bk := &bundleKey{}
	bk.meta, bk.set = f.readMeta(sp)
	ids := f.cache[key]
	switch {
	case !bk.set:
		// Nothing committed for the key: whatever a cache holds for it is
		// from an attempt that failed, or from an expired epoch.
		f.drop(key)
		ids = &seenIDs{set: intmap.NewSet[uint64](extra)}
	case ids == nil || ids.gen != bk.meta.Gen:
		f.drop(key)
		chunks, _, err := f.Seen.Read(sp)
		if err != nil {
			panic(err)
		}
		n := 0
		for _, c := range chunks {
			n += len(c) / 8
		}
		ids = &seenIDs{set: intmap.NewSet[uint64](n + extra), gen: bk.meta.Gen}
		for _, c := range chunks {
			for i := 0; i+8 <= len(c); i += 8 {
				ids.set.Add(binary.LittleEndian.Uint64(c[i:]))
			}
		}
		counterDedupRebuilt.Inc(ctx, 1)
	}
	if f.cache[key] != ids {
		f.cache[key] = ids
		f.addCached(ids.set.Len())
	}
	bk.ids = ids
	f.bundle[key] = bk
	return bk
}

// drop forgets the cached set of key.
func (f *dedupFn) drop(key int64) {
	if ids := f.cache[key]; ids != nil {
		f.addCached(-ids.set.Len())
		delete(f.cache, key)
	}
}

// evict drops the least recently used sets the current bundle does not use
// until the process's caches hold at most CacheIDs ids, or this one holds
// none it may drop. A dropped key is rebuilt from its bag when it is next
// seen.
func (f *dedupFn) evict() {
	for f.CacheIDs > 0 && f.share != nil && f.share.account.ids.Load() > int64(f.CacheIDs) {
		victim, oldest := int64(0), int64(math.MaxInt64)
		for k, ids := range f.cache {
			if f.bundle[k] == nil && ids.lastUse < oldest {
				victim, oldest = k, ids.lastUse
			}
		}
		if oldest == math.MaxInt64 {
			return // every cached key is in use by this bundle
		}
		f.drop(victim)
	}
}

func (f *dedupFn) ProcessElement(ctx context.Context, sp state.Provider, tp timers.Provider, key int64, batch EventBatch, emit func(beam.EventTime, EventBatch)) {
	bk := f.key(ctx, sp, key, len(batch.Events))
	ids := bk.ids
	f.clock++
	ids.lastUse = f.clock
	var dups int64
	var dropped []uint64 // deliveries of the repeats, settled here (settle.go)
	// Kept events move down in place: the batch was decoded from the
	// shuffle for this step alone (see DedupBatches), and a copy of every
	// event was 460 MB of a 1M-event run's allocation.
	out := batch.Events[:0]
	minTime := int64(math.MaxInt64)
	var lastArrival int64
	// A new chunk a batch: the state provider keeps the value it was given.
	chunk := make([]byte, 0, 8*len(batch.Events))
	for i := range batch.Events {
		ev := &batch.Events[i]
		h := ev.DedupHash()
		if !ids.set.Add(h) {
			dups++
			dropped = AppendDelivery(dropped, ev.Delivery)
			continue
		}
		chunk = binary.LittleEndian.AppendUint64(chunk, h)
		out = append(out, *ev)
		minTime = min(minTime, ev.EventTime)
		lastArrival = max(lastArrival, ev.IngestTime)
	}
	unique := int64(len(out))
	f.addCached(len(out))
	if unique > 0 {
		// Forget the epoch one horizon after it ends, by then a retry of its
		// events has had a full horizon of event time to arrive; but never
		// sooner than one horizon after the newest arrival kept. Without
		// that, on a streaming runner, an event arriving after its epoch's
		// expiry would set a timer already due, and its repeat, a moment
		// later, would find the ids forgotten.
		epoch := epochOfKey(key, f.Buckets)
		at := max((epoch+2)*f.HorizonMillis, lastArrival+f.HorizonMillis)
		later := !bk.set || at > bk.meta.ExpiryAt
		if later {
			bk.meta.ExpiryAt = max(bk.meta.ExpiryAt, at)
			f.Expiry.Set(tp, time.UnixMilli(bk.meta.ExpiryAt), timers.WithNoOutputTimestamp())
		}
		if !bk.wrote || later {
			if !bk.wrote {
				bk.meta.Gen = newGeneration()
				bk.wrote = true
			}
			if err := f.Meta.Write(sp, bk.meta.encode()); err != nil {
				panic(err)
			}
			bk.set = true
		}
		if err := f.Seen.Add(sp, chunk); err != nil {
			panic(err)
		}
		ids.gen = bk.meta.Gen
		// The batch's earliest event time holds the watermark back for all
		// of its events; each keeps its own EventTime for windowing.
		emit(mtime.FromMilliseconds(minTime), EventBatch{Events: out})
	}
	f.evict()
	// A repeat ends here; its source decides when its message may go (see
	// settle.go).
	SettleRepeats(dropped)
	counterDuplicates.Inc(ctx, dups)
	counterUnique.Inc(ctx, unique)
}

// newGeneration returns a random, non-zero generation.
func newGeneration() int64 {
	for {
		if g := rand.Int64(); g != 0 {
			return g
		}
	}
}

// OnTimer releases an epoch's ids once the watermark has passed its horizon,
// unless the watermark got there before the wall clock did.
//
// The watermark of a live source trails the wall clock, so an expiry timer,
// set a horizon past the newest arrival, fires a horizon after it at the
// earliest. It fires sooner only when the watermark jumps to the end of
// time: a drain, or the end of a bounded input. Events read before the jump
// may then still be on their way to this step, and a repeat among them would
// find its id forgotten: one did, in a 20,000 events/s streaming run drained
// a moment after its last read. The job is ending and its state with it, so
// the ids are kept.
//
// When the watermark may lead the wall clock (ExpireOnWatermark: event time
// from a producer's attribute, whose clock may be ahead), a timer due before
// the wall clock is no sign of a drain, and a key kept then would be kept for
// good, with no timer left to release it: the ids are released.
func (f *dedupFn) OnTimer(ctx context.Context, sp state.Provider, tp timers.Provider, key int64, timer timers.Context, emit func(beam.EventTime, EventBatch)) {
	if meta, ok := f.readMeta(sp); ok && !f.ExpireOnWatermark && time.Now().UnixMilli() < meta.ExpiryAt {
		counterDedupKept.Inc(ctx, 1)
		return
	}
	f.drop(key)
	delete(f.bundle, key)
	if err := f.Seen.Clear(sp); err != nil {
		panic(err)
	}
	if err := f.Meta.Clear(sp); err != nil {
		panic(err)
	}
	counterDedupExpired.Inc(ctx, 1)
}
