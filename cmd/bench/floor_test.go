package main

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/campaignpulse/campaignpulse/pipelines"
)

// TestWarehouseFloorCopiesEveryRow runs the floor, compressed and not, on a
// warehouse holding 20,000 event rows: it must read and copy every one of
// them, spend CPU on it, store the uncompressed copy uncompressed, and leave
// neither a file nor the setting behind.
func TestWarehouseFloorCopiesEveryRow(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "w.duckdb")
	w, err := pipelines.OpenWarehouse(path)
	if err != nil {
		t.Fatal(err)
	}
	const n = 20000
	_, err = w.DB().Exec(`INSERT INTO fact_marketing_events BY NAME
		SELECT 'e' || i AS event_id, 'view' AS event_type, TIMESTAMP '2026-03-01 12:00:00' + to_seconds(i) AS event_timestamp,
			TIMESTAMP '2026-03-01 12:00:00' AS ingest_timestamp, TIMESTAMP '2026-03-01 12:00:00' AS window_start,
			'u' || (i % 97) AS user_id, 'c' || (i % 7) AS campaign_id, 'meta' AS platform, '1.0' AS schema_version,
			false AS is_late, false AS is_too_late, 'file' AS source, now() AS processed_at, 'disabled' AS enrichment_status
		FROM range(?) r(i)`, n)
	if err != nil {
		w.Release()
		t.Fatal(err)
	}

	r, err := warehouseFloor(ctx, path, processCPUSeconds)
	if err != nil {
		t.Fatal(err)
	}
	if r.rows != n {
		t.Errorf("read %d rows, want %d", r.rows, n)
	}
	for _, c := range []struct {
		name string
		floorCopy
	}{{"compressed", r.compressed}, {"uncompressed", r.uncompressed}} {
		if c.copied != n {
			t.Errorf("%s: copied %d rows, want %d", c.name, c.copied, n)
		}
		if c.ioCPU <= 0 || c.writeCPUSeconds != math.Max(c.ioCPU-r.scanCPU, 0) {
			t.Errorf("%s: copy %.4f CPU-s, scan %.4f, floor %.4f: the copy took no CPU or the floor is not the copy less the scan",
				c.name, c.ioCPU, r.scanCPU, c.writeCPUSeconds)
		}
	}
	if r.compressed.fileBytes <= 0 || r.uncompressed.fileBytes <= 2*r.compressed.fileBytes {
		t.Errorf("the copy took %d bytes compressed and %d uncompressed: the setting did not take", r.compressed.fileBytes, r.uncompressed.fileBytes)
	}
	// The warehouse stayed open throughout, as Prism leaves it after a run:
	// the uncompressed floor must not leave its setting to the next run.
	var setting string
	if err := w.DB().QueryRow("SELECT current_setting('force_compression')").Scan(&setting); err != nil || setting == "uncompressed" {
		t.Errorf("force_compression is %q after the floor (%v)", setting, err)
	}
	if err := w.Release(); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != "w.duckdb" && e.Name() != "w.duckdb.wal" {
			t.Errorf("left %s behind", e.Name())
		}
	}
	// The warehouse is unchanged and still opens.
	w, err = pipelines.OpenWarehouse(path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Release()
	var got int64
	if err := w.DB().QueryRow("SELECT count(*) FROM fact_marketing_events").Scan(&got); err != nil || got != n {
		t.Errorf("the warehouse holds %d rows after the floor (%v), want %d", got, err, n)
	}
}

// TestCeilingRate: two cores, a million events, 4 CPU-s of reference work
// and 6 of DuckDB's: 10 CPU-s on two cores is 5 s, 200,000 events a second.
func TestCeilingRate(t *testing.T) {
	if got := ceilingRate(1_000_000, 2, 4, 6); got != 200_000 {
		t.Errorf("ceilingRate = %v, want 200000", got)
	}
}
