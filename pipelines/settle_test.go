package pipelines

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"github.com/campaignpulse/campaignpulse/pipelines/generator"
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
	g := generator.Default()
	g.Events, g.Rate, g.Start = 800, 200, time.Now().UTC()
	g.WindowSize, g.AllowedLateness, g.WatermarkSkew = o.Window.Size, o.Window.AllowedLateness, o.Window.WatermarkSkew
	g.LateRate, g.TooLateRate, g.DuplicateRate, g.MalformedRate = 0, 0, 0.05, 0.05
	copies := map[string]int{} // event id → messages that carry it
	for i := int64(0); i < g.Events; i++ {
		m := g.Message(i, nil)
		if id := eventIDOf(m.Data); id != "" {
			copies[id]++
		}
		ps.srv.Publish(ps.topic, m.Data, map[string]string{"source": "meta"})
	}

	var mu sync.Mutex
	var early []string // event ids acked with no row yet
	var errs []error
	acked := 0
	testAckHook = func(m *pubsub.Message) {
		mu.Lock()
		defer mu.Unlock()
		acked++
		w, err := OpenWarehouse(o.Warehouse)
		if err != nil {
			errs = append(errs, err)
			return
		}
		defer w.Release()
		id := eventIDOf(m.Data)
		var rows int
		if err := w.DB().QueryRow(`select (select count(*) from fact_marketing_events where event_id = ?)
			+ (select count(*) from dead_letter_events where message_id = ?)`, id, m.ID).Scan(&rows); err != nil {
			errs = append(errs, err)
			return
		}
		if rows == 0 {
			early = append(early, id)
		}
	}
	defer func() { testAckHook = nil }()
	unsettled := psStats.unsettled.Load()
	sum := runLocalPubSub(t, o, ps.cfg, 15*time.Second, nil)

	want := g.Expected()
	if sum.In != g.Events || sum.Valid != want.Valid || sum.DeadLetters != want.Malformed {
		t.Errorf("in=%d valid=%d dead_letter=%d, want %d, %d, %d", sum.In, sum.Valid, sum.DeadLetters, g.Events, want.Valid, want.Malformed)
	}
	if InjectedFailures.Load() == 0 {
		t.Fatal("no event-sink bundle failed: the test proves nothing")
	}
	acks := ps.waitAcked(t, 10*time.Second)
	var bad []string
	for data, n := range acks {
		if n != 1 {
			bad = append(bad, fmt.Sprintf("%.40s…:%d", data, n))
		}
	}
	if len(bad) > 0 {
		t.Errorf("%d messages not acked exactly once, e.g. %v", len(bad), head(bad))
	}
	if n := psStats.unsettled.Load() - unsettled; n != 0 {
		t.Errorf("%d messages were still unsettled when the job ended", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(errs) > 0 {
		t.Fatalf("reading the warehouse at an ack: %v", errs[0])
	}
	var notRepeats []string
	for _, id := range early {
		if id == "" || copies[id] < 2 {
			notRepeats = append(notRepeats, id)
		}
	}
	if len(notRepeats) > 0 {
		t.Fatalf("%d of %d acks came before the message's record was in the warehouse, and were not repeats, e.g. %v",
			len(notRepeats), acked, head(notRepeats))
	}
	t.Logf("%d acks, %d of them repeats acked before their first copy's row; %d event-sink bundles failed",
		acked, len(early), InjectedFailures.Load())
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
