package enrichment_test

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/campaignpulse/campaignpulse/enrichment"
)

// TestCheckTables: a seeded Bigtable passes; one without the tables, or
// without credentials, stops the run with a message; one that does not
// answer is reported and let through to Enrich's outage handling.
func TestCheckTables(t *testing.T) {
	ctx := context.Background()
	cfg, stop := startSeeded(t, smallGen())
	var progress bytes.Buffer
	if err := enrichment.CheckTables(ctx, cfg, &progress); err != nil || progress.Len() > 0 {
		t.Errorf("seeded: %v, progress %q", err, progress.String())
	}

	empty, err := enrichment.StartInProcess()
	if err != nil {
		t.Fatal(err)
	}
	defer empty.Close()
	emptyCfg := cfg
	emptyCfg.Endpoint = empty.Addr
	if err := enrichment.CheckTables(ctx, emptyCfg, nil); err == nil || !strings.Contains(err.Error(), "table user_profiles does not exist") {
		t.Errorf("no tables: got %v", err)
	}

	// The server gone: not a mistake in the flags, so the run may start.
	stop()
	short, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := enrichment.CheckTables(short, cfg, &progress); err != nil || !strings.Contains(progress.String(), "did not answer") {
		t.Errorf("server gone: %v, progress %q", err, progress.String())
	}

	// The real service, with credentials that are not there.
	t.Setenv("BIGTABLE_EMULATOR_HOST", "")
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", filepath.Join(t.TempDir(), "missing.json"))
	prod := enrichment.Config{Project: "p", Instance: "i"}
	if err := enrichment.CheckTables(ctx, prod, nil); err == nil || !strings.Contains(err.Error(), "gcloud auth application-default login") {
		t.Errorf("no credentials: got %v", err)
	}
}
