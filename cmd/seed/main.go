// Command seed writes the user profiles and campaigns that the event
// generator's ids refer to into Bigtable, creating the tables and column
// families of enrichment.Layout if they are missing. It is idempotent: run
// it again and readers see the same rows.
//
//	# the official emulator
//	gcloud beta emulators bigtable start --host-port=localhost:8086 &
//	BIGTABLE_EMULATOR_HOST=localhost:8086 go run ./cmd/seed
//	# a real instance (application default credentials)
//	go run ./cmd/seed --project=my-project --instance=campaignpulse
//
// --users, --campaigns and --seed must match the pipeline's generator flags
// for the lookups to find what the events name.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/campaignpulse/campaignpulse/enrichment"
	"github.com/campaignpulse/campaignpulse/pipelines/generator"
)

func main() {
	gen := generator.Default()
	cfg := enrichment.DefaultConfig
	flag.StringVar(&cfg.Project, "project", cfg.Project, "Google Cloud project of the Bigtable instance")
	flag.StringVar(&cfg.Instance, "instance", cfg.Instance, "Bigtable instance")
	flag.StringVar(&cfg.Endpoint, "endpoint", "", "host:port of a Bigtable emulator (default: $BIGTABLE_EMULATOR_HOST if set, else the real service)")
	flag.IntVar(&gen.Users, "users", gen.Users, "number of users the generator draws from (usr_000000 …)")
	flag.IntVar(&gen.Campaigns, "campaigns", gen.Campaigns, "number of campaigns (cmp_0000 …)")
	flag.Uint64Var(&gen.Seed, "seed", gen.Seed, "seed of the attributes")
	unsynced := flag.Float64("unsynced_share", enrichment.DefaultUnsyncedShare, "share of the newest users left out, so events name some unknown users")
	flag.Parse()
	if err := run(cfg, gen, *unsynced); err != nil {
		fmt.Fprintln(os.Stderr, "seed:", err)
		os.Exit(1)
	}
}

func run(cfg enrichment.Config, gen generator.Config, unsynced float64) error {
	if err := checkFlags(gen, unsynced); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	target := cfg.Endpoint
	if target == "" {
		target = os.Getenv("BIGTABLE_EMULATOR_HOST")
	}
	if target == "" {
		target = "Bigtable"
	}
	fmt.Fprintf(os.Stderr, "seed: %s, project %s, instance %s: %d users, %d campaigns, seed %d\n",
		target, cfg.Project, cfg.Instance, gen.Users, gen.Campaigns, gen.Seed)
	client, closeClient, err := enrichment.Dial(ctx, cfg)
	if err != nil {
		return err
	}
	defer closeClient()
	admin, closeAdmin, err := enrichment.DialAdmin(ctx, cfg)
	if err != nil {
		return err
	}
	defer closeAdmin()
	start := time.Now()
	n, err := enrichment.Seed(ctx, client, admin, gen, enrichment.SeedOptions{
		UnsyncedShare: unsynced, Progress: os.Stderr, ProgressEvery: 10_000,
	})
	if err != nil {
		return err
	}
	fmt.Printf("seeded %d users and %d campaigns in %s\n", n.Users, n.Campaigns, time.Since(start).Round(time.Millisecond))
	return nil
}

// checkFlags refuses what would seed nothing, or nonsense, before anything
// is dialled: a negative --users was seeded as "-5 users" with exit 0, and an
// --unsynced_share that rounds every user off seeded none without a word.
func checkFlags(gen generator.Config, unsynced float64) error {
	if gen.Users <= 0 {
		return fmt.Errorf("--users must be positive, got %d", gen.Users)
	}
	if gen.Campaigns <= 0 {
		return fmt.Errorf("--campaigns must be positive, got %d", gen.Campaigns)
	}
	if !(unsynced >= 0 && unsynced < 1) { // NaN too
		return fmt.Errorf("--unsynced_share must be in [0, 1), got %g", unsynced)
	}
	if enrichment.SeededUsers(gen, unsynced) < 1 {
		return fmt.Errorf("--unsynced_share=%g leaves none of the %d users to seed; lower it or raise --users", unsynced, gen.Users)
	}
	return nil
}
