package pipelines

import (
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/campaignpulse/campaignpulse/transforms"
)

// FuzzEventSink holds the DuckDB sink to the contract's promise that every
// valid event is stored: whatever payload passes Parse and Validate must
// commit to fact_marketing_events, and its strings must read back as sent
// (an optional one empty reads back null). A value DuckDB's CSV reader
// refused would fail the bundle on every retry and so the whole run, and one
// it misread would change the data without a trace.
func FuzzEventSink(f *testing.F) {
	for _, s := range []string{
		`{"schema_version":"1.0","event_id":"e","event_type":"view","timestamp":"2026-12-03T10:00:00Z","user_id":"u","campaign_id":"c","platform":"meta"}`,
		`{"schema_version":"1.0","event_id":"\\N","event_type":"click","timestamp":"2026-12-03T10:00:00.123+05:30","user_id":"NULL","campaign_id":"a\u001fb","platform":"x","utm_term":"\\N","ad_id":"\"q\",\r\n"}`,
		`{"schema_version":"1.2","event_id":"\u0000","event_type":"conversion","timestamp":"2000-01-01T00:00:00Z","user_id":" ","campaign_id":"\\","platform":"tiktok","conversion_value":1e-9,"currency":"EUR","engagement_score":100}`,
		`{"schema_version":"1","event_id":"\ufeffé😀","event_type":"engagement","timestamp":"2026-12-03T09:59:59.999999999Z","user_id":"\u2028","campaign_id":"c","platform":"youtube","engagement_score":0,"utm_content":"\t"}`,
	} {
		f.Add([]byte(s))
	}
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC).UnixMilli()
	cfg := transforms.ValidateConfig{MaxFutureSkew: transforms.DefaultMaxFutureSkew}
	sink := &stagedTable{Path: filepath.Join(f.TempDir(), "w.duckdb"), Table: transforms.TableEvents}
	if err := sink.Setup(context.Background()); err != nil {
		f.Fatal(err)
	}
	defer sink.Teardown()
	nullable := map[string]bool{}
	for _, c := range sink.table.Columns {
		nullable[c.Name] = c.Mode == "NULLABLE"
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, rej := transforms.Parse(transforms.Message{Data: data, PublishTime: now, Source: "fuzz"}, 4096)
		if rej == nil {
			rej = transforms.Validate(&ev, now, cfg)
		}
		if rej != nil {
			return
		}
		if sink.wh == nil { // a failed commit released it
			if err := sink.Setup(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		db := sink.wh.DB()
		if _, err := db.Exec(`DELETE FROM fact_marketing_events`); err != nil {
			t.Fatal(err)
		}
		if err := sink.addEvent(&ev, time.UnixMilli(now)); err != nil {
			t.Fatal(err)
		}
		if err := sink.FinishBundle(context.Background(), func(int64) {}); err != nil {
			t.Fatalf("a valid event did not commit: %.400v\npayload %q", err, data)
		}
		sent := []struct{ column, value string }{
			{"event_id", ev.EventID}, {"event_type", ev.EventType}, {"user_id", ev.UserID}, {"campaign_id", ev.CampaignID},
			{"platform", ev.Platform}, {"ad_id", ev.AdID}, {"currency", ev.Currency}, {"utm_source", ev.UTMSource},
			{"utm_medium", ev.UTMMedium}, {"utm_campaign", ev.UTMCampaign}, {"utm_term", ev.UTMTerm},
			{"utm_content", ev.UTMContent}, {"schema_version", ev.SchemaVersion},
		}
		columns := make([]string, len(sent))
		for i, c := range sent {
			columns[i] = c.column
		}
		rows := readStrings(t, db, `SELECT `+strings.Join(columns, ", ")+`, epoch_ms(event_timestamp) FROM fact_marketing_events`)
		if len(rows) != 1 {
			t.Fatalf("read back %d rows, want 1", len(rows))
		}
		for i, c := range sent {
			// A nullable column stores an empty value as null.
			got, null := rows[0][i], nullable[c.column] && c.value == ""
			if got.Valid == null || got.String != c.value {
				t.Errorf("%s: stored %q (valid %v), sent %q", c.column, got.String, got.Valid, c.value)
			}
		}
		if got := rows[0][len(sent)].String; got != strconv.FormatInt(ev.EventTime, 10) {
			t.Errorf("event_timestamp %s ms, sent %d", got, ev.EventTime)
		}
	})
}
