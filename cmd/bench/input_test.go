package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/campaignpulse/campaignpulse/pipelines/generator"
)

// TestWriteInputIsFreshEveryRun: the bench reused any file of the input's
// name (the count and the seed), so a file written a day earlier, whose
// future-timestamp events the wall clock had since made valid, or one of
// other generator flags, was measured as if it were this run's input. The
// input must be this run's events, whatever lies in the directory, and
// leave no temporary file behind.
func TestWriteInputIsFreshEveryRun(t *testing.T) {
	dir := t.TempDir()
	g := generator.Default()
	g.Events = 3000
	want := func(g generator.Config) []byte {
		var b bytes.Buffer
		if err := g.WriteJSONLines(&b, nil); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}

	// An earlier run's file: the same count and seed, two days older, and
	// another duplicate rate.
	old := g
	old.Start = g.Start.Add(-48 * time.Hour)
	old.DuplicateRate = 0.2
	path, _, err := writeInput(dir, old)
	if err != nil {
		t.Fatal(err)
	}

	// and the temporary file of a bench killed while writing
	if err := os.WriteFile(path+".12345.tmp", []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}

	got, size, err := writeInput(dir, g)
	if err != nil {
		t.Fatal(err)
	}
	if got != path {
		t.Fatalf("input %s, the earlier run's %s: the test no longer checks reuse", got, path)
	}
	b, err := os.ReadFile(got)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, want(g)) {
		t.Errorf("the input is not this run's events (%d bytes; this run's are %d, the earlier run's %d)", len(b), len(want(g)), len(want(old)))
	}
	if size != int64(len(b)) {
		t.Errorf("size %d, the file has %d bytes", size, len(b))
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != filepath.Base(got) {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("the directory holds %v, want only %s", names, filepath.Base(got))
	}
}
