package enrichment

import (
	"context"
	"fmt"
	"io"
	"math"
	"time"

	"cloud.google.com/go/bigtable"
	"github.com/campaignpulse/campaignpulse/pipelines/generator"
	"github.com/campaignpulse/campaignpulse/transforms"
	"golang.org/x/sync/errgroup"
)

// DefaultUnsyncedShare is the share of users Seed leaves out. The generator
// numbers users in signup order (usr_000000 is the oldest), so the newest
// users are the highest numbers; a profile store fed by a nightly CRM export
// lags by exactly those. Leaving out the newest 1% makes "unknown user" an
// ordinary, visible case of every local run. (The generator's traffic is
// skewed to low numbers, so well under 1% of events carry such a user.)
const DefaultUnsyncedShare = 0.01

// SeedOptions tune Seed.
type SeedOptions struct {
	// UnsyncedShare of the newest users is not written (see DefaultUnsyncedShare).
	UnsyncedShare float64
	// Progress, if not nil, gets a line every ProgressEvery rows and at the end.
	Progress      io.Writer
	ProgressEvery int
	// WithoutGCRules creates the families without their GC rules. Only for
	// the in-process bttest of a local run: it runs a GC pass over every row
	// of every table with a rule about once a second, in the pipeline's own
	// process (1.5 s of CPU in a 25 s, 1M-event run), and has nothing to
	// collect: the store lives for one run and Seed writes one version of
	// each cell. Bigtable and its emulators collect outside the pipeline.
	WithoutGCRules bool
}

// SeedCounts is what Seed wrote.
type SeedCounts struct {
	Users, UnsyncedUsers, Campaigns int
}

// SeededUsers is how many of the generator's users Seed writes: users
// 0…SeededUsers−1; the rest are the unsynced newest.
func SeededUsers(gen generator.Config, unsyncedShare float64) int {
	return gen.Users - int(math.Round(float64(gen.Users)*unsyncedShare))
}

// Seed creates the layout (EnsureLayout) and writes a profile for every
// user and campaign the generator config can name, except the unsynced
// newest users. Attributes are a function of the seed and the id alone, so
// a rerun writes the same values into the same cells (see the timestamp
// below): Seed is idempotent.
func Seed(ctx context.Context, client *bigtable.Client, admin *bigtable.AdminClient, gen generator.Config, o SeedOptions) (SeedCounts, error) {
	if err := EnsureLayout(ctx, admin, !o.WithoutGCRules); err != nil {
		return SeedCounts{}, err
	}
	var n SeedCounts
	n.Users = SeededUsers(gen, o.UnsyncedShare)
	n.UnsyncedUsers = gen.Users - n.Users
	n.Campaigns = gen.Campaigns
	every := o.ProgressEvery
	if every <= 0 {
		every = 100_000
	}
	// Cells are stamped with the day: a rerun on the same day overwrites the
	// very same cells, a rerun on a later day adds a newer version that the
	// one-version GC rule drops.
	ts := bigtable.Time(time.Now().UTC().Truncate(24 * time.Hour))
	campaigns := client.Open(CampaignsTable)
	if err := writeRows(ctx, campaigns, n.Campaigns, func(i int) (string, *bigtable.Mutation) {
		c := SeedCampaign(gen.Seed, i)
		return RowKey(c.ID), c.Mutation(ts)
	}, nil); err != nil {
		return n, fmt.Errorf("seed %s: %w", CampaignsTable, err)
	}
	progress := func(done int) {
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, "seed: %s %d/%d\n", UsersTable, done, n.Users)
		}
	}
	users := client.Open(UsersTable)
	if err := writeRows(ctx, users, n.Users, func(i int) (string, *bigtable.Mutation) {
		u := SeedUser(gen.Seed, i, gen.Users)
		return RowKey(u.ID), u.Mutation(ts)
	}, func(done int) {
		if done/every > (done-seedChunk)/every || done == n.Users {
			progress(done)
		}
	}); err != nil {
		return n, fmt.Errorf("seed %s: %w", UsersTable, err)
	}
	if o.Progress != nil {
		fmt.Fprintf(o.Progress, "seed: wrote %d campaigns and %d users (the newest %d users left unsynced)\n", n.Campaigns, n.Users, n.UnsyncedUsers)
	}
	return n, nil
}

// seedChunk is how many rows one ApplyBulk writes.
const seedChunk = 5000

// writeRows writes rows 0…n−1 with ApplyBulk in chunks of seedChunk, a few
// at a time, calling progress (if not nil) with the rows queued so far.
func writeRows(ctx context.Context, t *bigtable.Table, n int, row func(i int) (string, *bigtable.Mutation), progress func(done int)) error {
	const chunk = seedChunk
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for lo := 0; lo < n; lo += chunk {
		hi := min(lo+chunk, n)
		keys := make([]string, 0, hi-lo)
		muts := make([]*bigtable.Mutation, 0, hi-lo)
		for i := lo; i < hi; i++ {
			k, m := row(i)
			keys, muts = append(keys, k), append(muts, m)
		}
		g.Go(func() error {
			errs, err := t.ApplyBulk(ctx, keys, muts)
			if err != nil {
				return err
			}
			for _, e := range errs {
				if e != nil {
					return e
				}
			}
			return nil
		})
		if progress != nil {
			progress(hi)
		}
	}
	return g.Wait()
}

// The value sets of the seeded attributes. The schema of the rows (and so of
// the marts) does not depend on them.
var (
	Segments   = []string{"new", "casual", "engaged", "loyal", "high_value", "lapsed"}
	Countries  = []string{"US", "US", "US", "GB", "DE", "FR", "BR", "IN", "CA", "JP", "AU", "ES", "IT", "MX", "NL"}
	Objectives = []string{"awareness", "traffic", "engagement", "conversions"}
	// Channels by the platform a campaign runs on first (see the generator:
	// campaign n runs on Platforms[n] and the next one).
	Channels = map[string]string{
		"google_ads": "search", "meta": "social", "tiktok": "social",
		"linkedin": "social", "x": "social", "youtube": "video",
	}
	Advertisers = []string{"Northwind Traders", "Contoso Outdoors", "Fabrikam Home", "Tailspin Travel",
		"Wide World Importers", "Adventure Works", "Proseware Health", "Litware Software",
		"Alpine Ski House", "Coho Winery", "Lucerne Publishing", "Margie's Travel"}
	campaignThemes = []string{"Spring Launch", "Summer Sale", "Back to School", "Black Friday",
		"Holiday Gifting", "New Year Reset", "Brand Lift", "Retargeting", "Always On", "App Installs"}
)

// seedEpoch anchors generated dates, so a rerun on another day writes the
// same values.
var seedEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func mix(seed uint64, kind uint64, i int) uint64 {
	x := seed*0x9e3779b97f4a7c15 ^ kind<<56 ^ uint64(i)*0xbf58476d1ce4e5b9
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

func unit(x uint64) float64 { return float64(x>>11) / (1 << 53) }

// SeedUser is the profile Seed writes for user i of users: deterministic in
// (seed, i). Users are numbered in signup order, so first_seen grows with i
// over the three years before seedEpoch; the segment and lifetime value
// follow tenure (old users skew loyal and valuable).
func SeedUser(seed uint64, i, users int) User {
	tenure := 1 - float64(i)/float64(max(users, 1)) // 1 = oldest
	first := seedEpoch.Add(-time.Duration(tenure*3*365*24) * time.Hour).Add(-time.Duration(mix(seed, 1, i)%(24*3600)) * time.Second)
	u := unit(mix(seed, 2, i))
	var segment string
	switch {
	case tenure < 0.05:
		segment = "new"
	case u < 0.08*tenure:
		segment = "high_value"
	case u < 0.35*tenure:
		segment = "loyal"
	case u < 0.6:
		segment = "engaged"
	case u < 0.85:
		segment = "casual"
	default:
		segment = "lapsed"
	}
	ltv := math.Round(math.Exp(unit(mix(seed, 3, i))*6)*tenure*100) / 100 // 0 … ~400, heavy tail
	if segment == "high_value" {
		ltv = math.Round(ltv*10*100) / 100
	}
	return User{
		ID: generator.UserID(i), Segment: segment, Country: Countries[mix(seed, 4, i)%uint64(len(Countries))],
		LifetimeValue: ltv, FirstSeen: first.UnixMilli(),
	}
}

// SeedCampaign is the campaign Seed writes for campaign i: deterministic in
// (seed, i). Its channel follows the platform the generator runs it on.
func SeedCampaign(seed uint64, i int) Campaign {
	adv := Advertisers[mix(seed, 5, i)%uint64(len(Advertisers))]
	platform := transforms.Platforms[i%len(transforms.Platforms)]
	start := seedEpoch.AddDate(0, 0, int(mix(seed, 6, i)%300))
	end := start.AddDate(0, 0, 180+int(mix(seed, 7, i)%540))
	return Campaign{
		ID:          generator.CampaignID(i),
		Name:        fmt.Sprintf("%s %s %d", adv, campaignThemes[mix(seed, 8, i)%uint64(len(campaignThemes))], start.Year()),
		Objective:   Objectives[mix(seed, 9, i)%uint64(len(Objectives))],
		Channel:     Channels[platform],
		Advertiser:  adv,
		DailyBudget: float64(50 + 10*(mix(seed, 10, i)%500)),
		Start:       start.UnixMilli(), End: end.UnixMilli(),
	}
}
