package transforms

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
)

func init() {
	register.DoFn4x0[context.Context, EventBatch, func(EventBatch), func(DeadLetter)](&validateFn{})
}

// Limits of the contract (docs/event-schema.md).
const (
	MaxIDLength           = 128
	MaxTextLength         = 1024
	MaxEngagementScore    = 100.0
	MaxConversionValue    = 1e9
	DefaultMaxFutureSkew  = time.Hour
	earliestEventTimeUnix = 946684800 // 2000-01-01T00:00:00Z: older is a broken clock, not marketing data
)

// ValidateConfig holds the tunable rules of ValidateSchema.
type ValidateConfig struct {
	// MaxFutureSkew is how far past its arrival time (or the wall clock, when
	// the source does not know arrival) an event's timestamp may lie.
	MaxFutureSkew time.Duration
}

var (
	eventTypeSet = toSet(EventTypes)
	platformSet  = toSet(Platforms)
)

func toSet(xs []string) map[string]bool {
	m := make(map[string]bool, len(xs))
	for _, x := range xs {
		m[x] = true
	}
	return m
}

// Validate applies the rules of the contract to a parsed event and fills
// EventTime. now is the arrival time in unix milliseconds the future check
// compares against. The first broken rule is reported; rules run in a fixed
// order so the same payload always gets the same code.
func Validate(ev *Event, now int64, cfg ValidateConfig) *Reject {
	if ev.SchemaVersion == "" {
		return reject(CodeMissingField, "schema_version is required")
	}
	major, err := schemaMajor(ev.SchemaVersion)
	if err != nil {
		if strings.TrimSpace(ev.SchemaVersion) == "" {
			return reject(CodeMissingField, "schema_version is blank (only white space)")
		}
		return reject(CodeBadSchemaVersion, "schema_version %q is not MAJOR or MAJOR.MINOR", truncate(ev.SchemaVersion, 32))
	}
	if major != SchemaMajor {
		return reject(CodeUnsupportedSchemaVersion, "schema_version %q: this pipeline reads major version %d", truncate(ev.SchemaVersion, 32), SchemaMajor)
	}
	for _, f := range [...]struct {
		name  string
		value string
	}{
		{"event_id", ev.EventID}, {"event_type", ev.EventType}, {"timestamp", ev.Timestamp},
		{"user_id", ev.UserID}, {"campaign_id", ev.CampaignID}, {"platform", ev.Platform},
	} {
		if f.value == "" {
			return reject(CodeMissingField, "%s is required", f.name)
		}
		// A blank id is a sender's bug, not an id: every blank event_id
		// would dedup into one event, and a blank user or campaign into
		// one phantom key.
		if strings.TrimSpace(f.value) == "" {
			return reject(CodeMissingField, "%s is blank (only white space)", f.name)
		}
	}
	for _, f := range [...]struct {
		name  string
		value string
		limit int
	}{
		{"event_id", ev.EventID, MaxIDLength}, {"user_id", ev.UserID, MaxIDLength},
		{"campaign_id", ev.CampaignID, MaxIDLength}, {"ad_id", ev.AdID, MaxIDLength},
		{"utm_source", ev.UTMSource, MaxTextLength}, {"utm_medium", ev.UTMMedium, MaxTextLength},
		{"utm_campaign", ev.UTMCampaign, MaxTextLength}, {"utm_term", ev.UTMTerm, MaxTextLength},
		{"utm_content", ev.UTMContent, MaxTextLength},
	} {
		if len(f.value) > f.limit {
			return reject(CodeFieldTooLong, "%s is %d bytes, the limit is %d", f.name, len(f.value), f.limit)
		}
	}
	t, err := ParseRFC3339(ev.Timestamp)
	if err != nil {
		if isLeapSecond(ev.Timestamp) {
			return reject(CodeBadTimestamp, "timestamp %q is a leap second (:60), which is not accepted", truncate(ev.Timestamp, 64))
		}
		return reject(CodeBadTimestamp, "timestamp %q is not RFC 3339", truncate(ev.Timestamp, 64))
	}
	if t.Unix() < earliestEventTimeUnix {
		return reject(CodeBadTimestamp, "timestamp %s is before 2000-01-01", ev.Timestamp)
	}
	ts := t.UnixMilli()
	if now > 0 && ts > now+cfg.MaxFutureSkew.Milliseconds() {
		return reject(CodeFutureTimestamp, "timestamp %s is %s past arrival; at most %s allowed",
			ev.Timestamp, aheadBy(ts-now), cfg.MaxFutureSkew)
	}
	if !eventTypeSet[ev.EventType] {
		return reject(CodeBadEventType, "event_type %q is not one of %s", truncate(ev.EventType, 32), strings.Join(EventTypes, ", "))
	}
	if !platformSet[ev.Platform] {
		return reject(CodeBadPlatform, "platform %q is not one of %s", truncate(ev.Platform, 32), strings.Join(Platforms, ", "))
	}
	if ev.HasEngagementScore && !(ev.EngagementScore >= 0 && ev.EngagementScore <= MaxEngagementScore) {
		return reject(CodeOutOfRange, "engagement_score %g is outside [0, %g]", ev.EngagementScore, MaxEngagementScore)
	}
	if ev.HasConversionValue && !(ev.ConversionValue >= 0 && ev.ConversionValue <= MaxConversionValue) {
		return reject(CodeOutOfRange, "conversion_value %g is outside [0, %g]", ev.ConversionValue, MaxConversionValue)
	}
	if ev.EventType == TypeConversion {
		if !ev.HasConversionValue {
			return reject(CodeConversionMissingValue, "a conversion needs conversion_value")
		}
		if ev.Currency == "" {
			return reject(CodeConversionMissingValue, "a conversion needs currency")
		}
	}
	if ev.Currency != "" && !isCurrencyCode(ev.Currency) {
		return reject(CodeBadCurrency, "currency %q is not an ISO 4217 code (three capital letters)", truncate(ev.Currency, 16))
	}
	ev.EventTime = ts
	if ev.IngestTime == 0 {
		ev.IngestTime = ts
	}
	return nil
}

// ParseRFC3339 parses an RFC 3339 timestamp as Validate does. RFC 3339 (section 5.6) lets
// the "T" and "Z" be lower case, as JSON Schema's date-time does, but Go's
// time.Parse refuses them: a timestamp that fails is tried once more with
// them upper-cased, so the usual form costs one parse. Nothing else in a
// valid timestamp is a letter, so no invalid one becomes valid.
//
// time.Parse is laxer than RFC 3339 in two ways, which would put an event
// in a window up to a day away: it takes an offset hour of 24 or more and an
// offset minute of 60 or more, and a comma before the fraction. Those are
// refused here. It is stricter in one: it refuses the leap second :60
// (Validate says so; BigQuery's TIMESTAMP has none either).
func ParseRFC3339(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil && strings.ContainsAny(s, "tz") {
		t, err = time.Parse(time.RFC3339Nano, strings.Map(func(r rune) rune {
			switch r {
			case 't':
				return 'T'
			case 'z':
				return 'Z'
			}
			return r
		}, s))
	}
	if err == nil && !strictRFC3339(s) {
		return time.Time{}, errNotRFC3339
	}
	return t, err
}

var errNotRFC3339 = errors.New("not an RFC 3339 date-time")

// strictRFC3339 checks what time.Parse let through of a timestamp it parsed:
// a two-digit hour (its general parser, which it falls back to, takes one:
// "2026-03-01T9:00:00Z"), so the shape is YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM);
// a fraction after a dot; and a numeric offset within 23:59.
func strictRFC3339(s string) bool {
	if !hasClockColons(s) || s[19] == ',' {
		return false
	}
	if last := s[len(s)-1]; last == 'Z' || last == 'z' {
		return true
	}
	off := s[len(s)-6:] // ±HH:MM, digits checked by time.Parse
	return (off[1]-'0')*10+(off[2]-'0') <= 23 && off[4] <= '5'
}

// aheadBy says how far ahead of arrival a timestamp is, given in
// milliseconds: as a time.Duration while one can hold it (292 years), in days
// past that (a year 9999 would wrap to a negative duration).
func aheadBy(ms int64) string {
	if ms > math.MaxInt64/int64(time.Millisecond) {
		return fmt.Sprintf("%d days", ms/(24*time.Hour).Milliseconds())
	}
	return (time.Duration(ms) * time.Millisecond).String()
}

// isLeapSecond tells whether s is a date-time whose seconds read 60.
func isLeapSecond(s string) bool {
	return hasClockColons(s) && (s[10] == 'T' || s[10] == 't') && s[17:19] == "60"
}

// hasClockColons tells whether s is long enough for a date-time and has
// the colons of a two-digit hour, minute and second where
// YYYY-MM-DDTHH:MM:SS puts them.
func hasClockColons(s string) bool {
	return len(s) >= 20 && s[13] == ':' && s[16] == ':'
}

// schemaMajor reads MAJOR[.MINOR], each one to four ASCII digits, as the
// JSON Schema's pattern says (strconv.Atoi alone would take a sign: "+1",
// "1.-0").
func schemaMajor(v string) (int, error) {
	major, minor, hasMinor := strings.Cut(v, ".")
	if !isVersionPart(major) || (hasMinor && !isVersionPart(minor)) {
		return 0, strconv.ErrSyntax
	}
	return strconv.Atoi(major)
}

func isVersionPart(p string) bool {
	if len(p) == 0 || len(p) > 4 {
		return false
	}
	for i := 0; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return false
		}
	}
	return true
}

func isCurrencyCode(c string) bool {
	if len(c) != 3 {
		return false
	}
	for i := 0; i < 3; i++ {
		if c[i] < 'A' || c[i] > 'Z' {
			return false
		}
	}
	return true
}

// ValidateSchema applies the contract to batches of parsed events. Valid events go on
// with EventTime set and their raw payload released; the rest leave as dead
// letters with a VALIDATE_* code and the payload as it arrived.
//
// It owns its input: it validates the batches it is given in place and
// compacts them rather than copying every valid event (470 MB of a
// 1M-event run's allocation), so batches must have no other consumer (in
// Build they are ParseEvents', which feed ValidateSchema alone).
func ValidateSchema(s beam.Scope, events beam.PCollection, cfg ValidateConfig) (valid, deadLetters beam.PCollection) {
	s = s.Scope("ValidateSchema")
	return beam.ParDo2(s, &validateFn{MaxFutureSkewMillis: cfg.MaxFutureSkew.Milliseconds()}, events)
}

type validateFn struct {
	MaxFutureSkewMillis int64

	ok, bad int64
}

func (f *validateFn) ProcessElement(ctx context.Context, batch EventBatch, emit func(EventBatch), dead func(DeadLetter)) {
	cfg := ValidateConfig{MaxFutureSkew: time.Duration(f.MaxFutureSkewMillis) * time.Millisecond}
	// In place: see ValidateSchema. A valid event moves down over the
	// invalid ones before it.
	out := batch.Events[:0]
	var wall int64
	for i := range batch.Events {
		ev := &batch.Events[i]
		now := ev.IngestTime
		if now == 0 {
			if wall == 0 {
				wall = time.Now().UnixMilli()
			}
			now = wall
		}
		if rej := Validate(ev, now, cfg); rej != nil {
			f.bad++
			dead(NewDeadLetter(StageValidate, rej, Message{Data: ev.Raw, Source: ev.Source, PublishTime: ev.IngestTime, ID: ev.MessageID, Delivery: ev.Delivery}, ev.EventID))
			continue
		}
		ev.ReleasePayload()
		out = append(out, *ev)
	}
	// The places left behind still refer to payloads: Dedup's batching
	// holds the array until it sends the batch on.
	clear(batch.Events[len(out):])
	f.ok += int64(len(out))
	if len(out) > 0 {
		emit(EventBatch{Events: out})
	}
}

func (f *validateFn) FinishBundle(ctx context.Context, _ func(EventBatch), _ func(DeadLetter)) {
	counterValid.Inc(ctx, f.ok)
	counterDeadValidate.Inc(ctx, f.bad)
	f.ok, f.bad = 0, 0
}
