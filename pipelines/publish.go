package pipelines

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/campaignpulse/campaignpulse/pipelines/generator"
	"github.com/campaignpulse/campaignpulse/transforms"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// TopicID is the topic of a marketing source (platform) under prefix, named
// as Terraform's Pub/Sub module names it: underscores become hyphens.
func TopicID(prefix, platform string) string {
	return prefix + strings.ReplaceAll(platform, "_", "-")
}

// SubscriptionSuffix names the pipeline's subscription of each source topic.
const SubscriptionSuffix = "-pipeline"

// EnsureTopics creates, where missing, one topic per platform and the
// pipeline's pull subscription of each, and returns the subscriptions'
// full paths. The emulator rejects ids shorter than 3 characters, and so does
// Pub/Sub: prefix keeps every id long enough.
func EnsureTopics(ctx context.Context, client *pubsub.Client, project, prefix string, ackDeadline time.Duration) ([]string, error) {
	var subs []string
	for _, p := range transforms.Platforms {
		topic := "projects/" + project + "/topics/" + TopicID(prefix, p)
		_, err := client.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: topic})
		if err != nil && status.Code(err) != codes.AlreadyExists {
			return nil, fmt.Errorf("create topic %s: %w", topic, err)
		}
		sub := "projects/" + project + "/subscriptions/" + TopicID(prefix, p) + SubscriptionSuffix
		_, err = client.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{
			Name: sub, Topic: topic, AckDeadlineSeconds: int32(ackDeadline.Seconds()),
			MessageRetentionDuration: durationpb.New(time.Hour),
		})
		if err != nil && status.Code(err) != codes.AlreadyExists {
			return nil, fmt.Errorf("create subscription %s: %w", sub, err)
		}
		subs = append(subs, sub)
	}
	return subs, nil
}

// PublishConfig says what Publish sends and where.
type PublishConfig struct {
	TopicPrefix string // the topic of platform p is TopicID(TopicPrefix, p)
	// Generator makes the traffic: Events messages, paced at Rate a second of
	// wall time from Start (set to the start of publishing when zero), so
	// each event's designed arrival time is close to its publish time.
	Generator generator.Config
	// IDAttribute and TimestampAttribute name the message attributes that
	// carry the event id and event time (RFC 3339), for Dataflow's source;
	// empty: not set.
	IDAttribute, TimestampAttribute string
	Progress                        io.Writer     // progress lines, if not nil
	ProgressEvery                   time.Duration // default 2 s
}

// PublishCounts is what Publish did. Published + Failed = Sent.
type PublishCounts struct {
	Sent, Published, Failed int64
	// Malformed is how many of the published messages the generator made
	// malformed: every one should become a dead letter.
	Malformed int64
	Elapsed   time.Duration
}

// PublishStats is the running count of the publisher of this process, for
// progress lines.
var PublishStats struct{ Sent, Published, Failed atomic.Int64 }

// Publish sends generated events to their platforms' topics at the
// configured rate, with batching on and ordering keys off (each message is
// independent; ordering would cap a key's throughput), and waits for every
// result. It stops early, with what it sent, when ctx is cancelled.
func Publish(ctx context.Context, client *pubsub.Client, cfg PublishConfig) (PublishCounts, error) {
	g := cfg.Generator
	if g.Rate <= 0 || g.Events <= 0 {
		return PublishCounts{}, errors.New("publish: the rate and the number of events must be positive")
	}
	start := time.Now()
	if g.Start.IsZero() {
		g.Start = start.UTC()
	}
	pubs := map[string]*pubsub.Publisher{}
	for _, p := range transforms.Platforms {
		pubs[p] = boundedPublisher(client, TopicID(cfg.TopicPrefix, p), maxOutstanding)
	}
	var n PublishCounts
	results := newResultCollector(maxOutstanding, &PublishStats.Published, &PublishStats.Failed)
	var sentNow atomic.Int64
	stopProgress := make(chan struct{})
	if cfg.Progress != nil {
		every := cfg.ProgressEvery
		if every <= 0 {
			every = 2 * time.Second
		}
		go func() {
			t := time.NewTicker(every)
			defer t.Stop()
			for {
				select {
				case <-stopProgress:
					return
				case <-t.C:
					el := time.Since(start).Seconds()
					sent := sentNow.Load()
					fmt.Fprintf(cfg.Progress, "eventgen: %5.1fs sent=%d/%d published=%d failed=%d rate=%.0f/s\n", el,
						sent, g.Events, results.published.Load(), results.failed.Load(), float64(sent)/el)
				}
			}
		}()
	}
	buf := make([]byte, 0, 512)
	// A cancelled ctx stops the sending, not what was sent: a message
	// handed to the publisher is published. With ctx, one waiting for room
	// under flow control failed at once, and so did every message left in
	// the loop, each counted as sent and failed (a Ctrl-C at 20,000/s:
	// thousands of "failed" publishes and a failed reconcile).
	pctx := context.WithoutCancel(ctx)
	var i int64
	for i < g.Events && ctx.Err() == nil {
		// Events due by now, on the wall clock.
		due := min(int64(time.Since(start).Seconds()*g.Rate)+1, g.Events)
		if i >= due {
			time.Sleep(time.Duration(float64(time.Second) * float64(i+1-due) / g.Rate))
			continue
		}
		for ; i < due && ctx.Err() == nil; i++ {
			m := g.Message(i, buf[:0])
			platform, id, ts, ok := g.Route(i)
			// Every message names its source: Pub/Sub refuses a message
			// with neither data nor attributes, and the generator makes
			// empty payloads on purpose (they must become dead letters).
			msg := &pubsub.Message{Data: append([]byte(nil), m.Data...), Attributes: map[string]string{"source": platform}}
			if ok {
				setEventAttributes(msg.Attributes, cfg.IDAttribute, cfg.TimestampAttribute, id, time.UnixMilli(ts))
			} else {
				n.Malformed++
				// No event time to give, but a job that reads the
				// timestamp attribute needs it on every message (Beam's
				// reader fails on one without): its arrival time stands in.
				setEventAttributes(msg.Attributes, "", cfg.TimestampAttribute, "", time.UnixMilli(m.PublishTime))
			}
			results.add(pubs[platform].Publish(pctx, msg))
			PublishStats.Sent.Add(1)
			sentNow.Add(1)
			n.Sent++
		}
	}
	for _, pub := range pubs {
		pub.Stop() // flushes what is batched
	}
	published, failed, err := results.wait()
	close(stopProgress)
	n.Published, n.Failed = published, failed
	n.Elapsed = time.Since(start)
	if n.Failed > 0 {
		return n, fmt.Errorf("publish: %d of %d messages failed, the first with: %v", n.Failed, n.Sent, err)
	}
	return n, ctx.Err()
}

// maxOutstanding is how many messages a publisher of this package holds
// unsent, and how many results wait to be collected, before Publish blocks:
// it bounds the memory of a publish of any length.
const maxOutstanding = 100_000

// maxOutstandingBytes bounds the bytes a publisher holds unsent: a dead
// letter's payload can be a MiB, so a count alone does not bound memory.
// Ten times Pub/Sub's largest message, so any one message fits.
const maxOutstandingBytes = 100 << 20

// boundedPublisher returns a publisher of topic that batches (ordering keys
// off: each message is independent, and ordering would cap a key's
// throughput) and blocks once maxMessages or maxOutstandingBytes are unsent,
// rather than buffer without bound when the caller outruns Pub/Sub (the
// client's default ignores its own limits).
func boundedPublisher(client *pubsub.Client, topic string, maxMessages int) *pubsub.Publisher {
	pub := client.Publisher(topic)
	pub.PublishSettings.CountThreshold = 1000
	pub.PublishSettings.ByteThreshold = 1 << 20
	pub.PublishSettings.DelayThreshold = 10 * time.Millisecond
	pub.PublishSettings.FlowControlSettings.MaxOutstandingMessages = maxMessages
	pub.PublishSettings.FlowControlSettings.MaxOutstandingBytes = maxOutstandingBytes
	pub.PublishSettings.FlowControlSettings.LimitExceededBehavior = pubsub.FlowControlBlock
	return pub
}

// resultCollector waits for publish results as they arrive, in order, on
// its own goroutine, and counts them. At most capacity results wait, so a
// publish of any length holds a bounded number (add blocks past it).
type resultCollector struct {
	results           chan *pubsub.PublishResult
	done              chan struct{}
	published, failed atomic.Int64
	firstErr          error // set by the collecting goroutine; read after done
	// The process-wide counters to add to as well, if not nil.
	totalPublished, totalFailed *atomic.Int64
}

func newResultCollector(capacity int, totalPublished, totalFailed *atomic.Int64) *resultCollector {
	c := &resultCollector{results: make(chan *pubsub.PublishResult, capacity), done: make(chan struct{}),
		totalPublished: totalPublished, totalFailed: totalFailed}
	go func() {
		defer close(c.done)
		for r := range c.results {
			if _, err := r.Get(context.Background()); err != nil {
				c.failed.Add(1)
				if c.totalFailed != nil {
					c.totalFailed.Add(1)
				}
				if c.firstErr == nil {
					c.firstErr = err
				}
				continue
			}
			c.published.Add(1)
			if c.totalPublished != nil {
				c.totalPublished.Add(1)
			}
		}
	}()
	return c
}

// add queues r, blocking while capacity results wait.
func (c *resultCollector) add(r *pubsub.PublishResult) { c.results <- r }

// wait collects the results still queued (stop the publishers first, so
// that their last batches go out) and returns the counts and the first error.
func (c *resultCollector) wait() (published, failed int64, firstErr error) {
	close(c.results)
	<-c.done
	return c.published.Load(), c.failed.Load(), c.firstErr
}

// setEventAttributes sets the message attributes Dataflow's Pub/Sub source
// reads an event's id and event time (RFC 3339) from, those of them named.
// An empty id is left out: the source would take every such message for a
// repeat of the first.
func setEventAttributes(attrs map[string]string, idAttr, timeAttr, id string, t time.Time) {
	if idAttr != "" && id != "" {
		attrs[idAttr] = id
	}
	if timeAttr != "" {
		attrs[timeAttr] = t.UTC().Format(time.RFC3339Nano)
	}
}
