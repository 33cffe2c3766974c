package pipelines

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/mtime"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/sdf"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/log"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/campaignpulse/campaignpulse/transforms"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// The native Pub/Sub source, for every runner but Dataflow.
//
// Each lane reads one restriction per subscription: a streaming pull over its
// share of the subscription's streams. The pull (a Subscriber.Receive) must
// outlive the ProcessElement calls, which return quickly so that bundles
// commit often; it lives in a process-level registry, keyed by the
// restriction's owner. That works because Prism runs the SDK harness inside
// the launching process (loopback): the registry, DrainSources and
// PubSubStats are shared by the DoFn and its caller. A remote harness would
// keep its own registry, and DrainSources would not reach it.
//
// A message goes through these states:
//
//	queued      delivered by the client, not yet emitted;
//	emitted     part of a bundle the runner has not yet committed;
//	committed   the runner committed the bundle (under settlement: the
//	            message waits for its record to be durable);
//	acked       without settlement, at the commit; with it, once settled.
//
// Under settlement (PubSubConfig.Settle, every local run, into DuckDB or
// BigQuery) a message is acknowledged only once its row is committed or
// Dedup has dropped it as a repeat: see settleDeliveries. Without it (the
// tests of the source alone), it is acknowledged once the
// runner has committed the bundle that emitted it. Either way the commit is
// known the same way: the next ProcessElement call of the restriction says so, as
// the runner hands a checkpointed residual back only with its committed
// bundle (the restriction's Confirm names the messages it vouches for). The
// source registers no bundle-finalization callback (beam.BundleFinalization):
// the Go SDK v2.77 runs them only for the first bundle of each reused plan
// (Plan.Finalize swaps in a new bundleFinalizer the ParDo never sees), and
// every later one stays in the old finalizer for the life of the plan, one
// per call: a process that read for a day kept millions, each holding its
// receiver. A message is
// released (Nack, so Pub/Sub redelivers it at once) when its bundle fails
// (the emit that failed panics through ProcessElement), when the source
// drains (the queued ones), when no call has confirmed it after
// MaxExtension, and when no ProcessElement call has come for idleTimeout
// (the job ended or failed). If the process dies, the lease expires and
// Pub/Sub redelivers. A message is never acked before its record is durable
// (under settlement; a dead letter written by a step fused with the source
// can be, before the bundle commits) or its bundle committed (without), and
// never dropped; a redelivered one is a duplicate Dedup removes.
//
// Flow control: each held message (queued or emitted) takes one of
// MaxOutstanding slots, given back when it is acked or nacked; the Receive
// callback waits for a slot, so the messages held are bounded exactly.

func init() {
	register.DoFn5x2[context.Context, *pubsubWatermark, *sdf.LockRTracker, string,
		func(beam.EventTime, transforms.MessageBatch), sdf.ProcessContinuation, error](&readPubSubFn{})
	register.Emitter2[beam.EventTime, transforms.MessageBatch]()
	beam.RegisterType(reflect.TypeOf((*pubsubRestriction)(nil)).Elem())
}

// Tuning of the native source.
const (
	// pubsubSlice is how long a ProcessElement call waits for a first message
	// before it checkpoints, so an idle source still advances its watermark
	// and notices a drain.
	pubsubSlice = 100 * time.Millisecond
	// pubsubBatchesPerCall bounds what one call emits: a bundle commits (and
	// its messages are acked) after at most this many batches.
	pubsubBatchesPerCall = 8
	// idleTimeout is how long a receiver waits for the next ProcessElement
	// call before it takes the job for gone and releases its messages.
	idleTimeout = 20 * time.Second
	// catchUpQuiet is how long a new receiver must go without a message
	// published before it started (without any message, if none published
	// since has come), while it has room for more, before it takes the
	// backlog it found for read; firstDeliveryQuiet, how long it waits for
	// its first message (see pubsubReceiver.readUpTo).
	catchUpQuiet       = 3 * time.Second
	firstDeliveryQuiet = 10 * time.Second
)

// ReadPubSub is the native Pub/Sub source of every runner but Dataflow:
// lane k of lanes reads its share of the streaming-pull streams of
// cfg.Subscriptions and emits transforms.MessageBatch, each at the publish
// time of its oldest message. See the comment above for how messages are
// acknowledged and released.
func ReadPubSub(s beam.Scope, cfg PubSubConfig, lane, lanes int) beam.PCollection {
	s = s.Scope("ReadPubSub")
	lanes = max(lanes, 1)
	subs := []string{} // a lane with no stream is an empty source
	for j, sub := range cfg.Subscriptions {
		if laneStreams(cfg.Streams, j, lane, lanes) > 0 {
			subs = append(subs, sub)
		}
	}
	gen := drainGen.Load()
	if cfg.DrainBase != nil {
		gen = *cfg.DrainBase
	}
	runID := newRunID()
	graph := cfg.Graph
	if graph == "" { // a lone read (tests): its lane is its graph
		graph = runID
	}
	fn := &readPubSubFn{
		Subscriptions: cfg.Subscriptions, Streams: max(cfg.Streams, 1), MaxOutstanding: max(cfg.MaxOutstanding, 1),
		MaxExtension: cfg.MaxExtension, Lease: cfg.Lease, SkewMillis: cfg.WatermarkSkew.Milliseconds(), Endpoint: cfg.Endpoint,
		CatchUpLagMillis: cfg.CatchUpLag.Milliseconds(), Settle: cfg.Settle,
		Lane: lane, Lanes: lanes, RunID: runID, Graph: graph, DrainGen: gen,
	}
	return beam.ParDo(s, fn, beam.CreateList(s, subs))
}

// laneStreams is how many of subscription j's streams lane k reads: the
// streams of all subscriptions are dealt round-robin over the lanes, so each
// subscription has streams streams in all and the lanes' shares differ by
// at most one.
func laneStreams(streams, j, lane, lanes int) int {
	streams = max(streams, 1)
	n := 0
	for i := j * streams; i < (j+1)*streams; i++ {
		if i%lanes == lane {
			n++
		}
	}
	return n
}

func newRunID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// pubsubRestriction is what one ProcessElement call reads: a subscription
// through so many streams, holding at most MaxOutstanding messages.
type pubsubRestriction struct {
	Subscription   string
	Streams        int
	MaxOutstanding int
	// Confirm is the hold of the messages the call that checkpointed this
	// restriction emitted, or, if it emitted none, the Confirm it started
	// from: it never goes back. The runner hands a residual back only once
	// it has committed the bundle that made it, so a call that receives it
	// acks them (see ProcessElement).
	Confirm int64
}

type readPubSubFn struct {
	Subscriptions  []string
	Streams        int
	MaxOutstanding int
	MaxExtension   time.Duration
	Lease          time.Duration
	SkewMillis     int64
	// CatchUpLagMillis is how far behind the newest backlog message read
	// the watermark stays while a receiver reads the backlog it found.
	CatchUpLagMillis int64
	Endpoint         string // a fake's address (tests); empty: Pub/Sub, or $PUBSUB_EMULATOR_HOST
	Settle           bool   // PubSubConfig.Settle: ack a message once it is settled, not once committed
	Lane, Lanes      int
	RunID            string // this read's (one a lane), so two pipelines of one process never share a receiver
	Graph            string // PubSubConfig.Graph: shared by the lanes of one graph, which read the same messages
	DrainGen         int64  // DrainSources called after the graph was built stops it

	received, emitted, acked, nacked beam.Counter
}

func (f *readPubSubFn) Setup() {
	f.received = beam.NewCounter(transforms.Namespace, "pubsub_received")
	f.emitted = beam.NewCounter(transforms.Namespace, "pubsub_emitted")
	f.acked = beam.NewCounter(transforms.Namespace, "pubsub_acked")
	f.nacked = beam.NewCounter(transforms.Namespace, "pubsub_nacked")
}

func (f *readPubSubFn) CreateInitialRestriction(sub string) pubsubRestriction {
	j := slices.Index(f.Subscriptions, sub)
	streams := laneStreams(f.Streams, j, f.Lane, f.Lanes)
	// MaxOutstanding is the whole source's: each receiver holds its streams'
	// share of it (at least one message).
	total := f.Streams * len(f.Subscriptions)
	return pubsubRestriction{Subscription: sub, Streams: streams, MaxOutstanding: max(f.MaxOutstanding*streams/max(total, 1), 1)}
}

func (f *readPubSubFn) SplitRestriction(_ string, r pubsubRestriction) []pubsubRestriction {
	return []pubsubRestriction{r}
}

func (f *readPubSubFn) RestrictionSize(_ string, _ pubsubRestriction) float64 { return 1 }

func (f *readPubSubFn) CreateTracker(r pubsubRestriction) *sdf.LockRTracker {
	return sdf.NewLockRTracker(&pubsubTracker{rest: r})
}

func (f *readPubSubFn) InitialWatermarkEstimatorState(_ beam.EventTime, _ pubsubRestriction, _ string) int64 {
	return int64(mtime.MinTimestamp)
}

func (f *readPubSubFn) CreateWatermarkEstimator(ms int64) *pubsubWatermark {
	return &pubsubWatermark{ms: ms}
}

func (f *readPubSubFn) WatermarkEstimatorState(we *pubsubWatermark) int64 { return we.ms }

// pubsubWatermark is the source's watermark: pubsubReceiver.readUpTo −
// WatermarkSkew, never moving back. Once a receiver has read the backlog it
// found, that is min(now, oldest publish time of a queued message), and it
// advances while the subscription is idle. Messages the client has not yet
// handed over are not known to it: one published long ago and delivered late
// (a redelivery, a backlog read out of order) can be behind it. The
// aggregates' window stays open WindowConfig.LatenessMargin past the allowed
// lateness, so the runner keeps one behind it by less than that margin. Each
// message carries the watermark it was read under (Message.Watermark), and
// ClassifyLateness judges it by that when it is later than its publish
// time: behind its window's end by more than the allowed lateness is too
// late (left out of the aggregates, never counted in a pane the runner
// does not fire). The stamp is this restriction's watermark as the runner
// has it (its state at the call's start), which can be ahead of the
// runner's, the minimum over every lane and subscription (one still
// catching up trails by the lag): such a message is then counted too late
// where the runner would still have kept it, which the reconcile allows;
// the opposite, counted late and dropped, is what it cannot. Why not the
// graph's minimum, which a message read at that moment would be judged by:
// the runner judges it only once its bundle has committed and it reaches
// the aggregate, and another restriction may commit a jump meanwhile (the
// end of a catch-up moves one by up to the allowed lateness plus the
// margin); until this call's bundle commits, the one bound on the runner's
// watermark is this restriction's state at the call's start. Stamped with
// the graph's minimum, a message could be counted late and then dropped
// (a review of the change; it was reverted).
type pubsubWatermark struct{ ms int64 }

func (w *pubsubWatermark) CurrentWatermark() time.Time { return mtime.Time(w.ms).ToTime() }

func (w *pubsubWatermark) advance(ms int64) {
	if ms > w.ms {
		w.ms = ms
	}
}

func (f *readPubSubFn) ProcessElement(ctx context.Context, we *pubsubWatermark, rt *sdf.LockRTracker, _ string,
	emit func(beam.EventTime, transforms.MessageBatch)) (sdf.ProcessContinuation, error) {
	rest := rt.GetRestriction().(pubsubRestriction)
	key := f.RunID + "/" + rest.Subscription + "/" + fmt.Sprint(f.Lane)
	if f.draining() {
		// Stop for good: ack what the last bundle emitted (it committed:
		// this is its residual), release what is queued, close.
		if r := lookupReceiver(key); r != nil {
			r.releaseAfter(rest.Confirm)
			r.finalizeUpTo(rest.Confirm)
			f.report(ctx, r)
			r.stop()
		}
		rt.TryClaim(stopClaim)
		return sdf.StopProcessing(), nil
	}
	r, err := startReceiver(key, f, rest)
	if err != nil {
		return sdf.ResumeProcessingIn(time.Second), err
	}
	r.touch()
	// Slots taken until this call's finalization frees them count as no
	// room: the stream could not deliver meanwhile.
	r.noteRoom(time.Now().UnixMilli())
	// A hold after the one this restriction confirms is a failed attempt's:
	// its call returned, but its bundle did not commit (a step fused with
	// the source failed after the emit), and the runner retries the bundle
	// from this restriction. Release it for redelivery before anything
	// confirms a later hold, which would ack it unprocessed.
	r.releaseAfter(rest.Confirm)
	// The bundle that checkpointed this restriction has committed.
	r.finalizeUpTo(rest.Confirm)
	if !rt.TryClaim(readClaim) {
		return sdf.StopProcessing(), nil
	}

	var emitted []*pubsubMsg
	committed := false
	defer func() {
		if !committed {
			// The emit panicked: a step fused with the source failed and
			// the bundle will not commit. Release everything at once (a
			// retried bundle, or the next job, reads it again) and start
			// a fresh receiver if the runner goes on.
			r.fail(emitted)
		}
	}()
	wait := time.NewTimer(pubsubSlice)
	defer wait.Stop()
read:
	for len(emitted) < pubsubBatchesPerCall*transforms.DefaultBatchSize {
		batch := r.take(transforms.DefaultBatchSize)
		if len(batch) > 0 && r.settles {
			// A redelivery of a message still held follows it, not the
			// pipeline (see track).
			if batch = slices.DeleteFunc(batch, func(m *pubsubMsg) bool { return !r.track(m) }); len(batch) == 0 {
				continue
			}
		}
		if len(batch) > 0 {
			msgs := make([]transforms.Message, len(batch))
			oldest := batch[0].publish
			watermark := max(we.ms, 0) // what the runner has from this restriction (MinTimestamp at first)
			for i, m := range batch {
				msgs[i] = transforms.Message{Data: m.m.Data, PublishTime: m.publish, Source: r.source,
					ReplayOf: m.m.Attributes[ReplayOfAttribute], ID: m.m.ID, Delivery: m.delivery, Watermark: watermark}
				oldest = min(oldest, m.publish)
			}
			emitted = append(emitted, batch...)
			emit(mtime.FromMilliseconds(oldest), transforms.MessageBatch{Messages: msgs})
			Progress.Read.Add(int64(len(msgs)))
			continue
		}
		if len(emitted) > 0 || r.closed() {
			break // nothing more queued: commit what was read now
		}
		select {
		case <-r.notify:
		case <-wait.C:
			break read
		case <-ctx.Done():
			break read
		}
		if f.draining() {
			break
		}
	}
	var id int64
	if len(emitted) > 0 {
		id = r.hold(emitted)
		f.emitted.Inc(ctx, int64(len(emitted)))
	}
	if id == 0 {
		// Nothing emitted: the residual confirms what this one did, so a
		// restriction's Confirm never goes back, and a hold after it is
		// always a failed attempt's (releaseAfter).
		id = rest.Confirm
	}
	rt.Mu.Lock()
	rt.Rt.(*pubsubTracker).rest.Confirm = id // the residual confirms this call's hold, or the one it started from
	rt.Mu.Unlock()
	if at, ok := r.readUpTo(time.Now().UnixMilli()); ok {
		we.advance(at - f.SkewMillis)
	}
	f.report(ctx, r)
	committed = true
	// Resume at once: an idle call has already waited pubsubSlice.
	return sdf.ResumeProcessingIn(0), nil
}

// report adds the receiver's counts since the last report to the counters:
// deliveries and finalizations happen outside any bundle.
func (f *readPubSubFn) report(ctx context.Context, r *pubsubReceiver) {
	if d := r.received.Load() - r.reported[0]; d > 0 {
		f.received.Inc(ctx, d)
		r.reported[0] += d
	}
	if d := r.acked.Load() - r.reported[1]; d > 0 {
		f.acked.Inc(ctx, d)
		r.reported[1] += d
	}
	if d := r.nacked.Load() - r.reported[2]; d > 0 {
		f.nacked.Inc(ctx, d)
		r.reported[2] += d
	}
}

func (f *readPubSubFn) draining() bool { return drainGen.Load() > f.DrainGen }

// drainGen counts DrainSources calls; a source built before the last call
// stops.
var drainGen atomic.Int64

// DrainSources asks every native Pub/Sub source of this process to stop
// reading and let the pipeline drain: each restriction releases the messages
// it has not emitted (Nack: Pub/Sub redelivers them to the next reader),
// returns StopProcessing at its next call (within pubsubSlice), and its
// receiver closes once the runner has finalized, and so acked, the last
// bundle it emitted. The watermark then goes to the end of time, the open
// windows fire, and the job ends. Sources of pipelines built after the call
// are not affected, unless their config's DrainBase was taken before it. It
// reaches only harnesses in this process (Prism's loopback workers).
func DrainSources() {
	drainGen.Add(1)
	registry.Lock()
	rs := make([]*pubsubReceiver, 0, len(registry.m))
	for _, r := range registry.m {
		rs = append(rs, r)
	}
	registry.Unlock()
	for _, r := range rs {
		r.wake()
	}
}

// DrainCount is how many times DrainSources has been called in this
// process: a PubSubConfig.DrainBase.
func DrainCount() int64 { return drainGen.Load() }

// DrainAfter calls DrainSources after d (a --run_for); the returned func
// cancels it.
func DrainAfter(d time.Duration) (cancel func()) {
	t := time.AfterFunc(d, DrainSources)
	return func() { t.Stop() }
}

// PubSubStats are the native sources' counts in this process: messages
// delivered by Pub/Sub, acknowledged after their bundle committed, released
// for redelivery, and held now (delivered, neither acked nor released).
func PubSubStats() (received, acked, nacked, outstanding int64) {
	return psStats.received.Load(), psStats.acked.Load(), psStats.nacked.Load(), psStats.outstanding.Load()
}

// liveReceivers is how many receivers of the native source run in this
// process.
func liveReceivers() int64 { return psStats.live.Load() }

var psStats struct {
	received, acked, nacked atomic.Int64
	outstanding, peak       atomic.Int64 // peak: the most held at once
	live                    atomic.Int64 // receivers whose client is not closed yet
	// Under settlement: deliveries a receiver released unsettled when it
	// closed (FinishReceivers).
	unsettled atomic.Int64
	// Ack ids in Acknowledge calls (countAcks): in a call not answered yet,
	// in a call answered OK, in a call that failed.
	ackSending, ackAnswered, ackErrors atomic.Int64
}

// AckStats are the acks this process has handed to the client (acked) and
// what became of them (countAcks): ack ids in Acknowledge calls Pub/Sub
// answered OK, in calls that failed, and in calls not answered yet. A call
// is counted at each attempt: the library retries one that failed as
// unavailable, so an id can count as an error and then as answered. What
// is in none of the three the client still queues (at most 100 ms), or
// dropped with a stream that failed. Without exactly-once delivery an OK
// answer may cover an ack id that had expired (its message comes again).
func AckStats() (acked, answered, failed, sending int64) {
	return psStats.acked.Load(), psStats.ackAnswered.Load(), psStats.ackErrors.Load(), psStats.ackSending.Load()
}

// testAckHook, if set, sees every message the source acknowledges, as it
// does.
var testAckHook func(*pubsub.Message)

// Claims of the tracker.
const (
	readClaim = "read"
	stopClaim = "stop"
)

// pubsubTracker tracks an endless restriction: every claim succeeds until
// the source stops, and a checkpoint hands the whole restriction back.
type pubsubTracker struct {
	rest pubsubRestriction
	done bool
}

func (t *pubsubTracker) TryClaim(pos any) bool {
	if t.done {
		return false
	}
	if pos == stopClaim {
		t.done = true
		return false
	}
	return true
}

// TrySplit checkpoints (fraction 0) and refuses any other split: a stream
// cannot be divided while it is read.
func (t *pubsubTracker) TrySplit(fraction float64) (primary, residual any, err error) {
	if t.done || fraction > 0 {
		return t.rest, nil, nil
	}
	t.done = true
	return pubsubRestriction{Subscription: t.rest.Subscription}, t.rest, nil
}

func (t *pubsubTracker) GetError() error                        { return nil }
func (t *pubsubTracker) GetProgress() (done, remaining float64) { return 0, 1 }
func (t *pubsubTracker) IsDone() bool                           { return t.done }
func (t *pubsubTracker) GetRestriction() any                    { return t.rest }
func (t *pubsubTracker) IsBounded() bool                        { return false }

// pubsubMsg is a delivered message the source holds.
type pubsubMsg struct {
	m       *pubsub.Message
	publish int64 // unix ms
	owner   *pubsubReceiver
	once    sync.Once

	// Under settlement (pubsubReceiver.track): the delivery's number, 0
	// until it is emitted; its key in leaders; the redeliveries of the
	// same message that came while it was held; and whether a step has
	// settled it (its copy is written, or dropped as a repeat: releasing it
	// then makes no orphan). The last three are guarded by leaders.
	delivery  uint64
	key       string
	followers []*pubsubMsg
	settled   bool
}

// registry holds the receivers of this process: m the open ones by key,
// live those whose Receive has not returned yet.
var registry = struct {
	sync.Mutex
	m    map[string]*pubsubReceiver
	live map[*pubsubReceiver]bool
}{m: map[string]*pubsubReceiver{}, live: map[*pubsubReceiver]bool{}}

func lookupReceiver(key string) *pubsubReceiver {
	registry.Lock()
	defer registry.Unlock()
	return registry.m[key]
}

// pubsubReceiver is one restriction's streaming pull.
type pubsubReceiver struct {
	key, source  string
	subscription string
	graph        string // readPubSubFn.Graph: the settlement indexes (leaders) span this graph's lanes, never two graphs
	maxExtension time.Duration
	client       *pubsub.Client
	cancel       context.CancelFunc
	exited       chan struct{} // Receive returned
	notify       chan struct{} // a message was queued (capacity 1)
	slots        chan struct{} // one a message held, up to MaxOutstanding
	lastTouch    atomic.Int64

	// What readUpTo needs until the receiver has read the backlog it found
	// (caughtUp). Times in unix ms; a backlog message is one published
	// before the receiver started.
	lagMillis, started     int64        // readPubSubFn.CatchUpLagMillis; set before the stream starts
	lastDelivery           atomic.Int64 // the last message's delivery (started before the first)
	lastBacklog            atomic.Int64 // the last backlog message's delivery (started before the first)
	lastNoRoom             atomic.Int64 // the last time every slot was seen taken
	oldestRead, newestRead atomic.Int64 // publish times: the oldest message's, the newest backlog message's
	caughtUp               atomic.Bool

	// Settlement (PubSubConfig.Settle): the receiver's number, the high
	// bits of its deliveries' numbers, and the last delivery numbered.
	settles bool
	no      uint64
	seq     atomic.Uint64

	mu       sync.Mutex
	queue    []*pubsubMsg
	held     map[int64]heldBatch   // emitted, awaiting finalization
	expired  map[int64][]uint64    // under settlement: holds expireHolds released, their deliveries
	resolve  sync.Mutex            // held by expireHolds, finalizeUpTo and releaseAfter
	pending  map[uint64]*pubsubMsg // under settlement: emitted, not yet settled, by delivery
	stopping bool                  // no more reading: new deliveries are released
	shut     bool

	received, acked, nacked atomic.Int64
	reported                [3]int64 // by report, which the one ProcessElement call at a time runs
}

type heldBatch struct {
	msgs []*pubsubMsg
	at   time.Time
}

// startReceiver returns the running receiver of key, starting it if needed.
func startReceiver(key string, f *readPubSubFn, rest pubsubRestriction) (*pubsubReceiver, error) {
	registry.Lock()
	defer registry.Unlock()
	if r := registry.m[key]; r != nil {
		return r, nil
	}
	project, id, err := splitSubscription(rest.Subscription)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	client, err := pubsub.NewClient(ctx, project, pubsubClientOptions(f.Endpoint)...)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("ReadPubSub: %s: %w", rest.Subscription, err)
	}
	r := &pubsubReceiver{
		key: key, source: id, subscription: rest.Subscription, graph: f.Graph, maxExtension: f.MaxExtension, client: client, cancel: cancel,
		exited: make(chan struct{}), notify: make(chan struct{}, 1), held: map[int64]heldBatch{},
		slots: make(chan struct{}, max(rest.MaxOutstanding, 1)), settles: f.Settle, pending: map[uint64]*pubsubMsg{},
	}
	if r.settles {
		settlers.Lock()
		settlers.next++
		r.no = settlers.next
		settlers.m[r.no] = r
		settlers.Unlock()
	}
	r.touch()
	r.startCatchUp(time.Now().UnixMilli(), f.CatchUpLagMillis)
	sub := client.Subscriber(rest.Subscription)
	sub.ReceiveSettings.NumGoroutines = max(rest.Streams, 1)
	sub.ReceiveSettings.MaxOutstandingMessages = max(rest.MaxOutstanding, 1)
	sub.ReceiveSettings.MaxOutstandingBytes = -1
	sub.ReceiveSettings.MaxExtension = f.MaxExtension
	// Leases of --pubsub_lease (60 s, the client's default), renewed while
	// held. They were 10 s, so that a message the server sent down a
	// stream that died before the client read it (the job failed) came
	// back sooner; but a process starved of CPU (20,000 events/s on two
	// cores beside the emulator) then renewed its leases late, the emulator
	// redelivered what it still held, and the redeliveries (537,000 of
	// 1,200,000 messages in one run) were more load: the run never caught
	// up. With 60 s the same run read every message once.
	sub.ReceiveSettings.MaxDurationPerAckExtension = max(f.Lease, 10*time.Second)
	// Shutdown is graceful (the default): Receive returns once every
	// callback has returned and the acks are sent. The source settles all it
	// holds before it cancels; what the client has pulled and not handed
	// over yet it nacks.
	psStats.live.Add(1)
	go func() {
		defer func() {
			registry.Lock()
			delete(registry.live, r)
			registry.Unlock()
			close(r.exited)
		}()
		err := sub.Receive(ctx, r.deliver)
		if err != nil && ctx.Err() == nil {
			log.Errorf(context.Background(), "ReadPubSub: %s: %v; a new receiver starts at the next call", rest.Subscription, err)
		}
		r.close()
	}()
	go r.watch()
	registry.m[key] = r
	registry.live[r] = true
	return r, nil
}

// pubsubClientOptions are a client's options: none for Pub/Sub or the
// emulator at $PUBSUB_EMULATOR_HOST (the client library reads it), a
// plain connection to endpoint for a fake.
func pubsubClientOptions(endpoint string) []option.ClientOption {
	opts := []option.ClientOption{option.WithGRPCDialOption(grpc.WithChainUnaryInterceptor(countAcks))}
	if endpoint == "" {
		return opts
	}
	return append(opts, option.WithEndpoint(endpoint), option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
}

// countAcks counts the acknowledgements Pub/Sub has answered (AckStats).
// The client library queues an Ack and sends the queue every 100 ms, in
// Acknowledge calls of up to 1,000 ids at once, and drops the answer
// unless exactly-once delivery is on: without this count, acks that lag
// behind the source (a slow server) or fail are seen only as redeliveries
// after a restart.
func countAcks(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	a, ok := req.(*pubsubpb.AcknowledgeRequest)
	if !ok {
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	n := int64(len(a.AckIds))
	psStats.ackSending.Add(n)
	err := invoker(ctx, method, req, reply, cc, opts...)
	psStats.ackSending.Add(-n)
	if err != nil {
		psStats.ackErrors.Add(n)
	} else {
		psStats.ackAnswered.Add(n)
	}
	return err
}

// subscriptionCheckTimeout bounds CheckSubscriptions' question about one
// subscription.
const subscriptionCheckTimeout = 15 * time.Second

// CheckSubscriptions asks Pub/Sub for each subscription before a local run
// starts. The native source retries whatever fails, as it must for a
// stream that breaks: without this check a run without credentials, or
// with a misspelt subscription, logged an error a bundle until --run_for
// and then ended "reconcile: in=0 … ok". A subscription it may not
// describe (roles/pubsub.subscriber can read one without that) is only
// reported to progress, when that is not nil, and read anyway.
func CheckSubscriptions(ctx context.Context, c PubSubConfig, progress io.Writer) error {
	clients := map[string]*pubsub.Client{}
	defer func() {
		for _, cl := range clients {
			cl.Close()
		}
	}()
	for _, full := range c.Subscriptions {
		project, _, err := splitSubscription(full)
		if err != nil {
			return err
		}
		client := clients[project]
		if client == nil {
			if client, err = pubsub.NewClient(ctx, project, pubsubClientOptions(c.Endpoint)...); err != nil {
				return fmt.Errorf("--subscriptions: %s: %w (for Pub/Sub, give the run credentials, e.g. gcloud auth application-default login; for the emulator, set PUBSUB_EMULATOR_HOST)", full, err)
			}
			clients[project] = client
		}
		cctx, cancel := context.WithTimeout(ctx, subscriptionCheckTimeout)
		_, err = client.SubscriptionAdminClient.GetSubscription(cctx, &pubsubpb.GetSubscriptionRequest{Subscription: full})
		cancel()
		switch code := status.Code(err); code {
		case codes.OK:
		case codes.NotFound:
			return fmt.Errorf("--subscriptions: %s does not exist", full)
		case codes.PermissionDenied:
			if progress != nil {
				fmt.Fprintf(progress, "pubsub: %s: cannot check it (%v); reading it anyway\n", full, err)
			}
		default:
			where := "Pub/Sub"
			if host := os.Getenv("PUBSUB_EMULATOR_HOST"); c.Endpoint == "" && host != "" {
				where = "the emulator at PUBSUB_EMULATOR_HOST=" + host
			}
			if code == codes.DeadlineExceeded || errors.Is(err, context.DeadlineExceeded) {
				// The client retries an unreachable server until the deadline.
				return fmt.Errorf("--subscriptions: %s: %s did not answer within %s (is it running?)", full, where, subscriptionCheckTimeout)
			}
			return fmt.Errorf("--subscriptions: %s: %s: %w", full, where, err)
		}
	}
	return nil
}

func splitSubscription(full string) (project, id string, err error) {
	p := strings.Split(full, "/")
	if len(p) != 4 || p[0] != "projects" || p[2] != "subscriptions" {
		return "", "", fmt.Errorf("ReadPubSub: %q is not projects/P/subscriptions/S", full)
	}
	return p[1], p[3], nil
}

// deliver is the Receive callback. It takes a slot, queues the message and
// returns; the slot is given back when the message is settled (acked or
// released), so the source holds at most MaxOutstanding messages and, past
// that, the callbacks wait here and the client stops handing messages over.
//
// It used to wait for the message to be settled, which bounded the same
// thing through the client's flow control (released when a callback
// returns) but kept two goroutines parked per held message: 50,000 held
// messages were 100,000 goroutines whose stacks every GC cycle scanned (9% of
// a 20,000 events/s streaming run's CPU, and the scheduler's run queues grew
// as long). The client still extends a message's lease until it is acked
// or released, whether or not its callback has returned.
func (r *pubsubReceiver) deliver(ctx context.Context, m *pubsub.Message) {
	select {
	case r.slots <- struct{}{}:
	case <-ctx.Done():
		m.Nack() // the receiver is shutting down
		return
	}
	pm := &pubsubMsg{m: m, publish: m.PublishTime.UnixMilli(), owner: r}
	r.noteDelivery(pm.publish, time.Now().UnixMilli())
	r.received.Add(1)
	psStats.received.Add(1)
	n := psStats.outstanding.Add(1)
	raiseTo(&psStats.peak, n)
	r.mu.Lock()
	if r.stopping {
		r.mu.Unlock()
		r.nack(pm)
		return
	}
	r.queue = append(r.queue, pm)
	r.mu.Unlock()
	r.wake()
}

func (r *pubsubReceiver) wake() {
	select {
	case r.notify <- struct{}{}:
	default:
	}
}

func (r *pubsubReceiver) touch() { r.lastTouch.Store(time.Now().UnixNano()) }

func (r *pubsubReceiver) closed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.shut
}

// take removes up to n queued messages.
func (r *pubsubReceiver) take(n int) []*pubsubMsg {
	r.mu.Lock()
	defer r.mu.Unlock()
	n = min(n, len(r.queue))
	if n == 0 {
		return nil
	}
	out := make([]*pubsubMsg, n)
	copy(out, r.queue)
	r.queue = append(r.queue[:0], r.queue[n:]...)
	return out
}

// readUpTo returns how far the receiver has read the subscription, in
// publish time, and false while it cannot tell (nothing received yet).
//
// Once it has read the backlog it found (caughtUp) that is the clock, or the
// oldest message still queued. Before, it is the newest backlog message it
// has received less lagMillis (the allowed lateness plus the margin), but
// not before the oldest message it has received, nor after the oldest
// queued. The watermark used to follow the queue and the clock alone, so it
// reached the clock at the first call, before the stream had delivered a
// backlog published longer ago than the allowed lateness plus the margin (a
// job restarted after a long stop), and the queue ran dry between the
// emulator's waves: the runner dropped those events from the aggregates
// although they were on time by their arrival (a review published 4,000
// events 13.5 minutes before the job, and 1,903 were aggregated).
//
// The lag is for order: a receiver's streams each pull their share of the
// backlog ahead, in publish order, and the client hands the shares over
// interleaved, so the newest message received can be newer than what
// another stream still holds. Behind the newest by the lag, a message the
// runner would drop must be older than it by more than the allowed lateness
// plus twice the margin (a late one; an on-time one by twice the lateness
// plus the margin). The watermark still moves while the backlog is read, so
// the runner holds the windows and Dedup's state of that lag more than in
// a run that keeps up, not of the whole backlog. Messages published since
// the receiver started do not move it: with a publisher running beside a
// restarted job, they come interleaved with the backlog.
//
// The backlog counts as read once no backlog message has come for
// catchUpQuiet (no message at all, if none published since has come;
// firstDeliveryQuiet before the first) while the receiver has had room for
// more: with every slot taken the client stops handing messages over (see
// backlogRead).
func (r *pubsubReceiver) readUpTo(now int64) (int64, bool) {
	if !r.caughtUp.Load() {
		r.noteRoom(now)
		if !r.backlogRead(now) {
			oldest := r.oldestRead.Load()
			if oldest == math.MaxInt64 {
				return 0, false
			}
			at := oldest
			if newest := r.newestRead.Load(); newest != math.MinInt64 {
				at = max(at, newest-r.lagMillis)
			}
			return r.oldestQueued(at), true
		}
		r.caughtUp.Store(true)
	}
	return min(now, r.oldestQueued(now)), true
}

// backlogRead says whether the receiver has read the backlog it found (see
// readUpTo).
//
// Until a message published since the start comes, every message is a
// backlog one, so the quiet is from the last message of any kind.
//
// A time with every slot taken restarts the quiet only if nothing was handed
// over since: then the client could not deliver. A receiver that is full at
// every call (a job slower than its publisher) still has messages handed
// over between calls, and its catch-up ends 3 s after its last backlog
// message; else its watermark would never move.
func (r *pubsubReceiver) backlogRead(now int64) bool {
	since, quiet := r.lastBacklog.Load(), catchUpQuiet.Milliseconds()
	if noRoom := r.lastNoRoom.Load(); noRoom >= r.lastDelivery.Load() {
		since = max(since, noRoom)
	}
	if r.oldestRead.Load() == math.MaxInt64 {
		quiet = firstDeliveryQuiet.Milliseconds()
	}
	return now-since >= quiet
}

// noteRoom records, for readUpTo, that every slot is taken at now, if so.
func (r *pubsubReceiver) noteRoom(now int64) {
	if len(r.slots) == cap(r.slots) {
		r.lastNoRoom.Store(now)
	}
}

// startCatchUp readies a receiver started at now for readUpTo.
func (r *pubsubReceiver) startCatchUp(now, lagMillis int64) {
	r.lagMillis = lagMillis
	r.started = now
	r.lastDelivery.Store(now)
	r.lastBacklog.Store(now)
	r.oldestRead.Store(math.MaxInt64)
	r.newestRead.Store(math.MinInt64)
}

// noteDelivery records, for readUpTo, a message published at publish and
// delivered at at.
func (r *pubsubReceiver) noteDelivery(publish, at int64) {
	r.lastDelivery.Store(at)
	if r.caughtUp.Load() {
		return
	}
	lowerTo(&r.oldestRead, publish)
	if publish >= r.started {
		return // not a backlog message
	}
	r.lastBacklog.Store(at)
	raiseTo(&r.newestRead, publish)
}

// raiseTo sets a to v if v is greater; lowerTo, if v is less.
func raiseTo(a *atomic.Int64, v int64) {
	for old := a.Load(); v > old && !a.CompareAndSwap(old, v); old = a.Load() {
	}
}

func lowerTo(a *atomic.Int64, v int64) {
	for old := a.Load(); v < old && !a.CompareAndSwap(old, v); old = a.Load() {
	}
}

// oldestQueued is the publish time of the oldest queued message, or def.
func (r *pubsubReceiver) oldestQueued(def int64) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range r.queue {
		def = min(def, m.publish)
	}
	return def
}

// hold records emitted messages until their bundle's finalization.
func (r *pubsubReceiver) hold(msgs []*pubsubMsg) int64 {
	id := holdIDs.Add(1)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.shut {
		// Closed while this call ran (idle timeout): release at once.
		go r.nackAll(msgs)
		return id
	}
	r.held[id] = heldBatch{msgs: msgs, at: time.Now()}
	return id
}

// holdIDs numbers the holds of all receivers, increasing: a restriction's
// Confirm never names a later receiver's hold.
var holdIDs atomic.Int64

// finalizeUpTo acks every hold up to id: the residual of the call that made
// hold id arrived, so its bundle, and every earlier one of the restriction,
// committed.
func (r *pubsubReceiver) finalizeUpTo(id int64) {
	if id == 0 {
		return
	}
	r.resolve.Lock()
	defer r.resolve.Unlock()
	r.mu.Lock()
	var committed []heldBatch
	for h, b := range r.held {
		if h <= id {
			committed = append(committed, b)
			delete(r.held, h)
		}
	}
	for h := range r.expired {
		if h <= id {
			delete(r.expired, h) // committed: its released copies settle in the end
		}
	}
	r.mu.Unlock()
	if !r.settles {
		// Under settlement each message waits for its settlement instead.
		for _, b := range committed {
			for _, m := range b.msgs {
				r.ack(m)
			}
		}
	}
	r.closeIfDone()
}

// releaseAfter nacks every hold after id. A restriction's calls run one
// after another and each confirms its own hold in its residual (or, having
// emitted nothing, the Confirm it started from), so when a
// call starts from a restriction confirming id, a later hold is a call
// whose bundle failed after the call returned. So is a later hold that
// expired (expireHolds): its copies, orphans since, are known dropped now.
func (r *pubsubReceiver) releaseAfter(id int64) {
	r.resolve.Lock()
	defer r.resolve.Unlock()
	r.mu.Lock()
	var failed [][]*pubsubMsg
	for h, b := range r.held {
		if h > id {
			failed = append(failed, b.msgs)
			delete(r.held, h)
		}
	}
	var dropped []uint64
	for h, ds := range r.expired {
		if h > id {
			dropped = append(dropped, ds...)
			delete(r.expired, h)
		}
	}
	r.mu.Unlock()
	for _, msgs := range failed {
		for _, m := range msgs {
			r.letGo(m, false, false) // the runner dropped the attempt: no orphan
		}
	}
	for _, d := range dropped {
		endReleasedCopy(d, false)
	}
}

// expireHolds releases the holds older than maxExtension (at least a
// minute): their bundle failed, or the runner is that slow to commit it.
// Either may be so, and the runner may still write a copy of the latter,
// so under settlement each released copy makes its message an orphan
// (letGo), and the hold is remembered (expired) until a call tells which:
// finalizeUpTo that it committed (its copies settle in the end), or
// releaseAfter that it failed (its copies never will: without that, the
// orphan lived on, and the repeats of its message waited until the run
// ended). The three take resolve, so that neither sees a hold between
// r.held and r.expired, nor an expired copy not yet made an orphan. A
// receiver that closes forgets its expired holds: their orphans live on
// (liveness, not loss; the run's end releases what waits).
func (r *pubsubReceiver) expireHolds(now time.Time) {
	r.resolve.Lock()
	defer r.resolve.Unlock()
	var expired []*pubsubMsg
	r.mu.Lock()
	for id, b := range r.held {
		if now.Sub(b.at) > max(r.maxExtension, time.Minute) {
			expired = append(expired, b.msgs...)
			delete(r.held, id)
			if r.settles {
				if r.expired == nil {
					r.expired = map[int64][]uint64{}
				}
				for _, m := range b.msgs {
					r.expired[id] = append(r.expired[id], m.delivery)
				}
			}
		}
	}
	r.mu.Unlock()
	r.nackAll(expired)
}

// closeIfDone closes a stopping receiver once it holds nothing more.
func (r *pubsubReceiver) closeIfDone() {
	r.mu.Lock()
	done := r.stopping && len(r.held) == 0 && len(r.pending) == 0
	r.mu.Unlock()
	if done {
		r.close()
	}
}

// ack acknowledges m and the redeliveries that followed it.
func (r *pubsubReceiver) ack(m *pubsubMsg) { r.letGo(m, true, false) }

// nack releases m, and the redeliveries that followed it, for redelivery.
// If m was emitted, the runner may still write it: its message becomes an
// orphan (untrack).
func (r *pubsubReceiver) nack(m *pubsubMsg) { r.letGo(m, false, true) }

// letGo acks or releases m, once, then the redeliveries that followed it.
// orphan says a released m may still be written (not so for the messages
// of an attempt known to have failed, which the runner drops: marking them
// would hold back, for as long as Dedup remembers the event, a redelivery
// that Dedup drops as a repeat of another message's copy).
func (r *pubsubReceiver) letGo(m *pubsubMsg, ack, orphan bool) {
	released := false
	m.once.Do(func() {
		released = !ack
		if ack {
			if testAckHook != nil {
				testAckHook(m.m)
			}
			m.m.Ack()
			r.acked.Add(1)
			psStats.acked.Add(1)
		} else {
			m.m.Nack()
			r.nacked.Add(1)
			psStats.nacked.Add(1)
		}
		psStats.outstanding.Add(-1)
		<-r.slots
	})
	for _, f := range r.untrack(m, released && orphan) {
		f.owner.letGo(f, ack, orphan)
	}
}

// Settlement (PubSubConfig.Settle; transforms/settle.go). The receiver
// numbers each message it emits (its delivery) and acknowledges it only
// when a step of the pipeline settles that number: the sink once the
// message's row (a fact or a dead letter) is committed (DuckDB's COPY
// returned, BigQuery answered the append; a row BigQuery refuses, once its
// dead letter is), Dedup when it drops the message's event as a repeat. A bundle's commit no longer acks its
// messages: the runner keeps a committed bundle's output in memory, and a
// local process killed before the rows were written lost the events it had
// acked. A settled message is acked even if the bundle that read it has not
// committed (a step fused with the source wrote its dead letter): its row
// is durable, so a retry's copy is one more dead letter, as before.
//
// Dedup's drop is safe to ack because the first copy of the event is
// settled, or still held by a receiver of this process, which releases it
// if the process dies. One case would break that: the first copy being an
// earlier delivery of the same message, which Pub/Sub redelivers when a
// lease lapses (a process starved of CPU renews late; a message held past
// --pubsub_max_extension). So a delivery of a message already held is not
// emitted: it follows the held one (track) and is acked or released with it.
// And when the receiver releases a delivery it emitted (it closes, or
// closed during the call, or a hold expired), the runner may still hold that copy and
// write it later, while Pub/Sub sends the message again: the message is
// then an orphan (untrack), and a repeat of it that Dedup drops waits
// (waitForOrphan) until a copy of it is durable, or every released copy has
// ended as a repeat (endOrphan).
//
// A committed message is never released for its age: within a live job
// the runner retries a failed bundle until it succeeds or the job fails,
// so every committed message is settled in the end; the receiver releases
// what is still pending when it closes (the job ended, or was gone for
// idleTimeout; see watch).

// settlers maps a receiver's number, the high bits of its deliveries'
// numbers, to the receiver, for settleDeliveries.
var settlers = struct {
	sync.Mutex
	m    map[uint64]*pubsubReceiver
	next uint64
}{m: map[uint64]*pubsubReceiver{}}

// deliveryBits is how many low bits of a delivery number count the
// receiver's deliveries (a trillion each).
const deliveryBits = 40

// leaders indexes the messages pending settlement by graph, subscription and
// message id (m), and the orphans: messages a delivery of which was released
// after it was emitted (orphans, counting those deliveries not yet settled,
// and orphanOf by delivery), with the repeats of them that wait until a
// copy is durable or every released copy has ended as a repeat (waiting).
// The graph is part of the key because a process may run one pipeline
// after another (the tests do, each with its own pstest, whose message ids
// start again at m0): a failed job's orphans, never settled, must not hold
// back the next job's messages.
var leaders = struct {
	sync.Mutex
	m        map[string]*pubsubMsg
	orphans  map[string]int
	orphanOf map[uint64]string
	waiting  map[string][]*pubsubMsg
}{m: map[string]*pubsubMsg{}, orphans: map[string]int{}, orphanOf: map[uint64]string{}, waiting: map[string][]*pubsubMsg{}}

func init() { transforms.SetSettler(settleDeliveries) }

// track numbers m for settlement, or, if a delivery of the same message is
// pending, makes m follow it and returns false: m is not emitted.
func (r *pubsubReceiver) track(m *pubsubMsg) bool {
	key := r.graph + "\x00" + r.subscription + "\x00" + m.m.ID
	leaders.Lock()
	if lead := leaders.m[key]; lead != nil {
		lead.followers = append(lead.followers, m)
		leaders.Unlock()
		return false
	}
	m.delivery, m.key = r.no<<deliveryBits|r.seq.Add(1), key
	leaders.m[key] = m
	leaders.Unlock()
	r.mu.Lock()
	r.pending[m.delivery] = m
	r.mu.Unlock()
	return true
}

// untrack ends m's settlement and returns its followers. A delivery that
// comes after it is a new leader: m was acked (its row is committed; Dedup
// drops the new one) or released (Pub/Sub sends it again anyway). A
// released m makes its message an orphan: the runner may still write it.
func (r *pubsubReceiver) untrack(m *pubsubMsg, released bool) []*pubsubMsg {
	if m.delivery == 0 {
		return nil
	}
	leaders.Lock()
	if leaders.m[m.key] == m {
		delete(leaders.m, m.key)
	}
	followers := m.followers
	m.followers = nil
	if released && !m.settled {
		leaders.orphans[m.key]++
		leaders.orphanOf[m.delivery] = m.key
	}
	leaders.Unlock()
	r.mu.Lock()
	delete(r.pending, m.delivery)
	r.mu.Unlock()
	return followers
}

// settleDeliveries acks the messages of settled deliveries (the settler of
// transforms.Settle and SettleRepeats): durable ones at once, and the
// repeats Dedup dropped unless their message is an orphan. A delivery whose
// receiver has released it already comes again; a durable one still frees
// the repeats that waited for it, and so does the last released copy of an
// orphan ending as a repeat: none of them is a first copy in flight any
// more. (Without that, a generator duplicate, a second message of an event,
// whose released copy Dedup dropped, made every later delivery of it wait
// for a durable copy that could never come.)
func settleDeliveries(ds []uint64, durable bool) {
	settlers.Lock()
	rs := make([]*pubsubReceiver, len(ds))
	for i, d := range ds {
		rs[i] = settlers.m[d>>deliveryBits]
	}
	settlers.Unlock()
	for i, d := range ds {
		r := rs[i]
		var m *pubsubMsg
		if r != nil {
			r.mu.Lock()
			m = r.pending[d]
			r.mu.Unlock()
		}
		if m != nil {
			leaders.Lock()
			m.settled = true // a release racing this settle makes no orphan of it
			leaders.Unlock()
		}
		switch {
		case m == nil: // released already
			rs[i] = nil
			endReleasedCopy(d, durable)
		case durable:
			r.ack(m)
			leaders.Lock()
			waiting := endOrphan(m.key)
			leaders.Unlock()
			ackAll(waiting)
		case waitForOrphan(m):
			rs[i] = nil
		default:
			r.ack(m)
		}
	}
	// Each receiver that acked: the job is alive, and a drained receiver
	// closes once it holds nothing.
	for i, r := range rs {
		if r != nil && (i == 0 || r != rs[i-1]) {
			r.touch()
			r.closeIfDone()
		}
	}
}

// endReleasedCopy ends delivery d, released after it was emitted: durable (its
// row is committed), or not (Dedup dropped it as a repeat, or its attempt
// failed). A durable copy, or the last released copy in flight ending,
// ends its message's orphan, under the lock, so that a copy released
// meanwhile starts a new one; else the orphan has one copy fewer in flight.
func endReleasedCopy(d uint64, durable bool) {
	leaders.Lock()
	key, orphan := leaders.orphanOf[d]
	delete(leaders.orphanOf, d)
	var waiting []*pubsubMsg
	if n, ok := leaders.orphans[key]; orphan && ok && (durable || n <= 1) {
		waiting = endOrphan(key)
	} else if orphan && ok {
		leaders.orphans[key] = n - 1
	}
	leaders.Unlock()
	ackAll(waiting)
}

// waitForOrphan makes m, a repeat Dedup dropped, wait if its message is an
// orphan: the first copy may be in the runner still, no longer held by any
// receiver, and acking m would lose it if the process died.
func waitForOrphan(m *pubsubMsg) bool {
	leaders.Lock()
	defer leaders.Unlock()
	if leaders.orphans[m.key] <= 0 {
		return false
	}
	leaders.waiting[m.key] = append(leaders.waiting[m.key], m)
	return true
}

// endOrphan ends the orphan key, a copy of which is durable now (or none of
// which is in flight), and returns the repeats that waited for it, to be
// acked once the lock is released (those still held: a receiver that
// closed has released its own). Called with leaders held.
func endOrphan(key string) []*pubsubMsg {
	if _, ok := leaders.orphans[key]; !ok {
		return nil
	}
	delete(leaders.orphans, key)
	waiting := leaders.waiting[key]
	delete(leaders.waiting, key)
	return waiting
}

// ackAll acks the repeats an orphan's end let go.
func ackAll(msgs []*pubsubMsg) {
	for _, m := range msgs {
		m.owner.ack(m)
	}
}

func (r *pubsubReceiver) nackAll(msgs []*pubsubMsg) {
	for _, m := range msgs {
		r.nack(m)
	}
}

// stop ends reading: the queued messages are released; the receiver closes
// once the held ones are finalized (or at the idle timeout).
func (r *pubsubReceiver) stop() {
	r.mu.Lock()
	r.stopping = true
	q := r.queue
	r.queue = nil
	last := len(r.held) == 0 && len(r.pending) == 0
	r.mu.Unlock()
	r.nackAll(q)
	if last {
		r.close()
	}
}

// fail releases the messages of a failed call, and everything else, and
// closes the receiver.
func (r *pubsubReceiver) fail(emitted []*pubsubMsg) {
	for _, m := range emitted {
		r.letGo(m, false, false) // their bundle fails: no orphan
	}
	r.close()
}

// close stops the receiver and releases every message it holds. It returns
// at once; Receive ends in the background.
func (r *pubsubReceiver) close() {
	r.mu.Lock()
	if r.shut {
		r.mu.Unlock()
		return
	}
	r.shut, r.stopping = true, true
	msgs := r.queue
	r.queue = nil
	for id, b := range r.held {
		msgs = append(msgs, b.msgs...)
		delete(r.held, id)
	}
	for _, m := range r.pending {
		msgs = append(msgs, m) // a held one twice: nack releases it once
	}
	psStats.unsettled.Add(int64(len(r.pending)))
	r.mu.Unlock()
	registry.Lock()
	if registry.m[r.key] == r {
		delete(registry.m, r.key)
	}
	registry.Unlock()
	settlers.Lock()
	if settlers.m[r.no] == r {
		delete(settlers.m, r.no)
	}
	settlers.Unlock()
	// This receiver's redeliveries that follow another receiver's held
	// copies go too: its Receive returns only once all it handed over are
	// let go.
	leaders.Lock()
	for _, lead := range leaders.m {
		kept := lead.followers[:0]
		for _, f := range lead.followers {
			if f.owner == r {
				msgs = append(msgs, f)
			} else {
				kept = append(kept, f)
			}
		}
		lead.followers = kept
	}
	leaders.Unlock()
	r.nackAll(msgs)
	r.cancel()
	r.wake()
	go func() {
		<-r.exited
		r.client.Close()
		psStats.live.Add(-1)
	}()
}

// watch closes the receiver when no ProcessElement call has come for
// idleTimeout (the job is over), and releases emitted messages whose
// finalization has not come within MaxExtension (their bundle failed). A
// drained receiver still waiting for settlements, which a draining job
// makes as it flushes, is given MaxExtension since the last one: the run
// closes it as soon as its job ends (FinishReceivers).
func (r *pubsubReceiver) watch() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-r.exited:
			return
		case <-t.C:
		}
		idle := idleTimeout
		r.mu.Lock()
		if r.stopping && len(r.pending) > 0 {
			idle = max(idle, r.maxExtension)
		}
		r.mu.Unlock()
		if time.Since(time.Unix(0, r.lastTouch.Load())) > idle {
			r.close()
			return
		}
		r.expireHolds(time.Now())
	}
}

// FinishReceivers ends the native sources of graph (PubSubConfig.Graph), a
// local run whose job has ended: every drained receiver of it closes,
// releasing for redelivery what it still holds (under settlement nothing,
// unless a record was never settled), and the call waits, up to timeout,
// until each of their Receives has returned, and so sent its acks: the
// process may exit next. Receivers of other graphs are left alone: a
// process that ran one pipeline before (the tests run many) may still have
// one whose Receive has not returned (its nacks retrying against a server
// that is gone), and waiting for it cost each later run the whole timeout.
// It returns how many deliveries were released unsettled since the
// process started.
func FinishReceivers(graph string, timeout time.Duration) (unsettled int64) {
	closed := finishing(graph)
	for _, r := range closed {
		r.close()
	}
	// All closed first: a receiver's Receive may wait for another's release.
	deadline := time.After(timeout)
	for _, r := range closed {
		select {
		case <-r.exited:
		case <-deadline:
			return psStats.unsettled.Load()
		}
	}
	return psStats.unsettled.Load()
}

// finishing is what FinishReceivers closes and waits for: graph's live
// receivers that were drained. Another, of a job still running or a failed
// one's, closes at its idle timeout.
func finishing(graph string) []*pubsubReceiver {
	registry.Lock()
	rs := make([]*pubsubReceiver, 0, len(registry.live))
	for r := range registry.live {
		if r.graph == graph {
			rs = append(rs, r)
		}
	}
	registry.Unlock()
	return slices.DeleteFunc(rs, func(r *pubsubReceiver) bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return !r.stopping
	})
}

// waitReceivers waits until no receiver of this process is open and every
// Receive has returned, or until timeout; it reports whether they all did.
func waitReceivers(timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		registry.Lock()
		n := len(registry.m)
		registry.Unlock()
		if n == 0 && psStats.live.Load() == 0 {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false
}
