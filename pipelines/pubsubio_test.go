package pipelines

import (
	"bytes"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/mtime"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// TestPubSubMessageArrivalTime: the arrival time the lateness rule reads is
// the message's publish_time, or, when Dataflow hands the message without
// it, the element's timestamp if the read stamps publish time. Only when the
// read stamps a timestamp attribute is there nothing to take it from.
func TestPubSubMessageArrivalTime(t *testing.T) {
	published := time.Date(2026, 12, 6, 10, 0, 5, 0, time.UTC)
	stamped := mtime.FromTime(published.Add(-time.Second))
	encode := func(m *pubsubpb.PubsubMessage) []byte {
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	with := encode(&pubsubpb.PubsubMessage{Data: []byte("{}"), PublishTime: timestamppb.New(published), MessageId: "17"})
	without := encode(&pubsubpb.PubsubMessage{Data: []byte("{}")})
	for _, c := range []struct {
		name     string
		fn       pubsubMessageFn
		raw      []byte
		wantTime int64
	}{
		{"publish_time set", pubsubMessageFn{Source: "ads", StampedByPublishTime: true}, with, published.UnixMilli()},
		{"publish_time set, attribute-stamped read", pubsubMessageFn{Source: "ads"}, with, published.UnixMilli()},
		{"no publish_time, read stamped by publish time", pubsubMessageFn{Source: "ads", StampedByPublishTime: true}, without, stamped.Milliseconds()},
		{"no publish_time, attribute-stamped read", pubsubMessageFn{Source: "ads"}, without, 0},
	} {
		m, err := c.fn.ProcessElement(stamped, c.raw)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if m.PublishTime != c.wantTime || m.Source != "ads" || string(m.Data) != "{}" {
			t.Errorf("%s: publish time %d, source %q, data %q; want %d, ads, {}", c.name, m.PublishTime, m.Source, m.Data, c.wantTime)
		}
		// The message id names a dead letter, so that one the BigQuery
		// sink writes twice is counted once.
		if wantID := map[bool]string{true: "17"}[bytes.Equal(c.raw, with)]; m.ID != wantID {
			t.Errorf("%s: message id %q, want %q", c.name, m.ID, wantID)
		}
	}
}
