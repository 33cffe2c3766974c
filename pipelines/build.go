package pipelines

import (
	"context"
	"strings"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/window"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/log"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/runners"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/transforms/stats"
	"github.com/campaignpulse/campaignpulse/enrichment"
	"github.com/campaignpulse/campaignpulse/transforms"
)

func init() {
	register.Function2x1(laneOfKey)
	register.DoFn2x0[context.Context, int64](&logCommittedFn{})
}

// logCommitted logs how many rows of a table the sink committed in all.
func logCommitted(s beam.Scope, table string, counts beam.PCollection) {
	s = s.Scope("Committed." + table)
	beam.ParDo0(s, &logCommittedFn{Table: table}, stats.Sum(s, counts))
}

type logCommittedFn struct{ Table string }

func (f *logCommittedFn) ProcessElement(ctx context.Context, n int64) {
	log.Infof(ctx, "committed %d rows to %s", n, f.Table)
}

// Build wires the pipeline into s, sink included, and returns its row
// collections:
//
//	source → ParseEvents → ValidateSchema → ClassifyLateness → Dedup ─┬─► event rows ─► sink
//	                │              │                                  └─► CampaignMetrics ─► pane rows ─► sink
//	                └──────────────┴─► DeadLetters ─► sink
//
// The graph runs in o.Lanes parallel lanes. Prism, the local runner, runs one
// bundle of a stage at a time and splits a bundle only when it stalls, so a
// single chain of stages keeps one core busy; lanes give it independent
// stages to run side by side. Lane k reads the k-th share of the input; Dedup
// partitions its keys over the lanes, so each id still has exactly one owner;
// the partial aggregates of every lane meet in one CombinePerKey. On Dataflow,
// which parallelises bundles itself, one lane is right.
func Build(s beam.Scope, o *Options) LaneOutputs {
	lanes := max(o.Lanes, 1)
	var msgs []beam.PCollection
	if o.Source == SourcePubSub && OnDataflow() {
		// Dataflow reads Pub/Sub natively and parallelises it itself.
		msgs = []beam.PCollection{ReadPubSubIO(s, o.PubSub)}
	} else {
		ps := o.PubSub
		ps.WatermarkSkew = o.Window.WatermarkSkew
		ps.CatchUpLag = o.Window.AllowedLateness + o.Window.LatenessMargin
		ps.Settle = true // both sinks settle the rows they write
		// RunLocal names the graph, to finish its receivers at the end.
		if ps.Graph == "" {
			ps.Graph = newRunID()
		}
		msgs = make([]beam.PCollection, lanes)
		for k := range msgs {
			ls := s.Scope(laneName(k))
			switch o.Source {
			case SourceFile:
				msgs[k] = ReadJSONLines(ls, k, lanes, o.MaxPayloadBytes, o.Input)
			case SourcePubSub:
				msgs[k] = ReadPubSub(ls, ps, k, lanes)
			default:
				msgs[k] = Generate(ls, o.Generator, k, lanes, o.GeneratorSplits)
			}
		}
	}
	out := Transform(s, o, msgs...)
	if o.Sink == SinkBigQuery {
		WriteBigQuerySink(s, o.BigQuery, out.Events, out.Panes, out.DeadLetters)
		return out
	}
	logCommitted(s, transforms.TableEvents, WriteEventsDuckDB(s, o.Warehouse, o.FailEventWritesFor, out.Events...))
	logCommitted(s, transforms.TableMetrics, WriteDuckDB[transforms.MetricsRow](s, o.Warehouse,
		// A pane row carries its window in columns; the sink reports its
		// commits per bundle, which belong to no window.
		beam.WindowInto(s, window.NewGlobalWindows(), out.Panes)))
	logCommitted(s, transforms.TableDeadLetters, WriteDuckDB[transforms.DeadLetterRow](s, o.Warehouse, out.DeadLetters))
	return out
}

// LaneOutputs are Transform's results: valid events (EventBatch) per lane
// (each lane writes its own, in parallel; merging them would send every
// batch through the runner), pane rows and dead-letter rows merged.
type LaneOutputs struct {
	Events      []beam.PCollection
	Panes       beam.PCollection
	DeadLetters beam.PCollection
}

// Transform is the source- and sink-free middle of the pipeline: one
// collection of messages per lane in, rows out.
func Transform(s beam.Scope, o *Options, msgs ...beam.PCollection) LaneOutputs {
	lanes := len(msgs)
	dedup := o.Dedup
	dedup.Lanes = lanes
	window := o.Window
	if !o.Unbounded() {
		window.EarlyFiring = 0 // see WindowConfig.Trigger
	}
	var deadLetters []beam.PCollection
	toDedup := make([][]beam.PCollection, lanes) // [dedup lane][source lane]
	// One scope a lane, for both halves: a second s.Scope of the same name
	// would be a sibling named "lane0'1", which Dataflow would show as
	// another step.
	scopes := make([]beam.Scope, lanes)
	for k := range scopes {
		scopes[k] = s.Scope(laneName(k))
	}
	for k, m := range msgs {
		ls := scopes[k]
		events, parseDL := transforms.ParseEvents(ls, m, o.MaxPayloadBytes)
		valid, validateDL := transforms.ValidateSchema(ls, events, transforms.ValidateConfig{MaxFutureSkew: o.MaxFutureSkew})
		deadLetters = append(deadLetters, parseDL, validateDL)
		batches := transforms.BatchForDedup(ls, transforms.ClassifyLateness(ls, valid, window), dedup)
		if lanes == 1 {
			toDedup[0] = append(toDedup[0], batches)
			continue
		}
		parts := beam.Partition(ls, lanes, laneOfKey, batches)
		for d := range parts {
			toDedup[d] = append(toDedup[d], parts[d])
		}
	}
	var out LaneOutputs
	var partials []beam.PCollection
	for d, in := range toDedup {
		ls := scopes[d]
		unique := transforms.DedupBatches(ls, flatten(ls, in), dedup)
		if o.Enrich {
			var enrichDL beam.PCollection
			unique, enrichDL = enrichment.Enrich(ls, o.Enrichment, unique)
			deadLetters = append(deadLetters, enrichDL)
		}
		out.Events = append(out.Events, unique)
		partials = append(partials, transforms.PreAggregate(ls, unique, window))
	}
	out.Panes = transforms.AggregatePanes(s, window, partials...)
	out.DeadLetters = transforms.DeadLetters(s, deadLetters...)
	return out
}

// laneOfKey sends a dedup batch to the lane that owns its key.
func laneOfKey(key int64, _ transforms.EventBatch) int { return transforms.LaneOfKey(key) }

func flatten(s beam.Scope, cols []beam.PCollection) beam.PCollection {
	if len(cols) == 1 {
		return cols[0]
	}
	return beam.Flatten(s, cols...)
}

// OnDataflow reports whether the --runner flag names the Dataflow runner,
// which Beam registers as both "dataflow" and "DataflowRunner": under the
// second name a launch took the local path (no worker binary, a local
// run_id) and then still submitted to Dataflow.
func OnDataflow() bool {
	r := strings.ToLower(*runners.Runner)
	return r == "dataflow" || r == "dataflowrunner"
}

func laneName(k int) string { return "lane" + string(rune('0'+k%10)) }
