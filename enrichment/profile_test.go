package enrichment

import (
	"testing"
	"time"

	"cloud.google.com/go/bigtable"
)

// TestProfileTimesBigQueryCanStore: a profile's first-seen time, or a
// campaign's start and end, outside BigQuery's TIMESTAMP range (years 1 to
// 9999 in UTC) reads as no time, so the event's row is not refused over it;
// one inside is kept to the millisecond.
func TestProfileTimesBigQueryCanStore(t *testing.T) {
	user := func(firstSeen string) User {
		return userFromRow(bigtable.Row{UserFamily: {{Row: "u", Column: UserFamily + ":" + UserColumn,
			Value: []byte(`{"segment":"s","first_seen":"` + firstSeen + `"}`)}}})
	}
	campaign := func(start string) Campaign {
		return campaignFromRow(bigtable.Row{CampaignFamily: {{Row: "c", Column: CampaignFamily + ":" + CampaignColumn,
			Value: []byte(`{"name":"n","start":"` + start + `"}`)}}})
	}
	for _, c := range []struct {
		in   string
		want int64
	}{
		{"2026-03-01T12:00:00Z", time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixMilli()},
		{"0001-01-01T00:00:00Z", time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()},
		{"9999-12-31T23:59:59Z", time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC).UnixMilli()},
		{"0000-06-01T00:00:00Z", 0},
		{"0001-01-01T00:30:00+01:00", 0}, // 0000-12-31 in UTC
		{"not a time", 0},
	} {
		if u := user(c.in); u.FirstSeen != c.want || u.Segment != "s" {
			t.Errorf("first_seen %q: %d (segment %q), want %d", c.in, u.FirstSeen, u.Segment, c.want)
		}
		if k := campaign(c.in); k.Start != c.want || k.Name != "n" {
			t.Errorf("start %q: %d (name %q), want %d", c.in, k.Start, k.Name, c.want)
		}
	}
}

// TestADamagedProfileCellReadsAsEmpty: a cell that does not decode leaves
// every attribute empty and the user or campaign found, whatever the decoder
// had filled before it failed; a decoder that panics does the same rather
// than taking the worker down.
func TestADamagedProfileCellReadsAsEmpty(t *testing.T) {
	for _, v := range []string{
		`{"segment":"s","country":"DE","lifetime_value":"high"}`, // a wrong type after good fields
		`{"segment":"s","country":"DE"`,                          // cut short
		`not json`,
	} {
		u := userFromRow(bigtable.Row{UserFamily: {{Row: "u", Column: UserFamily + ":" + UserColumn, Value: []byte(v)}}})
		if u != (User{ID: u.ID}) {
			t.Errorf("user cell %s: %+v, want no attributes", v, u)
		}
	}
	for _, v := range []string{
		`{"name":"n","channel":"search","daily_budget":"high"}`,
		`{"name":"n","channel":"search"`,
	} {
		c := campaignFromRow(bigtable.Row{CampaignFamily: {{Row: "c", Column: CampaignFamily + ":" + CampaignColumn, Value: []byte(v)}}})
		if c != (Campaign{ID: c.ID}) {
			t.Errorf("campaign cell %s: %+v, want no attributes", v, c)
		}
	}
	if got := decodeCell[panicky]([]byte(`{"a":1}`)); got != (panicky{}) {
		t.Errorf("a panicking decode: %+v, want the zero value", got)
	}
}

// panicky is a cell type whose decoding panics after filling a field.
type panicky struct{ A int }

func (p *panicky) UnmarshalJSON([]byte) error {
	p.A = 1
	panic("decoder bug")
}
