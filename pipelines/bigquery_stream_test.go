package pipelines

import (
	"context"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/bigquery/storage/apiv1/storagepb"
	"cloud.google.com/go/bigquery/storage/managedwriter"
	"github.com/campaignpulse/campaignpulse/transforms"
	"google.golang.org/api/option"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
)

// fakeWriteAPI plays BigQuery's Storage Write API in this process, for the
// real managedwriter client to talk to (no emulator of it runs here): every
// table has a default stream that takes every append, or, while hang is
// set, answers none; delay holds each answer, in order, as a slow backend
// does. It counts the AppendRows connections clients open and those still
// open, and can go down (stop) and come back on the same address (restart).
// Once keep is called it also keeps the ids of the rows it stored (keys),
// refuses the rows refuse names (with row errors, storing none of their
// request, as BigQuery does), and fails every append to failTable until
// failUntil (an error status the client does not retry).
type fakeWriteAPI struct {
	storagepb.UnimplementedBigQueryWriteServer

	mu          sync.Mutex
	connections int
	open        int
	rows        int
	hang        bool
	delay       time.Duration
	addr        string
	srv         *grpc.Server

	encoders  map[string]*RowEncoder // by table; nil until keep
	keys      map[string]bool        // "table column value" of every event_id and message_id stored
	refuse    func(table string, vals []any) string
	failTable string
	failUntil time.Time
	failed    int
}

// keep makes the fake decode what it stores, refuse what refuse names (a
// message, or "" to take the row) and fail failTable's appends for failFor.
func (f *fakeWriteAPI) keep(t *testing.T, refuse func(table string, vals []any) string, failTable string, failFor time.Duration) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.encoders, f.keys = map[string]*RowEncoder{}, map[string]bool{}
	for _, tb := range transforms.Tables {
		enc, err := NewRowEncoder(tb)
		if err != nil {
			t.Fatal(err)
		}
		f.encoders[tb.Name] = enc
	}
	f.refuse, f.failTable, f.failUntil = refuse, failTable, time.Now().Add(failFor)
}

// has says whether a stored row of table has value in column.
func (f *fakeWriteAPI) has(table, column, value string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.keys[table+" "+column+" "+value]
}

// judge answers one request of table under keep: nil to store its rows,
// else the response refusing or failing it. Called with mu held.
func (f *fakeWriteAPI) judge(table string, rows [][]byte) *storagepb.AppendRowsResponse {
	if table == f.failTable && time.Now().Before(f.failUntil) {
		f.failed++
		return &storagepb.AppendRowsResponse{Response: &storagepb.AppendRowsResponse_Error{
			Error: &statuspb.Status{Code: int32(codes.InvalidArgument), Message: "injected failure"}}}
	}
	enc := f.encoders[table]
	var rowErrs []*storagepb.RowError
	var stored []string
	for i, b := range rows {
		vals, err := enc.Decode(b)
		if err != nil {
			rowErrs = append(rowErrs, &storagepb.RowError{Index: int64(i), Code: storagepb.RowError_FIELDS_ERROR, Message: err.Error()})
			continue
		}
		if msg := f.refuse(table, vals); msg != "" {
			rowErrs = append(rowErrs, &storagepb.RowError{Index: int64(i), Code: storagepb.RowError_FIELDS_ERROR, Message: msg})
			continue
		}
		for c, col := range enc.table.Columns {
			if v, ok := vals[c].(string); ok && (col.Name == "event_id" || col.Name == "message_id") {
				stored = append(stored, table+" "+col.Name+" "+v)
			}
		}
	}
	if len(rowErrs) > 0 {
		return &storagepb.AppendRowsResponse{RowErrors: rowErrs, Response: &storagepb.AppendRowsResponse_Error{
			Error: &statuspb.Status{Code: int32(codes.InvalidArgument), Message: "rows refused"}}}
	}
	for _, k := range stored {
		f.keys[k] = true
	}
	return nil
}

// tableOfStream is the table of a write stream's name
// (projects/p/datasets/d/tables/t/streams/_default).
func tableOfStream(name string) string {
	_, rest, _ := strings.Cut(name, "/tables/")
	table, _, _ := strings.Cut(rest, "/")
	return table
}

func (f *fakeWriteAPI) GetWriteStream(_ context.Context, req *storagepb.GetWriteStreamRequest) (*storagepb.WriteStream, error) {
	return &storagepb.WriteStream{Name: req.GetName(), Type: storagepb.WriteStream_COMMITTED, Location: "europe-west1"}, nil
}

func (f *fakeWriteAPI) AppendRows(stream storagepb.BigQueryWrite_AppendRowsServer) error {
	f.mu.Lock()
	f.connections++
	f.open++
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.open--
		f.mu.Unlock()
	}()
	table := "" // named by the connection's first request
	for {
		req, err := stream.Recv()
		if err != nil {
			return nil // the client closed the connection
		}
		if n := req.GetWriteStream(); n != "" {
			table = tableOfStream(n)
		}
		rows := req.GetProtoRows().GetRows().GetSerializedRows()
		f.mu.Lock()
		hang, delay := f.hang, f.delay
		var resp *storagepb.AppendRowsResponse
		if !hang && f.encoders != nil {
			resp = f.judge(table, rows)
		}
		if !hang && resp == nil {
			f.rows += len(rows)
		}
		f.mu.Unlock()
		if hang {
			continue
		}
		time.Sleep(delay)
		if resp == nil {
			resp = &storagepb.AppendRowsResponse{
				Response: &storagepb.AppendRowsResponse_AppendResult_{AppendResult: &storagepb.AppendRowsResponse_AppendResult{}},
			}
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
}

func (f *fakeWriteAPI) counts() (connections, rows int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.connections, f.rows
}

func (f *fakeWriteAPI) setHang(h bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hang = h
}

func (f *fakeWriteAPI) setDelay(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.delay = d
}

// openConnections is the number of AppendRows connections no client closed.
func (f *fakeWriteAPI) openConnections() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.open
}

// serve listens on the fake's address (any port the first time).
func (f *fakeWriteAPI) serve(t *testing.T) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	addr := f.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	storagepb.RegisterBigQueryWriteServer(srv, f)
	go srv.Serve(lis)
	f.addr, f.srv = lis.Addr().String(), srv
}

// stop breaks every connection and refuses new ones, as an outage does.
func (f *fakeWriteAPI) stop() {
	f.mu.Lock()
	srv := f.srv
	f.mu.Unlock()
	srv.Stop()
}

// restart ends an outage: the fake serves again on its address.
func (f *fakeWriteAPI) restart(t *testing.T) {
	t.Helper()
	f.stop()
	f.serve(t)
}

// startFakeWriteAPI serves a fakeWriteAPI and points this process's shared
// Storage Write clients at it, with none open, until the test ends.
func startFakeWriteAPI(t *testing.T) *fakeWriteAPI {
	t.Helper()
	api := &fakeWriteAPI{}
	api.serve(t)

	closeSharedWriters := func() {
		bqWriters.Lock()
		var streams []*sharedStream
		for k, s := range bqWriters.streams {
			streams = append(streams, s)
			delete(bqWriters.streams, k)
		}
		for s := range bqWriters.retired {
			streams = append(streams, s)
			delete(bqWriters.retired, s)
		}
		clients := bqWriters.clients
		bqWriters.clients = map[string]*managedwriter.Client{}
		bqWriters.Unlock()
		// The streams first: a client closed under an append in
		// flight on an open stream panics in the library.
		for _, s := range streams {
			s.ms.Close()
		}
		for _, c := range clients {
			c.Close()
		}
	}
	closeSharedWriters()
	saved := bqClientOptions
	bqClientOptions = []option.ClientOption{
		option.WithEndpoint(api.addr), option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())),
	}
	t.Cleanup(func() {
		closeSharedWriters()
		bqClientOptions = saved
		api.stop()
	})
	return api
}

// writeOneBundle runs one bundle of a new instance of the table's writer, as
// the harness does for a plan it has just built: Setup, one row, the
// bundle's end. Like the harness, it never calls Teardown.
func writeOneBundle[T any](t *testing.T, table string, row T, timeout time.Duration) error {
	t.Helper()
	ctx := context.Background()
	f := &writeBigQueryFn[T]{Project: "p", Dataset: "d", Table: table, appendTimeout: timeout}
	if err := f.Setup(ctx); err != nil {
		return err
	}
	noDeadLetter := func(d transforms.DeadLetterRow) { t.Errorf("dead letter %s: %s", d.ErrorCode, d.ErrorMessage) }
	if err := f.ProcessElement(ctx, row, func(int64) {}, noDeadLetter); err != nil {
		return err
	}
	return f.FinishBundle(ctx, func(int64) {}, noDeadLetter)
}

// TestBigQueryWritersShareOneStreamPerTable runs the sink's DoFns with the
// real Storage Write client against a fake Write API. The Go SDK harness
// never calls Teardown, and a failed bundle's retry builds new DoFns whose
// Setup runs again: ten such instances, five per table, must open one
// connection per table, not one each (which no Teardown would ever close).
func TestBigQueryWritersShareOneStreamPerTable(t *testing.T) {
	api := startFakeWriteAPI(t)
	rows := sampleRows()
	pane := rows[transforms.TableMetrics][0].(transforms.MetricsRow)
	dead := rows[transforms.TableDeadLetters][0].(transforms.DeadLetterRow)
	for range 5 {
		if err := writeOneBundle(t, transforms.TableMetrics, pane, 0); err != nil {
			t.Fatal(err)
		}
		if err := writeOneBundle(t, transforms.TableDeadLetters, dead, 0); err != nil {
			t.Fatal(err)
		}
	}
	if conns, written := api.counts(); conns != 2 || written != 10 {
		t.Errorf("%d AppendRows connections for 10 writer instances of 2 tables, %d rows written; want 2 connections and 10 rows", conns, written)
	}
	bqWriters.Lock()
	clients, streams := len(bqWriters.clients), len(bqWriters.streams)
	bqWriters.Unlock()
	if clients != 1 || streams != 2 {
		t.Errorf("%d clients and %d streams shared, want 1 and 2", clients, streams)
	}
}

// TestBigQueryAppendTimesOut: an append whose answer never comes fails its
// bundle after the sink's timeout, instead of holding it for good (the
// harness never cancels a bundle), and the stream is dropped, so the retry
// writes through a new connection.
func TestBigQueryAppendTimesOut(t *testing.T) {
	api := startFakeWriteAPI(t)
	pane := sampleRows()[transforms.TableMetrics][0].(transforms.MetricsRow)
	api.setHang(true)
	err := writeOneBundle(t, transforms.TableMetrics, pane, 200*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), context.DeadlineExceeded.Error()) {
		t.Fatalf("an unanswered append returned %v, want the deadline", err)
	}
	bqWriters.Lock()
	_, kept := bqWriters.streams[managedwriter.TableParentFromParts("p", "d", transforms.TableMetrics)]
	bqWriters.Unlock()
	if kept {
		t.Error("the stream whose append timed out is still shared")
	}
	api.setHang(false)
	if err := writeOneBundle(t, transforms.TableMetrics, pane, 0); err != nil {
		t.Fatalf("the retry: %v", err)
	}
	if conns, written := api.counts(); conns != 2 || written != 1 {
		t.Errorf("%d connections and %d rows written, want 2 (the hung one and the retry's) and 1", conns, written)
	}
}

// goroutinesIn counts this process's goroutines whose stack has fn.
func goroutinesIn(fn string) int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	c := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, fn) {
			c++
		}
	}
	return c
}

// TestBigQueryDropLetsAppendsInFlightFinish: one bundle's append times out
// and drops the shared stream while another bundle's append is in flight on
// it, on a backend that answers every append a second late. Closing the
// stream under that append would strand it in the client's retry loop for
// good: the healthy bundle must succeed, and once both appends are answered
// the dropped stream's connection is closed and no append is left retrying.
func TestBigQueryDropLetsAppendsInFlightFinish(t *testing.T) {
	const retryLoop = "managedwriter.(*ManagedStream).processRetry"
	api := startFakeWriteAPI(t)
	pane := sampleRows()[transforms.TableMetrics][0].(transforms.MetricsRow)
	if err := writeOneBundle(t, transforms.TableMetrics, pane, 0); err != nil {
		t.Fatal(err)
	}
	retrying := goroutinesIn(retryLoop)
	api.setDelay(time.Second)
	healthy := make(chan error, 1)
	start := time.Now()
	go func() { healthy <- writeOneBundle(t, transforms.TableMetrics, pane, 6*time.Second) }()
	time.Sleep(100 * time.Millisecond)
	if err := writeOneBundle(t, transforms.TableMetrics, pane, 300*time.Millisecond); err == nil || !strings.Contains(err.Error(), context.DeadlineExceeded.Error()) {
		t.Fatalf("an append answered after 1 s with a 300 ms timeout returned %v, want the deadline", err)
	}
	if err := <-healthy; err != nil {
		t.Errorf("a bundle in flight when another dropped the stream failed after %v (the backend answers in 1 s): %v", time.Since(start).Round(time.Millisecond), err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && (goroutinesIn(retryLoop) > retrying || api.openConnections() > 0) {
		time.Sleep(100 * time.Millisecond)
	}
	if n := goroutinesIn(retryLoop) - retrying; n > 0 {
		t.Errorf("%d appends still in the client's retry loop 5 s after both were answered", n)
	}
	if n := api.openConnections(); n > 0 {
		t.Errorf("%d AppendRows connections still open 5 s after the dropped stream's appends were answered, want 0", n)
	}
}

// TestBigQueryWriterFollowsDroppedStream: the harness reuses a plan's DoFns
// without calling Setup again, so a writer set up before another instance
// dropped the table's stream must write its next bundle on the current
// stream, not fail on the closed one while the service is healthy.
func TestBigQueryWriterFollowsDroppedStream(t *testing.T) {
	api := startFakeWriteAPI(t)
	pane := sampleRows()[transforms.TableMetrics][0].(transforms.MetricsRow)
	ctx := context.Background()
	noDeadLetter := func(d transforms.DeadLetterRow) { t.Errorf("dead letter %s: %s", d.ErrorCode, d.ErrorMessage) }
	var written int64
	count := func(n int64) { written += n }
	cached := &writeBigQueryFn[transforms.MetricsRow]{Project: "p", Dataset: "d", Table: transforms.TableMetrics, appendTimeout: 5 * time.Second}
	if err := cached.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	bundle := func() error {
		if err := cached.ProcessElement(ctx, pane, count, noDeadLetter); err != nil {
			return err
		}
		return cached.FinishBundle(ctx, count, noDeadLetter)
	}
	if err := bundle(); err != nil {
		t.Fatal(err)
	}
	api.setHang(true)
	if err := writeOneBundle(t, transforms.TableMetrics, pane, 200*time.Millisecond); err == nil {
		t.Fatal("an unanswered append succeeded")
	}
	api.setHang(false)
	if err := bundle(); err != nil {
		t.Errorf("the next bundle of a writer set up before the stream was dropped, on a healthy service: %v", err)
	}
	if _, rows := api.counts(); written != 2 || rows != 2 {
		t.Errorf("the cached writer wrote %d rows and the service stored %d, want 2 and 2", written, rows)
	}
}

// TestBigQueryTimeoutDuringOutage: with the service unreachable, one
// bundle's append holds the connection reconnecting (the client retries the
// dial while it holds the connection's lock). Another bundle's append times
// out behind it: that bundle must return within its timeout and a margin,
// and dropping the stream must not hold the process's writers (every
// writer's Setup takes bqWriters).
func TestBigQueryTimeoutDuringOutage(t *testing.T) {
	api := startFakeWriteAPI(t)
	pane := sampleRows()[transforms.TableMetrics][0].(transforms.MetricsRow)
	if err := writeOneBundle(t, transforms.TableMetrics, pane, 0); err != nil {
		t.Fatal(err)
	}
	api.stop()
	reconnecting := make(chan error, 1)
	go func() { reconnecting <- writeOneBundle(t, transforms.TableMetrics, pane, 3*time.Second) }()
	time.Sleep(1500 * time.Millisecond)
	timedOut := make(chan error, 1)
	go func() { timedOut <- writeOneBundle(t, transforms.TableMetrics, pane, time.Second) }()
	hung := false
	select {
	case err := <-timedOut:
		if err == nil {
			t.Error("an append succeeded with the service down")
		}
	case <-time.After(5 * time.Second):
		hung = true
		t.Error("a bundle with a 1 s append timeout still running 5 s later, with the service down")
	}
	locked := make(chan struct{})
	go func() { bqWriters.Lock(); bqWriters.Unlock(); close(locked) }()
	select {
	case <-locked:
	case <-time.After(time.Second):
		t.Error("bqWriters held for 1 s after the bundles timed out: every writer's Setup blocks")
	}
	// End the outage: the reconnect succeeds, which frees what waits on
	// the connection's lock, so the clean-up can close the stream (a
	// client cannot be closed while its reconnect retries).
	api.restart(t)
	if hung {
		<-locked
		<-timedOut
	}
	select {
	case <-reconnecting:
	case <-time.After(30 * time.Second):
		t.Error("a bundle with a 3 s append timeout still running 30 s later")
	}
}
