package pipelines

import (
	"bytes"
	"compress/gzip"
	"context"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/options/jobopts"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/runners"
)

// TestValidateRejectsBadOptionsUpFront checks that options a run cannot use
// fail in Validate with a message naming the flag, before anything starts,
// and that their neighbours still pass.
func TestValidateRejectsBadOptionsUpFront(t *testing.T) {
	dir := t.TempDir()
	input := filepath.Join(dir, "events.jsonl")
	if err := os.WriteFile(input, []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte("{}\n"))
	zw.Close()
	gzInput, zstInput := filepath.Join(dir, "events.jsonl.gz"), filepath.Join(dir, "events.jsonl.zst")
	for path, data := range map[string][]byte{gzInput: gz.Bytes(), zstInput: {0x28, 0xb5, 0x2f, 0xfd, 0, 0}} {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		args    []string
		wantErr string // "" when the options are fine
	}{
		{nil, ""},
		{[]string{"--max_payload_bytes=0"}, "--max_payload_bytes must be positive"},
		{[]string{"--max_payload_bytes=-1"}, "--max_payload_bytes must be positive"},
		{[]string{"--max_payload_bytes=512"}, "--max_payload_bytes=512 would dead-letter events the generator makes valid"},
		{[]string{"--max_payload_bytes=1024"}, ""},
		{[]string{"--source=file", "--input=" + input, "--max_payload_bytes=512"}, ""},
		{[]string{"--source=file"}, "--source=file needs --input"},
		{[]string{"--source=file", "--input=" + filepath.Join(dir, "missing.jsonl")}, "--input: stat"},
		{[]string{"--source=file", "--input=" + dir}, "not a regular file"},
		{[]string{"--source=file", "--input=" + gzInput}, "is gzip-compressed"},
		{[]string{"--source=file", "--input=" + zstInput}, "is zstd-compressed"},
		{[]string{"--max_future_skew=-1h"}, "--max_future_skew must be ≥ 0, got -1h0m0s"},
		{[]string{"--max_future_skew=0"}, ""},
		{[]string{"--max_future_skew=48h"}, "--max_future_skew=48h0m0s would make the generator's future-timestamp events (48h0m0s ahead) valid"},
		{[]string{"--max_future_skew=47h59m57s"}, ""},
		{[]string{"--source=file", "--input=" + input, "--max_future_skew=72h"}, ""},
		{[]string{"--rate=NaN"}, "--rate finite"},
		{[]string{"--rate=+Inf"}, "--rate finite"},
		{[]string{"--max_payload_bytes=104857601"}, "--max_payload_bytes must be at most 104857600"},
		{[]string{"--max_payload_bytes=9223372036854775807"}, "--max_payload_bytes must be at most"},
		{[]string{"--max_payload_bytes=104857600"}, ""},
		{[]string{"--source=pubsub", "--subscriptions=s", "--pubsub_project=p", "--run_for=-1s"}, "--run_for must be ≥ 0 (0: until interrupted), got -1s"},
		{[]string{"--source=pubsub", "--subscriptions=s", "--pubsub_project=p", "--run_for=0"}, ""},
		{[]string{"--source=pubsub", "--subscriptions=a,b,projects/q/subscriptions/a", "--pubsub_project=p"}, ""},
		{[]string{"--source=pubsub", "--subscriptions=a,b,a", "--pubsub_project=p"}, `--subscriptions names projects/p/subscriptions/a twice ("a" and "a")`},
		{[]string{"--source=pubsub", "--subscriptions=meta,projects/p/subscriptions/meta", "--pubsub_project=p"},
			`--subscriptions names projects/p/subscriptions/meta twice ("meta" and "projects/p/subscriptions/meta")`},
		{[]string{"--dedup_horizon=500us"}, "--dedup_horizon must be at least 1s, got 500µs"},
		{[]string{"--dedup_horizon=1s"}, ""},
		{[]string{"--max_partial_keys=0"}, "--max_partial_keys must be positive, got 0"},
		{[]string{"--max_partial_keys=-5"}, "--max_partial_keys must be positive, got -5"},
		{[]string{"--late_rate=-0.1"}, "--late_rate must be between 0 and 1, got -0.1"},
		{[]string{"--duplicate_rate=1.5", "--late_rate=-1"}, "--duplicate_rate must be between 0 and 1, got 1.5"},
		{[]string{"--too_late_rate=NaN"}, "--too_late_rate must be between 0 and 1, got NaN"},
		{[]string{"--malformed_rate=0", "--duplicate_rate=0", "--late_rate=0", "--too_late_rate=1"}, ""},
		{[]string{"--allowed_lateness=1m"}, "--late_rate=0.03 needs --allowed_lateness over 1m1s (one window and a second), got 1m0s"},
		{[]string{"--allowed_lateness=0", "--late_rate=0"}, ""},
		{[]string{"--allowed_lateness=62s"}, ""},
		{[]string{"--source=file", "--input=" + input, "--allowed_lateness=0"}, ""},
		{[]string{"--warehouse=" + filepath.Join(dir, "run?1", "w.duckdb")}, "a path with '?' cannot name a DuckDB file"},
		{[]string{"--warehouse=" + filepath.Join(dir, "run [1] *", "w[1].duckdb")}, ""}, // DuckDB's COPY takes the staged file's path as it is
	} {
		fs := flag.NewFlagSet("campaignpulse", flag.ContinueOnError)
		o := RegisterFlags(fs)
		if err := fs.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		err := o.Validate()
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%q: %v", tc.args, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%q: got error %v, want one containing %q", tc.args, err, tc.wantErr)
		}
	}
}

// TestRunID checks where a run's id comes from: --run_id when given, else on
// Dataflow the job name (kept by an update, which launches the binary again
// and must not count the state it carries over under a new id) or a fixed
// "dataflow", never a new one per launch; locally a new id per run.
func TestRunID(t *testing.T) {
	defer func(runner, job string) { *runners.Runner, *jobopts.JobName = runner, job }(*runners.Runner, *jobopts.JobName)
	runID := func(args ...string) string {
		t.Helper()
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		o := RegisterFlags(fs)
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		if err := o.Validate(); err != nil {
			t.Fatal(err)
		}
		return o.Window.RunID
	}
	*runners.Runner, *jobopts.JobName = "prism", ""
	a, b := runID(), runID()
	if !strings.HasPrefix(a, "local-") || a == b {
		t.Errorf("two local runs got the ids %q and %q; want two different local- ids", a, b)
	}
	if got := runID("--run_id=replay-1"); got != "replay-1" {
		t.Errorf("--run_id=replay-1 gave %q", got)
	}
	*runners.Runner = "dataflow"
	if got := runID(); got != "dataflow" {
		t.Errorf("on Dataflow without a job name the id is %q, want dataflow", got)
	}
	*jobopts.JobName = "campaign-pulse-prod"
	if a, b := runID(), runID(); a != "campaign-pulse-prod" || b != a {
		t.Errorf("two launches of job campaign-pulse-prod got the ids %q and %q, want the job name both times", a, b)
	}
	if got := runID("--run_id=campaign-pulse-prod-2"); got != "campaign-pulse-prod-2" {
		t.Errorf("--run_id on Dataflow gave %q", got)
	}
}

// TestDedupExpiresOnWatermarkWithAttributeTimes: Dedup releases an epoch's
// ids when the watermark passes its expiry, ahead of the wall clock, exactly
// when the Pub/Sub read is stamped by a producer's timestamp attribute (the
// watermark then follows the producers' clocks); otherwise such an early
// expiry is a drain's, and the ids are kept.
func TestDedupExpiresOnWatermarkWithAttributeTimes(t *testing.T) {
	ps := []string{"--source=pubsub", "--subscriptions=s", "--pubsub_project=p"}
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{nil, false},
		{ps, false},
		{append(ps, "--pubsub_timestamp_attribute=event_time"), true},
		{[]string{"--pubsub_timestamp_attribute=event_time"}, false}, // the generator: no Pub/Sub read
	} {
		fs := flag.NewFlagSet("campaignpulse", flag.ContinueOnError)
		o := RegisterFlags(fs)
		if err := fs.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		if err := o.Validate(); err != nil {
			t.Fatalf("%q: %v", tc.args, err)
		}
		if o.Dedup.ExpireOnWatermark != tc.want {
			t.Errorf("%q: ExpireOnWatermark %v, want %v", tc.args, o.Dedup.ExpireOnWatermark, tc.want)
		}
	}
}

// TestRunStreamingRefusesAnotherSink: make run-streaming reads its progress,
// freshness and reconcile line from the local warehouse; with
// --sink=bigquery it waited out its catch-up and then dereferenced the nil
// summary RunLocal returns for that sink. It is refused before anything
// starts.
func TestRunStreamingRefusesAnotherSink(t *testing.T) {
	o := testOptions(t, 1)
	o.Sink = SinkBigQuery
	sc := DefaultStreamingConfig
	sc.Rate, sc.Duration = 10, time.Second
	_, err := RunStreaming(context.Background(), o, sc, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "--sink=bigquery is not supported") {
		t.Fatalf("run-streaming with --sink=bigquery: got %v, want it refused", err)
	}
}

// TestRunStreamingChecksTheGeneratorFlags: make run-streaming publishes the
// generator's events, but it checked the options as a Pub/Sub run's, which
// skip the generator's flags: a payload limit under the generator's largest
// valid event dead-lettered some of them, and the run waited out its
// catch-up for valid rows that never came. Refused before anything starts.
func TestRunStreamingChecksTheGeneratorFlags(t *testing.T) {
	o := testOptions(t, 1)
	o.MaxPayloadBytes = 300
	sc := DefaultStreamingConfig
	sc.Rate, sc.Duration = 10, time.Second
	_, err := RunStreaming(context.Background(), o, sc, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "--max_payload_bytes=300 would dead-letter events the generator makes valid") {
		t.Fatalf("run-streaming with --max_payload_bytes=300: got %v, want it refused", err)
	}
	// A rate and duration that make no event: the empty run reconciled as ok.
	o = testOptions(t, 1)
	sc.Rate, sc.Duration = 0.5, time.Second
	if _, err := RunStreaming(context.Background(), o, sc, io.Discard); err == nil || !strings.Contains(err.Error(), "publishes no event") {
		t.Fatalf("run-streaming at 0.5 events/s for 1s: got %v, want it refused", err)
	}
}

// TestOnDataflowTakesBothRunnerNames: Beam registers the Dataflow runner as
// "dataflow" and "DataflowRunner"; both take the Dataflow path.
func TestOnDataflowTakesBothRunnerNames(t *testing.T) {
	defer func(old string) { *runners.Runner = old }(*runners.Runner)
	for name, want := range map[string]bool{"dataflow": true, "DataflowRunner": true, "dataflowrunner": true, "prism": false, "": false, "direct": false} {
		*runners.Runner = name
		if got := OnDataflow(); got != want {
			t.Errorf("--runner=%s: OnDataflow() = %v, want %v", name, got, want)
		}
	}
}
