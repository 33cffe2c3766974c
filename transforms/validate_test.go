package transforms

import (
	"context"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/passert"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
)

func init() {
	register.Function1x1(deadLetterSummary)
	register.Function1x1(validEventSummary)
	register.Function1x1(deadLetterCode)
}

func deadLetterCode(d DeadLetter) string { return d.ErrorCode }

// validTime is the timestamp of validEvent; validMillis is the same instant.
var (
	validTime   = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	validMillis = validTime.UnixMilli()
)

// validEvent passes every rule when validated with now = validMillis.
func validEvent() Event {
	return Event{
		SchemaVersion: "1.0", EventID: "e-1", EventType: TypeClick, Timestamp: validTime.Format(time.RFC3339Nano),
		UserID: "u-1", CampaignID: "c-1", Platform: "meta",
	}
}

func TestValidate(t *testing.T) {
	hourCfg := ValidateConfig{MaxFutureSkew: time.Hour}
	long := func(n int) string { return strings.Repeat("a", n) }
	tests := []struct {
		name   string
		mutate func(*Event)
		now    int64
		code   string // "" = valid
	}{
		{"valid minimal", func(*Event) {}, validMillis, ""},

		// schema_version
		{"schema missing", func(e *Event) { e.SchemaVersion = "" }, validMillis, CodeMissingField},
		{"schema major only", func(e *Event) { e.SchemaVersion = "1" }, validMillis, ""},
		{"schema newer minor", func(e *Event) { e.SchemaVersion = "1.3" }, validMillis, ""},
		{"schema two-digit minor", func(e *Event) { e.SchemaVersion = "1.10" }, validMillis, ""},
		{"schema 2.0", func(e *Event) { e.SchemaVersion = "2.0" }, validMillis, CodeUnsupportedSchemaVersion},
		{"schema 2", func(e *Event) { e.SchemaVersion = "2" }, validMillis, CodeUnsupportedSchemaVersion},
		{"schema 0.9", func(e *Event) { e.SchemaVersion = "0.9" }, validMillis, CodeUnsupportedSchemaVersion},
		{"schema letters", func(e *Event) { e.SchemaVersion = "abc" }, validMillis, CodeBadSchemaVersion},
		{"schema blank", func(e *Event) { e.SchemaVersion = "   " }, validMillis, CodeMissingField},
		{"schema bad minor", func(e *Event) { e.SchemaVersion = "1.x" }, validMillis, CodeBadSchemaVersion},
		{"schema empty minor", func(e *Event) { e.SchemaVersion = "1." }, validMillis, CodeBadSchemaVersion},
		{"schema empty major", func(e *Event) { e.SchemaVersion = ".1" }, validMillis, CodeBadSchemaVersion},
		{"schema three parts", func(e *Event) { e.SchemaVersion = "1.2.3" }, validMillis, CodeBadSchemaVersion},
		{"schema v prefix", func(e *Event) { e.SchemaVersion = "v1" }, validMillis, CodeBadSchemaVersion},
		{"schema spaces", func(e *Event) { e.SchemaVersion = " 1.0" }, validMillis, CodeBadSchemaVersion},
		{"schema negative minor", func(e *Event) { e.SchemaVersion = "1.-1" }, validMillis, CodeBadSchemaVersion},
		{"schema huge major", func(e *Event) { e.SchemaVersion = "100000" }, validMillis, CodeBadSchemaVersion},
		{"schema signed major", func(e *Event) { e.SchemaVersion = "+1" }, validMillis, CodeBadSchemaVersion},
		{"schema signed newer major", func(e *Event) { e.SchemaVersion = "+2" }, validMillis, CodeBadSchemaVersion},
		{"schema negative zero major", func(e *Event) { e.SchemaVersion = "-0" }, validMillis, CodeBadSchemaVersion},
		{"schema signed minor", func(e *Event) { e.SchemaVersion = "1.+5" }, validMillis, CodeBadSchemaVersion},
		{"schema negative zero minor", func(e *Event) { e.SchemaVersion = "1.-0" }, validMillis, CodeBadSchemaVersion},
		// Rules run in a fixed order: the schema version is checked first.
		{"schema checked before fields", func(e *Event) { e.SchemaVersion, e.EventID = "2.0", "" }, validMillis, CodeUnsupportedSchemaVersion},

		// required fields
		{"event_id missing", func(e *Event) { e.EventID = "" }, validMillis, CodeMissingField},
		{"event_type missing", func(e *Event) { e.EventType = "" }, validMillis, CodeMissingField},
		{"timestamp missing", func(e *Event) { e.Timestamp = "" }, validMillis, CodeMissingField},
		{"user_id missing", func(e *Event) { e.UserID = "" }, validMillis, CodeMissingField},
		{"campaign_id missing", func(e *Event) { e.CampaignID = "" }, validMillis, CodeMissingField},
		{"platform missing", func(e *Event) { e.Platform = "" }, validMillis, CodeMissingField},
		// A blank id (white space alone, as unicode.IsSpace has it) is missing.
		{"event_id blank", func(e *Event) { e.EventID = " " }, validMillis, CodeMissingField},
		{"event_id blank controls", func(e *Event) { e.EventID = "\t\r\n" }, validMillis, CodeMissingField},
		{"event_id blank unicode", func(e *Event) { e.EventID = "\u00a0\u3000" }, validMillis, CodeMissingField},
		{"user_id blank", func(e *Event) { e.UserID = " " }, validMillis, CodeMissingField},
		{"user_id blank controls", func(e *Event) { e.UserID = "\t\r\n" }, validMillis, CodeMissingField},
		{"user_id blank unicode", func(e *Event) { e.UserID = "\u00a0\u3000" }, validMillis, CodeMissingField},
		{"campaign_id blank", func(e *Event) { e.CampaignID = " " }, validMillis, CodeMissingField},
		{"campaign_id blank controls", func(e *Event) { e.CampaignID = "\t\r\n" }, validMillis, CodeMissingField},
		{"campaign_id blank unicode", func(e *Event) { e.CampaignID = "\u00a0\u3000" }, validMillis, CodeMissingField},
		{"event_id with spaces around", func(e *Event) { e.EventID = " e 1 " }, validMillis, ""},
		{"ad_id is optional", func(e *Event) { e.AdID = "" }, validMillis, ""},

		// lengths
		{"event_id at limit", func(e *Event) { e.EventID = long(MaxIDLength) }, validMillis, ""},
		{"event_id too long", func(e *Event) { e.EventID = long(MaxIDLength + 1) }, validMillis, CodeFieldTooLong},
		{"user_id too long", func(e *Event) { e.UserID = long(MaxIDLength + 1) }, validMillis, CodeFieldTooLong},
		{"campaign_id too long", func(e *Event) { e.CampaignID = long(MaxIDLength + 1) }, validMillis, CodeFieldTooLong},
		{"ad_id at limit", func(e *Event) { e.AdID = long(MaxIDLength) }, validMillis, ""},
		{"ad_id too long", func(e *Event) { e.AdID = long(MaxIDLength + 1) }, validMillis, CodeFieldTooLong},
		{"utm_source at limit", func(e *Event) { e.UTMSource = long(MaxTextLength) }, validMillis, ""},
		{"utm_source too long", func(e *Event) { e.UTMSource = long(MaxTextLength + 1) }, validMillis, CodeFieldTooLong},
		{"utm_medium too long", func(e *Event) { e.UTMMedium = long(MaxTextLength + 1) }, validMillis, CodeFieldTooLong},
		{"utm_campaign too long", func(e *Event) { e.UTMCampaign = long(MaxTextLength + 1) }, validMillis, CodeFieldTooLong},
		{"utm_term too long", func(e *Event) { e.UTMTerm = long(MaxTextLength + 1) }, validMillis, CodeFieldTooLong},
		{"utm_content too long", func(e *Event) { e.UTMContent = long(MaxTextLength + 1) }, validMillis, CodeFieldTooLong},
		{"length counts bytes", func(e *Event) { e.EventID = strings.Repeat("é", MaxIDLength/2+1) }, validMillis, CodeFieldTooLong},

		// timestamp
		{"timestamp words", func(e *Event) { e.Timestamp = "yesterday at noon" }, validMillis, CodeBadTimestamp},
		{"timestamp without zone", func(e *Event) { e.Timestamp = "2026-03-01T12:00:00" }, validMillis, CodeBadTimestamp},
		{"timestamp without T", func(e *Event) { e.Timestamp = "2026-03-01 12:00:00Z" }, validMillis, CodeBadTimestamp},
		{"timestamp offset 23:59", func(e *Event) { e.Timestamp = "2026-03-01T12:00:00.5+23:59" }, validMillis, ""},
		{"timestamp offset -00:30", func(e *Event) { e.Timestamp = "2026-03-01T12:00:00-00:30" }, validMillis, ""},
		{"timestamp offset hour 24", func(e *Event) { e.Timestamp = "2026-03-01T12:00:00+24:00" }, validMillis, CodeBadTimestamp},
		{"timestamp offset hour -24", func(e *Event) { e.Timestamp = "2026-03-01T12:00:00-24:00" }, validMillis, CodeBadTimestamp},
		{"timestamp offset minute 60", func(e *Event) { e.Timestamp = "2026-03-01T12:00:00+01:60" }, validMillis, CodeBadTimestamp},
		{"timestamp comma fraction", func(e *Event) { e.Timestamp = "2026-03-01T12:00:00,123456Z" }, validMillis, CodeBadTimestamp},
		{"timestamp leap second", func(e *Event) { e.Timestamp = "2016-12-31T23:59:60Z" }, validMillis, CodeBadTimestamp},
		// time.Parse's general parser, which it falls back to, takes a
		// one-digit hour; RFC 3339 wants two.
		{"timestamp one-digit hour", func(e *Event) { e.Timestamp = "2026-03-01T9:00:00Z" }, validMillis, CodeBadTimestamp},
		{"timestamp one-digit hour, comma fraction", func(e *Event) { e.Timestamp = "2026-03-01T9:00:00,5Z" }, validMillis, CodeBadTimestamp},
		{"timestamp one-digit hour, offset", func(e *Event) { e.Timestamp = "2026-03-01t9:00:00.5+01:00" }, validMillis, CodeBadTimestamp},
		{"timestamp one-digit minute", func(e *Event) { e.Timestamp = "2026-03-01T12:0:00Z" }, validMillis, CodeBadTimestamp},
		{"timestamp year 9999", func(e *Event) { e.Timestamp = "9999-12-31T23:59:59Z" }, validMillis, CodeFutureTimestamp},
		{"timestamp unix digits", func(e *Event) { e.Timestamp = "1772366400" }, validMillis, CodeBadTimestamp},
		{"timestamp before 2000", func(e *Event) { e.Timestamp = "1999-12-31T23:59:59.999Z" }, validMillis, CodeBadTimestamp},
		{"timestamp at 2000", func(e *Event) { e.Timestamp = "2000-01-01T00:00:00Z" }, validMillis, ""},
		{"timestamp with offset", func(e *Event) { e.Timestamp = "2026-03-01T13:00:00+01:00" }, validMillis, ""},
		{"timestamp with lower-case t and z (RFC 3339 5.6)", func(e *Event) { e.Timestamp = "2026-03-01t12:00:00z" }, validMillis, ""},
		{"timestamp with lower-case t and an offset", func(e *Event) { e.Timestamp = "2026-03-01t13:00:00.000+01:00" }, validMillis, ""},
		{"timestamp with a z where no letter goes", func(e *Event) { e.Timestamp = "2026-03-01T12:00:00zZ" }, validMillis, CodeBadTimestamp},
		{"timestamp at skew limit", func(e *Event) { e.Timestamp = validTime.Add(time.Hour).Format(time.RFC3339Nano) }, validMillis, ""},
		{"timestamp 1ms past skew", func(e *Event) {
			e.Timestamp = validTime.Add(time.Hour + time.Millisecond).Format(time.RFC3339Nano)
		}, validMillis, CodeFutureTimestamp},
		{"timestamp far future", func(e *Event) { e.Timestamp = validTime.Add(48 * time.Hour).Format(time.RFC3339) }, validMillis, CodeFutureTimestamp},
		{"future not checked without now", func(e *Event) { e.Timestamp = validTime.Add(48 * time.Hour).Format(time.RFC3339) }, 0, ""},
		{"bad timestamp before future check", func(e *Event) { e.Timestamp = "soon" }, validMillis, CodeBadTimestamp},

		// event_type and platform
		{"event type purchase", func(e *Event) { e.EventType = "purchase" }, validMillis, CodeBadEventType},
		{"event type case", func(e *Event) { e.EventType = "Click" }, validMillis, CodeBadEventType},
		{"platform myspace", func(e *Event) { e.Platform = "myspace" }, validMillis, CodeBadPlatform},
		{"platform case", func(e *Event) { e.Platform = "Meta" }, validMillis, CodeBadPlatform},

		// engagement_score range [0, 100]
		{"score 0", func(e *Event) { e.EngagementScore, e.HasEngagementScore = 0, true }, validMillis, ""},
		{"score 100", func(e *Event) { e.EngagementScore, e.HasEngagementScore = 100, true }, validMillis, ""},
		{"score negative", func(e *Event) { e.EngagementScore, e.HasEngagementScore = -0.01, true }, validMillis, CodeOutOfRange},
		{"score above 100", func(e *Event) { e.EngagementScore, e.HasEngagementScore = 100.01, true }, validMillis, CodeOutOfRange},
		{"score NaN", func(e *Event) { e.EngagementScore, e.HasEngagementScore = math.NaN(), true }, validMillis, CodeOutOfRange},
		{"score +Inf", func(e *Event) { e.EngagementScore, e.HasEngagementScore = math.Inf(1), true }, validMillis, CodeOutOfRange},
		{"absent score not checked", func(e *Event) { e.EngagementScore = 500 }, validMillis, ""},

		// conversion_value range [0, 1e9]
		{"value 0", func(e *Event) { e.ConversionValue, e.HasConversionValue = 0, true }, validMillis, ""},
		{"value 1e9", func(e *Event) { e.ConversionValue, e.HasConversionValue = MaxConversionValue, true }, validMillis, ""},
		{"value negative", func(e *Event) { e.ConversionValue, e.HasConversionValue = -1, true }, validMillis, CodeOutOfRange},
		{"value above 1e9", func(e *Event) { e.ConversionValue, e.HasConversionValue = 1e9+0.01, true }, validMillis, CodeOutOfRange},
		{"value NaN", func(e *Event) { e.ConversionValue, e.HasConversionValue = math.NaN(), true }, validMillis, CodeOutOfRange},

		// conversions
		{"conversion complete", func(e *Event) {
			e.EventType, e.ConversionValue, e.HasConversionValue, e.Currency = TypeConversion, 19.99, true, "USD"
		}, validMillis, ""},
		{"conversion without value", func(e *Event) { e.EventType, e.Currency = TypeConversion, "USD" }, validMillis, CodeConversionMissingValue},
		{"conversion without currency", func(e *Event) {
			e.EventType, e.ConversionValue, e.HasConversionValue = TypeConversion, 19.99, true
		}, validMillis, CodeConversionMissingValue},
		{"conversion with neither", func(e *Event) { e.EventType = TypeConversion }, validMillis, CodeConversionMissingValue},
		{"value without conversion is fine", func(e *Event) { e.ConversionValue, e.HasConversionValue = 3, true }, validMillis, ""},

		// currency: three capital letters, whatever the event type
		{"currency lower case", func(e *Event) {
			e.EventType, e.ConversionValue, e.HasConversionValue, e.Currency = TypeConversion, 1, true, "usd"
		}, validMillis, CodeBadCurrency},
		{"currency two letters", func(e *Event) {
			e.EventType, e.ConversionValue, e.HasConversionValue, e.Currency = TypeConversion, 1, true, "US"
		}, validMillis, CodeBadCurrency},
		{"currency four letters", func(e *Event) {
			e.EventType, e.ConversionValue, e.HasConversionValue, e.Currency = TypeConversion, 1, true, "USDX"
		}, validMillis, CodeBadCurrency},
		{"currency digit", func(e *Event) {
			e.EventType, e.ConversionValue, e.HasConversionValue, e.Currency = TypeConversion, 1, true, "U5D"
		}, validMillis, CodeBadCurrency},
		{"currency non-ASCII", func(e *Event) {
			e.EventType, e.ConversionValue, e.HasConversionValue, e.Currency = TypeConversion, 1, true, "ÉU"
		}, validMillis, CodeBadCurrency},
		{"currency on a click checked", func(e *Event) { e.Currency = "eur" }, validMillis, CodeBadCurrency},
		{"currency on a click fine", func(e *Event) { e.Currency = "EUR" }, validMillis, ""},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := validEvent()
			tt.mutate(&ev)
			ts := ev.Timestamp
			rej := Validate(&ev, tt.now, hourCfg)
			if tt.code == "" {
				if rej != nil {
					t.Fatalf("rejected a valid event: %v", rej)
				}
				want, err := time.Parse(time.RFC3339Nano, strings.ToUpper(ts)) // time.Parse wants "T" and "Z"
				if err != nil {
					t.Fatalf("test timestamp %q: %v", ts, err)
				}
				if ev.EventTime != want.UnixMilli() {
					t.Errorf("EventTime = %d, want %d (%s)", ev.EventTime, want.UnixMilli(), ts)
				}
				return
			}
			if rej == nil {
				t.Fatalf("accepted, want %s", tt.code)
			}
			if rej.Code != tt.code {
				t.Fatalf("code = %s (%s), want %s", rej.Code, rej.Message, tt.code)
			}
			if stage := ErrorCodes[rej.Code]; stage != StageValidate {
				t.Errorf("code %s has stage %q, want %q", rej.Code, stage, StageValidate)
			}
			if ev.EventTime != 0 {
				t.Errorf("a rejected event got EventTime %d", ev.EventTime)
			}
			seen[rej.Code] = true
		})
	}
	for code, stage := range ErrorCodes {
		if stage == StageValidate && !seen[code] {
			t.Errorf("no test input produces %s", code)
		}
	}
}

func TestValidateIngestTime(t *testing.T) {
	tests := []struct {
		name        string
		ingest, now int64
		want        int64
	}{
		// A source that does not know arrival time: the event time stands in.
		{"unknown arrival", 0, 0, validMillis},
		{"unknown arrival, now given", 0, validMillis + 5000, validMillis},
		{"known arrival kept", validMillis + 1234, validMillis + 1234, validMillis + 1234},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := validEvent()
			ev.IngestTime = tt.ingest
			if rej := Validate(&ev, tt.now, ValidateConfig{MaxFutureSkew: time.Hour}); rej != nil {
				t.Fatalf("rejected: %v", rej)
			}
			if ev.IngestTime != tt.want {
				t.Errorf("IngestTime = %d, want %d", ev.IngestTime, tt.want)
			}
			if ev.EventTime != validMillis {
				t.Errorf("EventTime = %d, want %d", ev.EventTime, validMillis)
			}
		})
	}
}

func TestValidateZeroSkew(t *testing.T) {
	tests := []struct {
		offset time.Duration
		code   string
	}{
		{0, ""},
		{-time.Minute, ""},
		{time.Millisecond, CodeFutureTimestamp},
	}
	for _, tt := range tests {
		ev := validEvent()
		ev.Timestamp = validTime.Add(tt.offset).Format(time.RFC3339Nano)
		rej := Validate(&ev, validMillis, ValidateConfig{})
		switch {
		case tt.code == "" && rej != nil:
			t.Errorf("offset %s: rejected %v", tt.offset, rej)
		case tt.code != "" && (rej == nil || rej.Code != tt.code):
			t.Errorf("offset %s: got %v, want %s", tt.offset, rej, tt.code)
		}
	}
}

// deadLetterSummary is what a dead-letter test compares: everything but the
// processing time.
func deadLetterSummary(d DeadLetter) string {
	return fmt.Sprintf("%s|%s|id=%s|src=%s|msg=%s|pub=%d|ver=%s|payload=%s", d.Stage, d.ErrorCode, d.EventID, d.Source, d.MessageID, d.PublishTime, d.PipelineVersion, d.Payload)
}

func validEventSummary(e Event) string {
	return fmt.Sprintf("%s|%s|t=%d|ingest=%d|src=%s|raw=%d|ts=%q|msg=%q", e.EventID, e.EventType, e.EventTime, e.IngestTime, e.Source, len(e.Raw), e.Timestamp, e.MessageID)
}

// ValidateSchema compacts the batch it is given: the valid events, in order
// and with their payloads released, move down over the invalid ones, whose
// dead letters keep their payloads as sent; the places left behind are
// cleared; and it allocates a small part of what a copy of the batch would.
func TestValidateSchemaCompactsInPlace(t *testing.T) {
	const n = 4096
	ts := validTime.Format(time.RFC3339Nano)
	in := EventBatch{Events: make([]Event, n)}
	var wantValid []string
	wantDead := map[string]string{} // event id -> payload
	for i := range in.Events {
		id, platform := fmt.Sprintf("e%d", i), "meta"
		if i%8 == 3 {
			platform = "myspace"
		}
		data := fmt.Sprintf(`{"schema_version":"1.0","event_id":%q,"event_type":"view","timestamp":%q,"user_id":"u","campaign_id":"c","platform":%q}`, id, ts, platform)
		ev, rej := Parse(Message{Data: []byte(data), PublishTime: validMillis + 500, Source: "t"}, 1<<16)
		if rej != nil {
			t.Fatalf("parse %s: %v", data, rej)
		}
		in.Events[i] = ev
		if platform == "meta" {
			wantValid = append(wantValid, id)
		} else {
			wantDead[id] = data
		}
	}
	f := &validateFn{MaxFutureSkewMillis: time.Hour.Milliseconds()}
	var out EventBatch
	dead := make([]DeadLetter, 0, n)
	alloc := bytesAllocatedBy(func() {
		f.ProcessElement(context.Background(), in, func(b EventBatch) { out = b }, func(d DeadLetter) { dead = append(dead, d) })
	})

	if len(out.Events) != len(wantValid) || &out.Events[0] != &in.Events[0] {
		t.Fatalf("sent %d events (want %d), in the input's array: %v", len(out.Events), len(wantValid), len(out.Events) > 0 && &out.Events[0] == &in.Events[0])
	}
	for i, ev := range out.Events {
		if ev.EventID != wantValid[i] || ev.EventTime != validMillis || ev.Raw != nil || ev.Timestamp != "" {
			t.Fatalf("event %d: id %s time %d raw %q timestamp %q; want %s, %d, payload released", i, ev.EventID, ev.EventTime, ev.Raw, ev.Timestamp, wantValid[i], validMillis)
		}
	}
	if len(dead) != len(wantDead) {
		t.Fatalf("%d dead letters, want %d", len(dead), len(wantDead))
	}
	for _, d := range dead {
		if d.ErrorCode != CodeBadPlatform || string(d.Payload) != wantDead[d.EventID] {
			t.Fatalf("dead letter %s: %s %q, want %s %q", d.EventID, d.ErrorCode, d.Payload, CodeBadPlatform, wantDead[d.EventID])
		}
	}
	for i, ev := range in.Events[len(out.Events):] {
		if !reflect.ValueOf(ev).IsZero() {
			t.Fatalf("place %d behind the valid events still holds event %s", len(out.Events)+i, ev.EventID)
		}
	}
	if alloc > n*uint64(unsafe.Sizeof(Event{}))/4 {
		t.Fatalf("allocated %d bytes to validate %d events", alloc, n)
	}
}

// TestParseAndValidateOnPrism runs ParseEvents and ValidateSchema on a mix of
// good and bad messages.
func TestParseAndValidateOnPrism(t *testing.T) {
	at := validMillis + 500 // every message arrives half a second after validTime
	ts := validTime.Format(time.RFC3339Nano)
	event := func(id, typ, platform, extra string) string {
		return fmt.Sprintf(`{"schema_version":"1.0","event_id":%q,"event_type":%q,"timestamp":%q,"user_id":"u","campaign_id":"c","platform":%q%s}`,
			id, typ, ts, platform, extra)
	}
	future := strings.Replace(event("fut", "view", "meta", ""), ts, validTime.Add(2*time.Hour).Format(time.RFC3339), 1)
	v2 := strings.Replace(event("v2", "view", "meta", ""), `"1.0"`, `"2.0"`, 1)
	oversize := event("big", "view", "meta", `,"utm_content":"`+strings.Repeat("x", 1100)+`"`)
	wrongType := `{"schema_version":"1.0","event_id":"wt","timestamp":123}`
	msgs := []Message{
		{Data: []byte(event("ok1", "click", "meta", "")), PublishTime: at, Source: "t"},
		{Data: []byte(event("ok2", "conversion", "google_ads", `,"conversion_value":12.5,"currency":"USD"`)), PublishTime: at, Source: "t"},
		{Data: []byte(event("ok3", "view", "x", `,"extra":{"a":[1]}`)), PublishTime: 0, Source: "file"},
		{Data: []byte("  "), PublishTime: at, Source: "t"},
		{Data: []byte(`[1,2,3]`), PublishTime: at, Source: "t"},
		{Data: []byte(wrongType), PublishTime: at, Source: "t"},
		{Data: []byte(oversize), PublishTime: at, Source: "t"},
		{Data: []byte(event("bp", "view", "myspace", "")), PublishTime: at, Source: "t"},
		{Data: []byte(v2), PublishTime: at, Source: "t"},
		{Data: []byte(future), PublishTime: at, Source: "t"},
		{Data: []byte(event("nocur", "conversion", "meta", `,"conversion_value":1`)), PublishTime: at, Source: "t"},
	}
	for i := range msgs {
		msgs[i].ID = fmt.Sprintf("m%d", i)
	}
	dl := func(stage, code, id, src, msgID string, pub int64, payload string) string {
		return deadLetterSummary(DeadLetter{Stage: stage, ErrorCode: code, EventID: id, Source: src, MessageID: msgID, PublishTime: pub, PipelineVersion: PipelineVersion, Payload: []byte(payload)})
	}
	// Each dead letter carries its message's id.
	wantDead := []any{
		dl(StageParse, CodeEmptyPayload, "", "t", "m3", at, "  "),
		dl(StageParse, CodeNotAnObject, "", "t", "m4", at, `[1,2,3]`),
		dl(StageParse, CodeWrongType, "", "t", "m5", at, wrongType),
		dl(StageParse, CodeOversizePayload, "", "t", "m6", at, oversize),
		dl(StageValidate, CodeBadPlatform, "bp", "t", "m7", at, event("bp", "view", "myspace", "")),
		dl(StageValidate, CodeUnsupportedSchemaVersion, "v2", "t", "m8", at, v2),
		dl(StageValidate, CodeFutureTimestamp, "fut", "t", "m9", at, future),
		dl(StageValidate, CodeConversionMissingValue, "nocur", "t", "m10", at, event("nocur", "conversion", "meta", `,"conversion_value":1`)),
	}
	// Valid events leave with EventTime set, Raw, Timestamp and MessageID
	// released; a message without arrival time gets the event time as
	// IngestTime.
	wantValid := []any{
		fmt.Sprintf("ok1|click|t=%d|ingest=%d|src=t|raw=0|ts=\"\"|msg=\"\"", validMillis, at),
		fmt.Sprintf("ok2|conversion|t=%d|ingest=%d|src=t|raw=0|ts=\"\"|msg=\"\"", validMillis, at),
		fmt.Sprintf("ok3|view|t=%d|ingest=%d|src=file|raw=0|ts=\"\"|msg=\"\"", validMillis, validMillis),
	}
	ptest.BuildAndRun(t, func(s beam.Scope) {
		in := BatchMessages(s, beam.CreateList(s, msgs))
		events, parseDead := ParseEvents(s, in, 1024)
		valid, validateDead := ValidateSchema(s, events, ValidateConfig{MaxFutureSkew: time.Hour})
		// ValidateSchema owns its input: count the parsed events of a parse of their own.
		parsed, _ := ParseEvents(s, in, 1024)
		passert.Count(s, Unbatch(s, parsed), "parsed", len(msgs)-4)
		passert.Equals(s, beam.ParDo(s, validEventSummary, Unbatch(s, valid)), wantValid...)
		dead := beam.Flatten(s, parseDead, validateDead)
		passert.Equals(s, beam.ParDo(s, deadLetterSummary, dead), wantDead...)
		passert.Equals(s, beam.ParDo(s, deadLetterCode, parseDead),
			CodeEmptyPayload, CodeNotAnObject, CodeWrongType, CodeOversizePayload)
	})
}

// TestFutureTimestampSaysHowFarAhead: the reason of a far-future timestamp
// gives a positive distance; a year 9999 wrapped time.Duration negative.
func TestFutureTimestampSaysHowFarAhead(t *testing.T) {
	cfg := ValidateConfig{MaxFutureSkew: time.Hour}
	for ts, want := range map[string]string{
		"9999-12-31T23:59:59Z":                                         " days past arrival",
		validTime.Add(2 * time.Hour).Format(time.RFC3339):              "2h0m0s past arrival",
		validTime.Add(200 * 365 * 24 * time.Hour).Format(time.RFC3339): "h0m0s past arrival",
	} {
		ev := validEvent()
		ev.Timestamp = ts
		rej := Validate(&ev, validMillis, cfg)
		if rej == nil || rej.Code != CodeFutureTimestamp || !strings.Contains(rej.Message, want) || strings.Contains(rej.Message, " -") {
			t.Errorf("%s: %v, want %s saying %q", ts, rej, CodeFutureTimestamp, want)
		}
	}
}
