package transforms_test

import (
	"bytes"
	stdjson "encoding/json"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/goccy/go-json/jsontext"

	"github.com/campaignpulse/campaignpulse/pipelines/generator"
	"github.com/campaignpulse/campaignpulse/transforms"
)

// fuzzNow is the arrival time the fuzz targets validate against: fixed, so a
// failing input replays the same way. The generator seeds are generated to
// arrive around it.
var fuzzNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const seedJSON = `{"schema_version":"1.0","event_id":"e-1","event_type":"conversion","timestamp":"2026-03-01T11:59:58.5Z",` +
	`"user_id":"u-1","campaign_id":"c-1","platform":"meta","ad_id":"ad","engagement_score":50,"conversion_value":9.99,` +
	`"currency":"USD","utm_source":"s","utm_medium":"m","utm_campaign":"c","utm_term":"t","utm_content":"x"}`

func addPayloadSeeds(f *testing.F) {
	for _, s := range []string{
		seedJSON, "", "   ", "\xff\xfe", seedJSON[:len(seedJSON)/2], "[1,2]", `"str"`, "42", "null", "true",
		`{"timestamp":123}`, `{"conversion_value":"12"}`, `{"engagement_score":1e400}`, `{"event_id":"a","event_id":"b"}`,
		`{"EVENT_ID":"x"}`, `{"event_id":"\ud800"}`, `{"a":{"b":[1,{"c":null}]}}`, "{\"event_id\":\"a\"}\n",
		strings.Replace(seedJSON, `"1.0"`, `"2.0"`, 1), strings.Replace(seedJSON, `"USD"`, `"usd"`, 1),
		strings.Replace(seedJSON, `T11:`, `T9:`, 1),
	} {
		f.Add([]byte(s))
	}
	c := generator.Default()
	c.Start = fuzzNow.Add(-time.Second)
	for i := int64(0); i <= 50; i++ {
		data := c.Message(i, nil).Data
		if len(data) <= 4096 { // the oversize kind is 64 KiB: too big for a useful seed
			f.Add(data)
		}
	}
	// One of each malformation the generator makes, wherever it falls.
	want := map[string]bool{}
	for _, code := range generator.MalformedCodes() {
		want[code] = true
	}
	for i := int64(0); i < 200_000 && len(want) > 0; i++ {
		if c.Kind(i) != generator.Malformed || !want[c.MalformedCode(i)] {
			continue
		}
		delete(want, c.MalformedCode(i))
		if data := c.Message(i, nil).Data; len(data) <= 4096 {
			f.Add(data)
		}
	}
}

// FuzzParse: whatever the payload, Parse and Validate do not panic and either
// accept it or reject it with a registered code of their own stage.
func FuzzParse(f *testing.F) {
	addPayloadSeeds(f)
	now := fuzzNow.UnixMilli()
	cfg := transforms.ValidateConfig{MaxFutureSkew: transforms.DefaultMaxFutureSkew}
	f.Fuzz(func(t *testing.T, data []byte) {
		orig := bytes.Clone(data)
		msg := transforms.Message{Data: data, PublishTime: now, Source: "fuzz"}
		ev, rej := transforms.Parse(msg, 4096)
		if !bytes.Equal(data, orig) {
			t.Fatal("Parse modified the payload")
		}
		if rej != nil {
			if stage, ok := transforms.ErrorCodes[rej.Code]; !ok || stage != transforms.StageParse {
				t.Fatalf("Parse rejected with %q (stage %q), want a registered parse code", rej.Code, stage)
			}
			if rej.Message == "" {
				t.Fatal("reject without a reason")
			}
			if !utf8.ValidString(rej.Message) {
				t.Fatalf("reason %q is not UTF-8: the dead letter's load would fail", rej.Message)
			}
			return
		}
		if len(data) > 4096 {
			t.Fatalf("accepted a %d-byte payload over the 4096-byte limit", len(data))
		}
		// Parse accepted the payload as a JSON object: a standard JSON
		// decoder must agree it is one.
		if !stdjson.Valid(data) {
			t.Fatalf("Parse accepted invalid JSON %q", data)
		}
		// And JSON whose strings are UTF-8: an escaped lone surrogate, which
		// the standard library reads as U+FFFD, is refused (two ids would
		// read as one).
		if !jsontext.Value(data).IsValid(jsontext.AllowDuplicateNames(true)) {
			t.Fatalf("Parse accepted %q, which holds an escaped lone surrogate", data)
		}
		var obj map[string]stdjson.RawMessage
		if err := stdjson.Unmarshal(data, &obj); err != nil {
			t.Fatalf("Parse accepted %q, which is not a JSON object: %v", data, err)
		}
		// Member names match exactly (docs/event.schema.json), as the keys
		// of the standard library's map do: a field is the string found
		// under its own name (the last, if repeated), whatever else the
		// payload holds ("EVENT_ID" is an unknown field).
		for name, got := range map[string]string{"event_id": ev.EventID, "platform": ev.Platform, "timestamp": ev.Timestamp} {
			var want string
			if raw, ok := obj[name]; ok {
				if err := stdjson.Unmarshal(raw, &want); err != nil {
					t.Fatalf("Parse accepted %q, whose %s is not a string: %v", data, name, err)
				}
			}
			if got != want {
				t.Fatalf("Parse read %s %q from %q, want %q", name, got, data, want)
			}
		}
		if !bytes.Equal(ev.Raw, data) || ev.IngestTime != now || ev.Source != "fuzz" {
			t.Fatalf("Raw/IngestTime/Source not taken from the message: %q %d %q", ev.Raw, ev.IngestTime, ev.Source)
		}
		if ev.EventTime != 0 {
			t.Fatalf("Parse set EventTime %d", ev.EventTime)
		}

		vrej := transforms.Validate(&ev, now, cfg)
		if vrej != nil {
			if stage, ok := transforms.ErrorCodes[vrej.Code]; !ok || stage != transforms.StageValidate {
				t.Fatalf("Validate rejected with %q (stage %q), want a registered validate code", vrej.Code, stage)
			}
			return
		}
		checkValid(t, &ev, now, cfg)
	})
}

// rfc3339 is RFC 3339's date-time (section 5.6), with a dot before the fraction.
var rfc3339 = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$`)

// checkValid asserts the contract holds for an event Validate accepted.
func checkValid(t *testing.T, ev *transforms.Event, now int64, cfg transforms.ValidateConfig) {
	t.Helper()
	if ev.EventTime <= 0 {
		t.Fatalf("valid event with EventTime %d", ev.EventTime)
	}
	if ev.EventTime < time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli() {
		t.Fatalf("valid event before 2000: %d", ev.EventTime)
	}
	if now > 0 && ev.EventTime > now+cfg.MaxFutureSkew.Milliseconds() {
		t.Fatalf("valid event %d ms past arrival", ev.EventTime-now)
	}
	// RFC 3339's grammar, by a means other than the parser's: time.Parse
	// alone takes a one-digit hour.
	if !rfc3339.MatchString(ev.Timestamp) {
		t.Fatalf("valid event with timestamp %q, which is not RFC 3339's date-time", ev.Timestamp)
	}
	if ts, err := time.Parse(time.RFC3339Nano, strings.ToUpper(ev.Timestamp)); err != nil || ts.UnixMilli() != ev.EventTime {
		t.Fatalf("EventTime %d does not match timestamp %q (%v)", ev.EventTime, ev.Timestamp, err)
	}
	if ev.IngestTime == 0 {
		t.Fatal("valid event without IngestTime")
	}
	if !slices.Contains(transforms.EventTypes, ev.EventType) {
		t.Fatalf("valid event with event_type %q", ev.EventType)
	}
	if !slices.Contains(transforms.Platforms, ev.Platform) {
		t.Fatalf("valid event with platform %q", ev.Platform)
	}
	for _, s := range []string{ev.EventID, ev.UserID, ev.CampaignID} {
		if strings.TrimSpace(s) == "" || len(s) > transforms.MaxIDLength {
			t.Fatalf("valid event with id %q", s)
		}
	}
	if len(ev.AdID) > transforms.MaxIDLength {
		t.Fatalf("valid event with a %d-byte ad_id", len(ev.AdID))
	}
	for _, s := range []string{ev.UTMSource, ev.UTMMedium, ev.UTMCampaign, ev.UTMTerm, ev.UTMContent} {
		if len(s) > transforms.MaxTextLength {
			t.Fatalf("valid event with a %d-byte UTM field", len(s))
		}
	}
	if ev.HasEngagementScore && !(ev.EngagementScore >= 0 && ev.EngagementScore <= transforms.MaxEngagementScore) {
		t.Fatalf("valid event with engagement_score %v", ev.EngagementScore)
	}
	if ev.HasConversionValue && !(ev.ConversionValue >= 0 && ev.ConversionValue <= transforms.MaxConversionValue) {
		t.Fatalf("valid event with conversion_value %v", ev.ConversionValue)
	}
	if ev.EventType == transforms.TypeConversion && (!ev.HasConversionValue || ev.Currency == "") {
		t.Fatal("valid conversion without value or currency")
	}
	if ev.Currency != "" {
		if len(ev.Currency) != 3 || strings.Trim(ev.Currency, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != "" {
			t.Fatalf("valid event with currency %q", ev.Currency)
		}
	}
	major, minor, hasMinor := strings.Cut(ev.SchemaVersion, ".")
	if !isDigits(major) || (hasMinor && !isDigits(minor)) {
		t.Fatalf("valid event with schema_version %q: not MAJOR or MAJOR.MINOR", ev.SchemaVersion)
	}
	if n, _ := strconv.Atoi(major); n != transforms.SchemaMajor {
		t.Fatalf("valid event with schema_version %q", ev.SchemaVersion)
	}
}

// isDigits is the [0-9]{1,4} of the schema_version pattern in
// docs/event.schema.json.
func isDigits(s string) bool {
	return s != "" && len(s) <= 4 && strings.Trim(s, "0123456789") == ""
}

// FuzzValidate builds events directly: Validate never panics, rejects with a
// registered validate code, and what it accepts meets the contract.
func FuzzValidate(f *testing.F) {
	ts := fuzzNow.Format(time.RFC3339Nano)
	f.Add("1.0", "e", "click", ts, "u", "c", "meta", "", "", "", 0.0, 0.0, false, false, int64(0))
	f.Add("1", "e", "conversion", ts, "u", "c", "tiktok", "ad", "USD", "src", 10.0, 5.0, true, true, fuzzNow.UnixMilli())
	f.Add("1.3", "e", "engagement", "2000-01-01T00:00:00Z", "u", "c", "x", "", "", "", 100.0, 0.0, true, false, fuzzNow.UnixMilli())
	f.Add("2.0", "e", "view", ts, "u", "c", "meta", "", "", "", 0.0, 0.0, false, false, int64(1))
	f.Add("1.x", "", "purchase", "yesterday", "", "", "myspace", "", "usd", "", -1.0, 2e9, true, true, int64(-5))
	f.Add("1.0", "e", "view", "2026-03-01T14:00:00+01:00", "u", "c", "meta", "", "EUR", "", math.Inf(1), math.NaN(), true, true, fuzzNow.UnixMilli())
	f.Add("1.0", strings.Repeat("e", 129), "view", ts, "u", "c", "meta", "", "", strings.Repeat("u", 1025), 0.0, 0.0, false, false, int64(0))
	f.Fuzz(func(t *testing.T, schema, id, typ, timestamp, user, campaign, platform, ad, currency, utm string,
		score, value float64, hasScore, hasValue bool, now int64) {
		ev := transforms.Event{
			SchemaVersion: schema, EventID: id, EventType: typ, Timestamp: timestamp, UserID: user,
			CampaignID: campaign, Platform: platform, AdID: ad, Currency: currency,
			UTMSource: utm, UTMMedium: utm, UTMCampaign: utm, UTMTerm: utm, UTMContent: utm,
			EngagementScore: score, HasEngagementScore: hasScore, ConversionValue: value, HasConversionValue: hasValue,
			IngestTime: max(now, 0),
		}
		cfg := transforms.ValidateConfig{MaxFutureSkew: time.Hour}
		rej := transforms.Validate(&ev, now, cfg)
		if rej != nil {
			if stage, ok := transforms.ErrorCodes[rej.Code]; !ok || stage != transforms.StageValidate {
				t.Fatalf("Validate rejected with %q (stage %q)", rej.Code, stage)
			}
			if ev.EventTime != 0 {
				t.Fatalf("rejected event got EventTime %d", ev.EventTime)
			}
			// Parse hands Validate only UTF-8: from such fields the reason
			// must be UTF-8 too.
			if utf8.ValidString(schema+id+typ+timestamp+user+campaign+platform+ad+currency+utm) && !utf8.ValidString(rej.Message) {
				t.Fatalf("reason %q is not UTF-8: the dead letter's load would fail", rej.Message)
			}
			return
		}
		checkValid(t, &ev, now, cfg)
		// Validation is idempotent: a valid event stays valid, unchanged.
		again := ev
		if rej := transforms.Validate(&again, now, cfg); rej != nil || again.EventTime != ev.EventTime || again.IngestTime != ev.IngestTime {
			t.Fatalf("second Validate: %v, EventTime %d→%d", rej, ev.EventTime, again.EventTime)
		}
	})
}

// FuzzEventCodec: decoding arbitrary bytes never panics, and whatever decodes
// re-encodes to bytes that decode to the same encoding again.
func FuzzEventCodec(f *testing.F) {
	full := transforms.Event{
		EventID: "e", EventType: "click", EventTime: 1_772_366_400_000, UserID: "u", CampaignID: "c", Platform: "meta",
		AdID: "a", EngagementScore: 1.5, HasEngagementScore: true, ConversionValue: 2, HasConversionValue: true,
		Currency: "USD", UTMSource: "s", SchemaVersion: "1.0", Timestamp: "t", Raw: []byte("{}"), IngestTime: -3,
		Source: "src", Late: true,
	}
	for _, b := range [][]byte{
		transforms.EncodeEventForTest(transforms.Event{}),
		transforms.EncodeEventForTest(full),
		transforms.EncodeEventBatchForTest(transforms.EventBatch{}),
		transforms.EncodeEventBatchForTest(transforms.EventBatch{Events: []transforms.Event{full, {}, full}}),
		{}, {1}, {1, 2}, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
	} {
		f.Add(b)
		if len(b) > 2 {
			f.Add(b[:len(b)/2])
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if ev, err := transforms.DecodeEventForTest(data); err == nil {
			enc := transforms.EncodeEventForTest(ev)
			ev2, err := transforms.DecodeEventForTest(enc)
			if err != nil {
				t.Fatalf("re-encoded event does not decode: %v", err)
			}
			if enc2 := transforms.EncodeEventForTest(ev2); !bytes.Equal(enc, enc2) {
				t.Fatalf("round trip changed the encoding:\n%x\n%x", enc, enc2)
			}
		}
		if batch, err := transforms.DecodeEventBatchForTest(data); err == nil {
			enc := transforms.EncodeEventBatchForTest(batch)
			batch2, err := transforms.DecodeEventBatchForTest(enc)
			if err != nil {
				t.Fatalf("re-encoded batch does not decode: %v", err)
			}
			if len(batch2.Events) != len(batch.Events) {
				t.Fatalf("batch of %d events came back with %d", len(batch.Events), len(batch2.Events))
			}
			if enc2 := transforms.EncodeEventBatchForTest(batch2); !bytes.Equal(enc, enc2) {
				t.Fatalf("batch round trip changed the encoding")
			}
		}
	})
}

// FuzzMetricsCodec: decoding arbitrary bytes as Metrics never panics, and a
// decoded value re-encodes and decodes to the same fields.
func FuzzMetricsCodec(f *testing.F) {
	var m transforms.Metrics
	for i := 0; i < 50; i++ {
		ev := transforms.Event{UserID: strconv.Itoa(i), Currency: "USD", ConversionValue: 1, HasConversionValue: true}
		m.Add(&ev)
	}
	for _, mm := range []transforms.Metrics{{}, {Events: 3, Currency: "EUR"}, m} {
		b, err := transforms.EncodeMetricsForTest(mm)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := transforms.DecodeMetricsForTest(data)
		if err != nil {
			return
		}
		enc, err := transforms.EncodeMetricsForTest(got)
		if err != nil {
			t.Fatalf("decoded Metrics does not encode: %v", err)
		}
		again, err := transforms.DecodeMetricsForTest(enc)
		if err != nil {
			t.Fatalf("re-encoded Metrics does not decode: %v", err)
		}
		if again.Events != got.Events || again.Currency != got.Currency || again.Partials != got.Partials ||
			again.ConversionValueMicros != got.ConversionValueMicros || again.UniqueUsers() != got.UniqueUsers() {
			t.Fatalf("round trip changed Metrics: %+v vs %+v", again, got)
		}
	})
}
