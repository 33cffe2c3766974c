package transforms

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	json "github.com/goccy/go-json"
	"github.com/goccy/go-json/jsontext"
	jsonv2 "github.com/goccy/go-json/v2"
)

// DefaultMaxPayloadBytes is the default --max_payload_bytes: far above a real
// event (about 400 bytes) and far below what would hurt a worker.
const DefaultMaxPayloadBytes = 64 << 10

func init() {
	register.DoFn4x0[context.Context, MessageBatch, func(EventBatch), func(DeadLetter)](&parseFn{})
	register.Emitter1[DeadLetter]()
}

// wireEvent is the JSON shape of schema 1.x, read by Parse and written by
// EventJSON. Strings decode as "" when absent; numbers are pointers so that a
// missing value differs from zero. Fields not listed here are ignored: minor
// versions only add fields.
type wireEvent struct {
	SchemaVersion   string   `json:"schema_version"`
	EventID         string   `json:"event_id"`
	EventType       string   `json:"event_type"`
	Timestamp       string   `json:"timestamp"`
	UserID          string   `json:"user_id"`
	CampaignID      string   `json:"campaign_id"`
	Platform        string   `json:"platform"`
	AdID            string   `json:"ad_id,omitempty"`
	EngagementScore *float64 `json:"engagement_score,omitempty"`
	ConversionValue *float64 `json:"conversion_value,omitempty"`
	Currency        string   `json:"currency,omitempty"`
	UTMSource       string   `json:"utm_source,omitempty"`
	UTMMedium       string   `json:"utm_medium,omitempty"`
	UTMCampaign     string   `json:"utm_campaign,omitempty"`
	UTMTerm         string   `json:"utm_term,omitempty"`
	UTMContent      string   `json:"utm_content,omitempty"`
}

// EventJSON encodes a parsed event back into the contract's JSON, for a
// stage that dead-letters a valid event after ValidateSchema released its
// raw payload: the payload can be replayed. It is the same event (Parse
// gives back the same fields), not the same bytes: the timestamp is written
// in UTC with milliseconds, and fields unknown to this build are gone.
func EventJSON(ev *Event) ([]byte, error) {
	w := wireEvent{
		SchemaVersion: ev.SchemaVersion, EventID: ev.EventID, EventType: ev.EventType,
		Timestamp: time.UnixMilli(ev.EventTime).UTC().Format("2006-01-02T15:04:05.000Z07:00"),
		UserID:    ev.UserID, CampaignID: ev.CampaignID, Platform: ev.Platform, AdID: ev.AdID,
		Currency: ev.Currency, UTMSource: ev.UTMSource, UTMMedium: ev.UTMMedium, UTMCampaign: ev.UTMCampaign,
		UTMTerm: ev.UTMTerm, UTMContent: ev.UTMContent,
	}
	w.EngagementScore = optFloat(ev.HasEngagementScore, ev.EngagementScore)
	w.ConversionValue = optFloat(ev.HasConversionValue, ev.ConversionValue)
	return json.Marshal(w)
}

// Parse decodes one payload into an Event. It checks only what decoding
// needs (size, encoding, JSON syntax, JSON types); the rules of the contract
// are ValidateSchema's. It never panics: a decoder panic is reported as
// malformed JSON.
func Parse(msg Message, maxBytes int) (ev Event, rej *Reject) {
	data := msg.Data
	// Size first: a file source keeps only the start of a line past the
	// limit, so whether such a line is blank cannot be told, and the same
	// bytes from Pub/Sub must get the same code.
	switch {
	case maxBytes > 0 && msg.SourceBytes() > int64(maxBytes):
		return ev, reject(CodeOversizePayload, "payload is %d bytes, the limit is %d", msg.SourceBytes(), maxBytes)
	case len(bytes.TrimSpace(data)) == 0:
		return ev, reject(CodeEmptyPayload, "payload is empty")
	case !utf8.Valid(data):
		return ev, reject(CodeInvalidUTF8, "payload is not valid UTF-8")
	}
	if first := firstNonSpace(data); first != '{' {
		if first == '[' || first == '"' || first == 'n' || first == 't' || first == 'f' || first == '-' || (first >= '0' && first <= '9') {
			if json.Valid(data) {
				return ev, reject(CodeNotAnObject, "payload is JSON but not an object")
			}
		}
		return ev, reject(CodeMalformedJSON, "payload is not a JSON object")
	}
	var w wireEvent
	if err := safeUnmarshal(data, &w); err != nil {
		var se *jsonv2.SemanticError
		if errors.As(err, &se) && se.JSONPointer != "" && se.GoType != nil {
			field := strings.TrimPrefix(string(se.JSONPointer), "/")
			if goType := se.GoType; se.JSONKind == jsontext.KindNumber &&
				(goType.Kind() == reflect.Float64 || goType.Kind() == reflect.Pointer && goType.Elem().Kind() == reflect.Float64) {
				// A number past a double's range (1e400): no value the
				// contract's number fields can hold, so the wrong type
				// too, said plainly.
				return ev, reject(CodeWrongType, "field %q: number %s is outside the range of a double", field, truncate(string(se.JSONValue), 40))
			}
			return ev, reject(CodeWrongType, "field %q: got JSON %s, want %s", field, jsonKind(se), se.GoType)
		}
		if loneSurrogate(data) {
			return ev, reject(CodeInvalidUTF8, "a string escapes a lone surrogate, which is not UTF-8: %s", truncate(err.Error(), 200))
		}
		return ev, reject(CodeMalformedJSON, "%s", truncate(err.Error(), 200))
	}
	ev = Event{
		EventID: w.EventID, EventType: w.EventType, Timestamp: w.Timestamp,
		UserID: w.UserID, CampaignID: w.CampaignID, Platform: w.Platform, AdID: w.AdID,
		Currency: w.Currency, UTMSource: w.UTMSource, UTMMedium: w.UTMMedium,
		UTMCampaign: w.UTMCampaign, UTMTerm: w.UTMTerm, UTMContent: w.UTMContent,
		SchemaVersion: w.SchemaVersion, Raw: data, Source: msg.Source, IngestTime: msg.PublishTime, ReadWatermark: msg.Watermark,
		ReplayOf: msg.ReplayOf, MessageID: msg.ID, Delivery: msg.Delivery,
	}
	if w.EngagementScore != nil {
		ev.EngagementScore, ev.HasEngagementScore = *w.EngagementScore, true
	}
	if w.ConversionValue != nil {
		ev.ConversionValue, ev.HasConversionValue = *w.ConversionValue, true
	}
	return ev, nil
}

// decodeOptions make goccy's v2 decoder read the contract as
// docs/event.schema.json states it: member names match exactly. The v1
// decoder (encoding/json's rules) also took a name that differs only in
// case, so an added field "EVENT_ID" or "Timestamp", which the contract
// leaves to the sender, replaced the event's id or time (and goccy folds
// case only for structs of at most 16 fields: one more field would have
// changed the rule silently). Of a repeated name the last value counts,
// as in v1. An escaped lone surrogate ("\ud800" without its pair) is refused
// as raw invalid UTF-8 is: v1 read it as U+FFFD, so two event_ids cut in
// half through an emoji ("a\ud83d", "a\ud83c") read as one, and the second
// event was dropped as a duplicate of the first.
var decodeOptions = jsonv2.JoinOptions(jsontext.AllowDuplicateNames(true))

// loneSurrogate tells, of a payload the decoder refused, whether an escaped
// lone surrogate was the reason: it is not JSON as the decoder reads it, and
// is once they are allowed (raw invalid UTF-8, the option's other half, is
// refused before decoding). Only refused payloads pay for the second look.
func loneSurrogate(data []byte) bool {
	v := jsontext.Value(data)
	return !v.IsValid(jsontext.AllowDuplicateNames(true)) &&
		v.IsValid(jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
}

// safeUnmarshal decodes one payload and turns a decoder panic into an error:
// no payload may crash a worker.
//
// UnmarshalOf decodes into a value the decoder pools and copies it to w, so w
// does not escape: 168 bytes allocated an event instead of 408 (the strings'
// copies are what is left). The strings stay copies on purpose: with
// DecodeNoCopyString they would be slices of the payload and keep it alive
// until Dedup's shuffle re-encodes the event, and in session 13 that made
// BenchmarkParse twice as fast and the pipeline slower (docs/performance.md, Knobs tried).
func safeUnmarshal(data []byte, w *wireEvent) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("decoder failed: %v", r)
		}
	}()
	return jsonv2.UnmarshalOf(data, w, decodeOptions)
}

// jsonKind names the JSON value a SemanticError refused, as the v1 decoder
// did: "object", "array", "bool", or a number with its text (1e400).
func jsonKind(se *jsonv2.SemanticError) string {
	switch se.JSONKind {
	case jsontext.KindBeginObject:
		return "object"
	case jsontext.KindBeginArray:
		return "array"
	case jsontext.KindTrue, jsontext.KindFalse:
		return "bool"
	case jsontext.KindNumber:
		if len(se.JSONValue) > 0 {
			return "number " + truncate(string(se.JSONValue), 40)
		}
	}
	return se.JSONKind.String()
}

func firstNonSpace(b []byte) byte {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		}
		return c
	}
	return 0
}

// truncate cuts s to at most n bytes, on a rune boundary, and marks the cut.
// A reason is stored in a STRING column, and DuckDB's CSV reader fails the
// whole load on invalid UTF-8, so a cut must not split a rune.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// ParseEvents decodes batches of raw messages (MessageBatch) into batches of
// events (EventBatch). Payloads that cannot be decoded leave on the second
// output as dead letters with a PARSE_* code.
func ParseEvents(s beam.Scope, msgs beam.PCollection, maxPayloadBytes int) (events, deadLetters beam.PCollection) {
	s = s.Scope("ParseEvents")
	return beam.ParDo2(s, &parseFn{MaxPayloadBytes: maxPayloadBytes}, msgs)
}

// parseFn counts per bundle and reports in FinishBundle: a counter update per
// element would cost more than the parse of a small event.
type parseFn struct {
	MaxPayloadBytes int

	in, ok, bad int64
}

func (f *parseFn) ProcessElement(ctx context.Context, batch MessageBatch, emit func(EventBatch), dead func(DeadLetter)) {
	out := make([]Event, 0, len(batch.Messages))
	for _, msg := range batch.Messages {
		ev, rej := Parse(msg, f.MaxPayloadBytes)
		if rej != nil {
			dead(NewDeadLetter(StageParse, rej, msg, ""))
			continue
		}
		out = append(out, ev)
	}
	f.in += int64(len(batch.Messages))
	f.ok += int64(len(out))
	f.bad += int64(len(batch.Messages) - len(out))
	if len(out) > 0 {
		emit(EventBatch{Events: out})
	}
}

// FinishBundle reports the bundle's counts. (Beam requires it to declare the
// same emitters as ProcessElement; it emits nothing.)
func (f *parseFn) FinishBundle(ctx context.Context, _ func(EventBatch), _ func(DeadLetter)) {
	counterIn.Inc(ctx, f.in)
	counterParsed.Inc(ctx, f.ok)
	counterDeadParse.Inc(ctx, f.bad)
	f.in, f.ok, f.bad = 0, 0, 0
}
