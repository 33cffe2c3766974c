package pipelines

import (
	"github.com/apache/beam/sdks/v2/go/pkg/beam"
)

// ReadPubSub is the native Pub/Sub source of every runner but Dataflow:
// lane k of lanes reads its share of the streaming-pull streams of
// cfg.Subscriptions and emits transforms.MessageBatch.
//
// TODO(issue 4): not built yet.
func ReadPubSub(s beam.Scope, cfg PubSubConfig, lane, lanes int) beam.PCollection {
	panic("ReadPubSub: the native Pub/Sub source is not built yet")
}

// DrainSources asks every native Pub/Sub source of this process to stop
// reading and let the pipeline drain.
//
// TODO(issue 4): not built yet.
func DrainSources() {}
