package pipelines

import (
	"context"
	"database/sql"
	"path/filepath"
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
		want := []string{ev.EventID, ev.EventType, ev.UserID, ev.CampaignID, ev.Platform, ev.AdID, ev.Currency,
			ev.UTMSource, ev.UTMMedium, ev.UTMCampaign, ev.UTMTerm, ev.UTMContent, ev.SchemaVersion}
		var got [13]sql.NullString
		var eventMillis int64
		err := db.QueryRow(`SELECT event_id, event_type, user_id, campaign_id, platform, ad_id, currency,
			utm_source, utm_medium, utm_campaign, utm_term, utm_content, schema_version, epoch_ms(event_timestamp)
			FROM fact_marketing_events`).Scan(&got[0], &got[1], &got[2], &got[3], &got[4], &got[5], &got[6],
			&got[7], &got[8], &got[9], &got[10], &got[11], &got[12], &eventMillis)
		if err != nil {
			t.Fatalf("read back: %v", err)
		}
		for i, w := range want {
			optional := i >= 5 && i <= 11
			if got[i].Valid != (w != "" || !optional) || got[i].String != w {
				t.Errorf("column %d: stored %q (valid %v), sent %q", i, got[i].String, got[i].Valid, w)
			}
		}
		if eventMillis != ev.EventTime {
			t.Errorf("event_timestamp %d ms, sent %d", eventMillis, ev.EventTime)
		}
	})
}
