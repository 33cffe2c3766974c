// Command bench measures the pipeline against the plain-Go limit on the same
// input. It writes N generated events to a JSON-lines file first (afresh on
// every run, not timed), runs the pipeline on Prism over the file into a
// scratch DuckDB warehouse, then runs the reference loop (same parser and
// validation, map aggregation, every core) over the same file. The pipeline
// runs without enrichment, then with it (against an in-process Bigtable,
// seeded first); pipeline_events_per_s is the enriched run. The three run in
// --rounds alternating rounds (default 3) and each figure is the median over
// the rounds (enriched_ratio and ratio are the ratios of those medians): the
// machine is shared and its speed drifts. Then batched lookups
// are timed against the official emulator (cbtemulator) with a cold cache.
// After each enriched run it times the warehouse's CHECKPOINT, which
// campaignpulse runs after its summary, and reports it apart
// (checkpoint_seconds and checkpoint_cpu_seconds), outside the rates and the
// pipeline's CPU seconds (the floor below includes its own checkpoint, so
// the pipeline's whole cost in that comparison is pipeline_cpu_seconds plus
// checkpoint_cpu_seconds), and then the least CPU DuckDB
// spends to store that run's event rows (warehouse_floor_cpu_seconds, see
// warehouseFloor). With the reference loop's CPU seconds it bounds what any
// pipeline that stores every event in this warehouse can reach on this
// machine: events_per_s_ceiling and ratio_ceiling, and the same with the
// rows stored uncompressed (DuckDB's cheapest storage). Its last lines are:
//
//	lookup_keys_per_s N
//	lookup_batch_p99_ms N
//	unenriched_events_per_s N
//	enriched_ratio R
//	pipeline_events_per_s N
//	limit_events_per_s N
//	ratio R
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sort"
	"syscall"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/campaignpulse/campaignpulse/enrichment"
	"github.com/campaignpulse/campaignpulse/pipelines"
	"github.com/campaignpulse/campaignpulse/pipelines/generator"
)

func main() {
	opts := pipelines.RegisterFlags(flag.CommandLine)
	dir := flag.String("dir", ".bench", "scratch directory for the input file and the warehouse")
	workers := flag.Int("workers", runtime.NumCPU(), "goroutines of the reference loop")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of each pipeline run of the first round to PREFIX.unenriched.pprof and PREFIX.enriched.pprof (go tool pprof reads them)")
	flag.IntVar(&rounds, "rounds", 3, "rounds of un-enriched run, enriched run and reference loop; each figure is the median over the rounds (enriched_ratio and ratio: the ratios of the medians)")
	flag.Set("events", "1000000")
	flag.Parse()
	if rounds < 1 {
		fmt.Fprintln(os.Stderr, "bench: --rounds must be at least 1")
		os.Exit(2)
	}
	beam.Init()
	pipelines.LimitMemory(pipelines.DefaultMemoryLimit)
	profilePrefix = *cpuProfile
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
	input, size, err := writeInput(dir, o.Generator)
	if err != nil {
		return err
	}
	o.Source, o.Input = pipelines.SourceFile, input
	o.Warehouse = filepath.Join(dir, "bench.duckdb")

	// The machine is shared and its speed drifts by tens of percent from
	// one minute to the next, so the three measurements run in alternating
	// rounds and each figure is the median over the rounds.
	var plainRates, enrichedRates, limitRates, plainSecs, enrichedSecs, plainCPU, enrichedCPU, checkpointSecs, checkpointCPU []float64
	var refCPU, floorCPU, rawFloorCPU, ceilingRates, ratioCeilings, rawRatioCeilings []float64
	var sum, plainSum *pipelines.Summary
	var ref pipelines.ReferenceResult
	var refElapsed time.Duration
	for round := 1; round <= rounds; round++ {
		fmt.Fprintf(os.Stderr, "bench: round %d/%d over %s (%.0f MB)\n", round, rounds, input, float64(size)/1e6)
		var err error
		cpu0 := processCPUSeconds()
		if plainSum, err = runPipeline(ctx, o, false, round); err != nil {
			return err
		}
		cpu1 := processCPUSeconds()
		if sum, err = runPipeline(ctx, o, true, round); err != nil {
			return err
		}
		cpu2 := processCPUSeconds()
		plainCPU, enrichedCPU = append(plainCPU, cpu1-cpu0), append(enrichedCPU, cpu2-cpu1)
		// What campaignpulse does after the summary, timed apart so that the
		// rates stay comparable with earlier sessions'.
		start := time.Now()
		if err := pipelines.CheckpointWarehouse(o.Warehouse, nil); err != nil {
			return err
		}
		checkpointSecs = append(checkpointSecs, time.Since(start).Seconds())
		checkpointCPU = append(checkpointCPU, processCPUSeconds()-cpu2)
		fmt.Fprintf(os.Stderr, "bench: round %d/%d: DuckDB's floor: the run's event rows copied into a new file, compressed and not\n", round, rounds)
		floor, err := warehouseFloor(ctx, o.Warehouse, processCPUSeconds)
		if err != nil {
			return err
		}
		floorCPU = append(floorCPU, floor.compressed.writeCPUSeconds)
		rawFloorCPU = append(rawFloorCPU, floor.uncompressed.writeCPUSeconds)

		fmt.Fprintf(os.Stderr, "bench: round %d/%d: reference loop, %d goroutines\n", round, rounds, workers)
		cpu3 := processCPUSeconds()
		start = time.Now()
		ref, err = pipelines.Reference(input, o, workers)
		if err != nil {
			return err
		}
		refElapsed = time.Since(start)
		refCPU = append(refCPU, processCPUSeconds()-cpu3)
		// Every run's counts against the reference's, before any figure:
		// a run that read the file wrong (a line range twice, a lane's
		// share never) can still reconcile with itself, and its rate would
		// be printed as if it had done the work.
		for _, r := range []struct {
			name string
			sum  *pipelines.Summary
		}{{"un-enriched", plainSum}, {"enriched", sum}} {
			if err := ref.Agrees(r.sum); err != nil {
				return fmt.Errorf("round %d: the %s run %w", round, r.name, err)
			}
		}

		plainRates = append(plainRates, float64(plainSum.In)/plainSum.Elapsed.Seconds())
		enrichedRates = append(enrichedRates, float64(sum.In)/sum.Elapsed.Seconds())
		limitRates = append(limitRates, float64(ref.In)/refElapsed.Seconds())
		plainSecs = append(plainSecs, plainSum.Elapsed.Seconds())
		enrichedSecs = append(enrichedSecs, sum.Elapsed.Seconds())
		ceiling := ceilingRate(ref.In, runtime.NumCPU(), refCPU[round-1], floorCPU[round-1])
		rawCeiling := ceilingRate(ref.In, runtime.NumCPU(), refCPU[round-1], rawFloorCPU[round-1])
		ceilingRates = append(ceilingRates, ceiling)
		ratioCeilings = append(ratioCeilings, ceiling/limitRates[round-1])
		rawRatioCeilings = append(rawRatioCeilings, rawCeiling/limitRates[round-1])
		fmt.Printf("round %d: unenriched %.0f events/s, enriched %.0f events/s (ratio %.3f), limit %.0f events/s; CPU unenriched %.1f s, enriched %.1f s; checkpoint %.2f s, %.1f CPU-s\n", round,
			plainRates[round-1], enrichedRates[round-1], enrichedRates[round-1]/plainRates[round-1], limitRates[round-1],
			plainCPU[round-1], enrichedCPU[round-1], checkpointSecs[round-1], checkpointCPU[round-1])
		fmt.Printf("round %d: DuckDB stores %d event rows in %.1f CPU-s at least (copy %.1f s less scan %.1f s, %.0f MB), uncompressed %.1f CPU-s (%.0f MB); reference loop %.1f CPU-s; ceiling %.0f events/s (ratio %.3f, uncompressed %.3f)\n", round,
			floor.rows, floor.compressed.writeCPUSeconds, floor.compressed.ioCPU, floor.scanCPU, float64(floor.compressed.fileBytes)/1e6,
			floor.uncompressed.writeCPUSeconds, float64(floor.uncompressed.fileBytes)/1e6,
			refCPU[round-1], ceiling, ratioCeilings[round-1], rawRatioCeilings[round-1])
	}
	rss := peakRSSMB()
	sum.Print(os.Stdout)

	fmt.Fprintf(os.Stderr, "bench: batched lookups against cbtemulator, cold cache\n")
	lk, err := benchLookups(ctx, o.Generator)
	if err != nil {
		return fmt.Errorf("lookup bench: %w", err)
	}

	fmt.Printf("\nreference: in=%d valid=%d duplicates=%d dead_letter=%d too_late=%d aggregated=%d window_keys=%d in %s; every run of every round agrees with it\n",
		ref.In, ref.Valid, ref.Duplicates, ref.DeadLetters, ref.TooLate, ref.AggregatedEvents, ref.WindowKeys, refElapsed.Round(time.Millisecond))
	fmt.Printf("lookups: %d keys in %d batches of %d in %s; batch latency p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
		lk.keys, lk.batches, lk.batchSize, lk.elapsed.Round(time.Millisecond), lk.p50ms, lk.p99ms, lk.maxms)
	pipelineRate, unenrichedRate, limitRate := median(enrichedRates), median(plainRates), median(limitRates)
	fmt.Printf("rounds %d (below: medians over the rounds, except enriched_ratio and ratio, the ratios of those medians; peak_rss_mb, the process's peak; enrich_cache_hit_ratio, the last round's; lookup_*, over the lookup bench's three rounds)\n", rounds)
	fmt.Printf("pipeline_seconds %.3f\n", median(enrichedSecs))
	fmt.Printf("unenriched_pipeline_seconds %.3f\n", median(plainSecs))
	fmt.Printf("pipeline_cpu_seconds %.1f\n", median(enrichedCPU))
	fmt.Printf("unenriched_cpu_seconds %.1f\n", median(plainCPU))
	fmt.Printf("checkpoint_seconds %.2f\n", median(checkpointSecs))
	fmt.Printf("checkpoint_cpu_seconds %.1f\n", median(checkpointCPU))
	fmt.Printf("reference_cpu_seconds %.1f\n", median(refCPU))
	fmt.Printf("warehouse_floor_cpu_seconds %.1f\n", median(floorCPU))
	fmt.Printf("events_per_s_ceiling %.0f\n", median(ceilingRates))
	fmt.Printf("ratio_ceiling %.3f\n", median(ratioCeilings))
	fmt.Printf("warehouse_floor_uncompressed_cpu_seconds %.1f\n", median(rawFloorCPU))
	fmt.Printf("ratio_ceiling_uncompressed %.3f\n", median(rawRatioCeilings))
	fmt.Printf("peak_rss_mb %.0f\n", rss)
	fmt.Printf("enrich_cache_hit_ratio %.3f\n", sum.Enrichment.HitRatio())
	fmt.Printf("lookup_keys_per_s %.0f\n", lk.keysPerS)
	fmt.Printf("lookup_batch_p99_ms %.2f\n", lk.p99ms)
	fmt.Printf("unenriched_events_per_s %.0f\n", unenrichedRate)
	fmt.Printf("enriched_ratio %.3f\n", pipelineRate/unenrichedRate)
	fmt.Printf("pipeline_events_per_s %.0f\n", pipelineRate)
	fmt.Printf("limit_events_per_s %.0f\n", limitRate)
	fmt.Printf("ratio %.3f\n", pipelineRate/limitRate)
	return nil
}

// writeInput writes the generator's events to a JSON-lines file in dir,
// afresh on every run, and says how long that took (it is not timed). A file
// kept from an earlier run is never reused: a file run has no arrival times,
// so Validate judges the future-timestamp events (48 h past their arrival,
// about a day ahead when written) by the wall clock, and they turn valid as
// the file ages; and the name cannot carry every generator flag. The events
// go to a temporary file beside the input, renamed over it when complete
// (pipelines.WriteOutput), so a failed write leaves no partial input. Generation streams: memory
// stays bounded whatever the count.
func writeInput(dir string, g generator.Config) (path string, size int64, err error) {
	path = filepath.Join(dir, fmt.Sprintf("events-%d-seed%d.jsonl", g.Events, g.Seed))
	fmt.Fprintf(os.Stderr, "bench: writing %d events to %s (not timed)\n", g.Events, path)
	start := time.Now()
	// A bench killed while writing leaves its temporary file behind.
	if stale, _ := filepath.Glob(filepath.Join(dir, "events-*.jsonl.*.tmp")); len(stale) > 0 {
		for _, p := range stale {
			os.Remove(p)
		}
	}
	if err := pipelines.WriteOutput(path, nil, func(w io.Writer) error { return g.WriteJSONLines(w, nil) }); err != nil {
		return "", 0, fmt.Errorf("writing the input %s: %w", path, err)
	}
	st, err := os.Stat(path)
	if err != nil {
		return "", 0, err
	}
	fmt.Printf("input: %d events, %.0f MB, written afresh in %.1f s (not timed): %s\n",
		g.Events, float64(st.Size())/1e6, time.Since(start).Seconds(), path)
	return path, st.Size(), nil
}

// runPipeline runs the pipeline of o on Prism, with or without enrichment,
// and fails unless its counts reconcile.
func runPipeline(ctx context.Context, o *pipelines.Options, enrich bool, round int) (*pipelines.Summary, error) {
	run := *o
	run.Enrich = enrich
	name, what := "unenriched", "without enrichment"
	if enrich {
		name, what = "enriched", "with enrichment (in-process Bigtable)"
	}
	fmt.Fprintf(os.Stderr, "bench: round %d/%d: pipeline on Prism %s, %d lanes\n", round, rounds, what, o.Lanes)
	sum, err := profiled(name, round, func() (*pipelines.Summary, error) {
		return pipelines.RunLocal(ctx, &run, true, os.Stderr)
	})
	if err != nil {
		return nil, err
	}
	if p := sum.Problems(); len(p) > 0 {
		return nil, fmt.Errorf("the %s run does not reconcile: %v", name, p)
	}
	return sum, nil
}

// median of xs (the mean of the middle two for an even count).
func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// profilePrefix, when set, names the CPU profiles of the pipeline runs;
// rounds is the --rounds flag.
var (
	profilePrefix string
	rounds        int
)

// profiled runs one pipeline run, under the CPU profiler when asked: the
// runner, the SDK harness and the in-process Bigtable share this process, so
// one profile shows where a run's time goes.
func profiled(name string, round int, run func() (*pipelines.Summary, error)) (*pipelines.Summary, error) {
	if profilePrefix == "" || round > 1 {
		return run()
	}
	f, err := os.Create(profilePrefix + "." + name + ".pprof")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if err := pprof.StartCPUProfile(f); err != nil {
		return nil, err
	}
	defer pprof.StopCPUProfile()
	return run()
}

// lookupResult is what benchLookups measured.
type lookupResult struct {
	keys, batches, batchSize int
	elapsed                  time.Duration
	keysPerS                 float64
	p50ms, p99ms, maxms      float64
}

// benchLookups starts cbtemulator, seeds it as the pipeline's Bigtable is
// seeded, and resolves every seeded user (and a campaign) in batches of 1,000
// distinct keys, one batch at a time as one Enrich instance does, through a
// fresh Lookup each round so every key is a cache miss: the cost of the
// batched ReadRows path, not of the cache. Three rounds.
func benchLookups(ctx context.Context, gen generator.Config) (lookupResult, error) {
	emu, err := enrichment.StartEmulator(ctx)
	if err != nil {
		return lookupResult{}, err
	}
	defer emu.Stop()
	cfg := enrichment.Config{Project: "bench", Instance: "enrichment", Endpoint: emu.Addr}.WithDefaults()
	if err := pipelines.SeedEnrichment(ctx, &cfg, gen, os.Stderr, false); err != nil {
		return lookupResult{}, err
	}
	r := lookupResult{batchSize: 1000}
	users := enrichment.SeededUsers(gen, enrichment.DefaultUnsyncedShare)
	var lat []time.Duration
	for round := 0; round < 3; round++ {
		l, err := enrichment.OpenLookup(ctx, cfg)
		if err != nil {
			return r, err
		}
		// Warm the connection (not timed): the first RPC dials.
		l.Resolve(ctx, nil, []string{generator.CampaignID(0)})
		start := time.Now()
		for lo := 0; lo < users; lo += r.batchSize {
			ids := make([]string, 0, r.batchSize)
			for i := lo; i < min(lo+r.batchSize, users); i++ {
				ids = append(ids, generator.UserID(i))
			}
			t0 := time.Now()
			a, st := l.Resolve(ctx, ids, nil)
			lat = append(lat, time.Since(t0))
			if a.UsersErr != nil {
				l.Close()
				return r, a.UsersErr
			}
			if st.Hits != 0 || st.Misses != int64(len(ids)) {
				l.Close()
				return r, fmt.Errorf("the cache was not cold: %+v", st)
			}
			r.keys += len(ids)
			r.batches++
		}
		r.elapsed += time.Since(start)
		l.Close()
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	r.p50ms, r.p99ms, r.maxms = ms(lat[len(lat)/2]), ms(lat[(len(lat)*99)/100]), ms(lat[len(lat)-1])
	r.keysPerS = float64(r.keys) / r.elapsed.Seconds()
	return r, nil
}

// processCPUSeconds is the CPU time (user and system) this process has
// taken so far: Prism, the SDK harness, DuckDB's threads and the in-process
// Bigtable all run in it. On this shared machine CPU seconds compare two
// builds better than rates: a run's wall time also counts the time it waits
// for a core (cache and memory contention still move both).
func processCPUSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
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
