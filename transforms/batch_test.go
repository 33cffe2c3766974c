package transforms

import (
	"fmt"
	"testing"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/passert"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/transforms/stats"
)

func init() {
	register.Function1x1(messageBatchSize)
	register.Function2x0(oversizeBatch)
	register.Emitter1[int]()
}

func messageBatchSize(b MessageBatch) int { return len(b.Messages) }

func oversizeBatch(n int, emit func(int)) {
	if n > DefaultBatchSize || n == 0 {
		emit(n)
	}
}

// BatchMessages keeps every message, in batches of 1 to DefaultBatchSize;
// Unbatch gives back every event of a batch.
func TestBatchAndUnbatchOnPrism(t *testing.T) {
	const n = 2*DefaultBatchSize + 100
	msgs := make([]Message, n)
	events := make([]Event, n)
	want := make([]any, n)
	for i := range msgs {
		msgs[i] = Message{Data: []byte(fmt.Sprint(i))}
		events[i] = Event{EventID: fmt.Sprint(i), EventTime: int64(i)}
		want[i] = fmt.Sprint(i)
	}
	ptest.BuildAndRun(t, func(s beam.Scope) {
		sizes := beam.ParDo(s, messageBatchSize, BatchMessages(s, beam.CreateList(s, msgs)))
		passert.Equals(s, stats.Sum(s, sizes), n)
		passert.Empty(s, beam.ParDo(s, oversizeBatch, sizes))
		passert.Equals(s, beam.ParDo(s, eventIDOf, Unbatch(s, BatchEvents(s, beam.CreateList(s, events)))), want...)
	})
}
