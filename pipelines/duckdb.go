package pipelines

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/campaignpulse/campaignpulse/transforms"
)

func init() {
	register.DoFn3x1[context.Context, transforms.EventBatch, func(int64), error](&writeEventsDuckDBFn{})
	register.DoFn3x1[context.Context, transforms.MetricsRow, func(int64), error](&writeDuckDBFn[transforms.MetricsRow]{})
	register.DoFn3x1[context.Context, transforms.DeadLetterRow, func(int64), error](&writeDuckDBFn[transforms.DeadLetterRow]{})
	register.Emitter1[int64]()
}

// duckTypes maps the BigQuery types of the schema definition to DuckDB's.
var duckTypes = map[string]string{
	"STRING": "VARCHAR", "INT64": "BIGINT", "FLOAT64": "DOUBLE", "BOOL": "BOOLEAN",
	"BYTES": "BLOB", "TIMESTAMP": "TIMESTAMP", // UTC: DuckDB TIMESTAMP holds no zone, the pipeline writes UTC only
}

// DuckDBDDL returns the CREATE TABLE statement of a table, derived from the
// one schema definition in transforms.
func DuckDBDDL(t transforms.Table) string {
	var b strings.Builder
	fmt.Fprintf(&b, "CREATE TABLE IF NOT EXISTS %s (\n", t.Name)
	for i, c := range t.Columns {
		null := ""
		if c.Mode == "REQUIRED" {
			null = " NOT NULL"
		}
		sep := ","
		if i == len(t.Columns)-1 {
			sep = ""
		}
		fmt.Fprintf(&b, "  %s %s%s%s\n", c.Name, duckTypes[c.Type], null, sep)
	}
	b.WriteString(")")
	return b.String()
}

// addNewColumns evolves a table an older build created to the schema of this
// one, as BigQuery evolves its tables: the columns the schema has added since,
// which go last and are NULLABLE (transforms.MetricsRow), are added at the
// end, where the sink's positional COPY writes them. Any other difference, in
// a column's name, position or type, is an error that says what differs
// rather than a COPY that fails on a column count or loads values into the
// wrong columns.
func addNewColumns(db *sql.DB, t transforms.Table) error {
	rows, err := db.Query(`SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = current_database()
		AND schema_name = 'main' AND table_name = ? ORDER BY column_index`, t.Name)
	if err != nil {
		return err
	}
	var have []string
	for rows.Next() {
		var name, typ string
		if err := rows.Scan(&name, &typ); err != nil {
			rows.Close()
			return err
		}
		have = append(have, name+" "+typ)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	// A column is its name and its type: a column an older build wrote as
	// another type would take this build's values only by DuckDB's implicit
	// casts, or refuse them in the middle of a run.
	want := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		want[i] = c.Name + " " + duckTypes[c.Type]
	}
	added := t.Columns[min(len(have), len(want)):]
	ok := len(have) <= len(want) && slices.Equal(have, want[:len(have)])
	for _, c := range added {
		ok = ok && c.Mode == "NULLABLE"
	}
	if !ok {
		return fmt.Errorf("table %s has the columns (%s); this build's are (%s), and only nullable columns added at the end can be added here: write to a new warehouse, or run with --reset",
			t.Name, strings.Join(have, ", "), strings.Join(want, ", "))
	}
	for _, c := range added {
		if _, err := db.Exec(fmt.Sprintf("ALTER TABLE %s ADD COLUMN %s %s", t.Name, c.Name, duckTypes[c.Type])); err != nil {
			return fmt.Errorf("add column %s.%s: %w", t.Name, c.Name, err)
		}
	}
	return nil
}

// The warehouse is one DuckDB file, and DuckDB lets one process hold a file
// open for writing. Prism runs every worker of a local run in this process, so
// the sinks share one database handle per path, counted by reference.
var warehouses = struct {
	sync.Mutex
	m map[string]*warehouse
}{m: map[string]*warehouse{}}

type warehouse struct {
	path string
	db   *sql.DB
	refs int
}

// OpenWarehouse opens (creating if needed) the DuckDB file at path with every
// pipeline table. Close it with Release.
func OpenWarehouse(path string) (*warehouse, error) {
	warehouses.Lock()
	defer warehouses.Unlock()
	if w := sharedLocked(path); w != nil {
		return w, nil
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
	}
	c, err := duckDBConnector(path)
	if err != nil {
		return nil, fmt.Errorf("open warehouse %s: %w", path, err)
	}
	db := sql.OpenDB(c)
	// Checkpoint (compress and rewrite) every 256 MB of WAL rather than every
	// 16 MB while the pipeline appends; cap DuckDB's buffer pool, which
	// otherwise grows to 80% of the machine's memory beside the pipeline in
	// the same process (a 1M-event run peaked at 2.3 GB RSS without it, 1.7
	// GB at 512 MB, 1.6 GB at 384 MB with the Go heap's limit unchanged);
	// keep insertion order out of the way of DuckDB's parallel CSV load.
	for _, stmt := range []string{"SET checkpoint_threshold = '256MB'", "SET memory_limit = '384MB'", "SET preserve_insertion_order = false"} {
		if _, err := db.Exec(stmt); err != nil {
			db.Close()
			return nil, fmt.Errorf("configure warehouse: %w", err)
		}
	}
	for _, t := range transforms.Tables {
		if _, err := db.Exec(DuckDBDDL(t)); err != nil {
			db.Close()
			return nil, fmt.Errorf("create %s: %w", t.Name, err)
		}
		if err := addNewColumns(db, t); err != nil {
			db.Close()
			return nil, fmt.Errorf("warehouse %s: %w", path, err)
		}
	}
	removeStaleStaging(path, false)
	w := &warehouse{path: path, db: db, refs: 1}
	warehouses.m[path] = w
	return w, nil
}

// stagingPrefix starts the names of the sink's staging files for table
// beside the warehouse at path; the staging process's pid follows it. The
// warehouse's name is in it, so two warehouses can share a directory (make
// run's and make run-streaming's do).
func stagingPrefix(path, table string) string {
	return "." + filepath.Base(path) + "." + table + "-"
}

// removeStaleStaging deletes the staging files of the warehouse at path that
// other processes left: a run killed between staging a bundle and its COPY
// leaves the bundle's CSV behind (a 1M-event run stages up to 150 MB at a
// time), and nothing else would ever remove it. It runs once the file is
// open here, so DuckDB's lock on it says no other process writes to it; a
// file staged by this process may still be wanted and is left alone.
// With mine, it deletes this process's files instead, once a run is over:
// a bundle that failed before the sink's FinishBundle (a later element
// failing in Enrich, a full disk) is dropped by the SDK without Teardown and
// leaves its CSV, and each retry may leave one more.
// Best effort: a file that cannot be removed is left for the next run.
func removeStaleStaging(path string, mine bool) {
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		return
	}
	self := strconv.Itoa(os.Getpid()) + "-"
	var n int
	var size int64
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".csv") {
			continue
		}
		for _, t := range transforms.Tables {
			rest, ok := strings.CutPrefix(name, stagingPrefix(path, t.Name))
			if !ok || strings.HasPrefix(rest, self) != mine {
				continue
			}
			if info, err := e.Info(); err == nil && os.Remove(filepath.Join(filepath.Dir(path), name)) == nil {
				n++
				size += info.Size()
			}
		}
	}
	if n > 0 {
		who := "a killed run"
		if mine {
			who = "failed bundles of this run"
		}
		fmt.Fprintf(os.Stderr, "warehouse %s: removed %d staging file(s) (%.1f MB) that %s left\n", path, n, float64(size)/(1<<20), who)
	}
}

// CheckpointWarehouse writes what a finished run committed into the
// warehouse file itself. Prism never tears the sinks down, so without it the
// process exits with the file open and the run's rows in DuckDB's WAL beside
// it (a 1M-event run: 58 MB of file, 76 MB of WAL): safe, as the next open
// replays the WAL, but the file alone, copied or read by a tool that does
// not know the WAL, would miss them. It reports how long it took to progress
// when that is not nil.
func CheckpointWarehouse(path string, progress io.Writer) error {
	start := time.Now()
	w, err := OpenWarehouse(path)
	if err != nil {
		return err
	}
	defer w.Release()
	if _, err := w.db.Exec("CHECKPOINT"); err != nil {
		return fmt.Errorf("checkpoint warehouse %s: %w", path, err)
	}
	if progress != nil {
		fmt.Fprintf(progress, "warehouse: %s checkpointed in %s\n", path, time.Since(start).Round(time.Millisecond))
	}
	return nil
}

// DB is the shared handle, for queries.
func (w *warehouse) DB() *sql.DB { return w.db }

// Release drops a reference and closes the file with the last one.
// sharedLocked returns this process's open handle on path with one more
// reference (Release it), or nil. warehouses must be locked.
func sharedLocked(path string) *warehouse {
	w := warehouses.m[path]
	if w != nil {
		w.refs++
	}
	return w
}

func (w *warehouse) Release() error {
	warehouses.Lock()
	defer warehouses.Unlock()
	if w.refs--; w.refs > 0 {
		return nil
	}
	delete(warehouses.m, w.path)
	return w.db.Close()
}

// ResetWarehouse empties the pipeline's tables, for a run that starts clean.
// Everything else in the file is dbt's, rebuilt from these tables by the
// next `dbt build`, so when no one has it open it simply starts a new file:
// dropping a table of millions of rows costs DuckDB seconds.
func ResetWarehouse(path string) error {
	warehouses.Lock()
	inUse := warehouses.m[path] != nil
	warehouses.Unlock()
	if !inUse {
		if err := checkReplaceable(path); err != nil {
			return err
		}
		// Through a symbolic link, the file it names goes (removing the link
		// would leave that file, rows and all, and start another in its
		// place), and the WAL beside either name.
		target := path
		if t, err := filepath.EvalSymlinks(path); err == nil {
			target = t
		}
		for _, f := range []string{target, target + ".wal", path + ".wal"} {
			if err := os.Remove(f); err != nil && !os.IsNotExist(err) {
				return err
			}
		}
	}
	w, err := OpenWarehouse(path)
	if err != nil {
		return err
	}
	defer w.Release()
	for _, t := range transforms.Tables {
		if _, err := w.db.Exec("DROP TABLE IF EXISTS " + t.Name); err != nil {
			return err
		}
		if _, err := w.db.Exec(DuckDBDDL(t)); err != nil {
			return err
		}
	}
	return nil
}

// checkNotOpenElsewhere fails when another process has the DuckDB database
// at path open (a running pipeline, dbt, a notebook): DuckDB's lock refuses
// this process. Without it a reset deleted the file under that process,
// which went on writing to the deleted file and reported its run ok; its rows
// were gone when it exited, and the lock meant to keep a second writer out
// never came into play, since the reset's new file had none.
func checkNotOpenElsewhere(path string) error {
	c, err := duckDBConnector(path)
	if err == nil {
		db := sql.OpenDB(c)
		err = db.Ping()
		if cerr := db.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return fmt.Errorf("warehouse %s: cannot start a new run in it, is another process using it? (%w)", path, err)
	}
	return nil
}

// duckDBMagic is what a DuckDB database file holds at byte 8, after its
// main header's checksum.
var duckDBMagic = []byte("DUCK")

// checkReplaceable fails unless path is missing, empty or a DuckDB database
// no other process has open: ResetWarehouse deletes the file to start a new
// one, and a --warehouse that names the input file, a directory or anything
// else by mistake must not delete it, nor a warehouse in use.
func checkReplaceable(path string) error {
	st, head, err := statHead(path, 12)
	if os.IsNotExist(err) {
		return nil
	} else if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file: name the DuckDB file to write", path)
	}
	if st.Size() == 0 {
		return nil
	}
	if len(head) < 12 || !bytes.Equal(head[8:], duckDBMagic) {
		return fmt.Errorf("%s exists and is not a DuckDB database: a reset would delete it (name another file, or move it away)", path)
	}
	return checkNotOpenElsewhere(path)
}

// WriteDuckDB appends the rows of one table to the warehouse and returns the
// number of rows each bundle committed. Several collections of rows get a
// writer each, so they write in parallel.
//
// A bundle's rows are staged as CSV in a file beside the warehouse and loaded
// with one COPY in FinishBundle: one statement and one transaction a bundle,
// parsed by DuckDB's parallel CSV reader, instead of a cgo call per value
// through the appender (measured: 6 µs a row for the 22 columns of
// fact_marketing_events). The bundle's rows land together or not at all.
func WriteDuckDB[T any](s beam.Scope, path string, rows ...beam.PCollection) beam.PCollection {
	var zero T
	t, ok := tableOf(zero)
	if !ok {
		panic(fmt.Sprintf("WriteDuckDB: %T is not a warehouse row type", zero))
	}
	s = s.Scope("WriteDuckDB." + t.Name)
	var counts []beam.PCollection
	for _, r := range rows {
		counts = append(counts, beam.ParDo(s, &writeDuckDBFn[T]{stagedTable: stagedTable{Path: path, Table: t.Name}}, r))
	}
	return flatten(s, counts)
}

// WriteEventsDuckDB writes batches of valid events (EventBatch) to
// fact_marketing_events, one row an event, the same way as WriteDuckDB.
// failFor > 0 injects failures (see faults.go); 0 in every real run.
func WriteEventsDuckDB(s beam.Scope, path string, failFor time.Duration, batches ...beam.PCollection) beam.PCollection {
	s = s.Scope("WriteDuckDB." + transforms.TableEvents)
	var counts []beam.PCollection
	for _, b := range batches {
		counts = append(counts, beam.ParDo(s, &writeEventsDuckDBFn{
			stagedTable: stagedTable{Path: path, Table: transforms.TableEvents}, FailFor: failFor}, b))
	}
	return flatten(s, counts)
}

func tableOf(row any) (transforms.Table, bool) {
	for _, t := range transforms.Tables {
		if t.Row == reflect.TypeOf(row) {
			return t, true
		}
	}
	return transforms.Table{}, false
}

// writeDuckDBFn writes rows of one table type.
type writeDuckDBFn[T any] struct{ stagedTable }

func (f *writeDuckDBFn[T]) ProcessElement(ctx context.Context, row T, _ func(int64)) error {
	if err := f.add(row); err != nil {
		return err
	}
	f.settle = transforms.AppendDelivery(f.settle, deliveryOf(row))
	return nil
}

// deliveryOf is the source delivery a warehouse row settles once it is
// written (transforms.Settle): a dead letter's; a pane row aggregates many
// events, each settled by its own event row, and has none.
func deliveryOf(row any) uint64 {
	if d, ok := row.(transforms.DeadLetterRow); ok {
		return d.Delivery
	}
	return 0
}

// writeEventsDuckDBFn writes the event-grain rows of event batches. In a
// streaming run it also records each row's freshness once it is committed.
type writeEventsDuckDBFn struct {
	stagedTable
	FailFor time.Duration // fail every bundle for this long (tests; faults.go)

	published []int64 // publish times of the staged rows, when Freshness is on
}

func (f *writeEventsDuckDBFn) ProcessElement(ctx context.Context, b transforms.EventBatch, _ func(int64)) error {
	record := Freshness.enabled()
	processedAt := time.Now()
	for i := range b.Events {
		if err := f.addEvent(&b.Events[i], processedAt); err != nil {
			return err
		}
		if record {
			f.published = append(f.published, b.Events[i].IngestTime)
		}
	}
	return nil
}

func (f *writeEventsDuckDBFn) FinishBundle(ctx context.Context, emit func(int64)) error {
	published := f.published
	f.published = f.published[:0]
	if f.FailFor > 0 && f.staging != nil && injectFailure(f.FailFor) {
		// Fail as a real commit failure does (stagedTable.FinishBundle):
		// the staging file and the warehouse released, nothing committed.
		n := f.n
		f.Teardown()
		f.staging, f.wh = nil, nil
		return errInjectedFailure(f.FailFor, n)
	}
	if err := f.stagedTable.FinishBundle(ctx, emit); err != nil {
		return err
	}
	now := time.Now()
	for _, t := range published {
		Freshness.record(now, t)
	}
	return nil
}

// stagedTable stages a bundle's rows of one table as CSV and loads them with
// one COPY at the end of the bundle. It emits the number of rows it
// committed: besides telling what was written, the output keeps released
// Prism (Beam v2.77.0) from treating the sink as a stage without outputs,
// for which its bundle loop spins a core until the bundle ends (the Prism
// that make builds does not spin: fix 10 in pipelines/prism/README.md).
type stagedTable struct {
	Path  string
	Table string

	wh       *warehouse
	table    transforms.Table
	staging  *os.File
	w        *bufio.Writer
	vals     []any
	n        int64
	longest  int      // bytes of the longest staged row (see FinishBundle)
	settle   []uint64 // the staged rows' deliveries, settled once committed (transforms.Settle)
	progress *atomic.Int64
}

func (f *stagedTable) Setup(ctx context.Context) error {
	t, ok := transforms.TableByName(f.Table)
	if !ok {
		return fmt.Errorf("unknown table %q", f.Table)
	}
	f.table = t
	switch f.Table {
	case transforms.TableEvents:
		f.progress = &Progress.Events
	case transforms.TableMetrics:
		f.progress = &Progress.Panes
	default:
		f.progress = &Progress.DeadLetters
	}
	wh, err := OpenWarehouse(f.Path)
	if err != nil {
		return err
	}
	f.wh = wh
	return nil
}

func (f *stagedTable) add(row any) error {
	if err := f.stage(); err != nil {
		return err
	}
	f.vals = f.table.Values(row, f.vals)
	f.n++
	b := appendCSVRow(f.w.AvailableBuffer(), f.vals)
	f.longest = max(f.longest, len(b))
	_, err := f.w.Write(b)
	return err
}

// addEvent stages the fact_marketing_events row of ev (see appendEventRowCSV).
func (f *stagedTable) addEvent(ev *transforms.Event, processedAt time.Time) error {
	if err := f.stage(); err != nil {
		return err
	}
	f.settle = transforms.AppendDelivery(f.settle, ev.Delivery)
	f.n++
	b := appendEventRowCSV(f.w.AvailableBuffer(), ev, processedAt)
	f.longest = max(f.longest, len(b))
	_, err := f.w.Write(b)
	return err
}

// stage opens the bundle's staging file if it is not open yet.
func (f *stagedTable) stage() error {
	if f.staging == nil {
		file, err := os.CreateTemp(filepath.Dir(f.Path), stagingPrefix(f.Path, f.Table)+strconv.Itoa(os.Getpid())+"-*.csv")
		if err != nil {
			return fmt.Errorf("stage rows for %s: %w", f.Table, err)
		}
		f.staging, f.n, f.longest = file, 0, 0
		f.settle = f.settle[:0] // a failed bundle's
		if f.w == nil {
			f.w = bufio.NewWriterSize(file, 1<<20)
		} else {
			f.w.Reset(file)
		}
	}
	return nil
}

func (f *stagedTable) FinishBundle(ctx context.Context, emit func(int64)) error {
	if f.staging == nil {
		return nil
	}
	name := f.staging.Name()
	defer os.Remove(name)
	err := f.w.Flush()
	if cerr := f.staging.Close(); err == nil {
		err = cerr
	}
	f.staging = nil
	if err == nil && f.wh == nil { // released by a failed bundle
		f.wh, err = OpenWarehouse(f.Path)
	}
	if err == nil {
		// DuckDB's CSV reader refuses a line longer than MAX_LINE_SIZE
		// (2 MB unless told), and a dead letter keeps its payload whole:
		// Pub/Sub allows 10 MB messages, a file's line may be longer,
		// and a byte may be staged as 4 (appendBlob). Past the default, raise
		// the limit to the longest row and the read buffer with it
		// (DuckDB's default buffer, 16 lines of the limit, would not fit
		// in the warehouse's memory_limit).
		long := ""
		if f.longest >= duckDBMaxLineSize {
			long = fmt.Sprintf(", MAX_LINE_SIZE %d, BUFFER_SIZE %d", f.longest+1, max(16*duckDBMaxLineSize, f.longest+1))
		}
		// Every string is quoted and may hold anything: ALLOW_QUOTED_NULLS
		// false, or DuckDB would read the quoted string "\N" (a valid
		// event id) as a null; NEW_LINE '\n', or it would take the line
		// ending from the first row and read a quoted carriage return
		// there as one.
		_, err = f.wh.db.ExecContext(ctx, fmt.Sprintf(
			`COPY %s FROM '%s' (FORMAT csv, HEADER false, NULLSTR '\N', ALLOW_QUOTED_NULLS false, NEW_LINE '\n', QUOTE '"', ESCAPE '"', AUTO_DETECT false%s)`,
			f.Table, strings.ReplaceAll(name, "'", "''"), long))
	}
	if err != nil {
		// The SDK drops a DoFn whose bundle failed without tearing it
		// down, and the runner retries the bundle with a new one: release
		// the warehouse, or the process keeps the DuckDB file open (and
		// locked against dbt) after the run.
		if f.wh != nil {
			f.wh.Release()
			f.wh = nil
		}
		return fmt.Errorf("commit %d rows to %s: %w", f.n, f.Table, err)
	}
	f.progress.Add(f.n)
	// The rows are durable: their sources may forget them.
	transforms.Settle(f.settle)
	f.settle = f.settle[:0]
	emit(f.n)
	return nil
}

func (f *stagedTable) Teardown() error {
	if f.staging != nil {
		f.staging.Close()
		os.Remove(f.staging.Name())
	}
	if f.wh != nil {
		return f.wh.Release()
	}
	return nil
}

// duckDBMaxLineSize is the default MAX_LINE_SIZE of DuckDB's CSV reader.
const duckDBMaxLineSize = 2 << 20

// appendCSVRow formats one row for DuckDB's CSV reader: strings always
// quoted (so an empty string differs from the \N of a null), timestamps in
// UTC ISO 8601, bytes as DuckDB's BLOB cast reads them (appendBlob).
func appendCSVRow(b []byte, vals []any) []byte {
	for i, v := range vals {
		if i > 0 {
			b = append(b, ',')
		}
		switch x := v.(type) {
		case nil:
			b = append(b, `\N`...)
		case string:
			b = appendQuoted(b, x)
		case int64:
			b = strconv.AppendInt(b, x, 10)
		case float64:
			b = strconv.AppendFloat(b, x, 'g', -1, 64)
		case bool:
			b = strconv.AppendBool(b, x)
		case time.Time:
			b = appendTimestamp(b, x)
		case []byte:
			b = appendBlob(b, x)
		default:
			panic(fmt.Sprintf("appendCSVRow: unsupported %T", v))
		}
	}
	return append(b, '\n')
}

// appendBlob writes x quoted as DuckDB's VARCHAR-to-BLOB cast reads it back
// byte for byte: printable ASCII as itself, every other byte, the backslash
// (which starts an escape) and the quote (which would end the CSV field) as
// \xHH. Payloads are mostly JSON, so a dead letter's bytes are staged about
// once instead of four times (BenchmarkDeadLetterSink, the generator's 64 KiB
// oversize events, alternating runs: 118-132 MB/s into the warehouse against
// 83-92 MB/s with every byte escaped).
func appendBlob(b []byte, x []byte) []byte {
	b = append(b, '"')
	for len(x) > 0 {
		i := 0
		for i < len(x) && x[i] >= 0x20 && x[i] < 0x7f && x[i] != '\\' && x[i] != '"' {
			i++
		}
		b = append(b, x[:i]...)
		if i == len(x) {
			break
		}
		c := x[i]
		b = append(b, '\\', 'x', hexDigits[c>>4], hexDigits[c&15])
		x = x[i+1:]
	}
	return append(b, '"')
}

// appendEventRowCSV writes the fact_marketing_events row of ev, processed at
// processedAt, byte for byte as appendCSVRow writes the values of
// NewEventRow(ev), without building that row: NewEventRow allocates a
// pointer for each of its 25 nullable columns and Table.Values boxes every
// value, which made the event sink the largest cost of an enriched run after
// DuckDB's own COPY (measured with bench --cpuprofile: 4.0 s of 46 s of CPU
// for 1M events). TestEventRowCSVMatchesTheSchema holds the two to the same
// bytes over generated, enriched and edge-case events, so a column added to
// EventRow and not here fails the tests.
func appendEventRowCSV(b []byte, ev *transforms.Event, processedAt time.Time) []byte {
	b = appendQuoted(b, ev.EventID)
	b = appendQuoted(append(b, ','), ev.EventType)
	b = appendMillis(append(b, ','), ev.EventTime)
	b = appendMillis(append(b, ','), ev.IngestTime)
	b = appendMillis(append(b, ','), transforms.WindowStart(ev.EventTime, transforms.DefaultWindowConfig.Size.Milliseconds()))
	b = appendQuoted(append(b, ','), ev.UserID)
	b = appendQuoted(append(b, ','), ev.CampaignID)
	b = appendQuoted(append(b, ','), ev.Platform)
	b = appendOptString(append(b, ','), ev.AdID)
	b = appendOptFloat(append(b, ','), ev.HasEngagementScore, ev.EngagementScore)
	b = appendOptFloat(append(b, ','), ev.HasConversionValue, ev.ConversionValue)
	for _, s := range [...]string{ev.Currency, ev.UTMSource, ev.UTMMedium, ev.UTMCampaign, ev.UTMTerm, ev.UTMContent} {
		b = appendOptString(append(b, ','), s)
	}
	b = appendQuoted(append(b, ','), ev.SchemaVersion)
	b = strconv.AppendBool(append(b, ','), ev.Late)
	b = strconv.AppendBool(append(b, ','), ev.TooLate)
	b = appendQuoted(append(b, ','), ev.Source)
	b = appendTimestamp(append(b, ','), processedAt)
	x := ev.Enrichment
	b = appendQuoted(append(b, ','), x.StatusOrDisabled())
	if !x.Enriched() {
		// user_found ... campaign_end: 13 nulls.
		return append(b, `,\N,\N,\N,\N,\N,\N,\N,\N,\N,\N,\N,\N,\N`+"\n"...)
	}
	b = strconv.AppendBool(append(b, ','), x.UserFound)
	b = appendOrUnknown(append(b, ','), x.UserFound, x.UserSegment)
	b = appendOrUnknown(append(b, ','), x.UserFound, x.UserCountry)
	b = appendOptFloat(append(b, ','), x.UserFound, x.UserLifetimeValue)
	b = appendOptMillis(append(b, ','), x.UserFound, x.UserFirstSeen)
	b = strconv.AppendBool(append(b, ','), x.CampaignFound)
	for _, s := range [...]string{x.CampaignName, x.CampaignObjective, x.CampaignChannel, x.Advertiser} {
		b = appendOrUnknown(append(b, ','), x.CampaignFound, s)
	}
	b = appendOptFloat(append(b, ','), x.CampaignFound, x.CampaignDailyBudget)
	b = appendOptMillis(append(b, ','), x.CampaignFound, x.CampaignStart)
	b = appendOptMillis(append(b, ','), x.CampaignFound, x.CampaignEnd)
	return append(b, '\n')
}

// The column rules of NewEventRow, one value at a time.

func appendOptString(b []byte, s string) []byte { // optString: "" is null
	if s == "" {
		return append(b, `\N`...)
	}
	return appendQuoted(b, s)
}

func appendOptFloat(b []byte, has bool, v float64) []byte {
	if !has {
		return append(b, `\N`...)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}

func appendOrUnknown(b []byte, found bool, s string) []byte {
	if !found || s == "" {
		s = transforms.Unknown
	}
	return appendQuoted(b, s)
}

func appendOptMillis(b []byte, found bool, t int64) []byte { // 0 is null
	if !found || t == 0 {
		return append(b, `\N`...)
	}
	return appendMillis(b, t)
}

func appendMillis(b []byte, t int64) []byte { return appendTimestamp(b, time.UnixMilli(t)) }

const hexDigits = "0123456789ABCDEF"

// appendTimestamp writes t in UTC as "2006-01-02 15:04:05.000000", the
// form DuckDB's TIMESTAMP reads; about four times faster than t.AppendFormat,
// which matters at one call per timestamp column per row.
func appendTimestamp(b []byte, t time.Time) []byte {
	t = t.UTC()
	y, mo, d := t.Date()
	h, mi, sec := t.Clock()
	b = appendDigits(b, y, 4)
	b = append(b, '-')
	b = appendDigits(b, int(mo), 2)
	b = append(b, '-')
	b = appendDigits(b, d, 2)
	b = append(b, ' ')
	b = appendDigits(b, h, 2)
	b = append(b, ':')
	b = appendDigits(b, mi, 2)
	b = append(b, ':')
	b = appendDigits(b, sec, 2)
	b = append(b, '.')
	return appendDigits(b, t.Nanosecond()/1000, 6)
}

func appendDigits(b []byte, v, width int) []byte {
	var tmp [10]byte
	i := len(tmp)
	for ; width > 0 || v > 0; width-- {
		i--
		tmp[i] = byte('0' + v%10)
		v /= 10
	}
	return append(b, tmp[i:]...)
}

func appendQuoted(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' {
			b = append(b, '"')
		}
		b = append(b, s[i])
	}
	return append(b, '"')
}
