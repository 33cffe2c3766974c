package transforms

import (
	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/mtime"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
)

func init() {
	register.DoFn2x0[Message, func(MessageBatch)](&batchMessagesFn{})
	register.Emitter1[MessageBatch]()
	register.DoFn2x0[Event, func(EventBatch)](&batchEventsFn{})
	register.Emitter1[EventBatch]()
	register.Function2x0(unbatchEvents)
	register.Emitter2[beam.EventTime, Event]()
}

// DefaultBatchSize is how many records a batch carries at most: large enough
// that the runner's cost per element (about a microsecond a hop on Prism)
// vanishes against the work on its events, small enough that a batch stays
// a few hundred kilobytes.
const DefaultBatchSize = 512

// MessageBatch is a run of messages that travels through the pipeline as one
// element. Events move in batches from the source to the sinks: a fused step
// on Prism costs about as much per element as parsing a small event, so
// batching halves the work of the per-event path.
type MessageBatch struct {
	Messages []Message
}

// BatchMessages groups single messages (from a source that reads them one at
// a time) into batches of at most DefaultBatchSize, within each bundle.
func BatchMessages(s beam.Scope, msgs beam.PCollection) beam.PCollection {
	s = s.Scope("BatchMessages")
	return beam.ParDo(s, &batchMessagesFn{}, msgs)
}

type batchMessagesFn struct{ b batchBuffer[Message] }

func (f *batchMessagesFn) ProcessElement(m Message, emit func(MessageBatch)) {
	if full := f.b.add(m); full != nil {
		emit(MessageBatch{Messages: full})
	}
}

func (f *batchMessagesFn) FinishBundle(emit func(MessageBatch)) {
	if rest := f.b.take(); rest != nil {
		emit(MessageBatch{Messages: rest})
	}
}

// batchBuffer gathers a bundle's records into slices of DefaultBatchSize.
type batchBuffer[T any] struct{ buf []T }

// add appends x and returns the full batch, if x filled it.
func (b *batchBuffer[T]) add(x T) []T {
	b.buf = append(b.buf, x)
	if len(b.buf) < DefaultBatchSize {
		return nil
	}
	return b.take()
}

// take returns what is buffered (nil if nothing) and empties the buffer.
func (b *batchBuffer[T]) take() []T {
	out := b.buf
	b.buf = nil
	if len(out) == 0 {
		return nil
	}
	return out
}

// BatchEvents groups single events into batches, within each bundle.
func BatchEvents(s beam.Scope, events beam.PCollection) beam.PCollection {
	s = s.Scope("BatchEvents")
	return beam.ParDo(s, &batchEventsFn{}, events)
}

type batchEventsFn struct{ b batchBuffer[Event] }

func (f *batchEventsFn) ProcessElement(ev Event, emit func(EventBatch)) {
	if full := f.b.add(ev); full != nil {
		emit(EventBatch{Events: full})
	}
}

func (f *batchEventsFn) FinishBundle(emit func(EventBatch)) {
	if rest := f.b.take(); rest != nil {
		emit(EventBatch{Events: rest})
	}
}

// Unbatch emits the events of each batch one by one, each at its own event
// time: for a sink or a test that wants single events.
func Unbatch(s beam.Scope, batches beam.PCollection) beam.PCollection {
	s = s.Scope("Unbatch")
	return beam.ParDo(s, unbatchEvents, batches)
}

func unbatchEvents(b EventBatch, emit func(beam.EventTime, Event)) {
	for i := range b.Events {
		emit(mtime.FromMilliseconds(b.Events[i].EventTime), b.Events[i])
	}
}
