package pipelines

import (
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/metrics"

	"github.com/campaignpulse/campaignpulse/pipelines/generator"
	"github.com/campaignpulse/campaignpulse/transforms"
)

// A streaming run's summary: published 100 events, 90 valid, 6 duplicates, 4
// malformed (2 codes); read, with redeliveries, as the arguments say.
func streamingSummary(in, valid, dups int64, deadByCode map[string]int64) *Summary {
	var dead int64
	for _, n := range deadByCode {
		dead += n
	}
	return &Summary{
		In: in, Valid: valid, Duplicates: dups, DeadLetters: dead, LatestPaneEvents: valid,
		DeadLettersByCode: deadByCode, Counters: map[string]int64{transforms.CounterUnique: valid},
		Streaming: true,
		Expected: &generator.Counts{Events: 100, Valid: 90, Duplicates: 6, Malformed: 4,
			DeadLetterCodes: map[string]int64{"PARSE_MALFORMED_JSON": 3, "VALIDATE_BAD_PLATFORM": 1}},
	}
}

// In a streaming run a redelivered message is read twice: a valid one is
// counted again as a duplicate, a malformed one as a second dead letter of
// its code. Either reconciles; a lost event, valid or malformed, does not.
func TestStreamingReconcileAllowsRedeliveries(t *testing.T) {
	codes := func(json, platform int64) map[string]int64 {
		return map[string]int64{"parse/PARSE_MALFORMED_JSON": json, "validate/VALIDATE_BAD_PLATFORM": platform}
	}
	tests := []struct {
		name string
		sum  *Summary
		want string // a part of the one problem, or "" for none
	}{
		{"every message once", streamingSummary(100, 90, 6, codes(3, 1)), ""},
		{"a valid message twice", streamingSummary(101, 90, 7, codes(3, 1)), ""},
		{"a malformed message twice", streamingSummary(101, 90, 6, codes(4, 1)), ""},
		{"both", streamingSummary(103, 90, 8, codes(3, 2)), ""},
		{"a valid event lost", streamingSummary(99, 89, 6, codes(3, 1)), "valid=89"},
		{"a malformed message lost", streamingSummary(99, 90, 6, codes(2, 1)), "PARSE_MALFORMED_JSON=2"},
		{"a malformed lost, another read twice", streamingSummary(100, 90, 6, codes(2, 2)), "PARSE_MALFORMED_JSON=2"},
		{"a duplicate too many", streamingSummary(100, 89, 7, codes(3, 1)), "valid=89"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.sum.Problems()
			if tt.want == "" {
				if len(p) > 0 {
					t.Fatalf("want no problems, got %q", p)
				}
				return
			}
			if !strings.Contains(strings.Join(p, "; "), tt.want) {
				t.Fatalf("want a problem naming %q, got %q", tt.want, p)
			}
		})
	}
}

// TestSummaryPrintsCampaignIDsOnOneLine prints the top campaigns with ids a
// valid event may carry: a line break, a terminal escape, a long id. Each
// campaign stays on its own line, no control character reaches the
// terminal, and a plain id is printed as it is.
func TestSummaryPrintsCampaignIDsOnOneLine(t *testing.T) {
	ids := []string{"cmp_0001", "a\nb", "\x1b[2J\x1b[Hgone", "\u2028x", strings.Repeat("ü", 128)}
	s := streamingSummary(100, 90, 6, map[string]int64{"PARSE_MALFORMED_JSON": 4})
	for i, id := range ids {
		s.TopCampaigns = append(s.TopCampaigns, CampaignTotal{CampaignID: id, ConversionValue: float64(100 - i), Currency: "EUR", Conversions: 1, Events: 2})
	}
	var b strings.Builder
	s.Print(&b)
	out := b.String()
	table := out[strings.Index(out, "top campaigns"):]
	lines := strings.Split(strings.TrimSuffix(table, "\n"), "\n")
	if len(lines) != 2+len(ids) {
		t.Fatalf("the table has %d lines for %d campaigns:\n%s", len(lines), len(ids), table)
	}
	if strings.ContainsFunc(out, func(r rune) bool { return r != '\n' && !unicode.IsPrint(r) }) {
		t.Errorf("the summary holds a control character:\n%q", out)
	}
	if !strings.HasPrefix(lines[2], "  cmp_0001 ") {
		t.Errorf("a plain id was changed: %q", lines[2])
	}
	for _, l := range lines[2:] {
		if n := utf8.RuneCountInString(l); n > 100 {
			t.Errorf("a line of %d runes: %q", n, l)
		}
	}
}

// TestSummaryWarnsOfABigtableOutage: a run whose lookups Bigtable did not
// answer reconciles (each such event is a dead letter), so the summary
// says what happened and how to recover; a run without any says nothing.
func TestSummaryWarnsOfABigtableOutage(t *testing.T) {
	for _, c := range []struct {
		enriched, deadLettered int64
		want                   string
	}{
		{90, 0, ""},
		{80, 10, "Bigtable did not answer for 10 events, dead-lettered ENRICH_UNAVAILABLE: replay them"},
		{0, 90, "Bigtable did not answer for every event it was asked about (90 events)"},
	} {
		s := streamingSummary(100, 90, 6, nil)
		s.EnrichOn = true
		s.Enrichment.Enriched, s.Enrichment.Unavailable, s.Enrichment.DeadLettered = c.enriched, c.deadLettered, c.deadLettered
		var b strings.Builder
		s.Print(&b)
		got := b.String()
		if c.want == "" && strings.Contains(got, "warning:") || c.want != "" && !strings.Contains(got, c.want) {
			t.Errorf("enriched %d, dead-lettered %d: want %q in the summary:\n%s", c.enriched, c.deadLettered, c.want, got)
		}
	}
}

// TestAStreamingRunWithFailedPublishesDoesNotPass: when some publishes of
// make run-streaming failed, which events were published is not known, and
// the summary could only be checked for in = valid + duplicates +
// dead_letter, which a run that never read some published messages meets:
// it printed ok. It must not pass.
func TestAStreamingRunWithFailedPublishesDoesNotPass(t *testing.T) {
	done := make(chan runResult, 1)
	done <- runResult{sum: &Summary{In: 90, Valid: 90, LatestPaneEvents: 90, Counters: map[string]int64{transforms.CounterUnique: 90}}}
	report := &StreamingReport{Publish: PublishCounts{Sent: 110, Published: 100, Failed: 10}}
	rep, err := drain(io.Discard, done, report, generator.Counts{})
	if err != nil {
		t.Fatal(err)
	}
	if p := rep.Summary.Problems(); len(p) == 0 || !strings.Contains(rep.Summary.ReconcileLine(), "FAILED") {
		t.Errorf("a run with 10 failed publishes and 90 of 100 read: problems %v, line %q; want it not to pass", p, rep.Summary.ReconcileLine())
	}
}

// TestSummaryCountsARowOfTheRunsFirstMillisecond: a dead letter's processing
// time is stamped in milliseconds, so one made in the run's first
// millisecond is stored before the run's start to the microsecond; it is the
// run's all the same.
func TestSummaryCountsARowOfTheRunsFirstMillisecond(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.duckdb")
	start := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC).Add(700 * time.Microsecond)
	execWarehouse(t, path, `insert into dead_letter_events (stage, error_code, error_message, payload, payload_bytes,
		source, processing_timestamp, pipeline_version) values ('parse', 'PARSE_EMPTY_PAYLOAD', 'payload is empty', ''::blob, 0,
		'test', timestamp '2026-12-07 12:00:00.000', 'test')`)
	sum, err := Summarize(context.Background(), path, metrics.QueryResults{}, start)
	if err != nil {
		t.Fatal(err)
	}
	if sum.DeadLetters != 1 {
		t.Errorf("a run started at %s counts %d dead letters, want the one made in its first millisecond", start.Format(time.RFC3339Nano), sum.DeadLetters)
	}
}
