package main

import (
	"bytes"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strconv"
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

// TestDurationIsForPublishing: --duration with a file was ignored without a
// word (the file held --events events), and --out with --topic_prefix too.
func TestDurationIsForPublishing(t *testing.T) {
	t.Setenv("PUBSUB_EMULATOR_HOST", "127.0.0.1:1") // nothing listens: never a real topic
	out := filepath.Join(t.TempDir(), "events.jsonl")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--events=100", "--duration=10s", "--out=" + out}, "--duration is for publishing"},
		{[]string{"--events=100", "--duration=10s"}, "--duration is for publishing"},
		// No --pubsub_project: without the check, publish fails at once
		// with another error rather than trying to publish.
		{[]string{"--topic_prefix=t-", "--out=" + out}, "--out is for writing a file"},
	} {
		fs := flag.NewFlagSet("eventgen", flag.ContinueOnError)
		var stdout bytes.Buffer
		err := runArgs(fs, c.args, &stdout, io.Discard)
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%v: got %v, want %q", c.args, err, c.want)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("%v: wrote %s", c.args, out)
			os.Remove(out)
		}
		if stdout.Len() > 0 {
			t.Errorf("%v: wrote %d bytes of events to stdout", c.args, stdout.Len())
		}
	}
}

// TestFileCountsAreWhatAFileRunSees writes a file and reads it with the
// reference loop (the pipeline's counts, as make bench checks them): the
// counts eventgen prints for the file must be the run's. It printed the
// generator's late and too-late counts, but a file has no arrival times, so
// a run over it has no late event (of these 5,000, eventgen printed late=152
// too_late=22; the reference counts too_late=0).
func TestFileCountsAreWhatAFileRunSees(t *testing.T) {
	out := filepath.Join(t.TempDir(), "events.jsonl")
	var stderr bytes.Buffer
	fs := flag.NewFlagSet("eventgen", flag.ContinueOnError)
	if err := runArgs(fs, []string{"--events=5000", "--out=" + out}, io.Discard, &stderr); err != nil {
		t.Fatal(err)
	}
	var line string
	for _, l := range strings.Split(stderr.String(), "\n") {
		if strings.HasPrefix(l, "eventgen: wrote ") {
			line = l
		}
	}
	if line == "" {
		t.Fatalf("no summary in %q", stderr.String())
	}
	// The counts the line gives for the file: key=value before any aside.
	got := map[string]int64{}
	head, _, _ := strings.Cut(line, "(")
	for _, f := range strings.Fields(head) {
		if k, v, ok := strings.Cut(f, "="); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatalf("%s in %q", f, line)
			}
			got[k] = n
		}
	}

	opts := pipelines.RegisterFlags(flag.NewFlagSet("ref", flag.ContinueOnError))
	ref, err := pipelines.Reference(out, opts, 2)
	if err != nil {
		t.Fatal(err)
	}
	if ref.In != 5000 {
		t.Fatalf("reference: %+v", ref)
	}
	for k, want := range map[string]int64{"valid": ref.Valid, "duplicates": ref.Duplicates, "malformed": ref.DeadLetters, "too_late": ref.TooLate, "late": 0} {
		if v, ok := got[k]; !ok || v != want {
			t.Errorf("%s: eventgen printed %d (present %v), a run over the file counts %d\n%s", k, v, ok, want, line)
		}
	}
}
