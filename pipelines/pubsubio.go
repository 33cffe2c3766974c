package pipelines

import (
	"fmt"
	"strings"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/typex"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/util/protox"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/util/reflectx"
	pipepb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/pipeline_v1"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/campaignpulse/campaignpulse/transforms"
	"google.golang.org/protobuf/proto"
)

func init() {
	register.DoFn2x2[beam.EventTime, []byte, transforms.Message, error](&pubsubMessageFn{})
}

// ReadPubSubIO is the production source: the Pub/Sub read Dataflow runs
// natively, over every subscription of cfg (full paths, as
// PubSubConfig.Validate leaves them), each message turned into a
// transforms.Message, flattened and batched into transforms.MessageBatch
// like the other sources' output.
//
// The read is no Go code on the worker: it is the Pub/Sub read URN, which
// only Dataflow implements (in its streaming engine), so this source runs on
// Dataflow alone; every other runner uses ReadPubSub. Dataflow acknowledges
// a message once the bundle that read it is committed, de-duplicates
// redeliveries by message id (and on cfg.IDAttribute, if set), and stamps
// each element with its publish time (or cfg.TimestampAttribute, if set).
func ReadPubSubIO(s beam.Scope, cfg PubSubConfig) beam.PCollection {
	s = s.Scope("ReadPubSubIO")
	if len(cfg.Subscriptions) == 0 {
		panic("ReadPubSubIO: no subscriptions")
	}
	msgs := make([]beam.PCollection, len(cfg.Subscriptions))
	for i, sub := range cfg.Subscriptions {
		full, err := SubscriptionPath(cfg.Project, sub)
		if err != nil {
			panic(fmt.Sprintf("ReadPubSubIO: %v", err))
		}
		project, id := splitSubscriptionPath(full)
		ss := s.Scope(id)
		opts := pubsubReadOptions{Subscription: id, IDAttribute: cfg.IDAttribute, WithAttributes: true}
		if cfg.TimestampAttribute != "" {
			opts.TimestampAttribute = cfg.TimestampAttribute
		}
		raw := readPubSub(ss, project, opts)
		msgs[i] = beam.ParDo(ss, &pubsubMessageFn{Source: id, StampedByPublishTime: opts.TimestampAttribute == ""}, raw)
	}
	return transforms.BatchMessages(s, flatten(s, msgs))
}

// pubsubReadURN is the transform Dataflow replaces with its native read.
const pubsubReadURN = "beam:transform:pubsub_read:v1"

// pubsubReadOptions mirror Beam's pubsubio.ReadOptions (subscriptions only).
type pubsubReadOptions struct {
	Subscription       string // the id; its project is readPubSub's argument
	IDAttribute        string
	TimestampAttribute string
	WithAttributes     bool
}

// readPubSub is Beam's io/pubsubio.Read (v2.77.0), minus its decoding step:
// the external Pub/Sub read with the same URN and payload, emitting each
// message as bytes (a serialized google.pubsub.v1.PubsubMessage, since
// WithAttributes is set). Beam's package cannot be linked here: it imports
// google.golang.org/genproto/googleapis/pubsub/v1, which the genproto that
// cloud.google.com/go/pubsub/v2 requires no longer has. The message is
// decoded with that client's pubsubpb instead: the same proto.
func readPubSub(s beam.Scope, project string, opts pubsubReadOptions) beam.PCollection {
	s = s.Scope("pubsubio.Read")
	payload := &pipepb.PubSubReadPayload{
		Subscription:       "projects/" + project + "/subscriptions/" + opts.Subscription,
		IdAttribute:        opts.IDAttribute,
		TimestampAttribute: opts.TimestampAttribute,
		WithAttributes:     opts.WithAttributes,
	}
	out := beam.External(s, pubsubReadURN, protox.MustEncode(payload), nil,
		[]beam.FullType{typex.New(reflectx.ByteSlice)}, false)
	return out[0]
}

// splitSubscriptionPath splits projects/P/subscriptions/S into P and S.
func splitSubscriptionPath(full string) (project, id string) {
	parts := strings.Split(full, "/")
	return parts[1], parts[3]
}

// pubsubMessageFn decodes a Pub/Sub message into the pipeline's Message,
// named after the subscription it came from: the short id is what the dead
// letter and the event rows record as the source, as the local sources do.
// Bytes that are no PubsubMessage fail the bundle: Dataflow wrote them, so
// that is a broken runner, not bad input (a bad payload is Data, which
// ParseEvents dead-letters).
//
// The publish time is the event's arrival (ingest) time, which the lateness
// rule reads. No public document says that Dataflow's native source fills
// the message's publish_time field for the SDK; when it does not, and the
// read stamps elements by publish time (no timestamp attribute), the
// element's timestamp is that time. Without either, Validate would take the
// event time as the arrival, and no event would ever be late. The message id
// names a dead letter; when Dataflow leaves it out, staging cannot tell a
// dead letter written twice from two, and counts both.
type pubsubMessageFn struct {
	Source               string
	StampedByPublishTime bool // the element's timestamp is the publish time
}

func (f *pubsubMessageFn) ProcessElement(ts beam.EventTime, raw []byte) (transforms.Message, error) {
	var m pubsubpb.PubsubMessage
	if err := proto.Unmarshal(raw, &m); err != nil {
		return transforms.Message{}, fmt.Errorf("decode a Pub/Sub message from %s: %w", f.Source, err)
	}
	var published int64
	if t := m.GetPublishTime(); t != nil {
		published = t.AsTime().UnixMilli()
	} else if f.StampedByPublishTime {
		published = ts.Milliseconds()
	}
	return transforms.Message{Data: m.GetData(), PublishTime: published, Source: f.Source,
		ReplayOf: m.GetAttributes()[ReplayOfAttribute], ID: m.GetMessageId()}, nil
}
