// Package transforms holds the event contract and the pure Beam transforms of
// Campaign Pulse: ParseEvents, ValidateSchema, Dedup, the event-time windowing,
// the CombinePerKey metrics and the dead-letter record. Nothing here does
// network I/O, so every transform runs the same on Prism, in tests and on
// Dataflow.
package transforms

import (
	"math"
	"time"

	"github.com/zeebo/xxh3"
)

// Namespace is the one metrics namespace every counter of the pipeline uses,
// so a reader finds them all in one place on Prism and in Dataflow's UI.
const Namespace = "campaignpulse"

// SchemaMajor is the major version of the event contract this build reads.
// Minor versions only add optional fields, so any 1.x is accepted; 2.x is
// rejected with VALIDATE_UNSUPPORTED_SCHEMA_VERSION (see docs/event-schema.md).
const SchemaMajor = 1

// Event types of the funnel.
const (
	TypeView       = "view"
	TypeClick      = "click"
	TypeEngagement = "engagement"
	TypeConversion = "conversion"
)

// EventTypes are the accepted values of event_type, in funnel order.
var EventTypes = []string{TypeView, TypeClick, TypeEngagement, TypeConversion}

// Platforms are the accepted values of platform: the ad and social networks
// marketing events come from.
var Platforms = []string{"google_ads", "meta", "tiktok", "linkedin", "x", "youtube"}

// Message is a record as a source hands it over: the payload and what the
// transport knows about it. Pub/Sub fills PublishTime; the generator fills it
// with its own arrival clock; a file does not know it (0).
type Message struct {
	Data        []byte
	PublishTime int64 // unix milliseconds the message arrived at the source; 0 if unknown
	Source      string
	// Size is the record's size at the source when Data holds only its
	// start (a file's line too long to be anything but oversize); 0 means
	// len(Data).
	Size int64
	// ReplayOf names the dead letter a replayed message resends (the
	// replay_of attribute cmd/replay sets); "" for every other message.
	ReplayOf string
	// ID names the record within its source: the Pub/Sub message id, a
	// file's path and the line's byte offset, the generator's seed and
	// index; "" when the source has none. A dead letter carries it
	// (DeadLetter.MessageID) so that one the at-least-once BigQuery sink
	// writes twice is counted once in the warehouse.
	ID string
	// Delivery numbers this delivery of the record when its source
	// acknowledges it only once it is settled (settle.go); 0 otherwise.
	Delivery uint64
	// Watermark is the source's watermark (unix ms) when it emitted the
	// record, for a source that computes its own (the native Pub/Sub one);
	// 0 otherwise. A record delivered long after it was published (a
	// redelivery after a crash) can be behind it, and the runner drops
	// what is behind the watermark by more than the window's lateness
	// whatever its publish time says: ClassifyLateness judges by both.
	Watermark int64
}

// SourceBytes is the record's size at the source.
func (m Message) SourceBytes() int64 { return max(m.Size, int64(len(m.Data))) }

// Event is a parsed, typed marketing event. Times are unix milliseconds so the
// type stays cheap to encode.
type Event struct {
	EventID            string
	EventType          string
	EventTime          int64
	UserID             string
	CampaignID         string
	Platform           string
	AdID               string
	EngagementScore    float64
	HasEngagementScore bool
	ConversionValue    float64
	HasConversionValue bool
	Currency           string
	UTMSource          string
	UTMMedium          string
	UTMCampaign        string
	UTMTerm            string
	UTMContent         string
	SchemaVersion      string

	// Inputs of ValidateSchema: the timestamp as sent and the raw payload (for
	// a dead letter). ValidateSchema clears both on a valid event so they do
	// not travel further.
	Timestamp string
	Raw       []byte

	// Set by the pipeline, not by the sender.
	IngestTime    int64  // arrival time (Message.PublishTime), or EventTime when the source does not know it
	Source        string // where the message came from
	ReplayOf      string // Message.ReplayOf: the dead letter this event resends, or ""
	MessageID     string // Message.ID, for a dead letter; released with Raw
	Delivery      uint64 // Message.Delivery: kept to the end, where the event is settled (settle.go)
	ReadWatermark int64  // Message.Watermark, until ClassifyLateness has used it (then 0)
	Late          bool   // arrived after the watermark estimate passed the end of its window
	TooLate       bool   // arrived past the allowed lateness: kept at event grain, left out of aggregates

	// Enrichment is the user and campaign context Enrich reads from Bigtable,
	// nil until Enrich runs and in a run without enrichment. A pointer, not
	// the block itself: an event crosses Parse, Validate, BatchForDedup and
	// Dedup's shuffle before Enrich, held by the million in a bounded run,
	// and the 168-byte block would be a third of each copy while empty.
	Enrichment *Enrichment
}

// DedupHash is the identity Dedup remembers an event by: its event_id, or,
// for a replayed dead letter, the event_id and the dead letter it resends.
// Enrich runs after Dedup, so a running job has already seen the id of every
// event it dead-lettered there (ENRICH_UNAVAILABLE); a replay of one into
// that job must not count as a repeat of a copy that reached no table. Two
// replays of the same dead letter are still repeats of each other.
//
// A replay's identity is the dead letter's id hashed with the event_id's
// hash as seed, not the two joined with a separator: an event_id may hold
// any character, the separator too, so an event_id "X\x00replay_of\x00D"
// hashed as the replay of D with id "X", and one of them was dropped.
func (e *Event) DedupHash() uint64 {
	h := xxh3.HashString(e.EventID)
	if e.ReplayOf == "" {
		return h
	}
	return xxh3.HashStringSeed(e.ReplayOf, h)
}

// Enrichment statuses: what Enrich did to an event.
const (
	EnrichDisabled    = "disabled"    // the run has no enrichment (the zero Status reads as this)
	EnrichOK          = "enriched"    // both lookups answered; a key that was not found reads "unknown"
	EnrichUnavailable = "unavailable" // Bigtable did not answer within the retry budget; passed on unenriched
)

// Unknown is the value of a context attribute whose user or campaign is not in
// Bigtable: an explicit marker, so the marts can slice by it.
const Unknown = "unknown"

// Enrichment is the context of an event's user and campaign. Times are unix
// milliseconds, 0 when unknown. Only Status is set when the lookup did not run.
type Enrichment struct {
	Status string

	UserFound         bool
	UserSegment       string
	UserCountry       string
	UserLifetimeValue float64
	UserFirstSeen     int64

	CampaignFound       bool
	CampaignName        string
	CampaignObjective   string
	CampaignChannel     string
	Advertiser          string
	CampaignDailyBudget float64
	CampaignStart       int64
	CampaignEnd         int64
}

// Enriched reports whether the lookup ran and answered; x may be nil.
func (x *Enrichment) Enriched() bool { return x != nil && x.Status == EnrichOK }

// StatusOrDisabled is the enrichment_status column: x's Status, or
// EnrichDisabled when the lookup did not run (x nil or its Status empty).
func (x *Enrichment) StatusOrDisabled() string {
	if x == nil || x.Status == "" {
		return EnrichDisabled
	}
	return x.Status
}

// Time returns the event time as a time.Time in UTC.
func (e *Event) Time() time.Time { return time.UnixMilli(e.EventTime).UTC() }

// ConversionValueMicros returns the conversion value in millionths of the
// currency unit: aggregates sum these integers, so a sum is exact whatever
// order the runner merges partial sums in.
func (e *Event) ConversionValueMicros() int64 { return int64(math.Round(e.ConversionValue * 1e6)) }

// EventBatch is a bundle-local group of events that crosses a shuffle as one
// element. On Prism the cost of a shuffle is per element, so Dedup moves
// events between workers in batches rather than one by one.
type EventBatch struct {
	Events []Event
}

// ReleasePayload drops what a valid event no longer needs once ValidateSchema
// has passed it: the raw payload and the message id, kept until then for a
// dead letter, and the timestamp's text, which EventTime now holds. Events
// cross shuffles and sit in batches by the thousand, so they carry none of
// them past validation (a valid event is identified by its event_id).
func (e *Event) ReleasePayload() { e.Raw, e.Timestamp, e.MessageID = nil, "", "" }
