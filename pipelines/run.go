package pipelines

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/x/beamx"
	"github.com/campaignpulse/campaignpulse/enrichment"
	"github.com/campaignpulse/campaignpulse/pipelines/generator"
)

// RunLocal runs the pipeline to completion on the runner the --runner flag
// names (Prism by default), reporting progress to progress (if not nil), and
// returns the summary read back from the warehouse. With --sink=bigquery
// there is no local warehouse to reset or read: it returns a nil summary.
func RunLocal(ctx context.Context, o *Options, reset bool, progress io.Writer) (*Summary, error) {
	if o.Sink == SinkDuckDB {
		if err := duckDBLinked(); err != nil {
			return nil, fmt.Errorf("--sink=duckdb: %w", err)
		}
	}
	// The sources and the enrichment are checked before the reset: a run
	// that cannot start must not empty the warehouse.
	if o.Source == SourcePubSub {
		if err := CheckSubscriptions(ctx, o.PubSub, progress); err != nil {
			return nil, err
		}
	}
	if o.FailEventWritesFor > 0 {
		if !PrismRetriesBundles() {
			return nil, fmt.Errorf("--fail_event_writes_for needs the patched Prism that retries failed bundles (pipelines/prism): build with make")
		}
		ResetInjectedFailures()
	}
	if o.Enrich {
		stop, err := PrepareEnrichment(ctx, o, progress)
		if err != nil {
			return nil, fmt.Errorf("enrichment: %w", err)
		}
		defer stop()
		// The in-process workers never tear their DoFns down; free the
		// enrichment clients and caches once the run is over.
		defer enrichment.CloseShared()
	}
	if reset && o.Sink == SinkDuckDB {
		if err := ResetWarehouse(o.Warehouse); err != nil {
			return nil, fmt.Errorf("reset warehouse: %w", err)
		}
	}
	if o.Sink == SinkDuckDB {
		// The run holds the warehouse open until it is over. A sink's
		// bundle that fails releases its own handle (so that a failed job
		// leaves the file unlocked); were every sink's to fail at once (a
		// full disk), the last release would close the file, and until a
		// retry opened it again DuckDB's lock would be gone: another
		// process's reset could delete rows this run had committed and
		// acknowledged.
		w, err := OpenWarehouse(o.Warehouse)
		if err != nil {
			return nil, err
		}
		defer w.Release()
	}
	p, s := beam.NewPipelineWithRoot()
	built := *o // a graph of its own each run, even with the same options
	built.PubSub.Graph = newRunID()
	Build(s, &built)
	var total int64
	if o.Source == SourceGenerator {
		total = o.Generator.Events
	}
	stop := make(chan struct{})
	if progress != nil && !o.reportsOwnProgress {
		interval := 2 * time.Second
		if o.Unbounded() {
			interval = unboundedProgressInterval
		}
		go ReportProgress(progress, interval, total, stop)
	}
	start := time.Now()
	unsettled := psStats.unsettled.Load()
	pr, err := beamx.RunWithMetrics(ctx, p)
	close(stop)
	if o.Source == SourcePubSub {
		// Ack what the last bundles settled before the process may exit.
		if n := FinishReceivers(built.PubSub.Graph, 30*time.Second) - unsettled; n > 0 && err == nil && progress != nil {
			fmt.Fprintf(progress, "pubsub: warning: %d messages were still held unsettled when the job ended; they were released and come again to the next run\n", n)
		}
	}
	if o.Sink == SinkDuckDB {
		// The job is over: no bundle of it stages anything any more.
		removeStaleStaging(o.Warehouse, true)
	}
	if err != nil {
		return nil, fmt.Errorf("pipeline failed: %w", err)
	}
	elapsed := time.Since(start)
	if o.Sink != SinkDuckDB {
		return nil, nil
	}
	sum, err := Summarize(ctx, o.Warehouse, pr.Metrics().AllMetrics(), start)
	if err != nil {
		return nil, fmt.Errorf("read back the warehouse: %w", err)
	}
	sum.Elapsed = elapsed
	sum.EnrichOn = o.Enrich
	if o.Source == SourceGenerator {
		e := o.Generator.Expected()
		sum.Expected = &e
	}
	return sum, nil
}

// unboundedProgressInterval is how often a run from Pub/Sub, which may go on
// for hours, prints its progress line. A variable so that tests can lower it.
var unboundedProgressInterval = 10 * time.Second

// PrepareEnrichment points o.Enrichment at a Bigtable for a local run and
// returns what stops it:
//
//   - --bigtable_instance named: that instance (or, with
//     $BIGTABLE_EMULATOR_HOST set, the emulator's instance of that name),
//     used as it is: a real instance is never written to from here;
//   - otherwise $BIGTABLE_EMULATOR_HOST if set, else an in-process Bigtable
//     (bttest) started here; either is seeded from the generator flags
//     (idempotent), so the events' ids are found.
func PrepareEnrichment(ctx context.Context, o *Options, progress io.Writer) (stop func(), err error) {
	stop = func() {}
	e := &o.Enrichment
	if e.Instance != "" || e.Endpoint != "" {
		*e = e.WithDefaults()
		return stop, enrichment.CheckTables(ctx, *e, progress)
	}
	*e = e.WithDefaults()
	inProcess := false
	if host := os.Getenv("BIGTABLE_EMULATOR_HOST"); host != "" {
		e.Endpoint = host
	} else {
		inProcess = true
		srv, err := enrichment.StartInProcess()
		if err != nil {
			return stop, err
		}
		e.Endpoint, stop = srv.Addr, srv.Close
	}
	if err := SeedEnrichment(ctx, e, o.Generator, progress, inProcess); err != nil {
		stop()
		return func() {}, fmt.Errorf("seed %s: %w", e.Endpoint, err)
	}
	return stop, nil
}

// SeedEnrichment writes the generator's users and campaigns into the
// Bigtable cfg names (see enrichment.Seed); inProcess says it is the local
// run's in-process bttest (see enrichment.SeedOptions.WithoutGCRules).
func SeedEnrichment(ctx context.Context, cfg *enrichment.Config, gen generator.Config, progress io.Writer, inProcess bool) error {
	client, closeClient, err := enrichment.Dial(ctx, *cfg)
	if err != nil {
		return err
	}
	defer closeClient()
	admin, closeAdmin, err := enrichment.DialAdmin(ctx, *cfg)
	if err != nil {
		return err
	}
	defer closeAdmin()
	start := time.Now()
	n, err := enrichment.Seed(ctx, client, admin, gen, enrichment.SeedOptions{
		UnsyncedShare: enrichment.DefaultUnsyncedShare, WithoutGCRules: inProcess})
	if err != nil {
		return err
	}
	if progress != nil {
		fmt.Fprintf(progress, "enrichment: seeded %d users (the newest %d left unsynced) and %d campaigns into Bigtable at %s in %s\n",
			n.Users, n.UnsyncedUsers, n.Campaigns, cfg.Endpoint, time.Since(start).Round(time.Millisecond))
	}
	return nil
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
	if OnDataflow() {
		return mainDataflow(ctx, o)
	}
	if o.Unbounded() {
		// A local streaming run ends by draining: after --run_for, or on
		// the first Ctrl-C (a second one kills it), also while it starts.
		base := DrainCount()
		o.PubSub.DrainBase = &base
		if o.RunFor > 0 {
			defer DrainAfter(o.RunFor)()
		}
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		defer signal.Stop(sig)
		go func() {
			<-sig
			signal.Stop(sig)
			fmt.Fprintln(os.Stderr, "campaignpulse: draining: the sources stop reading, the open windows fire (interrupt again to kill)")
			DrainSources()
		}()
	}
	sum, err := RunLocal(ctx, o, reset, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "campaignpulse:", err)
		return ExitFailed
	}
	if sum == nil {
		fmt.Printf("pipeline done: the rows are in BigQuery %s.%s (the run summary reads the local warehouse of --sink=duckdb)\n", o.BigQuery.Project, o.BigQuery.Dataset)
		return ExitOK
	}
	sum.Print(os.Stdout)
	if err := CheckpointWarehouse(o.Warehouse, os.Stderr); err != nil {
		// The rows are committed (in the WAL, which the next open
		// replays): worth a warning, not a failed run.
		fmt.Fprintln(os.Stderr, "campaignpulse: warning:", err)
	}
	if len(sum.Problems()) > 0 {
		return ExitReconcile
	}
	return ExitOK
}
