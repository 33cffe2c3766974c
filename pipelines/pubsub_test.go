package pipelines

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/campaignpulse/campaignpulse/pipelines/generator"
	"github.com/campaignpulse/campaignpulse/transforms"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

func init() {
	register.Function2x1(observeBatch)
	register.Function2x1(failBatch)
	register.Function2x1(observeBatchSlowly)
	register.DoFn1x0[transforms.MessageBatch](&failFinishFn{})
}

// pstestSub is a pstest server with one topic and one subscription.
type pstestSub struct {
	srv          *pstest.Server
	topic, sub   string
	cfg          PubSubConfig
	ids          map[string]string // payload → message id
	publishStart time.Time
}

func newPstestSub(t testing.TB) *pstestSub {
	t.Helper()
	srv := pstest.NewServer()
	t.Cleanup(func() { srv.Close() })
	ctx := context.Background()
	c, err := pubsub.NewClient(ctx, "p", option.WithEndpoint(srv.Addr), option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ps := &pstestSub{srv: srv, topic: "projects/p/topics/events", sub: "projects/p/subscriptions/meta", ids: map[string]string{}}
	if _, err := c.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: ps.topic}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{Name: ps.sub, Topic: ps.topic, AckDeadlineSeconds: 10}); err != nil {
		t.Fatal(err)
	}
	ps.cfg = DefaultPubSubConfig
	ps.cfg.Subscriptions = []string{ps.sub}
	ps.cfg.Streams = 16 // pstest hands each stream about 100 messages a second
	ps.cfg.Endpoint = srv.Addr
	ps.cfg.WatermarkSkew = 5 * time.Second
	// The shortest lease: a message a failed job could not release comes
	// back within the second job of TestReadPubSubRedeliversAfterFailedBundle.
	ps.cfg.Lease = 10 * time.Second
	return ps
}

// publish publishes n messages "m-<i>"; every other one carries the replay
// attribute cmd/replay sets (wantReplayOf), which the source must pass on.
func (ps *pstestSub) publish(n int) {
	ps.publishStart = time.Now()
	for i := 0; i < n; i++ {
		data := fmt.Sprintf("m-%d", len(ps.ids))
		var attrs map[string]string
		if r := wantReplayOf(data); r != "" {
			attrs = map[string]string{ReplayOfAttribute: r}
		}
		ps.ids[data] = ps.srv.Publish(ps.topic, []byte(data), attrs)
	}
}

// wantReplayOf is the replay attribute publish gives message data.
func wantReplayOf(data string) string {
	var i int
	if _, err := fmt.Sscanf(data, "m-%d", &i); err != nil || i%2 == 1 {
		return ""
	}
	return "dead-letter-of-" + data
}

// acks returns each message's ack count.
func (ps *pstestSub) acks() map[string]int {
	out := map[string]int{}
	for _, m := range ps.srv.Messages() {
		out[string(m.Data)] = m.Acks
	}
	return out
}

// allAcked says whether pstest has an ack for every message it holds.
func (ps *pstestSub) allAcked() bool {
	for _, m := range ps.srv.Messages() {
		if m.Acks == 0 {
			return false
		}
	}
	return true
}

// waitAcked waits (bounded) until pstest has an ack for every message.
func (ps *pstestSub) waitAcked(t *testing.T, timeout time.Duration) map[string]int {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ps.allAcked() && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	return ps.acks()
}

// The observer: a step fused with the source that records, for every
// message, whether it had already been acknowledged when the step saw it.
// Prism runs the workers in this process, so it shares these with the test.
var observed struct {
	sync.Mutex
	want        int
	seen        map[string]int
	ackedEarly  []string          // acked by the source before this step saw them
	pstestAcked []string          // acked on the server before this step saw them
	srv         *pstest.Server    // for the server's view
	ids         map[string]string // payload → id
	acked       sync.Map          // payloads the source has acked (testAckHook)
	drained     atomic.Bool
}

func resetObserved(ps *pstestSub, want int) {
	observed.Lock()
	defer observed.Unlock()
	observed.want, observed.seen = want, map[string]int{}
	observed.ackedEarly, observed.pstestAcked = nil, nil
	observed.srv, observed.ids = ps.srv, ps.ids
	observed.acked.Range(func(k, _ any) bool { observed.acked.Delete(k); return true })
	observed.drained.Store(false)
	testAckHook = func(m *pubsub.Message) { observed.acked.Store(string(m.Data), true) }
}

// observeBatchSlowly is observeBatch taking its time, so that deliveries
// pile up in the source while a bundle runs. With a runner that commits
// quickly (Prism fix 10) the source acked a bundle's messages before the
// fake had delivered many more, and a flow-control test never reached its
// limit.
func observeBatchSlowly(ctx context.Context, b transforms.MessageBatch) error {
	time.Sleep(20 * time.Millisecond)
	return observeBatch(ctx, b)
}

func observeBatch(_ context.Context, b transforms.MessageBatch) error {
	observed.Lock()
	defer observed.Unlock()
	for _, m := range b.Messages {
		data := string(m.Data)
		if _, ok := observed.acked.Load(data); ok {
			observed.ackedEarly = append(observed.ackedEarly, data)
		}
		if sm := observed.srv.Message(observed.ids[data]); sm != nil && sm.Acks > 0 {
			observed.pstestAcked = append(observed.pstestAcked, data)
		}
		if m.Source != "meta" || m.PublishTime <= 0 || m.ReplayOf != wantReplayOf(data) || m.ID != observed.ids[data] {
			return fmt.Errorf("message %q: source %q, publish time %d, replay_of %q (want %q), id %q (want %q)",
				data, m.Source, m.PublishTime, m.ReplayOf, wantReplayOf(data), m.ID, observed.ids[data])
		}
		observed.seen[data]++
	}
	if len(observed.seen) >= observed.want && !observed.drained.Swap(true) {
		DrainSources()
	}
	return nil
}

var errInjected = errors.New("injected failure")

func failBatch(_ context.Context, b transforms.MessageBatch) error {
	observed.Lock()
	for _, m := range b.Messages {
		observed.seen[string(m.Data)]++
	}
	observed.Unlock()
	return errInjected
}

// runPubSub runs ReadPubSub on Prism into step, bounded: the sources drain
// after limit whatever happens. The steps that expect every message drain
// the sources once they have seen them all, so limit is only a cap, set for
// a loaded machine.
func runPubSub(t testing.TB, cfg PubSubConfig, lanes int, step any, limit time.Duration) error {
	t.Helper()
	p, s := beam.NewPipelineWithRoot()
	for k := 0; k < lanes; k++ {
		beam.ParDo0(s.Scope(laneName(k)), step, ReadPubSub(s.Scope(laneName(k)), cfg, k, lanes))
	}
	cancel := DrainAfter(limit)
	defer cancel()
	ctx, stop := context.WithTimeout(context.Background(), limit+15*time.Second)
	defer stop()
	_, err := beam.Run(ctx, "prism", p)
	return err
}

// TestReadPubSubRegistersNoFinalizationCallback: the Go SDK v2.77 keeps every
// bundle-finalization callback a reused plan's ParDo registers after the
// plan's first finalization, for the life of the plan (Plan.Finalize swaps
// in a finalizer the ParDo never sees), and never runs it: one a call, so a
// source that registered one grew by about 120 callbacks a second on two
// idle cores, each holding its receiver. The source acks on its
// restriction's Confirm alone and takes no beam.BundleFinalization.
func TestReadPubSubRegistersNoFinalizationCallback(t *testing.T) {
	m, ok := reflect.TypeOf(&readPubSubFn{}).MethodByName("ProcessElement")
	if !ok {
		t.Fatal("readPubSubFn has no ProcessElement")
	}
	bf := reflect.TypeOf((*beam.BundleFinalization)(nil)).Elem()
	for i := range m.Type.NumIn() {
		if m.Type.In(i) == bf {
			t.Fatalf("readPubSubFn.ProcessElement takes a %v (parameter %d): its callbacks pile up in every reused plan", bf, i)
		}
	}
}

// TestReadPubSubAcksAfterFinalization: the source acknowledges a message
// only once the bundle that emitted it was committed: the step fused with
// the source never sees a message already acked (by the source or on the
// server), and in the end every message is acked exactly once.
func TestReadPubSubAcksAfterFinalization(t *testing.T) {
	const n = 1000
	ps := newPstestSub(t)
	ps.publish(n)
	resetObserved(ps, n)
	defer func() { testAckHook = nil }()
	_, acked0, _, _ := PubSubStats()
	start := time.Now()
	if err := runPubSub(t, ps.cfg, 2, observeBatch, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	t.Logf("read %d messages and drained in %s", n, time.Since(start).Round(time.Millisecond))
	if !waitReceivers(10 * time.Second) {
		t.Fatal("the receivers did not close after the drain")
	}
	observed.Lock()
	defer observed.Unlock()
	if len(observed.seen) != n {
		t.Fatalf("saw %d distinct messages, want %d", len(observed.seen), n)
	}
	if len(observed.ackedEarly) > 0 || len(observed.pstestAcked) > 0 {
		t.Fatalf("acked before their bundle committed: by the source %d (e.g. %v), on the server %d",
			len(observed.ackedEarly), head(observed.ackedEarly), len(observed.pstestAcked))
	}
	acks := ps.waitAcked(t, 10*time.Second)
	var bad []string
	for data := range ps.ids {
		if acks[data] != 1 {
			bad = append(bad, fmt.Sprintf("%s:%d", data, acks[data]))
		}
	}
	if len(bad) > 0 {
		t.Fatalf("%d messages not acked exactly once (payload:acks), e.g. %v", len(bad), head(bad))
	}
	if _, acked, _, out := PubSubStats(); acked-acked0 < n || out != 0 {
		t.Errorf("stats: acked %d (want ≥ %d), outstanding %d (want 0)", acked-acked0, n, out)
	}
}

// TestReadPubSubRedeliversAfterFailedBundle: a step fused with the source
// fails every attempt, so Prism fails the job (the patched Prism after its
// retries, about 16 s, pipelines/prism); no message is acked, and a second
// pipeline reads every message again.
func TestReadPubSubRedeliversAfterFailedBundle(t *testing.T) {
	const n = 500
	ps := newPstestSub(t)
	ps.publish(n)
	resetObserved(ps, n)
	defer func() { testAckHook = nil }()
	err := runPubSub(t, ps.cfg, 1, failBatch, 45*time.Second)
	if err == nil {
		t.Fatal("the pipeline whose step failed succeeded")
	}
	observed.Lock()
	failedSaw := len(observed.seen)
	observed.Unlock()
	if failedSaw == 0 {
		t.Fatalf("the failing step saw no message: %v", err)
	}
	if !waitReceivers(10 * time.Second) {
		t.Fatal("the receiver of the failed job did not close")
	}
	for data, a := range ps.acks() {
		if a != 0 {
			t.Fatalf("message %s acked %d times by a job that failed", data, a)
		}
	}
	resetObserved(ps, n)
	if err := runPubSub(t, ps.cfg, 1, observeBatch, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	waitReceivers(10 * time.Second)
	observed.Lock()
	got := len(observed.seen)
	observed.Unlock()
	if got != n {
		observed.Lock()
		var missing []string
		for _, m := range ps.srv.Messages() {
			if observed.seen[string(m.Data)] == 0 && len(missing) < 5 {
				missing = append(missing, fmt.Sprintf("%s deliveries=%d modacks=%v", m.Data, m.Deliveries, m.Modacks))
			}
		}
		observed.Unlock()
		rc, ac, nc, oc := PubSubStats()
		t.Fatalf("the second job read %d of %d messages (the failed one saw %d); stats %d/%d/%d/%d; missing e.g. %v", got, n, failedSaw, rc, ac, nc, oc, missing)
	}
	acks := ps.waitAcked(t, 10*time.Second)
	for data := range ps.ids {
		if acks[data] != 1 {
			t.Fatalf("message %s acked %d times, want 1", data, acks[data])
		}
	}
	t.Logf("the failed job saw %d messages; the second read all %d", failedSaw, n)
}

// finishFailures counts the bundles failFinishFn has failed.
var finishFailures atomic.Int64

// failFinishFn is a step fused with the source whose first two non-empty
// bundles fail at FinishBundle, after the source's call has returned and
// held its messages. The messages of a bundle that commits count as seen;
// once all are seen it drains the sources, as observeBatch does.
type failFinishFn struct{ pending []string }

func (f *failFinishFn) ProcessElement(b transforms.MessageBatch) {
	for _, m := range b.Messages {
		f.pending = append(f.pending, string(m.Data))
	}
}

func (f *failFinishFn) FinishBundle() error {
	p := f.pending
	f.pending = nil
	if len(p) > 0 && finishFailures.Add(1) <= 2 {
		return errInjected
	}
	observed.Lock()
	defer observed.Unlock()
	for _, d := range p {
		observed.seen[d]++
	}
	if len(observed.seen) >= observed.want && !observed.drained.Swap(true) {
		DrainSources()
	}
	return nil
}

// TestReadPubSubRedeliversABundleThatFailedAfterItsCall: a bundle fails
// after the source's call returned (a fused step's FinishBundle), and the
// runner retries it from the same restriction. The retry's later call
// confirms a later hold; the failed attempt's messages must come back, not
// be acked with it unread. Every message is seen by a committed bundle and
// acked once.
func TestReadPubSubRedeliversABundleThatFailedAfterItsCall(t *testing.T) {
	const n = 500
	ps := newPstestSub(t)
	ps.publish(n)
	resetObserved(ps, n)
	finishFailures.Store(0)
	if err := runPubSub(t, ps.cfg, 1, &failFinishFn{}, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	if f := finishFailures.Load(); f < 3 {
		t.Fatalf("%d bundles finished, want the two failures and one that commits", f)
	}
	waitReceivers(10 * time.Second)
	acks := ps.waitAcked(t, 10*time.Second)
	observed.Lock()
	defer observed.Unlock()
	var lost, unacked []string
	for data := range ps.ids {
		if observed.seen[data] == 0 {
			lost = append(lost, data)
		}
		if acks[data] != 1 {
			unacked = append(unacked, fmt.Sprintf("%s acked %d times", data, acks[data]))
		}
	}
	if len(lost) > 0 {
		t.Errorf("%d of %d messages were never seen by a committed bundle, e.g. %v (acked: %d)", len(lost), n, head(lost), acks[lost[0]])
	}
	if len(unacked) > 0 {
		t.Errorf("%d messages not acked once, e.g. %v", len(unacked), head(unacked))
	}
}

// TestReadPubSubFlowControl: with MaxOutstanding = m, the source never
// holds more than m messages pulled and not yet acked or released.
func TestReadPubSubFlowControl(t *testing.T) {
	const n, m = 1000, 40
	ps := newPstestSub(t)
	ps.cfg.MaxOutstanding = m
	ps.publish(n)
	resetObserved(ps, n)
	defer func() { testAckHook = nil }()
	psStats.peak.Store(0)
	if err := runPubSub(t, ps.cfg, 2, observeBatchSlowly, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	waitReceivers(10 * time.Second)
	observed.Lock()
	got := len(observed.seen)
	observed.Unlock()
	peak := psStats.peak.Load()
	t.Logf("read %d messages; at most %d held at once (limit %d)", got, peak, m)
	if got != n {
		t.Fatalf("read %d of %d messages", got, n)
	}
	if peak > m {
		t.Fatalf("held %d messages at once, more than MaxOutstanding = %d", peak, m)
	}
	if peak < m/2 {
		t.Errorf("held at most %d messages at once: the limit %d never bound, so the test proves nothing", peak, m)
	}
}

// TestReadPubSubDrainAskedBeforeBuild: Main takes the drain count before it
// arms --run_for and Ctrl-C, and RunLocal builds the graph only after its
// checks, the Bigtable seeding and the warehouse reset. A drain asked in
// between stops the sources once they start, instead of being lost (the run
// went on until killed).
func TestReadPubSubDrainAskedBeforeBuild(t *testing.T) {
	ps := newPstestSub(t)
	ps.publish(10)
	resetObserved(ps, 1_000) // more than there are: only the drain ends the run
	defer func() { testAckHook = nil }()
	base := DrainCount()
	ps.cfg.DrainBase = &base
	DrainSources() // Ctrl-C while the run starts

	const limit = 90 * time.Second // DrainAfter's own drain, which must not be what ends it
	var capped atomic.Bool
	capTimer := time.AfterFunc(limit, func() { capped.Store(true) })
	defer capTimer.Stop()
	if err := runPubSub(t, ps.cfg, 1, observeBatch, limit); err != nil {
		t.Fatal(err)
	}
	if capped.Load() {
		t.Fatalf("the run ended only at its %v cap: the drain asked before the graph was built was lost", limit)
	}
}

// TestLocalRunFromPubSubReportsProgress: a local run from Pub/Sub (no
// --streaming, which reports its own) prints progress lines while it runs.
// It printed none: an operator of a run until Ctrl-C saw nothing.
func TestLocalRunFromPubSubReportsProgress(t *testing.T) {
	ps := newPstestSub(t)
	ps.publish(50)
	defer func(old time.Duration) { unboundedProgressInterval = old }(unboundedProgressInterval)
	unboundedProgressInterval = 200 * time.Millisecond
	var progress syncBuffer
	acked0, answered0, _, _ := AckStats()
	printed := func() bool { return strings.Contains(progress.String(), "progress: ") }
	runLocalPubSub(t, testOptions(t, 1), ps.cfg, time.Minute, func() bool { return ps.allAcked() && printed() }, &progress)
	if !printed() {
		t.Errorf("a run from Pub/Sub printed no progress line in a minute:\n%s", progress.String())
	}
	// And how far Pub/Sub's confirmations trail the source's acks: once the
	// run has stopped, every ack is answered.
	if !strings.Contains(progress.String(), " ack_answered=") {
		t.Errorf("no progress line says how many acks Pub/Sub answered:\n%s", progress.String())
	}
	acked, answered, _, _ := AckStats()
	if acked-acked0 < 50 || answered-answered0 < acked-acked0 {
		t.Errorf("after the run: acked %d, answered %d; want at least 50, and every one answered",
			acked-acked0, answered-answered0)
	}
}

// runLocalPubSub runs the local job with o's settings from the Pub/Sub
// subscriptions of cfg until done says so (polled) or for runFor at most,
// with that drain armed as Main arms --run_for, and returns its summary.
// Like Main for --source=pubsub, it appends to the warehouse (a restart's
// run). A drain at a fixed time raced the run's start on a loaded machine:
// one that came before the sources had read anything stopped them at once.
func runLocalPubSub(t *testing.T, o *Options, cfg PubSubConfig, runFor time.Duration, done func() bool, progress io.Writer) *Summary {
	t.Helper()
	o.Source, o.PubSub, o.RunFor = SourcePubSub, cfg, runFor
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	base := DrainCount()
	o.PubSub.DrainBase = &base
	defer DrainAfter(o.RunFor)()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for !done() {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
		DrainSources()
	}()
	sum, err := RunLocal(context.Background(), o, false, progress)
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

// syncBuffer is a bytes.Buffer safe for a writer goroutine and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestLaneStreams(t *testing.T) {
	for _, c := range []struct{ streams, subs, lanes int }{{16, 6, 2}, {1, 6, 4}, {3, 1, 2}, {2, 1, 4}} {
		for j := 0; j < c.subs; j++ {
			sum := 0
			for k := 0; k < c.lanes; k++ {
				sum += laneStreams(c.streams, j, k, c.lanes)
			}
			if sum != c.streams {
				t.Errorf("%+v: subscription %d has %d streams over the lanes, want %d", c, j, sum, c.streams)
			}
		}
	}
}

func head(s []string) []string { return s[:min(len(s), 5)] }

// TestCheckSubscriptions: a local run from Pub/Sub fails before it starts,
// and leaves the warehouse alone, when a subscription does not exist or
// the client has no credentials; an existing subscription passes.
func TestCheckSubscriptions(t *testing.T) {
	ctx := context.Background()
	ps := newPstestSub(t)
	if err := CheckSubscriptions(ctx, ps.cfg, nil); err != nil {
		t.Errorf("existing subscription: %v", err)
	}

	missing := ps.cfg
	missing.Subscriptions = []string{ps.sub, "projects/p/subscriptions/metta"}
	err := CheckSubscriptions(ctx, missing, nil)
	if err == nil || !strings.Contains(err.Error(), "projects/p/subscriptions/metta does not exist") {
		t.Errorf("misspelt subscription: got %v", err)
	}

	// Real Pub/Sub (no fake, no emulator) with credentials that are not there.
	t.Setenv("PUBSUB_EMULATOR_HOST", "")
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", filepath.Join(t.TempDir(), "missing.json"))
	noCreds := ps.cfg
	noCreds.Endpoint = ""
	if err := CheckSubscriptions(ctx, noCreds, nil); err == nil || !strings.Contains(err.Error(), "gcloud auth application-default login") {
		t.Errorf("no credentials: got %v", err)
	}

	// Through RunLocal: the run fails at once and the warehouse keeps its rows.
	warehouse := filepath.Join(t.TempDir(), "w.duckdb")
	w, err := OpenWarehouse(warehouse)
	if err != nil {
		t.Fatal(err)
	}
	_, err = w.DB().Exec(`INSERT INTO dead_letter_events BY NAME SELECT 'parse' AS stage, 'PARSE_EMPTY_PAYLOAD' AS error_code, '' AS error_message,
		''::BLOB AS payload, 0 AS payload_bytes, 'file' AS source, now() AS processing_timestamp, 'test' AS pipeline_version`)
	w.Release()
	if err != nil {
		t.Fatal(err)
	}
	fs := flag.NewFlagSet("campaignpulse", flag.ContinueOnError)
	o := RegisterFlags(fs)
	if err := fs.Parse([]string{"--source=pubsub", "--subscriptions=projects/p/subscriptions/metta", "--enrich=false", "--warehouse=" + warehouse}); err != nil {
		t.Fatal(err)
	}
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	o.PubSub.Endpoint = ps.srv.Addr
	// Without the check the run would read nothing until drained.
	defer DrainAfter(5 * time.Second)()
	if _, err := RunLocal(ctx, o, true, nil); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("RunLocal with a missing subscription: got %v", err)
	}
	w, err = OpenWarehouse(warehouse)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Release()
	var n int
	if err := w.DB().QueryRow("SELECT count(*) FROM dead_letter_events").Scan(&n); err != nil || n != 1 {
		t.Errorf("the warehouse holds %d dead letters after the refused run (%v), want its 1", n, err)
	}
}

// TestLocalRunAfterALongStopAggregatesTheBacklog: a job started on a
// subscription whose messages were published longer ago than the allowed
// lateness plus the margin (a restart after a long stop) aggregates every
// one of them. The source's watermark used to jump to its clock at the first
// call, before the stream had delivered the backlog, so the runner had
// expired the backlog's windows when its events arrived: a review published
// 4,000 events 13.5 minutes before the job and 1,903 were aggregated.
func TestLocalRunAfterALongStopAggregatesTheBacklog(t *testing.T) {
	ps := newPstestSub(t)
	o := testOptions(t, 1)
	// pstest forgets a message ten minutes after its publication: a short
	// allowed lateness and margin make a six-minute stop a long one.
	o.Window.AllowedLateness, o.Window.LatenessMargin = 2*time.Minute, 30*time.Second
	g := generator.Default()
	g.Events, g.Rate = 600, 10 // a minute of traffic, from six minutes ago
	g.Start = time.Now().Add(-6 * time.Minute).UTC()
	g.WindowSize, g.AllowedLateness, g.WatermarkSkew = o.Window.Size, o.Window.AllowedLateness, o.Window.WatermarkSkew
	g.LateRate, g.TooLateRate, g.DuplicateRate, g.MalformedRate = 0, 0, 0.02, 0.02
	for i := int64(0); i < g.Events; i++ {
		m := g.Message(i, nil)
		at := time.UnixMilli(m.PublishTime)
		ps.srv.SetTimeNowFunc(func() time.Time { return at })
		ps.srv.Publish(ps.topic, m.Data, map[string]string{"source": "meta"})
	}
	ps.srv.SetTimeNowFunc(time.Now)
	// One stream, which pstest feeds about 100 messages a second: the
	// backlog comes over some six seconds, and the source's queue runs dry
	// between deliveries, as it did on the emulator.
	ps.cfg.Streams = 1
	sum := runLocalPubSub(t, o, ps.cfg, 2*time.Minute, ps.allAcked, nil)
	want := g.Expected()
	if sum.In != g.Events || sum.Valid != want.Valid || sum.TooLate != 0 {
		t.Errorf("in=%d valid=%d too_late=%d, want in=%d valid=%d too_late=0", sum.In, sum.Valid, sum.TooLate, g.Events, want.Valid)
	}
	if sum.LatestPaneEvents != sum.Valid {
		t.Errorf("the latest panes hold %d of the %d valid events, all of them on time by their arrival: the runner expired their windows before they were read",
			sum.LatestPaneEvents, sum.Valid)
	}
}

// TestReadUpToFollowsTheBacklog drives a receiver's catch-up rule on
// synthetic times: no watermark before the first message; behind the
// newest backlog message by the lag, never before the oldest, while two
// streams hand their shares over interleaved; not moved by, nor done at,
// a new message while backlog ones still come; not done while every slot
// is taken; then the clock. With no backlog, the oldest message read until
// the catch-up; with no message, nothing. Full slots hold the catch-up only
// while nothing is handed over.
func TestReadUpToFollowsTheBacklog(t *testing.T) {
	const minute = int64(60_000)
	lag := 12 * minute
	start := int64(1_800_000_000_000)
	receiver := func(slots int) *pubsubReceiver {
		r := &pubsubReceiver{slots: make(chan struct{}, slots)}
		r.startCatchUp(start, lag)
		return r
	}
	want := func(r *pubsubReceiver, now, at int64, ok bool) {
		t.Helper()
		got, gotOK := r.readUpTo(now)
		if gotOK != ok || (ok && got != at) {
			t.Errorf("at start+%d ms: readUpTo = %d (start%+d ms), %v; want start%+d ms, %v", now-start, got, got-start, gotOK, at-start, ok)
		}
	}
	r := receiver(2)
	want(r, start+9_000, 0, false) // nothing received, within firstDeliveryQuiet

	r.noteDelivery(start-60*minute, start+9_500) // stream A's share starts an hour back
	r.noteDelivery(start-30*minute, start+9_510) // stream B's half an hour back
	want(r, start+9_520, start-42*minute, true)  // B's head less the lag: A's messages after its head are newer than that
	r.noteDelivery(start-70*minute, start+9_530) // a redelivery older than both: the floor, not the target
	want(r, start+9_540, start-42*minute, true)

	r.noteDelivery(start+9_000, start+9_600)     // published since the start (a live publisher)
	r.noteDelivery(start-29*minute, start+9_700) // the backlog goes on
	want(r, start+12_000, start-41*minute, true) // 2.3 s without a backlog message: not read yet

	r.slots <- struct{}{} // every slot taken: the client hands nothing over
	r.slots <- struct{}{}
	want(r, start+20_000, start-41*minute, true)
	<-r.slots
	<-r.slots
	want(r, start+22_000, start-41*minute, true) // room for 2 s only
	want(r, start+23_000, start+23_000, true)    // 3 s with room and no backlog message: the clock

	// No backlog, a publisher beside the job: its oldest message until 3 s
	// without a backlog message, then the clock.
	n := receiver(2)
	n.noteDelivery(start+1_000, start+1_200)
	n.noteDelivery(start+2_000, start+2_100)
	want(n, start+2_200, start+1_000, true)
	want(n, start+3_000, start+3_000, true)

	// Full at a call's start, nothing handed over since (the job paused and
	// the stream could not deliver): the quiet starts there. Full at every
	// call but handed messages between them (a job slower than its
	// publisher): it ends 3 s after the last backlog message all the same.
	p := receiver(1)
	p.noteDelivery(start-20*minute, start+1_000)
	p.slots <- struct{}{}
	p.noteRoom(start + 9_000)
	<-p.slots
	want(p, start+9_100, start-20*minute, true)
	p.noteDelivery(start+9_000, start+9_200) // a new message handed over once there is room
	p.slots <- struct{}{}
	p.noteRoom(start + 9_500)
	<-p.slots
	want(p, start+11_000, start-20*minute, true) // full 1.5 s ago, nothing handed over since
	p.noteDelivery(start+10_000, start+11_500)
	p.slots <- struct{}{}
	p.noteRoom(start + 12_000)
	<-p.slots
	p.noteDelivery(start+11_000, start+12_100)
	want(p, start+12_200, start+12_200, true) // 11 s after its last backlog message: the clock

	// An empty subscription: the clock after firstDeliveryQuiet.
	e := receiver(2)
	want(e, start+9_999, 0, false)
	want(e, start+10_000, start+10_000, true)
}

// TestAMessageCarriesItsRestrictionsWatermark: the native source stamps
// each message with its restriction's watermark as the runner has it, the
// estimator's state at the call's start (MinTimestamp, before the first
// residual, as 0), not the value the call advances it to at its end: until
// the call's bundle commits, that state is the one bound on the watermark
// the runner judges the message by (see pubsubWatermark).
func TestAMessageCarriesItsRestrictionsWatermark(t *testing.T) {
	ps := newPstestSub(t)
	f := handDrivenRead(t, ps, "stamp-run")
	read := func(state, want int64) {
		t.Helper()
		ps.publish(3)
		var got []int64
		deadline := time.Now().Add(10 * time.Second)
		for len(got) == 0 && time.Now().Before(deadline) {
			we := f.CreateWatermarkEstimator(state)
			rt := f.CreateTracker(f.CreateInitialRestriction(ps.sub))
			if _, err := f.ProcessElement(context.Background(), we, rt, ps.sub, func(_ beam.EventTime, b transforms.MessageBatch) {
				for _, m := range b.Messages {
					got = append(got, m.Watermark)
				}
			}); err != nil {
				t.Fatal(err)
			}
		}
		if len(got) == 0 {
			t.Fatal("read nothing in 10 s")
		}
		for _, w := range got {
			if w != want {
				t.Fatalf("a message read under watermark state %d carries %d, want %d", state, w, want)
			}
		}
	}
	read(f.InitialWatermarkEstimatorState(0, pubsubRestriction{}, ""), 0)
	own := time.Now().Add(-20 * time.Minute).UnixMilli()
	read(own, own)
}

// TestAnEmptyCallConfirmsWhatTheLastDid: a call that emits nothing hands on
// the Confirm it started from, so a restriction's Confirm never goes back.
// It went to 0, and the next call's releaseAfter(0) took every hold of the
// receiver for a failed attempt's: an expired hold's copies, known only to
// have been released, were then ended as dropped though their bundle had
// committed, and a repeat of one could be acked before it was written.
func TestAnEmptyCallConfirmsWhatTheLastDid(t *testing.T) {
	ps := newPstestSub(t)
	f := handDrivenRead(t, ps, "confirm-run")
	call := func(rest pubsubRestriction) (emitted int, residual pubsubRestriction) {
		rt := f.CreateTracker(rest)
		if _, err := f.ProcessElement(context.Background(), f.CreateWatermarkEstimator(0), rt, ps.sub,
			func(_ beam.EventTime, b transforms.MessageBatch) { emitted += len(b.Messages) }); err != nil {
			t.Fatal(err)
		}
		return emitted, rt.GetRestriction().(pubsubRestriction)
	}
	ps.publish(3)
	rest := f.CreateInitialRestriction(ps.sub)
	for read, deadline := 0, time.Now().Add(10*time.Second); read < 3; {
		if time.Now().After(deadline) {
			t.Fatalf("read %d of 3 messages in 10 s", read)
		}
		var n int
		n, rest = call(rest)
		read += n
	}
	if rest.Confirm == 0 {
		t.Fatal("a call that emitted messages confirms no hold")
	}
	if n, next := call(rest); n != 0 || next.Confirm != rest.Confirm {
		t.Fatalf("a call that emitted %d messages handed on Confirm %d, want 0 messages and Confirm %d", n, next.Confirm, rest.Confirm)
	}
}

// handDrivenRead is a one-lane read of ps's subscription for a test that
// calls ProcessElement itself. Its receiver is closed when the test ends
// (closeReceiver).
func handDrivenRead(t *testing.T, ps *pstestSub, run string) *readPubSubFn {
	f := &readPubSubFn{Subscriptions: []string{ps.sub}, Streams: 1, MaxOutstanding: 100, MaxExtension: time.Minute,
		Lease: 10 * time.Second, Endpoint: ps.srv.Addr, Lane: 0, Lanes: 1, RunID: run, Graph: run, DrainGen: DrainCount()}
	f.Setup()
	t.Cleanup(func() { closeReceiver(t, run+"/"+ps.sub+"/0") })
	return f
}

// closeReceiver closes the receiver of key and waits until its Receive has
// returned: before the test's pstest server closes (cleanups run last
// first), or the nacks of what it held go to a closed server, and the
// receiver stays live for a minute (before FinishReceivers took a graph,
// every later run waited out its timeout for it).
func closeReceiver(t *testing.T, key string) {
	r := lookupReceiver(key)
	if r == nil {
		return
	}
	r.close()
	select {
	case <-r.exited:
	case <-time.After(10 * time.Second):
		t.Errorf("receiver %s still live 10 s after it closed", key)
	}
}

// TestFinishReceiversTakesItsGraphsOnly: a run finishes the drained
// receivers of its own graph, not one of an earlier graph of the process
// whose Receive has not returned (the run would wait its whole timeout for
// it), nor one of its own still reading.
func TestFinishReceiversTakesItsGraphsOnly(t *testing.T) {
	drained := &pubsubReceiver{graph: "this", stopping: true}
	reading := &pubsubReceiver{graph: "this"}
	stale := &pubsubReceiver{graph: "earlier", stopping: true, shut: true}
	registry.Lock()
	for _, r := range []*pubsubReceiver{drained, reading, stale} {
		registry.live[r] = true
	}
	registry.Unlock()
	t.Cleanup(func() {
		registry.Lock()
		delete(registry.live, drained)
		delete(registry.live, reading)
		delete(registry.live, stale)
		registry.Unlock()
	})
	if got := finishing("this"); len(got) != 1 || got[0] != drained {
		t.Fatalf("finishing(this) = %v, want only the drained receiver of this graph %p (reading %p, stale %p)", got, drained, reading, stale)
	}
	if got := finishing("earlier"); len(got) != 1 || got[0] != stale {
		t.Fatalf("finishing(earlier) = %v, want only %p", got, stale)
	}
}
