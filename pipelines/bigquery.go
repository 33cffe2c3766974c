package pipelines

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"cloud.google.com/go/bigquery/storage/apiv1/storagepb"
	"cloud.google.com/go/bigquery/storage/managedwriter"
	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/window"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/log"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/campaignpulse/campaignpulse/transforms"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/protobuf/types/descriptorpb"
)

func init() {
	register.DoFn4x1[context.Context, transforms.EventBatch, func(int64), func(transforms.DeadLetterRow), error](&writeBigQueryEventsFn{})
	register.DoFn4x1[context.Context, transforms.MetricsRow, func(int64), func(transforms.DeadLetterRow), error](&writeBigQueryFn[transforms.MetricsRow]{})
	register.DoFn4x1[context.Context, transforms.DeadLetterRow, func(int64), func(transforms.DeadLetterRow), error](&writeBigQueryFn[transforms.DeadLetterRow]{})
	register.DoFn2x0[context.Context, transforms.DeadLetterRow](&logUnwritableFn{})
	register.Emitter1[transforms.DeadLetterRow]()
}

// The BigQuery sink writes with the Storage Write API's default stream:
// at-least-once, no stream to create, commit or finalize per bundle, the
// cheapest ingestion BigQuery offers and the one with the most throughput
// per connection. A bundle that Dataflow retries can write some rows twice;
// the warehouse tolerates that by construction (dbt's staging keeps one row
// per event_id and event time and one per window key and pane_version). Exactly-once with
// committed streams would need a stream and an offset that survive a bundle
// retry, which the Go SDK gives a sink no stable identity for.

// Defaults of the sink's batching and of its requests.
const (
	// bqMaxBatchBytes keeps one AppendRows request under the API's 10 MB.
	bqMaxBatchBytes = 8 << 20
	// bqAppendTimeout bounds one append and its response. The harness
	// never cancels a bundle's context, and Dataflow retries a bundle that
	// failed, not one that hangs: a request lost on a broken connection
	// would otherwise stall its key range for good. An 8 MiB append takes
	// well under a second; the client retries what is retryable within
	// this bound. A timed-out append may have been written: the bundle
	// fails and its retry may write it again, which dbt's staging absorbs.
	bqAppendTimeout = 5 * time.Minute
	// bqRetireAfter bounds how long a dropped stream stays open for the
	// appends in flight on it (sharedStream.retire). By then every one of
	// them has passed its own bqAppendTimeout, and keepalive (bqKeepalive)
	// has found a dead connection, on which the client retries or fails
	// them. What is still unanswered is held by a service that keeps the
	// connection alive: closing strands it in the client's retry loop, but
	// the connection is closed.
	bqRetireAfter = 2 * bqAppendTimeout
)

// bqKeepalive pings a Storage Write connection that has been silent for 5
// minutes and breaks it if no answer comes in 20 s, as the Pub/Sub client
// does for its streams: a connection lost without a reset (a NAT or a load
// balancer dropping it) otherwise holds its appends unanswered until the
// sink's timeout, and then until bqRetireAfter.
var bqKeepalive = option.WithGRPCDialOption(grpc.WithKeepaliveParams(keepalive.ClientParameters{
	Time: 5 * time.Minute, Timeout: 20 * time.Second,
}))

// CounterRowsWrittenPrefix and a table's name name the counter of the rows
// the BigQuery sink wrote to it, which Dataflow shows while the job runs;
// the logged sums (logCommitted) close only with the global window.
const CounterRowsWrittenPrefix = "bigquery_rows_written_"

// counterSinkDeadLetters counts the fact rows BigQuery refused, which become
// SINK_REJECTED dead letters; the dead-letter alert reads it with the other
// stages' (transforms.DeadLetterCounters).
var counterSinkDeadLetters = beam.NewCounter(transforms.Namespace, transforms.CounterDeadLetterSink)

// rowAppender sends one batch of encoded rows and returns BigQuery's row
// errors (the rows it refused; the batch is then not written) or the error
// of the request. The real one is a managedwriter stream; tests use a fake,
// as no BigQuery can run here.
type rowAppender interface {
	Append(ctx context.Context, rows [][]byte) ([]*storagepb.RowError, error)
}

// tableStreamAppender appends to the table's shared default stream, the
// one bqWriters holds at each append, not the one of Setup: the harness
// reuses a plan's DoFns without calling Setup again, and another instance
// may have dropped that stream since.
type tableStreamAppender struct {
	project, dataset, table string
	desc                    *descriptorpb.DescriptorProto
	last                    *sharedStream // of the last append, which flush drops if it stopped answering
}

func (a *tableStreamAppender) Append(ctx context.Context, rows [][]byte) ([]*storagepb.RowError, error) {
	for retried := false; ; retried = true {
		s, err := a.stream()
		if err != nil {
			return nil, err
		}
		a.last = s
		res, err := s.ms.AppendRows(ctx, rows)
		if err != nil {
			if ctx.Err() != nil {
				// AppendRows may still send it after returning: it
				// stays counted, and the stream is closed after
				// bqRetireAfter at the latest.
				return nil, err
			}
			s.end() // not sent
			if errors.Is(err, io.EOF) && !retried {
				// The stream was closed before the append was sent:
				// send it once on the table's current one.
				dropSharedStream(a.project, a.dataset, a.table, s)
				continue
			}
			return nil, err
		}
		select {
		case <-res.Ready():
			s.end()
		case <-ctx.Done():
			go func() { // the stream is closed once it is answered
				select {
				case <-res.Ready():
					s.end()
				case <-s.closed:
				}
			}()
			return nil, ctx.Err()
		}
		resp, err := res.FullResponse(context.Background()) // ready
		if resp != nil && len(resp.GetRowErrors()) > 0 {
			return resp.GetRowErrors(), nil // the embedded error only restates them
		}
		return nil, err
	}
}

// stream returns the table's shared stream with an append counted on it.
func (a *tableStreamAppender) stream() (*sharedStream, error) {
	for {
		s, err := sharedDefaultStream(a.project, a.dataset, a.table, a.desc)
		if err != nil || s.begin() {
			return s, err
		}
		// Dropped since the lookup: it is no longer shared, the next
		// lookup finds or opens another.
	}
}

// appendWithRejects writes rows and returns the ones BigQuery refused, by
// index, with its message. A request with row errors writes nothing, so the
// batch is re-sent without the refused rows until a request has none. Every
// re-send has at least one row fewer, so this ends within a batch's rows;
// BigQuery lists all of a request's bad rows at once, so two requests are
// the rule. Only a row BigQuery refused is returned: a row it never refused
// is written or fails the call, never dead-lettered. Any other error fails
// the call (and the bundle, which the runner retries): the client library
// has already retried what is retryable.
func appendWithRejects(ctx context.Context, a rowAppender, rows [][]byte) (map[int]string, error) {
	rejected := map[int]string{}
	pending := make([]int, len(rows)) // indexes into rows still to write
	for i := range pending {
		pending[i] = i
	}
	batch := make([][]byte, 0, len(rows))
	for len(pending) > 0 {
		batch = batch[:0]
		for _, i := range pending {
			batch = append(batch, rows[i])
		}
		rowErrs, err := a.Append(ctx, batch)
		if err != nil {
			return nil, err
		}
		if len(rowErrs) == 0 {
			return rejected, nil
		}
		refused := map[int]bool{}
		for _, re := range rowErrs {
			k := int(re.GetIndex())
			if k < 0 || k >= len(pending) {
				return nil, fmt.Errorf("BigQuery reported a row error for row %d of a batch of %d: %s", k, len(pending), re.GetMessage())
			}
			refused[k] = true
			rejected[pending[k]] = fmt.Sprintf("%s: %s", re.GetCode(), re.GetMessage())
		}
		next := pending[:0]
		for k, i := range pending {
			if !refused[k] {
				next = append(next, i)
			}
		}
		pending = next
	}
	return rejected, nil
}

// writeBigQueryFn appends the rows of one table to BigQuery, batched per
// bundle (and per bqMaxBatchBytes within a bundle), and emits the number of
// rows written per bundle and a dead letter (stage sink, SINK_REJECTED) for
// every row BigQuery refused, with its error and the row as JSON.
type writeBigQueryFn[T any] struct {
	Project, Dataset, Table string
	MaxBatchBytes           int

	appender      rowAppender
	appendTimeout time.Duration // bqAppendTimeout unless a test sets it
	rowsWritten   beam.Counter
	enc           *RowEncoder
	rows          [][]byte
	deliveries    []uint64 // rows[i]'s source delivery (0: none), settled once appended
	settle        []uint64
	bytes         int
	written       int64
}

func (f *writeBigQueryFn[T]) Setup(ctx context.Context) error {
	t, ok := transforms.TableByName(f.Table)
	if !ok {
		return fmt.Errorf("unknown table %q", f.Table)
	}
	enc, err := NewRowEncoder(t)
	if err != nil {
		return err
	}
	f.enc = enc
	f.rowsWritten = beam.NewCounter(transforms.Namespace, CounterRowsWrittenPrefix+f.Table)
	if f.appender != nil { // set by a test
		return nil
	}
	// Open the stream now, so that a missing table or permission fails
	// Setup; every append looks it up again.
	if _, err := sharedDefaultStream(f.Project, f.Dataset, f.Table, enc.Descriptor()); err != nil {
		return err
	}
	f.appender = &tableStreamAppender{project: f.Project, dataset: f.Dataset, table: f.Table, desc: enc.Descriptor()}
	return nil
}

// bqWriters are this process's Storage Write clients, one per project, and
// their default streams, one per table, shared by every instance of the
// sink's DoFns. The Go SDK harness never calls Teardown: when a bundle
// fails, its plan is dropped, DoFns and all, and the retry builds new ones
// whose Setup runs again. A client opened per instance would leak with its
// gRPC connections and goroutines at every failed attempt, and a streaming
// job retries a lasting failure (a missing permission, a table not created
// yet) forever: an unbounded leak, each connection counted against the
// Write API's concurrent-connection quota. A shared stream lives until an
// append on it stops answering (dropSharedStream); ManagedStream.AppendRows
// is safe for concurrent use. The lock is never held across a network call
// or a Close, which can wait on a reconnect for as long as an outage lasts:
// every writer's Setup and append takes it.
var bqWriters = struct {
	sync.Mutex
	clients map[string]*managedwriter.Client
	streams map[string]*sharedStream
	// retired are the dropped streams not closed yet, which the tests
	// close before their clients: a client closed under an append in
	// flight on an open stream panics in the library.
	retired map[*sharedStream]bool
}{clients: map[string]*managedwriter.Client{}, streams: map[string]*sharedStream{}, retired: map[*sharedStream]bool{}}

// bqClientOptions are added to every Storage Write client: tests point it at
// a fake Write API.
var bqClientOptions []option.ClientOption

// sharedStream is a table's shared default stream and the count of the
// appends in flight on it. Closing a ManagedStream under its appends in
// flight strands them: the client re-sends them to the closed stream
// forever (it takes the stream's io.EOF as retryable and does not count the
// attempt), so they never resolve, and leak with their rows and goroutine.
// A dropped stream is closed once they have resolved.
type sharedStream struct {
	ms     *managedwriter.ManagedStream
	closed chan struct{} // closed once ms is

	mu       sync.Mutex
	inFlight int
	retired  bool          // dropped: takes no new append
	idle     chan struct{} // closed when a retired stream has none in flight
}

func newSharedStream(ms *managedwriter.ManagedStream) *sharedStream {
	return &sharedStream{ms: ms, closed: make(chan struct{})}
}

// begin counts an append about to be sent. It is false on a dropped
// stream, which takes none: the append must look up the table's current one.
func (s *sharedStream) begin() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.retired {
		return false
	}
	s.inFlight++
	return true
}

// end uncounts an append that was answered or never sent.
func (s *sharedStream) end() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inFlight--
	if s.retired && s.inFlight == 0 {
		close(s.idle)
	}
}

// retire closes the stream, in the background, once its appends in flight
// have resolved, or after bqRetireAfter if some never do.
func (s *sharedStream) retire() {
	s.mu.Lock()
	if s.retired {
		s.mu.Unlock()
		return
	}
	s.retired = true
	s.idle = make(chan struct{})
	if s.inFlight == 0 {
		close(s.idle)
	}
	idle := s.idle
	s.mu.Unlock()
	bqWriters.Lock()
	bqWriters.retired[s] = true
	bqWriters.Unlock()
	go func() {
		t := time.NewTimer(bqRetireAfter)
		defer t.Stop()
		select {
		case <-idle:
		case <-t.C:
		}
		s.ms.Close()
		close(s.closed)
		bqWriters.Lock()
		delete(bqWriters.retired, s)
		bqWriters.Unlock()
	}()
}

// sharedDefaultStream returns the process's default stream of the table,
// opening it (and its project's client) on first use. A failure is not kept:
// the next Setup or append tries again. Opening is a network call, made
// outside bqWriters: two callers may both open one, and the second to
// install it closes its own.
func sharedDefaultStream(project, dataset, table string, desc *descriptorpb.DescriptorProto) (*sharedStream, error) {
	key := managedwriter.TableParentFromParts(project, dataset, table)
	bqWriters.Lock()
	s, c := bqWriters.streams[key], bqWriters.clients[project]
	bqWriters.Unlock()
	if s != nil {
		return s, nil
	}
	// The client and the stream keep their connections open with the
	// context they are given: the process's, not the bundle's.
	ctx := context.Background()
	if c == nil {
		opened, err := managedwriter.NewClient(ctx, project, append([]option.ClientOption{bqKeepalive}, bqClientOptions...)...)
		if err != nil {
			return nil, fmt.Errorf("BigQuery Storage Write client: %w", err)
		}
		bqWriters.Lock()
		if c = bqWriters.clients[project]; c == nil {
			c, bqWriters.clients[project], opened = opened, opened, nil
		}
		bqWriters.Unlock()
		if opened != nil {
			opened.Close()
		}
	}
	ms, err := c.NewManagedStream(ctx,
		managedwriter.WithDestinationTable(key),
		managedwriter.WithType(managedwriter.DefaultStream),
		managedwriter.WithSchemaDescriptor(desc),
		managedwriter.EnableWriteRetries(true))
	if err != nil {
		return nil, fmt.Errorf("open the default stream of %s: %w", key, err)
	}
	bqWriters.Lock()
	if s = bqWriters.streams[key]; s == nil {
		s = newSharedStream(ms)
		bqWriters.streams[key], ms = s, nil
	}
	bqWriters.Unlock()
	if ms != nil {
		ms.Close() // no append was sent on it
	}
	return s, nil
}

// dropSharedStream stops sharing the table's stream s, so the next append
// opens a new one, and closes s once the appends in flight on it, other
// bundles' among them, have resolved.
func dropSharedStream(project, dataset, table string, s *sharedStream) {
	key := managedwriter.TableParentFromParts(project, dataset, table)
	bqWriters.Lock()
	if bqWriters.streams[key] == s {
		delete(bqWriters.streams, key)
	}
	bqWriters.Unlock()
	s.retire()
}

func (f *writeBigQueryFn[T]) ProcessElement(ctx context.Context, row T, emit func(int64), reject func(transforms.DeadLetterRow)) error {
	return f.add(ctx, row, deliveryOf(row), reject)
}

// add stages one row, and its source's delivery, for the next append.
func (f *writeBigQueryFn[T]) add(ctx context.Context, row T, delivery uint64, reject func(transforms.DeadLetterRow)) error {
	b, err := f.enc.Encode(row)
	if err != nil {
		return err // a row the definition cannot encode is a bug, not data
	}
	// Send the batch before it would pass maxBatchBytes with this row, not
	// after: a batch stays under the request limit whatever its rows' sizes
	// (a dead letter can hold a 1 MiB payload).
	if len(f.rows) > 0 && f.bytes+len(b) > f.maxBatchBytes() {
		if err := f.flush(ctx, reject); err != nil {
			return err
		}
	}
	f.rows = append(f.rows, b)
	f.deliveries = append(f.deliveries, delivery)
	f.bytes += len(b)
	return nil
}

// writeBigQueryEventsFn writes the event-grain rows of event batches.
type writeBigQueryEventsFn struct {
	writeBigQueryFn[transforms.EventRow]
}

func (f *writeBigQueryEventsFn) ProcessElement(ctx context.Context, b transforms.EventBatch, emit func(int64), reject func(transforms.DeadLetterRow)) error {
	for i := range b.Events {
		if err := f.add(ctx, transforms.NewEventRow(b.Events[i]), b.Events[i].Delivery, reject); err != nil {
			return err
		}
	}
	return nil
}

func (f *writeBigQueryFn[T]) FinishBundle(ctx context.Context, emit func(int64), reject func(transforms.DeadLetterRow)) error {
	if err := f.flush(ctx, reject); err != nil {
		return err
	}
	if f.written > 0 {
		f.rowsWritten.Inc(ctx, f.written)
		emit(f.written)
		f.written = 0
	}
	return nil
}

func (f *writeBigQueryFn[T]) maxBatchBytes() int {
	if f.MaxBatchBytes > 0 {
		return f.MaxBatchBytes
	}
	return bqMaxBatchBytes
}

func (f *writeBigQueryFn[T]) flush(ctx context.Context, reject func(transforms.DeadLetterRow)) error {
	if len(f.rows) == 0 {
		return nil
	}
	timeout := f.appendTimeout
	if timeout <= 0 {
		timeout = bqAppendTimeout
	}
	actx, cancel := context.WithTimeout(ctx, timeout)
	rejected, err := appendWithRejects(actx, f.appender, f.rows)
	timedOut := actx.Err() == context.DeadlineExceeded
	cancel()
	if err != nil {
		if a, ok := f.appender.(*tableStreamAppender); ok && a.last != nil && (timedOut || errors.Is(err, io.EOF)) {
			// The stream's connection no longer answers, or the stream
			// is closed: the next append, this bundle's retry's or
			// another writer's, opens another.
			dropSharedStream(f.Project, f.Dataset, f.Table, a.last)
		}
		return fmt.Errorf("append %d rows to %s: %w", len(f.rows), f.Table, err)
	}
	if f.Table != transforms.TableDeadLetters {
		// A refused fact row is a new dead letter; a refused dead letter
		// was counted by the stage that made it (logUnwritableFn logs it).
		counterSinkDeadLetters.Inc(ctx, int64(len(rejected)))
	}
	now := time.Now().UnixMilli()
	for i, msg := range rejected {
		// The refused row's delivery goes on with its dead letter, which
		// settles it where it ends: in dead_letter_events, or logged.
		reject(transforms.NewDeadLetterRow(transforms.DeadLetter{
			Stage: transforms.StageSink, ErrorCode: transforms.CodeSinkRejected,
			ErrorMessage: fmt.Sprintf("BigQuery refused the row for %s: %s", f.Table, msg),
			EventID:      f.eventID(f.rows[i]), Payload: f.enc.RowJSON(f.rows[i]),
			Source: "bigquery:" + f.Table, ProcessingTime: now, PipelineVersion: transforms.PipelineVersion,
			Delivery: f.deliveries[i],
		}))
	}
	// The default stream commits a row when its append is answered: the
	// rows written are durable, and their sources may forget them.
	for i, d := range f.deliveries {
		if _, refused := rejected[i]; !refused {
			f.settle = transforms.AppendDelivery(f.settle, d)
		}
	}
	transforms.Settle(f.settle)
	f.written += int64(len(f.rows) - len(rejected))
	// The instance lives on in its reused plan: drop the sent rows, or the
	// backing array keeps its largest batch (up to MaxBatchBytes, dead
	// letters of 1 MiB included) alive between bundles.
	clear(f.rows)
	f.rows, f.deliveries, f.settle, f.bytes = f.rows[:0], f.deliveries[:0], f.settle[:0], 0
	return nil
}

// eventID reads the event_id column of an encoded row, if the table has one.
func (f *writeBigQueryFn[T]) eventID(b []byte) string {
	vals, err := f.enc.Decode(b)
	if err != nil {
		return ""
	}
	for i, c := range f.enc.table.Columns {
		if s, ok := vals[i].(string); ok && c.Name == "event_id" {
			return s
		}
	}
	return ""
}

// BigQueryTarget names where the sink writes.
type BigQueryTarget struct{ Project, Dataset string }

// WriteBigQuery appends rows of one table type to BigQuery. It returns the
// rows written per bundle and the dead letters of the rows BigQuery refused.
// The input is moved to the global window: the counts and dead letters are
// emitted at the end of a bundle, which belongs to no window.
func WriteBigQuery[T any](s beam.Scope, to BigQueryTarget, rows ...beam.PCollection) (written, rejected beam.PCollection) {
	var zero T
	t, ok := tableOf(zero)
	if !ok {
		panic(fmt.Sprintf("WriteBigQuery: %T is not a warehouse row type", zero))
	}
	s = s.Scope("WriteBigQuery." + t.Name)
	var counts, rejects []beam.PCollection
	for _, r := range rows {
		r = beam.WindowInto(s, window.NewGlobalWindows(), r)
		n, dl := beam.ParDo2(s, &writeBigQueryFn[T]{Project: to.Project, Dataset: to.Dataset, Table: t.Name}, r)
		counts, rejects = append(counts, n), append(rejects, dl)
	}
	return flatten(s, counts), flatten(s, rejects)
}

// WriteBigQueryEvents appends the events of event batches to
// fact_marketing_events, like WriteBigQuery.
func WriteBigQueryEvents(s beam.Scope, to BigQueryTarget, batches ...beam.PCollection) (written, rejected beam.PCollection) {
	s = s.Scope("WriteBigQuery." + transforms.TableEvents)
	var counts, rejects []beam.PCollection
	for _, b := range batches {
		b = beam.WindowInto(s, window.NewGlobalWindows(), b)
		fn := &writeBigQueryEventsFn{writeBigQueryFn[transforms.EventRow]{Project: to.Project, Dataset: to.Dataset, Table: transforms.TableEvents}}
		n, dl := beam.ParDo2(s, fn, b)
		counts, rejects = append(counts, n), append(rejects, dl)
	}
	return flatten(s, counts), flatten(s, rejects)
}

// WriteBigQuerySink writes the pipeline's three tables: events as batches
// (transforms.EventBatch, one collection per lane), pane rows, dead-letter rows. The rows BigQuery
// refuses from the fact tables join the pipeline's dead letters in
// dead_letter_events. A dead letter BigQuery refuses in turn cannot go to
// that table again without a loop: it is logged at error level with its row,
// cut to 64 KiB so that Cloud Logging keeps the entry, and counted; only a
// table that drifted from the schema definition can refuse one, and the
// drift test guards against that.
func WriteBigQuerySink(s beam.Scope, to BigQueryTarget, events []beam.PCollection, panes, deadLetters beam.PCollection) {
	s = s.Scope("BigQuerySink")
	nEvents, rejEvents := WriteBigQueryEvents(s, to, events...)
	nPanes, rejPanes := WriteBigQuery[transforms.MetricsRow](s, to, panes)
	nDead, unwritable := WriteBigQuery[transforms.DeadLetterRow](s, to,
		beam.Flatten(s, beam.WindowInto(s, window.NewGlobalWindows(), deadLetters), rejEvents, rejPanes))
	// The sums close with the global window: at the end of a bounded run,
	// or when a streaming job is drained. While it runs, the per-table
	// counters (CounterRowsWrittenPrefix) show the rows written.
	logCommitted(s, transforms.TableEvents, nEvents)
	logCommitted(s, transforms.TableMetrics, nPanes)
	logCommitted(s, transforms.TableDeadLetters, nDead)
	beam.ParDo0(s, &logUnwritableFn{}, unwritable)
}

// logUnwritableFn logs a dead letter that BigQuery refused to store.
type logUnwritableFn struct {
	unwritable beam.Counter
}

func (f *logUnwritableFn) Setup() {
	f.unwritable = beam.NewCounter(transforms.Namespace, "sink_unwritable_dead_letters")
}

func (f *logUnwritableFn) ProcessElement(ctx context.Context, d transforms.DeadLetterRow) {
	f.unwritable.Inc(ctx, 1)
	log.Error(ctx, unwritableMessage(d))
	// The log line is where this record ends: its message is settled, or
	// a redelivery would be refused again, for as long as the table drifts.
	transforms.Settle(transforms.AppendDelivery(nil, d.Delivery))
}

// maxLoggedRowBytes bounds the refused row a log line carries. Cloud Logging
// refuses an entry over 256 KiB, and the row of a dead letter with a 1 MiB
// payload is about 1.4 MB of JSON: logged whole, it would not be logged.
const maxLoggedRowBytes = 64 << 10

// unwritableMessage is the log line of a dead letter BigQuery refused: the
// reason and the refused row as JSON, cut to maxLoggedRowBytes.
func unwritableMessage(d transforms.DeadLetterRow) string {
	if len(d.Payload) <= maxLoggedRowBytes {
		return fmt.Sprintf("dead letter BigQuery refused to store (%s): %s", d.ErrorMessage, d.Payload)
	}
	return fmt.Sprintf("dead letter BigQuery refused to store (%s): %s… (the row's first %d of %d bytes)",
		d.ErrorMessage, d.Payload[:maxLoggedRowBytes], maxLoggedRowBytes, len(d.Payload))
}
