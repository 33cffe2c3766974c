package enrichment

import (
	"strconv"
	"time"

	"cloud.google.com/go/bigtable"
	"github.com/campaignpulse/campaignpulse/transforms"
)

// User is a user profile row. Times are unix milliseconds.
type User struct {
	ID            string
	Segment       string
	Country       string
	LifetimeValue float64
	FirstSeen     int64
}

// Campaign is a campaign row. Times are unix milliseconds.
type Campaign struct {
	ID          string
	Name        string
	Objective   string
	Channel     string
	Advertiser  string
	DailyBudget float64
	Start, End  int64
}

func fmtFloat(f float64) []byte { return strconv.AppendFloat(nil, f, 'f', -1, 64) }

func fmtTime(ms int64) []byte {
	return time.UnixMilli(ms).UTC().AppendFormat(nil, time.RFC3339)
}

func parseTime(b []byte) int64 {
	t, err := time.Parse(time.RFC3339, string(b))
	if err != nil {
		return 0
	}
	return t.UnixMilli()
}

func parseFloat(b []byte) float64 {
	f, _ := strconv.ParseFloat(string(b), 64)
	return f
}

// Mutation is the write of the profile: every column of UserFamily.
func (u *User) Mutation(ts bigtable.Timestamp) *bigtable.Mutation {
	m := bigtable.NewMutation()
	m.Set(UserFamily, ColSegment, ts, []byte(u.Segment))
	m.Set(UserFamily, ColCountry, ts, []byte(u.Country))
	m.Set(UserFamily, ColLTV, ts, fmtFloat(u.LifetimeValue))
	m.Set(UserFamily, ColFirstSeen, ts, fmtTime(u.FirstSeen))
	return m
}

// Mutation is the write of the campaign: every column of CampaignFamily.
func (c *Campaign) Mutation(ts bigtable.Timestamp) *bigtable.Mutation {
	m := bigtable.NewMutation()
	m.Set(CampaignFamily, ColName, ts, []byte(c.Name))
	m.Set(CampaignFamily, ColObjective, ts, []byte(c.Objective))
	m.Set(CampaignFamily, ColChannel, ts, []byte(c.Channel))
	m.Set(CampaignFamily, ColAdvertiser, ts, []byte(c.Advertiser))
	m.Set(CampaignFamily, ColDailyBudget, ts, fmtFloat(c.DailyBudget))
	m.Set(CampaignFamily, ColStart, ts, fmtTime(c.Start))
	m.Set(CampaignFamily, ColEnd, ts, fmtTime(c.End))
	return m
}

// column returns the newest value of family:col in r (cells come newest
// first), or nil.
func column(r bigtable.Row, family, col string) []byte {
	want := family + ":" + col
	for _, it := range r[family] {
		if it.Column == want {
			return it.Value
		}
	}
	return nil
}

// userFromRow decodes a row of UsersTable. A column that is missing or does
// not parse reads as empty or zero: a half-written profile enriches what it
// can rather than failing the event.
func userFromRow(r bigtable.Row) User {
	return User{
		ID:            IDOfRowKey(r.Key()),
		Segment:       string(column(r, UserFamily, ColSegment)),
		Country:       string(column(r, UserFamily, ColCountry)),
		LifetimeValue: parseFloat(column(r, UserFamily, ColLTV)),
		FirstSeen:     parseTime(column(r, UserFamily, ColFirstSeen)),
	}
}

// campaignFromRow decodes a row of CampaignsTable, like userFromRow.
func campaignFromRow(r bigtable.Row) Campaign {
	return Campaign{
		ID:          IDOfRowKey(r.Key()),
		Name:        string(column(r, CampaignFamily, ColName)),
		Objective:   string(column(r, CampaignFamily, ColObjective)),
		Channel:     string(column(r, CampaignFamily, ColChannel)),
		Advertiser:  string(column(r, CampaignFamily, ColAdvertiser)),
		DailyBudget: parseFloat(column(r, CampaignFamily, ColDailyBudget)),
		Start:       parseTime(column(r, CampaignFamily, ColStart)),
		End:         parseTime(column(r, CampaignFamily, ColEnd)),
	}
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
