package transforms

import (
	"context"
	"encoding/binary"
	"math"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/mtime"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/state"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/timers"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/zeebo/xxh3"
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
var DefaultDedupConfig = DedupConfig{Horizon: 10 * time.Minute, Buckets: 64, MaxBatch: 4096, MaxBuffered: 65536}

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
func DedupBatches(s beam.Scope, batches beam.PCollection, cfg DedupConfig) beam.PCollection {
	s = s.Scope("DedupBatches")
	cfg = cfg.withDefaults()
	return beam.ParDo(s, &dedupFn{HorizonMillis: cfg.Horizon.Milliseconds(), Buckets: cfg.Buckets, Seen: state.MakeValueState[[]byte]("seen"),
		ExpiryAt: state.MakeValueState[int64]("expiry_at"), Expiry: timers.InEventTime("expiry")}, batches)
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
// per key at the end of the bundle, when a key's batch is full, or when the
// buffer holds MaxBuffered events.
type batchForDedupFn struct {
	HorizonMillis int64
	Buckets       int
	MaxBatch      int
	MaxBuffered   int
	Lanes         int

	buf      map[int64]*pendingBatch
	buffered int
}

type pendingBatch struct {
	events  []Event
	minTime int64
}

func (f *batchForDedupFn) ProcessElement(b EventBatch, emit func(beam.EventTime, int64, EventBatch)) {
	if f.buf == nil {
		f.buf = make(map[int64]*pendingBatch)
	}
	for _, ev := range b.Events {
		k := dedupKey(ev.EventTime, f.HorizonMillis, f.Buckets, f.Lanes, xxh3.HashString(ev.EventID))
		p := f.buf[k]
		if p == nil {
			p = &pendingBatch{minTime: ev.EventTime}
			f.buf[k] = p
		}
		p.events = append(p.events, ev)
		p.minTime = min(p.minTime, ev.EventTime)
		f.buffered++
		if len(p.events) >= f.MaxBatch {
			emit(mtime.FromMilliseconds(p.minTime), k, EventBatch{Events: p.events})
			delete(f.buf, k)
			f.buffered -= len(p.events)
		}
	}
	if f.MaxBuffered > 0 && f.buffered >= f.MaxBuffered {
		f.FinishBundle(emit)
	}
}

func (f *batchForDedupFn) FinishBundle(emit func(beam.EventTime, int64, EventBatch)) {
	for k, p := range f.buf {
		emit(mtime.FromMilliseconds(p.minTime), k, EventBatch{Events: p.events})
	}
	f.buf, f.buffered = nil, 0
}

// dedupFn keeps, per (epoch, bucket) key, the hashes of the ids seen so far
// as a flat little-endian []byte: 8 bytes an id, one state write per batch.
type dedupFn struct {
	HorizonMillis int64
	Buckets       int
	Seen          state.Value[[]byte]
	ExpiryAt      state.Value[int64] // unix ms the Expiry timer is set for
	Expiry        timers.EventTime

	// ids holds, for the current bundle only, the decoded ids of each key
	// the bundle has touched. A bundle brings several batches of a key
	// (one per upstream bundle), and decoding the key's whole state for
	// each of them made Dedup's cost grow with the square of the events of
	// an epoch: at 20,000 events/s it was most of the pipeline's CPU. Within
	// a bundle only this DoFn writes the key's state, so the cache is exact;
	// a new bundle (a retry too) starts empty.
	ids map[int64]*seenIDs
}

// seenIDs is one key's state, decoded: the set and the bytes it came from,
// which grow together.
type seenIDs struct {
	set map[uint64]struct{}
	raw []byte
}

func (f *dedupFn) StartBundle(_ context.Context, _ func(beam.EventTime, EventBatch)) {
	f.ids = map[int64]*seenIDs{}
}

// seen returns the key's ids, reading and decoding its state once a bundle.
func (f *dedupFn) seen(sp state.Provider, key int64, extra int) *seenIDs {
	if ids := f.ids[key]; ids != nil {
		return ids
	}
	raw, _, err := f.Seen.Read(sp)
	if err != nil {
		panic(err) // a state read failure is the runner's to retry; it loses nothing
	}
	ids := &seenIDs{set: make(map[uint64]struct{}, len(raw)/8+extra), raw: raw}
	for i := 0; i+8 <= len(raw); i += 8 {
		ids.set[binary.LittleEndian.Uint64(raw[i:])] = struct{}{}
	}
	if f.ids == nil {
		f.ids = map[int64]*seenIDs{}
	}
	f.ids[key] = ids
	return ids
}

func (f *dedupFn) ProcessElement(ctx context.Context, sp state.Provider, tp timers.Provider, key int64, batch EventBatch, emit func(beam.EventTime, EventBatch)) {
	ids := f.seen(sp, key, len(batch.Events))
	var dups, unique int64
	out := make([]Event, 0, len(batch.Events))
	minTime := int64(math.MaxInt64)
	var lastArrival int64
	for i := range batch.Events {
		ev := &batch.Events[i]
		h := xxh3.HashString(ev.EventID)
		if _, ok := ids.set[h]; ok {
			dups++
			continue
		}
		ids.set[h] = struct{}{}
		ids.raw = binary.LittleEndian.AppendUint64(ids.raw, h)
		unique++
		out = append(out, *ev)
		minTime = min(minTime, ev.EventTime)
		lastArrival = max(lastArrival, ev.IngestTime)
	}
	if len(out) > 0 {
		// The batch's earliest event time holds the watermark back for all
		// of its events; each keeps its own EventTime for windowing.
		emit(mtime.FromMilliseconds(minTime), EventBatch{Events: out})
	}
	if unique > 0 {
		if err := f.Seen.Write(sp, ids.raw); err != nil {
			panic(err)
		}
	}
	if unique > 0 {
		// Forget the epoch one horizon after it ends, by then a retry of its
		// events has had a full horizon of event time to arrive; but never
		// sooner than one horizon after the newest arrival kept. Without
		// that, on a streaming runner, an event arriving after its epoch's
		// expiry would set a timer already due, and its repeat, a moment
		// later, would find the ids forgotten.
		epoch := epochOfKey(key, f.Buckets)
		at := max((epoch+2)*f.HorizonMillis, lastArrival+f.HorizonMillis)
		cur, set, err := f.ExpiryAt.Read(sp)
		if err != nil {
			panic(err)
		}
		if !set || at > cur {
			if err := f.ExpiryAt.Write(sp, at); err != nil {
				panic(err)
			}
			f.Expiry.Set(tp, time.UnixMilli(at), timers.WithNoOutputTimestamp())
		}
	}
	counterDuplicates.Inc(ctx, dups)
	counterUnique.Inc(ctx, unique)
}

// OnTimer releases an epoch's ids once the watermark has passed its horizon.
func (f *dedupFn) OnTimer(ctx context.Context, sp state.Provider, tp timers.Provider, key int64, timer timers.Context, emit func(beam.EventTime, EventBatch)) {
	delete(f.ids, key)
	if err := f.Seen.Clear(sp); err != nil {
		panic(err)
	}
	if err := f.ExpiryAt.Clear(sp); err != nil {
		panic(err)
	}
	counterDedupExpired.Inc(ctx, 1)
}
