package enrichment_test

import (
	"context"
	"testing"

	"github.com/campaignpulse/campaignpulse/enrichment"
	"github.com/campaignpulse/campaignpulse/pipelines/generator"
)

// TestLookupAgainstEmulator seeds the official emulator and reads back
// through Lookup: the same answers as the seeder's definition.
func TestLookupAgainstEmulator(t *testing.T) {
	emu, err := enrichment.StartEmulator(context.Background())
	if err != nil {
		t.Fatalf("this test needs the Cloud Bigtable emulator: %v", err)
	}
	t.Cleanup(emu.Stop)
	gen := generator.Default()
	cfg := enrichment.Config{Project: "test", Instance: "enrichment", Endpoint: emu.Addr}.WithDefaults()
	seed(t, cfg, gen)
	l, err := enrichment.OpenLookup(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ids := make([]string, 0, 5000)
	for i := 0; i < 5000; i++ {
		ids = append(ids, generator.UserID(i*10))
	}
	a, st := l.Resolve(context.Background(), ids, []string{generator.CampaignID(1)})
	if a.UsersErr != nil || a.CampaignsErr != nil {
		t.Fatal(a.UsersErr, a.CampaignsErr)
	}
	// One ReadRows a chunk of MaxKeysPerRead users, one for the campaign.
	wantReads := int64((len(ids)+cfg.MaxKeysPerRead-1)/cfg.MaxKeysPerRead + 1)
	if st.Misses != 5001 || st.NotFound != 50 || st.Reads != wantReads {
		t.Errorf("stats %+v: want 5001 misses, 50 not found (the unsynced newest 1%%), %d reads", st, wantReads)
	}
	for _, i := range []int{0, 1230, 49480} {
		want := enrichment.SeedUser(gen.Seed, i, gen.Users)
		if got := a.Users[generator.UserID(i)]; got == nil || *got != want {
			t.Errorf("user %d = %+v, want %+v", i, got, want)
		}
	}
}
