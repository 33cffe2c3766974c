package pipelines

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
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
		pub := client.Publisher(TopicID(cfg.TopicPrefix, p))
		pub.PublishSettings.CountThreshold = 1000
		pub.PublishSettings.ByteThreshold = 1 << 20
		pub.PublishSettings.DelayThreshold = 10 * time.Millisecond
		pub.PublishSettings.FlowControlSettings.MaxOutstandingMessages = 100_000
		pub.PublishSettings.FlowControlSettings.LimitExceededBehavior = pubsub.FlowControlBlock
		pubs[p] = pub
	}
	var n PublishCounts
	results := make(chan *pubsub.PublishResult, 100_000)
	var wg sync.WaitGroup
	wg.Add(1)
	var firstErr atomic.Value
	var published, failed atomic.Int64
	go func() {
		defer wg.Done()
		for r := range results {
			if _, err := r.Get(context.Background()); err != nil {
				PublishStats.Failed.Add(1)
				failed.Add(1)
				firstErr.CompareAndSwap(nil, err)
				continue
			}
			PublishStats.Published.Add(1)
			published.Add(1)
		}
	}()
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
						sent, g.Events, published.Load(), failed.Load(), float64(sent)/el)
				}
			}
		}()
	}
	buf := make([]byte, 0, 512)
	var i int64
	for i < g.Events && ctx.Err() == nil {
		// Events due by now, on the wall clock.
		due := min(int64(time.Since(start).Seconds()*g.Rate)+1, g.Events)
		if i >= due {
			time.Sleep(time.Duration(float64(time.Second) * float64(i+1-due) / g.Rate))
			continue
		}
		for ; i < due; i++ {
			m := g.Message(i, buf[:0])
			platform, id, ts, ok := g.Route(i)
			// Every message names its source: Pub/Sub refuses a message
			// with neither data nor attributes, and the generator makes
			// empty payloads on purpose (they must become dead letters).
			msg := &pubsub.Message{Data: append([]byte(nil), m.Data...), Attributes: map[string]string{"source": platform}}
			if ok {
				setEventAttributes(msg.Attributes, cfg.IDAttribute, cfg.TimestampAttribute, id, time.UnixMilli(ts))
			}
			if !ok {
				n.Malformed++
			}
			results <- pubs[platform].Publish(ctx, msg)
			PublishStats.Sent.Add(1)
			sentNow.Add(1)
			n.Sent++
		}
	}
	for _, pub := range pubs {
		pub.Stop() // flushes what is batched
	}
	close(results)
	wg.Wait()
	close(stopProgress)
	n.Published, n.Failed = published.Load(), failed.Load()
	n.Elapsed = time.Since(start)
	if n.Failed > 0 {
		err, _ := firstErr.Load().(error)
		return n, fmt.Errorf("publish: %d of %d messages failed, the first with: %v", n.Failed, n.Sent, err)
	}
	return n, ctx.Err()
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
