package enrichment_test

import (
	"context"
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/bigtable"
	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/mtime"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/passert"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"github.com/campaignpulse/campaignpulse/enrichment"
	"github.com/campaignpulse/campaignpulse/pipelines/generator"
	"github.com/campaignpulse/campaignpulse/transforms"

	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/runners/prism"
)

// Tests run on Prism, the runner make run uses.
func TestMain(m *testing.M) {
	ptest.MainWithDefault(m, "prism")
}

func init() {
	register.Function2x0(describeEvents)
	register.Emitter1[string]()
	register.Function1x1(describeDeadLetter)
	register.Function2x0(stampBatch)
	register.Emitter2[beam.EventTime, transforms.EventBatch]()
	register.Function2x1(checkStamp)
}

// smallGen is a generator config small enough to seed in a blink.
func smallGen() generator.Config {
	g := generator.Default()
	g.Users, g.Campaigns = 1000, 12
	return g
}

// startSeeded starts an in-process Bigtable (bttest), seeds it from gen and
// returns a config pointing at it.
func startSeeded(t testing.TB, gen generator.Config) (enrichment.Config, func()) {
	t.Helper()
	srv, err := enrichment.StartInProcess()
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop := func() { once.Do(srv.Close) }
	t.Cleanup(stop)
	// A short budget keeps the outage tests quick; an attempt still has a
	// second, as the machine may be busy.
	cfg := enrichment.Config{Endpoint: srv.Addr, Project: "p", Instance: "i",
		RetryBudget: 1500 * time.Millisecond, AttemptTimeout: time.Second, InitialBackoff: 10 * time.Millisecond}.WithDefaults()
	seed(t, cfg, gen)
	return cfg, stop
}

func seed(t testing.TB, cfg enrichment.Config, gen generator.Config) enrichment.SeedCounts {
	t.Helper()
	ctx := context.Background()
	client, closeClient, err := enrichment.Dial(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer closeClient()
	admin, closeAdmin, err := enrichment.DialAdmin(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer closeAdmin()
	n, err := enrichment.Seed(ctx, client, admin, gen, enrichment.SeedOptions{UnsyncedShare: enrichment.DefaultUnsyncedShare})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestRowKeySpreadsSequentialIDs(t *testing.T) {
	prefixes := map[string]int{}
	for i := range 1000 {
		id := generator.UserID(i)
		k := enrichment.RowKey(id)
		if got := enrichment.IDOfRowKey(k); got != id {
			t.Fatalf("IDOfRowKey(%q) = %q, want %q", k, got, id)
		}
		prefixes[k[:2]]++
	}
	// 1,000 sequential ids over 256 two-digit prefixes: a hotspotting key
	// (the id itself) would put them all under one.
	if len(prefixes) < 200 {
		t.Errorf("1000 sequential ids fall under only %d of 256 two-hex-digit prefixes", len(prefixes))
	}
	if k := enrichment.RowKey("usr_000001"); k != enrichment.RowKey("usr_000001") || !strings.HasSuffix(k, "#usr_000001") || len(k) != 4+1+10 {
		t.Errorf("RowKey(usr_000001) = %q", k)
	}
}

// TestSeedCreatesLayoutIdempotently seeds twice and checks the tables, the
// families, their GC rules and a few rows against the one definition.
func TestSeedCreatesLayoutIdempotently(t *testing.T) {
	gen := smallGen()
	cfg, _ := startSeeded(t, gen)
	n := seed(t, cfg, gen) // the second time
	if n.Users != 990 || n.UnsyncedUsers != 10 || n.Campaigns != 12 {
		t.Errorf("seed counts %+v", n)
	}
	ctx := context.Background()
	admin, closeAdmin, err := enrichment.DialAdmin(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer closeAdmin()
	for _, tbl := range enrichment.Layout {
		info, err := admin.TableInfo(ctx, tbl.Name)
		if err != nil {
			t.Fatalf("table %s: %v", tbl.Name, err)
		}
		if len(info.FamilyInfos) != len(tbl.Families) {
			t.Errorf("%s has families %v, want %d", tbl.Name, info.Families, len(tbl.Families))
		}
		for _, f := range tbl.Families {
			var got string
			for _, fi := range info.FamilyInfos {
				if fi.Name == f.Name {
					got = fi.GCPolicy
				}
			}
			if want := f.GCPolicy().String(); got != want {
				t.Errorf("%s:%s GC rule %q, want %q", tbl.Name, f.Name, got, want)
			}
		}
	}
	client, closeClient, err := enrichment.Dial(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer closeClient()
	users := client.Open(enrichment.UsersTable)
	var rows, cells int
	err = users.ReadRows(ctx, bigtable.InfiniteRange(""), func(r bigtable.Row) bool {
		rows++
		cells += len(r[enrichment.UserFamily])
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	// One cell a row: the second seed (same day, same timestamp) replaced the first.
	if rows != 990 || cells != 990 {
		t.Errorf("user_profiles holds %d rows, %d cells; want 990 rows, %d cells", rows, cells, 990)
	}
}

// openSeeded opens a Lookup on a seeded in-process Bigtable, closed with
// the test.
func openSeeded(t *testing.T, gen generator.Config) *enrichment.Lookup {
	t.Helper()
	cfg, _ := startSeeded(t, gen)
	l, err := enrichment.OpenLookup(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func TestLookupFoundNotFoundAndCache(t *testing.T) {
	gen := smallGen()
	ctx := context.Background()
	l := openSeeded(t, gen)
	users := []string{generator.UserID(0), generator.UserID(500), generator.UserID(999), "usr_nobody"}
	campaigns := []string{generator.CampaignID(3), "cmp_nope"}
	a, st := l.Resolve(ctx, users, campaigns)
	if a.UsersErr != nil || a.CampaignsErr != nil {
		t.Fatal(a.UsersErr, a.CampaignsErr)
	}
	if st.Hits != 0 || st.Misses != 6 || st.NotFound != 3 || st.Errors != 0 {
		t.Errorf("first resolve stats %+v, want 0 hits, 6 misses, 3 not found", st)
	}
	want := enrichment.SeedUser(gen.Seed, 500, gen.Users)
	if got := a.Users[generator.UserID(500)]; got == nil || *got != want {
		t.Errorf("user 500 = %+v, want %+v", got, want)
	}
	// usr_000999 is among the newest 1% Seed leaves unsynced.
	for _, id := range []string{generator.UserID(999), "usr_nobody"} {
		if u, ok := a.Users[id]; !ok || u != nil {
			t.Errorf("%s: answered=%v value=%+v, want answered as not found", id, ok, u)
		}
	}
	wantC := enrichment.SeedCampaign(gen.Seed, 3)
	if got := a.Campaigns[generator.CampaignID(3)]; got == nil || *got != wantC {
		t.Errorf("campaign 3 = %+v, want %+v", got, wantC)
	}
	a2, st2 := l.Resolve(ctx, users, campaigns)
	if st2.Hits != 6 || st2.Misses != 0 {
		t.Errorf("second resolve stats %+v, want all 6 from the cache (not-found answers included)", st2)
	}
	if !reflect.DeepEqual(a.Users, a2.Users) || !reflect.DeepEqual(a.Campaigns, a2.Campaigns) {
		t.Errorf("cached answers differ from read ones")
	}
}

// heapAfterGC is the live heap after a collection.
func heapAfterGC() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestCacheKeepsNoBatchAlive resolves ids that are slices of one large
// string, as the ids of decoded events are slices of their batch, and checks
// that the cache does not keep that string alive once the caller drops it: a
// cache entry must cost its own size, not its batch's.
func TestCacheKeepsNoBatchAlive(t *testing.T) {
	ctx := context.Background()
	l := openSeeded(t, smallGen())
	heap := func() int64 { return int64(heapAfterGC()) }
	const batchBytes = 64 << 20
	before := heap()
	func() {
		var b strings.Builder
		b.Grow(batchBytes)
		var offsets []int
		for i := 0; i < 100; i++ {
			offsets = append(offsets, b.Len())
			b.WriteString(generator.UserID(i))
		}
		b.WriteString(strings.Repeat("x", batchBytes-b.Len()))
		batch := b.String()
		ids := make([]string, len(offsets))
		for i, o := range offsets {
			ids[i] = batch[o : o+len(generator.UserID(i))]
		}
		if a, st := l.Resolve(ctx, ids, nil); a.UsersErr != nil || st.Misses != 100 {
			t.Fatalf("resolve: %v, %+v", a.UsersErr, st)
		}
	}()
	if users, _ := l.CacheLen(); users != 100 {
		t.Fatalf("cache holds %d users, want 100", users)
	}
	if grew := heap() - before; grew > batchBytes/2 {
		t.Errorf("heap grew %d MB after resolving 100 ids of a dropped %d MB batch: the cache keeps the batch alive", grew>>20, batchBytes>>20)
	}
	runtime.KeepAlive(l)
}

// TestLookupChunksLargeRowLists reads more keys than one ReadRows may carry.
func TestLookupChunksLargeRowLists(t *testing.T) {
	gen := smallGen()
	cfg, _ := startSeeded(t, gen)
	cfg.MaxKeysPerRead = 64
	l, err := enrichment.OpenLookup(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ids := make([]string, gen.Users)
	for i := range ids {
		ids[i] = generator.UserID(i)
	}
	a, st := l.Resolve(context.Background(), ids, nil)
	if a.UsersErr != nil {
		t.Fatal(a.UsersErr)
	}
	if st.Reads != 16 || st.Misses != 1000 || st.NotFound != 10 {
		t.Errorf("stats %+v, want 16 reads of ≤64 keys, 1000 misses, 10 not found", st)
	}
}

// TestCacheIsBounded resolves 20 times more users than the cache holds: the
// cache stays at its size and the heap does not grow with the users.
func TestCacheIsBounded(t *testing.T) {
	gen := smallGen()
	gen.Users = 20_000
	cfg, _ := startSeeded(t, gen)
	cfg.CacheSize = 1000
	ctx := context.Background()
	l, err := enrichment.OpenLookup(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	heap := heapAfterGC
	resolveRange := func(lo, hi int) {
		for b := lo; b < hi; b += 500 {
			ids := make([]string, 0, 500)
			for i := b; i < min(b+500, hi); i++ {
				ids = append(ids, generator.UserID(i))
			}
			if a, _ := l.Resolve(ctx, ids, nil); a.UsersErr != nil {
				t.Fatal(a.UsersErr)
			}
		}
	}
	resolveRange(0, 2000) // the cache is full from here on
	before := heap()
	resolveRange(2000, gen.Users)
	after := heap()
	if u, _ := l.CacheLen(); u != cfg.CacheSize {
		t.Errorf("user cache holds %d entries, its size is %d", u, cfg.CacheSize)
	}
	// 18,000 more users went through; an unbounded cache would keep every
	// one (~250 bytes each, 4.5 MB). Allow 1 MB of noise.
	if after > before && after-before > 1<<20 {
		t.Errorf("heap grew by %d bytes over 18,000 users with a 1,000-entry cache", after-before)
	}
}

func TestEventJSONReplays(t *testing.T) {
	gen := smallGen()
	for i := int64(0); i < 300; i++ {
		if gen.Kind(i) == generator.Malformed {
			continue
		}
		msg := gen.Message(i, nil)
		ev, rej := transforms.Parse(msg, 0)
		if rej != nil {
			t.Fatal(rej)
		}
		if rej := transforms.Validate(&ev, msg.PublishTime, transforms.ValidateConfig{MaxFutureSkew: time.Hour}); rej != nil {
			t.Fatal(rej)
		}
		payload, err := transforms.EventJSON(&ev)
		if err != nil {
			t.Fatal(err)
		}
		back, rej := transforms.Parse(transforms.Message{Data: payload, PublishTime: msg.PublishTime, Source: msg.Source}, 0)
		if rej != nil {
			t.Fatalf("%s: %v", payload, rej)
		}
		if rej := transforms.Validate(&back, msg.PublishTime, transforms.ValidateConfig{MaxFutureSkew: time.Hour}); rej != nil {
			t.Fatal(rej)
		}
		ev.Raw, back.Raw = nil, nil // ValidateSchema drops Raw of a valid event; the rest must match
		if !reflect.DeepEqual(ev, back) {
			t.Fatalf("replayed event differs:\n%+v\n%+v", ev, back)
		}
	}
}

// batchesOf builds n valid events of users 0…n−1 (usr_000999 and beyond are
// not seeded) on campaign i%13 (cmp_0012 is not seeded), in batches of size.
func batchesOf(n, size int) []transforms.EventBatch {
	var out []transforms.EventBatch
	for lo := 0; lo < n; lo += size {
		var b transforms.EventBatch
		for i := lo; i < min(lo+size, n); i++ {
			b.Events = append(b.Events, transforms.Event{
				EventID: fmt.Sprintf("e%05d", i), EventType: transforms.TypeView, EventTime: 1_790_000_000_000 + int64(i),
				UserID: generator.UserID(i * 7 % 1010), CampaignID: generator.CampaignID(i % 13), Platform: "meta",
				SchemaVersion: "1.0", IngestTime: 1_790_000_000_000 + int64(i), Source: "test",
			})
		}
		out = append(out, b)
	}
	return out
}

// stampBatch puts a batch at its first event's time.
func stampBatch(b transforms.EventBatch, emit func(beam.EventTime, transforms.EventBatch)) {
	emit(mtime.FromMilliseconds(b.Events[0].EventTime), b)
}

// checkStamp says whether a batch still sits at its first event's time.
func checkStamp(ts beam.EventTime, b transforms.EventBatch) string {
	if ts != mtime.FromMilliseconds(b.Events[0].EventTime) {
		return fmt.Sprintf("batch of %s at %v", b.Events[0].EventID, ts)
	}
	return "kept"
}

// describeEvents flattens a batch to one line per event, for passert.
func describeEvents(b transforms.EventBatch, emit func(string)) {
	for _, ev := range b.Events {
		x := ev.Enrichment
		if x == nil {
			x = &transforms.Enrichment{} // the lookup did not run: an empty status
		}
		emit(fmt.Sprintf("%s %s user=%v/%s/%s campaign=%v/%s/%s", ev.EventID, x.Status,
			x.UserFound, x.UserSegment, x.UserCountry, x.CampaignFound, x.CampaignObjective, x.Advertiser))
	}
}

func describeDeadLetter(d transforms.DeadLetter) string {
	return fmt.Sprintf("%s/%s %s payload=%v", d.Stage, d.ErrorCode, d.EventID, strings.Contains(string(d.Payload), `"event_id":"`+d.EventID+`"`))
}

func expectedLines(gen generator.Config, batches []transforms.EventBatch, status string) []any {
	var out []any
	for _, b := range batches {
		for _, ev := range b.Events {
			var i, c int
			fmt.Sscanf(ev.UserID, "usr_%d", &i)
			fmt.Sscanf(ev.CampaignID, "cmp_%d", &c)
			userPart := "user=false/unknown/unknown"
			if i < 990 {
				u := enrichment.SeedUser(gen.Seed, i, gen.Users)
				userPart = fmt.Sprintf("user=true/%s/%s", u.Segment, u.Country)
			}
			campPart := "campaign=false/unknown/unknown"
			if c < gen.Campaigns {
				cc := enrichment.SeedCampaign(gen.Seed, c)
				campPart = fmt.Sprintf("campaign=true/%s/%s", cc.Objective, cc.Advertiser)
			}
			switch status {
			case transforms.EnrichOK:
				out = append(out, fmt.Sprintf("%s %s %s %s", ev.EventID, status, userPart, campPart))
			default:
				out = append(out, fmt.Sprintf("%s %s user=false// campaign=false//", ev.EventID, status))
			}
		}
	}
	return out
}

// TestEnrichOnPrism runs Enrich over batches on Prism against bttest: found
// users and campaigns carry their seeded attributes, unknown ones read
// "unknown", nothing is dead-lettered, and the counters add up.
func TestEnrichOnPrism(t *testing.T) {
	gen := smallGen()
	cfg, _ := startSeeded(t, gen)
	cfg.MicroBatchEvents = 300 // several lookups, so the later ones hit the cache
	batches := batchesOf(2000, 100)
	p, s := beam.NewPipelineWithRoot()
	in := beam.ParDo(s, stampBatch, beam.CreateList(s, batches))
	enriched, dead := enrichment.Enrich(s, cfg, in)
	passert.Equals(s, beam.ParDo(s, describeEvents, enriched), expectedLines(gen, batches, transforms.EnrichOK)...)
	kept := make([]any, len(batches))
	for i := range kept {
		kept[i] = "kept"
	}
	passert.Equals(s, beam.ParDo(s, checkStamp, enriched), kept...) // each output batch at its input's timestamp
	passert.Empty(s, dead)
	res, err := ptest.RunWithMetrics(p)
	if err != nil {
		t.Fatal(err)
	}
	c := counters(res)
	if c[enrichment.CounterEnriched] != 2000 || c[enrichment.CounterUnavailable] != 0 {
		t.Errorf("counters %v: want 2000 enriched, 0 unavailable", c)
	}
	// Each distinct key is read once per cache; after that it is a hit.
	if c[enrichment.CounterMisses] < 1010+13 || c[enrichment.CounterHits] == 0 || c[enrichment.CounterNotFound] < 20+1 {
		t.Errorf("counters %v: want ≥ 1023 misses, some hits, ≥ 21 not found", c)
	}
	if c[enrichment.CounterUserUnknown] == 0 || c[enrichment.CounterCampaignUnknown] == 0 {
		t.Errorf("counters %v: want some unknown users and campaigns", c)
	}
}

// TestEnrichOutage: with Bigtable gone, deadletter mode dead-letters every
// event with ENRICH_UNAVAILABLE and a payload that replays; pass mode passes
// every event on flagged unavailable. No event is lost and nothing fails.
func TestEnrichOutage(t *testing.T) {
	gen := smallGen()
	for _, mode := range []string{enrichment.OnUnavailableDeadLetter, enrichment.OnUnavailablePass} {
		t.Run(mode, func(t *testing.T) {
			cfg, stop := startSeeded(t, gen)
			stop() // the outage: the server is gone before the first read
			cfg.OnUnavailable = mode
			cfg.BreakerCooldown = 50 * time.Millisecond
			batches := batchesOf(600, 100)
			p, s := beam.NewPipelineWithRoot()
			enriched, dead := enrichment.Enrich(s, cfg, beam.CreateList(s, batches))
			if mode == enrichment.OnUnavailableDeadLetter {
				passert.Empty(s, enriched)
				var want []any
				for _, b := range batches {
					for _, ev := range b.Events {
						want = append(want, "enrich/ENRICH_UNAVAILABLE "+ev.EventID+" payload=true")
					}
				}
				passert.Equals(s, beam.ParDo(s, describeDeadLetter, dead), want...)
			} else {
				passert.Empty(s, dead)
				passert.Equals(s, beam.ParDo(s, describeEvents, enriched), expectedLines(gen, batches, transforms.EnrichUnavailable)...)
			}
			res, err := ptest.RunWithMetrics(p)
			if err != nil {
				t.Fatal(err)
			}
			c := counters(res)
			wantDead := int64(600)
			if mode == enrichment.OnUnavailablePass {
				wantDead = 0
			}
			if c[enrichment.CounterUnavailable] != 600 || c[enrichment.CounterDeadLetter] != wantDead || c[enrichment.CounterErrors] == 0 {
				t.Errorf("counters %v: want 600 unavailable, %d dead-lettered, some errors", c, wantDead)
			}
		})
	}
}

func counters(res beam.PipelineResult) map[string]int64 {
	c := map[string]int64{}
	for _, r := range res.Metrics().AllMetrics().Counters() {
		if r.Key.Namespace == transforms.Namespace {
			c[r.Key.Name] += r.Result()
		}
	}
	return c
}

// TestEnrichFailsOnAMissingTable: a table that does not exist is a
// deployment to fix, not an outage. Enrich fails its bundles, so the runner
// retries them (and on Prism fails the job) with Bigtable's reason, instead
// of dead-lettering every event or passing it on unenriched for good.
func TestEnrichFailsOnAMissingTable(t *testing.T) {
	cfg, _ := startSeeded(t, smallGen())
	admin, closeAdmin, err := enrichment.DialAdmin(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	err = admin.DeleteTable(context.Background(), enrichment.CampaignsTable)
	closeAdmin()
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{enrichment.OnUnavailableDeadLetter, enrichment.OnUnavailablePass} {
		t.Run(mode, func(t *testing.T) {
			cfg := cfg
			cfg.OnUnavailable = mode
			p, s := beam.NewPipelineWithRoot()
			enrichment.Enrich(s, cfg, beam.CreateList(s, batchesOf(300, 100)))
			_, err := ptest.RunWithMetrics(p)
			if err == nil {
				t.Fatal("the pipeline succeeded with the campaigns table missing")
			}
			if msg := err.Error(); !strings.Contains(msg, enrichment.ErrMisconfigured.Error()) || !strings.Contains(msg, enrichment.CampaignsTable) {
				t.Errorf("the failure does not say Bigtable refused the read of %s: %v", enrichment.CampaignsTable, err)
			}
		})
	}
}
