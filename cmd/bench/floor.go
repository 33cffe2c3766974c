package main

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strings"

	"github.com/campaignpulse/campaignpulse/pipelines"
	"github.com/campaignpulse/campaignpulse/transforms"
)

// floorResult is what warehouseFloor measured: the rows of the event table,
// the CPU seconds of reading them all, and the two copies of them.
type floorResult struct {
	rows    int64
	scanCPU float64
	// compressed is the copy as the warehouse stores rows; uncompressed,
	// without compression, DuckDB's cheapest way to store them (and a file
	// five times the size).
	compressed, uncompressed floorCopy
}

// floorCopy is one copy of the rows into a new file.
type floorCopy struct {
	copied          int64
	fileBytes       int64   // the copy's file after its checkpoint
	ioCPU           float64 // the copy and its checkpoint, the read included
	writeCPUSeconds float64 // ioCPU less the scan's CPU
}

// warehouseFloor measures the least CPU DuckDB spends to store the rows a
// run left in fact_marketing_events: it copies them with one INSERT …
// SELECT into the same table, constraints and settings in a new file beside
// the warehouse, and checkpoints that file; once as the warehouse stores
// rows, once uncompressed. Rows from DuckDB's own storage need no parsing or
// conversion (session 6 measured an Arrow batch no cheaper than CSV), and
// the pipeline must store every valid event, so this cost is part of any
// run's, on top of the work the reference loop does. A full scan of the
// rows (every column hashed) is timed apart and taken off each copy, which
// makes the floor lower than the write alone costs: a ceiling derived from
// it is generous to the pipeline. cpu reads the process's CPU seconds;
// DuckDB's threads run in it.
func warehouseFloor(ctx context.Context, path string, cpu func() float64) (floorResult, error) {
	var r floorResult
	table, ok := transforms.TableByName(transforms.TableEvents)
	if !ok {
		return r, fmt.Errorf("no %s table", transforms.TableEvents)
	}
	w, err := pipelines.OpenWarehouse(path)
	if err != nil {
		return r, err
	}
	defer w.Release()
	// One connection: ATTACH and the statements after it must see the same
	// session.
	conn, err := w.DB().Conn(ctx)
	if err != nil {
		return r, err
	}
	defer conn.Close()

	var hash uint64 // unused: hashing every column makes the scan read them all
	c0 := cpu()
	if err := conn.QueryRowContext(ctx, "SELECT count(*), coalesce(bit_xor(hash(e)), 0) FROM "+table.Name+" e").Scan(&r.rows, &hash); err != nil {
		return r, fmt.Errorf("scan %s: %w", table.Name, err)
	}
	r.scanCPU = cpu() - c0

	for _, c := range []struct {
		uncompressed bool
		into         *floorCopy
	}{{false, &r.compressed}, {true, &r.uncompressed}} {
		if *c.into, err = copyEvents(ctx, conn, table, path+".floor", c.uncompressed, cpu); err != nil {
			return r, err
		}
		if c.into.copied != r.rows {
			return r, fmt.Errorf("floor: copied %d of %d rows", c.into.copied, r.rows)
		}
		c.into.writeCPUSeconds = max(c.into.ioCPU-r.scanCPU, 0)
	}
	return r, nil
}

// copyEvents copies the rows of table into a new DuckDB file at dst,
// attached to conn, checkpoints it, and removes it again.
func copyEvents(ctx context.Context, conn *sql.Conn, table transforms.Table, dst string, uncompressed bool, cpu func() float64) (floorCopy, error) {
	var c floorCopy
	removeDst := func() {
		os.Remove(dst)
		os.Remove(dst + ".wal")
	}
	removeDst()
	defer removeDst()
	ddl := strings.Replace(pipelines.DuckDBDDL(table), " "+table.Name+" (", " floor."+table.Name+" (", 1)
	for _, stmt := range []string{"ATTACH '" + strings.ReplaceAll(dst, "'", "''") + "' AS floor", ddl} {
		if _, err := conn.ExecContext(ctx, stmt); err != nil {
			return c, fmt.Errorf("floor: %s: %w", stmt, err)
		}
	}
	defer conn.ExecContext(ctx, "DETACH floor")
	if uncompressed {
		if _, err := conn.ExecContext(ctx, "SET force_compression = 'uncompressed'"); err != nil {
			return c, err
		}
		// A global setting: the pipeline's next run must not inherit it.
		defer conn.ExecContext(ctx, "RESET force_compression")
	}
	c0 := cpu()
	res, err := conn.ExecContext(ctx, "INSERT INTO floor."+table.Name+" SELECT * FROM "+table.Name)
	if err != nil {
		return c, fmt.Errorf("floor: copy %s: %w", table.Name, err)
	}
	if c.copied, err = res.RowsAffected(); err != nil {
		return c, err
	}
	if _, err := conn.ExecContext(ctx, "CHECKPOINT floor"); err != nil {
		return c, fmt.Errorf("floor: checkpoint: %w", err)
	}
	c.ioCPU = cpu() - c0
	if st, err := os.Stat(dst); err == nil {
		c.fileBytes = st.Size()
	}
	return c, nil
}

// ceilingRate is the most events a second a pipeline could take on cores
// cores if it spent nothing but the reference loop's CPU on each of n events
// (refCPU seconds for all of them) and DuckDB's floor for storing them
// (floorCPU seconds), both spread evenly over every core.
func ceilingRate(n int64, cores int, refCPU, floorCPU float64) float64 {
	return float64(cores) * float64(n) / (refCPU + floorCPU)
}
