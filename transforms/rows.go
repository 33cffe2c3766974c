package transforms

import (
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
)

func init() {
	register.Function1x1(NewDeadLetterRow)
	register.Emitter1[DeadLetterRow]()
}

// The warehouse tables. These Go types are the one definition of their
// schemas: the DuckDB DDL, the BigQuery JSON schemas and dbt's sources are
// generated from, or tested against, the `bq` tags below.
//
// Tag form: `bq:"column,TYPE,MODE" desc:"…"` with BigQuery's type names
// (STRING, INT64, FLOAT64, BOOL, BYTES, TIMESTAMP) and modes (REQUIRED,
// NULLABLE). A NULLABLE column is a pointer field. A field tagged `bq:"-"`
// is no column: it travels with the row to the sink and stops there.
const (
	TableMetrics     = "fact_campaign_metrics_1m"
	TableEvents      = "fact_marketing_events"
	TableDeadLetters = "dead_letter_events"
)

// MetricsRow is one emitted pane of one (window, campaign, platform, event type).
type MetricsRow struct {
	WindowStart        time.Time `bq:"window_start,TIMESTAMP,REQUIRED" desc:"Start of the one-minute event-time window (inclusive)."`
	WindowEnd          time.Time `bq:"window_end,TIMESTAMP,REQUIRED" desc:"End of the window (exclusive)."`
	CampaignID         string    `bq:"campaign_id,STRING,REQUIRED" desc:"Campaign the events belong to."`
	Platform           string    `bq:"platform,STRING,REQUIRED" desc:"Ad or social platform."`
	EventType          string    `bq:"event_type,STRING,REQUIRED" desc:"view, click, engagement or conversion."`
	PaneVersion        int64     `bq:"pane_version,INT64,REQUIRED" desc:"Grows with every pane of this window key that brought new data: the highest is the latest and, panes accumulating, the complete one."`
	Events             int64     `bq:"events,INT64,REQUIRED" desc:"Events in the window so far (accumulating)."`
	LateEvents         int64     `bq:"late_events,INT64,REQUIRED" desc:"Of those, events that arrived after the window closed, within the allowed lateness."`
	UniqueUsers        int64     `bq:"unique_users,INT64,REQUIRED" desc:"Approximate distinct users (HyperLogLog, precision 14, ~0.8% error)."`
	ConversionValue    float64   `bq:"conversion_value,FLOAT64,REQUIRED" desc:"Sum of conversion_value, summed exactly in micros; stops at 2^63-1 micros (about 9.22 trillion) rather than overflow."`
	Currency           *string   `bq:"currency,STRING,NULLABLE" desc:"Currency of conversion_value; MIXED if the key saw several; null if none."`
	EngagementScoreSum float64   `bq:"engagement_score_sum,FLOAT64,REQUIRED" desc:"Sum of engagement_score."`
	MaxIngestTimestamp time.Time `bq:"max_ingest_timestamp,TIMESTAMP,REQUIRED" desc:"Latest arrival time of an event in this pane."`
	EmittedAt          time.Time `bq:"emitted_at,TIMESTAMP,REQUIRED" desc:"Processing time the pane was emitted."`
	// New columns go last and NULLABLE: BigQuery adds only nullable
	// columns to a table, and the DuckDB sink adds them at the end of an
	// existing table (OpenWarehouse), where its positional COPY expects them.
	RunID *string `bq:"run_id,STRING,NULLABLE" desc:"Pipeline run that emitted the pane (--run_id; on Dataflow the job name, kept across updates). Panes accumulate within a run: a window key's total is the sum over runs of each run's latest pane. Null in rows written before the column existed."`
}

// EventRow is one valid, de-duplicated event: every one reaches this table,
// late or too late, so nothing is lost to the aggregates' lateness policy.
type EventRow struct {
	EventID         string    `bq:"event_id,STRING,REQUIRED" desc:"Sender's unique id of the event."`
	EventType       string    `bq:"event_type,STRING,REQUIRED" desc:"view, click, engagement or conversion."`
	EventTimestamp  time.Time `bq:"event_timestamp,TIMESTAMP,REQUIRED" desc:"When the event happened (event time)."`
	IngestTimestamp time.Time `bq:"ingest_timestamp,TIMESTAMP,REQUIRED" desc:"When it arrived at the source (event time if unknown)."`
	WindowStart     time.Time `bq:"window_start,TIMESTAMP,REQUIRED" desc:"Start of the one-minute window it belongs to."`
	UserID          string    `bq:"user_id,STRING,REQUIRED" desc:"User the event is about."`
	CampaignID      string    `bq:"campaign_id,STRING,REQUIRED" desc:"Campaign."`
	Platform        string    `bq:"platform,STRING,REQUIRED" desc:"Ad or social platform."`
	AdID            *string   `bq:"ad_id,STRING,NULLABLE" desc:"Ad creative, when sent."`
	EngagementScore *float64  `bq:"engagement_score,FLOAT64,NULLABLE" desc:"Engagement score in [0, 100], when sent."`
	ConversionValue *float64  `bq:"conversion_value,FLOAT64,NULLABLE" desc:"Conversion value, when sent (required for conversions)."`
	Currency        *string   `bq:"currency,STRING,NULLABLE" desc:"ISO 4217 currency of conversion_value."`
	UTMSource       *string   `bq:"utm_source,STRING,NULLABLE" desc:"UTM source."`
	UTMMedium       *string   `bq:"utm_medium,STRING,NULLABLE" desc:"UTM medium."`
	UTMCampaign     *string   `bq:"utm_campaign,STRING,NULLABLE" desc:"UTM campaign."`
	UTMTerm         *string   `bq:"utm_term,STRING,NULLABLE" desc:"UTM term."`
	UTMContent      *string   `bq:"utm_content,STRING,NULLABLE" desc:"UTM content."`
	SchemaVersion   string    `bq:"schema_version,STRING,REQUIRED" desc:"Contract version the sender used."`
	IsLate          bool      `bq:"is_late,BOOL,REQUIRED" desc:"Arrived after its window closed, within the allowed lateness: counted in a late pane."`
	IsTooLate       bool      `bq:"is_too_late,BOOL,REQUIRED" desc:"Arrived past the allowed lateness: in this table, not in fact_campaign_metrics_1m."`
	Source          string    `bq:"source,STRING,REQUIRED" desc:"Source the event was read from."`
	ProcessedAt     time.Time `bq:"processed_at,TIMESTAMP,REQUIRED" desc:"Processing time the row was built."`

	// The user and campaign context from Bigtable (enrichment/). Null unless
	// enrichment_status is enriched; a user or campaign Bigtable does not
	// know reads "unknown" with user_found or campaign_found false.
	EnrichmentStatus    string     `bq:"enrichment_status,STRING,REQUIRED" desc:"enriched, unavailable (Bigtable did not answer in the retry budget; passed on unenriched) or disabled (the run has no enrichment)."`
	UserFound           *bool      `bq:"user_found,BOOL,NULLABLE" desc:"The user is in Bigtable."`
	UserSegment         *string    `bq:"user_segment,STRING,NULLABLE" desc:"User's marketing segment; unknown if the user is not in Bigtable."`
	UserCountry         *string    `bq:"user_country,STRING,NULLABLE" desc:"User's country (ISO 3166-1 alpha-2); unknown if not found."`
	UserLifetimeValue   *float64   `bq:"user_lifetime_value,FLOAT64,NULLABLE" desc:"User's lifetime value at lookup time."`
	UserFirstSeen       *time.Time `bq:"user_first_seen,TIMESTAMP,NULLABLE" desc:"When the user was first seen."`
	CampaignFound       *bool      `bq:"campaign_found,BOOL,NULLABLE" desc:"The campaign is in Bigtable."`
	CampaignName        *string    `bq:"campaign_name,STRING,NULLABLE" desc:"Campaign's name; unknown if the campaign is not in Bigtable."`
	CampaignObjective   *string    `bq:"campaign_objective,STRING,NULLABLE" desc:"Campaign's objective (awareness, traffic, engagement, conversions); unknown if not found."`
	CampaignChannel     *string    `bq:"campaign_channel,STRING,NULLABLE" desc:"Campaign's channel (search, social, video, display); unknown if not found."`
	Advertiser          *string    `bq:"advertiser,STRING,NULLABLE" desc:"Advertiser running the campaign; unknown if not found."`
	CampaignDailyBudget *float64   `bq:"campaign_daily_budget,FLOAT64,NULLABLE" desc:"Campaign's daily budget in its currency."`
	CampaignStart       *time.Time `bq:"campaign_start,TIMESTAMP,NULLABLE" desc:"Campaign's start."`
	CampaignEnd         *time.Time `bq:"campaign_end,TIMESTAMP,NULLABLE" desc:"Campaign's end."`
}

// DeadLetterRow is one rejected input record.
type DeadLetterRow struct {
	Stage               string     `bq:"stage,STRING,REQUIRED" desc:"Pipeline stage that rejected the record: parse, validate, enrich, sink."`
	ErrorCode           string     `bq:"error_code,STRING,REQUIRED" desc:"Stable machine-readable code (docs/event-schema.md)."`
	ErrorMessage        string     `bq:"error_message,STRING,REQUIRED" desc:"Human-readable reason."`
	EventID             *string    `bq:"event_id,STRING,NULLABLE" desc:"The event's id, when the stage could read it."`
	Payload             []byte     `bq:"payload,BYTES,REQUIRED" desc:"The raw payload, byte for byte, for replay; only its first MiB when it was longer (payload_bytes is larger then)."`
	PayloadBytes        int64      `bq:"payload_bytes,INT64,REQUIRED" desc:"Size of the payload as it arrived."`
	Source              string     `bq:"source,STRING,REQUIRED" desc:"Source the record was read from."`
	PublishTimestamp    *time.Time `bq:"publish_timestamp,TIMESTAMP,NULLABLE" desc:"When it arrived at the source, when known."`
	ProcessingTimestamp time.Time  `bq:"processing_timestamp,TIMESTAMP,REQUIRED" desc:"When it was rejected."`
	PipelineVersion     string     `bq:"pipeline_version,STRING,REQUIRED" desc:"Build of the pipeline that rejected it."`
	MessageID           *string    `bq:"message_id,STRING,NULLABLE" desc:"The record's id at its source (the Pub/Sub message id, a file line's path@size.mtime:byte offset, a generated event's seed:index), when known; a dead letter written twice has it twice."`
	// Delivery is the dead letter's DeadLetter.Delivery, which the sink
	// settles once the row is committed (settle.go).
	Delivery uint64 `bq:"-"`
}

// Column is one column of a warehouse table.
type Column struct {
	Name        string `json:"name"`
	Type        string `json:"type"`
	Mode        string `json:"mode"`
	Description string `json:"description"`
	field       int
}

// Table is a warehouse table and the Go row type that defines it.
type Table struct {
	Name    string
	Row     reflect.Type
	Columns []Column
}

// Tables lists every table the pipeline writes, in a fixed order.
var Tables = []Table{
	mustTable(TableMetrics, MetricsRow{}),
	mustTable(TableEvents, EventRow{}),
	mustTable(TableDeadLetters, DeadLetterRow{}),
}

// TableByName returns the named table.
func TableByName(name string) (Table, bool) {
	for _, t := range Tables {
		if t.Name == name {
			return t, true
		}
	}
	return Table{}, false
}

var goTypeFor = map[string][]reflect.Type{
	"STRING":    {reflect.TypeOf(""), reflect.TypeOf((*string)(nil))},
	"INT64":     {reflect.TypeOf(int64(0)), reflect.TypeOf((*int64)(nil))},
	"FLOAT64":   {reflect.TypeOf(0.0), reflect.TypeOf((*float64)(nil))},
	"BOOL":      {reflect.TypeOf(false), reflect.TypeOf((*bool)(nil))},
	"BYTES":     {reflect.TypeOf([]byte(nil)), reflect.TypeOf([]byte(nil))},
	"TIMESTAMP": {reflect.TypeOf(time.Time{}), reflect.TypeOf((*time.Time)(nil))},
}

// SchemaOf reads the columns of a row type from its tags and checks that each
// Go field's type agrees with its column's type and mode.
func SchemaOf(row any) ([]Column, error) {
	t := reflect.TypeOf(row)
	var cols []Column
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag, ok := f.Tag.Lookup("bq")
		if tag == "-" {
			continue
		}
		if !ok {
			return nil, fmt.Errorf("%s.%s has no bq tag", t.Name(), f.Name)
		}
		parts := strings.Split(tag, ",")
		if len(parts) != 3 {
			return nil, fmt.Errorf("%s.%s: bq tag %q is not name,TYPE,MODE", t.Name(), f.Name, tag)
		}
		c := Column{Name: parts[0], Type: parts[1], Mode: parts[2], Description: f.Tag.Get("desc"), field: i}
		want, ok := goTypeFor[c.Type]
		if !ok {
			return nil, fmt.Errorf("%s.%s: unknown type %s", t.Name(), f.Name, c.Type)
		}
		switch c.Mode {
		case "REQUIRED":
			ok = f.Type == want[0]
		case "NULLABLE":
			ok = f.Type == want[1]
		default:
			return nil, fmt.Errorf("%s.%s: unknown mode %s", t.Name(), f.Name, c.Mode)
		}
		if !ok {
			return nil, fmt.Errorf("%s.%s: Go type %s does not fit %s %s", t.Name(), f.Name, f.Type, c.Mode, c.Type)
		}
		if c.Description == "" {
			return nil, fmt.Errorf("%s.%s: no desc tag", t.Name(), f.Name)
		}
		cols = append(cols, c)
	}
	return cols, nil
}

func mustTable(name string, row any) Table {
	cols, err := SchemaOf(row)
	if err != nil {
		panic(err)
	}
	return Table{Name: name, Row: reflect.TypeOf(row), Columns: cols}
}

// Values returns the column values of a row (a value of the table's row type)
// in column order, with nil for a null.
func (t Table) Values(row any, dst []any) []any {
	v := reflect.ValueOf(row)
	dst = dst[:0]
	for _, c := range t.Columns {
		f := v.Field(c.field)
		if f.Kind() == reflect.Pointer {
			if f.IsNil() {
				dst = append(dst, nil)
				continue
			}
			f = f.Elem()
		}
		dst = append(dst, f.Interface())
	}
	return dst
}

func optString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// optFloat is v where the event has it (has), else nil (a null column or
// an omitted JSON field).
func optFloat(has bool, v float64) *float64 {
	if !has {
		return nil
	}
	return &v
}

func ms(t int64) time.Time { return time.UnixMilli(t).UTC() }

// NewMetricsRow builds the row of one pane of run runID.
func NewMetricsRow(start, end time.Time, key string, paneVersion int64, m Metrics, runID string) MetricsRow {
	campaign, platform, eventType := SplitMetricKey(key)
	return MetricsRow{
		WindowStart: start.UTC(), WindowEnd: end.UTC(),
		CampaignID: campaign, Platform: platform, EventType: eventType, PaneVersion: paneVersion,
		Events: m.Events, LateEvents: m.LateEvents, UniqueUsers: m.UniqueUsers(),
		ConversionValue: float64(m.ConversionValueMicros) / 1e6, Currency: optString(m.Currency),
		EngagementScoreSum: float64(m.EngagementMicros) / 1e6,
		MaxIngestTimestamp: ms(m.MaxIngestTime), EmittedAt: time.Now().UTC(), RunID: optString(runID),
	}
}

// NewEventRow builds the event-grain row of a valid event.
func NewEventRow(ev Event) EventRow {
	r := EventRow{
		EventID: ev.EventID, EventType: ev.EventType, EventTimestamp: ms(ev.EventTime), IngestTimestamp: ms(ev.IngestTime),
		WindowStart: ms(WindowStart(ev.EventTime, DefaultWindowConfig.Size.Milliseconds())),
		UserID:      ev.UserID, CampaignID: ev.CampaignID, Platform: ev.Platform, AdID: optString(ev.AdID),
		Currency: optString(ev.Currency), UTMSource: optString(ev.UTMSource), UTMMedium: optString(ev.UTMMedium),
		UTMCampaign: optString(ev.UTMCampaign), UTMTerm: optString(ev.UTMTerm), UTMContent: optString(ev.UTMContent),
		SchemaVersion: ev.SchemaVersion, IsLate: ev.Late, IsTooLate: ev.TooLate, Source: ev.Source,
		ProcessedAt: time.Now().UTC(),
	}
	r.EngagementScore = optFloat(ev.HasEngagementScore, ev.EngagementScore)
	r.ConversionValue = optFloat(ev.HasConversionValue, ev.ConversionValue)
	r.setEnrichment(ev.Enrichment)
	return r
}

func (r *EventRow) setEnrichment(x *Enrichment) {
	r.EnrichmentStatus = x.StatusOrDisabled()
	if !x.Enriched() {
		return
	}
	orUnknown := func(found bool, s string) *string {
		if !found || s == "" {
			s = Unknown
		}
		return &s
	}
	optTime := func(found bool, t int64) *time.Time {
		if !found || t == 0 {
			return nil
		}
		v := ms(t)
		return &v
	}
	optFloat := func(found bool, f float64) *float64 {
		if !found {
			return nil
		}
		return &f
	}
	userFound, campaignFound := x.UserFound, x.CampaignFound
	r.UserFound, r.CampaignFound = &userFound, &campaignFound
	r.UserSegment, r.UserCountry = orUnknown(userFound, x.UserSegment), orUnknown(userFound, x.UserCountry)
	r.UserLifetimeValue, r.UserFirstSeen = optFloat(userFound, x.UserLifetimeValue), optTime(userFound, x.UserFirstSeen)
	r.CampaignName, r.CampaignObjective = orUnknown(campaignFound, x.CampaignName), orUnknown(campaignFound, x.CampaignObjective)
	r.CampaignChannel, r.Advertiser = orUnknown(campaignFound, x.CampaignChannel), orUnknown(campaignFound, x.Advertiser)
	r.CampaignDailyBudget = optFloat(campaignFound, x.CampaignDailyBudget)
	r.CampaignStart, r.CampaignEnd = optTime(campaignFound, x.CampaignStart), optTime(campaignFound, x.CampaignEnd)
}

// NewDeadLetterRow builds the row of a dead letter.
func NewDeadLetterRow(d DeadLetter) DeadLetterRow {
	r := DeadLetterRow{
		Stage: d.Stage, ErrorCode: d.ErrorCode, ErrorMessage: d.ErrorMessage, EventID: optString(d.EventID),
		Payload: d.Payload, PayloadBytes: max(d.PayloadBytes, int64(len(d.Payload))), Source: d.Source,
		ProcessingTimestamp: ms(d.ProcessingTime), PipelineVersion: d.PipelineVersion, MessageID: optString(d.MessageID),
		Delivery: d.Delivery,
	}
	if r.Payload == nil {
		r.Payload = []byte{}
	}
	if d.PublishTime != 0 {
		t := ms(d.PublishTime)
		r.PublishTimestamp = &t
	}
	return r
}

// DeadLetters merges the dead letters of every stage into one collection of rows.
func DeadLetters(s beam.Scope, branches ...beam.PCollection) beam.PCollection {
	s = s.Scope("DeadLetters")
	return beam.ParDo(s, NewDeadLetterRow, beam.Flatten(s, branches...))
}
