package pipelines

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/pstest"
	"github.com/campaignpulse/campaignpulse/enrichment"
	"github.com/campaignpulse/campaignpulse/pipelines/generator"
	"github.com/campaignpulse/campaignpulse/transforms"
)

// TestLocalPubSubAcksOnlyDurableRecords: a local run from Pub/Sub into DuckDB
// acknowledges a message only once its record is durable (transforms.Settle).
// The event sink fails every bundle for its first 3 s, so for those seconds
// no valid event can be durable; the source's bundles commit all the same.
// At each ack the test looks in the warehouse: the message's event must be
// a fact row, or its message a dead letter, already. Only a repeat Dedup
// dropped may be acked before its first copy's row (that copy is still held,
// so a killed process would get it again); the test checks each such one
// against the generator. Acking at the bundle's commit, as the source did,
// fails here with hundreds of valid events acked before any was written.
func TestLocalPubSubAcksOnlyDurableRecords(t *testing.T) {
	if !PrismRetriesBundles() {
		t.Skip("needs the patched Prism that retries failed bundles: run make test (pipelines/prism)")
	}
	ps := newPstestSub(t)
	o := testOptions(t, 1)
	o.FailEventWritesFor = 3 * time.Second
	traffic := publishSettleTraffic(ps, o)
	audit := auditAcks(t, traffic, inWarehouse(o.Warehouse), nil)
	unsettled := psStats.unsettled.Load()
	sum := runLocalPubSub(t, o, ps.cfg, 2*time.Minute, ps.allAcked, nil)

	g := traffic.g
	want := g.Expected()
	if sum.In != g.Events || sum.Valid != want.Valid || sum.DeadLetters != want.Malformed {
		t.Errorf("in=%d valid=%d dead_letter=%d, want %d, %d, %d", sum.In, sum.Valid, sum.DeadLetters, g.Events, want.Valid, want.Malformed)
	}
	if InjectedFailures.Load() == 0 {
		t.Fatal("no event-sink bundle failed: the test proves nothing")
	}
	audit.verify(t, ps, traffic, unsettled, inWarehouse(o.Warehouse))
	t.Logf("%d acks, %d of them repeats acked before their first copy's row; %d event-sink bundles failed",
		audit.acked, len(audit.early), InjectedFailures.Load())
}

// settleTraffic is what the settlement tests publish: 800 generated events,
// 5% duplicates and 5% malformed, none late, on one pstest subscription.
type settleTraffic struct {
	g        generator.Config
	copies   map[string]int   // event id → messages that carry it
	payloads map[string]int64 // payload → the generator's index (duplicates share one)
}

func publishSettleTraffic(ps *pstestSub, o *Options) *settleTraffic {
	g := generator.Default()
	g.Events, g.Rate, g.Start = 800, 200, time.Now().UTC()
	g.WindowSize, g.AllowedLateness, g.WatermarkSkew = o.Window.Size, o.Window.AllowedLateness, o.Window.WatermarkSkew
	g.LateRate, g.TooLateRate, g.DuplicateRate, g.MalformedRate = 0, 0, 0.05, 0.05
	tr := &settleTraffic{g: g, copies: map[string]int{}, payloads: map[string]int64{}}
	for i := int64(0); i < g.Events; i++ {
		m := g.Message(i, nil)
		if id := eventIDOf(m.Data); id != "" {
			tr.copies[id]++
		}
		tr.payloads[string(m.Data)] = i
		ps.srv.Publish(ps.topic, m.Data, map[string]string{"source": "meta"})
	}
	return tr
}

// valid are the ids of the events that are not malformed.
func (tr *settleTraffic) valid() map[string]bool {
	out := map[string]bool{}
	for i := int64(0); i < tr.g.Events; i++ {
		if tr.g.Kind(i) != generator.Malformed {
			out[eventIDOf(tr.g.Message(i, nil).Data)] = true
		}
	}
	return out
}

// storedFunc says whether a message's record is stored: its event (by id)
// as a fact or a dead letter, or the message itself (by id) as a dead letter.
type storedFunc func(eventID, messageID string) (bool, error)

// inWarehouse looks for the record in a DuckDB warehouse.
func inWarehouse(path string) storedFunc {
	return func(id, msgID string) (bool, error) {
		w, err := OpenWarehouse(path)
		if err != nil {
			return false, err
		}
		defer w.Release()
		var rows int
		err = w.DB().QueryRow(`select (select count(*) from fact_marketing_events where event_id = ?)
			+ (select count(*) from dead_letter_events where event_id = ? or message_id = ?)`, id, id, msgID).Scan(&rows)
		return rows > 0, err
	}
}

// ackAudit records, at each ack, whether the message's record was stored
// already, and whether an unstored one left a copy of its event unacked.
type ackAudit struct {
	mu     sync.Mutex
	acked  int
	copies map[string]int // the messages of each event id acked so far
	early  []string       // event ids acked with nothing stored yet
	bare   []string       // ... and no other message of the event left unacked
	errs   []error
}

// auditAcks audits every ack of the source until the test ends; onAck, if
// set, runs first at each.
func auditAcks(t *testing.T, tr *settleTraffic, stored storedFunc, onAck func()) *ackAudit {
	a := &ackAudit{copies: map[string]int{}}
	testAckHook = func(m *pubsub.Message) {
		if onAck != nil {
			onAck()
		}
		a.mu.Lock()
		defer a.mu.Unlock()
		a.acked++
		id := eventIDOf(m.Data)
		a.copies[id]++
		ok, err := stored(id, m.ID)
		switch {
		case err != nil:
			a.errs = append(a.errs, err)
		case !ok:
			a.early = append(a.early, id)
			// A repeat may go before its event is stored only while
			// another message of it is held, or the event is lost to a
			// kill now.
			if id == "" || a.copies[id] >= tr.copies[id] {
				a.bare = append(a.bare, id)
			}
		}
	}
	t.Cleanup(func() { testAckHook = nil })
	return a
}

// verify checks, once the run is over: every message (by id: duplicates
// share a payload) acked exactly once, every ack seen by the audit, none
// left unsettled; every ack came after its record was stored, but for
// repeats Dedup dropped while another message of the event was unacked, and
// each of those has its event stored by now.
func (a *ackAudit) verify(t *testing.T, ps *pstestSub, tr *settleTraffic, unsettledBefore int64, stored storedFunc) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	msgs := ps.srv.Messages()
	for time.Now().Before(deadline) && slices.ContainsFunc(msgs, func(m *pstest.Message) bool { return m.Acks == 0 }) {
		time.Sleep(20 * time.Millisecond)
		msgs = ps.srv.Messages()
	}
	if len(msgs) != int(tr.g.Events) {
		t.Errorf("pstest holds %d messages, %d were published", len(msgs), tr.g.Events)
	}
	var bad []string
	total := 0
	for _, m := range msgs {
		total += m.Acks
		if m.Acks != 1 {
			i, id := tr.payloads[string(m.Data)], eventIDOf(m.Data)
			ok, _ := stored(id, m.ID)
			bad = append(bad, fmt.Sprintf("%s (#%d: %v, event %s, %d copies, stored %v) acked %d times",
				m.ID, i, tr.g.Kind(i), id, tr.copies[id], ok, m.Acks))
		}
	}
	if len(bad) > 0 {
		t.Errorf("%d messages not acked exactly once: %v", len(bad), head(bad))
	}
	if n := psStats.unsettled.Load() - unsettledBefore; n != 0 {
		t.Errorf("%d messages were still unsettled when the job ended", n)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.acked != total {
		t.Errorf("pstest counted %d acks, the audit saw %d", total, a.acked)
	}
	if len(a.errs) > 0 {
		t.Fatalf("looking for a record at an ack: %v", a.errs[0])
	}
	if len(a.bare) > 0 {
		t.Fatalf("%d acks came before their event was stored, with no other message of it left unacked, e.g. %v",
			len(a.bare), head(a.bare))
	}
	var notRepeats []string
	for _, id := range a.early {
		if id == "" || tr.copies[id] < 2 {
			notRepeats = append(notRepeats, id)
		} else if ok, err := stored(id, ""); err != nil || !ok {
			t.Errorf("repeat %s was acked, and no copy of its event was stored (%v)", id, err)
		}
	}
	if len(notRepeats) > 0 {
		t.Fatalf("%d of %d acks came before the message's record was stored, and were not repeats, e.g. %v",
			len(notRepeats), a.acked, head(notRepeats))
	}
}

// eventIDOf is the event_id of a payload, "" if it has none.
func eventIDOf(data []byte) string {
	var v struct {
		EventID string `json:"event_id"`
	}
	if json.Unmarshal(data, &v) != nil {
		return ""
	}
	return v.EventID
}

// ackRecorder records the ids of the messages the source acks.
func ackRecorder(t *testing.T) func() []string {
	var mu sync.Mutex
	var acked []string
	testAckHook = func(m *pubsub.Message) {
		mu.Lock()
		defer mu.Unlock()
		acked = append(acked, m.ID)
	}
	t.Cleanup(func() { testAckHook = nil })
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(acked)
	}
}

// settlingReceiver is a receiver under settlement with no stream, for the
// tests that drive track and settleDeliveries directly.
func settlingReceiver(t *testing.T) *pubsubReceiver {
	r := &pubsubReceiver{subscription: "projects/p/subscriptions/settle-unit", settles: true,
		slots: make(chan struct{}, 8), pending: map[uint64]*pubsubMsg{}}
	settlers.Lock()
	settlers.next++
	r.no = settlers.next
	settlers.m[r.no] = r
	settlers.Unlock()
	t.Cleanup(func() {
		settlers.Lock()
		delete(settlers.m, r.no)
		settlers.Unlock()
	})
	return r
}

// delivered is a delivery of message id to r, holding a slot as deliver does.
func delivered(r *pubsubReceiver, id string) *pubsubMsg {
	r.slots <- struct{}{}
	return &pubsubMsg{m: &pubsub.Message{ID: id}, owner: r}
}

// TestARedeliveryFollowsTheHeldCopy: a delivery of a message that another
// delivery in this process still holds (Pub/Sub sends it again when a lease
// lapses) is not emitted: it follows the held one and is acked with it, so
// Dedup never drops the only copy of a message not yet written. Once the
// held one is settled, a new delivery leads again. Settling a delivery
// acks that message alone, and releasing acks nothing.
func TestARedeliveryFollowsTheHeldCopy(t *testing.T) {
	acked := ackRecorder(t)
	a, b := settlingReceiver(t), settlingReceiver(t) // two lanes' receivers of one subscription
	first, again, other := delivered(a, "x"), delivered(b, "x"), delivered(b, "y")
	if !a.track(first) || !b.track(other) {
		t.Fatal("a first delivery was not emitted")
	}
	if b.track(again) {
		t.Fatal("a redelivery of a held message was emitted again")
	}
	settleDeliveries([]uint64{first.delivery}, true)
	if got := acked(); !slices.Equal(got, []string{"x", "x"}) {
		t.Errorf("settling the held copy acked %v, want it and its follower [x x]", got)
	}
	if len(a.pending) != 0 || len(b.pending) != 1 || len(a.slots) != 0 || len(b.slots) != 1 {
		t.Errorf("pending %d and %d, slots %d and %d; want 0, 1 (y), 0, 1", len(a.pending), len(b.pending), len(a.slots), len(b.slots))
	}
	late := delivered(a, "x")
	if !a.track(late) {
		t.Fatal("a delivery after its message was settled followed a settled copy")
	}
	a.nack(late)
	b.nack(other)
	if got := acked(); len(got) != 2 {
		t.Errorf("releasing acked: %v", got)
	}
}

// TestARepeatOfAReleasedCopyWaits: a receiver released a copy it had
// emitted (it closed, or its call failed), so the runner may still write
// that copy while Pub/Sub sends the message again. If Dedup drops the new
// delivery as a repeat, acking it would lose the event were the process to
// die before the first copy's row: it waits until that row is committed.
// If Dedup keeps the new delivery instead, its own row ends the wait.
func TestARepeatOfAReleasedCopyWaits(t *testing.T) {
	acked := ackRecorder(t)
	a, b := settlingReceiver(t), settlingReceiver(t)
	orphan := func(id string) (first, again *pubsubMsg) {
		first, again = delivered(a, id), delivered(b, id)
		a.track(first)
		a.nack(first) // released while the runner may still hold its copy
		if !b.track(again) {
			t.Fatalf("%s: a delivery followed a released copy", id)
		}
		return first, again
	}
	// goesAtOnce: once a copy is durable, a repeat is acked at once.
	goesAtOnce := func(id string) {
		t.Helper()
		repeat := delivered(b, id)
		b.track(repeat)
		before := len(acked())
		settleDeliveries([]uint64{repeat.delivery}, false)
		if len(acked()) != before+1 {
			t.Errorf("%s: a repeat waited, though no copy of its message can be in flight unwritten", id)
		}
	}

	first, again := orphan("z")
	settleDeliveries([]uint64{again.delivery}, false) // Dedup dropped it as a repeat
	if slices.Contains(acked(), "z") {
		t.Fatal("a repeat of an orphan message was acked before any copy was durable")
	}
	settleDeliveries([]uint64{first.delivery}, true) // the runner wrote the first copy after all
	if !slices.Equal(acked(), []string{"z"}) {
		t.Fatalf("once the first copy was written, acked %v, want the waiting repeat [z]", acked())
	}
	if len(b.pending) != 0 || len(b.slots) != 0 {
		t.Errorf("receiver b holds %d pending and %d slots, want none", len(b.pending), len(b.slots))
	}
	goesAtOnce("z")

	_, kept := orphan("w")
	settleDeliveries([]uint64{kept.delivery}, true) // Dedup kept it, and its row is committed
	if !slices.Contains(acked(), "w") {
		t.Fatal("a written delivery of an orphan message was not acked")
	}
	goesAtOnce("w")

	// A second message of an event (a generator duplicate): each of its
	// copies is a repeat, none is ever durable. Once every released copy
	// has ended as a repeat, none is a first copy in flight: the waiting
	// repeat goes. With two released, it waits for both.
	dup1, dupAgain := orphan("d")
	dup2 := delivered(b, "d")
	b.nack(dupAgain) // released too: its copy is in flight as well
	if !a.track(dup2) {
		t.Fatal("d: a delivery followed a released copy")
	}
	settleDeliveries([]uint64{dup2.delivery}, false)
	settleDeliveries([]uint64{dup1.delivery}, false) // the runner dropped one released copy as a repeat
	if slices.Contains(acked(), "d") {
		t.Fatal("a repeat was acked while a released copy of its message was still in flight")
	}
	settleDeliveries([]uint64{dupAgain.delivery}, false) // and the other
	if !slices.Contains(acked(), "d") {
		t.Fatal("a repeat waited on, though every released copy of its message ended as a repeat")
	}

	// A waiting repeat released (its receiver closed) was dropped by Dedup
	// already: it is no copy in flight, and must not keep the orphan alive.
	vFirst, vAgain := orphan("v")
	settleDeliveries([]uint64{vAgain.delivery}, false) // waits
	b.nack(vAgain)                                     // released by a close
	settleDeliveries([]uint64{vFirst.delivery}, false) // the released first copy ended as a repeat too
	goesAtOnce("v")

	// A copy released because its attempt failed (a later hold than the
	// restriction confirms) is no orphan: the runner dropped it.
	dropped := delivered(a, "f")
	a.track(dropped)
	a.held = map[int64]heldBatch{7: {msgs: []*pubsubMsg{dropped}, at: time.Now()}}
	a.releaseAfter(6)
	goesAtOnce("f")

	// A copy released because its hold expired is an orphan: its bundle
	// may yet commit. A call that starts from an earlier hold shows that
	// its attempt failed: the runner dropped the copy, and the repeat that
	// waited for it goes. One that confirms the hold keeps the orphan (its
	// copy settles in the end).
	expire := func(id string, hold int64) (*pubsubMsg, *pubsubMsg) {
		copy1, again := delivered(a, id), delivered(b, id)
		a.track(copy1)
		a.held = map[int64]heldBatch{hold: {msgs: []*pubsubMsg{copy1}, at: time.Now().Add(-2 * time.Minute)}}
		a.expireHolds(time.Now())
		if !b.track(again) {
			t.Fatalf("%s: a delivery followed a copy released by its hold's expiry", id)
		}
		settleDeliveries([]uint64{again.delivery}, false) // Dedup dropped it as a repeat
		if slices.Contains(acked(), id) {
			t.Fatalf("%s: a repeat was acked while the released copy of an expired hold may still be written", id)
		}
		return copy1, again
	}
	failed, _ := expire("e", 9)
	a.releaseAfter(8) // the next call starts from hold 8: attempt 9 failed
	if !slices.Contains(acked(), "e") {
		t.Fatal("e: a repeat waited on, though the expired hold's attempt was known to have failed")
	}
	leaders.Lock()
	_, indexed := leaders.orphanOf[failed.delivery]
	leaders.Unlock()
	if indexed {
		t.Error("e: the dropped copy is still indexed as an orphan's")
	}
	goesAtOnce("e")

	slow, _ := expire("c", 11)
	a.finalizeUpTo(11) // it committed after all
	a.releaseAfter(0)  // a hold it had forgotten would now be ended as dropped
	if slices.Contains(acked(), "c") {
		t.Fatal("c: a repeat was acked while the committed copy of an expired hold was not yet written")
	}
	settleDeliveries([]uint64{slow.delivery}, true)
	if !slices.Contains(acked(), "c") {
		t.Fatal("c: the repeat waited on after the expired hold's copy was written")
	}
}

// TestAnOrphanOfAnotherGraphHoldsNothing: a job that failed leaves its
// orphans in the process (nothing of it is ever settled again). A later
// pipeline in the same process (the tests run many, each on a new pstest
// whose message ids start again at m0) may read a message with the same
// subscription and id: its repeat must not wait for the failed job's copy.
func TestAnOrphanOfAnotherGraphHoldsNothing(t *testing.T) {
	acked := ackRecorder(t)
	old, next := settlingReceiver(t), settlingReceiver(t)
	old.graph, next.graph = "failed-job", "next-job"
	stale := delivered(old, "m7")
	old.track(stale)
	old.nack(stale) // its job failed: the copy is an orphan, never settled
	repeat := delivered(next, "m7")
	if !next.track(repeat) {
		t.Fatal("a delivery followed another graph's copy")
	}
	settleDeliveries([]uint64{repeat.delivery}, false)
	if !slices.Equal(acked(), []string{"m7"}) {
		t.Errorf("acked %v, want the repeat [m7]: another graph's orphan held it back", acked())
	}
}

// TestLanesShareTheSettlementGraph: every lane reads every subscription, so
// a redelivery of a message one lane holds, or released, can reach another.
// The follow and orphan rules key their index by graph: the lanes of one
// build must share it (each had its own, and a redelivery on another lane
// was emitted beside the held copy and acked as a repeat), and two builds
// must not.
func TestLanesShareTheSettlementGraph(t *testing.T) {
	graphs := func() map[string]int {
		o := testOptions(t, 1)
		o.Source, o.Lanes = SourcePubSub, 3
		o.PubSub = DefaultPubSubConfig
		o.PubSub.Subscriptions = []string{"projects/p/subscriptions/a", "projects/p/subscriptions/b"}
		if err := o.Validate(); err != nil {
			t.Fatal(err)
		}
		out := map[string]int{}
		for _, e := range buildGraph(t, o) {
			if e.DoFn == nil {
				continue
			}
			if f, ok := e.DoFn.Recv.(*readPubSubFn); ok {
				out[f.Graph]++
			}
		}
		return out
	}
	first, second := graphs(), graphs()
	if len(first) != 1 || first[""] != 0 {
		t.Fatalf("the lanes' reads of one build have graphs %v, want one, shared by all 3", first)
	}
	for g, n := range first {
		if n != 3 {
			t.Errorf("graph %s read by %d lanes, want 3", g, n)
		}
		if second[g] != 0 {
			t.Errorf("two builds share the graph %s", g)
		}
	}
}

// TestLocalPubSubFailedRunLosesNothing: a local run from Pub/Sub fails (its
// event sink fails every bundle past the runner's retries, and the job with
// it: Prism drops what it holds in memory, nothing drains), and a second run
// on the same subscription and warehouse reads what the first left. Every
// message Pub/Sub no longer holds must then have its record in the
// warehouse (its event in fact_marketing_events, or itself in
// dead_letter_events). With the source acking at the bundle's commit, the
// events the first run had read were acked and gone with it. A killed
// process is the same but for how its messages come back (as their leases
// lapse; see the README's Local runs).
func TestLocalPubSubFailedRunLosesNothing(t *testing.T) {
	if !PrismRetriesBundles() {
		t.Skip("needs the patched Prism that retries failed bundles: run make test (pipelines/prism)")
	}
	ps := newPstestSub(t)
	o := testOptions(t, 1)
	g := generator.Default()
	g.Events, g.Rate, g.Start = 600, 200, time.Now().UTC()
	g.WindowSize, g.AllowedLateness, g.WatermarkSkew = o.Window.Size, o.Window.AllowedLateness, o.Window.WatermarkSkew
	g.LateRate, g.TooLateRate, g.DuplicateRate, g.MalformedRate = 0, 0, 0.05, 0.05
	for i := int64(0); i < g.Events; i++ {
		ps.srv.Publish(ps.topic, g.Message(i, nil).Data, map[string]string{"source": "meta"})
	}

	// The first run: no event row can be written, and the job fails.
	first := *o
	first.Source, first.PubSub, first.FailEventWritesFor = SourcePubSub, ps.cfg, 5*time.Minute
	if err := first.Validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := RunLocal(context.Background(), &first, true, nil); err == nil {
		t.Fatal("the first run succeeded although its event sink failed throughout")
	}
	// Its receivers close at their idle timeout, releasing what they hold;
	// close them now.
	registry.Lock()
	var rs []*pubsubReceiver
	for _, r := range registry.m {
		rs = append(rs, r)
	}
	registry.Unlock()
	for _, r := range rs {
		r.close()
	}
	waitReceivers(10 * time.Second)

	second := *o
	runLocalPubSub(t, &second, ps.cfg, time.Minute, ps.allAcked, nil) // appends, as a restart does
	// Every message Pub/Sub no longer holds (acked) must have its record in
	// the warehouse; the rest it redelivers to the next run (the second ran
	// until all were acked or a minute had passed, and pstest may hold a few
	// back until their lease lapses).
	w, err := OpenWarehouse(o.Warehouse)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Release()
	var lost []string
	unacked := 0
	for _, m := range ps.srv.Messages() {
		if m.Acks == 0 {
			unacked++
			continue
		}
		var n int
		if err := w.DB().QueryRow(`select (select count(*) from fact_marketing_events where event_id = ?)
			+ (select count(*) from dead_letter_events where message_id = ?)`, eventIDOf(m.Data), m.ID).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			lost = append(lost, m.ID)
		}
	}
	if len(lost) > 0 {
		t.Errorf("%d messages were acked and their records are not in the warehouse: lost (e.g. %v)", len(lost), head(lost))
	}
	var events, deadLetters int64
	if err := w.DB().QueryRow(`select (select count(distinct event_id) from fact_marketing_events),
		(select count(distinct message_id) from dead_letter_events)`).Scan(&events, &deadLetters); err != nil {
		t.Fatal(err)
	}
	want := g.Expected()
	t.Logf("after the failed run and a second one: %d of %d valid events and %d of %d malformed messages in the warehouse; %d messages not yet acked",
		events, want.Valid, deadLetters, want.Malformed, unacked)
	if events+int64(unacked) < want.Valid || unacked > int(g.Events)/10 {
		t.Errorf("the second run read too little to tell: %d of %d events in the warehouse, %d messages unacked", events, want.Valid, unacked)
	}
}

// TestLocalPubSubIntoBigQueryAcksOnlyWrittenRows: the same rule with the
// BigQuery sink, against the in-process fake of the Write API with the real
// client. The fake fails every append to fact_marketing_events for the first
// 3 s, and refuses one event row in ten for good, which the sink turns into
// SINK_REJECTED dead letters. At each ack the message's record must already
// be stored: its event as a fact row, or as a refused row's dead letter, or
// the message itself as a dead letter. The sink settles a row once its
// append is answered and a refused row once its dead letter is; without
// that, the source acks at the bundle's commit, before anything is stored.
func TestLocalPubSubIntoBigQueryAcksOnlyWrittenRows(t *testing.T) {
	if !PrismRetriesBundles() {
		t.Skip("needs the patched Prism that retries failed bundles: run make test (pipelines/prism)")
	}
	api := startFakeWriteAPI(t)
	refused := func(id string) bool { return fnvHash(id)%10 == 0 }
	api.keep(t, func(table string, vals []any) string {
		if id, _ := vals[0].(string); table == transforms.TableEvents && refused(id) {
			return "injected refusal"
		}
		return ""
	}, transforms.TableEvents, 3*time.Second)

	ps := newPstestSub(t)
	o := testOptions(t, 1)
	o.Sink, o.BigQuery = SinkBigQuery, BigQueryTarget{Project: "p", Dataset: "d"}
	traffic := publishSettleTraffic(ps, o)
	valid := traffic.valid()
	nRefused := 0
	for id := range valid {
		if refused(id) {
			nRefused++
		}
	}
	if nRefused == 0 {
		t.Fatal("no event is refused: the test proves nothing")
	}
	stored := func(id, msgID string) (bool, error) {
		return api.has(transforms.TableEvents, "event_id", id) ||
			api.has(transforms.TableDeadLetters, "event_id", id) ||
			api.has(transforms.TableDeadLetters, "message_id", msgID), nil
	}
	audit := auditAcks(t, traffic, stored, nil)
	unsettled := psStats.unsettled.Load()
	if sum := runLocalPubSub(t, o, ps.cfg, 2*time.Minute, ps.allAcked, nil); sum != nil {
		t.Errorf("a run into BigQuery returned a warehouse summary: %+v", sum)
	}
	api.mu.Lock()
	failed := api.failed
	api.mu.Unlock()
	if failed == 0 {
		t.Fatal("no append to fact_marketing_events failed: the test proves nothing")
	}
	// Every refused event is a SINK_REJECTED dead letter, every other
	// valid one a fact row.
	for id := range valid {
		table := transforms.TableEvents
		if refused(id) {
			table = transforms.TableDeadLetters
		}
		if !api.has(table, "event_id", id) {
			t.Errorf("event %s is not in %s", id, table)
		}
	}
	audit.verify(t, ps, traffic, unsettled, stored)
	t.Logf("%d acks, %d of them repeats acked before their first copy's row; %d appends failed; %d events refused",
		audit.acked, len(audit.early), failed, nRefused)
}

// fnvHash is FNV-1a of s, to pick a stable share of ids.
func fnvHash(s string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(s))
	return h.Sum32()
}

// TestAnUnwritableDeadLetterIsSettled: a dead letter BigQuery refused ends in
// the log (logUnwritableFn). Its message is acknowledged there, or the
// source would hold it until its run ends and a restart would read it, to
// have it refused again, for as long as the table drifts.
func TestAnUnwritableDeadLetterIsSettled(t *testing.T) {
	acked := ackRecorder(t)
	r := settlingReceiver(t)
	m := delivered(r, "u")
	if !r.track(m) {
		t.Fatal("a first delivery was not emitted")
	}
	f := &logUnwritableFn{}
	f.Setup()
	f.ProcessElement(context.Background(), transforms.DeadLetterRow{ErrorMessage: "refused", Delivery: m.delivery})
	if got := acked(); !slices.Equal(got, []string{"u"}) {
		t.Errorf("logging the unwritable dead letter acked %v, want [u]", got)
	}
	if len(r.pending) != 0 || len(r.slots) != 0 {
		t.Errorf("the receiver holds %d pending and %d slots, want none", len(r.pending), len(r.slots))
	}
}

// TestLocalPubSubSettlesEnrichDeadLetters: with enrichment on, Bigtable (the
// in-process bttest) goes away at the 100th ack. The events
// Enrich cannot look up after that become ENRICH_UNAVAILABLE dead letters,
// which carry their delivery to the sink like any other record: each message
// is acked once its fact or dead letter is in the warehouse, and none is
// left unsettled. A dead letter that lost its delivery would hold its
// message until the run ended (and have it read again by the next).
func TestLocalPubSubSettlesEnrichDeadLetters(t *testing.T) {
	ctx := context.Background()
	srv, err := enrichment.StartInProcess()
	if err != nil {
		t.Fatal(err)
	}
	var down sync.Once
	outage := func() { down.Do(srv.Close) }
	t.Cleanup(outage)

	ps := newPstestSub(t)
	o := testOptions(t, 1)
	traffic := publishSettleTraffic(ps, o)
	o.Generator = traffic.g // what SeedEnrichment seeds
	direct := enrichment.Config{Project: "test", Instance: "enrichment", Endpoint: srv.Addr}.WithDefaults()
	if err := SeedEnrichment(ctx, &direct, traffic.g, nil, true); err != nil {
		t.Fatal(err)
	}
	o.Enrich, o.Enrichment = true, direct
	o.Enrichment.OnUnavailable = enrichment.OnUnavailableDeadLetter
	// Fail fast once Bigtable is gone, and stay open for the rest of the run.
	o.Enrichment.RetryBudget, o.Enrichment.AttemptTimeout = time.Second, 500*time.Millisecond
	o.Enrichment.BreakerCooldown = time.Minute
	o.Enrichment.MicroBatchEvents = 64

	var acks atomic.Int64
	audit := auditAcks(t, traffic, inWarehouse(o.Warehouse), func() {
		if acks.Add(1) == 100 { // some enriched, the rest after the outage
			outage()
		}
	})
	unsettled := psStats.unsettled.Load()
	sum := runLocalPubSub(t, o, ps.cfg, 2*time.Minute, ps.allAcked, nil)
	x := sum.Enrichment
	if x.DeadLettered == 0 || x.Enriched == 0 {
		t.Fatalf("want events enriched before the outage and dead-lettered after it: %+v", x)
	}
	if got := sum.DeadLettersByCode[transforms.StageEnrich+"/"+transforms.CodeEnrichUnavailable]; got != x.DeadLettered {
		t.Errorf("%d ENRICH_UNAVAILABLE rows in the warehouse, Enrich counted %d", got, x.DeadLettered)
	}
	if p := sum.Problems(); len(p) > 0 {
		t.Errorf("counts do not reconcile: %v", p)
	}
	audit.verify(t, ps, traffic, unsettled, inWarehouse(o.Warehouse))
	t.Logf("%d acks; %d events enriched, %d dead-lettered as ENRICH_UNAVAILABLE", audit.acked, x.Enriched, x.DeadLettered)
}
