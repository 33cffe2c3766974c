package pipelines

import (
	"context"
	"errors"
	"testing"
	"time"

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
	srv := pstest.NewServer()
	defer srv.Close()
	client := replayTopic(t, srv)
	if _, err := EnsureTopics(context.Background(), client, "p", "t-", time.Minute); err != nil {
		t.Fatal(err)
	}
	g := generator.Default()
	g.Events, g.Rate, g.Start = 2_000_000, 1e6, time.Time{}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	n, err := Publish(ctx, client, PublishConfig{TopicPrefix: "t-", Generator: g})
	if !errors.Is(err, context.Canceled) || n.Sent == 0 || n.Sent == g.Events || n.Failed != 0 || n.Published != n.Sent {
		t.Fatalf("a publish cancelled after 300 ms: %+v, %v; want some of the %d sent, every one published, none failed, and context.Canceled",
			n, err, g.Events)
	}
	if got := int64(len(srv.Messages())); got != n.Published {
		t.Errorf("pstest holds %d messages, Publish says %d published", got, n.Published)
	}
}
