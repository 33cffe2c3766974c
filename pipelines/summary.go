package pipelines

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/metrics"
	"github.com/campaignpulse/campaignpulse/enrichment"
	"github.com/campaignpulse/campaignpulse/pipelines/generator"
	"github.com/campaignpulse/campaignpulse/transforms"
)

// Summary is what a run did, read back from the pipeline's counters and from
// the warehouse it wrote.
type Summary struct {
	In, Valid, Duplicates, DeadLetters int64 // in from the source counter, the rest from the warehouse and Dedup
	Late, TooLate                      int64 // from the event-grain table
	LatestPaneEvents                   int64 // sum of events over the latest pane of each window key
	WindowKeys, Panes                  int64
	DeadLettersByCode                  map[string]int64 // "stage/code" → count
	Counters                           map[string]int64
	TopCampaigns                       []CampaignTotal
	Elapsed                            time.Duration
	Expected                           *generator.Counts // when the source was the generator
	// Streaming says the events came through Pub/Sub: their lateness follows
	// the real publish times, not the generator's plan, and a message may be
	// delivered twice (Dedup catches it, counted as a duplicate).
	Streaming bool
	// PublishFailed is how many of the messages make run-streaming sent
	// failed to publish: which ones is not known, so the run cannot be
	// checked against the events it published, and does not pass.
	PublishFailed int64
	EnrichOn      bool // the run enriched (--enrich)
	Enrichment    EnrichmentCounts
}

// EnrichmentCounts are what Enrich did: events from its counters (and, to
// check them, from the event table's enrichment_status), keys from the
// cache's.
type EnrichmentCounts struct {
	Enriched, UserUnknown, CampaignUnknown, Unavailable, DeadLettered int64
	Hits, Misses, NotFound, ReadErrors                                int64
	RowsEnriched, RowsUnavailable                                     int64 // event-table rows by enrichment_status
}

// HitRatio is the share of distinct keys per batch the cache answered.
func (e EnrichmentCounts) HitRatio() float64 {
	if e.Hits+e.Misses == 0 {
		return 0
	}
	return float64(e.Hits) / float64(e.Hits+e.Misses)
}

// CampaignTotal is one line of the top-campaigns table.
type CampaignTotal struct {
	CampaignID      string
	Currency        string
	ConversionValue float64
	Conversions     int64
	Events          int64
}

// latestPanesSQL keeps the newest pane of each window key: the highest
// pane_version (two panes with the same version hold the same data), of the
// panes emitted at or after its one parameter (the run's start).
const latestPanesSQL = `select * from ` + transforms.TableMetrics + ` where emitted_at >= ? qualify row_number() over (
  partition by window_start, campaign_id, platform, event_type order by pane_version desc, emitted_at desc) = 1`

// Summarize reads the run's counters and its warehouse: the rows the run
// wrote, that is written at or after since, its start. A run with --reset
// has no others; a run that appends (--reset=false, such as a replay of dead
// letters) reconciles its own rows against its own counters, not the whole
// warehouse's.
func Summarize(ctx context.Context, warehousePath string, res metrics.QueryResults, since time.Time) (*Summary, error) {
	s := &Summary{Counters: map[string]int64{}, DeadLettersByCode: map[string]int64{}}
	for _, c := range res.Counters() {
		if c.Key.Namespace == transforms.Namespace {
			// Committed, not Result(): Result falls back to the attempted
			// value when the committed one is 0, and Prism's attempted value
			// is the last progress report's, which may come from a bundle
			// that then failed and was retried.
			s.Counters[c.Key.Name] += c.Committed
		}
	}
	s.In = s.Counters[transforms.CounterIn]
	s.Duplicates = s.Counters[transforms.CounterDuplicates]
	c := s.Counters
	s.Enrichment = EnrichmentCounts{
		Enriched: c[enrichment.CounterEnriched], UserUnknown: c[enrichment.CounterUserUnknown],
		CampaignUnknown: c[enrichment.CounterCampaignUnknown], Unavailable: c[enrichment.CounterUnavailable],
		DeadLettered: c[enrichment.CounterDeadLetter], Hits: c[enrichment.CounterHits], Misses: c[enrichment.CounterMisses],
		NotFound: c[enrichment.CounterNotFound], ReadErrors: c[enrichment.CounterErrors],
	}
	w, err := OpenWarehouse(warehousePath)
	if err != nil {
		return nil, err
	}
	defer w.Release()
	db := w.DB()
	// The rows' times are milliseconds (a dead letter's processing time is
	// stamped in them): round the start down, or a row written in the run's
	// first millisecond would be left out.
	since = since.UTC().Truncate(time.Millisecond)
	q := func(query string, dst ...any) error {
		if err := db.QueryRowContext(ctx, query, since).Scan(dst...); err != nil {
			return fmt.Errorf("%s: %w", strings.SplitN(query, "\n", 2)[0], err)
		}
		return nil
	}
	if err := q(`select count(*), count(*) filter (where is_late), count(*) filter (where is_too_late) from `+transforms.TableEvents+` where processed_at >= ?`,
		&s.Valid, &s.Late, &s.TooLate); err != nil {
		return nil, err
	}
	if err := q(`select count(*) filter (where enrichment_status = '`+transforms.EnrichOK+`'),
  count(*) filter (where enrichment_status = '`+transforms.EnrichUnavailable+`') from `+transforms.TableEvents+` where processed_at >= ?`,
		&s.Enrichment.RowsEnriched, &s.Enrichment.RowsUnavailable); err != nil {
		return nil, err
	}
	if err := q(`select count(*) from `+transforms.TableDeadLetters+` where processing_timestamp >= ?`, &s.DeadLetters); err != nil {
		return nil, err
	}
	if err := q(`select count(*), coalesce(sum(events), 0) from (`+latestPanesSQL+`)`, &s.WindowKeys, &s.LatestPaneEvents); err != nil {
		return nil, err
	}
	if err := q(`select count(*) from `+transforms.TableMetrics+` where emitted_at >= ?`, &s.Panes); err != nil {
		return nil, err
	}
	rows, err := db.QueryContext(ctx, `select stage || '/' || error_code, count(*) from `+transforms.TableDeadLetters+`
where processing_timestamp >= ? group by 1`, since)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var k string
		var n int64
		if err = rows.Scan(&k, &n); err != nil {
			break
		}
		s.DeadLettersByCode[k] = n
	}
	// A read that broke off would leave a partial breakdown, which the
	// per-code check would then judge.
	if err == nil {
		err = rows.Err()
	}
	rows.Close()
	if err != nil {
		return nil, err
	}
	// Value and currency are the conversions' only (any event may carry
	// them), as in dbt's marts; MIXED when a campaign's come in several.
	rows, err = db.QueryContext(ctx, `select campaign_id,
  case when count(distinct currency) filter (where event_type = 'conversion') > 1 then 'MIXED'
    else coalesce(max(currency) filter (where event_type = 'conversion'), '') end,
  coalesce(sum(conversion_value) filter (where event_type = 'conversion'), 0),
  sum(events) filter (where event_type = 'conversion'), sum(events)
from (`+latestPanesSQL+`) group by campaign_id order by 3 desc, 1 limit 5`, since)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var c CampaignTotal
		var conv *int64
		if err := rows.Scan(&c.CampaignID, &c.Currency, &c.ConversionValue, &conv, &c.Events); err != nil {
			return nil, err
		}
		if conv != nil {
			c.Conversions = *conv
		}
		s.TopCampaigns = append(s.TopCampaigns, c)
	}
	return s, rows.Err()
}

// Problems lists every way the counts fail to reconcile; none means ok.
func (s *Summary) Problems() []string {
	var p []string
	if s.PublishFailed > 0 {
		p = append(p, fmt.Sprintf("%d messages failed to publish, which ones is not known: the run cannot be checked against what was published", s.PublishFailed))
	}
	if s.In != s.Valid+s.Duplicates+s.DeadLetters {
		p = append(p, fmt.Sprintf("in=%d but valid+duplicates+dead_letter=%d", s.In, s.Valid+s.Duplicates+s.DeadLetters))
	}
	if s.LatestPaneEvents+s.TooLate != s.Valid {
		p = append(p, fmt.Sprintf("latest panes hold %d events and %d were too late, but %d are valid", s.LatestPaneEvents, s.TooLate, s.Valid))
	}
	// Events Enrich dead-lettered (Bigtable unavailable, --enrich_on_unavailable=deadletter)
	// passed Dedup but are dead letters now, not rows.
	enrichDead := s.Enrichment.DeadLettered
	if u := s.Counters[transforms.CounterUnique]; u != s.Valid+enrichDead {
		p = append(p, fmt.Sprintf("Dedup passed %d events but the event table has %d rows and Enrich dead-lettered %d", u, s.Valid, enrichDead))
	}
	if x := s.Enrichment; s.EnrichOn {
		if u := s.Counters[transforms.CounterUnique]; x.Enriched+x.Unavailable != u {
			p = append(p, fmt.Sprintf("Enrich saw %d events (enriched %d + unavailable %d) but Dedup passed %d", x.Enriched+x.Unavailable, x.Enriched, x.Unavailable, u))
		}
		if x.RowsEnriched != x.Enriched || x.RowsUnavailable != x.Unavailable-x.DeadLettered {
			p = append(p, fmt.Sprintf("the event table has %d enriched and %d unavailable rows, Enrich counted %d and %d (dead-lettered %d)",
				x.RowsEnriched, x.RowsUnavailable, x.Enriched, x.Unavailable, x.DeadLettered))
		}
	}
	if e := s.Expected; e != nil {
		got := map[string]int64{"in": s.In, "valid": s.Valid, "duplicates": s.Duplicates, "dead_letter": s.DeadLetters, "late": s.Late, "too_late": s.TooLate}
		want := map[string]int64{"in": e.Events, "valid": e.Valid - enrichDead, "duplicates": e.Duplicates, "dead_letter": e.Malformed + enrichDead, "late": e.Late, "too_late": e.TooLate}
		for _, k := range []string{"in", "valid", "duplicates", "dead_letter", "late", "too_late"} {
			if s.Streaming && (k == "late" || k == "too_late" || k == "in" || k == "duplicates" || k == "dead_letter") {
				continue // checked below
			}
			if (k == "late" || k == "too_late") && enrichDead > 0 {
				// Which of them were dead-lettered is not counted; at most all.
				if got[k] > want[k] || got[k] < want[k]-enrichDead {
					p = append(p, fmt.Sprintf("%s=%d but the generator made %d and Enrich dead-lettered %d", k, got[k], want[k], enrichDead))
				}
				continue
			}
			if got[k] != want[k] {
				p = append(p, fmt.Sprintf("%s=%d but the generator made %d", k, got[k], want[k]))
			}
		}
		// A message Pub/Sub delivers again (its bundle failed, or was slow to
		// commit) is read again: a valid one adds one to in and one to the
		// duplicates Dedup removes; a malformed one, which has no usable
		// event id, adds one to in and a second dead letter of its code.
		redelivered := s.In - e.Events
		extraDead := s.DeadLetters - want["dead_letter"]
		if s.Streaming && (redelivered < 0 || extraDead < 0 || s.Duplicates-e.Duplicates+extraDead != redelivered) {
			p = append(p, fmt.Sprintf("in=%d, duplicates=%d and dead_letter=%d, but %d events were published with %d duplicates and %d malformed: a redelivery adds one to in and one to the duplicates or the dead letters",
				s.In, s.Duplicates, s.DeadLetters, e.Events, e.Duplicates, want["dead_letter"]))
		}
		byCode := map[string]int64{}
		for k, n := range s.DeadLettersByCode {
			_, code, _ := strings.Cut(k, "/")
			byCode[code] += n
		}
		for code, n := range e.DeadLetterCodes {
			if byCode[code] != n && !(s.Streaming && byCode[code] > n) {
				p = append(p, fmt.Sprintf("dead letters %s=%d but the generator made %d", code, byCode[code], n))
			}
		}
	}
	return p
}

// ReconcileLine is the line that says whether every event is accounted for:
// in = valid + duplicates + dead_letter, and the rest of Problems.
func (s *Summary) ReconcileLine() string {
	status := "ok"
	if p := s.Problems(); len(p) > 0 {
		status = "FAILED: " + strings.Join(p, "; ")
	}
	return fmt.Sprintf("reconcile: in=%d valid=%d duplicates=%d dead_letter=%d %s", s.In, s.Valid, s.Duplicates, s.DeadLetters, status)
}

// Print writes the run report, ending with the reconcile line and the top campaigns.
func (s *Summary) Print(w io.Writer) {
	rate := float64(s.In) / s.Elapsed.Seconds()
	fmt.Fprintf(w, "\n== Campaign Pulse run ==\n")
	fmt.Fprintf(w, "elapsed:        %s (%.0f events/s)\n", s.Elapsed.Round(time.Millisecond), rate)
	fmt.Fprintf(w, "events in:      %d\n", s.In)
	fmt.Fprintf(w, "valid:          %d (aggregated %d, too late for the aggregates %d; late but counted %d)\n", s.Valid, s.LatestPaneEvents, s.TooLate, s.Late)
	fmt.Fprintf(w, "duplicates:     %d\n", s.Duplicates)
	fmt.Fprintf(w, "dead-lettered:  %d\n", s.DeadLetters)
	keys := make([]string, 0, len(s.DeadLettersByCode))
	for k := range s.DeadLettersByCode {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "  %-45s %d\n", k, s.DeadLettersByCode[k])
	}
	fmt.Fprintf(w, "panes:          %d rows over %d window keys\n", s.Panes, s.WindowKeys)
	if x := s.Enrichment; s.EnrichOn {
		fmt.Fprintf(w, "enrichment:     enriched %d (unknown user %d, unknown campaign %d); Bigtable unavailable for %d (dead-lettered %d)\n",
			x.Enriched, x.UserUnknown, x.CampaignUnknown, x.Unavailable, x.DeadLettered)
		fmt.Fprintf(w, "  lookups:      cache hit ratio %.1f%% (hits %d, misses %d), not found %d, failed reads %d\n",
			100*x.HitRatio(), x.Hits, x.Misses, x.NotFound, x.ReadErrors)
		// The counts reconcile (each is a dead letter), so the line alone
		// would read as a healthy run: say what happened and what to do.
		if x.DeadLettered > 0 {
			what := fmt.Sprintf("%d events", x.DeadLettered)
			if x.Enriched == 0 {
				what = "every event it was asked about (" + what + ")"
			}
			fmt.Fprintf(w, "  warning:      Bigtable did not answer for %s, dead-lettered ENRICH_UNAVAILABLE: replay them once it answers (README, Replaying dead letters)\n", what)
		}
	} else {
		fmt.Fprintf(w, "enrichment:     off\n")
	}
	if e := s.Expected; e != nil {
		fmt.Fprintf(w, "generator made: valid=%d duplicates=%d malformed=%d late=%d too_late=%d\n", e.Valid, e.Duplicates, e.Malformed, e.Late, e.TooLate)
	}
	fmt.Fprintln(w, s.ReconcileLine())
	fmt.Fprintf(w, "\ntop campaigns by conversion value (latest panes):\n")
	fmt.Fprintf(w, "  %-10s %14s %-8s %11s %9s\n", "campaign", "conv. value", "currency", "conversions", "events")
	for _, c := range s.TopCampaigns {
		fmt.Fprintf(w, "  %-10s %14.2f %-8s %11d %9d\n", displayID(c.CampaignID), c.ConversionValue, c.Currency, c.Conversions, c.Events)
	}
}

// displayID makes an id from the events safe to print on one terminal line:
// validation bounds an id's length, not its characters, so one may hold a
// line break or an escape sequence that would rewrite the screen. Such an id
// is printed Go-quoted, and a long one is cut to displayIDRunes runes.
func displayID(id string) string {
	if strings.ContainsFunc(id, func(r rune) bool { return !unicode.IsPrint(r) }) {
		id = strconv.Quote(id)
	}
	if utf8.RuneCountInString(id) > displayIDRunes {
		id = string([]rune(id)[:displayIDRunes-1]) + "…"
	}
	return id
}

const displayIDRunes = 40
