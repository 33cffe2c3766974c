package pipelines

import (
	"context"
	"errors"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/pstest"
	"github.com/campaignpulse/campaignpulse/pipelines/generator"
)

// TestACancelledPublishFailsNothingItSent: Publish stops early when its ctx
// is cancelled (Ctrl-C in make run-streaming and eventgen), with what it
// sent. The messages were handed to the publisher with that ctx, so those
// waiting for room under flow control failed at once, and the loop went on
// handing over messages, each counted as sent and failed: the streaming
// run's reconcile, made over the sent events, then failed. Every message it
// counts as sent must be published, and the error is the cancellation.
func TestACancelledPublishFailsNothingItSent(t *testing.T) {
	srv, client := sourceTopics(t)
	g := generator.Default()
	g.Events, g.Rate, g.Start = 2_000_000, 1e6, time.Time{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Cancelled once pstest holds messages (not at a fixed time, which a
	// slow start could reach before anything was sent).
	go func() {
		for len(srv.Messages()) == 0 && ctx.Err() == nil {
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
	}()
	n, err := Publish(ctx, client, PublishConfig{TopicPrefix: "t-", Generator: g})
	if !errors.Is(err, context.Canceled) || n.Sent == 0 || n.Sent == g.Events || n.Failed != 0 || n.Published != n.Sent {
		t.Fatalf("a publish cancelled once its first messages arrived: %+v, %v; want some of the %d sent, every one published, none failed, and context.Canceled",
			n, err, g.Events)
	}
	if got := int64(len(srv.Messages())); got != n.Published {
		t.Errorf("pstest holds %d messages, Publish says %d published", got, n.Published)
	}
}

// TestEveryPublishedMessageHasTheTimestampAttribute: a job set to read
// the event time from an attribute (--pubsub_timestamp_attribute) needs it
// on every message, Beam's reader failing on one without. The generator's
// malformed messages went without it; they carry their arrival time now.
func TestEveryPublishedMessageHasTheTimestampAttribute(t *testing.T) {
	srv, client := sourceTopics(t)
	g := generator.Default()
	g.Events, g.Rate, g.Start, g.MalformedRate = 2_000, 1e6, time.Time{}, 0.1
	n, err := Publish(context.Background(), client, PublishConfig{TopicPrefix: "t-", Generator: g, IDAttribute: "id", TimestampAttribute: "ts"})
	if err != nil || n.Malformed == 0 || n.Published != g.Events {
		t.Fatalf("published %+v (%v); want all %d, some malformed", n, err, g.Events)
	}
	var without, withID int
	for _, m := range srv.Messages() {
		if _, err := time.Parse(time.RFC3339Nano, m.Attributes["ts"]); err != nil {
			without++
		}
		if m.Attributes["id"] != "" {
			withID++
		}
	}
	if without != 0 || withID == 0 || int64(withID) > g.Events-n.Malformed {
		t.Errorf("%d of %d messages lack a timestamp attribute, %d have an id (%d malformed); want none without, and ids on events only",
			without, len(srv.Messages()), withID, n.Malformed)
	}
}

// sourceTopics returns a pstest server and a client of it, closed with the
// test, with a topic and subscription per source under the prefix "t-".
func sourceTopics(t *testing.T) (*pstest.Server, *pubsub.Client) {
	t.Helper()
	srv := pstest.NewServer()
	t.Cleanup(func() { srv.Close() })
	client := replayTopic(t, srv)
	if _, err := EnsureTopics(context.Background(), client, "p", "t-", time.Minute); err != nil {
		t.Fatal(err)
	}
	return srv, client
}
