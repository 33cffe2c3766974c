// Command eventgen writes generated marketing events as JSON lines, the input
// of --source=file and of make bench. The flags are the pipeline's generator
// flags, so the same flags give the same events:
//
//	go run ./cmd/eventgen --events=1000000 --out=/tmp/events.jsonl
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/campaignpulse/campaignpulse/pipelines"
)

func main() {
	opts := pipelines.RegisterFlags(flag.CommandLine)
	out := flag.String("out", "-", "file to write, - for standard output")
	flag.Parse()
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
