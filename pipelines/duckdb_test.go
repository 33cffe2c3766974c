package pipelines

import (
	"testing"
	"time"
)

// TestAppendTimestamp checks the hand-written formatter against the standard
// library's for dates across years, zones and sub-second precision.
func TestAppendTimestamp(t *testing.T) {
	zone := time.FixedZone("UTC+5:30", 5*3600+1800)
	for _, ts := range []time.Time{
		time.Date(2026, 11, 23, 9, 5, 7, 123456789, time.UTC),
		time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(1999, 12, 31, 23, 59, 59, 999999000, time.UTC),
		time.Date(2026, 3, 1, 2, 3, 4, 5000, zone),
		time.UnixMilli(1795426124266),
	} {
		got := string(appendTimestamp(nil, ts))
		want := ts.UTC().Format("2006-01-02 15:04:05.000000")
		if got != want {
			t.Errorf("appendTimestamp(%v) = %q, want %q", ts, got, want)
		}
	}
}

// TestAppendCSVRowQuoting checks the CSV the sink stages: quotes doubled,
// nulls as \N, empty strings quoted, bytes as \xHH escapes.
func TestAppendCSVRowQuoting(t *testing.T) {
	got := string(appendCSVRow(nil, []any{`a"b`, "", nil, int64(-3), 1.5, true, []byte{0, 'A', 0xff}}))
	want := `"a""b","",\N,-3,1.5,true,"\x00\x41\xFF"` + "\n"
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}
