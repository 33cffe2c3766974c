// Command eventgen writes generated marketing events as JSON lines, the input
// of --source=file and of make bench, or publishes them to Pub/Sub, one topic
// per marketing source (platform), at --rate events a second. The flags are
// the pipeline's generator flags, so the same flags give the same events:
//
//	go run ./cmd/eventgen --events=1000000 --out=/tmp/events.jsonl
//	go run ./cmd/eventgen --pubsub_project=my-project --topic_prefix=campaign-pulse-prod- --rate=2000 --duration=10m
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
	opts := pipelines.RegisterFlags(flag.CommandLine)
	out := flag.String("out", "-", "file to write, - for standard output")
	prefix := flag.String("topic_prefix", "", "publish to Pub/Sub instead: the topic of platform p is <prefix><p> (underscores as hyphens), in --pubsub_project")
	create := flag.Bool("create_topics", false, "when publishing: create the topics (and the pipeline's subscriptions, <topic>-pipeline) where missing, as on the emulator")
	duration := flag.Duration("duration", 0, "when publishing: publish --rate events a second for this long (instead of --events)")
	flag.Parse()
	if *prefix != "" {
		if err := publish(opts, *prefix, *duration, *create); err != nil {
			fmt.Fprintln(os.Stderr, "eventgen:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(opts, *out); err != nil {
		fmt.Fprintln(os.Stderr, "eventgen:", err)
		os.Exit(1)
	}
}

func run(opts *pipelines.Options, out string) error {
	opts.Source = pipelines.SourceGenerator
	if err := opts.Validate(); err != nil {
		return err
	}
	var w io.Writer = os.Stdout
	if out != "-" {
		f, err := os.Create(out)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	start := time.Now()
	g := opts.Generator
	err := g.WriteJSONLines(w, func(done int64) {
		fmt.Fprintf(os.Stderr, "eventgen: %d/%d events (%.0f/s)\n", done, g.Events, float64(done)/time.Since(start).Seconds())
	})
	if err != nil {
		return err
	}
	e := g.Expected()
	fmt.Fprintf(os.Stderr, "eventgen: wrote %d events in %s: valid=%d duplicates=%d malformed=%d late=%d too_late=%d\n",
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
