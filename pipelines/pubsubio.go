package pipelines

import (
	"github.com/apache/beam/sdks/v2/go/pkg/beam"
)

// ReadPubSubIO is the production source: Beam's pubsubio.Read, which Dataflow
// runs natively, over every subscription of cfg, flattened into one
// collection of transforms.MessageBatch.
//
// TODO(issue 4/6): not built yet.
func ReadPubSubIO(s beam.Scope, cfg PubSubConfig) beam.PCollection {
	panic("ReadPubSubIO: the Dataflow Pub/Sub source is not built yet")
}
