package pipelines

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/x/beamx"
)

// RunLocal runs the pipeline to completion on the runner the --runner flag
// names (Prism by default), reporting progress to progress (if not nil), and
// returns the summary read back from the warehouse.
func RunLocal(ctx context.Context, o *Options, reset bool, progress io.Writer) (*Summary, error) {
	if reset {
		if err := ResetWarehouse(o.Warehouse); err != nil {
			return nil, fmt.Errorf("reset warehouse: %w", err)
		}
	}
	p, s := beam.NewPipelineWithRoot()
	Build(s, o)
	var total int64
	if o.Source == SourceGenerator {
		total = o.Generator.Events
	}
	stop := make(chan struct{})
	if progress != nil {
		go ReportProgress(progress, 2*time.Second, total, stop)
	}
	start := time.Now()
	pr, err := beamx.RunWithMetrics(ctx, p)
	close(stop)
	if err != nil {
		return nil, fmt.Errorf("pipeline failed: %w", err)
	}
	elapsed := time.Since(start)
	sum, err := Summarize(ctx, o.Warehouse, pr.Metrics().AllMetrics())
	if err != nil {
		return nil, fmt.Errorf("read back the warehouse: %w", err)
	}
	sum.Elapsed = elapsed
	if o.Source == SourceGenerator {
		e := o.Generator.Expected()
		sum.Expected = &e
	}
	return sum, nil
}

// Exit codes of the pipeline binary.
const (
	ExitOK        = 0
	ExitFailed    = 1
	ExitReconcile = 3
)

// Main is the body of cmd/campaignpulse's main, kept here so the bench and
// the tests run exactly what a user runs.
func Main(o *Options, reset bool) int {
	ctx := context.Background()
	if err := o.Validate(); err != nil {
		fmt.Fprintln(os.Stderr, "campaignpulse:", err)
		return ExitFailed
	}
	sum, err := RunLocal(ctx, o, reset, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "campaignpulse:", err)
		return ExitFailed
	}
	sum.Print(os.Stdout)
	if len(sum.Problems()) > 0 {
		return ExitReconcile
	}
	return ExitOK
}
