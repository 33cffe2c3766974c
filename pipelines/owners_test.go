package pipelines

import (
	"strings"
	"testing"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph"
)

// owners are the DoFns that own their main input: each changes the batches
// it is given in place (ValidateSchema, ClassifyLateness, DedupBatches and
// Enrich; see their doc comments), which is safe only while that input has
// no other consumer. On every runner a collection read by two steps of one
// fused stage hands both the same value, so a second consumer would see
// events compacted, flagged or enriched under it.
var owners = []string{"transforms.validateFn", "transforms.classifyLatenessFn", "transforms.dedupFn", "enrichment.enrichFn"}

// TestOwnedInputsHaveOneConsumer builds the job's graph in each shape Build
// makes and checks that every input an owner changes in place feeds that
// owner alone: the ownership contract, checked instead of only stated.
func TestOwnedInputsHaveOneConsumer(t *testing.T) {
	for _, c := range []struct {
		name   string
		change func(*Options)
	}{
		{"generator, enriched, 2 lanes", func(o *Options) { o.Enrich = true }},
		{"generator, un-enriched, 1 lane", func(o *Options) { o.Enrich, o.Lanes = false, 1 }},
		{"file, enriched, BigQuery", func(o *Options) {
			o.Enrich, o.Source, o.Input = true, SourceFile, "events.jsonl"
			o.Sink, o.BigQuery = SinkBigQuery, BigQueryTarget{Project: "p", Dataset: "campaign_pulse"}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := testOptions(t, 1000)
			c.change(o)
			edges := buildGraph(t, o)
			consumers := map[*graph.Node][]string{}
			for _, e := range edges {
				for _, in := range e.Input {
					consumers[in.From] = append(consumers[in.From], e.Name())
				}
			}
			found := map[string]int{}
			for _, e := range edges {
				owner := ownerOf(e)
				if owner == "" {
					continue
				}
				found[owner]++
				if got := consumers[e.Input[0].From]; len(got) != 1 {
					t.Errorf("%s in %s owns its input, which has %d consumers: %v", owner, e.Scope(), len(got), got)
				}
			}
			for _, owner := range owners {
				want := o.Lanes
				if owner == "enrichment.enrichFn" && !o.Enrich {
					want = 0
				}
				if found[owner] != want {
					t.Errorf("%s: %d in the graph, want %d (one a lane): has it been renamed?", owner, found[owner], want)
				}
			}
		})
	}
}

// buildGraph builds the job of o and returns its edges, as a runner gets
// them, without running it.
func buildGraph(t *testing.T, o *Options) []*graph.MultiEdge {
	t.Helper()
	p, s := beam.NewPipelineWithRoot()
	Build(s, o)
	edges, _, err := p.Build()
	if err != nil {
		t.Fatal(err)
	}
	return edges
}

// ownerOf returns the owner e runs, or "".
func ownerOf(e *graph.MultiEdge) string {
	if e.Op != graph.ParDo || e.DoFn == nil {
		return ""
	}
	for _, owner := range owners {
		if strings.HasSuffix(e.DoFn.Name(), "/"+owner) || e.DoFn.Name() == owner {
			return owner
		}
	}
	return ""
}
