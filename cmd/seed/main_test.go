package main

import (
	"strings"
	"testing"

	"github.com/campaignpulse/campaignpulse/enrichment"
	"github.com/campaignpulse/campaignpulse/pipelines/generator"
)

// TestRunRefusesWhatSeedsNothing runs the seeder against an in-process
// Bigtable: --users=-5 printed "seeded -5 users" and exited 0, and
// --unsynced_share=0.99 with --users=3 seeded no user without a word. Each
// must fail with an error naming the flag; sane flags still seed.
func TestRunRefusesWhatSeedsNothing(t *testing.T) {
	srv, err := enrichment.StartInProcess()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	cfg := enrichment.DefaultConfig
	cfg.Endpoint = srv.Addr
	for _, c := range []struct {
		users, campaigns int
		unsynced         float64
		want             string // "" for success
	}{
		{users: 10, campaigns: 2, unsynced: 0.1},
		{users: -5, campaigns: 2, unsynced: 0.01, want: "--users must be positive, got -5"},
		{users: 0, campaigns: 2, unsynced: 0.01, want: "--users must be positive, got 0"},
		{users: 10, campaigns: -1, unsynced: 0.01, want: "--campaigns must be positive, got -1"},
		{users: 3, campaigns: 2, unsynced: 0.99, want: "--unsynced_share=0.99 leaves none of the 3 users to seed"},
		{users: 10, campaigns: 2, unsynced: 1, want: "--unsynced_share must be in [0, 1), got 1"},
	} {
		gen := generator.Default()
		gen.Users, gen.Campaigns = c.users, c.campaigns
		err := run(cfg, gen, c.unsynced)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("users=%d campaigns=%d unsynced_share=%g: %v", c.users, c.campaigns, c.unsynced, err)
		case c.want != "" && (err == nil || !strings.HasPrefix(err.Error(), c.want)):
			t.Errorf("users=%d campaigns=%d unsynced_share=%g: got %v, want %q", c.users, c.campaigns, c.unsynced, err, c.want)
		}
	}
}
