package transforms

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// Row types with one fault each, for SchemaOf.
type (
	rowNoTag struct {
		A string `desc:"a"`
	}
	rowTwoPartTag struct {
		A string `bq:"a,STRING" desc:"a"`
	}
	rowFourPartTag struct {
		A string `bq:"a,STRING,REQUIRED,EXTRA" desc:"a"`
	}
	rowUnknownType struct {
		A string `bq:"a,VARCHAR,REQUIRED" desc:"a"`
	}
	rowUnknownMode struct {
		A string `bq:"a,STRING,REPEATED" desc:"a"`
	}
	rowRequiredPointer struct {
		A *string `bq:"a,STRING,REQUIRED" desc:"a"`
	}
	rowNullableValue struct {
		A string `bq:"a,STRING,NULLABLE" desc:"a"`
	}
	rowWrongGoType struct {
		A int `bq:"a,INT64,REQUIRED" desc:"a"`
	}
	rowIntAsString struct {
		A int64 `bq:"a,STRING,REQUIRED" desc:"a"`
	}
	rowTimeAsInt struct {
		A int64 `bq:"a,TIMESTAMP,REQUIRED" desc:"a"`
	}
	rowMissingDesc struct {
		A string `bq:"a,STRING,REQUIRED"`
	}
	rowEmptyDesc struct {
		A string `bq:"a,STRING,REQUIRED" desc:""`
	}
	rowSecondFieldBad struct {
		A string `bq:"a,STRING,REQUIRED" desc:"a"`
		B bool   `bq:"b,BOOL,NULLABLE" desc:"b"`
	}
	rowGood struct {
		S  string     `bq:"s,STRING,REQUIRED" desc:"s"`
		OS *string    `bq:"os,STRING,NULLABLE" desc:"os"`
		I  int64      `bq:"i,INT64,REQUIRED" desc:"i"`
		OI *int64     `bq:"oi,INT64,NULLABLE" desc:"oi"`
		F  float64    `bq:"f,FLOAT64,REQUIRED" desc:"f"`
		OF *float64   `bq:"of,FLOAT64,NULLABLE" desc:"of"`
		B  bool       `bq:"b,BOOL,REQUIRED" desc:"b"`
		OB *bool      `bq:"ob,BOOL,NULLABLE" desc:"ob"`
		Y  []byte     `bq:"y,BYTES,REQUIRED" desc:"y"`
		T  time.Time  `bq:"t,TIMESTAMP,REQUIRED" desc:"t"`
		OT *time.Time `bq:"ot,TIMESTAMP,NULLABLE" desc:"ot"`
	}
)

func TestSchemaOfRejectsBadRows(t *testing.T) {
	tests := []struct {
		name    string
		row     any
		errPart string // the error names the fault
	}{
		{"no bq tag", rowNoTag{}, "no bq tag"},
		{"two-part tag", rowTwoPartTag{}, "not name,TYPE,MODE"},
		{"four-part tag", rowFourPartTag{}, "not name,TYPE,MODE"},
		{"unknown type", rowUnknownType{}, "unknown type"},
		{"unknown mode", rowUnknownMode{}, "unknown mode"},
		{"pointer for REQUIRED", rowRequiredPointer{}, "does not fit"},
		{"value for NULLABLE", rowNullableValue{}, "does not fit"},
		{"int for INT64", rowWrongGoType{}, "does not fit"},
		{"int64 for STRING", rowIntAsString{}, "does not fit"},
		{"int64 for TIMESTAMP", rowTimeAsInt{}, "does not fit"},
		{"missing desc", rowMissingDesc{}, "no desc"},
		{"empty desc", rowEmptyDesc{}, "no desc"},
		{"second field bad", rowSecondFieldBad{}, ".B"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cols, err := SchemaOf(tt.row)
			if err == nil {
				t.Fatalf("SchemaOf accepted it: %+v", cols)
			}
			if !strings.Contains(err.Error(), tt.errPart) {
				t.Errorf("error %q does not mention %q", err, tt.errPart)
			}
			if cols != nil {
				t.Errorf("columns returned with an error: %+v", cols)
			}
		})
	}
}

// TestSchemaOfSkipsDashFields: a field tagged bq:"-" (DeadLetterRow.Delivery)
// is no column, and the columns after it still read their own fields.
func TestSchemaOfSkipsDashFields(t *testing.T) {
	type row struct {
		A string `bq:"a,STRING,REQUIRED" desc:"a"`
		X uint64 `bq:"-"`
		B int64  `bq:"b,INT64,REQUIRED" desc:"b"`
	}
	cols, err := SchemaOf(row{})
	if err != nil {
		t.Fatal(err)
	}
	if len(cols) != 2 || cols[0].Name != "a" || cols[1].Name != "b" {
		t.Fatalf("columns %+v, want a and b", cols)
	}
	got := Table{Row: reflect.TypeOf(row{}), Columns: cols}.Values(row{A: "x", X: 7, B: 9}, nil)
	if !reflect.DeepEqual(got, []any{"x", int64(9)}) {
		t.Errorf("values %v, want [x 9]", got)
	}
}

func TestSchemaOfGoodRow(t *testing.T) {
	cols, err := SchemaOf(rowGood{})
	if err != nil {
		t.Fatal(err)
	}
	typ := reflect.TypeOf(rowGood{})
	if len(cols) != typ.NumField() {
		t.Fatalf("%d columns for %d fields", len(cols), typ.NumField())
	}
	for i, c := range cols {
		f := typ.Field(i)
		name, rest, _ := strings.Cut(f.Tag.Get("bq"), ",")
		typeName, mode, _ := strings.Cut(rest, ",")
		if c.Name != name || c.Type != typeName || c.Mode != mode || c.Description != f.Tag.Get("desc") {
			t.Errorf("column %d = %+v, want %s %s %s %q", i, c, name, typeName, mode, f.Tag.Get("desc"))
		}
	}
}

func TestTables(t *testing.T) {
	wantNames := []string{TableMetrics, TableEvents, TableDeadLetters}
	if len(Tables) != len(wantNames) {
		t.Fatalf("%d tables, want %d", len(Tables), len(wantNames))
	}
	for i, tbl := range Tables {
		if tbl.Name != wantNames[i] {
			t.Errorf("table %d is %q, want %q", i, tbl.Name, wantNames[i])
		}
		if got, ok := TableByName(tbl.Name); !ok || got.Name != tbl.Name || got.Row != tbl.Row {
			t.Errorf("TableByName(%q) = %v, %v", tbl.Name, got.Name, ok)
		}
		fields := 0 // every field but those tagged bq:"-" is a column
		for i := range tbl.Row.NumField() {
			if tbl.Row.Field(i).Tag.Get("bq") != "-" {
				fields++
			}
		}
		if len(tbl.Columns) != fields {
			t.Errorf("%s: %d columns for %d fields", tbl.Name, len(tbl.Columns), fields)
		}
		seen := map[string]bool{}
		for _, c := range tbl.Columns {
			if c.Name == "" {
				t.Errorf("%s: a column has no name", tbl.Name)
			}
			if seen[c.Name] {
				t.Errorf("%s: column %q appears twice", tbl.Name, c.Name)
			}
			seen[c.Name] = true
		}
	}
	if _, ok := TableByName("no_such_table"); ok {
		t.Error("TableByName found a table that does not exist")
	}
}

// valuesByName runs Table.Values and keys the result by column name.
func valuesByName(t *testing.T, table string, row any) map[string]any {
	t.Helper()
	tbl, ok := TableByName(table)
	if !ok {
		t.Fatalf("no table %s", table)
	}
	vals := tbl.Values(row, nil)
	if len(vals) != len(tbl.Columns) {
		t.Fatalf("%d values for %d columns", len(vals), len(tbl.Columns))
	}
	out := map[string]any{}
	for i, c := range tbl.Columns {
		out[c.Name] = vals[i]
	}
	return out
}

func TestNewEventRow(t *testing.T) {
	base := time.Date(2026, 3, 1, 12, 0, 30, 250e6, time.UTC)
	full := Event{
		EventID: "e", EventType: TypeConversion, EventTime: base.UnixMilli(), IngestTime: base.UnixMilli() + 700,
		UserID: "u", CampaignID: "c", Platform: "meta", AdID: "ad", EngagementScore: 0, HasEngagementScore: true,
		ConversionValue: 12.5, HasConversionValue: true, Currency: "USD", UTMSource: "s", UTMMedium: "m",
		UTMCampaign: "uc", UTMTerm: "ut", UTMContent: "ux", SchemaVersion: "1.1", Late: true, Source: "gen",
	}
	minimal := Event{EventID: "e2", EventType: TypeView, EventTime: base.UnixMilli(), IngestTime: base.UnixMilli(),
		UserID: "u", CampaignID: "c", Platform: "x", SchemaVersion: "1", TooLate: true, Source: "file",
		EngagementScore: 7, ConversionValue: 8} // values without their flags are not sent

	t.Run("nullable fields empty become nil", func(t *testing.T) {
		r := NewEventRow(minimal)
		for name, p := range map[string]bool{
			"AdID": r.AdID == nil, "EngagementScore": r.EngagementScore == nil, "ConversionValue": r.ConversionValue == nil,
			"Currency": r.Currency == nil, "UTMSource": r.UTMSource == nil, "UTMMedium": r.UTMMedium == nil,
			"UTMCampaign": r.UTMCampaign == nil, "UTMTerm": r.UTMTerm == nil, "UTMContent": r.UTMContent == nil,
		} {
			if !p {
				t.Errorf("%s is not nil", name)
			}
		}
		if r.IsLate || !r.IsTooLate {
			t.Errorf("IsLate %v IsTooLate %v, want false true", r.IsLate, r.IsTooLate)
		}
		vals := valuesByName(t, TableEvents, r)
		for _, name := range []string{"ad_id", "engagement_score", "conversion_value", "currency", "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content"} {
			if vals[name] != nil {
				t.Errorf("Values[%s] = %v, want nil", name, vals[name])
			}
		}
	})

	t.Run("every field mapped", func(t *testing.T) {
		r := NewEventRow(full)
		vals := valuesByName(t, TableEvents, r)
		want := map[string]any{
			"event_id": "e", "event_type": TypeConversion,
			"event_timestamp":  base,
			"ingest_timestamp": base.Add(700 * time.Millisecond),
			"window_start":     time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC),
			"user_id":          "u", "campaign_id": "c", "platform": "meta", "ad_id": "ad",
			"engagement_score": 0.0, // present zero is not null
			"conversion_value": 12.5, "currency": "USD", "utm_source": "s", "utm_medium": "m",
			"utm_campaign": "uc", "utm_term": "ut", "utm_content": "ux", "schema_version": "1.1",
			"is_late": true, "is_too_late": false, "source": "gen",
		}
		for name, w := range want {
			got, ok := vals[name]
			if !ok {
				t.Errorf("no column %s", name)
				continue
			}
			if wt, isTime := w.(time.Time); isTime {
				gt, ok := got.(time.Time)
				if !ok || !gt.Equal(wt) || gt.Location() != time.UTC {
					t.Errorf("%s = %v, want %v in UTC", name, got, wt)
				}
				continue
			}
			if got != w {
				t.Errorf("%s = %#v, want %#v", name, got, w)
			}
		}
		if _, ok := vals["processed_at"].(time.Time); !ok {
			t.Errorf("processed_at = %T, want time.Time", vals["processed_at"])
		}
		// The row owns its values: changing the event afterwards does not reach it.
		full.ConversionValue = 99
		if *r.ConversionValue != 12.5 {
			t.Error("the row shares its conversion value with the event")
		}
	})
}

func TestNewDeadLetterRow(t *testing.T) {
	tests := []struct {
		name        string
		d           DeadLetter
		wantPayload []byte
		wantID      *string
		wantPublish bool
	}{
		{"nil payload", DeadLetter{Stage: StageParse, ErrorCode: CodeEmptyPayload, ProcessingTime: 5}, []byte{}, nil, false},
		{"empty payload", DeadLetter{Stage: StageParse, Payload: []byte{}}, []byte{}, nil, false},
		{"payload kept", DeadLetter{Stage: StageValidate, Payload: []byte("a\xffb"), EventID: "e-9", PublishTime: 1_772_366_400_000}, []byte("a\xffb"), ptr("e-9"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewDeadLetterRow(tt.d)
			if r.Payload == nil {
				t.Fatal("Payload is nil: the column is REQUIRED")
			}
			if !reflect.DeepEqual(r.Payload, tt.wantPayload) || r.PayloadBytes != int64(len(tt.wantPayload)) {
				t.Errorf("Payload %q (%d bytes), want %q", r.Payload, r.PayloadBytes, tt.wantPayload)
			}
			if !reflect.DeepEqual(r.EventID, tt.wantID) {
				t.Errorf("EventID = %v, want %v", r.EventID, tt.wantID)
			}
			if (r.PublishTimestamp != nil) != tt.wantPublish {
				t.Errorf("PublishTimestamp = %v, want set: %v", r.PublishTimestamp, tt.wantPublish)
			}
			if tt.wantPublish && !r.PublishTimestamp.Equal(time.UnixMilli(tt.d.PublishTime)) {
				t.Errorf("PublishTimestamp = %v, want %v", r.PublishTimestamp, time.UnixMilli(tt.d.PublishTime))
			}
			if r.Stage != tt.d.Stage || r.ErrorCode != tt.d.ErrorCode || !r.ProcessingTimestamp.Equal(time.UnixMilli(tt.d.ProcessingTime)) {
				t.Errorf("row %+v does not carry %+v", r, tt.d)
			}
			vals := valuesByName(t, TableDeadLetters, r)
			if b, ok := vals["payload"].([]byte); !ok || b == nil {
				t.Errorf("Values[payload] = %#v, want non-nil []byte", vals["payload"])
			}
			if (vals["publish_timestamp"] == nil) == tt.wantPublish {
				t.Errorf("Values[publish_timestamp] = %v", vals["publish_timestamp"])
			}
			if (vals["event_id"] == nil) != (tt.wantID == nil) {
				t.Errorf("Values[event_id] = %v", vals["event_id"])
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestTableValuesOrderAndNulls(t *testing.T) {
	tbl := Table{Name: "good", Row: reflect.TypeOf(rowGood{})}
	var err error
	if tbl.Columns, err = SchemaOf(rowGood{}); err != nil {
		t.Fatal(err)
	}
	ts := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name string
		row  rowGood
		want []any
	}{
		{"nulls", rowGood{S: "s", I: 1, F: 1.5, B: true, Y: []byte("y"), T: ts},
			[]any{"s", nil, int64(1), nil, 1.5, nil, true, nil, []byte("y"), ts, nil}},
		{"values", rowGood{S: "s", OS: ptr("os"), I: 1, OI: ptr(int64(2)), F: 1.5, OF: ptr(2.5), B: false, OB: ptr(false), Y: nil, T: ts, OT: ptr(ts.Add(time.Hour))},
			[]any{"s", "os", int64(1), int64(2), 1.5, 2.5, false, false, []byte(nil), ts, ts.Add(time.Hour)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := make([]any, 3, 20) // reused: old content must not leak
			dst[0] = "stale"
			got := tbl.Values(tt.row, dst)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Values =\n %#v\nwant\n %#v", got, tt.want)
			}
		})
	}
	// A zero-sized row type works too.
	if got := (Table{}).Values(struct{}{}, nil); len(got) != 0 {
		t.Errorf("Values of a table without columns = %v", got)
	}
}

func TestNewEventRowEnrichment(t *testing.T) {
	base := Event{EventID: "e", EventType: TypeView, EventTime: 1_000, IngestTime: 1_000, SchemaVersion: "1.0"}

	off := NewEventRow(base)
	if off.EnrichmentStatus != EnrichDisabled || off.UserSegment != nil || off.CampaignFound != nil {
		t.Errorf("no enrichment: got status %q, segment %v, campaign_found %v", off.EnrichmentStatus, off.UserSegment, off.CampaignFound)
	}

	down := base
	down.Enrichment = &Enrichment{Status: EnrichUnavailable}
	if r := NewEventRow(down); r.EnrichmentStatus != EnrichUnavailable || r.UserFound != nil || r.CampaignName != nil {
		t.Errorf("unavailable: got status %q, user_found %v, campaign_name %v", r.EnrichmentStatus, r.UserFound, r.CampaignName)
	}

	// The user is known, the campaign is not: the campaign's attributes read
	// "unknown" (strings) or null (numbers, times), with campaign_found false.
	mixed := base
	mixed.Enrichment = &Enrichment{Status: EnrichOK, UserFound: true, UserSegment: "loyal", UserCountry: "FR",
		UserLifetimeValue: 42, UserFirstSeen: 5_000, CampaignName: "stale", CampaignDailyBudget: 9}
	r := NewEventRow(mixed)
	if r.EnrichmentStatus != EnrichOK || r.UserFound == nil || !*r.UserFound || r.CampaignFound == nil || *r.CampaignFound {
		t.Fatalf("found flags: status %q user %v campaign %v", r.EnrichmentStatus, r.UserFound, r.CampaignFound)
	}
	if *r.UserSegment != "loyal" || *r.UserCountry != "FR" || *r.UserLifetimeValue != 42 || !r.UserFirstSeen.Equal(time.UnixMilli(5_000)) {
		t.Errorf("user attributes: %q %q %v %v", *r.UserSegment, *r.UserCountry, *r.UserLifetimeValue, r.UserFirstSeen)
	}
	if *r.CampaignName != Unknown || *r.CampaignObjective != Unknown || *r.CampaignChannel != Unknown || *r.Advertiser != Unknown {
		t.Errorf("unknown campaign strings: %q %q %q %q", *r.CampaignName, *r.CampaignObjective, *r.CampaignChannel, *r.Advertiser)
	}
	if r.CampaignDailyBudget != nil || r.CampaignStart != nil || r.CampaignEnd != nil {
		t.Errorf("unknown campaign numbers must be null: %v %v %v", r.CampaignDailyBudget, r.CampaignStart, r.CampaignEnd)
	}
}
