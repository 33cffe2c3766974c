package transforms

import (
	"testing"
	"time"

	"github.com/axiomhq/hyperloglog"
)

var benchPayload = []byte(`{"schema_version":"1.0","event_id":"3f2a9c0e8b7d4e1fa2c3b4d5e6f70812","event_type":"conversion","timestamp":"2026-11-22T10:15:30.123Z","user_id":"usr_004211","campaign_id":"cmp_0007","platform":"meta","ad_id":"ad_0007_3","conversion_value":129.9,"currency":"EUR","utm_source":"meta","utm_medium":"paid_social","utm_campaign":"cmp_0007"}`)

// BenchmarkParse measures decoding one typical event.
func BenchmarkParse(b *testing.B) {
	msg := Message{Data: benchPayload, PublishTime: time.Date(2026, 11, 22, 10, 15, 31, 0, time.UTC).UnixMilli()}
	b.SetBytes(int64(len(benchPayload)))
	for b.Loop() {
		if _, rej := Parse(msg, DefaultMaxPayloadBytes); rej != nil {
			b.Fatal(rej)
		}
	}
}

// BenchmarkValidate measures the contract's rules on one parsed event.
func BenchmarkValidate(b *testing.B) {
	msg := Message{Data: benchPayload, PublishTime: time.Date(2026, 11, 22, 10, 15, 31, 0, time.UTC).UnixMilli()}
	ev, rej := Parse(msg, DefaultMaxPayloadBytes)
	if rej != nil {
		b.Fatal(rej)
	}
	cfg := ValidateConfig{MaxFutureSkew: time.Hour}
	for b.Loop() {
		e := ev
		if rej := Validate(&e, msg.PublishTime, cfg); rej != nil {
			b.Fatal(rej)
		}
	}
}

// BenchmarkCombineAdd measures folding one event into an aggregate (what
// PreAggregate does per event), over 10,000 users.
func BenchmarkCombineAdd(b *testing.B) {
	evs := make([]Event, 10_000)
	for i := range evs {
		evs[i] = Event{EventID: "e", UserID: "usr_" + string(rune('a'+i%26)) + string(rune('a'+i/26%26)) + string(rune('a'+i/676%26)),
			EventType: TypeConversion, ConversionValue: 12.5, HasConversionValue: true, Currency: "USD"}
	}
	var m Metrics
	i := 0
	for b.Loop() {
		m.Add(&evs[i%len(evs)])
		i++
	}
}

// BenchmarkCombineMerge measures MergeMetricsFn merging two partials of
// 1,000 users each (what the CombinePerKey does per partial).
func BenchmarkCombineMerge(b *testing.B) {
	part := func(offset int) Metrics {
		m := Metrics{Users: hyperloglog.New14()}
		for i := 0; i < 1000; i++ {
			m.Add(&Event{UserID: "u" + string(rune(offset+i)), EventType: TypeView})
		}
		return m
	}
	a, c := part(0), part(1000)
	fn := &MergeMetricsFn{}
	for b.Loop() {
		acc := fn.CreateAccumulator()
		acc = fn.AddInput(acc, a)
		acc = fn.AddInput(acc, c)
		_ = fn.ExtractOutput(acc)
	}
}
