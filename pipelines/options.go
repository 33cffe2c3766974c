// Package pipelines assembles Campaign Pulse: the options a run takes, the
// sources and sinks they select, and Build, which wires the transforms into
// one graph.
package pipelines

import (
	"flag"
	"fmt"
	"runtime"
	"time"

	"github.com/campaignpulse/campaignpulse/enrichment"
	"github.com/campaignpulse/campaignpulse/pipelines/generator"
	"github.com/campaignpulse/campaignpulse/transforms"
)

// Options are the pipeline's parameters. Every one is a flag (RegisterFlags),
// so the flex template's metadata can be checked against them.
type Options struct {
	Source string // generator | file
	Input  string // --source=file: path of a JSON-lines file
	Sink   string // duckdb | bigquery
	// Warehouse is the DuckDB file of --sink=duckdb.
	Warehouse string
	// BigQuery is the dataset of --sink=bigquery, whose tables Terraform
	// creates from terraform/schemas.
	BigQuery BigQueryTarget

	// Lanes is how many parallel lanes the graph is built with (see Build).
	Lanes int

	Generator       generator.Config
	GeneratorSplits int
	StartTime       string // RFC 3339 arrival time of the first generated event; "" = 24 h ago, on the hour

	MaxPayloadBytes int
	MaxFutureSkew   time.Duration
	Window          transforms.WindowConfig
	Dedup           transforms.DedupConfig

	// Enrich turns the Bigtable lookup on. With no Enrichment.Instance and
	// no Enrichment.Endpoint, a local run starts an in-process Bigtable
	// (or uses $BIGTABLE_EMULATOR_HOST) and seeds it from the generator
	// flags; see RunLocal.
	Enrich     bool
	Enrichment enrichment.Config
}

// Sources and sinks the options can name.
const (
	SourceGenerator = "generator"
	SourceFile      = "file"
	SinkDuckDB      = "duckdb"
	SinkBigQuery    = "bigquery"
)

// RegisterFlags defines every option on fs with its default.
func RegisterFlags(fs *flag.FlagSet) *Options {
	o := &Options{Generator: generator.Default(), Window: transforms.DefaultWindowConfig, Dedup: transforms.DefaultDedupConfig,
		Enrichment: enrichment.DefaultConfig}
	g := &o.Generator
	fs.StringVar(&o.Source, "source", SourceGenerator, "where events come from: generator or file")
	fs.StringVar(&o.Input, "input", "", "with --source=file: a JSON-lines file, one event per line")
	fs.StringVar(&o.Sink, "sink", SinkDuckDB, "where rows go: duckdb (a local file) or bigquery (the Storage Write API)")
	fs.StringVar(&o.BigQuery.Project, "bq_project", "", "with --sink=bigquery: the project of the dataset")
	fs.StringVar(&o.BigQuery.Dataset, "bq_dataset", "", "with --sink=bigquery: the dataset holding the pipeline's tables")
	fs.StringVar(&o.Warehouse, "warehouse", "warehouse/campaign_pulse.duckdb", "with --sink=duckdb: the DuckDB file")
	fs.Int64Var(&g.Events, "events", g.Events, "with --source=generator: how many events to generate")
	fs.Uint64Var(&g.Seed, "seed", g.Seed, "generator seed: the same seed gives the same events")
	fs.IntVar(&g.Campaigns, "campaigns", g.Campaigns, "generator: number of campaigns")
	fs.IntVar(&g.Users, "users", g.Users, "generator: number of users")
	fs.Float64Var(&g.Rate, "rate", g.Rate, "generator: events per second of event time")
	fs.Float64Var(&g.DuplicateRate, "duplicate_rate", g.DuplicateRate, "generator: share of duplicate events")
	fs.Float64Var(&g.MalformedRate, "malformed_rate", g.MalformedRate, "generator: share of malformed events")
	fs.Float64Var(&g.LateRate, "late_rate", g.LateRate, "generator: share of events late within the allowed lateness")
	fs.Float64Var(&g.TooLateRate, "too_late_rate", g.TooLateRate, "generator: share of events past the allowed lateness")
	fs.IntVar(&o.Lanes, "lanes", min(runtime.NumCPU(), transforms.MaxLanes), "parallel lanes of the graph: the local runner's parallelism (use 1 on Dataflow)")
	fs.IntVar(&o.GeneratorSplits, "generator_splits", 8, "generator: how many ranges the source splits into (parallelism)")
	fs.StringVar(&o.StartTime, "start", "", "generator: RFC 3339 arrival time of the first event (default: 24 h ago, on the hour)")
	fs.IntVar(&o.MaxPayloadBytes, "max_payload_bytes", transforms.DefaultMaxPayloadBytes, "payloads larger than this are dead-lettered")
	fs.DurationVar(&o.MaxFutureSkew, "max_future_skew", transforms.DefaultMaxFutureSkew, "how far past arrival an event timestamp may lie")
	fs.DurationVar(&o.Window.AllowedLateness, "allowed_lateness", o.Window.AllowedLateness, "how long after a window ends late events still update it")
	fs.DurationVar(&o.Window.EarlyFiring, "early_firing", o.Window.EarlyFiring, "processing-time delay of early panes")
	fs.DurationVar(&o.Window.WatermarkSkew, "watermark_skew", o.Window.WatermarkSkew, "how far the watermark trails arrival time")
	fs.IntVar(&o.Window.MaxPartialKeys, "max_partial_keys", o.Window.MaxPartialKeys, "partial aggregates a bundle holds before it flushes")
	fs.DurationVar(&o.Dedup.Horizon, "dedup_horizon", o.Dedup.Horizon, "how long, in event time, an event_id is remembered")
	fs.IntVar(&o.Dedup.Buckets, "dedup_buckets", o.Dedup.Buckets, "hash buckets per dedup epoch (parallelism of Dedup)")
	e := &o.Enrichment
	e.Project, e.Instance = "", ""
	fs.BoolVar(&o.Enrich, "enrich", true, "add each event's user and campaign context from Bigtable")
	fs.StringVar(&e.Project, "bigtable_project", "", "Google Cloud project of the Bigtable instance (default: a local placeholder)")
	fs.StringVar(&e.Instance, "bigtable_instance", "", "Bigtable instance to read profiles from; empty: $BIGTABLE_EMULATOR_HOST if set, else an in-process Bigtable, either seeded from the generator flags")
	fs.IntVar(&e.CacheSize, "enrich_cache_size", e.CacheSize, "entries of each enrichment cache (users, campaigns) per worker: bounds its memory")
	fs.DurationVar(&e.CacheTTL, "enrich_cache_ttl", e.CacheTTL, "how long a cached profile, found or not, is trusted")
	fs.DurationVar(&e.RetryBudget, "enrich_retry_budget", e.RetryBudget, "how long a batch's Bigtable read may take, retries included, before the outage rule applies")
	fs.StringVar(&e.OnUnavailable, "enrich_on_unavailable", e.OnUnavailable, "when Bigtable does not answer in the budget: deadletter (ENRICH_UNAVAILABLE) or pass (enrichment_status=unavailable)")
	return o
}

// Validate checks the options and fills derived values. Call it after parsing.
func (o *Options) Validate() error {
	switch o.Source {
	case SourceGenerator:
		if o.Generator.Events <= 0 {
			return fmt.Errorf("--events must be positive, got %d", o.Generator.Events)
		}
		if o.Generator.Campaigns <= 0 || o.Generator.Users <= 0 || o.Generator.Rate <= 0 {
			return fmt.Errorf("--campaigns, --users and --rate must be positive")
		}
		if r := o.Generator.DuplicateRate + o.Generator.MalformedRate + o.Generator.LateRate + o.Generator.TooLateRate; r > 1 {
			return fmt.Errorf("the generator's rates add up to %.2f, more than 1", r)
		}
		if o.StartTime != "" {
			t, err := time.Parse(time.RFC3339, o.StartTime)
			if err != nil {
				return fmt.Errorf("--start: %v", err)
			}
			o.Generator.Start = t.UTC()
		}
		o.GeneratorSplits = max(o.GeneratorSplits, 1)
	case SourceFile:
		if o.Input == "" {
			return fmt.Errorf("--source=file needs --input")
		}
	default:
		return fmt.Errorf("--source=%q: want generator or file", o.Source)
	}
	switch o.Sink {
	case SinkDuckDB:
	case SinkBigQuery:
		if o.BigQuery.Project == "" || o.BigQuery.Dataset == "" {
			return fmt.Errorf("--sink=bigquery needs --bq_project and --bq_dataset")
		}
	default:
		return fmt.Errorf("--sink=%q: want duckdb or bigquery", o.Sink)
	}
	if o.Window.AllowedLateness < 0 || o.Window.EarlyFiring <= 0 || o.Window.WatermarkSkew < 0 {
		return fmt.Errorf("--allowed_lateness and --watermark_skew must be ≥ 0 and --early_firing > 0")
	}
	if o.Dedup.Horizon <= 0 || o.Dedup.Buckets <= 0 {
		return fmt.Errorf("--dedup_horizon and --dedup_buckets must be positive")
	}
	if o.Lanes < 1 || o.Lanes > transforms.MaxLanes {
		return fmt.Errorf("--lanes must be between 1 and %d, got %d", transforms.MaxLanes, o.Lanes)
	}
	if o.Enrich {
		if err := o.Enrichment.Validate(); err != nil {
			return err
		}
	}
	o.Window.Size = time.Minute
	g := &o.Generator
	g.WindowSize, g.AllowedLateness, g.WatermarkSkew = o.Window.Size, o.Window.AllowedLateness, o.Window.WatermarkSkew
	return nil
}

// Unbounded reports whether the source never ends (a streaming run).
func (o *Options) Unbounded() bool { return false }
