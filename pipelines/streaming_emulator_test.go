package pipelines

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestStreamingOnThePubSubEmulator is make run-streaming, small (see
// runSmallStreaming).
func TestStreamingOnThePubSubEmulator(t *testing.T) {
	rep := runSmallStreaming(t, nil)
	t.Logf("published %d, freshness p50 %s p95 %s p99 %s", rep.Publish.Published,
		rep.Freshness.Quantile(0.5), rep.Freshness.Quantile(0.95), rep.Freshness.Quantile(0.99))
}

// TestStreamingRetriesFailedSinkBundles is the same run with the event
// sink failing every bundle for its first 2 s (--fail_event_writes_for): the
// runner retries each failed bundle, which had committed nothing, so
// afterwards every valid event is in the warehouse exactly once and the
// counters (only successful attempts count) still reconcile.
func TestStreamingRetriesFailedSinkBundles(t *testing.T) {
	if !PrismRetriesBundles() {
		t.Skip("needs the patched Prism that retries failed bundles: run make test (pipelines/prism)")
	}
	runSmallStreaming(t, func(o *Options) { o.FailEventWritesFor = 2 * time.Second })
	if n := InjectedFailures.Load(); n == 0 {
		t.Fatal("no bundle of the event sink failed: the injection did not happen")
	} else {
		t.Logf("%d event-sink bundles failed and were retried", n)
	}
}

// runSmallStreaming is make run-streaming, small: the official Pub/Sub
// emulator (started by the run), one topic and subscription per source, the
// native source on Prism as an unbounded job, the publisher at 2,000
// events/s for 6 s, then a drain. Every published event must be accounted
// for exactly as the generator made it, every valid event must be in the
// warehouse once, and every event row must have a freshness sample.
func runSmallStreaming(t *testing.T, configure func(*Options)) *StreamingReport {
	t.Helper()
	if testing.Short() {
		t.Skip("starts the Pub/Sub emulator")
	}
	if os.Getenv("PUBSUB_EMULATOR_HOST") != "" {
		t.Skip("PUBSUB_EMULATOR_HOST is set: this test starts its own emulator")
	}
	o := testOptions(t, 1)
	o.PubSub = DefaultPubSubConfig
	o.PubSub.Streams = 2
	if configure != nil {
		configure(o)
	}
	sc := DefaultStreamingConfig
	sc.Rate, sc.Duration, sc.ProgressEvery = 2000, 6*time.Second, time.Second
	sc.TopicPrefix = "cp-test-"
	// A cap, not a pace: the run drains itself after its 6 s, and a
	// cancelled context takes Prism's in-process worker down with the whole
	// package (README), so leave a loaded machine room for the JVM's start.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var log strings.Builder
	rep, err := RunStreaming(ctx, o, sc, &log)
	t.Log(log.String())
	if err != nil {
		t.Fatal(err)
	}
	sum := rep.Summary
	if rep.Publish.Published != 12_000 || rep.Publish.Failed != 0 {
		t.Fatalf("published %d, failed %d; want 12000 and 0", rep.Publish.Published, rep.Publish.Failed)
	}
	if sum.Expected == nil || !sum.Streaming {
		t.Fatal("the summary was not checked against the generator")
	}
	if p := sum.Problems(); len(p) > 0 {
		t.Fatalf("does not reconcile: %v", p)
	}
	e := sum.Expected
	if sum.Valid != e.Valid || sum.DeadLetters != e.Malformed || e.Malformed == 0 || e.Duplicates == 0 {
		t.Errorf("valid=%d dead=%d, generator: %+v", sum.Valid, sum.DeadLetters, *e)
	}
	w, err := OpenWarehouse(o.Warehouse)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Release()
	var rows, ids int64
	if err := w.DB().QueryRow(`select count(*), count(distinct event_id) from fact_marketing_events`).Scan(&rows, &ids); err != nil {
		t.Fatal(err)
	}
	if rows != e.Valid || ids != e.Valid {
		t.Errorf("fact_marketing_events has %d rows and %d distinct ids; the generator published %d valid events", rows, ids, e.Valid)
	}
	if n := rep.Freshness.Count(); n != rows {
		t.Errorf("%d freshness samples for %d event rows", n, rows)
	}
	if p50, p99 := rep.Freshness.Quantile(0.5), rep.Freshness.Quantile(0.99); p50 <= 0 || p99 < p50 {
		t.Errorf("freshness p50 %s p99 %s", p50, p99)
	}
	// The run measured its processes' CPU: delivering and reading 12,000
	// messages takes the emulator and the pipeline some, and the machine was
	// busy for at least as long as either. (Not their sum: /proc/stat samples
	// the CPUs at each tick while a process's own times come from the
	// scheduler's exact runtime, so processes that run in short bursts, as
	// the emulator's pull threads do, can sum to a few percent more; a run in
	// CI read machine=10.2 s against 3.9 + 6.6.)
	const tick = time.Second / clockTicks
	if c := rep.CPU; c.Pipeline <= 0 || c.PubSubEmulator <= 0 || c.Wall < sc.Duration ||
		c.Machine+5*tick < max(c.Pipeline, c.PubSubEmulator) {
		t.Errorf("cpu_seconds %s", c.Seconds())
	}
	return rep
}

// TestPubSubEmulatorDiesWithItsRun: a local streaming run killed outright
// (kill -9) takes the emulator it started with it. Under gcloud's wrapper
// the JVM survived, and a leftover emulator took CPU from every later run.
// The test binary is run again as the process that starts the emulator; it
// is killed, and the emulator's port must stop answering.
func TestPubSubEmulatorDiesWithItsRun(t *testing.T) {
	if os.Getenv("CP_START_EMULATOR") != "" {
		emu, err := StartPubSubEmulator(context.Background(), "local", "")
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println(emu.Addr)
		select {} // until killed
	}
	if testing.Short() {
		t.Skip("starts the Pub/Sub emulator")
	}
	run := exec.Command(os.Args[0], "-test.run=^TestPubSubEmulatorDiesWithItsRun$")
	run.Env = append(os.Environ(), "CP_START_EMULATOR=1")
	stdout, err := run.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	defer run.Wait()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || strings.HasPrefix(line, "error:") {
		run.Process.Kill()
		t.Fatalf("the run said %q (%v)", line, err)
	}
	addr := strings.TrimSpace(line)
	if c, err := net.DialTimeout("tcp", addr, time.Second); err != nil {
		run.Process.Kill()
		t.Fatalf("the emulator at %s does not answer: %v", addr, err)
	} else {
		c.Close()
	}
	run.Process.Kill()
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatalf("15 s after its run was killed, the emulator at %s still answers", addr)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
