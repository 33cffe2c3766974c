package transforms

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"math"
	"reflect"
	"strings"
	"testing"
	"unsafe"
)

// Exported aliases of the coders for the external fuzz tests (fuzz_test.go
// is package transforms_test because it imports the generator, which imports
// this package). They exist only in test builds.
var (
	EncodeEventForTest      = encodeEvent
	DecodeEventForTest      = decodeEvent
	EncodeEventBatchForTest = encodeEventBatch
	DecodeEventBatchForTest = decodeEventBatch
	EncodeMetricsForTest    = encodeMetrics
	DecodeMetricsForTest    = decodeMetrics
)

// fullCodecEvent sets every field of Event to a distinct, non-zero value.
func fullCodecEvent() Event {
	return Event{
		EventID: "e-1", EventType: TypeConversion, EventTime: 1_772_366_400_123, UserID: "u-1", CampaignID: "c-1",
		Platform: "youtube", AdID: "ad-1", EngagementScore: 12.5, HasEngagementScore: true,
		ConversionValue: 19.99, HasConversionValue: true, Currency: "EUR", UTMSource: "s", UTMMedium: "m",
		UTMCampaign: "camp", UTMTerm: "term", UTMContent: "content", SchemaVersion: "1.1",
		Timestamp: "2026-03-01T12:00:00.123Z", Raw: []byte(`{"raw":"bytes"}`), IngestTime: 1_772_366_400_999,
		Source: "pubsub", ReplayOf: "2026-03-01T12:05:00.5Z", MessageID: "1234567890", Delivery: 3<<40 | 12345, ReadWatermark: 1_772_366_390_000, Late: true, TooLate: true,
		Enrichment: &Enrichment{
			Status: EnrichOK, UserFound: true, UserSegment: "loyal", UserCountry: "DE", UserLifetimeValue: 1234.5,
			UserFirstSeen: 1_700_000_000_000, CampaignFound: true, CampaignName: "Spring", CampaignObjective: "conversions",
			CampaignChannel: "social", Advertiser: "acme", CampaignDailyBudget: 500, CampaignStart: 1_760_000_000_000,
			CampaignEnd: 1_780_000_000_000,
		},
	}
}

func TestEventCodecRoundTrip(t *testing.T) {
	full := fullCodecEvent()
	tests := []struct {
		name string
		ev   Event
	}{
		{"zero", Event{}},
		{"full", full},
		{"negative times", Event{EventID: "neg", EventTime: -1, IngestTime: -1_000_000_000_000}},
		{"extreme times", Event{EventTime: math.MinInt64, IngestTime: math.MaxInt64}},
		{"empty strings with flags", Event{HasEngagementScore: true, HasConversionValue: true}},
		{"flags without values", Event{Late: true}},
		{"unavailable enrichment", Event{EventID: "x", Enrichment: &Enrichment{Status: EnrichUnavailable}}},
		{"unknown user and campaign", Event{EventID: "x", Enrichment: &Enrichment{Status: EnrichOK}}},
		{"values without flags", Event{EngagementScore: 3, ConversionValue: -7.25}},
		{"binary raw", Event{Raw: []byte{0, 1, 2, 0xff, 0xfe, '\n'}}},
		{"long raw", Event{Raw: bytes.Repeat([]byte("xyz"), 50_000)}},
		{"non-ASCII and NUL in strings", Event{EventID: "é\x00☕", UTMTerm: "\xff\xfe", Source: strings.Repeat("s", 300)}},
		{"special floats", Event{EngagementScore: math.Inf(1), ConversionValue: math.Inf(-1)}},
		{"smallest float", Event{EngagementScore: math.SmallestNonzeroFloat64, ConversionValue: math.MaxFloat64}},
	}
	// Every combination of the four flags.
	for mask := 0; mask < 16; mask++ {
		ev := full
		ev.HasEngagementScore, ev.HasConversionValue = mask&1 != 0, mask&2 != 0
		ev.Late, ev.TooLate = mask&4 != 0, mask&8 != 0
		tests = append(tests, struct {
			name string
			ev   Event
		}{"flags " + string(rune('a'+mask)), ev})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := encodeEvent(tt.ev)
			got, err := decodeEvent(b)
			if err != nil {
				t.Fatalf("decodeEvent: %v", err)
			}
			if !reflect.DeepEqual(got, tt.ev) {
				t.Errorf("round trip =\n %+v\nwant\n %+v", got, tt.ev)
			}
		})
	}
}

func TestEventCodecNaNKeepsBits(t *testing.T) {
	nan := math.Float64frombits(0x7ff8_0000_dead_beef)
	got, err := decodeEvent(encodeEvent(Event{EngagementScore: nan, ConversionValue: math.Copysign(0, -1)}))
	if err != nil {
		t.Fatal(err)
	}
	if math.Float64bits(got.EngagementScore) != math.Float64bits(nan) {
		t.Errorf("NaN bits %x, want %x", math.Float64bits(got.EngagementScore), math.Float64bits(nan))
	}
	if !math.Signbit(got.ConversionValue) {
		t.Error("-0 lost its sign")
	}
}

func TestDecodedEventDoesNotAliasBuffer(t *testing.T) {
	ev := fullCodecEvent()
	b := encodeEvent(ev)
	got, err := decodeEvent(b)
	if err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = 'Z'
	}
	if !reflect.DeepEqual(got, ev) {
		t.Errorf("decoded event changed with its buffer:\n %+v", got)
	}
}

func TestEventBatchCodecRoundTrip(t *testing.T) {
	full := fullCodecEvent()
	tests := []struct {
		name   string
		events []Event
	}{
		{"empty", nil},
		{"one", []Event{full}},
		{"several", []Event{full, {}, {EventID: "x", EventTime: -5, Raw: []byte("r")}, full}},
		{"many", func() []Event {
			evs := make([]Event, 300)
			for i := range evs {
				evs[i] = full
				evs[i].EventTime += int64(i)
				evs[i].Late = i%2 == 0
			}
			return evs
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeEventBatch(encodeEventBatch(EventBatch{Events: tt.events}))
			if err != nil {
				t.Fatalf("decodeEventBatch: %v", err)
			}
			if len(got.Events) != len(tt.events) {
				t.Fatalf("%d events, want %d", len(got.Events), len(tt.events))
			}
			for i := range tt.events {
				if !reflect.DeepEqual(got.Events[i], tt.events[i]) {
					t.Errorf("event %d =\n %+v\nwant\n %+v", i, got.Events[i], tt.events[i])
				}
			}
		})
	}
}

// Every strict prefix of a valid encoding is a truncated buffer: decoding it
// must fail, never panic and never succeed.
func TestEventCodecTruncated(t *testing.T) {
	events := []Event{{}, fullCodecEvent(), {EventID: "a", Raw: nil}, {EventTime: math.MinInt64}}
	for k, ev := range events {
		b := encodeEvent(ev)
		for n := 0; n < len(b); n++ {
			if _, err := decodeEvent(b[:n:n]); err == nil {
				t.Errorf("event %d: decodeEvent of %d of %d bytes succeeded", k, n, len(b))
			}
		}
	}
	batches := []EventBatch{{}, {Events: []Event{fullCodecEvent()}}, {Events: []Event{{}, fullCodecEvent(), {}}}}
	for k, batch := range batches {
		b := encodeEventBatch(batch)
		for n := 0; n < len(b); n++ {
			if _, err := decodeEventBatch(b[:n:n]); err == nil {
				t.Errorf("batch %d: decodeEventBatch of %d of %d bytes succeeded", k, n, len(b))
			}
		}
	}
}

func TestEventBatchCodecRejectsCorruptHeaders(t *testing.T) {
	valid := encodeEventBatch(EventBatch{Events: []Event{{EventID: "a"}}})
	wrongVersion := append([]byte{codecVersion + 1}, valid[1:]...)
	// A count larger than the bytes that follow cannot be honest.
	hugeCount := binary.AppendUvarint([]byte{codecVersion}, 1<<40)
	moreThanEncoded := append(binary.AppendUvarint([]byte{codecVersion}, 2), valid[2:]...)
	overlongVarint := []byte{codecVersion, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}
	for name, b := range map[string][]byte{
		"wrong version": wrongVersion, "huge count": hugeCount, "count above content": moreThanEncoded,
		"overflowing count": overlongVarint,
	} {
		if got, err := decodeEventBatch(b); err == nil {
			t.Errorf("%s: decoded %d events, want an error", name, len(got.Events))
		}
	}
}

func TestEventCodecRejectsOverlongField(t *testing.T) {
	// flags, then a string length far past the end of the buffer.
	b := binary.AppendUvarint([]byte{0}, 1<<62)
	b = append(b, "abc"...)
	if _, err := decodeEvent(b); err == nil {
		t.Error("decodeEvent accepted a string longer than the buffer")
	}
}

// TestEventCarriesNoContextBlock: an event holds a pointer to its enrichment,
// not the block, so the copies that Parse, Validate, BatchForDedup and Dedup's
// decoder make before Enrich are a third smaller; and an event without one
// crosses the codec as one byte and comes back without one.
func TestEventCarriesNoContextBlock(t *testing.T) {
	if size, block := unsafe.Sizeof(Event{}), unsafe.Sizeof(Enrichment{}); size+block/2 > 488 {
		t.Errorf("Event is %d bytes with a %d-byte enrichment block; the pointer keeps it to %d", size, block, 488-block+8)
	}
	ev := Event{EventID: "x"}
	b := appendEvent(nil, &ev)
	ev.Enrichment = &Enrichment{}
	if b2 := appendEvent(nil, &ev); len(b2) != len(b) {
		t.Errorf("an empty status is %d bytes, nil %d: both mean the lookup did not run", len(b2), len(b))
	}
	var got Event
	r := reader{s: string(b)}
	readEvent(&r, &got)
	if r.err != nil || got.Enrichment != nil || got.EventID != "x" {
		t.Errorf("decoded %+v (err %v): want event x without a context", got, r.err)
	}
}

// v2Full is fullCodecEvent without its MessageID, Delivery and ReadWatermark as the build
// before flagMessageID encoded it (session 27's head).
const v2Full = "0f03652d310a636f6e76657273696f6e03752d3103632d3107796f75747562650461642d31034555520173016d0463616d70047465726d07636f6e74656e7403312e3118323032362d30332d30315431323a30303a30302e3132335a0670756273756216323032362d30332d30315431323a30353a30302e355af6a9a8949567ceb7a894956700000000000029403d0ad7a370fd33400f7b22726177223a226279746573227d08656e72696368656403056c6f79616c02444506537072696e670b636f6e76657273696f6e7306736f6369616c0461636d6500000000004a93400000000000407f4080a0abfef9628080e682b96680a0a484ce67"

// TestEventWithoutMessageIDEncodesAsBefore: the message id and the delivery
// are behind flags, so an event without them (every event past Validate but
// those of a source that settles, every event in Dedup's state) has the
// bytes it had before the fields existed, and what an older build wrote
// still decodes: a running job can be updated in place.
func TestEventWithoutMessageIDEncodesAsBefore(t *testing.T) {
	ev := fullCodecEvent()
	ev.MessageID, ev.Delivery, ev.ReadWatermark = "", 0, 0
	if got := hex.EncodeToString(encodeEvent(ev)); got != v2Full {
		t.Errorf("encoding changed:\n got %s\nwant %s", got, v2Full)
	}
	old, _ := hex.DecodeString(v2Full)
	got, err := decodeEvent(old)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, ev) {
		t.Errorf("decoded %+v\nwant %+v", got, ev)
	}
}
