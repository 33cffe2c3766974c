package transforms

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"

	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/runners/prism"
)

// The Beam tests of this package run on Prism, the runner the pipeline uses
// locally.
func TestMain(m *testing.M) {
	ptest.MainWithDefault(m, "prism")
}

// minimalJSON carries exactly the fields the contract requires.
const minimalJSON = `{"schema_version":"1.0","event_id":"e-1","event_type":"click",` +
	`"timestamp":"2026-03-01T12:00:00Z","user_id":"u-1","campaign_id":"c-1","platform":"meta"}`

// fullJSON carries every field of the contract.
const fullJSON = `{"schema_version":"1.2","event_id":"e-2","event_type":"conversion",` +
	`"timestamp":"2026-03-01T12:00:00.250+01:00","user_id":"u-2","campaign_id":"c-2","platform":"tiktok",` +
	`"ad_id":"ad-9","engagement_score":42.5,"conversion_value":19.99,"currency":"EUR",` +
	`"utm_source":"src","utm_medium":"cpc","utm_campaign":"spring","utm_term":"shoes","utm_content":"banner"}`

func TestParseValid(t *testing.T) {
	tests := []struct {
		name string
		data string
		want Event // Raw, IngestTime and Source are checked separately
	}{
		{
			name: "minimal",
			data: minimalJSON,
			want: Event{SchemaVersion: "1.0", EventID: "e-1", EventType: "click", Timestamp: "2026-03-01T12:00:00Z",
				UserID: "u-1", CampaignID: "c-1", Platform: "meta"},
		},
		{
			name: "every field",
			data: fullJSON,
			want: Event{SchemaVersion: "1.2", EventID: "e-2", EventType: "conversion", Timestamp: "2026-03-01T12:00:00.250+01:00",
				UserID: "u-2", CampaignID: "c-2", Platform: "tiktok", AdID: "ad-9",
				EngagementScore: 42.5, HasEngagementScore: true, ConversionValue: 19.99, HasConversionValue: true,
				Currency: "EUR", UTMSource: "src", UTMMedium: "cpc", UTMCampaign: "spring", UTMTerm: "shoes", UTMContent: "banner"},
		},
		{
			// A minor version only adds fields: unknown ones are ignored.
			name: "unknown extra fields",
			data: `{"consent":{"ads":true},"schema_version":"1.1","event_id":"e-3","new_list":[1,"x",null],` +
				`"event_type":"view","timestamp":"2026-03-01T12:00:00Z","user_id":"u-3","campaign_id":"c-3","platform":"x","flag":false}`,
			want: Event{SchemaVersion: "1.1", EventID: "e-3", EventType: "view", Timestamp: "2026-03-01T12:00:00Z",
				UserID: "u-3", CampaignID: "c-3", Platform: "x"},
		},
		{
			// Zero is a value: it must differ from an absent number.
			name: "zero numbers are present",
			data: `{"event_id":"e-4","engagement_score":0,"conversion_value":0}`,
			want: Event{EventID: "e-4", HasEngagementScore: true, HasConversionValue: true},
		},
		{
			name: "null numbers are absent",
			data: `{"event_id":"e-5","engagement_score":null,"conversion_value":null}`,
			want: Event{EventID: "e-5"},
		},
		{
			name: "exponent number and surrounding whitespace",
			data: " \n\t{\"event_id\":\"e-6\",\"conversion_value\":1.5e2}\r\n ",
			want: Event{EventID: "e-6", ConversionValue: 150, HasConversionValue: true},
		},
		{
			name: "escaped and non-ASCII strings",
			data: `{"event_id":"e-\u00e9\"7","utm_term":"caf\u00e9 ☕"}`,
			want: Event{EventID: "e-é\"7", UTMTerm: "café ☕"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const publish = int64(1_772_366_400_123)
			msg := Message{Data: []byte(tt.data), PublishTime: publish, Source: "pubsub"}
			got, rej := Parse(msg, DefaultMaxPayloadBytes)
			if rej != nil {
				t.Fatalf("Parse rejected a valid payload: %v", rej)
			}
			if !bytes.Equal(got.Raw, msg.Data) {
				t.Errorf("Raw = %q, want the payload %q", got.Raw, msg.Data)
			}
			if got.IngestTime != publish {
				t.Errorf("IngestTime = %d, want PublishTime %d", got.IngestTime, publish)
			}
			if got.Source != "pubsub" {
				t.Errorf("Source = %q, want %q", got.Source, "pubsub")
			}
			if got.EventTime != 0 || got.Late || got.TooLate {
				t.Errorf("Parse set pipeline fields it does not own: EventTime=%d Late=%v TooLate=%v", got.EventTime, got.Late, got.TooLate)
			}
			got.Raw, got.IngestTime, got.Source = nil, 0, ""
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Parse =\n %+v\nwant\n %+v", got, tt.want)
			}
		})
	}
}

func TestParseNoLimitWhenMaxBytesIsZero(t *testing.T) {
	data := `{"event_id":"big","utm_content":"` + strings.Repeat("x", 3*DefaultMaxPayloadBytes) + `"}`
	for _, maxBytes := range []int{0, -1} {
		ev, rej := Parse(Message{Data: []byte(data)}, maxBytes)
		if rej != nil {
			t.Errorf("maxBytes %d: rejected with %v, want no size limit", maxBytes, rej)
			continue
		}
		if len(ev.UTMContent) != 3*DefaultMaxPayloadBytes {
			t.Errorf("maxBytes %d: utm_content has %d bytes, want %d", maxBytes, len(ev.UTMContent), 3*DefaultMaxPayloadBytes)
		}
	}
}

// TestParseMatchesNamesExactly reads member names as docs/event.schema.json
// does: exactly. A name differing only in case is an unknown field, which a
// 1.x sender may add, and must not replace a field of the contract. Of a
// repeated name the last counts.
func TestParseMatchesNamesExactly(t *testing.T) {
	tests := []struct {
		name, data, wantID, wantPlatform string
	}{
		{"added upper-case twin", `{"event_id":"e1","platform":"meta","EVENT_ID":"other","Platform":"Meta Ads"}`, "e1", "meta"},
		{"twin first", `{"Event_Id":"other","event_id":"e1","platform":"meta"}`, "e1", "meta"},
		{"only a twin", `{"Event_ID":"other","PLATFORM":"meta"}`, "", ""},
		{"repeated name: the last counts", `{"event_id":"e1","event_id":"e2","platform":"meta"}`, "e2", "meta"},
		{"escaped surrogate pair", `{"event_id":"a\ud83d\ude00","platform":"meta"}`, "a\U0001F600", "meta"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, rej := Parse(Message{Data: []byte(tt.data)}, 0)
			if rej != nil {
				t.Fatalf("rejected: %v", rej)
			}
			if ev.EventID != tt.wantID || ev.Platform != tt.wantPlatform {
				t.Errorf("event_id %q, platform %q; want %q, %q", ev.EventID, ev.Platform, tt.wantID, tt.wantPlatform)
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	tests := []struct {
		name     string
		data     []byte
		maxBytes int
		code     string
	}{
		{"nil payload", nil, 0, CodeEmptyPayload},
		{"empty payload", []byte{}, 0, CodeEmptyPayload},
		{"whitespace only", []byte(" \t\r\n  "), 0, CodeEmptyPayload},
		{"the size limit beats whitespace", []byte(strings.Repeat(" ", 50)), 10, CodeOversizePayload},

		{"over a small limit", []byte(minimalJSON), 10, CodeOversizePayload},
		{"one byte over the limit", []byte(minimalJSON), len(minimalJSON) - 1, CodeOversizePayload},
		{"oversize beats invalid UTF-8", []byte("{\xff\xff\xff}"), 3, CodeOversizePayload},

		{"invalid UTF-8 in a string", []byte(`{"event_id":"e` + "\xff" + `"}`), 0, CodeInvalidUTF8},
		{"invalid UTF-8 only", []byte("\xfe\xff"), 0, CodeInvalidUTF8},
		{"truncated UTF-8 sequence", []byte(`{"utm_term":"caf` + "\xc3" + `"}`), 0, CodeInvalidUTF8},
		// Read as U+FFFD, as encoding/json does, two ids cut in half through
		// an emoji were one id, and Dedup dropped the second event.
		{"escaped lone high surrogate", []byte(`{"event_id":"abc\ud83d","platform":"meta"}`), 0, CodeInvalidUTF8},
		{"escaped lone low surrogate", []byte(`{"event_id":"abc\ude00"}`), 0, CodeInvalidUTF8},
		{"escaped surrogates in the wrong order", []byte(`{"user_id":"\ude00\ud83d"}`), 0, CodeInvalidUTF8},
		{"escaped lone surrogate in an unknown field", []byte(`{"extra":{"notes":["\ud800"]}}`), 0, CodeInvalidUTF8},
		{"lone surrogate and a syntax error", []byte(`{"event_id":"\ud800",}`), 0, CodeMalformedJSON},
		{"nested past the decoder's depth", []byte(`{"x":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}`), 0, CodeMalformedJSON},

		{"truncated event", []byte(minimalJSON[:len(minimalJSON)/2]), 0, CodeMalformedJSON},
		{"truncated by one byte", []byte(minimalJSON[:len(minimalJSON)-1]), 0, CodeMalformedJSON},
		{"lone brace", []byte("{"), 0, CodeMalformedJSON},
		{"missing value", []byte(`{"event_id":}`), 0, CodeMalformedJSON},
		{"trailing garbage", []byte(`{"event_id":"e"} x`), 0, CodeMalformedJSON},
		{"two objects", []byte(`{"event_id":"e"}{"event_id":"f"}`), 0, CodeMalformedJSON},
		{"not JSON at all", []byte("hello world"), 0, CodeMalformedJSON},
		{"truncated array", []byte("[1,"), 0, CodeMalformedJSON},
		{"truncated literal", []byte("nul"), 0, CodeMalformedJSON},
		{"single-quoted object", []byte(`{'event_id':'e'}`), 0, CodeMalformedJSON},

		{"array", []byte(`["not","an","event"]`), 0, CodeNotAnObject},
		{"empty array with spaces", []byte("  [ ]  "), 0, CodeNotAnObject},
		{"string", []byte(`"event"`), 0, CodeNotAnObject},
		{"number", []byte("42"), 0, CodeNotAnObject},
		{"negative number", []byte("-1.5"), 0, CodeNotAnObject},
		{"null", []byte("null"), 0, CodeNotAnObject},
		{"true", []byte("true"), 0, CodeNotAnObject},
		{"false", []byte("false"), 0, CodeNotAnObject},
		{"exactly at the limit", []byte("[1]"), 3, CodeNotAnObject},

		{"timestamp as number", []byte(`{"event_id":"e","timestamp":123}`), 0, CodeWrongType},
		{"conversion_value as string", []byte(`{"event_id":"e","conversion_value":"12"}`), 0, CodeWrongType},
		{"engagement_score as bool", []byte(`{"engagement_score":true}`), 0, CodeWrongType},
		{"conversion_value past a double", []byte(`{"conversion_value":1e400}`), 0, CodeWrongType},
		{"engagement_score past a double", []byte(`{"engagement_score":-1e400}`), 0, CodeWrongType},
		{"engagement_score as array", []byte(`{"engagement_score":[1]}`), 0, CodeWrongType},
		{"event_id as number", []byte(`{"event_id":5}`), 0, CodeWrongType},
		{"user_id as object", []byte(`{"user_id":{"id":"u"}}`), 0, CodeWrongType},
		{"platform as bool", []byte(`{"platform":false}`), 0, CodeWrongType},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, rej := Parse(Message{Data: tt.data, PublishTime: 99, Source: "test"}, tt.maxBytes)
			if rej == nil {
				t.Fatalf("Parse accepted %q: %+v", tt.data, ev)
			}
			if rej.Code != tt.code {
				t.Fatalf("code = %s (%s), want %s", rej.Code, rej.Message, tt.code)
			}
			if stage := ErrorCodes[rej.Code]; stage != StageParse {
				t.Errorf("code %s has stage %q in ErrorCodes, want %q", rej.Code, stage, StageParse)
			}
			if rej.Message == "" {
				t.Error("a reject must carry a human reason")
			}
			if want := rej.Code + ": " + rej.Message; rej.Error() != want {
				t.Errorf("Error() = %q, want %q", rej.Error(), want)
			}
			seen[rej.Code] = true
		})
	}
	for code, stage := range ErrorCodes {
		if stage == StageParse && !seen[code] {
			t.Errorf("no test input produces %s", code)
		}
	}
}

func TestNewDeadLetter(t *testing.T) {
	msg := Message{Data: []byte("payload\xff"), PublishTime: 1234, Source: "file", ID: "in.jsonl:42"}
	rej := &Reject{Code: CodeBadPlatform, Message: "nope"}
	tests := []struct {
		name, eventID, wantID string
	}{
		{"no id", "", ""},
		{"id kept", "e-1", "e-1"},
		{"id at the limit kept", strings.Repeat("a", MaxIDLength), strings.Repeat("a", MaxIDLength)},
		{"over-long id dropped", strings.Repeat("a", MaxIDLength+1), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := NewDeadLetter(StageValidate, rej, msg, tt.eventID)
			if d.Stage != StageValidate || d.ErrorCode != CodeBadPlatform || d.ErrorMessage != "nope" {
				t.Errorf("stage/code/message = %q/%q/%q", d.Stage, d.ErrorCode, d.ErrorMessage)
			}
			if d.EventID != tt.wantID {
				t.Errorf("EventID = %q, want %q", d.EventID, tt.wantID)
			}
			if !bytes.Equal(d.Payload, msg.Data) || d.Source != "file" || d.PublishTime != 1234 || d.MessageID != "in.jsonl:42" {
				t.Errorf("message not kept: payload %q source %q publish %d id %q", d.Payload, d.Source, d.PublishTime, d.MessageID)
			}
			if d.ProcessingTime <= 0 || d.PipelineVersion != PipelineVersion {
				t.Errorf("ProcessingTime %d, PipelineVersion %q", d.ProcessingTime, d.PipelineVersion)
			}
		})
	}
}

// TestNewDeadLetterCutsOnlyPayloadsPastTheCap keeps a payload at the cap
// whole and one past it as its first MaxDeadLetterPayloadBytes (a copy, so
// the rest can be freed), and the row says how long it was.
func TestNewDeadLetterCutsOnlyPayloadsPastTheCap(t *testing.T) {
	rej := &Reject{Code: CodeOversizePayload, Message: "too big"}
	for _, n := range []int{0, 10, MaxDeadLetterPayloadBytes, MaxDeadLetterPayloadBytes + 1, 10 << 20} {
		data := make([]byte, n)
		for i := range data {
			data[i] = byte(i % 251)
		}
		d := NewDeadLetter(StageParse, rej, Message{Data: data, Source: "pubsub"}, "")
		want := data[:min(n, MaxDeadLetterPayloadBytes)]
		if !bytes.Equal(d.Payload, want) {
			t.Errorf("%d bytes: kept %d bytes, want the first %d", n, len(d.Payload), len(want))
		}
		if n > MaxDeadLetterPayloadBytes && &d.Payload[0] == &data[0] {
			t.Errorf("%d bytes: the cut payload shares the message's array", n)
		}
		r := NewDeadLetterRow(d)
		if r.PayloadBytes != int64(n) || !bytes.Equal(r.Payload, want) {
			t.Errorf("%d bytes: row has %d bytes, payload_bytes %d", n, len(r.Payload), r.PayloadBytes)
		}
	}
}

// TestParseJudgesACutRecordBySize: a record the source kept only the start
// of is oversize by the size it had, and its dead letter says that size.
func TestParseJudgesACutRecordBySize(t *testing.T) {
	msg := Message{Data: []byte(`{"event_id":"e1"`), Size: 5 << 20, Source: "file"}
	_, rej := Parse(msg, DefaultMaxPayloadBytes)
	if rej == nil || rej.Code != CodeOversizePayload || !strings.Contains(rej.Message, "5242880 bytes") {
		t.Fatalf("got %v, want %s naming 5242880 bytes", rej, CodeOversizePayload)
	}
	if r := NewDeadLetterRow(NewDeadLetter(StageParse, rej, msg, "")); r.PayloadBytes != 5<<20 || !bytes.Equal(r.Payload, msg.Data) {
		t.Errorf("dead letter keeps %q, payload_bytes %d", r.Payload, r.PayloadBytes)
	}
}

// TestTruncateKeepsRunesWhole cuts strings of one-, two-, three- and
// four-byte runes at every length: the result is valid UTF-8, no longer than
// the limit before its mark, and a prefix of the input.
func TestTruncateKeepsRunesWhole(t *testing.T) {
	for _, s := range []string{"abcdef", "ééééé", "€€€€", "😀😀😀", "aé€😀aé€😀"} {
		for n := 0; n <= len(s)+1; n++ {
			got := truncate(s, n)
			if !utf8.ValidString(got) {
				t.Errorf("truncate(%q, %d) = %q: not UTF-8", s, n, got)
			}
			cut := strings.TrimSuffix(got, "…")
			if len(cut) > n || !strings.HasPrefix(s, cut) {
				t.Errorf("truncate(%q, %d) = %q", s, n, got)
			}
		}
	}
}

// TestParseTellsOversizeFromBlankWhateverTheSource: a file source keeps only
// the start of a line past the limit, and a line of a megabyte of spaces
// before its event was PARSE_EMPTY_PAYLOAD from a file and
// PARSE_OVERSIZE_PAYLOAD from Pub/Sub. The size is judged first.
func TestParseTellsOversizeFromBlankWhateverTheSource(t *testing.T) {
	line := append(bytes.Repeat([]byte(" "), 2<<20), minimalJSON...)
	for _, msg := range []Message{
		{Data: line}, // as Pub/Sub delivers it
		{Data: line[:1<<20], Size: int64(len(line))}, // as the file source keeps it
	} {
		if _, rej := Parse(msg, 64<<10); rej == nil || rej.Code != CodeOversizePayload {
			t.Errorf("a %d-byte payload (%d bytes kept): %v, want %s", msg.SourceBytes(), len(msg.Data), rej, CodeOversizePayload)
		}
	}
}

// TestParseNullsAndRepeatsAsDocumented pins docs/event-schema.md: a known
// field set to null reads as absent, and every value of a repeated name
// must have the field's type, though only the last counts.
func TestParseNullsAndRepeatsAsDocumented(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixMilli()
	base := `"schema_version":"1.0","event_id":"e1","event_type":"view","timestamp":"2026-03-01T12:00:00Z","user_id":"u","campaign_id":"c","platform":"meta"`
	conversion := strings.Replace(base, `"view"`, `"conversion"`, 1)
	for _, tt := range []struct{ name, data, code string }{
		{"null optional string", `{` + base + `,"ad_id":null,"utm_source":null}`, ""},
		{"null optional number", `{` + base + `,"engagement_score":null}`, ""},
		{"null required field", `{` + strings.Replace(base, `"e1"`, `null`, 1) + `}`, CodeMissingField},
		{"null conversion value", `{` + conversion + `,"conversion_value":null,"currency":"USD"}`, CodeConversionMissingValue},
		{"null currency of a conversion", `{` + conversion + `,"conversion_value":1,"currency":null}`, CodeConversionMissingValue},
		{"repeated name, the last counts", `{` + base + `,"timestamp":"2026-03-01T11:00:00Z"}`, ""},
		{"repeated name, an earlier wrong type", `{"timestamp":1,` + base + `}`, CodeWrongType},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ev, rej := Parse(Message{Data: []byte(tt.data), PublishTime: now}, 0)
			if rej == nil {
				rej = Validate(&ev, now, ValidateConfig{MaxFutureSkew: time.Hour})
			}
			switch {
			case tt.code == "" && rej != nil:
				t.Fatalf("rejected %s: %v", tt.data, rej)
			case tt.code != "" && (rej == nil || rej.Code != tt.code):
				t.Fatalf("%s: %v, want %s", tt.data, rej, tt.code)
			}
			if tt.name == "repeated name, the last counts" && ev.Timestamp != "2026-03-01T11:00:00Z" {
				t.Errorf("timestamp %q, want the last one", ev.Timestamp)
			}
		})
	}
}
