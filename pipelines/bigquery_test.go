package pipelines

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"
	"cloud.google.com/go/bigquery/storage/apiv1/storagepb"
	"cloud.google.com/go/bigquery/storage/managedwriter/adapt"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/metrics"
	"github.com/campaignpulse/campaignpulse/transforms"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

func ptr[T any](v T) *T { return &v }

// sampleRows has, per table, a row with every nullable column set and one
// with every nullable column null. Timestamps carry nanoseconds, which
// BigQuery (microseconds) drops.
func sampleRows() map[string][]any {
	ts := time.Date(2026, 11, 22, 10, 15, 30, 123456789, time.UTC)
	ev := transforms.EventRow{
		EventID: "e1", EventType: "conversion", EventTimestamp: ts, IngestTimestamp: ts.Add(time.Second), WindowStart: ts.Truncate(time.Minute),
		UserID: "usr_000001", CampaignID: "cmp_0001", Platform: "meta", AdID: ptr("ad_1"), EngagementScore: ptr(12.5),
		ConversionValue: ptr(19.99), Currency: ptr("EUR"), UTMSource: ptr("meta"), UTMMedium: ptr("paid_social"),
		UTMCampaign: ptr("cmp_0001"), UTMTerm: ptr("shoes"), UTMContent: ptr(`quote " and ünïcode`), SchemaVersion: "1.1",
		IsLate: true, Source: "pubsub", ProcessedAt: ts.Add(2 * time.Second), EnrichmentStatus: "enriched",
		UserFound: ptr(true), UserSegment: ptr("loyal"), UserCountry: ptr("DE"), UserLifetimeValue: ptr(1234.5),
		UserFirstSeen: ptr(ts.AddDate(-1, 0, 0)), CampaignFound: ptr(false), CampaignName: ptr("unknown"),
		CampaignObjective: ptr("unknown"), CampaignChannel: ptr("unknown"), Advertiser: ptr("unknown"),
		CampaignDailyBudget: ptr(0.0), CampaignStart: ptr(ts.AddDate(0, -1, 0)), CampaignEnd: ptr(ts.AddDate(0, 1, 0)),
	}
	evNull := transforms.EventRow{EventID: "e2", EventType: "view", EventTimestamp: ts, IngestTimestamp: ts, WindowStart: ts,
		UserID: "u", CampaignID: "c", Platform: "x", SchemaVersion: "1.0", Source: "generator", ProcessedAt: ts, EnrichmentStatus: "disabled"}
	m := transforms.MetricsRow{WindowStart: ts.Truncate(time.Minute), WindowEnd: ts.Truncate(time.Minute).Add(time.Minute),
		CampaignID: "cmp_0001", Platform: "meta", EventType: "view", PaneVersion: 3, Events: 42, LateEvents: 2, UniqueUsers: 40,
		ConversionValue: 0, Currency: ptr("MIXED"), EngagementScoreSum: 1.25, MaxIngestTimestamp: ts, EmittedAt: ts}
	mNull := m
	mNull.Currency = nil
	dl := transforms.DeadLetterRow{Stage: "parse", ErrorCode: "PARSE_INVALID_UTF8", ErrorMessage: "bad", EventID: ptr("e3"),
		Payload: []byte("ad\xff\xfe\x00"), PayloadBytes: 5, Source: "pubsub", PublishTimestamp: ptr(ts),
		ProcessingTimestamp: ts, PipelineVersion: "v1"}
	dlNull := dl
	dlNull.EventID, dlNull.PublishTimestamp, dlNull.Payload, dlNull.PayloadBytes = nil, nil, []byte{}, 0
	return map[string][]any{
		transforms.TableEvents:      {ev, evNull},
		transforms.TableMetrics:     {m, mNull},
		transforms.TableDeadLetters: {dl, dlNull},
	}
}

// TestRowEncoderRoundTrip encodes every sample row of every table and reads
// it back: the same values (timestamps to the microsecond, UTC), nulls as
// absent fields.
func TestRowEncoderRoundTrip(t *testing.T) {
	samples := sampleRows()
	for _, table := range transforms.Tables {
		enc, err := NewRowEncoder(table)
		if err != nil {
			t.Fatal(err)
		}
		rows := samples[table.Name]
		if len(rows) == 0 {
			t.Fatalf("no sample rows for %s", table.Name)
		}
		for _, row := range rows {
			b, err := enc.Encode(row)
			if err != nil {
				t.Fatalf("%s: %v", table.Name, err)
			}
			got, err := enc.Decode(b)
			if err != nil {
				t.Fatal(err)
			}
			want := table.Values(row, nil)
			for i, w := range want {
				if ts, ok := w.(time.Time); ok {
					want[i] = ts.Truncate(time.Microsecond)
				}
			}
			if !reflect.DeepEqual(got, want) {
				for i := range want {
					if !reflect.DeepEqual(got[i], want[i]) {
						t.Errorf("%s.%s: got %#v, want %#v", table.Name, table.Columns[i].Name, got[i], want[i])
					}
				}
			}
		}
	}
}

// TestRowEncoderWireFormat checks the encoding against BigQuery's rules
// directly on the message: TIMESTAMP is int64 microseconds since the epoch,
// a null is an absent field (not a zero value), REQUIRED columns are
// required proto2 fields and NULLABLE ones optional.
func TestRowEncoderWireFormat(t *testing.T) {
	table, _ := transforms.TableByName(transforms.TableEvents)
	enc, err := NewRowEncoder(table)
	if err != nil {
		t.Fatal(err)
	}
	row := sampleRows()[transforms.TableEvents][1].(transforms.EventRow) // nullable columns null
	b, err := enc.Encode(row)
	if err != nil {
		t.Fatal(err)
	}
	m := dynamicpb.NewMessage(enc.desc)
	if err := proto.Unmarshal(b, m); err != nil {
		t.Fatal(err)
	}
	fields := m.Descriptor().Fields()
	if got, want := m.Get(fields.ByName("event_timestamp")).Int(), row.EventTimestamp.UnixMicro(); got != want {
		t.Errorf("event_timestamp = %d, want %d µs", got, want)
	}
	for _, c := range table.Columns {
		f := fields.ByName(protoreflect.Name(c.Name))
		if c.Mode == "NULLABLE" && m.Has(f) {
			t.Errorf("%s is null in the row but present in the message", c.Name)
		}
		if c.Mode == "REQUIRED" && f.Cardinality() != protoreflect.Required {
			t.Errorf("%s is REQUIRED but its field is %v", c.Name, f.Cardinality())
		}
		if c.Mode == "NULLABLE" && f.Cardinality() != protoreflect.Optional {
			t.Errorf("%s is NULLABLE but its field is %v", c.Name, f.Cardinality())
		}
	}
	// The descriptor the stream is opened with is self-contained and names
	// every column once.
	dp := enc.Descriptor()
	if len(dp.GetField()) != len(table.Columns) {
		t.Errorf("descriptor has %d fields for %d columns", len(dp.GetField()), len(table.Columns))
	}
	for _, f := range dp.GetField() {
		if f.GetName() == "event_timestamp" && f.GetType() != descriptorpb.FieldDescriptorProto_TYPE_INT64 {
			t.Errorf("event_timestamp has type %v, want INT64 (micros)", f.GetType())
		}
	}
}

// fakeAppender plays BigQuery's part: it refuses the rows for which refuse
// returns true, and, as BigQuery does, then writes none of the batch.
type fakeAppender struct {
	refuse  func(row []byte, index int) bool
	err     error
	calls   int
	written [][]byte
	sizes   []int
	bytes   []int // bytes of each request's rows
}

func (a *fakeAppender) Append(ctx context.Context, rows [][]byte) ([]*storagepb.RowError, error) {
	a.calls++
	a.sizes = append(a.sizes, len(rows))
	n := 0
	for _, r := range rows {
		n += len(r)
	}
	a.bytes = append(a.bytes, n)
	if a.err != nil {
		return nil, a.err
	}
	var errs []*storagepb.RowError
	for i, r := range rows {
		if a.refuse != nil && a.refuse(r, i) {
			errs = append(errs, &storagepb.RowError{Index: int64(i), Code: storagepb.RowError_FIELDS_ERROR, Message: "field value out of range"})
		}
	}
	if len(errs) == 0 {
		a.written = append(a.written, rows...)
	}
	return errs, nil
}

func TestAppendWithRejects(t *testing.T) {
	rows := [][]byte{[]byte("a"), []byte("BAD1"), []byte("c"), []byte("BAD2"), []byte("e")}
	bad := func(r []byte, _ int) bool { return bytes.HasPrefix(r, []byte("BAD")) }

	t.Run("refused rows are returned, the rest written on the second attempt", func(t *testing.T) {
		a := &fakeAppender{refuse: bad}
		rejected, err := appendWithRejects(context.Background(), a, rows)
		if err != nil {
			t.Fatal(err)
		}
		if len(rejected) != 2 || !strings.Contains(rejected[1], "field value out of range") || rejected[3] == "" {
			t.Errorf("rejected = %v, want rows 1 and 3 with BigQuery's message", rejected)
		}
		if got := string(bytes.Join(a.written, nil)); got != "ace" || a.calls != 2 {
			t.Errorf("written %q in %d calls, want \"ace\" in 2", got, a.calls)
		}
	})
	t.Run("nothing refused: one call", func(t *testing.T) {
		a := &fakeAppender{}
		rejected, err := appendWithRejects(context.Background(), a, rows)
		if err != nil || len(rejected) != 0 || a.calls != 1 || len(a.written) != len(rows) {
			t.Errorf("rejected=%v err=%v calls=%d written=%d", rejected, err, a.calls, len(a.written))
		}
	})
	t.Run("each refused row is one BigQuery refused, however many requests that takes", func(t *testing.T) {
		// Each request refuses the first row it is sent. Every re-send is
		// a row shorter, so this ends; no row is dead-lettered that
		// BigQuery did not refuse.
		a := &fakeAppender{refuse: func(_ []byte, index int) bool { return index == 0 }}
		rejected, err := appendWithRejects(context.Background(), a, rows)
		if err != nil {
			t.Fatal(err)
		}
		if a.calls != len(rows) || len(rejected) != len(rows) || len(a.written) != 0 {
			t.Errorf("calls=%d rejected=%d written=%d, want %d calls and every row refused", a.calls, len(rejected), len(a.written), len(rows))
		}
		for i, msg := range rejected {
			if !strings.Contains(msg, "field value out of range") {
				t.Errorf("row %d: %q, want BigQuery's message", i, msg)
			}
		}
	})
	t.Run("request errors fail the bundle", func(t *testing.T) {
		a := &fakeAppender{err: errors.New("PERMISSION_DENIED")}
		if _, err := appendWithRejects(context.Background(), a, rows); err == nil {
			t.Error("no error")
		}
	})
}

// TestWriteBigQueryFnDeadLetters runs the sink DoFn's bundle methods against
// the fake: a bundle is sent in batches of MaxBatchBytes, a refused row
// becomes a dead letter (stage sink, SINK_REJECTED) with BigQuery's message,
// the event id and the row as JSON, and the bundle reports the rows written.
func TestWriteBigQueryFnDeadLetters(t *testing.T) {
	ctx := metrics.SetPTransformID(metrics.SetBundleID(context.Background(), "bundle"), "sink")
	a := &fakeAppender{refuse: func(r []byte, _ int) bool { return bytes.Contains(r, []byte("evil")) }}
	f := &writeBigQueryFn[transforms.EventRow]{Project: "p", Dataset: "d", Table: transforms.TableEvents, MaxBatchBytes: 1500, appender: a}
	if err := f.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	base := sampleRows()[transforms.TableEvents][0].(transforms.EventRow)
	var dead []transforms.DeadLetterRow
	var counts []int64
	emit := func(n int64) { counts = append(counts, n) }
	reject := func(d transforms.DeadLetterRow) { dead = append(dead, d) }
	for i := 0; i < 10; i++ {
		r := base
		r.EventID = "e" + string(rune('0'+i))
		if i == 7 {
			r.EventID = "evil"
		}
		if err := f.ProcessElement(ctx, r, emit, reject); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.FinishBundle(ctx, emit, reject); err != nil {
		t.Fatal(err)
	}
	if len(a.sizes) < 3 {
		t.Errorf("batches of %v rows: want several under MaxBatchBytes", a.sizes)
	}
	if len(counts) != 1 || counts[0] != 9 || len(a.written) != 9 {
		t.Errorf("counts %v, written %d: want 9", counts, len(a.written))
	}
	if len(dead) != 1 {
		t.Fatalf("%d dead letters, want 1", len(dead))
	}
	d := dead[0]
	if d.Stage != transforms.StageSink || d.ErrorCode != transforms.CodeSinkRejected || d.EventID == nil || *d.EventID != "evil" ||
		!strings.Contains(d.ErrorMessage, "field value out of range") || d.PayloadBytes != int64(len(d.Payload)) {
		t.Errorf("dead letter %+v", d)
	}
	var payload map[string]any
	if err := json.Unmarshal(d.Payload, &payload); err != nil {
		t.Fatalf("payload is not JSON: %v\n%s", err, d.Payload)
	}
	if payload["event_id"] != "evil" || payload["event_timestamp"] != "2026-11-22T10:15:30.123456Z" || payload["utm_content"] != `quote " and ünïcode` {
		t.Errorf("payload %s", d.Payload)
	}
	// The refused row is the event: a replay of the payload is valid, and
	// the same event (dbt names the record by event_timestamp or timestamp).
	ev, rej := transforms.Parse(transforms.Message{Data: d.Payload}, len(d.Payload)+1)
	if rej == nil {
		rej = transforms.Validate(&ev, base.IngestTimestamp.UnixMilli(), transforms.ValidateConfig{MaxFutureSkew: transforms.DefaultMaxFutureSkew})
	}
	if rej != nil || ev.EventID != "evil" || ev.EventType != base.EventType || ev.CampaignID != base.CampaignID ||
		!ev.HasConversionValue || ev.ConversionValue != *base.ConversionValue || payload["timestamp"] != payload["event_timestamp"] {
		t.Errorf("the refused row's payload replays as %+v, rejected %v; want the event it was", ev, rej)
	}
	if _, ok := transforms.ErrorCodes[d.ErrorCode]; !ok {
		t.Errorf("%s is not a documented error code", d.ErrorCode)
	}
	var counted, rowsWritten int64
	if err := (metrics.Extractor{SumInt64: func(l metrics.Labels, v int64) {
		switch l.Name() {
		case transforms.CounterDeadLetterSink:
			counted += v
		case CounterRowsWrittenPrefix + transforms.TableEvents:
			rowsWritten += v
		}
	}}).ExtractFrom(metrics.GetStore(ctx)); err != nil {
		t.Fatal(err)
	}
	if counted != 1 {
		t.Errorf("%s counted %d refused rows, want 1 (the dead-letter alert reads it)", transforms.CounterDeadLetterSink, counted)
	}
	if rowsWritten != 9 {
		t.Errorf("%s%s counted %d rows, want the 9 written", CounterRowsWrittenPrefix, transforms.TableEvents, rowsWritten)
	}
}

// TestUnwritableDeadLetterLogFits: the log line of a dead letter BigQuery
// refused stays under Cloud Logging's 256 KiB an entry, which the row of a
// dead letter with a 1 MiB payload is not, and says how much it cut.
func TestUnwritableDeadLetterLogFits(t *testing.T) {
	row := transforms.NewDeadLetterRow(transforms.DeadLetter{Stage: transforms.StageSink, ErrorCode: transforms.CodeSinkRejected,
		ErrorMessage: "BigQuery refused the row", Payload: bytes.Repeat([]byte{'x'}, 1400<<10), ProcessingTime: 1})
	msg := unwritableMessage(row)
	if len(msg) > 200<<10 || !strings.Contains(msg, fmt.Sprintf("of %d bytes", 1400<<10)) {
		t.Errorf("log line of %d bytes (ends %q); want under 200 KiB, saying the row's size", len(msg), msg[max(0, len(msg)-60):])
	}
	small := transforms.NewDeadLetterRow(transforms.DeadLetter{ErrorMessage: "refused", Payload: []byte(`{"a":1}`), ProcessingTime: 1})
	if got := unwritableMessage(small); !strings.HasSuffix(got, `{"a":1}`) {
		t.Errorf("a small row is logged as %q, want it whole", got)
	}
}

// TestWriteBigQueryFnBatchesStayUnderTheLimit sends rows of mixed sizes, as
// dead letters with payloads of up to 1 MiB are: no request passes
// MaxBatchBytes, except one holding a single row larger than that, and
// every row is written once.
func TestWriteBigQueryFnBatchesStayUnderTheLimit(t *testing.T) {
	ctx := context.Background()
	const limit = 4000
	a := &fakeAppender{}
	f := &writeBigQueryFn[transforms.DeadLetterRow]{Project: "p", Dataset: "d", Table: transforms.TableDeadLetters, MaxBatchBytes: limit, appender: a}
	if err := f.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	emit := func(int64) {}
	reject := func(d transforms.DeadLetterRow) { t.Errorf("dead letter %s", d.ErrorMessage) }
	sizes := []int{100, 3000, 200, 1500, 2500, 5000, 10, 3900, 700, 700, 700}
	for i, n := range sizes {
		d := transforms.DeadLetter{Stage: transforms.StageParse, ErrorCode: transforms.CodeOversizePayload,
			ErrorMessage: fmt.Sprint(i), Payload: bytes.Repeat([]byte{'x'}, n), ProcessingTime: 1}
		if err := f.ProcessElement(ctx, transforms.NewDeadLetterRow(d), emit, reject); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.FinishBundle(ctx, emit, reject); err != nil {
		t.Fatal(err)
	}
	if len(a.written) != len(sizes) {
		t.Errorf("%d rows written, want %d", len(a.written), len(sizes))
	}
	// Sent rows are not kept alive by the reused batch between bundles.
	for i, r := range f.rows[:cap(f.rows)] {
		if r != nil {
			t.Errorf("after the bundle, the batch's slot %d still holds a %d-byte row", i, len(r))
		}
	}
	for i, n := range a.bytes {
		if n > limit && a.sizes[i] > 1 {
			t.Errorf("request %d: %d rows, %d bytes: over MaxBatchBytes %d", i, a.sizes[i], n, limit)
		}
	}
}

// TestBuildWithBigQuerySink builds the production graph with --sink=bigquery
// (no BigQuery can run here, so it is built, not run): the three writers and
// the dead-letter path are in it, and no DuckDB writer is.
func TestBuildWithBigQuerySink(t *testing.T) {
	o := testOptions(t, 1000)
	o.Sink = SinkBigQuery
	if err := o.Validate(); err == nil {
		t.Fatal("--sink=bigquery without --bq_project and --bq_dataset validated")
	}
	o.BigQuery = BigQueryTarget{Project: "p", Dataset: "campaign_pulse"}
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	edges := buildGraph(t, o)
	writers := map[string]bool{}
	var all []string
	for _, e := range edges {
		all = append(all, e.Name()+" in "+e.Scope().String())
		if strings.Contains(e.Name(), "DuckDB") {
			t.Errorf("the BigQuery graph writes DuckDB: %s", e.Name())
		}
		if strings.HasPrefix(e.Scope().String(), "root/BigQuerySink/WriteBigQuery.") && strings.Contains(e.Name(), "writeBigQuery") {
			writers[strings.TrimPrefix(e.Scope().String(), "root/BigQuerySink/WriteBigQuery.")] = true
		}
	}
	for _, table := range transforms.Tables {
		if !writers[table.Name] {
			t.Errorf("no BigQuery writer for %s in the graph:\n%s", table.Name, strings.Join(all, "\n"))
		}
	}
	if !strings.Contains(strings.Join(all, "\n"), "logUnwritableFn") {
		t.Errorf("the dead letters BigQuery refuses are not logged")
	}
}

// TestRowEncoderWritesEveryColumnAsBigQueryReadsIt reads every sample row's
// encoding as BigQuery would: with the message type Google's adapt package
// makes of the table's committed schema (terraform/schemas/<table>.json),
// not the encoder's own, and compares each field with the Go row's field of
// the same bq name, read here by reflection: a null pointer is an absent
// field, a time is microseconds since the epoch, anything else its value.
// Decode, the encoder's inverse, would pass an error made the same way in
// both directions (a column in the wrong place, a value of another column).
func TestRowEncoderWritesEveryColumnAsBigQueryReadsIt(t *testing.T) {
	for table, rows := range sampleRows() {
		tb, _ := transforms.TableByName(table)
		enc, err := NewRowEncoder(tb)
		if err != nil {
			t.Fatal(err)
		}
		js, err := os.ReadFile(filepath.Join("..", "terraform", "schemas", table+".json"))
		if err != nil {
			t.Fatal(err)
		}
		bqSchema, err := bigquery.SchemaFromJSON(js)
		if err != nil {
			t.Fatal(err)
		}
		storageSchema, err := adapt.BQSchemaToStorageTableSchema(bqSchema)
		if err != nil {
			t.Fatal(err)
		}
		d, err := adapt.StorageSchemaToProto2Descriptor(storageSchema, "root")
		if err != nil {
			t.Fatal(err)
		}
		md := d.(protoreflect.MessageDescriptor)
		for i, row := range rows {
			b, err := enc.Encode(row)
			if err != nil {
				t.Fatal(err)
			}
			m := dynamicpb.NewMessage(md)
			if err := proto.Unmarshal(b, m); err != nil {
				t.Fatalf("%s row %d: %v", table, i, err)
			}
			if unknown := m.GetUnknown(); len(unknown) > 0 {
				t.Errorf("%s row %d: %d bytes of fields the table's schema does not have", table, i, len(unknown))
			}
			rv := reflect.ValueOf(row)
			seen := 0
			for f := range rv.NumField() {
				tag := rv.Type().Field(f).Tag.Get("bq")
				if tag == "" || tag == "-" {
					continue
				}
				name := strings.Split(tag, ",")[0]
				fd := md.Fields().ByName(protoreflect.Name(name))
				if fd == nil {
					t.Errorf("%s: column %s is not in the committed schema", table, name)
					continue
				}
				seen++
				v := rv.Field(f)
				if v.Kind() == reflect.Pointer {
					if v.IsNil() {
						if m.Has(fd) {
							t.Errorf("%s row %d: %s is null in the row but set in the message (%v)", table, i, name, m.Get(fd))
						}
						continue
					}
					v = v.Elem()
				}
				var want any = v.Interface()
				if ts, ok := want.(time.Time); ok {
					want = ts.UnixMicro()
				}
				if got := m.Get(fd).Interface(); !reflect.DeepEqual(got, want) {
					t.Errorf("%s row %d: %s reads %v (%T) in BigQuery's message type, the row has %v (%T)", table, i, name, got, got, want, want)
				}
			}
			if seen != md.Fields().Len() {
				t.Errorf("%s: the row type has %d columns, the committed schema %d", table, seen, md.Fields().Len())
			}
		}
	}
}
