// Command bench measures the pipeline against the plain-Go limit on the same
// input. It writes N generated events to a JSON-lines file first (not timed),
// runs the pipeline on Prism over the file into a scratch DuckDB warehouse,
// then runs the reference loop (same parser and validation, map aggregation,
// every core) over the same file. Its last three lines are:
//
//	pipeline_events_per_s N
//	limit_events_per_s N
//	ratio R
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/campaignpulse/campaignpulse/pipelines"
)

func main() {
	opts := pipelines.RegisterFlags(flag.CommandLine)
	dir := flag.String("dir", ".bench", "scratch directory for the input file and the warehouse")
	workers := flag.Int("workers", runtime.NumCPU(), "goroutines of the reference loop")
	flag.Set("events", "1000000")
	flag.Parse()
	beam.Init()
	if err := run(opts, *dir, *workers); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(o *pipelines.Options, dir string, workers int) error {
	ctx := context.Background()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := o.Validate(); err != nil {
		return err
	}
	g := o.Generator
	input := filepath.Join(dir, fmt.Sprintf("events-%d-seed%d.jsonl", g.Events, g.Seed))
	if _, err := os.Stat(input); err != nil {
		fmt.Fprintf(os.Stderr, "bench: writing %d events to %s (not timed)\n", g.Events, input)
		f, err := os.Create(input + ".tmp")
		if err != nil {
			return err
		}
		if err := g.WriteJSONLines(f, nil); err != nil {
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		if err := os.Rename(input+".tmp", input); err != nil {
			return err
		}
	}
	st, _ := os.Stat(input)
	o.Source, o.Input = pipelines.SourceFile, input
	o.Warehouse = filepath.Join(dir, "bench.duckdb")

	fmt.Fprintf(os.Stderr, "bench: pipeline on Prism, %d lanes, over %s (%.0f MB)\n", o.Lanes, input, float64(st.Size())/1e6)
	sum, err := pipelines.RunLocal(ctx, o, true, os.Stderr)
	if err != nil {
		return err
	}
	rss := peakRSSMB()
	sum.Print(os.Stdout)
	pipelineRate := float64(sum.In) / sum.Elapsed.Seconds()

	fmt.Fprintf(os.Stderr, "bench: reference loop, %d goroutines\n", workers)
	start := time.Now()
	ref, err := pipelines.Reference(input, o, workers)
	if err != nil {
		return err
	}
	refElapsed := time.Since(start)
	limitRate := float64(ref.In) / refElapsed.Seconds()
	agree := ref.In == sum.In && ref.Valid == sum.Valid && ref.Duplicates == sum.Duplicates &&
		ref.DeadLetters == sum.DeadLetters && ref.AggregatedEvents == sum.LatestPaneEvents
	fmt.Printf("\nreference: in=%d valid=%d duplicates=%d dead_letter=%d aggregated=%d in %s; agrees with the pipeline: %v\n",
		ref.In, ref.Valid, ref.Duplicates, ref.DeadLetters, ref.AggregatedEvents, refElapsed.Round(time.Millisecond), agree)
	fmt.Printf("pipeline_seconds %.3f\n", sum.Elapsed.Seconds())
	fmt.Printf("peak_rss_mb %.0f\n", rss)
	fmt.Printf("pipeline_events_per_s %.0f\n", pipelineRate)
	fmt.Printf("limit_events_per_s %.0f\n", limitRate)
	fmt.Printf("ratio %.3f\n", pipelineRate/limitRate)
	if !agree || len(sum.Problems()) > 0 {
		return fmt.Errorf("the pipeline's counts do not reconcile or differ from the reference")
	}
	return nil
}

// peakRSSMB is the process's peak resident set so far (the pipeline and the
// in-process Prism runner), in MiB.
func peakRSSMB() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return -1
	}
	return float64(ru.Maxrss) / 1024 // Linux reports KiB
}
