package main

import (
	"flag"
	"strings"
	"testing"

	"github.com/campaignpulse/campaignpulse/pipelines"
)

// TestPublishChecksTheGeneratorFlags: publishing refuses the generator flags
// a file run refuses, before it connects to Pub/Sub. It published 200
// messages with --malformed_rate=2 (195 of them malformed) and exited 0.
func TestPublishChecksTheGeneratorFlags(t *testing.T) {
	// Nothing listens here: an unchecked publish would fail only on
	// trying to reach it, with another error.
	t.Setenv("PUBSUB_EMULATOR_HOST", "127.0.0.1:1")
	for _, c := range []struct{ arg, want string }{
		{"--malformed_rate=2", "--malformed_rate must be between 0 and 1, got 2"},
		{"--start=garbage", "--start: "},
	} {
		fs := flag.NewFlagSet("eventgen", flag.ContinueOnError)
		opts := pipelines.RegisterFlags(fs)
		if err := fs.Parse([]string{"--pubsub_project=p", c.arg}); err != nil {
			t.Fatal(err)
		}
		if err := publish(opts, "campaign-pulse-test-", 0, false); err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("publish with %s: got %v, want %q", c.arg, err, c.want)
		}
	}
}
