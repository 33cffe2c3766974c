package pipelines

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/campaignpulse/campaignpulse/pipelines/generator"
	"github.com/campaignpulse/campaignpulse/transforms"
)

// dbtCommand runs the repository's dbt (the virtualenv make venv creates) on
// the project in dbt/ against the DuckDB file at warehouse, and returns its
// output. Target and log folders go to a temporary directory so a test never
// touches a developer's dbt/target.
func dbtCommand(t *testing.T, warehouse string, args ...string) (string, error) {
	t.Helper()
	return dbtCommandIn(t, t.TempDir(), warehouse, args...)
}

// dbtCommandIn is dbtCommand with dbt's target and log folders in scratch.
func dbtCommandIn(t *testing.T, scratch, warehouse string, args ...string) (string, error) {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	dbt := filepath.Join(root, ".venv", "bin", "dbt")
	if _, err := os.Stat(dbt); err != nil {
		t.Fatalf("%s is missing: make venv (which make test runs first) installs the pinned dbt-core and dbt-duckdb: %v", dbt, err)
	}
	closeWarehouse(t, warehouse)
	args = append(args, "--profiles-dir", ".", "--target", "local",
		"--target-path", filepath.Join(scratch, "target"), "--log-path", filepath.Join(scratch, "logs"))
	cmd := exec.Command(dbt, args...)
	cmd.Dir = filepath.Join(root, "dbt")
	cmd.Env = append(os.Environ(), "CAMPAIGN_PULSE_WAREHOUSE="+warehouse, "DBT_SEND_ANONYMOUS_USAGE_STATS=false")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// dbtBuild runs dbt build with args on the warehouse, fails the test
// unless every model and test passed, and returns dbt's summary line.
func dbtBuild(t *testing.T, warehouse string, args ...string) string {
	t.Helper()
	out, err := dbtCommand(t, warehouse, append([]string{"build"}, args...)...)
	if err != nil || !strings.Contains(dbtDone(out), "ERROR=0") {
		t.Fatalf("dbt build %s failed (%v):\n%s", strings.Join(args, " "), err, out)
	}
	return dbtDone(out)
}

// runFile runs the local job over the JSON-lines file at path into a new
// warehouse and returns its options and summary.
func runFile(t *testing.T, path string) (*Options, *Summary) {
	t.Helper()
	o := testOptions(t, 1)
	o.Source, o.Input = SourceFile, path
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	sum, err := RunLocal(context.Background(), o, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	return o, sum
}

// closeWarehouse closes this process's handle on the DuckDB file, which the
// sink's DoFns may still hold after a run (Prism tears them down on its own
// schedule), so that dbt, another process, can take DuckDB's file lock. A
// late Teardown releases a handle that is already closed, which is harmless.
func closeWarehouse(t *testing.T, path string) {
	t.Helper()
	warehouses.Lock()
	defer warehouses.Unlock()
	if w := warehouses.m[path]; w != nil {
		delete(warehouses.m, path)
		if err := w.db.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// martTotals are the sums the test reads back from the marts.
type martTotals struct {
	hourlyEvents, hourlyTooLate, hourlyLate, hourlyAggregated int64
	dailyEvents, funnelEvents, deadLetters                    int64
	qualityHourValid, qualityHourDead, qualityHoursClean      int64 // mart_data_quality_hourly
	deadLettersByCode                                         map[string]int64
}

func readMartTotals(t *testing.T, path string) martTotals {
	t.Helper()
	w, err := OpenWarehouse(path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Release() // closed before dbt opens the file again
	db := w.DB()
	var m martTotals
	q := func(query string, dst ...any) {
		t.Helper()
		if err := db.QueryRow(query).Scan(dst...); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
	}
	// coalesce: an empty mart reads as zeros, so a check says what is missing.
	q(`select coalesce(sum(events), 0), coalesce(sum(too_late_events), 0), coalesce(sum(late_events), 0),
		coalesce(sum(aggregated_events), 0) from fct_campaign_performance_hourly`,
		&m.hourlyEvents, &m.hourlyTooLate, &m.hourlyLate, &m.hourlyAggregated)
	q(`select coalesce(sum(events), 0) from fct_campaign_performance_daily`, &m.dailyEvents)
	q(`select coalesce(sum(views + clicks + engagements + conversions), 0) from fct_funnel`, &m.funnelEvents)
	q(`select coalesce(sum(dead_letters), 0) from mart_data_quality`, &m.deadLetters)
	q(`select coalesce(sum(valid_events), 0), coalesce(sum(dead_letters), 0), count(*) filter (where dead_letters = 0)
		from mart_data_quality_hourly`, &m.qualityHourValid, &m.qualityHourDead, &m.qualityHoursClean)
	rows, err := db.Query(`select error_code, sum(dead_letters) from mart_data_quality group by 1`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	m.deadLettersByCode = map[string]int64{}
	for rows.Next() {
		var code string
		var n int64
		if err := rows.Scan(&code, &n); err != nil {
			t.Fatal(err)
		}
		m.deadLettersByCode[code] = n
	}
	return m
}

// runInto runs the job over events more events of another seed (o's plus
// seedOffset: other event ids) arriving from start, appending to o's
// warehouse. It returns the run's options.
func runInto(t *testing.T, o *Options, events int64, seedOffset uint64, start time.Time) *Options {
	t.Helper()
	run := testOptions(t, events)
	run.Warehouse = o.Warehouse
	run.Generator.Seed = o.Generator.Seed + seedOffset
	run.Generator.Start = start
	if _, err := RunLocal(context.Background(), run, false, nil); err != nil {
		t.Fatal(err)
	}
	return run
}

// appendRun is runInto, then an incremental dbt build with no lookback
// margin, so that only the hours with new events are rebuilt. It returns the
// run's expected counts.
func appendRun(t *testing.T, o *Options, events int64, seedOffset uint64, start time.Time) generator.Counts {
	t.Helper()
	run := runInto(t, o, events, seedOffset, start)
	out, err := dbtCommand(t, o.Warehouse, "build", "--vars", "{incremental_lookback_hours: 0}")
	if err != nil || !strings.Contains(dbtDone(out), "ERROR=0") {
		t.Fatalf("incremental dbt build after a run of seed %d failed (%v):\n%s", run.Generator.Seed, err, out)
	}
	return run.Generator.Expected()
}

// sharedWindowKeys counts the window keys with panes of more than one run.
func sharedWindowKeys(t *testing.T, path string) int64 {
	t.Helper()
	w, err := OpenWarehouse(path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Release()
	var n int64
	if err := w.DB().QueryRow(`select count(*) from (
		select 1 from stg_campaign_pulse__campaign_metrics
		group by window_start, campaign_id, platform, event_type
		having count(*) > 1)`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// checkMarts compares the marts with what the generator made: the hourly
// mart's events are exactly the valid events, its too-late and late events
// the generator's, its aggregated (latest-pane) events the valid ones that
// were not too late; the daily mart and the funnel count the same events;
// the data-quality mart holds every malformed event under its code.
func checkMarts(t *testing.T, m martTotals, e generator.Counts) {
	t.Helper()
	check := func(what string, got, want int64) {
		t.Helper()
		if got != want {
			t.Errorf("%s = %d, the generator made %d", what, got, want)
		}
	}
	check("hourly events", m.hourlyEvents, e.Valid)
	check("hourly too_late_events", m.hourlyTooLate, e.TooLate)
	check("hourly late_events", m.hourlyLate, e.Late)
	check("hourly aggregated_events (latest panes)", m.hourlyAggregated, e.Valid-e.TooLate)
	check("daily events", m.dailyEvents, e.Valid)
	check("funnel events", m.funnelEvents, e.Valid)
	check("data-quality dead letters", m.deadLetters, e.Malformed)
	check("hourly data-quality valid events", m.qualityHourValid, e.Valid)
	check("hourly data-quality dead letters", m.qualityHourDead, e.Malformed)
	for code, n := range e.DeadLetterCodes {
		check("data-quality "+code, m.deadLettersByCode[code], n)
	}
}

func addCounts(a, b generator.Counts) generator.Counts {
	out := generator.Counts{Events: a.Events + b.Events, Valid: a.Valid + b.Valid, Duplicates: a.Duplicates + b.Duplicates,
		Malformed: a.Malformed + b.Malformed, Late: a.Late + b.Late, TooLate: a.TooLate + b.TooLate, DeadLetterCodes: map[string]int64{}}
	for _, c := range []generator.Counts{a, b} {
		for k, n := range c.DeadLetterCodes {
			out.DeadLetterCodes[k] += n
		}
	}
	return out
}

func dbtDone(out string) string {
	for _, l := range strings.Split(out, "\n") {
		if i := strings.Index(l, "Done. PASS="); i >= 0 {
			return l[i:]
		}
	}
	return ""
}

// TestDBTBuildOnPipelineOutput is the end-to-end test of the warehouse:
// generator → pipeline (Prism) → DuckDB → dbt build (dbt-duckdb, every model
// and test) → the marts' totals against the generator's own counts. Then a
// second pipeline run appends other events and an incremental dbt build (no
// lookback margin, so only the hours with new events are rebuilt) must give
// the totals of both runs, and so must a third run over the first's windows.
// Last, it breaks the warehouse on purpose and checks
// that the reconciliation tests fail.
func TestDBTBuildOnPipelineOutput(t *testing.T) {
	o := testOptions(t, 20_000)
	sum, err := RunLocal(context.Background(), o, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p := sum.Problems(); len(p) > 0 {
		t.Fatalf("the pipeline run does not reconcile: %v", p)
	}
	first := o.Generator.Expected()

	t.Log(dbtBuild(t, o.Warehouse, "--full-refresh"))
	checkMarts(t, readMartTotals(t, o.Warehouse), first)
	if t.Failed() {
		return
	}

	// Second run: another seed (other event ids), two hours later, appended.
	firstTwo := addCounts(first, appendRun(t, o, 8_000, 1, o.Generator.Start.Add(2*time.Hour)))
	checkMarts(t, readMartTotals(t, o.Warehouse), firstTwo)
	if t.Failed() {
		return
	}

	// Third run: another seed over the first run's minutes, as a replay of
	// dead letters into the same warehouse is. Its panes of the windows the
	// first run wrote count only its own events: the marts must add them to
	// the first run's, not take the later of the two.
	third := appendRun(t, o, 4_000, 2, o.Generator.Start)
	if shared := sharedWindowKeys(t, o.Warehouse); shared == 0 {
		t.Fatalf("the third run shares no window key with the first; the test needs it to")
	}
	checkMarts(t, readMartTotals(t, o.Warehouse), addCounts(firstTwo, third))
	if t.Failed() {
		return
	}

	// Break both sides the reconciliation tests compare: drop one event from
	// the event-grain facts, and give one window key a newer pane with an
	// extra event; and give one row of the daily mart an event its hours do
	// not have. Each test must now fail.
	execWarehouse(t, o.Warehouse,
		`delete from fact_marketing_events where event_id = (select min(event_id) from fact_marketing_events)`,
		`insert into fact_campaign_metrics_1m
		   select * replace (pane_version + 1 as pane_version, events + 1 as events)
		   from fact_campaign_metrics_1m
		   order by window_start, campaign_id, platform, event_type, pane_version desc
		   limit 1`,
		`update fct_campaign_performance_daily set events = events + 1
		   where rowid = (select min(rowid) from fct_campaign_performance_daily)`)
	out, err := dbtCommand(t, o.Warehouse, "test", "--select", reconcileFacts, reconcilePanes, reconcileDaily)
	if err == nil {
		t.Fatalf("the reconciliation tests pass on a broken warehouse:\n%s", out)
	}
	for _, name := range []string{reconcileFacts, reconcilePanes, reconcileDaily} {
		if !dbtTestFailed(out, name, "1|2") {
			t.Errorf("%s did not fail on the broken warehouse:\n%s", name, out)
		}
	}
}

// The singular tests that compare things written at different moments.
const (
	reconcileFacts       = "assert_hourly_performance_reconciles_with_event_facts"
	reconcilePanes       = "assert_hourly_performance_reconciles_with_latest_panes"
	reconcileDaily       = "assert_daily_performance_equals_hourly"
	reconcileDeadLetters = "assert_data_quality_counts_every_dead_letter"
	dataQualityAddsUp    = "assert_data_quality_hourly_adds_up"
)

// dbtTestFailed tells whether dbt's output reports the test as failed with
// a number of failing rows that rows (a regex) matches.
func dbtTestFailed(out, name, rows string) bool {
	return regexp.MustCompile(`\bFAIL (` + rows + `) ` + regexp.QuoteMeta(name) + `\b`).MatchString(out)
}

// execWarehouse runs statements on the DuckDB file at path.
func execWarehouse(t *testing.T, path string, stmts ...string) {
	t.Helper()
	w, err := OpenWarehouse(path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Release()
	for _, stmt := range stmts {
		if _, err := w.DB().Exec(stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
}

// TestDBTTestsOnAWarehouseBeingWritten is dbt in production: the job goes on
// writing while dbt builds the marts and then tests them. Rows written after
// a mart was built are not in it yet, and an event's fact and its window's
// pane reach the warehouse through two sinks at two moments; a
// reconciliation test that judged such keys would fail a correct build at
// every scheduled run. A first run's rows are aged three hours, the marts are
// built, and a second run writes into the first run's first hour (as the job
// does between a build and its tests; DuckDB's lock keeps the two apart, so
// here they take turns). Judging every key (quiet 0, the DuckDB default),
// the tests fail; judging only keys quiet for an hour (the BigQuery
// default), they pass; so does the data-quality marts' test, with the marts
// built apart around the second run. Then the second hour, which only the aged run wrote,
// is broken three ways, and each test that compares it must still fail.
func TestDBTTestsOnAWarehouseBeingWritten(t *testing.T) {
	o := testOptions(t, 4_000)
	o.Generator.Rate = 1 // 4,000 arrivals over 67 minutes: two hours
	if _, err := RunLocal(context.Background(), o, true, nil); err != nil {
		t.Fatal(err)
	}
	execWarehouse(t, o.Warehouse,
		`update fact_marketing_events set processed_at = processed_at - interval 3 hour`,
		`update fact_campaign_metrics_1m set emitted_at = emitted_at - interval 3 hour`,
		`update dead_letter_events set processing_timestamp = processing_timestamp - interval 3 hour`)
	quiet := []string{"--vars", "{reconcile_quiet_minutes: 60}"}
	out, err := dbtCommand(t, o.Warehouse, append([]string{"build", "--full-refresh"}, quiet...)...)
	if err != nil || !strings.Contains(dbtDone(out), "ERROR=0") {
		t.Fatalf("dbt build failed (%v):\n%s", err, out)
	}

	runInto(t, o, 1_000, 1, o.Generator.Start) // four seconds of arrivals

	tests := []string{"test", "--select", reconcileFacts, reconcilePanes, reconcileDaily, reconcileDeadLetters}
	out, err = dbtCommand(t, o.Warehouse, tests...)
	if err == nil {
		t.Fatalf("judging every key, the tests pass on marts built before the second run; this test needs them to fail:\n%s", out)
	}
	for _, name := range []string{reconcileFacts, reconcilePanes, reconcileDeadLetters} {
		if !dbtTestFailed(out, name, `\d+`) {
			t.Errorf("judging every key, %s passed on a mart built before the second run:\n%s", name, out)
		}
	}
	out, err = dbtCommand(t, o.Warehouse, append(tests, quiet...)...)
	if err != nil || !strings.Contains(dbtDone(out), "PASS=4 ") {
		t.Fatalf("judging only quiet keys, the tests fail on keys the second run just wrote (%v):\n%s", err, out)
	}

	// The two data-quality marts are built one after the other, and a dead
	// letter can land between them: here mart_data_quality alone is rebuilt
	// after the second run, whose dead letters the hourly mart lacks.
	if out, err := dbtCommand(t, o.Warehouse, "run", "--select", "mart_data_quality"); err != nil {
		t.Fatalf("dbt run mart_data_quality failed (%v):\n%s", err, out)
	}
	out, err = dbtCommand(t, o.Warehouse, "test", "--select", dataQualityAddsUp)
	if !dbtTestFailed(out, dataQualityAddsUp, `\d+`) {
		t.Fatalf("judging every hour, %s passed with a dead letter written between the two marts' builds; this test needs it to fail (%v):\n%s", dataQualityAddsUp, err, out)
	}
	out, err = dbtCommand(t, o.Warehouse, append([]string{"test", "--select", dataQualityAddsUp}, quiet...)...)
	if err != nil || !strings.Contains(dbtDone(out), "PASS=1 ") {
		t.Fatalf("judging only quiet hours, %s fails on an hour the second run just wrote dead letters into (%v):\n%s", dataQualityAddsUp, err, out)
	}

	second := o.Generator.Start.Add(time.Hour).Format("2006-01-02 15:04:05")
	execWarehouse(t, o.Warehouse,
		`delete from fact_marketing_events where event_id = (
		   select min(event_id) from fact_marketing_events where event_timestamp >= timestamp '`+second+`')`,
		`insert into fact_campaign_metrics_1m
		   select * replace (pane_version + 1 as pane_version, events + 1 as events)
		   from fact_campaign_metrics_1m
		   where window_start >= timestamp '`+second+`'
		   order by window_start, campaign_id, platform, event_type, pane_version desc
		   limit 1`,
		`delete from dead_letter_events where rowid = (
		   select min(rowid) from dead_letter_events where publish_timestamp >= timestamp '`+second+`')`)
	out, err = dbtCommand(t, o.Warehouse, append(tests, quiet...)...)
	if err == nil {
		t.Fatalf("judging only quiet keys, the tests pass on a broken quiet hour:\n%s", out)
	}
	for _, name := range []string{reconcileFacts, reconcilePanes, reconcileDeadLetters} {
		if !dbtTestFailed(out, name, `\d+`) {
			t.Errorf("judging only quiet keys, %s passed on a broken quiet hour:\n%s", name, out)
		}
	}
}

// TestDBTIncrementalMartsFromAnEmptyWarehouse builds the marts while the
// warehouse is still empty, as a scheduled dbt build right after terraform
// apply does before the job has written anything, then runs the job and
// builds incrementally: the marts must hold the run's events, not stay as
// empty as they were first built. The run's events cross into 2020 from
// 2019 (the contract accepts event times from 2000), and dim_date, which the
// marts' dates must be in, reaches a year past today whatever today is.
func TestDBTIncrementalMartsFromAnEmptyWarehouse(t *testing.T) {
	o := testOptions(t, 4_000)
	o.Generator.Start = time.Date(2019, 12, 31, 23, 40, 0, 0, time.UTC)
	if err := ResetWarehouse(o.Warehouse); err != nil {
		t.Fatal(err)
	}
	out, err := dbtCommand(t, o.Warehouse, "build", "--full-refresh")
	if err != nil || !strings.Contains(dbtDone(out), "ERROR=0") {
		t.Fatalf("dbt build on an empty warehouse failed (%v):\n%s", err, out)
	}
	run := appendRun(t, o, 4_000, 0, o.Generator.Start)
	checkMarts(t, readMartTotals(t, o.Warehouse), run)

	w, err := OpenWarehouse(o.Warehouse)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Release()
	var first, last time.Time
	var years2019 int64
	if err := w.DB().QueryRow(`select min(date_day)::timestamp, max(date_day)::timestamp,
		(select count(*) from fct_campaign_performance_daily where year(event_date) = 2019) from dim_date`).
		Scan(&first, &last, &years2019); err != nil {
		t.Fatal(err)
	}
	if years2019 == 0 {
		t.Errorf("the daily mart has no 2019 rows; the run started %v", o.Generator.Start)
	}
	if want := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC); !first.Equal(want) {
		t.Errorf("dim_date starts %v, want %v (the earliest event time the contract accepts)", first, want)
	}
	if want := time.Now().AddDate(1, 0, 0); last.Before(want) {
		t.Errorf("dim_date ends %v, before a year from now (%v)", last, want)
	}
}

// TestDBTRebuildsAnHourWhosePaneLandsLate: a window's final pane can reach
// the warehouse after its hour's last event (the watermark that fires it can
// be held back for hours, and the pane sink can lag the event sink), so an
// incremental build must rebuild an hour whose panes changed even when its
// events did not; else the hourly mart's aggregated_events keeps the earlier
// pane's count. The latest panes of the run's first hour are held back while
// the marts are built, then land an hour later, and an incremental build with
// no lookback margin must bring the mart to the generator's counts (and pass
// the reconciliation test, which compares the mart's aggregated_events with
// the panes).
func TestDBTRebuildsAnHourWhosePaneLandsLate(t *testing.T) {
	o := testOptions(t, 4_000)
	if _, err := RunLocal(context.Background(), o, true, nil); err != nil {
		t.Fatal(err)
	}
	execWarehouse(t, o.Warehouse,
		`create table held as
		 select f.* from fact_campaign_metrics_1m f
		 join (select window_start, campaign_id, platform, event_type, run_id, max(pane_version) as pane_version
		       from fact_campaign_metrics_1m group by all) latest
		   using (window_start, campaign_id, platform, event_type, run_id, pane_version)
		 where date_trunc('hour', f.window_start) = (select min(date_trunc('hour', window_start)) from fact_campaign_metrics_1m)`,
		`delete from fact_campaign_metrics_1m f using held h
		 where f.window_start = h.window_start and f.campaign_id = h.campaign_id and f.platform = h.platform
		   and f.event_type = h.event_type and f.run_id = h.run_id and f.pane_version = h.pane_version`)
	if out, err := dbtCommand(t, o.Warehouse, "build", "--full-refresh", "--exclude-resource-type", "test"); err != nil {
		t.Fatalf("dbt build without its tests failed (%v):\n%s", err, out)
	}
	e := o.Generator.Expected()
	before := readMartTotals(t, o.Warehouse)
	if before.hourlyAggregated >= e.Valid-e.TooLate {
		t.Fatalf("with the first hour's latest panes held back the mart aggregated %d events, want fewer than %d: nothing was held back",
			before.hourlyAggregated, e.Valid-e.TooLate)
	}
	execWarehouse(t, o.Warehouse,
		`insert into fact_campaign_metrics_1m select * replace (emitted_at + interval 1 hour as emitted_at) from held`,
		`drop table held`)
	dbtBuild(t, o.Warehouse, "--vars", "{incremental_lookback_hours: 0}")
	checkMarts(t, readMartTotals(t, o.Warehouse), e)
}

// TestDBTCountsConversionValueOfConversionsOnly: the contract lets any event
// carry conversion_value and currency, but the marts' conversion value and
// currency are the conversions' (as are the run summary's), and a campaign
// whose conversions come in several currencies gets no ROI: their sum is no
// amount. After a run, a click with a value in CHF is added to one campaign,
// and to another a conversion in JPY that also gives it a known budget (both
// too late, so the panes need not change).
func TestDBTCountsConversionValueOfConversionsOnly(t *testing.T) {
	o := testOptions(t, 4_000)
	if _, err := RunLocal(context.Background(), o, true, nil); err != nil {
		t.Fatal(err)
	}
	conversion := func(nth int) string {
		return fmt.Sprintf(`(select * from fact_marketing_events where event_type = 'conversion'
			and campaign_id = (select campaign_id from fact_marketing_events where event_type = 'conversion'
				group by 1 order by 1 limit 1 offset %d) order by event_id limit 1)`, nth)
	}
	execWarehouse(t, o.Warehouse,
		`insert into fact_marketing_events select * replace ('click-with-value' as event_id, 'click' as event_type,
		   500.0 as conversion_value, 'CHF' as currency, false as is_late, true as is_too_late) from `+conversion(0),
		`insert into fact_marketing_events select * replace ('conversion-in-yen' as event_id, 'JPY' as currency,
		   false as is_late, true as is_too_late, 'enriched' as enrichment_status, true as campaign_found,
		   100.0 as campaign_daily_budget, null::timestamp as campaign_start, null::timestamp as campaign_end,
		   processed_at + interval 1 hour as processed_at) from `+conversion(1))
	dbtBuild(t, o.Warehouse, "--full-refresh")

	w, err := OpenWarehouse(o.Warehouse)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Release()
	type campaign struct {
		id, facts, mart, funnel, dim, roiStatus string
		factValue, martValue, funnelValue       float64
	}
	var cs [2]campaign
	for i := range cs {
		c := &cs[i]
		if err := w.DB().QueryRow(`select f.campaign_id, f.currencies, f.value, m.currency, m.value, fu.currency, fu.conversion_value,
			  d.reporting_currency, r.budget_status
			from (select campaign_id, string_agg(distinct currency, ',' order by currency) as currencies, sum(conversion_value) as value
			      from fact_marketing_events where event_type = 'conversion' and campaign_id = (select campaign_id from `+conversion(i)+`)
			      group by 1) f
			join (select campaign_id, case when count(distinct currency) > 1 then 'MIXED' else max(currency) end as currency,
			        sum(conversion_value) as value from fct_campaign_performance_daily group by 1) m using (campaign_id)
			join fct_funnel fu using (campaign_id)
			join dim_campaign d using (campaign_id)
			join mart_campaign_roi r using (campaign_id)`).
			Scan(&c.id, &c.facts, &c.factValue, &c.mart, &c.martValue, &c.funnel, &c.funnelValue, &c.dim, &c.roiStatus); err != nil {
			t.Fatal(err)
		}
	}
	// The click's value and currency count nowhere.
	a := cs[0]
	if strings.Contains(a.facts, ",") || a.mart != a.facts || a.funnel != a.facts || a.dim != a.facts ||
		math.Abs(a.martValue-a.factValue) > 0.005 || math.Abs(a.funnelValue-a.factValue) > 0.005 {
		t.Errorf("campaign %s with a CHF click worth 500: conversions %.2f in %s; daily mart %.2f %s, funnel %.2f %s, dim_campaign %s",
			a.id, a.factValue, a.facts, a.martValue, a.mart, a.funnelValue, a.funnel, a.dim)
	}
	// Conversions in two currencies: MIXED, and no ROI.
	b := cs[1]
	if !strings.Contains(b.facts, "JPY,") && !strings.Contains(b.facts, ",JPY") {
		t.Fatalf("campaign %s's conversions are in %s; the test meant to add JPY to another currency", b.id, b.facts)
	}
	if b.mart != "MIXED" || b.funnel != "MIXED" || b.dim != "MIXED" || b.roiStatus != "mixed_currency" {
		t.Errorf("campaign %s with conversions in %s: daily mart %s, funnel %s, dim_campaign %s, ROI status %s; want MIXED and mixed_currency",
			b.id, b.facts, b.mart, b.funnel, b.dim, b.roiStatus)
	}
	var spend, ratio sql.NullFloat64
	if err := w.DB().QueryRow(`select estimated_spend, return_on_spend from mart_campaign_roi where campaign_id = ?`, b.id).Scan(&spend, &ratio); err != nil {
		t.Fatal(err)
	}
	if spend.Valid || ratio.Valid {
		t.Errorf("campaign %s with conversions in %s has estimated spend %v and return on spend %v; want none", b.id, b.facts, spend, ratio)
	}
}

// TestDBTCountsAFileOnItsDeadLettersClock: a file's lines have no arrival
// time (their ingest time is their event time), and its dead letters count
// by their rejection time, so mart_data_quality counts its valid lines by
// processing time too. A backfill of day-old events then shares its hours
// with its own rejects, instead of its valid events landing a day back and
// its rejects making up the whole of the current hour.
func TestDBTCountsAFileOnItsDeadLettersClock(t *testing.T) {
	gen := testOptions(t, 3_000)
	gen.Generator.Start = time.Now().Add(-30 * time.Hour).Truncate(time.Hour)
	file := filepath.Join(t.TempDir(), "backfill.jsonl")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := gen.Generator.WriteJSONLines(f, nil); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	o, sum := runFile(t, file)
	if sum.Valid == 0 || sum.DeadLetters == 0 {
		t.Fatalf("the backfill gave %d valid events and %d dead letters; the test needs both", sum.Valid, sum.DeadLetters)
	}
	dbtBuild(t, o.Warehouse, "--full-refresh")
	w, err := OpenWarehouse(o.Warehouse)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Release()
	var before, counted int64
	if err := w.DB().QueryRow(`select
		  (select count(*) from int_marketing_events where ingested_hour < (select min(arrival_hour) from mart_data_quality)),
		  (select sum(hour_records) from (select distinct arrival_hour, hour_records from mart_data_quality))`).
		Scan(&before, &counted); err != nil {
		t.Fatal(err)
	}
	if before != 0 {
		t.Errorf("%d of %d valid backfill events count in hours before the first of its dead letters", before, sum.Valid)
	}
	// Every record in an hour with dead letters, unless the run crossed an hour.
	if counted > sum.Valid+sum.DeadLetters || counted < sum.DeadLetters {
		t.Errorf("mart_data_quality's hours hold %d records; the run had %d valid and %d dead letters", counted, sum.Valid, sum.DeadLetters)
	}
}

// TestDBTCountsARepeatedDeadLetterOnce: the BigQuery sink writes at least
// once, so dead_letter_events can hold a record twice, as the same row again
// (a retried append) or as the record rejected again by a retried bundle, with
// a later processing_timestamp. Every dead letter of a run carries its
// record's message id, distinct within its source; staging keeps one row per
// record by it, or by the event id and event time past Dedup (a refused fact
// row; an id used twice a dedup horizon apart is two records), and keeps
// every row that has neither (a refused pane row). An ENRICH_UNAVAILABLE
// dead letter of a message a retried bundle then wrote as a fact is not
// counted (int_dead_letters); one whose fact came from a replay is.
func TestDBTCountsARepeatedDeadLetterOnce(t *testing.T) {
	o := testOptions(t, 4_000)
	if _, err := RunLocal(context.Background(), o, true, nil); err != nil {
		t.Fatal(err)
	}
	w, err := OpenWarehouse(o.Warehouse)
	if err != nil {
		t.Fatal(err)
	}
	var rows, withID, distinct int64
	err = w.DB().QueryRow(`select count(*), count(message_id), count(distinct source || ' ' || message_id)
		from dead_letter_events`).Scan(&rows, &withID, &distinct)
	w.Release()
	if err != nil {
		t.Fatal(err)
	}
	if rows == 0 || withID != rows || distinct != rows {
		t.Fatalf("of %d dead letters, %d have a message id and %d distinct ones; want every one, distinct", rows, withID, distinct)
	}

	execWarehouse(t, o.Warehouse,
		// every record rejected again by a retried bundle
		`insert into dead_letter_events
		   select * replace (processing_timestamp + interval 1 second as processing_timestamp)
		   from dead_letter_events`,
		// and the validate stage's rows appended twice
		`insert into dead_letter_events select * from dead_letter_events where stage = 'validate'`,
		// a refused fact row, twice, and two refused pane rows
		`insert into dead_letter_events (stage, error_code, error_message, event_id, payload, payload_bytes,
		   source, processing_timestamp, pipeline_version)
		 select 'sink', 'SINK_REJECTED', 'BigQuery refused the row', r.event_id, '{}'::blob, 2, r.source, t.at, 'test'
		 from (values ('e-refused', 'bigquery:fact_marketing_events'), (null, 'bigquery:fact_campaign_metrics_1m')) r(event_id, source),
		   (select max(processing_timestamp) as at from dead_letter_events) t, range(2)`,
		// a valid event dead-lettered with ENRICH_UNAVAILABLE, twice, by a
		// bundle whose retry then wrote it as a fact: the same message (its
		// source and arrival time)
		`insert into dead_letter_events (stage, error_code, error_message, event_id, payload, payload_bytes,
		   source, publish_timestamp, processing_timestamp, pipeline_version)
		 select 'enrich', 'ENRICH_UNAVAILABLE', 'Bigtable did not answer', event_id, '{}'::blob, 2,
		   source, ingest_timestamp, processed_at - interval 1 second, 'test'
		 from (select * from fact_marketing_events order by event_id limit 1), range(2)`,
		// and one whose fact came from a replay, a new message: it stands
		`insert into dead_letter_events (stage, error_code, error_message, event_id, payload, payload_bytes,
		   source, publish_timestamp, processing_timestamp, pipeline_version)
		 select 'enrich', 'ENRICH_UNAVAILABLE', 'Bigtable did not answer', event_id, '{}'::blob, 2,
		   source, ingest_timestamp - interval 1 hour, processed_at - interval 1 hour, 'test'
		 from (select * from fact_marketing_events order by event_id desc limit 1)`,
		// two events of one id, half an hour apart (Dedup counts both), both
		// dead-lettered by Enrich, the first twice: two records
		`insert into dead_letter_events (stage, error_code, error_message, event_id, payload, payload_bytes,
		   source, processing_timestamp, pipeline_version)
		 select 'enrich', 'ENRICH_UNAVAILABLE', 'Bigtable did not answer', 'e-reused',
		   encode('{"event_id":"e-reused","timestamp":"' || ts || '"}'), 40, 'generator', t.at, 'test'
		 from (values ('2026-01-01T00:00:00.000Z'), ('2026-01-01T00:00:00.000Z'), ('2026-01-01T00:30:00.000Z')) v(ts),
		   (select max(processing_timestamp) as at from dead_letter_events) t`)

	dbtBuild(t, o.Warehouse, "--full-refresh")
	want := o.Generator.Expected()
	want.Malformed += 3 + 1 + 2 // the refused fact row once, both pane rows; the replayed enrich dead letter; the reused id's two
	want.DeadLetterCodes[transforms.CodeSinkRejected] += 3
	want.DeadLetterCodes[transforms.CodeEnrichUnavailable] += 1 + 2
	checkMarts(t, readMartTotals(t, o.Warehouse), want)
}

// TestDBTCountsAnIdReusedPastTheDedupHorizon: Dedup drops a repeat of an
// event id only within one --dedup_horizon of event time, so an id a sender
// uses again half an hour later is two valid events, in the run's summary
// and in the panes. Staging keeps one row per event id and event time, so the
// marts count both as well, and the pane reconciliation holds.
func TestDBTCountsAnIdReusedPastTheDedupHorizon(t *testing.T) {
	first := time.Now().UTC().Add(-3 * time.Hour).Truncate(time.Hour).Add(5 * time.Minute)
	line := func(id string, at time.Time) string {
		return fmt.Sprintf(`{"event_id":%q,"event_type":"conversion","timestamp":%q,"user_id":"usr_000001",`+
			`"campaign_id":"cmp_0001","platform":"meta","conversion_value":100,"currency":"EUR","schema_version":"1.0"}`,
			id, at.Format(time.RFC3339))
	}
	later := first.Add(30 * time.Minute)
	if transforms.DefaultDedupConfig.Horizon >= later.Sub(first)/2 {
		t.Fatalf("the default dedup horizon %v is not well under the %v between the two uses of the id", transforms.DefaultDedupConfig.Horizon, later.Sub(first))
	}
	file := filepath.Join(t.TempDir(), "reused.jsonl")
	lines := []string{line("evt-reused", first), line("evt-other", first.Add(time.Minute)), line("evt-reused", later), line("evt-last", later.Add(time.Minute))}
	if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	o, sum := runFile(t, file)
	if sum.Valid != 4 || sum.Duplicates != 0 {
		t.Fatalf("the run counted %d valid and %d duplicates; the test needs the reused id counted twice (4 and 0)", sum.Valid, sum.Duplicates)
	}
	dbtBuild(t, o.Warehouse, "--full-refresh")
	w, err := OpenWarehouse(o.Warehouse)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Release()
	var events, aggregated int64
	var value float64
	if err := w.DB().QueryRow(`select sum(events), sum(aggregated_events), sum(conversion_value) from fct_campaign_performance_hourly`).
		Scan(&events, &aggregated, &value); err != nil {
		t.Fatal(err)
	}
	if events != 4 || aggregated != 4 || value != 400 {
		t.Errorf("the hourly mart holds %d events, %d aggregated, worth %.2f; want 4, 4 and 400.00", events, aggregated, value)
	}
}

// TestDBTCountsAFactRowBigQueryRefused: BigQuery can refuse a fact row the
// panes counted; the sink dead-letters it (SINK_REJECTED, the row as JSON).
// The pane reconciliation counts it from its dead letter, twice written as a
// retried bundle would, so the build passes and the marts downstream of the
// hourly mart are built, where one such row used to fail the test, and skip
// them, at every build. A fact row lost without a dead letter still fails it.
func TestDBTCountsAFactRowBigQueryRefused(t *testing.T) {
	o := testOptions(t, 4_000)
	if _, err := RunLocal(context.Background(), o, true, nil); err != nil {
		t.Fatal(err)
	}
	events, _ := transforms.TableByName(transforms.TableEvents)
	enc, err := NewRowEncoder(events)
	if err != nil {
		t.Fatal(err)
	}
	w, err := OpenWarehouse(o.Warehouse)
	if err != nil {
		t.Fatal(err)
	}
	// Two in-time conversions of different keys: the first is refused, the
	// second lost.
	rows, err := w.DB().Query(`select event_id, event_timestamp, campaign_id, platform, conversion_value
		from fact_marketing_events where event_type = 'conversion' and not is_too_late
		qualify row_number() over (partition by campaign_id, platform order by event_id) = 1
		order by campaign_id, platform limit 2`)
	if err != nil {
		t.Fatal(err)
	}
	var picked []transforms.EventRow
	for rows.Next() {
		r := transforms.EventRow{EventType: "conversion", Source: "pubsub:meta"}
		var value float64
		if err := rows.Scan(&r.EventID, &r.EventTimestamp, &r.CampaignID, &r.Platform, &value); err != nil {
			t.Fatal(err)
		}
		r.ConversionValue = &value
		picked = append(picked, r)
	}
	if err := rows.Err(); err != nil || len(picked) != 2 {
		t.Fatalf("picked %d conversions (%v); the test needs 2", len(picked), err)
	}
	refused, lost := picked[0], picked[1]
	b, err := enc.Encode(refused)
	if err != nil {
		t.Fatal(err)
	}
	payload := enc.RowJSON(b)
	for _, stmt := range []struct {
		q    string
		args []any
	}{
		{`delete from fact_marketing_events where event_id = ?`, []any{refused.EventID}},
		{`insert into dead_letter_events (stage, error_code, error_message, event_id, payload, payload_bytes,
		   source, processing_timestamp, pipeline_version)
		 select 'sink', 'SINK_REJECTED', 'BigQuery refused the row', ?, ?, ?, 'bigquery:fact_marketing_events',
		   now()::timestamp - interval 1 minute + to_seconds(range), 'test'
		 from range(2)`, []any{refused.EventID, payload, len(payload)}},
	} {
		if _, err := w.DB().Exec(stmt.q, stmt.args...); err != nil {
			w.Release()
			t.Fatalf("%s: %v", stmt.q, err)
		}
	}
	w.Release()
	dbtBuild(t, o.Warehouse, "--full-refresh")

	execWarehouse(t, o.Warehouse, fmt.Sprintf(`delete from fact_marketing_events where event_id = '%s'`, lost.EventID))
	out, err := dbtCommand(t, o.Warehouse, "build", "--full-refresh")
	if err == nil || !dbtTestFailed(out, "assert_hourly_performance_reconciles_with_latest_panes", "1") {
		t.Errorf("a fact row lost without a dead letter: want the pane reconciliation to fail on its key (%v):\n%s", err, dbtDone(out))
	}
}

// TestDBTDataQualityHasEveryHour: mart_data_quality has a row only where
// there are dead letters, so a run without any left a dashboard of the
// dead-letter share with no hour at all; mart_data_quality_hourly has every
// hour with a record, a clean one at zero.
func TestDBTDataQualityHasEveryHour(t *testing.T) {
	o := testOptions(t, 400)
	o.Generator.MalformedRate = 0
	o.Generator.Rate = 0.05 // 400 arrivals over 2 h 13 min: three hours
	o.Generator.Start = time.Now().Add(-4 * time.Hour).Truncate(time.Hour).Add(30 * time.Minute)
	sum, err := RunLocal(context.Background(), o, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	if sum.DeadLetters != 0 || sum.Valid == 0 {
		t.Fatalf("the run gave %d valid events and %d dead letters; the test needs valid events alone", sum.Valid, sum.DeadLetters)
	}
	dbtBuild(t, o.Warehouse, "--select", "+mart_data_quality_hourly+", "--indirect-selection", "cautious")
	w, err := OpenWarehouse(o.Warehouse)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Release()
	var hours, valid, dead, byCode int64
	var share float64
	if err := w.DB().QueryRow(`select count(*), coalesce(sum(valid_events), 0), coalesce(sum(dead_letters), 0),
		coalesce(max(dead_letter_share), -1), (select count(*) from mart_data_quality) from mart_data_quality_hourly`).
		Scan(&hours, &valid, &dead, &share, &byCode); err != nil {
		t.Fatal(err)
	}
	if hours != 3 || valid != sum.Valid || dead != 0 || share != 0 || byCode != 0 {
		t.Errorf("mart_data_quality_hourly has %d hours, %d valid events, %d dead letters, a largest share of %v (mart_data_quality %d rows); "+
			"want 3 hours, the run's %d valid events, no dead letter and a share of 0 (and no row)", hours, valid, dead, share, byCode, sum.Valid)
	}
}

// TestDBTDataQualityLeavesOutHoursWhoseDeadLettersExpired: on BigQuery the
// dead letters' partitions expire (Terraform's dead_letter_expiration_days,
// 30 days) and the facts' do not. A run's rows are aged 40 days and its
// dead letters deleted, as the expiry would; a second run writes yesterday.
// Without the retention (DuckDB's default) the data-quality mart shows the
// aged hours with valid events and no dead letter, clean hours that were
// not; with var dead_letter_retention_days 30 it leaves them out, keeps
// yesterday's hours, and every test passes.
func TestDBTDataQualityLeavesOutHoursWhoseDeadLettersExpired(t *testing.T) {
	o := testOptions(t, 2_000)
	if _, err := RunLocal(context.Background(), o, true, nil); err != nil {
		t.Fatal(err)
	}
	execWarehouse(t, o.Warehouse,
		`update fact_marketing_events set ingest_timestamp = ingest_timestamp - interval 40 day,
		   processed_at = processed_at - interval 40 day, event_timestamp = event_timestamp - interval 40 day,
		   window_start = window_start - interval 40 day`,
		`update fact_campaign_metrics_1m set window_start = window_start - interval 40 day,
		   window_end = window_end - interval 40 day, emitted_at = emitted_at - interval 40 day`,
		`delete from dead_letter_events`)
	second := runInto(t, o, 1_000, 1, o.Generator.Start)
	if second.Generator.Expected().Malformed == 0 {
		t.Fatal("the second run made no dead letter; the test needs some")
	}
	cutoff := time.Now().UTC().AddDate(0, 0, -31)
	clean := func() (old, recent, recentDead int64) {
		t.Helper()
		w, err := OpenWarehouse(o.Warehouse)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Release()
		if err := w.DB().QueryRow(`select count(*) filter (where arrival_hour < ? and dead_letters = 0),
			count(*) filter (where arrival_hour >= ?), coalesce(sum(dead_letters) filter (where arrival_hour >= ?), 0)
			from mart_data_quality_hourly`, cutoff, cutoff, cutoff).Scan(&old, &recent, &recentDead); err != nil {
			t.Fatal(err)
		}
		return old, recent, recentDead
	}

	dbtBuild(t, o.Warehouse, "--full-refresh", "--select", "+mart_data_quality_hourly+", "--indirect-selection", "cautious")
	if old, _, _ := clean(); old == 0 {
		t.Fatal("without a retention, the mart shows no aged hour as clean; this test needs it to")
	}
	dbtBuild(t, o.Warehouse, "--full-refresh", "--vars", "{dead_letter_retention_days: 30}")
	if old, recent, recentDead := clean(); old != 0 || recent == 0 || recentDead == 0 {
		t.Errorf("with a 30-day retention the mart shows %d hours older than 31 days as clean, and %d recent hours with %d dead letters; "+
			"want none, and yesterday's hours with their dead letters", old, recent, recentDead)
	}
}

// TestDBTAddsTheLastPaneColumnToAnOlderMart: the hourly mart gained
// last_pane_emitted_at after it was first deployed, and its incremental
// filter reads the column from the mart itself, before dbt adds it
// (on_schema_change adds new columns after it has built the new rows). A
// mart built before the column existed must take it in an incremental
// build, not fail every build from then on.
func TestDBTAddsTheLastPaneColumnToAnOlderMart(t *testing.T) {
	o := testOptions(t, 2_000)
	if _, err := RunLocal(context.Background(), o, true, nil); err != nil {
		t.Fatal(err)
	}
	dbtBuild(t, o.Warehouse, "--full-refresh")
	type mart struct{ rows, withPane, aggregated, paneEpochs int64 }
	read := func() (m mart) {
		t.Helper()
		w, err := OpenWarehouse(o.Warehouse)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Release()
		if err := w.DB().QueryRow(`select count(*), count(last_pane_emitted_at), coalesce(sum(aggregated_events), 0),
			coalesce(sum(epoch_ms(last_pane_emitted_at)), 0) from fct_campaign_performance_hourly`).
			Scan(&m.rows, &m.withPane, &m.aggregated, &m.paneEpochs); err != nil {
			t.Fatal(err)
		}
		return m
	}
	want := read()
	if e := o.Generator.Expected(); want.withPane == 0 || want.aggregated != e.Valid-e.TooLate {
		t.Fatalf("the full build gave %+v; want hours with panes and %d aggregated events", want, e.Valid-e.TooLate)
	}
	execWarehouse(t, o.Warehouse, `alter table fct_campaign_performance_hourly drop column last_pane_emitted_at`)
	dbtBuild(t, o.Warehouse)
	if got := read(); got != want {
		t.Errorf("after the incremental build that added last_pane_emitted_at back the mart is %+v; want what the full build made, %+v", got, want)
	}
}
