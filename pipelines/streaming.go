package pipelines

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"github.com/campaignpulse/campaignpulse/enrichment"
	"github.com/campaignpulse/campaignpulse/pipelines/generator"
)

// StreamingConfig is a local streaming run: the traffic make run-streaming
// publishes and how long it waits for the pipeline to catch up.
type StreamingConfig struct {
	Project     string        // the emulator's project
	TopicPrefix string        // source topics are TopicID(TopicPrefix, platform)
	Rate        float64       // events published a second
	Duration    time.Duration // how long to publish
	// CatchUp bounds the wait, once publishing has ended, for the pipeline to
	// have read every published message before it drains.
	CatchUp time.Duration
	// ProgressEvery is the interval of the progress lines.
	ProgressEvery time.Duration
	// Append keeps the warehouse's rows (--reset=false) instead of emptying
	// it first: a run against an emulator that outlives it
	// (PUBSUB_EMULATOR_HOST) after one was killed, whose acknowledged
	// messages will not come again. The summary still covers this run's
	// rows, and is checked against what this run published.
	Append bool
}

// DefaultStreamingConfig is what make run-streaming starts from.
var DefaultStreamingConfig = StreamingConfig{
	Project: "campaign-pulse-local", TopicPrefix: "cp-local-", Rate: 5000, Duration: 30 * time.Second,
	CatchUp: 2 * time.Minute, ProgressEvery: 2 * time.Second,
}

// StreamingReport is what a local streaming run measured.
type StreamingReport struct {
	Publish   PublishCounts
	Freshness FreshnessSnapshot // publish → row committed, every event row
	CPU       CPUUse            // from the start of publishing to the end of the drain
	Summary   *Summary
}

// RunStreaming is make run-streaming: it starts the official Pub/Sub emulator
// (unless PUBSUB_EMULATOR_HOST is set) and, with enrichment on, the official
// Bigtable emulator (unless BIGTABLE_EMULATOR_HOST or --bigtable_instance is
// set), creates a topic and a subscription per marketing source, seeds
// Bigtable, starts the pipeline as an unbounded job on Prism, publishes
// generated traffic at sc.Rate for sc.Duration, and prints progress. When
// publishing is over, or ctx is cancelled (Ctrl-C), it drains the pipeline:
// the sources stop reading, the open windows fire their last panes, and the
// summary is read back from the warehouse.
func RunStreaming(ctx context.Context, o *Options, sc StreamingConfig, out io.Writer) (*StreamingReport, error) {
	if sc.Rate <= 0 || sc.Duration <= 0 {
		return nil, fmt.Errorf("run-streaming: the rate and the duration must be positive")
	}
	if o.Sink != SinkDuckDB {
		// Its freshness, progress and reconcile line read the local
		// warehouse, and RunLocal has no summary for another sink.
		return nil, fmt.Errorf("run-streaming writes to the local DuckDB warehouse: --sink=%s is not supported here", o.Sink)
	}
	// A rate and duration that make no event would publish nothing, and the
	// empty run would reconcile as ok.
	events := int64(sc.Rate * sc.Duration.Seconds())
	if events < 1 {
		return nil, fmt.Errorf("run-streaming: --rate=%g for %s publishes no event; want at least one", sc.Rate, sc.Duration)
	}
	// The events come from the generator's flags: they are checked as a
	// generator run's would be (an oversize limit under the generator's
	// largest event, a rate that is not finite, ...), before anything starts
	// and the source becomes Pub/Sub, whose checks skip them.
	gcheck := *o
	gcheck.Source = SourceGenerator
	gcheck.Generator.Rate, gcheck.Generator.Events = sc.Rate, events
	if err := gcheck.Validate(); err != nil {
		return nil, err
	}
	// setup outlives ctx: a Ctrl-C during the run must still let it drain.
	setup := context.WithoutCancel(ctx)
	var meter cpuMeter
	if os.Getenv("PUBSUB_EMULATOR_HOST") == "" {
		logPath := filepath.Join(os.TempDir(), "campaign-pulse-pubsub-emulator.log")
		emu, err := StartPubSubEmulator(setup, sc.Project, logPath)
		if err != nil {
			return nil, err
		}
		defer emu.Stop()
		meter.pubsubPgid = emu.Pgid()
		os.Setenv("PUBSUB_EMULATOR_HOST", emu.Addr)
		defer os.Unsetenv("PUBSUB_EMULATOR_HOST")
		fmt.Fprintf(out, "streaming: Pub/Sub emulator on %s (log %s)\n", emu.Addr, logPath)
	}
	if o.Enrich && o.Enrichment.Instance == "" && o.Enrichment.Endpoint == "" && os.Getenv("BIGTABLE_EMULATOR_HOST") == "" {
		emu, err := enrichment.StartEmulator(setup)
		if err != nil {
			return nil, fmt.Errorf("bigtable emulator: %w", err)
		}
		defer emu.Stop()
		meter.bigtable = emu.Pid()
		os.Setenv("BIGTABLE_EMULATOR_HOST", emu.Addr)
		defer os.Unsetenv("BIGTABLE_EMULATOR_HOST")
		fmt.Fprintf(out, "streaming: Bigtable emulator (cbtemulator) on %s\n", emu.Addr)
	}
	client, err := pubsub.NewClient(setup, sc.Project)
	if err != nil {
		return nil, fmt.Errorf("pubsub client: %w", err)
	}
	defer client.Close()
	subs, err := EnsureTopics(setup, client, sc.Project, sc.TopicPrefix, time.Minute)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "streaming: %d source topics %s<platform> with a subscription each\n", len(subs), sc.TopicPrefix)

	o.Source = SourcePubSub
	o.PubSub.Project = sc.Project
	o.PubSub.Subscriptions = subs
	if err := o.Validate(); err != nil {
		return nil, err
	}
	gen := o.Generator
	gen.Rate = sc.Rate
	gen.Events = events
	gen.Start = time.Time{} // Publish starts the arrival clock

	Freshness.Enable()
	defer Freshness.Disable()
	// The progress counters are the process's: a second run in one process
	// (the tests) starts from the first one's totals.
	base := sampleProgress()
	done := make(chan runResult, 1)
	o.reportsOwnProgress = true
	go func() {
		sum, err := RunLocal(setup, o, !sc.Append, out)
		done <- runResult{sum, err}
	}()

	// Publish once every source is reading. Prism takes a few seconds to
	// start the job, and events published meanwhile are a backlog the run
	// then works off for tens of seconds (at 20,000/s, 2 s of boot were
	// 30,000 events): that measured the job's start, not its freshness.
	if err := waitForReaders(ctx, out, sourceReaders(o.PubSub, max(o.Lanes, 1)), done); err != nil {
		return nil, err
	}
	published := make(chan PublishCounts, 1)
	var pubErr error
	go func() {
		n, err := Publish(ctx, client, PublishConfig{
			TopicPrefix: sc.TopicPrefix, Generator: gen,
			IDAttribute: o.PubSub.IDAttribute, TimestampAttribute: o.PubSub.TimestampAttribute,
		})
		pubErr = err
		published <- n
	}()

	report := &StreamingReport{}
	every := sc.ProgressEvery
	if every <= 0 {
		every = 2 * time.Second
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	start := time.Now()
	meter.start = start
	cpu0 := meter.read()
	lastCPU := cpu0
	last := base
	var lastFresh FreshnessSnapshot
	var catchUp <-chan time.Time
	publishing := true
	// want is what the warehouse must hold before the run drains: every
	// valid event published, once, and a dead letter for every malformed
	// one. Counting reads instead drained too early: a message redelivered
	// because its bundle was slow to commit is read twice, so reads reached
	// the published count while other messages had not been read once.
	var want generator.Counts
	finish := func() (*StreamingReport, error) {
		rep, err := drain(out, done, report, want)
		if rep != nil {
			rep.CPU = meter.read().Sub(cpu0)
		}
		return rep, err
	}
	for {
		select {
		case r := <-done:
			// The pipeline ended before it was drained: it failed.
			if r.err == nil {
				r.err = fmt.Errorf("the pipeline stopped before it was drained")
			}
			return nil, r.err
		case n := <-published:
			publishing = false
			report.Publish = n
			g := gen
			g.Events = n.Sent
			want = g.Expected() // the drain's summary is checked against it too
			if pubErr != nil && ctx.Err() == nil {
				fmt.Fprintf(out, "streaming: %v\n", pubErr)
			}
			fmt.Fprintf(out, "streaming: published %d events in %s; waiting for the pipeline to read them all (at most %s)\n",
				n.Published, n.Elapsed.Round(time.Millisecond), sc.CatchUp)
			catchUp = time.After(sc.CatchUp)
		case <-catchUp:
			fmt.Fprintf(out, "streaming: the pipeline read %d of %d published events in the catch-up time; draining anyway\n",
				Progress.Read.Load()-base.read, report.Publish.Published)
			return finish()
		case <-tick.C:
			now := sampleProgress()
			fresh := Freshness.Snapshot()
			el := time.Since(start).Seconds()
			interval := fresh.Since(lastFresh)
			dt := every.Seconds()
			cpu := meter.read()
			fmt.Fprintf(out, "streaming: %5.1fs published=%d in=%d (%.0f/s) out=%d (%.0f/s) lag=%d freshness p50=%.2fs p95=%.2fs cpu %s\n",
				el, now.published-base.published, now.read-base.read, float64(now.read-last.read)/dt,
				now.written()-base.written(), float64(now.written()-last.written())/dt,
				max(now.published-base.published-(now.read-base.read), 0), interval.Quantile(0.50).Seconds(), interval.Quantile(0.95).Seconds(),
				cpu.Sub(lastCPU).Line())
			last, lastFresh, lastCPU = now, fresh, cpu
			if !publishing && caughtUp(now, base, report.Publish, want) {
				return finish()
			}
		}
	}
}

type progressSample struct{ published, read, events, deadLetters int64 }

// written is the rows committed: event rows and dead letters.
func (p progressSample) written() int64 { return p.events + p.deadLetters }

// caughtUp reports whether the pipeline has written what was published: when
// every publish succeeded, the generator's valid events as rows and a dead
// letter for each malformed message (a redelivered one adds a row, so at
// least); when some failed, which ones is not known, so as many reads as
// messages published.
func caughtUp(now, base progressSample, pub PublishCounts, want generator.Counts) bool {
	if pub.Failed > 0 {
		return now.read-base.read >= pub.Published
	}
	return now.events-base.events >= want.Valid && now.deadLetters-base.deadLetters >= want.Malformed
}

func sampleProgress() progressSample {
	return progressSample{
		published:   PublishStats.Published.Load(),
		read:        Progress.Read.Load(),
		events:      Progress.Events.Load(),
		deadLetters: Progress.DeadLetters.Load(),
	}
}

type runResult struct {
	sum *Summary
	err error
}

// drain stops the sources, waits for the pipeline to finish, and sets what
// the summary is checked against: want, the generator's counts of the events
// that were published.
func drain(out io.Writer, done <-chan runResult, report *StreamingReport, want generator.Counts) (*StreamingReport, error) {
	fmt.Fprintf(out, "streaming: draining: the sources stop reading, the open windows fire their last panes\n")
	start := time.Now()
	DrainSources()
	r := <-done
	if r.err != nil {
		return nil, r.err
	}
	fmt.Fprintf(out, "streaming: drained in %s\n", time.Since(start).Round(time.Millisecond))
	report.Freshness = Freshness.Snapshot()
	report.Summary = r.sum
	if r.sum != nil && report.Publish.Failed == 0 {
		r.sum.Expected = &want
		r.sum.Streaming = true
	} else if r.sum != nil {
		// Counted as checked, with only in = valid + duplicates +
		// dead_letter to go by, the run said ok while messages published
		// were never read (the catch-up counts reads, redeliveries too).
		r.sum.PublishFailed = report.Publish.Failed
	}
	return report, nil
}

// sourceReaders is how many receivers the native source starts: one a lane
// and subscription the lane reads streams of.
func sourceReaders(ps PubSubConfig, lanes int) int {
	n := 0
	for lane := range lanes {
		for j := range ps.Subscriptions {
			if laneStreams(ps.Streams, j, lane, lanes) > 0 {
				n++
			}
		}
	}
	return n
}

// readersWait bounds how long a streaming run waits for its sources to start.
const readersWait = time.Minute

// waitForReaders waits until n receivers of the native source are live, the
// pipeline fails (done), ctx ends, or readersWait passes.
func waitForReaders(ctx context.Context, out io.Writer, n int, done <-chan runResult) error {
	start := time.Now()
	deadline := time.After(readersWait)
	poll := time.NewTicker(20 * time.Millisecond)
	defer poll.Stop()
	for liveReceivers() < int64(n) {
		select {
		case r := <-done:
			if r.err == nil {
				r.err = fmt.Errorf("the pipeline stopped before its sources started")
			}
			return r.err
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline:
			return fmt.Errorf("streaming: %d of %d Pub/Sub receivers started in %s", liveReceivers(), n, readersWait)
		case <-poll.C:
		}
	}
	fmt.Fprintf(out, "streaming: the pipeline reads all %d subscription shares after %s; publishing\n", n, time.Since(start).Round(time.Millisecond))
	return nil
}
