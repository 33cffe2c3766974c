package transforms

import (
	"context"
	"fmt"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/mtime"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/state"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/timers"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/passert"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"github.com/zeebo/xxh3"
)

func init() {
	register.Function1x1(eventIDOf)
	register.Function1x1(eventIdentity)
	register.Function1x1(eventReplayOf)
	register.Function1x0(keepDelivery)
}

func eventIDOf(e Event) string { return e.EventID }

func eventReplayOf(e Event) string { return e.EventID + " replay_of=" + e.ReplayOf }

// eventIdentity is what a unique event must keep through Dedup: every field
// but the one copy's own arrival (the copies differ only there).
func eventIdentity(e Event) string {
	return fmt.Sprintf("%s|%s|%d|%s|%s|%s|late=%v", e.EventID, e.EventType, e.EventTime, e.UserID, e.CampaignID, e.Platform, e.Late)
}

// dedupInput is a small stream with repeats: retries with the same timestamp,
// repeats with another timestamp in the same horizon epoch, and ids that
// differ only slightly.
func dedupInput(horizon time.Duration) (events []Event, wantIDs []any) {
	// The start of a horizon epoch, so every offset below stays in it.
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).Truncate(horizon).UnixMilli()
	ev := func(id string, offset time.Duration, ingest int64) Event {
		return Event{EventID: id, EventType: TypeView, EventTime: base + offset.Milliseconds(), UserID: "u-" + id,
			CampaignID: "c", Platform: "meta", IngestTime: base + offset.Milliseconds() + ingest, Source: "t"}
	}
	events = []Event{
		ev("a", 0, 10), ev("a", 0, 20), ev("a", 0, 30), // retries
		ev("b", time.Second, 0), ev("b", 5*time.Minute, 0), // same epoch, other time
		ev("c", 2*time.Second, 0),
		ev("d", time.Minute, 0), ev("d", time.Minute, 1),
		ev("e", 3*time.Minute, 0),
		ev("A", 0, 0), // ids are case-sensitive
		ev("a ", 0, 0),
	}
	for i := 0; i < 12; i++ {
		id := fmt.Sprintf("id-%02d", i)
		events = append(events, ev(id, time.Duration(i)*time.Second, 0))
		if i%3 == 0 {
			events = append(events, ev(id, time.Duration(i)*time.Second, 5))
		}
	}
	seen := map[string]bool{}
	for _, e := range events {
		if !seen[e.EventID] {
			seen[e.EventID] = true
			wantIDs = append(wantIDs, e.EventID)
		}
	}
	return events, wantIDs
}

func TestDedupOnPrism(t *testing.T) {
	tests := []struct {
		name string
		cfg  DedupConfig
	}{
		{"defaults", DefaultDedupConfig},
		{"four buckets one lane", DedupConfig{Horizon: 10 * time.Minute, Buckets: 4, Lanes: 1}},
		// One key and batches of two: repeats cross batches of the same key,
		// so the state must carry the seen ids from one batch to the next.
		{"one bucket small batches", DedupConfig{Horizon: time.Hour, Buckets: 1, MaxBatch: 2}},
		{"many lanes", DedupConfig{Horizon: 10 * time.Minute, Buckets: 8, Lanes: 5}},
		// The whole buffer sent on every three events: repeats cross batches.
		{"small buffer", DedupConfig{Horizon: 10 * time.Minute, Buckets: 4, MaxBuffered: 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			events, want := dedupInput(tt.cfg.Horizon)
			if len(want) >= len(events) {
				t.Fatal("test input has no repeats")
			}
			ptest.BuildAndRun(t, func(s beam.Scope) {
				out := Dedup(s, BatchEvents(s, beam.CreateList(s, events)), tt.cfg)
				passert.Equals(s, beam.ParDo(s, eventIDOf, Unbatch(s, out)), want...)
			})
		})
	}
}

// TestDedupTellsAReplayFromItsFirstCopy: Enrich runs after Dedup, so the
// first copy of an event it dead-lettered is already in Dedup's state when
// cmd/replay sends the dead letter back into the running job. The replay
// (ReplayOf set) must pass as an event of its own; a second replay of the
// same dead letter is a repeat of the first replay, one of another dead
// letter is not. Without DedupHash, every replay is a duplicate.
func TestDedupTellsAReplayFromItsFirstCopy(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixMilli()
	ev := func(id, replayOf string) Event {
		return Event{EventID: id, EventType: TypeView, EventTime: at, IngestTime: at, UserID: "u", CampaignID: "c",
			Platform: "meta", Source: "t", ReplayOf: replayOf}
	}
	events := []Event{
		ev("x", ""), ev("x", ""), // the first copy and a retry
		ev("x", "dl-1"), ev("x", "dl-1"), // a replay, and the same replay again
		ev("x", "dl-2"), // a replay of another dead letter of x
		ev("y", ""), ev("y", "dl-1"),
		// An id holding what the replay's identity was once joined with.
		ev("z\x00replay_of\x00dl-1", ""), ev("z", "dl-1"),
	}
	ptest.BuildAndRun(t, func(s beam.Scope) {
		out := Dedup(s, BatchEvents(s, beam.CreateList(s, events)), DefaultDedupConfig)
		passert.Equals(s, beam.ParDo(s, eventReplayOf, Unbatch(s, out)),
			"x replay_of=", "x replay_of=dl-1", "x replay_of=dl-2", "y replay_of=", "y replay_of=dl-1",
			"z\x00replay_of\x00dl-1 replay_of=", "z replay_of=dl-1")
	})
}

// The two halves of Dedup, as Build wires them, keep the events themselves.
func TestDedupHalvesKeepEvents(t *testing.T) {
	cfg := DedupConfig{Horizon: 10 * time.Minute, Buckets: 4, Lanes: 2}
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixMilli()
	events := []Event{
		{EventID: "x", EventType: TypeClick, EventTime: base, UserID: "u1", CampaignID: "c1", Platform: "x", Late: true},
		{EventID: "x", EventType: TypeClick, EventTime: base, UserID: "u1", CampaignID: "c1", Platform: "x", Late: true, IngestTime: 9},
		{EventID: "y", EventType: TypeConversion, EventTime: base + 1, UserID: "u2", CampaignID: "c2", Platform: "meta"},
	}
	ptest.BuildAndRun(t, func(s beam.Scope) {
		batches := BatchForDedup(s, BatchEvents(s, beam.CreateList(s, events)), cfg)
		out := DedupBatches(s, batches, cfg)
		passert.Equals(s, beam.ParDo(s, eventIdentity, Unbatch(s, out)), eventIdentity(events[0]), eventIdentity(events[2]))
	})
}

// BatchForDedup never holds more than MaxBuffered events, and every event it
// takes leaves in exactly one batch.
func TestBatchForDedupBoundsItsBuffer(t *testing.T) {
	events, _ := dedupInput(10 * time.Minute)
	const maxBuffered = 7
	f := &batchForDedupFn{HorizonMillis: 600_000, Buckets: 4, MaxBatch: 5, MaxBuffered: maxBuffered, Lanes: 1}
	var out []Event
	emit := func(_ beam.EventTime, _ int64, b EventBatch) { out = append(out, b.Events...) }
	for i := 0; i < len(events); i += 4 {
		f.ProcessElement(EventBatch{Events: events[i:min(i+4, len(events))]}, emit)
		if len(f.slots) >= maxBuffered {
			t.Fatalf("after %d events the buffer holds %d, more than %d", i+4, len(f.slots), maxBuffered)
		}
		held, pending := 0, 0
		for _, b := range f.held {
			held += len(b.Events)
		}
		for _, p := range f.pending {
			pending += p.n
		}
		if held != len(f.slots) || pending != len(f.slots) {
			t.Fatalf("%d slots, the held batches hold %d, the keys count %d", len(f.slots), held, pending)
		}
	}
	f.FinishBundle(emit)
	if len(out) != len(events) {
		t.Fatalf("%d events in, %d out", len(events), len(out))
	}
}

// Each batch BatchForDedup sends holds one key's events, in the order they
// came, at most MaxBatch of them, timestamped with the earliest; together the
// batches hold every event once.
func TestBatchForDedupGroupsByKeyInOrder(t *testing.T) {
	const horizon, buckets, lanes, maxBatch = 60_000, 3, 2, 50
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixMilli()
	var events []Event
	for i := range 1000 {
		// Out of order in event time, over several epochs and buckets.
		events = append(events, Event{EventID: fmt.Sprintf("id-%d", i%700), EventTime: base + int64((i*7919)%300_000)})
	}
	for _, maxBuffered := range []int{0, 64, 1000} {
		f := &batchForDedupFn{HorizonMillis: horizon, Buckets: buckets, MaxBatch: maxBatch, MaxBuffered: maxBuffered, Lanes: lanes}
		type sent struct {
			ts     beam.EventTime
			key    int64
			events []Event
		}
		var out []sent
		emit := func(ts beam.EventTime, k int64, b EventBatch) { out = append(out, sent{ts, k, b.Events}) }
		for i := 0; i < len(events); i += 37 {
			f.ProcessElement(EventBatch{Events: events[i:min(i+37, len(events))]}, emit)
		}
		f.FinishBundle(emit)

		// Every event's position in the input: ids repeat, times do not with the id.
		pos := map[[2]int64]int{}
		for i, ev := range events {
			pos[[2]int64{int64(xxh3.HashString(ev.EventID)), ev.EventTime}] = i
		}
		if len(pos) != len(events) {
			t.Fatalf("the input's (id, time) pairs are not distinct: %d of %d", len(pos), len(events))
		}
		seen := map[int]bool{}
		for _, b := range out {
			if len(b.events) == 0 || len(b.events) > maxBatch {
				t.Fatalf("maxBuffered %d: a batch of %d events (MaxBatch %d)", maxBuffered, len(b.events), maxBatch)
			}
			last, earliest := -1, b.events[0].EventTime
			for _, ev := range b.events {
				if k := dedupKey(ev.EventTime, horizon, buckets, lanes, xxh3.HashString(ev.EventID)); k != b.key {
					t.Fatalf("maxBuffered %d: event %s has key %d in the batch of key %d", maxBuffered, ev.EventID, k, b.key)
				}
				i := pos[[2]int64{int64(xxh3.HashString(ev.EventID)), ev.EventTime}]
				if i <= last {
					t.Fatalf("maxBuffered %d: key %d sends input %d after input %d", maxBuffered, b.key, i, last)
				}
				if seen[i] {
					t.Fatalf("maxBuffered %d: input %d sent twice", maxBuffered, i)
				}
				seen[i], last = true, i
				earliest = min(earliest, ev.EventTime)
			}
			if b.ts != mtime.FromMilliseconds(earliest) {
				t.Fatalf("maxBuffered %d: batch of key %d timestamped %v, its earliest event %v", maxBuffered, b.key, b.ts, mtime.FromMilliseconds(earliest))
			}
		}
		if len(seen) != len(events) {
			t.Fatalf("maxBuffered %d: %d events in, %d sent", maxBuffered, len(events), len(seen))
		}
	}
}

// BatchForDedup copies each event once, into a batch of the size it is sent
// at. Appending events to growing batches allocated about three times their
// bytes.
func TestBatchForDedupAllocatesTheEventsOnce(t *testing.T) {
	const n = 1 << 16
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixMilli()
	events := make([]Event, n)
	for i := range events {
		// 300 keys: 150 ten-minute epochs, two buckets, as a local file run's bundle.
		events[i] = Event{EventID: fmt.Sprintf("id-%d", i), EventTime: base + int64(i%150)*600_000}
	}
	f := &batchForDedupFn{HorizonMillis: 600_000, Buckets: 2, MaxBatch: 4096, MaxBuffered: n, Lanes: 2}
	sent := 0
	emit := func(_ beam.EventTime, _ int64, b EventBatch) { sent += len(b.Events) }
	got := bytesAllocatedBy(func() {
		for i := 0; i < n; i += 512 {
			f.ProcessElement(EventBatch{Events: events[i : i+512]}, emit)
		}
		f.FinishBundle(emit)
	})
	if sent != n {
		t.Fatalf("%d events in, %d sent", n, sent)
	}
	eventBytes := uint64(n) * uint64(unsafe.Sizeof(Event{}))
	t.Logf("allocated %.2f times the events' bytes", float64(got)/float64(eventBytes))
	if got > eventBytes*5/4 {
		t.Fatalf("allocated %d bytes to batch %d bytes of events (%.2f times); want at most 1.25 times", got, eventBytes, float64(got)/float64(eventBytes))
	}
}

func TestDedupKeyLayout(t *testing.T) {
	horizons := []int64{60_000, 600_000, 3_600_000}
	times := []int64{0, 1, 599_999, 600_000, 946_684_800_000, 1_772_366_400_123, 4_102_444_800_000}
	for _, buckets := range []int{1, 4, 7, 64, 1000} {
		for lanes := 1; lanes <= MaxLanes; lanes++ {
			for _, h := range horizons {
				for _, tm := range times {
					for _, id := range []string{"a", "b", "event-123", ""} {
						hash := xxh3.HashString(id)
						key := dedupKey(tm, h, buckets, lanes, hash)
						bucket := int64(hash % uint64(buckets))
						epoch := tm / h
						if got, want := LaneOfKey(key), int(bucket%int64(lanes)); got != want {
							t.Fatalf("buckets %d lanes %d: LaneOfKey = %d, want bucket %d mod lanes = %d", buckets, lanes, got, bucket, want)
						}
						if key&0xf != bucket%int64(lanes) {
							t.Fatalf("low four bits %d, want %d", key&0xf, bucket%int64(lanes))
						}
						if got := epochOfKey(key, buckets); got != epoch {
							t.Fatalf("buckets %d lanes %d time %d horizon %d: epochOfKey = %d, want %d", buckets, lanes, tm, h, got, epoch)
						}
						if got := key >> 4; got != epoch*int64(buckets)+bucket {
							t.Fatalf("key>>4 = %d, want epoch*buckets+bucket = %d", got, epoch*int64(buckets)+bucket)
						}
						if LaneOfKey(key) < 0 || LaneOfKey(key) >= lanes {
							t.Fatalf("lane %d outside [0, %d)", LaneOfKey(key), lanes)
						}
					}
				}
			}
		}
	}
}

// Distinct (epoch, bucket) pairs never share a key, whatever the lanes, and
// one pair always gets the same key.
func TestDedupKeysDistinct(t *testing.T) {
	const buckets, h = 16, 600_000
	for lanes := 1; lanes <= MaxLanes; lanes++ {
		keys := map[int64][2]int64{}
		for epoch := int64(2_900_000); epoch < 2_900_020; epoch++ {
			for b := uint64(0); b < buckets; b++ {
				k := dedupKey(epoch*h+123, h, buckets, lanes, b)
				if k != dedupKey(epoch*h+h-1, h, buckets, lanes, b+buckets) {
					t.Fatalf("same epoch and bucket, different keys")
				}
				if prev, ok := keys[k]; ok {
					t.Fatalf("lanes %d: key %d for epoch/bucket %v and %d/%d", lanes, k, prev, epoch, b)
				}
				keys[k] = [2]int64{epoch, int64(b)}
			}
		}
	}
}

func TestDedupConfigDefaults(t *testing.T) {
	tests := []struct {
		in, want DedupConfig
	}{
		{DedupConfig{}, DedupConfig{Buckets: DefaultDedupConfig.Buckets, MaxBatch: DefaultDedupConfig.MaxBatch,
			MaxBuffered: DefaultDedupConfig.MaxBuffered, Lanes: 1, CacheIDs: DefaultDedupConfig.CacheIDs}},
		{DedupConfig{Buckets: 3, MaxBatch: 5, MaxBuffered: 9, Lanes: 40, CacheIDs: 7}, DedupConfig{Buckets: 3, MaxBatch: 5, MaxBuffered: 9, Lanes: MaxLanes, CacheIDs: 7}},
		{DedupConfig{Horizon: time.Minute, Buckets: -1, MaxBatch: -1, MaxBuffered: -1, Lanes: -3}, DedupConfig{Horizon: time.Minute,
			Buckets: DefaultDedupConfig.Buckets, MaxBatch: DefaultDedupConfig.MaxBatch, MaxBuffered: DefaultDedupConfig.MaxBuffered, Lanes: 1, CacheIDs: DefaultDedupConfig.CacheIDs}},
	}
	for _, tt := range tests {
		if got := tt.in.withDefaults(); got != tt.want {
			t.Errorf("%+v.withDefaults() = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

// memState is a key's user state as a runner keeps it: what committed
// bundles wrote. Each bundle works on its own copy (memBundle) that is
// committed, or dropped as a failed bundle's is. It implements the value and
// bag parts of state.Provider that Dedup uses; the rest panic (nil embed).
type memState struct {
	values map[string]any
	bags   map[string][]any
}

type memBundle struct {
	state.Provider
	st     *memState
	values map[string]any
	bags   map[string][]any
}

func (s *memState) begin() *memBundle {
	b := &memBundle{st: s, values: map[string]any{}, bags: map[string][]any{}}
	for k, v := range s.values {
		b.values[k] = v
	}
	for k, v := range s.bags {
		b.bags[k] = append([]any(nil), v...)
	}
	return b
}

func (b *memBundle) commit() { b.st.values, b.st.bags = b.values, b.bags }

func (b *memBundle) ReadValueState(id string) (any, []state.Transaction, error) {
	return b.values[id], nil, nil
}
func (b *memBundle) WriteValueState(t state.Transaction) error { b.values[t.Key] = t.Val; return nil }
func (b *memBundle) ClearValueState(t state.Transaction) error { delete(b.values, t.Key); return nil }
func (b *memBundle) ReadBagState(id string) ([]any, []state.Transaction, error) {
	return b.bags[id], nil, nil
}
func (b *memBundle) WriteBagState(t state.Transaction) error {
	b.bags[t.Key] = append(b.bags[t.Key], t.Val)
	return nil
}
func (b *memBundle) ClearBagState(t state.Transaction) error { delete(b.bags, t.Key); return nil }

type noTimers struct{}

func (noTimers) Set(timers.TimerMap) {}

// DedupBatches keeps the first copy of each id, whole and in order, by
// moving it down in the batch it was given: it allocates a small part of
// what a copy of the batch would.
func TestDedupBatchesCompactsInPlace(t *testing.T) {
	cfg := DedupConfig{Horizon: 10 * time.Minute, Buckets: 1, Lanes: 1}.withDefaults()
	f := &dedupFn{HorizonMillis: cfg.Horizon.Milliseconds(), Buckets: cfg.Buckets, CacheIDs: cfg.CacheIDs,
		Seen: state.MakeBagState[[]byte]("seen"), Meta: state.MakeValueState[[]byte]("meta"), Expiry: timers.InEventTime("expiry")}
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixMilli()
	key := dedupKey(base, cfg.Horizon.Milliseconds(), cfg.Buckets, cfg.Lanes, 0)
	const n = 4096
	batch := EventBatch{Events: make([]Event, n)}
	var want []Event
	for i := range batch.Events {
		// Every third event repeats the one before it, with its own arrival time.
		id := i
		if i%3 == 2 {
			id = i - 1
		}
		ev := Event{EventID: fmt.Sprintf("id-%d", id), EventTime: base + int64(id), IngestTime: base + int64(i), UserID: fmt.Sprintf("u-%d", i)}
		batch.Events[i] = ev
		if i%3 != 2 {
			want = append(want, ev)
		}
	}
	var got []Event
	emit := func(_ beam.EventTime, b EventBatch) { got = b.Events } // one batch a key
	st := &memState{}
	b := st.begin()
	f.StartBundle(context.Background(), emit)
	alloc := bytesAllocatedBy(func() { f.ProcessElement(context.Background(), b, noTimers{}, key, batch, emit) })
	if len(got) != len(want) {
		t.Fatalf("passed %d events, want %d", len(got), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Fatalf("event %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
	batchBytes := uint64(n) * uint64(unsafe.Sizeof(Event{}))
	if alloc > batchBytes/4 {
		t.Fatalf("allocated %d bytes for a batch of %d bytes; want under a quarter of it", alloc, batchBytes)
	}
}

// Dedup's cache must never outvote the runner's state. The cases a Prism run
// cannot produce on demand: a key moving between workers (two DoFn
// instances, each with its own cache), and a bundle the SDK finished but the
// runner did not commit while the same instance lives on. Each bundle here
// goes through the DoFn as a runner drives it, against a state that commits
// or drops the bundle's writes.
func TestDedupCacheFollowsCommittedState(t *testing.T) {
	cfg := DedupConfig{Horizon: 10 * time.Minute, Buckets: 1, Lanes: 1}.withDefaults()
	newFn := func() *dedupFn {
		return &dedupFn{HorizonMillis: cfg.Horizon.Milliseconds(), Buckets: cfg.Buckets, CacheIDs: cfg.CacheIDs,
			Seen: state.MakeBagState[[]byte]("seen"), Meta: state.MakeValueState[[]byte]("meta"), Expiry: timers.InEventTime("expiry")}
	}
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixMilli()
	key := dedupKey(base, cfg.Horizon.Milliseconds(), cfg.Buckets, cfg.Lanes, 0)
	st := &memState{}
	// bundle runs one bundle of one batch on f and returns the ids it passed.
	bundle := func(f *dedupFn, commit bool, ids ...string) []string {
		b := st.begin()
		var batch EventBatch
		for _, id := range ids {
			batch.Events = append(batch.Events, Event{EventID: id, EventTime: base, IngestTime: base})
		}
		var out []string
		emit := func(_ beam.EventTime, b EventBatch) {
			for _, e := range b.Events {
				out = append(out, e.EventID)
			}
		}
		f.StartBundle(context.Background(), emit)
		f.ProcessElement(context.Background(), b, noTimers{}, key, batch, emit)
		if commit {
			b.commit()
		}
		return out
	}
	a, b := newFn(), newFn()
	steps := []struct {
		name   string
		fn     *dedupFn
		commit bool
		in     []string
		want   string
	}{
		{"worker A sees a and b", a, true, []string{"a", "b"}, "a,b"},
		{"the key moves: worker B sees c and a", b, true, []string{"c", "a"}, "c"},
		{"back on A, whose cache lacks c", a, true, []string{"c", "d"}, "d"},
		{"A passes e, but the runner drops the bundle", a, false, []string{"e"}, "e"},
		{"the retry on A must pass e again", a, true, []string{"e", "b"}, "e"},
		{"and B, stale too, knows every committed id", b, true, []string{"a", "b", "c", "d", "e", "f"}, "f"},
	}
	for _, s := range steps {
		if got := strings.Join(bundle(s.fn, s.commit, s.in...), ","); got != s.want {
			t.Fatalf("%s: passed %q, want %q", s.name, got, s.want)
		}
	}
}

// TestDedupTimerBeforeTheWallClock: an expiry timer that fires while the wall
// clock is still before the key's expiry keeps the ids by default (a drain:
// events read before it may still be on their way) and releases them with
// ExpireOnWatermark (the watermark follows producers' clocks ahead of the
// workers'; kept, the key would never be released, as no timer is left).
func TestDedupTimerBeforeTheWallClock(t *testing.T) {
	cfg := DedupConfig{Horizon: 10 * time.Minute, Buckets: 1, Lanes: 1}.withDefaults()
	future := time.Now().Add(30 * time.Minute).UnixMilli() // events stamped by a clock 30 minutes ahead
	key := dedupKey(future, cfg.Horizon.Milliseconds(), cfg.Buckets, cfg.Lanes, 0)
	for _, expire := range []bool{false, true} {
		f := &dedupFn{HorizonMillis: cfg.Horizon.Milliseconds(), Buckets: cfg.Buckets, CacheIDs: cfg.CacheIDs, ExpireOnWatermark: expire,
			Seen: state.MakeBagState[[]byte]("seen"), Meta: state.MakeValueState[[]byte]("meta"), Expiry: timers.InEventTime("expiry")}
		st := &memState{}
		emit := func(beam.EventTime, EventBatch) {}
		b := st.begin()
		f.StartBundle(context.Background(), emit)
		f.ProcessElement(context.Background(), b, noTimers{}, key, EventBatch{Events: []Event{{EventID: "a", EventTime: future, IngestTime: future}}}, emit)
		b.commit()

		b = st.begin()
		f.StartBundle(context.Background(), emit)
		f.OnTimer(context.Background(), b, noTimers{}, key, timers.Context{Family: "expiry"}, emit)
		b.commit()
		_, kept := st.values["meta"]
		if kept == expire {
			t.Errorf("ExpireOnWatermark %v: after an early timer the key's state is kept %v, want %v", expire, kept, !expire)
		}
	}
}

// TestDedupCacheBoundIsPerProcess: the harness runs an instance of Dedup per
// plan, one per bundle it runs at once, and CacheIDs bounds their caches
// together: an instance over its share of the bound drops its idle keys even
// when it alone holds less than the bound. An instance the harness dropped
// gives its ids back to the account when it is collected.
func TestDedupCacheBoundIsPerProcess(t *testing.T) {
	cfg := DedupConfig{Horizon: 10 * time.Minute, Buckets: 4, Lanes: 1, CacheIDs: 100}.withDefaults()
	account := &cacheAccount{}
	newFn := func() *dedupFn {
		return &dedupFn{HorizonMillis: cfg.Horizon.Milliseconds(), Buckets: cfg.Buckets, CacheIDs: cfg.CacheIDs,
			Seen: state.MakeBagState[[]byte]("seen"), Meta: state.MakeValueState[[]byte]("meta"), Expiry: timers.InEventTime("expiry"),
			share: &cacheShare{account: account}}
	}
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixMilli()
	emit := func(beam.EventTime, EventBatch) {}
	// run runs one bundle of n new ids for key k on f, each key with its own state.
	states := map[int64]*memState{}
	next := 0
	run := func(f *dedupFn, k int64, n int) {
		if states[k] == nil {
			states[k] = &memState{}
		}
		b := states[k].begin()
		var batch EventBatch
		for range n {
			batch.Events = append(batch.Events, Event{EventID: fmt.Sprintf("e%d", next), EventTime: base, IngestTime: base})
			next++
		}
		f.StartBundle(context.Background(), emit)
		f.ProcessElement(context.Background(), b, noTimers{}, k, batch, emit)
		b.commit()
	}
	a, b := newFn(), newFn()
	run(a, 1, 60)
	run(b, 2, 60) // 120 cached in all; b's key is in use, a's is a's
	if got := account.ids.Load(); got != 120 {
		t.Fatalf("account holds %d ids after two bundles of 60, want 120", got)
	}
	run(a, 3, 10)                      // a holds 70 alone, under the bound, but the process holds 130
	held := func(f *dedupFn) (n int) { // the ids f's cache holds
		for _, ids := range f.cache {
			n += ids.set.Len()
		}
		return n
	}
	if got := account.ids.Load(); got > int64(cfg.CacheIDs) {
		t.Errorf("the process caches %d ids, over the bound of %d (a %d, b %d)", got, cfg.CacheIDs, held(a), held(b))
	}
	if held(a)+held(b) != int(account.ids.Load()) {
		t.Errorf("account %d, instances %d + %d", account.ids.Load(), held(a), held(b))
	}

	// An instance the harness drops (a failed bundle's plan) is never torn
	// down: its ids go back to the process's account when it is collected.
	saved := dedupCacheAccount
	dedupCacheAccount = &cacheAccount{}
	defer func() { dedupCacheAccount = saved }()
	process := dedupCacheAccount
	func() {
		c := newFn()
		c.share = nil // as DedupBatches makes it: it joins the process's account
		run(c, 4, 30)
	}()
	if got := process.ids.Load(); got != 30 {
		t.Fatalf("the process's account holds %d ids after a bundle of 30, want 30", got)
	}
	for deadline := time.Now().Add(10 * time.Second); process.ids.Load() != 0 && time.Now().Before(deadline); {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if got := process.ids.Load(); got != 0 {
		t.Errorf("a dropped instance's %d ids are still counted after it was collected", got)
	}
}

// settled collects what the Dedup test's steps settle and keep; Prism runs
// the workers in the test's process.
var settled struct {
	sync.Mutex
	dropped, kept []uint64
}

func keepDelivery(e Event) {
	settled.Lock()
	defer settled.Unlock()
	settled.kept = append(settled.kept, e.Delivery)
}

// TestDedupSettlesTheRepeatsItDrops: each repeat Dedup drops ends its
// journey there, so Dedup settles its delivery (transforms.Settle) and its
// source may ack it; the copy it keeps is settled later by the sink. Every
// delivery is then either kept or settled by Dedup, never both, never
// neither, and only repeats are settled.
func TestDedupSettlesTheRepeatsItDrops(t *testing.T) {
	events, want := dedupInput(10 * time.Minute)
	copies := map[string]int{}
	for i := range events {
		events[i].Delivery = 1<<40 | uint64(i+1)
		copies[events[i].EventID]++
	}
	settled.Lock()
	settled.dropped, settled.kept = nil, nil
	settled.Unlock()
	defer SetSettler(nil)
	SetSettler(func(ds []uint64, durable bool) {
		if durable {
			t.Errorf("Dedup settled %d deliveries as durable", len(ds))
		}
		settled.Lock()
		defer settled.Unlock()
		settled.dropped = append(settled.dropped, ds...)
	})
	ptest.BuildAndRun(t, func(s beam.Scope) {
		out := Dedup(s, BatchEvents(s, beam.CreateList(s, events)), DedupConfig{Horizon: 10 * time.Minute, Buckets: 4, MaxBatch: 2})
		beam.ParDo0(s, keepDelivery, Unbatch(s, out))
	})
	settled.Lock()
	defer settled.Unlock()
	if len(settled.kept) != len(want) || len(settled.dropped) != len(events)-len(want) {
		t.Fatalf("kept %d and settled %d deliveries, want %d and %d", len(settled.kept), len(settled.dropped), len(want), len(events)-len(want))
	}
	seen := map[uint64]bool{}
	for _, d := range append(slices.Clone(settled.kept), settled.dropped...) {
		if seen[d] {
			t.Fatalf("delivery %#x both kept and settled, or settled twice", d)
		}
		seen[d] = true
	}
	for _, d := range settled.dropped {
		if e := events[int(d&(1<<40-1))-1]; copies[e.EventID] < 2 {
			t.Errorf("settled delivery %#x of %q, which has no repeat", d, e.EventID)
		}
	}
}
