package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/campaignpulse/campaignpulse/pipelines"
)

// TestFailedReplayKeepsTheFile: a replay that fails (here, a warehouse that
// does not exist) leaves the file of an earlier replay as it was. It used to
// be emptied first, and the next step of the recipe then ran an empty file
// and reported "reconcile: in=0 … ok".
func TestFailedReplayKeepsTheFile(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "replay.jsonl")
	const earlier = `{"event_id":"e1"}` + "\n"
	if err := os.WriteFile(out, []byte(earlier), 0o644); err != nil {
		t.Fatal(err)
	}
	f := pipelines.ReplayFilter{Codes: []string{"ENRICH_UNAVAILABLE"}}
	_, err := replayToFile(context.Background(), filepath.Join(dir, "missing.duckdb"), f, out)
	if err == nil || !strings.HasPrefix(err.Error(), "replay:") {
		t.Fatalf("a replay from a missing warehouse: got %v, want a replay: error", err)
	}
	if b, err := os.ReadFile(out); err != nil || string(b) != earlier {
		t.Errorf("after the failed replay %s holds %q (%v); want the earlier replay's %q", out, b, err, earlier)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*.tmp")); len(left) != 0 {
		t.Errorf("the failed replay left %v", left)
	}
}
