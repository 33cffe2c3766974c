// Command campaignpulse runs the Campaign Pulse pipeline. Locally (the
// default) it generates traffic, runs on the Prism runner and writes an
// embedded DuckDB warehouse, then prints a summary that reconciles every
// input event:
//
//	go run ./cmd/campaignpulse --events=200000
//
// Run with --help for every flag.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/campaignpulse/campaignpulse/pipelines"
)

// resetByDefault is --reset as given, else its default for the source: a
// bounded run starts from an empty warehouse, so running it again gives the
// same tables; a Pub/Sub run appends, because a restarted streaming job
// (after a kill, say) gets back only the messages it never acknowledged, and
// emptying the tables would delete the rows of every message it had.
func resetByDefault(fs *flag.FlagSet, o *pipelines.Options, reset bool) bool {
	if isSet(fs, "reset") {
		return reset
	}
	return o.Source != pipelines.SourcePubSub
}

// isSet tells whether the command line gave the flag name.
func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// seedNote warns of a generated run that appends with the seed of an earlier
// one: the same seed makes the same event ids, so the warehouse would hold
// each id twice (the summary covers this run's rows only and cannot tell).
func seedNote(fs *flag.FlagSet, o *pipelines.Options, reset, streaming bool) string {
	if reset || isSet(fs, "seed") || (!streaming && o.Source != pipelines.SourceGenerator) {
		return ""
	}
	return fmt.Sprintf("note: appending a generated run with the default --seed=%d: it makes the event ids a run with that seed already wrote; pass another --seed for new events", o.Generator.Seed)
}

func main() {
	opts := pipelines.RegisterFlags(flag.CommandLine)
	reset := flag.Bool("reset", true, "empty the warehouse tables before the run (false: append; the summary covers this run's rows either way); with --source=pubsub the default is false: a restarted streaming job appends, as the messages it acknowledged before will not come again")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the whole run (pipeline and Prism) to this file")
	memprofile := flag.String("memprofile", "", "write a heap profile taken when the Go heap was largest to this file")
	flag.DurationVar(&opts.FailEventWritesFor, "fail_event_writes_for", 0, "testing: fail every bundle of the fact_marketing_events sink for this long from its first bundle; the runner retries them (needs the patched Prism make builds)")
	streaming := flag.Duration("streaming", 0, "make run-streaming: start the Pub/Sub and Bigtable emulators, run the pipeline as a streaming job, publish --rate events/s for this long, then drain (Ctrl-C drains early)")
	flag.Parse()
	// Init first: on a Dataflow worker (the same binary, started with
	// --worker) Init runs the SDK harness and exits, so the memory tuning
	// below, sized for a local run that shares one process with Prism and
	// DuckDB, applies to local runs and to the launcher only.
	beam.Init()
	if *streaming > 0 {
		pipelines.LimitMemory(pipelines.StreamingMemoryLimit)
		pipelines.TuneGCForStreaming()
	} else {
		pipelines.LimitMemory(pipelines.DefaultMemoryLimit)
	}
	resetRows := resetByDefault(flag.CommandLine, opts, *reset)
	if note := seedNote(flag.CommandLine, opts, resetRows, *streaming > 0); note != "" {
		fmt.Fprintln(os.Stderr, note)
	}
	run := func() int {
		if *streaming > 0 {
			return runStreaming(opts, *streaming, !resetRows)
		}
		return pipelines.Main(opts, resetRows)
	}
	if *memprofile != "" {
		defer watchPeakHeap(*memprofile)()
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "campaignpulse:", err)
			os.Exit(pipelines.ExitFailed)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "campaignpulse:", err)
			os.Exit(pipelines.ExitFailed)
		}
		code := run()
		pprof.StopCPUProfile()
		f.Close()
		exit(code)
	}
	exit(run())
}

// runStreaming is make run-streaming (see pipelines.RunStreaming): it ends
// with the published count, the freshness percentiles and the reconcile line.
func runStreaming(opts *pipelines.Options, d time.Duration, appendRows bool) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The first Ctrl-C drains (RunStreaming watches ctx); from then on the
	// signals are the process's again, so a second one kills a catch-up or
	// a drain that does not end, as in pipelines.Main. Registered until the
	// run returned, they were swallowed.
	finished := make(chan struct{})
	defer close(finished)
	go func() {
		select {
		case <-ctx.Done():
			stop()
			fmt.Fprintln(os.Stderr, "campaignpulse: interrupted: publishing stops, then the pipeline catches up and drains (interrupt again to kill)")
		case <-finished:
		}
	}()
	sc := pipelines.DefaultStreamingConfig
	sc.Rate, sc.Duration, sc.Append = opts.Generator.Rate, d, appendRows
	rep, err := pipelines.RunStreaming(ctx, opts, sc, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "campaignpulse:", err)
		return pipelines.ExitFailed
	}
	rep.Summary.Print(os.Stdout)
	if err := pipelines.CheckpointWarehouse(opts.Warehouse, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "campaignpulse: warning:", err)
	}
	// What the run's processes took of the machine: on two cores the
	// Pub/Sub emulator's share decides whether a fast rate keeps up.
	fmt.Printf("\ncpu_seconds %s\n", rep.CPU.Seconds())
	fmt.Printf("published %d\n", rep.Publish.Published)
	fmt.Printf("freshness_p50_s %.2f\nfreshness_p95_s %.2f\nfreshness_p99_s %.2f\n",
		rep.Freshness.Quantile(0.50).Seconds(), rep.Freshness.Quantile(0.95).Seconds(), rep.Freshness.Quantile(0.99).Seconds())
	fmt.Println(rep.Summary.ReconcileLine())
	if len(rep.Summary.Problems()) > 0 {
		return pipelines.ExitReconcile
	}
	return pipelines.ExitOK
}

// exit runs the deferred profile writers before it exits.
var atExit []func()

func exit(code int) {
	for _, f := range atExit {
		f()
	}
	os.Exit(code)
}

// watchPeakHeap samples the heap every 250 ms and keeps the profile of the
// largest in-use heap seen: the end of a run says little about its peak.
func watchPeakHeap(path string) func() {
	stop := make(chan struct{})
	done := make(chan struct{})
	var best []byte
	go func() {
		defer close(done)
		var peak uint64
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse <= peak {
				continue
			}
			peak = ms.HeapInuse
			var buf bytes.Buffer
			if err := pprof.Lookup("heap").WriteTo(&buf, 0); err == nil {
				best = buf.Bytes()
			}
		}
	}()
	write := func() {
		close(stop)
		<-done
		if err := os.WriteFile(path, best, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "campaignpulse:", err)
		}
	}
	atExit = append(atExit, write)
	return func() {}
}
