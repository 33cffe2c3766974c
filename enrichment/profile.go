package enrichment

import (
	"time"

	"cloud.google.com/go/bigtable"
	"github.com/campaignpulse/campaignpulse/transforms"
	json "github.com/goccy/go-json"
)

// User is a user profile. Times are unix milliseconds.
type User struct {
	ID            string
	Segment       string
	Country       string
	LifetimeValue float64
	FirstSeen     int64
}

// Campaign is a campaign. Times are unix milliseconds.
type Campaign struct {
	ID          string
	Name        string
	Objective   string
	Channel     string
	Advertiser  string
	DailyBudget float64
	Start, End  int64
}

// userCell is the JSON object in p:profile. Times are RFC 3339, so a row
// reads plainly with cbt. The id is the row key's, not repeated here.
type userCell struct {
	Segment       string  `json:"segment"`
	Country       string  `json:"country"`
	LifetimeValue float64 `json:"lifetime_value"`
	FirstSeen     string  `json:"first_seen,omitempty"`
}

// campaignCell is the JSON object in c:campaign.
type campaignCell struct {
	Name        string  `json:"name"`
	Objective   string  `json:"objective"`
	Channel     string  `json:"channel"`
	Advertiser  string  `json:"advertiser"`
	DailyBudget float64 `json:"daily_budget"`
	Start       string  `json:"start,omitempty"`
	End         string  `json:"end,omitempty"`
}

func fmtTime(ms int64) string {
	if ms == 0 {
		return ""
	}
	return time.UnixMilli(ms).UTC().Format(time.RFC3339)
}

// parseTime reads a cell's RFC 3339 time; 0 (no time) when it does not
// parse or falls outside years 1 to 9999 in UTC. time.Parse takes year 0000,
// and BigQuery's TIMESTAMP refuses it: the event's row would become a
// SINK_REJECTED dead letter over one bad attribute.
func parseTime(s string) int64 {
	t, err := time.Parse(time.RFC3339, s)
	if y := t.UTC().Year(); err != nil || y < 1 || y > 9999 {
		return 0
	}
	return t.UnixMilli()
}

// Mutation is the write of the profile: the one cell of UserFamily.
func (u *User) Mutation(ts bigtable.Timestamp) *bigtable.Mutation {
	v, _ := json.Marshal(userCell{Segment: u.Segment, Country: u.Country, LifetimeValue: u.LifetimeValue, FirstSeen: fmtTime(u.FirstSeen)})
	m := bigtable.NewMutation()
	m.Set(UserFamily, UserColumn, ts, v)
	return m
}

// Mutation is the write of the campaign: the one cell of CampaignFamily.
func (c *Campaign) Mutation(ts bigtable.Timestamp) *bigtable.Mutation {
	v, _ := json.Marshal(campaignCell{Name: c.Name, Objective: c.Objective, Channel: c.Channel, Advertiser: c.Advertiser,
		DailyBudget: c.DailyBudget, Start: fmtTime(c.Start), End: fmtTime(c.End)})
	m := bigtable.NewMutation()
	m.Set(CampaignFamily, CampaignColumn, ts, v)
	return m
}

// cell returns the newest value of family:col in r (a column's cells come
// newest first), or nil.
func cell(r bigtable.Row, family, col string) []byte {
	want := family + ":" + col
	for _, it := range r[family] {
		if it.Column == want {
			return it.Value
		}
	}
	return nil
}

// decodeCell decodes a profile cell's JSON, or returns the zero value if it
// does not decode: a decoder may have filled some fields before it failed,
// and a damaged cell's attributes are empty, not half read. A decoder panic
// counts as a cell that does not decode: the rows are decoded on the
// lookup's own goroutines, where a panic would take the worker down.
func decodeCell[T any](data []byte) (c T) {
	defer func() { _ = recover() }() // c is still zero: the decoder fills v
	var v T
	if json.Unmarshal(data, &v) == nil {
		c = v
	}
	return c
}

// userFromRow decodes a row of UsersTable. A cell that is missing or does
// not decode leaves the attributes empty (the user is still found): a
// damaged profile enriches what it can rather than failing the event.
func userFromRow(r bigtable.Row) User {
	c := decodeCell[userCell](cell(r, UserFamily, UserColumn))
	return User{ID: IDOfRowKey(r.Key()), Segment: c.Segment, Country: c.Country, LifetimeValue: c.LifetimeValue, FirstSeen: parseTime(c.FirstSeen)}
}

// campaignFromRow decodes a row of CampaignsTable, like userFromRow.
func campaignFromRow(r bigtable.Row) Campaign {
	c := decodeCell[campaignCell](cell(r, CampaignFamily, CampaignColumn))
	return Campaign{ID: IDOfRowKey(r.Key()), Name: c.Name, Objective: c.Objective, Channel: c.Channel, Advertiser: c.Advertiser,
		DailyBudget: c.DailyBudget, Start: parseTime(c.Start), End: parseTime(c.End)}
}

// setUser fills the user half of an event's enrichment; u nil means the user
// is not in Bigtable.
func setUser(x *transforms.Enrichment, u *User) {
	if u == nil {
		x.UserFound, x.UserSegment, x.UserCountry = false, transforms.Unknown, transforms.Unknown
		x.UserLifetimeValue, x.UserFirstSeen = 0, 0
		return
	}
	x.UserFound, x.UserSegment, x.UserCountry = true, u.Segment, u.Country
	x.UserLifetimeValue, x.UserFirstSeen = u.LifetimeValue, u.FirstSeen
}

// setCampaign fills the campaign half; c nil means not in Bigtable.
func setCampaign(x *transforms.Enrichment, c *Campaign) {
	if c == nil {
		x.CampaignFound = false
		x.CampaignName, x.CampaignObjective, x.CampaignChannel, x.Advertiser = transforms.Unknown, transforms.Unknown, transforms.Unknown, transforms.Unknown
		x.CampaignDailyBudget, x.CampaignStart, x.CampaignEnd = 0, 0, 0
		return
	}
	x.CampaignFound = true
	x.CampaignName, x.CampaignObjective, x.CampaignChannel, x.Advertiser = c.Name, c.Objective, c.Channel, c.Advertiser
	x.CampaignDailyBudget, x.CampaignStart, x.CampaignEnd = c.DailyBudget, c.Start, c.End
}
