package pipelines

import (
	"context"
	"fmt"
	"os"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/x/beamx"
)

// RunDataflow builds the pipeline and submits it to Dataflow: what the flex
// template's launcher does when it runs the binary with --runner=dataflow
// and the Dataflow options (project, region, staging and temp locations,
// ...). Nothing local is prepared: there is no warehouse to reset and no
// Bigtable to start, so the options must name the cloud resources. With the
// runner's --dry_run, the job is translated and printed, not submitted.
func RunDataflow(ctx context.Context, o *Options) error {
	if err := o.CheckDataflow(); err != nil {
		return err
	}
	if o.Enrich {
		o.Enrichment = o.Enrichment.WithDefaults()
	}
	p, s := beam.NewPipelineWithRoot()
	Build(s, o)
	if err := beamx.Run(ctx, p); err != nil {
		return fmt.Errorf("submit the Dataflow job: %w", err)
	}
	return nil
}

// CheckDataflow reports what validated options lack to run on Dataflow:
// the workers can write neither a DuckDB file anyone reads nor enrich from
// the in-process Bigtable a local run starts.
func (o *Options) CheckDataflow() error {
	if o.Sink != SinkBigQuery {
		return fmt.Errorf("--runner=dataflow needs --sink=bigquery (with --bq_project and --bq_dataset), got --sink=%s: a DuckDB file on a worker is read by nobody", o.Sink)
	}
	if o.Enrich && (o.Enrichment.Instance == "" || o.Enrichment.Project == "") {
		return fmt.Errorf("--runner=dataflow with --enrich needs --bigtable_project and --bigtable_instance: the in-process Bigtable of local runs does not exist on Dataflow (or pass --enrich=false)")
	}
	return nil
}

// mainDataflow is Main on Dataflow: submit, report, exit code.
func mainDataflow(ctx context.Context, o *Options) int {
	if err := RunDataflow(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "campaignpulse:", err)
		return ExitFailed
	}
	return ExitOK
}
