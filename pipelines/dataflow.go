package pipelines

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/options/jobopts"
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
	submitDefaults(o)
	p, s := beam.NewPipelineWithRoot()
	Build(s, o)
	if err := beamx.Run(ctx, p); err != nil {
		return fmt.Errorf("submit the Dataflow job: %w", err)
	}
	return nil
}

// CheckDataflow reports what validated options lack to run on Dataflow:
// the workers can read no file of the launching machine, write no DuckDB
// file anyone reads, and enrich from no in-process Bigtable of a local run.
func (o *Options) CheckDataflow() error {
	if o.Source == SourceFile {
		// Without this the job is submitted, and every worker fails to
		// stat the file, retried until Dataflow fails the job.
		return fmt.Errorf("--runner=dataflow needs --source=pubsub (or --source=generator for a load test), got --source=file: --input=%s is a path on this machine, which Dataflow's workers cannot read", o.Input)
	}
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

// submitDefaults sets two Dataflow runner flags the launcher does not pass,
// unless given:
//
//   - --worker_binary: this binary. Beam v2.77.0 never reuses the running
//     binary as the worker (runnerlib.IsWorkerCompatibleBinary is always
//     false) and falls back to go build from source, which the launcher
//     image has neither the toolchain nor the source for. The template's
//     binary is built for linux/amd64, the workers' platform (Dockerfile),
//     so on linux/amd64 it is the worker; elsewhere (a laptop) Beam's
//     cross-compile stays the default.
//   - --async for a streaming job: it never completes, so waiting for it
//     would keep the launcher running until the launch times out.
func submitDefaults(o *Options) {
	given := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { given[f.Name] = true })
	if !given["worker_binary"] && runtime.GOOS == "linux" && runtime.GOARCH == "amd64" {
		if self, err := os.Executable(); err == nil {
			*jobopts.WorkerBinary = self
		}
	}
	if o.Unbounded() && !given["async"] && !given["execute_async"] {
		*jobopts.Async = true
	}
}
