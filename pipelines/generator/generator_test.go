package generator_test

import (
	"bytes"
	"math"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/campaignpulse/campaignpulse/pipelines/generator"
	"github.com/campaignpulse/campaignpulse/transforms"
)

// testConfig is Default with a fixed start, so two calls agree even across
// an hour boundary.
func testConfig(events int64) generator.Config {
	c := generator.Default()
	c.Start = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	c.Events = events
	return c
}

func sameMessage(a, b transforms.Message) bool {
	return bytes.Equal(a.Data, b.Data) && a.PublishTime == b.PublishTime && a.Source == b.Source
}

func TestMessageDeterministic(t *testing.T) {
	c1, c2 := testConfig(0), testConfig(0)
	for i := int64(0); i < 3000; i++ {
		a, b := c1.Message(i, nil), c2.Message(i, nil)
		if !sameMessage(a, b) {
			t.Fatalf("event %d differs between two equal configs:\n%s\n%s", i, a.Data, b.Data)
		}
		if again := c1.Message(i, nil); !sameMessage(a, again) {
			t.Fatalf("event %d differs between two calls", i)
		}
	}
}

// Event i depends only on the seed and i: generating it alone, out of order
// or after others gives the same message.
func TestMessageIndependentOfOtherIndices(t *testing.T) {
	const n = 2000
	c := testConfig(n)
	forward := make([]transforms.Message, n)
	for i := int64(0); i < n; i++ {
		forward[i] = c.Message(i, nil)
	}
	fresh := testConfig(n)
	order := []int64{n - 1, 0, 977, 3, n / 2, 1500, 1}
	for i := int64(n - 1); i >= 0; i -= 7 {
		order = append(order, i)
	}
	for _, i := range order {
		if got := fresh.Message(i, nil); !sameMessage(got, forward[i]) {
			t.Fatalf("event %d generated out of order differs", i)
		}
	}
	// Far indices work on their own too.
	for _, i := range []int64{1_000_000, 123_456_789} {
		alone := testConfig(0)
		if !sameMessage(alone.Message(i, nil), c.Message(i, nil)) {
			t.Errorf("event %d differs", i)
		}
	}
}

// Message appends to buf: a reused buffer gives the same bytes as nil.
func TestMessageReusesBuffer(t *testing.T) {
	c := testConfig(0)
	buf := make([]byte, 0, 1024)
	for i := int64(0); i < 2000; i++ {
		got := c.Message(i, buf[:0])
		if want := c.Message(i, nil); !sameMessage(got, want) {
			t.Fatalf("event %d with a reused buffer:\n%s\nwant\n%s", i, got.Data, want.Data)
		}
		buf = got.Data
	}
}

func TestSeedChangesTheStream(t *testing.T) {
	a, b := testConfig(0), testConfig(0)
	b.Seed = a.Seed + 1
	same := 0
	for i := int64(0); i < 200; i++ {
		if bytes.Equal(a.Message(i, nil).Data, b.Message(i, nil).Data) {
			same++
		}
	}
	// Only an empty payload (one of the malformations) could coincide.
	if same > 10 {
		t.Errorf("%d of 200 payloads identical across seeds", same)
	}
}

func TestArrivalTimes(t *testing.T) {
	c := testConfig(0)
	for i := int64(0); i < 1000; i++ {
		want := c.Start.UnixMilli() + int64(float64(i)*1000/c.Rate)
		if got := c.Message(i, nil).PublishTime; got != want {
			t.Fatalf("event %d arrives at %d, want Start + i/Rate = %d", i, got, want)
		}
	}
}

func TestKindDistribution(t *testing.T) {
	const n = 100_000
	c := testConfig(n)
	counts := map[generator.Kind]int{}
	codes := map[string]int{}
	for i := int64(0); i < n; i++ {
		k := c.Kind(i)
		counts[k]++
		if k == generator.Malformed {
			codes[c.MalformedCode(i)]++
		}
	}
	tests := []struct {
		kind generator.Kind
		rate float64
	}{
		{generator.Duplicate, c.DuplicateRate},
		{generator.Malformed, c.MalformedRate},
		{generator.Late, c.LateRate},
		{generator.TooLate, c.TooLateRate},
		{generator.Normal, 1 - c.DuplicateRate - c.MalformedRate - c.LateRate - c.TooLateRate},
	}
	for _, tt := range tests {
		want := tt.rate * n
		if got := float64(counts[tt.kind]); math.Abs(got-want) > 0.2*want {
			t.Errorf("%s: %v events, want %v ± 20%%", tt.kind, got, want)
		}
	}
	// The malformations cycle through every code they list.
	for _, code := range generator.MalformedCodes() {
		if codes[code] == 0 {
			t.Errorf("no malformed event with %s in %d events", code, n)
		}
	}
	if len(codes) != len(generator.MalformedCodes()) {
		t.Errorf("malformed codes %v, want exactly %v", codes, generator.MalformedCodes())
	}
}

func TestMalformedCodesAreRegistered(t *testing.T) {
	codes := generator.MalformedCodes()
	seen := map[string]bool{}
	for _, code := range codes {
		if _, ok := transforms.ErrorCodes[code]; !ok {
			t.Errorf("%s is not a transforms error code", code)
		}
		if seen[code] {
			t.Errorf("%s listed twice", code)
		}
		seen[code] = true
	}
}

func TestKindString(t *testing.T) {
	want := map[generator.Kind]string{generator.Normal: "normal", generator.Late: "late", generator.TooLate: "too_late",
		generator.Duplicate: "duplicate", generator.Malformed: "malformed"}
	for k, s := range want {
		if k.String() != s {
			t.Errorf("Kind(%d).String() = %q, want %q", k, k.String(), s)
		}
	}
}

// outcome is what the pipeline's parse and validate stages make of event i.
type outcome struct {
	msg  transforms.Message
	ev   transforms.Event // after Validate, when valid
	code string           // "" when valid
}

func runStages(c *generator.Config, i int64) outcome {
	msg := c.Message(i, nil)
	ev, rej := transforms.Parse(msg, c.PayloadLimit())
	if rej != nil {
		return outcome{msg: msg, code: rej.Code}
	}
	if rej := transforms.Validate(&ev, msg.PublishTime, transforms.ValidateConfig{MaxFutureSkew: transforms.DefaultMaxFutureSkew}); rej != nil {
		return outcome{msg: msg, code: rej.Code}
	}
	return outcome{msg: msg, ev: ev}
}

// TestExpectedMatchesParseAndValidate checks Expected against what Parse and
// Validate really do with every generated message.
//
// Under every payload limit the pipeline accepts with the generator (from
// MaxEventBytes up), and with ids as long as the flags allow, only the
// oversize events exceed it.
func TestExpectedMatchesParseAndValidate(t *testing.T) {
	for _, tc := range []struct {
		name             string
		n                int64
		limit            int
		campaigns, users int
	}{
		{"default", 30_000, 0, 0, 0},
		{"smallest limit", 10_000, generator.MaxEventBytes, 0, 0},
		{"smallest limit, long ids", 10_000, generator.MaxEventBytes, 1 << 30, 1 << 30},
		{"1 MiB limit", 10_000, 1 << 20, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := testConfig(tc.n)
			c.MaxPayloadBytes = tc.limit
			if tc.campaigns > 0 {
				c.Campaigns, c.Users = tc.campaigns, tc.users
			}
			expectedMatchesParseAndValidate(t, &c, tc.n)
		})
	}
}

func expectedMatchesParseAndValidate(t *testing.T, c *generator.Config, n int64) {
	got := generator.Counts{Events: n, DeadLetterCodes: map[string]int64{}}
	for i := int64(0); i < n; i++ {
		o := runStages(c, i)
		kind := c.Kind(i)
		switch {
		case o.code != "":
			got.Malformed++
			got.DeadLetterCodes[o.code]++
			if kind != generator.Malformed {
				t.Errorf("event %d (%s) rejected with %s: %.200s", i, kind, o.code, o.msg.Data)
			} else if want := c.MalformedCode(i); o.code != want {
				t.Errorf("malformed event %d rejected with %s, generated for %s", i, o.code, want)
			}
		case kind == generator.Duplicate:
			got.Duplicates++
		default:
			got.Valid++
			if kind == generator.Malformed {
				t.Errorf("malformed event %d (%s) passed: %.200s", i, c.MalformedCode(i), o.msg.Data)
			}
		}
	}
	want := c.Expected()
	if got.Valid != want.Valid || got.Duplicates != want.Duplicates || got.Malformed != want.Malformed || got.Events != want.Events {
		t.Errorf("parse+validate: valid %d duplicates %d malformed %d of %d; Expected: valid %d duplicates %d malformed %d of %d",
			got.Valid, got.Duplicates, got.Malformed, got.Events, want.Valid, want.Duplicates, want.Malformed, want.Events)
	}
	if !reflect.DeepEqual(got.DeadLetterCodes, want.DeadLetterCodes) {
		t.Errorf("dead letters by code %v, Expected %v", got.DeadLetterCodes, want.DeadLetterCodes)
	}
	if want.Valid+want.Duplicates+want.Malformed != want.Events {
		t.Errorf("Expected does not reconcile: %d + %d + %d != %d", want.Valid, want.Duplicates, want.Malformed, want.Events)
	}
	if want.Valid == 0 || want.Duplicates == 0 || want.Malformed == 0 || want.Late == 0 || want.TooLate == 0 {
		t.Errorf("a kind is missing from %d events: %+v", n, want)
	}
}

func TestExpectedCountsKinds(t *testing.T) {
	const n = 20_000
	c := testConfig(n)
	counts := map[generator.Kind]int64{}
	for i := int64(0); i < n; i++ {
		counts[c.Kind(i)]++
	}
	want := c.Expected()
	if want.Late != counts[generator.Late] || want.TooLate != counts[generator.TooLate] ||
		want.Duplicates != counts[generator.Duplicate] || want.Malformed != counts[generator.Malformed] ||
		want.Valid != counts[generator.Normal]+counts[generator.Late]+counts[generator.TooLate] {
		t.Errorf("Expected %+v does not match kinds %v", want, counts)
	}
	zeroCfg := testConfig(0)
	if zero := zeroCfg.Expected(); zero.Events != 0 || zero.Valid != 0 || len(zero.DeadLetterCodes) != 0 {
		t.Errorf("Expected of no events = %+v", zero)
	}
}

func TestDuplicatesRepeatAnEarlierEvent(t *testing.T) {
	const n = 30_000
	c := testConfig(n)
	first := map[string]int64{} // payload → first index
	dups := 0
	for i := int64(0); i < n; i++ {
		msg := c.Message(i, nil)
		key := string(msg.Data)
		j, seen := first[key]
		if c.Kind(i) == generator.Malformed {
			continue // constant malformations (empty, an array) repeat by design
		}
		if c.Kind(i) != generator.Duplicate {
			if seen {
				t.Errorf("event %d (%s) repeats event %d's payload", i, c.Kind(i), j)
			}
			if !seen {
				first[key] = i
			}
			continue
		}
		dups++
		if !seen {
			t.Errorf("duplicate %d repeats no earlier payload: %.200s", i, msg.Data)
			continue
		}
		if k := c.Kind(j); k != generator.Normal && k != generator.Late && k != generator.TooLate {
			t.Errorf("duplicate %d repeats event %d of kind %s", i, j, k)
		}
		orig, dup := runStages(&c, j), runStages(&c, i)
		if orig.code != "" || dup.code != "" {
			t.Errorf("duplicate %d or its original %d is invalid: %q %q", i, j, orig.code, dup.code)
			continue
		}
		if orig.ev.EventID != dup.ev.EventID || orig.ev.EventTime != dup.ev.EventTime {
			t.Errorf("duplicate %d: id/time %s/%d, original %d: %s/%d", i, dup.ev.EventID, dup.ev.EventTime, j, orig.ev.EventID, orig.ev.EventTime)
		}
		// A retry comes within half a second of the original.
		if d := dup.msg.PublishTime - orig.msg.PublishTime; d <= 0 || d > 500 {
			t.Errorf("duplicate %d arrives %d ms after its original %d", i, d, j)
		}
		// Whichever copy Dedup keeps falls on the same side of the lateness rule.
		if a, b := lateness(&c, orig.ev), lateness(&c, dup.ev); a != b {
			t.Errorf("duplicate %d is %s, its original %d is %s", i, b, j, a)
		}
	}
	if dups == 0 {
		t.Fatal("no duplicates generated")
	}
}

// lateness applies the pipeline's rule: the watermark estimate is arrival
// minus the skew; late once it reaches the window's end, too late once it
// reaches the end plus the allowed lateness.
func lateness(c *generator.Config, ev transforms.Event) generator.Kind {
	size := c.WindowSize.Milliseconds()
	end := (ev.EventTime/size)*size + size // event times here are positive
	watermark := ev.IngestTime - c.WatermarkSkew.Milliseconds()
	switch {
	case watermark >= end+c.AllowedLateness.Milliseconds():
		return generator.TooLate
	case watermark >= end:
		return generator.Late
	}
	return generator.Normal
}

func TestLateEventsClassifyAsGenerated(t *testing.T) {
	configs := map[string]generator.Config{"default": testConfig(0)}
	other := testConfig(0)
	other.Seed, other.WindowSize, other.AllowedLateness, other.WatermarkSkew = 7, 30*time.Second, 5*time.Minute, 2*time.Second
	other.LateRate, other.TooLateRate = 0.1, 0.05
	configs["short windows"] = other
	for name, c := range configs {
		t.Run(name, func(t *testing.T) {
			byKind := map[generator.Kind]int{}
			for i := int64(0); i < 20_000; i++ {
				kind := c.Kind(i)
				if kind == generator.Malformed || kind == generator.Duplicate {
					continue
				}
				o := runStages(&c, i)
				if o.code != "" {
					t.Errorf("%s event %d rejected with %s", kind, i, o.code)
					continue
				}
				if o.ev.IngestTime != o.msg.PublishTime {
					t.Fatalf("event %d: IngestTime %d, PublishTime %d", i, o.ev.IngestTime, o.msg.PublishTime)
				}
				if got := lateness(&c, o.ev); got != kind {
					t.Errorf("event %d generated %s classifies as %s (event time %d, arrival %d)", i, kind, got, o.ev.EventTime, o.ev.IngestTime)
				}
				byKind[kind]++
			}
			for _, k := range []generator.Kind{generator.Normal, generator.Late, generator.TooLate} {
				if byKind[k] == 0 {
					t.Errorf("no %s events checked", k)
				}
			}
		})
	}
}

func TestIDs(t *testing.T) {
	tests := []struct{ got, want string }{
		{generator.CampaignID(7), "cmp_0007"},
		{generator.CampaignID(12345), "cmp_12345"},
		{generator.UserID(42), "usr_000042"},
		{generator.UserID(0), "usr_000000"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
	for n := 0; n < 100; n++ {
		if c := generator.CampaignCurrency(n); !slices.Contains([]string{"USD", "EUR", "GBP"}, c) {
			t.Errorf("CampaignCurrency(%d) = %q", n, c)
		}
	}
}

// Conversions of one campaign all use the campaign's currency, so the
// aggregates of a generated run never say MIXED.
func TestConversionsUseTheCampaignCurrency(t *testing.T) {
	c := testConfig(0)
	cur := map[string]string{}
	for i := int64(0); i < 30_000; i++ {
		if k := c.Kind(i); k == generator.Malformed {
			continue
		}
		o := runStages(&c, i)
		if o.code != "" || o.ev.EventType != transforms.TypeConversion {
			continue
		}
		if prev, ok := cur[o.ev.CampaignID]; ok && prev != o.ev.Currency {
			t.Fatalf("campaign %s converts in %s and %s", o.ev.CampaignID, prev, o.ev.Currency)
		}
		cur[o.ev.CampaignID] = o.ev.Currency
	}
	if len(cur) == 0 {
		t.Fatal("no conversions")
	}
}
