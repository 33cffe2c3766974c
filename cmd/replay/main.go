// Command replay sends dead letters through the pipeline again: it reads the
// dead letters of the given error codes from the DuckDB warehouse and writes
// their payloads as JSON lines, the input of campaignpulse --source=file, or
// publishes them, byte for byte, to a Pub/Sub topic the pipeline reads:
//
//	go run ./cmd/replay --codes=ENRICH_UNAVAILABLE --out=/tmp/replay.jsonl
//	campaignpulse --source=file --input=/tmp/replay.jsonl --reset=false
//	PUBSUB_EMULATOR_HOST=localhost:8085 go run ./cmd/replay --codes=ENRICH_UNAVAILABLE --pubsub_project=local --topic=replay
//
// Most codes are permanent (a malformed payload fails again the same way), so
// the codes are required: replay the transient ones (ENRICH_UNAVAILABLE), or
// codes a newer pipeline accepts. The dead letters stay in the warehouse:
// they are the record of what happened; one whose event is already a fact
// (replayed before) is skipped.
//
// The warehouse is a local DuckDB file. Publishing uses $PUBSUB_EMULATOR_HOST
// when it is set; without it the topic is real Pub/Sub, and the generator's
// synthetic dead letters are not published there (they are counted, and the
// command fails): only dead letters a local run read from Pub/Sub belong on a
// real topic. A Dataflow job's dead letters are in BigQuery, which this
// command does not read.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"cloud.google.com/go/pubsub/v2"

	"github.com/campaignpulse/campaignpulse/pipelines"
)

func main() {
	warehouse := flag.String("warehouse", "warehouse/campaign_pulse.duckdb", "the DuckDB warehouse holding dead_letter_events")
	codes := flag.String("codes", "", "comma-separated error codes to replay (required), e.g. ENRICH_UNAVAILABLE")
	stage := flag.String("stage", "", "only dead letters of this stage (parse, validate, enrich, sink)")
	since := flag.String("since", "", "only dead letters processed at or after this RFC 3339 time")
	out := flag.String("out", "-", "JSON-lines file to write, - for standard output")
	project := flag.String("pubsub_project", "", "with --topic: the project of the topic")
	topic := flag.String("topic", "", "publish to this Pub/Sub topic id instead of writing a file")
	ps := pipelines.DefaultPubSubConfig
	flag.StringVar(&ps.IDAttribute, "pubsub_id_attribute", ps.IDAttribute, "with --topic: the attribute to carry the event id (empty: none)")
	flag.StringVar(&ps.TimestampAttribute, "pubsub_timestamp_attribute", ps.TimestampAttribute, "with --topic: the attribute to carry the event time, RFC 3339 (empty: none)")
	flag.Parse()
	if err := run(*warehouse, *codes, *stage, *since, *out, *project, *topic, ps); err != nil {
		fmt.Fprintln(os.Stderr, err) // every error here starts with "replay:"
		os.Exit(1)
	}
}

func run(warehouse, codes, stage, since, out, project, topic string, ps pipelines.PubSubConfig) error {
	f := pipelines.ReplayFilter{Stage: stage}
	for _, c := range strings.Split(codes, ",") {
		if c = strings.TrimSpace(c); c != "" {
			f.Codes = append(f.Codes, c)
		}
	}
	if since != "" {
		t, err := time.Parse(time.RFC3339, since)
		if err != nil {
			return fmt.Errorf("replay: --since: %v", err)
		}
		f.Since = t
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	progress := time.NewTicker(5 * time.Second)
	defer progress.Stop()
	go func() {
		for range progress.C {
			fmt.Fprintf(os.Stderr, "replay: read=%d sent=%d\n", pipelines.ReplayStats.Read.Load(), pipelines.ReplayStats.Sent.Load())
		}
	}()
	var n pipelines.ReplayCounts
	var err error
	if topic != "" {
		if project == "" {
			return fmt.Errorf("replay: --topic needs --pubsub_project")
		}
		f.SkipSynthetic = os.Getenv("PUBSUB_EMULATOR_HOST") == ""
		client, cerr := pubsub.NewClient(ctx, project)
		if cerr != nil {
			return fmt.Errorf("replay: %w", cerr)
		}
		defer client.Close()
		n, err = pipelines.ReplayToPubSub(ctx, warehouse, f, client, topic, ps)
	} else {
		n, err = replayToFile(ctx, warehouse, f, out)
	}
	if err == nil || n.Selected > 0 {
		fmt.Fprintf(os.Stderr, "replay: %s\n", n)
	}
	if err == nil && n.Synthetic > 0 {
		err = fmt.Errorf("replay: %d dead letters of the generator's synthetic events were not published to the real Pub/Sub topic %s (set PUBSUB_EMULATOR_HOST to replay them to the emulator)", n.Synthetic, topic)
	}
	return err
}

// replayToFile writes the replay to out, - for standard output. A file is
// written beside out and renamed over it only when the replay succeeded, so a
// failed replay (a wrong --warehouse, a bad code) leaves an earlier replay's
// file as it was rather than empty, which the next run would read as
// nothing to replay.
func replayToFile(ctx context.Context, warehouse string, f pipelines.ReplayFilter, out string) (pipelines.ReplayCounts, error) {
	var n pipelines.ReplayCounts
	err := pipelines.WriteOutput(out, os.Stdout, func(w io.Writer) error {
		bw := bufio.NewWriter(w)
		var err error
		n, err = pipelines.ReplayToFile(ctx, warehouse, f, bw)
		if ferr := bw.Flush(); err == nil {
			err = ferr
		}
		if err != nil && !strings.HasPrefix(err.Error(), "replay:") {
			err = fmt.Errorf("%s: %w", out, err)
		}
		return err
	})
	if err != nil && !strings.HasPrefix(err.Error(), "replay:") {
		err = fmt.Errorf("replay: %w", err)
	}
	return n, err
}
