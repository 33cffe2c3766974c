package transforms

import (
	"bytes"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
	"unsafe"
)

// cloneMetrics is a deep copy: a Metrics value shares its sketch.
func cloneMetrics(m Metrics) Metrics {
	if m.Users != nil {
		m.Users = m.Users.Clone()
	}
	return m
}

// metricsWith builds a partial aggregate over users [from, to), each with
// one event carrying the given currency, conversion value and score.
func metricsWith(from, to int, currency string, value, score float64, ingest int64) Metrics {
	var m Metrics
	for u := from; u < to; u++ {
		ev := Event{UserID: fmt.Sprintf("user-%d", u), Currency: currency, IngestTime: ingest,
			ConversionValue: value, HasConversionValue: value > 0, EngagementScore: score, HasEngagementScore: score > 0}
		m.Add(&ev)
	}
	return m
}

func TestMetricsAdd(t *testing.T) {
	tests := []struct {
		name       string
		events     []Event
		wantEvents int64
		wantLate   int64
		wantValue  int64 // micros
		wantEng    int64 // micros
		wantCur    string
		wantIngest int64
		wantUsers  int64
	}{
		{name: "nothing", wantCur: ""},
		{
			// 0.1 + 0.2 is 0.30000000000000004 in floats; in micros it is exact.
			name: "exact cents",
			events: []Event{
				{UserID: "a", ConversionValue: 0.1, HasConversionValue: true, Currency: "USD", IngestTime: 5},
				{UserID: "b", ConversionValue: 0.2, HasConversionValue: true, Currency: "USD", IngestTime: 9},
			},
			wantEvents: 2, wantValue: 300_000, wantCur: "USD", wantIngest: 9, wantUsers: 2,
		},
		{
			name: "engagement thirds",
			events: []Event{
				{UserID: "a", EngagementScore: 33.3, HasEngagementScore: true, IngestTime: 3},
				{UserID: "a", EngagementScore: 33.3, HasEngagementScore: true, IngestTime: 1},
				{UserID: "a", EngagementScore: 33.4, HasEngagementScore: true, Late: true},
			},
			wantEvents: 3, wantLate: 1, wantEng: 100_000_000, wantIngest: 3, wantUsers: 1,
		},
		{
			name: "value without flag ignored",
			events: []Event{
				{UserID: "a", ConversionValue: 5, EngagementScore: 5},
			},
			wantEvents: 1, wantUsers: 1,
		},
		{
			name: "two currencies are MIXED",
			events: []Event{
				{UserID: "a", ConversionValue: 1, HasConversionValue: true, Currency: "USD"},
				{UserID: "b", ConversionValue: 2, HasConversionValue: true, Currency: "EUR"},
			},
			wantEvents: 2, wantValue: 3_000_000, wantCur: MixedCurrency, wantUsers: 2,
		},
		{
			name: "MIXED stays MIXED",
			events: []Event{
				{UserID: "a", Currency: "USD"}, {UserID: "a", Currency: "EUR"}, {UserID: "a", Currency: "USD"},
			},
			wantEvents: 3, wantCur: MixedCurrency, wantUsers: 1,
		},
		{
			name: "no currency does not mix",
			events: []Event{
				{UserID: "a"}, {UserID: "a", Currency: "GBP"}, {UserID: "b"},
			},
			wantEvents: 3, wantCur: "GBP", wantUsers: 2,
		},
		{
			name: "sub-micro values round",
			events: []Event{
				{UserID: "a", ConversionValue: 0.0000004, HasConversionValue: true, EngagementScore: 0.0000006, HasEngagementScore: true},
			},
			wantEvents: 1, wantValue: 0, wantEng: 1, wantUsers: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m Metrics
			for i := range tt.events {
				m.Add(&tt.events[i])
			}
			got := fmt.Sprintf("events=%d late=%d value=%d eng=%d cur=%q ingest=%d users=%d partials=%d",
				m.Events, m.LateEvents, m.ConversionValueMicros, m.EngagementMicros, m.Currency, m.MaxIngestTime, m.UniqueUsers(), m.Partials)
			want := fmt.Sprintf("events=%d late=%d value=%d eng=%d cur=%q ingest=%d users=%d partials=0",
				tt.wantEvents, tt.wantLate, tt.wantValue, tt.wantEng, tt.wantCur, tt.wantIngest, tt.wantUsers)
			if got != want {
				t.Errorf("got  %s\nwant %s", got, want)
			}
		})
	}
}

func TestMetricsExactSumOfManyCents(t *testing.T) {
	// A million conversions of 0.01: floats drift, micros do not.
	var m Metrics
	ev := Event{UserID: "u", ConversionValue: 0.01, HasConversionValue: true}
	for i := 0; i < 1_000_000; i++ {
		m.Add(&ev)
	}
	if m.ConversionValueMicros != 10_000*1_000_000 {
		t.Errorf("sum = %d micros, want %d", m.ConversionValueMicros, int64(10_000*1_000_000))
	}
}

func TestMergeCurrency(t *testing.T) {
	tests := []struct {
		a, b, want string
	}{
		{"", "", ""},
		{"USD", "", "USD"},
		{"", "USD", "USD"},
		{"USD", "USD", "USD"},
		{"USD", "EUR", MixedCurrency},
		{MixedCurrency, "USD", MixedCurrency},
		{"USD", MixedCurrency, MixedCurrency},
		{MixedCurrency, "", MixedCurrency},
	}
	for _, tt := range tests {
		a := Metrics{Currency: tt.a}
		a.Merge(Metrics{Currency: tt.b})
		if a.Currency != tt.want {
			t.Errorf("%q merged with %q = %q, want %q", tt.a, tt.b, a.Currency, tt.want)
		}
	}
}

func TestUniqueUsersAccuracy(t *testing.T) {
	const users = 10_000
	tests := []struct {
		name  string
		parts int
	}{
		{"one aggregate", 1},
		{"three merged partials", 3},
		{"ten merged partials", 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fn := &MergeMetricsFn{}
			acc := fn.CreateAccumulator()
			for p := 0; p < tt.parts; p++ {
				var part Metrics
				// Every user is seen twice, in different partials when
				// there are several: repeats must not be counted.
				for u := p; u < users; u += tt.parts {
					for _, id := range []int{u, (u + 1) % users} {
						ev := Event{UserID: fmt.Sprintf("usr_%06d", id)}
						part.Add(&ev)
					}
				}
				acc = fn.AddInput(acc, part)
			}
			out := fn.ExtractOutput(acc)
			if out.Events != 2*users {
				t.Errorf("Events = %d, want %d", out.Events, 2*users)
			}
			if out.Partials != int64(tt.parts) {
				t.Errorf("Partials = %d, want %d", out.Partials, tt.parts)
			}
			got := out.UniqueUsers()
			if diff := math.Abs(float64(got-users)) / users; diff > 0.02 {
				t.Errorf("UniqueUsers = %d, want %d within 2%% (off by %.2f%%)", got, users, 100*diff)
			}
		})
	}
}

func TestMergeMetricsFnPartials(t *testing.T) {
	fn := &MergeMetricsFn{}
	p1 := metricsWith(0, 10, "USD", 1.5, 0, 100)
	p2 := metricsWith(5, 20, "USD", 2.25, 0, 300)
	p3 := metricsWith(0, 3, "", 0, 50, 200)

	a := fn.AddInput(fn.AddInput(fn.CreateAccumulator(), cloneMetrics(p1)), cloneMetrics(p2))
	b := fn.AddInput(fn.CreateAccumulator(), cloneMetrics(p3))
	if a.Partials != 2 || b.Partials != 1 {
		t.Fatalf("Partials after AddInput = %d and %d, want 2 and 1", a.Partials, b.Partials)
	}
	out := fn.ExtractOutput(fn.MergeAccumulators(a, b))
	tests := []struct {
		name      string
		got, want int64
	}{
		{"partials", out.Partials, 3},
		{"events", out.Events, 10 + 15 + 3},
		{"value micros", out.ConversionValueMicros, 10*1_500_000 + 15*2_250_000},
		{"engagement micros", out.EngagementMicros, 3 * 50_000_000},
		{"max ingest", out.MaxIngestTime, 300},
		{"unique users", out.UniqueUsers(), 20},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %d, want %d", tt.name, tt.got, tt.want)
		}
	}
	if out.Currency != "USD" {
		t.Errorf("Currency = %q, want USD", out.Currency)
	}
	if empty := fn.CreateAccumulator(); empty.Events != 0 || empty.Users != nil || empty.UniqueUsers() != 0 {
		t.Errorf("CreateAccumulator = %+v, want empty", empty)
	}
}

func metricsFingerprint(m Metrics) string {
	return fmt.Sprintf("events=%d late=%d value=%d eng=%d cur=%q ingest=%d partials=%d users=%d",
		m.Events, m.LateEvents, m.ConversionValueMicros, m.EngagementMicros, m.Currency, m.MaxIngestTime, m.Partials, m.UniqueUsers())
}

func TestMergeOrderDoesNotMatter(t *testing.T) {
	sets := []struct {
		name    string
		a, b, c Metrics
	}{
		{
			name: "small overlapping (sparse sketches)",
			a:    metricsWith(0, 30, "USD", 1.1, 0, 10),
			b:    metricsWith(20, 60, "USD", 0, 12.5, 40),
			c:    metricsWith(50, 80, "EUR", 3.3, 0, 20),
		},
		{
			name: "large overlapping (dense sketches)",
			a:    metricsWith(0, 4000, "USD", 0.01, 0, 10),
			b:    metricsWith(3000, 9000, "", 0, 99.99, 30),
			c:    metricsWith(8000, 12000, "USD", 7, 1, 20),
		},
		{
			name: "one without users",
			a:    Metrics{Events: 3, LateEvents: 1, Partials: 2},
			b:    metricsWith(0, 100, "GBP", 2, 0, 5),
			c:    metricsWith(50, 150, "GBP", 2, 0, 6),
		},
	}
	for _, set := range sets {
		t.Run(set.name, func(t *testing.T) {
			set.a.Partials, set.b.Partials, set.c.Partials = 1, 2, 3
			orders := [][3]Metrics{
				{set.a, set.b, set.c}, {set.a, set.c, set.b}, {set.b, set.a, set.c},
				{set.b, set.c, set.a}, {set.c, set.a, set.b}, {set.c, set.b, set.a},
			}
			var want string
			for k, o := range orders {
				// Left fold and right fold.
				left := cloneMetrics(o[0])
				left.Merge(o[1])
				left.Merge(o[2])
				right := cloneMetrics(o[1])
				right.Merge(o[2])
				fromEmpty := Metrics{}
				fromEmpty.Merge(o[0])
				fromEmpty.Merge(right)
				for _, got := range []string{metricsFingerprint(left), metricsFingerprint(fromEmpty)} {
					if k == 0 && want == "" {
						want = got
						continue
					}
					if got != want {
						t.Errorf("order %d: %s\nwant %s", k, got, want)
					}
				}
			}
		})
	}
}

func TestMergeDoesNotModifyItsArgument(t *testing.T) {
	tests := []struct {
		name string
		into Metrics
		arg  Metrics
	}{
		{"into empty", Metrics{}, metricsWith(0, 50, "USD", 1, 0, 5)},
		{"into sparse", metricsWith(100, 150, "USD", 1, 0, 5), metricsWith(0, 50, "EUR", 1, 0, 5)},
		{"into dense", metricsWith(0, 5000, "", 0, 1, 5), metricsWith(4000, 9000, "USD", 1, 0, 7)},
		{"dense into sparse", metricsWith(0, 10, "", 0, 1, 5), metricsWith(10, 6000, "USD", 1, 0, 7)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, err := encodeMetrics(tt.arg)
			if err != nil {
				t.Fatal(err)
			}
			m := tt.into
			m.Merge(tt.arg)
			after, _ := encodeMetrics(tt.arg)
			if !bytes.Equal(before, after) {
				t.Fatal("Merge modified its argument")
			}
			// Shares nothing after: growing the receiver leaves the argument alone.
			for u := 0; u < 3000; u++ {
				ev := Event{UserID: fmt.Sprintf("new-%d", u), Currency: "JPY"}
				m.Add(&ev)
			}
			later, _ := encodeMetrics(tt.arg)
			if !bytes.Equal(before, later) {
				t.Error("the argument changed when the receiver did: Merge shared state")
			}
		})
	}
}

func TestMetricsCodecRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		m    Metrics
	}{
		{"zero", Metrics{}},
		{"no users", Metrics{Events: 5, LateEvents: 2, ConversionValueMicros: -3, EngagementMicros: 7, Currency: "USD", MaxIngestTime: -9, Partials: 4}},
		{"sparse users", metricsWith(0, 40, "EUR", 2.5, 10, 1234)},
		{"dense users", metricsWith(0, 20_000, MixedCurrency, 0.5, 0, 99)},
		{"extremes", Metrics{Events: math.MaxInt64, ConversionValueMicros: math.MinInt64, Currency: "ÉÉÉ"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := encodeMetrics(tt.m)
			if err != nil {
				t.Fatalf("encodeMetrics: %v", err)
			}
			got, err := decodeMetrics(b)
			if err != nil {
				t.Fatalf("decodeMetrics: %v", err)
			}
			if (got.Users == nil) != (tt.m.Users == nil) {
				t.Errorf("Users nil = %v, want %v", got.Users == nil, tt.m.Users == nil)
			}
			if g, w := metricsFingerprint(got), metricsFingerprint(tt.m); g != w {
				t.Errorf("round trip %s\nwant       %s", g, w)
			}
			// The decoded sketch is a working sketch, not a view of the buffer.
			for i := range b {
				b[i] = 0
			}
			if g, w := metricsFingerprint(got), metricsFingerprint(tt.m); g != w {
				t.Errorf("after clearing the buffer %s\nwant %s", g, w)
			}
		})
	}
}

func TestMetricsCodecTruncated(t *testing.T) {
	for _, m := range []Metrics{{}, {Events: 300, Currency: "USD"}, metricsWith(0, 20, "USD", 1, 1, 1), metricsWith(0, 3000, "", 0, 0, 0)} {
		b, err := encodeMetrics(m)
		if err != nil {
			t.Fatal(err)
		}
		for n := 0; n < len(b); n++ {
			if _, err := decodeMetrics(b[:n:n]); err == nil {
				t.Errorf("decodeMetrics of %d of %d bytes succeeded", n, len(b))
			}
		}
	}
}

func TestMetricKey(t *testing.T) {
	tests := []struct{ campaign, platform, typ string }{
		{"cmp_0001", "meta", "click"},
		{"", "", ""},
		{"c.with:odd/chars", "x", "conversion"},
		// Validation bounds a campaign id's length, not its characters: the
		// separator itself, twice, must stay in the campaign.
		{"a\x1fb\x1f", "youtube", "click"},
		{"\x1f", "meta", "view"},
	}
	for _, tt := range tests {
		ev := Event{CampaignID: tt.campaign, Platform: tt.platform, EventType: tt.typ}
		c, p, e := SplitMetricKey(MetricKey(&ev))
		if c != tt.campaign || p != tt.platform || e != tt.typ {
			t.Errorf("SplitMetricKey(MetricKey(%q,%q,%q)) = %q,%q,%q", tt.campaign, tt.platform, tt.typ, c, p, e)
		}
	}
	a := Event{CampaignID: "c", Platform: "meta", EventType: "view"}
	b := Event{CampaignID: "c", Platform: "meta", EventType: "click"}
	if MetricKey(&a) == MetricKey(&b) {
		t.Error("different event types share a key")
	}
}

func TestNewMetricsRow(t *testing.T) {
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.FixedZone("CET", 3600))
	end := start.Add(time.Minute)
	m := metricsWith(0, 7, "USD", 2.5, 40, 1_772_366_400_500)
	m.LateEvents = 2
	row := NewMetricsRow(start, end, "cmp\x1fmeta\x1fconversion", 5, m, "run-1")
	if !row.WindowStart.Equal(start) || row.WindowStart.Location() != time.UTC || !row.WindowEnd.Equal(end) {
		t.Errorf("window %v – %v, want %v – %v in UTC", row.WindowStart, row.WindowEnd, start, end)
	}
	if row.CampaignID != "cmp" || row.Platform != "meta" || row.EventType != "conversion" {
		t.Errorf("key parts %q %q %q", row.CampaignID, row.Platform, row.EventType)
	}
	if row.PaneVersion != 5 || row.Events != 7 || row.LateEvents != 2 || row.UniqueUsers != 7 {
		t.Errorf("pane %d events %d late %d users %d", row.PaneVersion, row.Events, row.LateEvents, row.UniqueUsers)
	}
	if row.ConversionValue != 17.5 || row.EngagementScoreSum != 280 {
		t.Errorf("value %v engagement %v, want 17.5 and 280", row.ConversionValue, row.EngagementScoreSum)
	}
	if row.Currency == nil || *row.Currency != "USD" {
		t.Errorf("Currency = %v, want USD", row.Currency)
	}
	if row.RunID == nil || *row.RunID != "run-1" {
		t.Errorf("RunID = %v, want run-1", row.RunID)
	}
	if !row.MaxIngestTimestamp.Equal(time.UnixMilli(1_772_366_400_500)) {
		t.Errorf("MaxIngestTimestamp = %v", row.MaxIngestTimestamp)
	}
	if noCur := NewMetricsRow(start, end, "a\x1fb\x1fc", 1, Metrics{}, ""); noCur.Currency != nil || noCur.UniqueUsers != 0 || noCur.RunID != nil {
		t.Errorf("empty metrics, no run id: Currency %v UniqueUsers %d RunID %v, want nil, 0 and nil", noCur.Currency, noCur.UniqueUsers, noCur.RunID)
	}
}

// TestMetricsKeepNoBatchAlive adds a decoded event to an accumulator and
// checks that the accumulator holds none of the event's strings: a decoded
// event's strings are slices of its whole batch, and a partial aggregate
// lives for its bundle, so one such string would keep the batch alive.
func TestMetricsKeepNoBatchAlive(t *testing.T) {
	ev := Event{EventID: "e1", EventType: TypeConversion, UserID: "u1", CampaignID: "c1", Platform: "meta",
		HasConversionValue: true, ConversionValue: 2, Currency: "EUR", UTMContent: strings.Repeat("x", 4096)}
	b, err := decodeEventBatch(encodeEventBatch(EventBatch{Events: []Event{ev}}))
	if err != nil {
		t.Fatal(err)
	}
	d := &b.Events[0]
	// The batch's one string spans from the first field to the last.
	lo, hi := uintptr(unsafe.Pointer(unsafe.StringData(d.EventID))), uintptr(unsafe.Pointer(unsafe.StringData(d.UTMContent)))+4096
	if got := uintptr(unsafe.Pointer(unsafe.StringData(d.Currency))); got < lo || got >= hi {
		t.Fatalf("decoded fields are not slices of one batch string: the test's premise is gone")
	}
	var m Metrics
	m.Add(d)
	if p := uintptr(unsafe.Pointer(unsafe.StringData(m.Currency))); p >= lo && p < hi {
		t.Errorf("the accumulator's currency is a slice of the event's batch: it keeps the batch alive")
	}
	if m.Currency != "EUR" || m.Events != 1 {
		t.Errorf("accumulator %+v", m)
	}
}

// TestConversionValueStopsAtTheLargestSum adds more conversions at the
// largest valid value than an int64 of micros holds, one by one and as
// merged partials: the sum stops at math.MaxInt64 instead of wrapping to a
// negative value, and both ways agree.
func TestConversionValueStopsAtTheLargestSum(t *testing.T) {
	ev := Event{EventType: TypeConversion, UserID: "u", HasConversionValue: true, ConversionValue: MaxConversionValue, Currency: "JPY"}
	const n = 10_000 // 9,224 reach the limit
	var one, merged Metrics
	for i := 0; i < n; i++ {
		one.Add(&ev)
		if i%1000 == 0 {
			var p Metrics
			for j := 0; j < 1000; j++ {
				p.Add(&ev)
			}
			merged.Merge(p)
		}
	}
	if one.ConversionValueMicros != math.MaxInt64 || merged.ConversionValueMicros != math.MaxInt64 {
		t.Errorf("sums of %d conversions of %g: %d one by one, %d merged; want %d", n, MaxConversionValue,
			one.ConversionValueMicros, merged.ConversionValueMicros, int64(math.MaxInt64))
	}
	var small Metrics
	small.Add(&ev)
	small.Add(&ev)
	if want := 2 * ev.ConversionValueMicros(); small.ConversionValueMicros != want {
		t.Errorf("two conversions: %d micros, want %d", small.ConversionValueMicros, want)
	}
}
