package pipelines

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/campaignpulse/campaignpulse/pipelines/generator"
	"github.com/campaignpulse/campaignpulse/transforms"
)

// TestAppendTimestamp checks the hand-written formatter against the standard
// library's for dates across years, zones and sub-second precision.
func TestAppendTimestamp(t *testing.T) {
	zone := time.FixedZone("UTC+5:30", 5*3600+1800)
	for _, ts := range []time.Time{
		time.Date(2026, 11, 23, 9, 5, 7, 123456789, time.UTC),
		time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(1999, 12, 31, 23, 59, 59, 999999000, time.UTC),
		time.Date(2026, 3, 1, 2, 3, 4, 5000, zone),
		time.UnixMilli(1795426124266),
	} {
		got := string(appendTimestamp(nil, ts))
		want := ts.UTC().Format("2006-01-02 15:04:05.000000")
		if got != want {
			t.Errorf("appendTimestamp(%v) = %q, want %q", ts, got, want)
		}
	}
}

// TestAppendCSVRowQuoting checks the CSV the sink stages: quotes doubled,
// nulls as \N, empty strings quoted, bytes as themselves when printable
// ASCII and as \xHH escapes when not or when a backslash or a quote.
func TestAppendCSVRowQuoting(t *testing.T) {
	got := string(appendCSVRow(nil, []any{`a"b`, "", nil, int64(-3), 1.5, true, []byte{0, 'A', 0xff, '\\', '"', '~', '\n'}}))
	want := `"a""b","",\N,-3,1.5,true,"\x00A\xFF\x5C\x22~\x0A"` + "\n"
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

// TestEventRowCSVMatchesTheSchema holds the event sink's direct writer
// (appendEventRowCSV) to the schema definition: for every event it must
// write the bytes appendCSVRow writes for the values of NewEventRow, the row
// type fact_marketing_events is created from. A column added to EventRow and
// not to the writer, or a rule of NewEventRow changed in one place only,
// fails here.
func TestEventRowCSVMatchesTheSchema(t *testing.T) {
	table, ok := transforms.TableByName(transforms.TableEvents)
	if !ok {
		t.Fatal("no fact_marketing_events table")
	}
	// Events the generator makes (every kind it sends to the sink).
	const generated = 5000
	events := validGeneratedEvents(generated)
	if len(events) < 4000 {
		t.Fatalf("only %d of %d generated events are valid", len(events), generated)
	}
	// Edge cases: every optional empty, quotes and commas, negative and
	// fractional values, late flags, times before 1970.
	events = append(events,
		transforms.Event{EventID: "e", EventType: "view", UserID: "u", CampaignID: "c", Platform: "p", SchemaVersion: "1.0", Source: "s"},
		transforms.Event{EventID: `a"b,c`, EventType: "conversion", EventTime: -61_001, IngestTime: -1, UserID: `"`, CampaignID: ",",
			Platform: "x\ny", AdID: `ad"1`, HasEngagementScore: true, EngagementScore: 0, HasConversionValue: true, ConversionValue: -7.25,
			Currency: "EUR", UTMSource: "s", UTMMedium: "m", UTMCampaign: "c", UTMTerm: "t", UTMContent: "x", SchemaVersion: "1.2",
			Late: true, TooLate: true, Source: "file"},
	)
	enrichments := []*transforms.Enrichment{
		nil, // a run without enrichment
		{},  // a status nobody set reads the same
		{Status: transforms.EnrichDisabled},
		{Status: transforms.EnrichUnavailable, UserFound: true, UserSegment: "ignored"},
		{Status: transforms.EnrichOK}, // neither found
		{Status: transforms.EnrichOK, UserFound: true, UserSegment: "loyal", UserCountry: "DE", UserLifetimeValue: 1234.5,
			UserFirstSeen: 1_700_000_000_123, CampaignFound: true, CampaignName: `Spring "sale", 2026`, CampaignObjective: "conversions",
			CampaignChannel: "social", Advertiser: "acme", CampaignDailyBudget: 500, CampaignStart: 1_760_000_000_000, CampaignEnd: 1_780_000_000_000},
		{Status: transforms.EnrichOK, UserFound: true, CampaignFound: true}, // found, attributes empty: unknown, null times
		{Status: transforms.EnrichOK, UserFound: false, UserSegment: "stale", CampaignFound: true, CampaignName: "n", CampaignDailyBudget: 0.1},
	}
	processedAt := time.Date(2026, 11, 23, 18, 30, 1, 234567000, time.UTC)
	var vals []any
	compared := 0
	for i, ev := range events {
		for j, x := range enrichments {
			if j > 0 && i%97 != 0 && i < len(events)-2 {
				continue // every variant on a sample of events and on the edge cases
			}
			ev.Enrichment = x
			row := transforms.NewEventRow(ev)
			row.ProcessedAt = processedAt
			vals = table.Values(row, vals)
			want := string(appendCSVRow(nil, vals))
			got := string(appendEventRowCSV(nil, &ev, processedAt))
			if got != want {
				t.Fatalf("event %d, enrichment %d:\ngot  %s\nwant %s", i, j, got, want)
			}
			compared++
		}
	}
	t.Logf("%d rows written alike", compared)
}

// validGeneratedEvents returns those of the generator's first n events that
// parse and validate as the pipeline's, i.e. the events its sink writes.
func validGeneratedEvents(n int64) []transforms.Event {
	g := generator.Default()
	return g.ValidEvents(n)
}

// TestOpenWarehouseRemovesStagingAKilledRunLeft stages a bundle the way the
// sink does and leaves it uncommitted, as a killed run would: while its
// process is the one holding the warehouse the file stays; staged by another
// process, the next open removes it, and only the files of this warehouse's
// tables.
func TestOpenWarehouseRemovesStagingAKilledRunLeft(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "w.duckdb")
	f := &stagedTable{Path: path, Table: transforms.TableEvents}
	if err := f.Setup(context.Background()); err != nil {
		t.Fatal(err)
	}
	ev := validGeneratedEvents(10)[0]
	if err := f.addEvent(&ev, time.Now()); err != nil {
		t.Fatal(err)
	}
	ours := f.staging.Name()
	f.w.Flush()
	f.staging.Close()
	f.staging = nil
	f.Teardown()

	// The same process opens the warehouse again: the file may be wanted.
	wh, err := OpenWarehouse(path)
	if err != nil {
		t.Fatal(err)
	}
	wh.Release()
	if _, err := os.Stat(ours); err != nil {
		t.Fatalf("this process's staging file was removed: %v", err)
	}

	// As if another process had staged it and been killed.
	self := fmt.Sprintf("-%d-", os.Getpid())
	killed := filepath.Join(dir, strings.Replace(filepath.Base(ours), self, "-4194305-", 1))
	if err := os.Rename(ours, killed); err != nil {
		t.Fatal(err)
	}
	keep := []string{
		".other.duckdb." + transforms.TableEvents + "-4194305-1.csv", // another warehouse's
		"campaigns.csv", // not the sink's
	}
	for _, k := range keep {
		if err := os.WriteFile(filepath.Join(dir, k), []byte("x\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	stale := filepath.Join(dir, stagingPrefix(path, transforms.TableDeadLetters)+"4194305-2.csv")
	if err := os.WriteFile(stale, []byte("x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if wh, err = OpenWarehouse(path); err != nil {
		t.Fatal(err)
	}
	defer wh.Release()
	for _, gone := range []string{killed, stale} {
		if _, err := os.Stat(gone); !os.IsNotExist(err) {
			t.Errorf("%s: want it removed, stat says %v", filepath.Base(gone), err)
		}
	}
	for _, k := range keep {
		if _, err := os.Stat(filepath.Join(dir, k)); err != nil {
			t.Errorf("%s was removed: %v", k, err)
		}
	}
}

// TestDeadLetterKeepsLargePayloads commits dead letters whose payloads are
// past DuckDB's default CSV line limit (2 MB; each payload byte is staged as
// up to 4, and a dead letter keeps up to 1 MiB of a payload), next to small
// ones, and reads every payload back byte for byte. The 10 MB one is past
// what NewDeadLetter keeps: the sink itself has no limit of its own.
func TestDeadLetterKeepsLargePayloads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.duckdb")
	f := &stagedTable{Path: path, Table: transforms.TableDeadLetters}
	if err := f.Setup(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer f.Teardown()
	big := make([]byte, 10<<20)
	for i := range big {
		big[i] = byte(i*7 + i>>9) // every byte value, quotes and newlines included
	}
	json := []byte(`{"event_id":"e1","utm_content":"` + strings.Repeat("x", 3<<20) + `"}`)
	payloads := [][]byte{[]byte("\r"), big, {}, json, []byte(`"quoted", \N`)}
	for i, p := range payloads {
		d := transforms.DeadLetter{Stage: transforms.StageParse, ErrorCode: transforms.CodeOversizePayload,
			ErrorMessage: fmt.Sprintf("payload %d", i), Payload: p, Source: "test", ProcessingTime: 1}
		if err := f.add(transforms.NewDeadLetterRow(d)); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.FinishBundle(context.Background(), func(int64) {}); err != nil {
		t.Fatalf("commit: %.500v", err)
	}
	for i, want := range payloads {
		var got []byte
		var n int64
		err := f.wh.DB().QueryRow(`SELECT payload, payload_bytes FROM dead_letter_events WHERE error_message = ?`,
			fmt.Sprintf("payload %d", i)).Scan(&got, &n)
		if err != nil {
			t.Fatalf("payload %d: %v", i, err)
		}
		if !bytes.Equal(got, want) || n != int64(len(want)) {
			t.Errorf("payload %d: read back %d bytes (payload_bytes %d), wrote %d", i, len(got), n, len(want))
		}
	}
}

// TestSinkKeepsStringsAsSent commits rows whose strings look like what a CSV
// reader might take for something else (the null marker \N, NULL, quotes,
// line breaks, a NUL byte) to each table and reads them back: every string
// comes back as sent, and none becomes a null. The first row holds a bare
// carriage return, from which DuckDB would guess the file's line ending. Validation bounds ids' length,
// not their characters, so any of these can reach the sink in a valid event.
func TestSinkKeepsStringsAsSent(t *testing.T) {
	awkward := []string{"cr\rfirst", `\N`, "NULL", `"\N"`, "a\x00b", "line\r\nbreak", `q"c,s`, " ", "\\", "\x1f"}
	path := filepath.Join(t.TempDir(), "w.duckdb")
	ctx := context.Background()
	tables := map[string]*stagedTable{}
	for _, name := range []string{transforms.TableEvents, transforms.TableMetrics, transforms.TableDeadLetters} {
		f := &stagedTable{Path: path, Table: name}
		if err := f.Setup(ctx); err != nil {
			t.Fatal(err)
		}
		defer f.Teardown()
		tables[name] = f
	}
	for i, s := range awkward {
		ev := transforms.Event{EventID: s, EventType: "view", UserID: s, CampaignID: s, Platform: "meta", UTMTerm: s,
			SchemaVersion: "1.0", Source: s, EventTime: int64(i)}
		if err := tables[transforms.TableEvents].addEvent(&ev, time.Unix(0, 0)); err != nil {
			t.Fatal(err)
		}
		m := transforms.NewMetricsRow(time.Unix(0, 0), time.Unix(60, 0), transforms.MetricKey(&ev), int64(i), transforms.Metrics{Events: 1}, "run-1")
		if err := tables[transforms.TableMetrics].add(m); err != nil {
			t.Fatal(err)
		}
		d := transforms.DeadLetter{Stage: transforms.StageValidate, ErrorCode: transforms.CodeBadPlatform,
			ErrorMessage: s, EventID: s, Payload: []byte(s), Source: s, ProcessingTime: 1, PipelineVersion: s}
		if err := tables[transforms.TableDeadLetters].add(transforms.NewDeadLetterRow(d)); err != nil {
			t.Fatal(err)
		}
	}
	for name, f := range tables {
		if err := f.FinishBundle(ctx, func(int64) {}); err != nil {
			t.Fatalf("commit %s: %.300v", name, err)
		}
	}
	queries := map[string]string{
		transforms.TableEvents:      `SELECT event_id, user_id, campaign_id, utm_term, source FROM fact_marketing_events ORDER BY event_timestamp`,
		transforms.TableMetrics:     `SELECT campaign_id FROM fact_campaign_metrics_1m ORDER BY pane_version`,
		transforms.TableDeadLetters: `SELECT error_message, event_id, decode(payload), source, pipeline_version FROM dead_letter_events ORDER BY rowid`,
	}
	db := tables[transforms.TableEvents].wh.DB()
	for name, q := range queries {
		rows := readStrings(t, db, q)
		if len(rows) != len(awkward) {
			t.Errorf("%s: %d rows, want %d", name, len(rows), len(awkward))
		}
		for i, row := range rows[:min(len(rows), len(awkward))] {
			for j, g := range row {
				if !g.Valid {
					t.Errorf("%s row %d column %d: sent %q, read back NULL", name, i, j, awkward[i])
				} else if g.String != awkward[i] {
					t.Errorf("%s row %d column %d: sent %q, read back %q", name, i, j, awkward[i], g.String)
				}
			}
		}
	}
}

// readStrings returns the rows of query, each column read as a string that
// may be null.
func readStrings(t testing.TB, db *sql.DB, query string) [][]sql.NullString {
	t.Helper()
	rows, err := db.Query(query)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var out [][]sql.NullString
	for rows.Next() {
		row := make([]sql.NullString, len(cols))
		dst := make([]any, len(cols))
		for i := range row {
			dst[i] = &row[i]
		}
		if err := rows.Scan(dst...); err != nil {
			t.Fatal(err)
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// insertDeadLetter adds one dead letter to the warehouse and releases it.
func insertDeadLetter(t *testing.T, w *warehouse) {
	t.Helper()
	if _, err := w.DB().Exec(`INSERT INTO dead_letter_events (stage, error_code, error_message, payload, payload_bytes, source, processing_timestamp, pipeline_version)
VALUES ('parse', 'PARSE_EMPTY_PAYLOAD', 'm', '', 0, 'test', now(), 'v')`); err != nil {
		t.Fatal(err)
	}
	if err := w.Release(); err != nil {
		t.Fatal(err)
	}
}

// TestResetWarehouseDeletesOnlyAWarehouse resets a DuckDB warehouse holding
// a row, an empty file and a missing one, and refuses to reset what is not a
// DuckDB database (the input file named by mistake, a short file, a
// directory): each of those is left as it was.
func TestResetWarehouseDeletesOnlyAWarehouse(t *testing.T) {
	dir := t.TempDir()
	wh := filepath.Join(dir, "w.duckdb")
	w, err := OpenWarehouse(wh)
	if err != nil {
		t.Fatal(err)
	}
	insertDeadLetter(t, w)
	empty := filepath.Join(dir, "empty.duckdb")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{wh, empty, filepath.Join(dir, "new.duckdb")} {
		if err := ResetWarehouse(path); err != nil {
			t.Fatalf("reset %s: %v", path, err)
		}
		w, err := OpenWarehouse(path)
		if err != nil {
			t.Fatal(err)
		}
		var n int
		if err := w.DB().QueryRow("SELECT count(*) FROM dead_letter_events").Scan(&n); err != nil || n != 0 {
			t.Errorf("%s after reset: %d rows, %v; want an empty table", path, n, err)
		}
		w.Release()
	}

	// A warehouse named through a symbolic link is emptied where the link
	// points, and the link stays: removing the link made a new file in its
	// place, and the real warehouse kept its old rows, never written again.
	real, link := filepath.Join(dir, "real.duckdb"), filepath.Join(dir, "link.duckdb")
	w, err = OpenWarehouse(real)
	if err != nil {
		t.Fatal(err)
	}
	insertDeadLetter(t, w)
	w.Release()
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	if err := ResetWarehouse(link); err != nil {
		t.Fatalf("reset %s: %v", link, err)
	}
	if st, err := os.Lstat(link); err != nil || st.Mode()&os.ModeSymlink == 0 {
		t.Errorf("after a reset %s is no longer the symbolic link (%v)", link, err)
	}
	w, err = OpenWarehouse(real)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := w.DB().QueryRow("SELECT count(*) FROM dead_letter_events").Scan(&n); err != nil || n != 0 {
		t.Errorf("%s, reset through %s: %d rows, %v; want an empty table", real, link, n, err)
	}
	w.Release()

	input := filepath.Join(dir, "events.jsonl")
	short := filepath.Join(dir, "short")
	files := map[string][]byte{input: []byte(`{"event_id":"e1"}` + "\n"), short: []byte("DUCK")}
	for path, data := range files {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{input, short, sub} {
		err := ResetWarehouse(path)
		if err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("reset %s: error %v, want a refusal naming the file", path, err)
		}
	}
	for path, want := range files {
		if got, err := os.ReadFile(path); err != nil || string(got) != string(want) {
			t.Errorf("%s after a refused reset: %.40q, %v; want it untouched", path, got, err)
		}
	}
	if st, err := os.Stat(sub); err != nil || !st.IsDir() {
		t.Errorf("directory after a refused reset: %v", err)
	}
}

// TestResetRefusesAWarehouseOpenElsewhere: a reset (a run's default) of a
// warehouse another process has open fails and leaves the file alone. It
// deleted the file under that process, which went on writing to the deleted
// file and reported its run ok; its rows were gone when it exited. The other
// process is this test binary again, holding the warehouse until told to go.
func TestResetRefusesAWarehouseOpenElsewhere(t *testing.T) {
	if path := os.Getenv("CP_HOLD_WAREHOUSE"); path != "" {
		w, err := OpenWarehouse(path)
		if err != nil {
			fmt.Println("open:", err)
			os.Exit(1)
		}
		fmt.Println("holding")
		io.Copy(io.Discard, os.Stdin) // until the parent closes stdin
		w.Release()
		os.Exit(0)
	}
	path := filepath.Join(t.TempDir(), "w.duckdb")
	w, err := OpenWarehouse(path)
	if err != nil {
		t.Fatal(err)
	}
	insertDeadLetter(t, w)
	holder := exec.Command(os.Args[0], "-test.run=^TestResetRefusesAWarehouseOpenElsewhere$")
	holder.Env = append(os.Environ(), "CP_HOLD_WAREHOUSE="+path)
	stdin, err := holder.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := holder.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	defer holder.Wait()
	defer stdin.Close()
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "holding\n" {
		t.Fatalf("the holding process said %q (%v)", line, err)
	}
	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	err = ResetWarehouse(path)
	if err == nil || !strings.Contains(err.Error(), "another process") {
		t.Fatalf("reset of a warehouse another process holds: %v, want a refusal", err)
	}
	if after, err := os.Stat(path); err != nil || !os.SameFile(before, after) {
		t.Fatalf("after the refused reset the warehouse file was replaced or removed (%v)", err)
	}
	stdin.Close()
	if err := holder.Wait(); err != nil {
		t.Fatalf("the holding process: %v", err)
	}
	w, err = OpenWarehouse(path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Release()
	var n int
	if err := w.DB().QueryRow("SELECT count(*) FROM dead_letter_events").Scan(&n); err != nil || n != 1 {
		t.Errorf("after the refused reset the warehouse holds %d rows (%v), want its 1", n, err)
	}
}

// TestRunRemovesItsOwnStagingFiles: a bundle that fails before the sink's
// FinishBundle is dropped without Teardown and leaves its staging CSV,
// under this process's id, which removeStaleStaging spares while a run may
// still want it. Once the run is over they go.
func TestRunRemovesItsOwnStagingFiles(t *testing.T) {
	o := testOptions(t, 1_000)
	left := filepath.Join(filepath.Dir(o.Warehouse), stagingPrefix(o.Warehouse, transforms.TableEvents)+strconv.Itoa(os.Getpid())+"-42.csv")
	if err := os.WriteFile(left, []byte("a failed bundle's rows\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := RunLocal(context.Background(), o, true, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(left); !os.IsNotExist(err) {
		t.Errorf("after the run %s is still there (%v)", left, err)
	}
}

// TestOpenWarehouseAddsNewColumns opens a warehouse whose pane table an older
// build created, before run_id: the column is added at the end, a new row
// lands with it, and the old row reads it as null. A table that differs
// otherwise, in a column's name or type, is refused with an error naming it,
// not loaded into.
func TestOpenWarehouseAddsNewColumns(t *testing.T) {
	ctx := context.Background()
	metrics, _ := transforms.TableByName(transforms.TableMetrics)
	if last := metrics.Columns[len(metrics.Columns)-1]; last.Name != "run_id" {
		t.Fatalf("the last column of %s is %s; the test builds the table as it was before run_id", metrics.Name, last.Name)
	}
	old := metrics
	old.Columns = metrics.Columns[:len(metrics.Columns)-1]
	oldWarehouse := func(ddl string, stmts ...string) string {
		t.Helper()
		path := filepath.Join(t.TempDir(), "w.duckdb")
		db, err := sql.Open("duckdb", path)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		for _, stmt := range append([]string{ddl}, stmts...) {
			if _, err := db.Exec(stmt); err != nil {
				t.Fatalf("%s: %v", stmt, err)
			}
		}
		return path
	}

	path := oldWarehouse(DuckDBDDL(old), `INSERT INTO fact_campaign_metrics_1m VALUES ('2026-01-01 00:00', '2026-01-01 00:01',
		'old', 'meta', 'view', 1, 1, 0, 1, 0, NULL, 0, '2026-01-01 00:00', '2026-01-01 00:02')`)
	f := &stagedTable{Path: path, Table: transforms.TableMetrics}
	if err := f.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	defer f.Teardown()
	row := transforms.NewMetricsRow(time.Unix(0, 0), time.Unix(60, 0), "new\x1fmeta\x1fview", 1, transforms.Metrics{Events: 1}, "run-2")
	if err := f.add(row); err != nil {
		t.Fatal(err)
	}
	if err := f.FinishBundle(ctx, func(int64) {}); err != nil {
		t.Fatalf("a pane into the old table: %v", err)
	}
	got := readStrings(t, f.wh.DB(), `SELECT campaign_id, run_id FROM fact_campaign_metrics_1m ORDER BY campaign_id`)
	if len(got) != 2 || got[0][0].String != "new" || got[0][1] != (sql.NullString{String: "run-2", Valid: true}) ||
		got[1][0].String != "old" || got[1][1].Valid {
		t.Errorf("rows (campaign_id, run_id) = %v; want (new, run-2) and (old, null)", got)
	}

	renamed := strings.Replace(DuckDBDDL(old), "pane_version", "pane_index", 1)
	if _, err := OpenWarehouse(oldWarehouse(renamed)); err == nil || !strings.Contains(err.Error(), "table fact_campaign_metrics_1m has the columns") {
		t.Errorf("a pane table with another column: OpenWarehouse gave %v, want an error naming the table's columns", err)
	}
	retyped := strings.Replace(DuckDBDDL(old), "pane_version BIGINT", "pane_version VARCHAR", 1)
	if retyped == DuckDBDDL(old) {
		t.Fatalf("the pane table's DDL has no pane_version BIGINT:\n%s", DuckDBDDL(old))
	}
	if _, err := OpenWarehouse(oldWarehouse(retyped)); err == nil || !strings.Contains(err.Error(), "pane_version VARCHAR") {
		t.Errorf("a pane table with a column of another type: OpenWarehouse gave %v, want an error naming it", err)
	}
}

// TestARunKeepsItsWarehouseOpenWhileItsSinksFail: a sink's bundle that fails
// releases its handle on the warehouse, so that a failed job leaves the file
// unlocked. With every sink instance failing at once, the process closed the
// file mid-run and DuckDB's lock was gone until a retry opened it again:
// another process could reset the warehouse, deleting rows the run had
// committed and acknowledged. Here the only sink with input for the first
// seconds is the event sink (no malformed events, so no dead letter), and it
// fails every bundle for 2 s; the file must stay open in this process from
// the run's start to its end.
func TestARunKeepsItsWarehouseOpenWhileItsSinksFail(t *testing.T) {
	if !PrismRetriesBundles() {
		t.Skip("needs the patched Prism that retries failed bundles: run make test (pipelines/prism)")
	}
	o := testOptions(t, 20_000)
	o.Generator.MalformedRate = 0
	o.FailEventWritesFor = 2 * time.Second
	ResetInjectedFailures()
	var closedAt atomic.Int64      // unix ms of a moment the file was closed during the run
	var failedAtClose atomic.Int64 // how many bundles had failed by then
	started, stop := make(chan struct{}), make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		wasOpen := false
		for {
			select {
			case <-stop:
				return
			default:
			}
			warehouses.Lock()
			open := warehouses.m[o.Warehouse] != nil
			warehouses.Unlock()
			if open && !wasOpen {
				wasOpen = true
				close(started)
			} else if !open && wasOpen && closedAt.Load() == 0 {
				closedAt.Store(time.Now().UnixMilli())
				failedAtClose.Store(InjectedFailures.Load())
			}
			time.Sleep(time.Millisecond)
		}
	}()
	// No reset, which opens and closes the file before the run: the new file
	// is first opened by the run.
	if _, err := RunLocal(context.Background(), o, false, nil); err != nil {
		t.Fatal(err)
	}
	ended := time.Now()
	close(stop)
	<-done
	if n := InjectedFailures.Load(); n == 0 {
		t.Fatal("no bundle of the event sink failed: the injection did not happen")
	}
	select {
	case <-started:
	default:
		t.Fatal("the warehouse was never seen open during the run")
	}
	// The run releases its handle as it returns, so the file closes a moment
	// before ended: only a close well before that was during the run.
	if at := closedAt.Load(); at != 0 && ended.Sub(time.UnixMilli(at)) > 250*time.Millisecond {
		t.Errorf("the warehouse was closed during the run, %s before it ended, after %d event-sink bundles had failed: its lock was gone",
			ended.Sub(time.UnixMilli(at)).Round(time.Millisecond), failedAtClose.Load())
	}
}

// TestARunWritesUnderAPathWithGlobCharacters: the sink loads each bundle
// with COPY … FROM '<staged file>', beside the warehouse, and DuckDB's COPY
// takes a pattern; this DuckDB reads a file that exists under its own name
// first, so a warehouse in a directory named like a pattern is written as
// any other. ('?' is refused up front: the driver reads it as options.)
func TestARunWritesUnderAPathWithGlobCharacters(t *testing.T) {
	o := testOptions(t, 2_000)
	o.Warehouse = filepath.Join(t.TempDir(), "run [1] *", "w[1].duckdb")
	if err := os.MkdirAll(filepath.Dir(o.Warehouse), 0o755); err != nil {
		t.Fatal(err)
	}
	sum, err := RunLocal(context.Background(), o, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	if e := o.Generator.Expected(); sum.Valid != e.Valid || sum.Valid == 0 {
		t.Errorf("the run under %s wrote %d valid events, want the generator's %d", o.Warehouse, sum.Valid, e.Valid)
	}
}
