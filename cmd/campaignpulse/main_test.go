package main

import (
	"flag"
	"testing"

	"github.com/campaignpulse/campaignpulse/pipelines"
)

// TestResetByDefault: a bounded run empties the warehouse unless told not
// to; a Pub/Sub run appends unless told to reset, so restarting a killed
// streaming job keeps the rows of the messages it had acknowledged.
func TestResetByDefault(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{nil, true},
		{[]string{"--source=file", "--input=x"}, true},
		{[]string{"--reset=false"}, false},
		{[]string{"--source=pubsub"}, false},
		{[]string{"--source=pubsub", "--reset"}, true},
		{[]string{"--source=pubsub", "--reset=false"}, false},
	} {
		fs := flag.NewFlagSet("campaignpulse", flag.ContinueOnError)
		o := pipelines.RegisterFlags(fs)
		reset := fs.Bool("reset", true, "")
		if err := fs.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		if got := resetByDefault(fs, o, *reset); got != tc.want {
			t.Errorf("%q: reset %v, want %v", tc.args, got, tc.want)
		}
	}
}

// TestSeedNote: a generated run that appends without a seed of its own is
// told it writes the ids of an earlier run with the default seed; a reset
// run, one with --seed, and a file or Pub/Sub run are not.
func TestSeedNote(t *testing.T) {
	for _, tc := range []struct {
		args      []string
		streaming bool
		want      bool
	}{
		{nil, false, false},
		{[]string{"--reset=false"}, false, true},
		{[]string{"--reset=false", "--seed=7"}, false, false},
		{[]string{"--reset=false"}, true, true},
		{[]string{"--reset=false", "--seed=7"}, true, false},
		{[]string{"--source=file", "--input=x", "--reset=false"}, false, false},
		{[]string{"--source=pubsub"}, false, false},
	} {
		fs := flag.NewFlagSet("campaignpulse", flag.ContinueOnError)
		o := pipelines.RegisterFlags(fs)
		reset := fs.Bool("reset", true, "")
		if err := fs.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		if got := seedNote(fs, o, resetByDefault(fs, o, *reset), tc.streaming) != ""; got != tc.want {
			t.Errorf("%q (streaming %v): note %v, want %v", tc.args, tc.streaming, got, tc.want)
		}
	}
}
