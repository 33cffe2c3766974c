// Command eventgen writes generated marketing events as JSON lines, the input
// of --source=file and of make bench, or publishes them to Pub/Sub, one topic
// per marketing source (platform), at --rate events a second. The flags are
// the pipeline's generator flags, so the same flags give the same events:
//
//	go run ./cmd/eventgen --events=1000000 --out=/tmp/events.jsonl
//	go run ./cmd/eventgen --pubsub_project=my-project --topic_prefix=campaign-pulse-prod- --rate=2000 --duration=10m
//
// --out is written whole or not at all (a temporary file beside it, renamed
// when complete). A file has no arrival times: a run reading it
// (--source=file, make bench) sees every event arrive at its event time, so
// none late or too late; the late and too-late events the generator makes
// are late only when generated in the pipeline (--source=generator) or
// published. --duration is for publishing; a file holds --events events.
//
// Publishing uses $PUBSUB_EMULATOR_HOST when it is set.
package main

import (
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
	if err := runArgs(flag.CommandLine, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "eventgen:", err)
		os.Exit(1)
	}
}

// runArgs registers eventgen's flags on fs, parses args and writes or
// publishes the events.
func runArgs(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) error {
	opts := pipelines.RegisterFlags(fs)
	out := fs.String("out", "-", "file to write, - for standard output (not with --topic_prefix)")
	prefix := fs.String("topic_prefix", "", "publish to Pub/Sub instead: the topic of platform p is <prefix><p> (underscores as hyphens), in --pubsub_project")
	create := fs.Bool("create_topics", false, "when publishing: create the topics (and the pipeline's subscriptions, <topic>-pipeline) where missing, as on the emulator")
	duration := fs.Duration("duration", 0, "only when publishing: publish --rate events a second for this long (instead of --events); a file takes --events")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *prefix != "" {
		if *out != "-" {
			return fmt.Errorf("--out is for writing a file; with --topic_prefix the events are published")
		}
		return publish(opts, *prefix, *duration, *create)
	}
	if *duration != 0 {
		return fmt.Errorf("--duration is for publishing (--topic_prefix); a file holds --events events")
	}
	return run(opts, *out, stdout, stderr)
}

// run writes the events to out (- for stdout). A file is written beside out
// and renamed over it only when complete, so a failed write leaves no
// partial file (or an earlier one as it was) that a run would read as input.
func run(opts *pipelines.Options, out string, stdout, stderr io.Writer) error {
	opts.Source = pipelines.SourceGenerator
	if err := opts.Validate(); err != nil {
		return err
	}
	start := time.Now()
	g := opts.Generator
	err := pipelines.WriteOutput(out, stdout, func(w io.Writer) error {
		return g.WriteJSONLines(w, func(done int64) {
			fmt.Fprintf(stderr, "eventgen: %d/%d events (%.0f/s)\n", done, g.Events, float64(done)/time.Since(start).Seconds())
		})
	})
	if err != nil {
		return err
	}
	// A file carries no arrival times: read from it (--source=file, make
	// bench), an event arrives at its event time, so none is late or too
	// late. The generator's late and too-late events are so only where they
	// arrive later than their event time: --source=generator, or publishing.
	// (The future-timestamp events are judged by the clock when the file is
	// read: they are dead letters while it is at most about a day old.)
	e := g.Expected()
	fmt.Fprintf(stderr, "eventgen: wrote %d events in %s: valid=%d duplicates=%d malformed=%d late=0 too_late=0 "+
		"(a file has no arrival times, so nothing in it is late; --source=generator or publishing with these flags: late=%d too_late=%d)\n",
		g.Events, time.Since(start).Round(time.Millisecond), e.Valid, e.Duplicates, e.Malformed, e.Late, e.TooLate)
	return nil
}

// publish sends the events to Pub/Sub and reports what the pipeline should
// make of them.
func publish(opts *pipelines.Options, prefix string, d time.Duration, create bool) error {
	if opts.PubSub.Project == "" {
		return fmt.Errorf("publishing needs --pubsub_project")
	}
	// The generator flags are checked as for a file: a --malformed_rate of 2
	// or a --start that does not parse is an error here too.
	opts.Source = pipelines.SourceGenerator
	if err := opts.Validate(); err != nil {
		return err
	}
	g := opts.Generator
	if d > 0 {
		g.Events = int64(g.Rate * d.Seconds())
	}
	g.Start = time.Time{} // the arrival clock starts with publishing
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	client, err := pubsub.NewClient(ctx, opts.PubSub.Project)
	if err != nil {
		return err
	}
	defer client.Close()
	if create {
		subs, err := pipelines.EnsureTopics(ctx, client, opts.PubSub.Project, prefix, time.Minute)
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "eventgen: topics and subscriptions ready: %s\n", strings.Join(subs, ","))
	}
	n, err := pipelines.Publish(ctx, client, pipelines.PublishConfig{
		TopicPrefix: prefix, Generator: g,
		IDAttribute: opts.PubSub.IDAttribute, TimestampAttribute: opts.PubSub.TimestampAttribute,
		Progress: os.Stderr,
	})
	fmt.Printf("published %d\nfailed %d\nmalformed %d\nelapsed_s %.1f\nrate_per_s %.0f\n",
		n.Published, n.Failed, n.Malformed, n.Elapsed.Seconds(), float64(n.Published)/n.Elapsed.Seconds())
	return err
}
