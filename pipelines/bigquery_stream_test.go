package pipelines

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/bigquery/storage/apiv1/storagepb"
	"cloud.google.com/go/bigquery/storage/managedwriter"
	"github.com/campaignpulse/campaignpulse/transforms"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// fakeWriteAPI plays BigQuery's Storage Write API in this process, for the
// real managedwriter client to talk to (no emulator of it runs here): every
// table has a default stream that takes every append, or, while hang is
// set, answers none. It counts the AppendRows connections clients open.
type fakeWriteAPI struct {
	storagepb.UnimplementedBigQueryWriteServer

	mu          sync.Mutex
	connections int
	rows        int
	hang        bool
}

func (f *fakeWriteAPI) GetWriteStream(_ context.Context, req *storagepb.GetWriteStreamRequest) (*storagepb.WriteStream, error) {
	return &storagepb.WriteStream{Name: req.GetName(), Type: storagepb.WriteStream_COMMITTED, Location: "europe-west1"}, nil
}

func (f *fakeWriteAPI) AppendRows(stream storagepb.BigQueryWrite_AppendRowsServer) error {
	f.mu.Lock()
	f.connections++
	f.mu.Unlock()
	for {
		req, err := stream.Recv()
		if err != nil {
			return nil // the client closed the connection
		}
		f.mu.Lock()
		hang := f.hang
		if !hang {
			f.rows += len(req.GetProtoRows().GetRows().GetSerializedRows())
		}
		f.mu.Unlock()
		if hang {
			continue
		}
		if err := stream.Send(&storagepb.AppendRowsResponse{
			Response: &storagepb.AppendRowsResponse_AppendResult_{AppendResult: &storagepb.AppendRowsResponse_AppendResult{}},
		}); err != nil {
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

// startFakeWriteAPI serves a fakeWriteAPI and points this process's shared
// Storage Write clients at it, with none open, until the test ends.
func startFakeWriteAPI(t *testing.T) *fakeWriteAPI {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	api := &fakeWriteAPI{}
	srv := grpc.NewServer()
	storagepb.RegisterBigQueryWriteServer(srv, api)
	go srv.Serve(lis)

	closeSharedWriters := func() {
		bqWriters.Lock()
		defer bqWriters.Unlock()
		for k, ms := range bqWriters.streams {
			ms.Close()
			delete(bqWriters.streams, k)
		}
		for k, c := range bqWriters.clients {
			c.Close()
			delete(bqWriters.clients, k)
		}
	}
	closeSharedWriters()
	saved := bqClientOptions
	bqClientOptions = []option.ClientOption{
		option.WithEndpoint(lis.Addr().String()), option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())),
	}
	t.Cleanup(func() {
		closeSharedWriters()
		bqClientOptions = saved
		srv.Stop()
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
