// Package pipelines assembles Campaign Pulse: the options a run takes, the
// sources and sinks they select, and Build, which wires the transforms into
// one graph.
package pipelines

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/options/jobopts"

	"github.com/campaignpulse/campaignpulse/enrichment"
	"github.com/campaignpulse/campaignpulse/pipelines/generator"
	"github.com/campaignpulse/campaignpulse/transforms"
)

// Options are the pipeline's parameters. Every one is a flag (RegisterFlags),
// so the flex template's metadata can be checked against them.
type Options struct {
	Source string // generator | file | pubsub
	Input  string // --source=file: path of a JSON-lines file
	// PubSub is the input of --source=pubsub: the production source, and
	// the emulator's on one machine.
	PubSub PubSubConfig
	// RunFor bounds a streaming run: after it the sources stop reading and
	// the pipeline drains (0: until interrupted). Local runners only; on
	// Dataflow, drain the job.
	RunFor time.Duration
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

	// FailEventWritesFor, in tests only, fails the event sink's bundles for
	// this long (faults.go). Not a flag of RegisterFlags: cmd/campaignpulse
	// defines it, so it is no template parameter.
	FailEventWritesFor time.Duration

	// reportsOwnProgress: the caller prints progress itself (RunStreaming,
	// with the publisher's counts and the freshness), so RunLocal does not.
	reportsOwnProgress bool
}

// Sources and sinks the options can name.
const (
	SourceGenerator = "generator"
	SourceFile      = "file"
	SourcePubSub    = "pubsub"
	SinkDuckDB      = "duckdb"
	SinkBigQuery    = "bigquery"
)

// RegisterFlags defines every option on fs with its default.
func RegisterFlags(fs *flag.FlagSet) *Options {
	o := &Options{Generator: generator.Default(), Window: transforms.DefaultWindowConfig, Dedup: transforms.DefaultDedupConfig,
		Enrichment: enrichment.DefaultConfig}
	g := &o.Generator
	fs.StringVar(&o.Source, "source", SourceGenerator, "where events come from: generator, file or pubsub")
	fs.StringVar(&o.Input, "input", "", "with --source=file: a JSON-lines file, one event per line")
	ps := &o.PubSub
	*ps = DefaultPubSubConfig
	fs.StringVar(&ps.Project, "pubsub_project", "", "with --source=pubsub: the project of subscriptions given as bare ids")
	fs.Var(&stringList{&ps.Subscriptions}, "subscriptions", "with --source=pubsub: comma-separated subscriptions (ids or projects/P/subscriptions/S), one per marketing source")
	fs.IntVar(&ps.Streams, "pubsub_streams", ps.Streams, "with --source=pubsub on a local runner: streaming-pull streams per subscription")
	fs.IntVar(&ps.MaxOutstanding, "pubsub_max_outstanding", ps.MaxOutstanding, "with --source=pubsub on a local runner: messages the source holds (queued or emitted, not yet settled), at most (flow control; the client library may hold up to a share a stream more, pulled ahead)")
	fs.DurationVar(&ps.MaxExtension, "pubsub_max_extension", ps.MaxExtension, "with --source=pubsub on a local runner: how long a pulled message is held unacknowledged, its bundle not committed, before it is released for redelivery (into DuckDB a committed message waits for its row however long)")
	fs.DurationVar(&ps.Lease, "pubsub_lease", ps.Lease, "with --source=pubsub on a local runner: how long each renewal of a held message's lease lasts, so how soon a message its reader could not release comes back (10s to 10m)")
	fs.StringVar(&ps.IDAttribute, "pubsub_id_attribute", ps.IDAttribute, "with --source=pubsub on Dataflow: a message attribute holding the event id, on which Dataflow drops repeats before the pipeline counts them (and drops a distinct event whose attribute repeats another's); empty: Dedup alone, which counts them")
	fs.StringVar(&ps.TimestampAttribute, "pubsub_timestamp_attribute", ps.TimestampAttribute, "with --source=pubsub on Dataflow: a message attribute holding the event time (RFC 3339) for Dataflow's watermark, which every message must then carry; empty: publish time, which the lateness rule assumes")
	fs.DurationVar(&o.RunFor, "run_for", 0, "with --source=pubsub on a local runner: stop reading after this long and drain (0: until interrupted)")
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
	fs.DurationVar(&o.Window.LatenessMargin, "lateness_margin", o.Window.LatenessMargin, "how much longer than --allowed_lateness the runner keeps a window open, so that a message read that long after the watermark passed its arrival time is still aggregated")
	fs.StringVar(&o.Window.RunID, "run_id", "", "names this run in every pane row, so that readers add the panes of runs that share a window (empty: on Dataflow the job name, else a new id)")
	fs.IntVar(&o.Window.MaxPartialKeys, "max_partial_keys", o.Window.MaxPartialKeys, "partial aggregates a bundle holds before it flushes")
	fs.DurationVar(&o.Dedup.Horizon, "dedup_horizon", o.Dedup.Horizon, "how long, in event time, an event_id is remembered")
	fs.IntVar(&o.Dedup.Buckets, "dedup_buckets", 0, "hash buckets per dedup epoch (parallelism of Dedup); 0: 64 on Dataflow, one a lane on a local runner")
	fs.IntVar(&o.Dedup.CacheIDs, "dedup_cache_ids", o.Dedup.CacheIDs, "event ids a worker process keeps decoded in memory across bundles, over all its Dedup instances (about 16 bytes each); past it keys are read again from state")
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

// MaxPayloadLimit is the largest --max_payload_bytes: ten times Pub/Sub's
// largest message.
const MaxPayloadLimit = 100 << 20

// Validate checks the options and fills derived values. Call it after parsing.
func (o *Options) Validate() error {
	switch o.Source {
	case SourceGenerator:
		if o.Generator.Events <= 0 {
			return fmt.Errorf("--events must be positive, got %d", o.Generator.Events)
		}
		if o.Generator.Campaigns <= 0 || o.Generator.Users <= 0 || !(o.Generator.Rate > 0) || math.IsInf(o.Generator.Rate, 1) {
			return fmt.Errorf("--campaigns, --users and --rate must be positive (and --rate finite)")
		}
		// Each rate is a share of the events, drawn one after another from
		// one uniform number: a negative one would shrink the sum and let
		// another pass 1, and the traffic would not be what was asked.
		for _, r := range []struct {
			flag string
			v    float64
		}{{"duplicate_rate", o.Generator.DuplicateRate}, {"malformed_rate", o.Generator.MalformedRate}, {"late_rate", o.Generator.LateRate}, {"too_late_rate", o.Generator.TooLateRate}} {
			if !(r.v >= 0 && r.v <= 1) {
				return fmt.Errorf("--%s must be between 0 and 1, got %g", r.flag, r.v)
			}
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
		if o.GeneratorSplits < 1 {
			return fmt.Errorf("--generator_splits must be positive, got %d", o.GeneratorSplits)
		}
	case SourceFile:
		if o.Input == "" {
			return fmt.Errorf("--source=file needs --input")
		}
		if !OnDataflow() {
			// Here, not in a worker: a missing file would fail every
			// bundle that reads it, retried, with a stack trace each.
			st, head, err := statHead(o.Input, 6)
			if err != nil {
				return fmt.Errorf("--input: %w", err)
			} else if !st.Mode().IsRegular() {
				return fmt.Errorf("--input %s: not a regular file", o.Input)
			}
			if err := checkNotCompressed(o.Input, head); err != nil {
				return err
			}
		}
	case SourcePubSub:
		if err := o.PubSub.Validate(); err != nil {
			return err
		}
	default:
		return fmt.Errorf("--source=%q: want generator, file or pubsub", o.Source)
	}
	switch o.Sink {
	case SinkDuckDB:
		// DuckDB's driver reads a path as a connection string: what follows
		// a '?' would be taken for options ("The following options were not
		// recognized"), after a reset had already been attempted.
		if strings.Contains(o.Warehouse, "?") {
			return fmt.Errorf("--warehouse %q: a path with '?' cannot name a DuckDB file (the driver reads what follows it as options): choose another name", o.Warehouse)
		}
	case SinkBigQuery:
		if o.BigQuery.Project == "" || o.BigQuery.Dataset == "" {
			return fmt.Errorf("--sink=bigquery needs --bq_project and --bq_dataset")
		}
	default:
		return fmt.Errorf("--sink=%q: want duckdb or bigquery", o.Sink)
	}
	// A limit, not a switch: Parse reads 0 as none, but Pub/Sub caps a
	// message at 10 MB anyway, and an unbounded payload has no use here.
	if o.MaxPayloadBytes <= 0 {
		return fmt.Errorf("--max_payload_bytes must be positive, got %d", o.MaxPayloadBytes)
	}
	// And bounded: a record is held whole (a generated oversize event is
	// the limit and a byte), and the limit plus one must not overflow.
	if o.MaxPayloadBytes > MaxPayloadLimit {
		return fmt.Errorf("--max_payload_bytes must be at most %d (100 MiB, ten times Pub/Sub's largest message), got %d", MaxPayloadLimit, o.MaxPayloadBytes)
	}
	if o.Source == SourceGenerator && o.MaxPayloadBytes < generator.MaxEventBytes {
		return fmt.Errorf("--max_payload_bytes=%d would dead-letter events the generator makes valid (up to %d bytes): use at least that with --source=generator", o.MaxPayloadBytes, generator.MaxEventBytes)
	}
	// Validate accepts a timestamp at most this far after arrival; below
	// zero it would demand that far before arrival and dead-letter every
	// fresh event as VALIDATE_FUTURE_TIMESTAMP.
	if o.MaxFutureSkew < 0 {
		return fmt.Errorf("--max_future_skew must be ≥ 0, got %s", o.MaxFutureSkew)
	}
	if limit := generator.FutureTimestampAhead - generator.MaxJitter; o.Source == SourceGenerator && o.MaxFutureSkew >= limit {
		return fmt.Errorf("--max_future_skew=%s would make the generator's future-timestamp events (%s ahead) valid, which it counts as dead letters: use less than %s with --source=generator",
			o.MaxFutureSkew, generator.FutureTimestampAhead, limit)
	}
	// PreAggregate reads 0 as no bound (its own tests use that): a bundle
	// over many window keys would hold all their partials at once.
	if o.Window.MaxPartialKeys <= 0 {
		return fmt.Errorf("--max_partial_keys must be positive, got %d", o.Window.MaxPartialKeys)
	}
	// A negative --run_for would be taken as none, so the run the user
	// meant to bound would read until interrupted.
	if o.RunFor < 0 {
		return fmt.Errorf("--run_for must be ≥ 0 (0: until interrupted), got %s", o.RunFor)
	}
	if o.Window.AllowedLateness < 0 || o.Window.EarlyFiring <= 0 || o.Window.WatermarkSkew < 0 || o.Window.LatenessMargin < 0 {
		return fmt.Errorf("--allowed_lateness, --lateness_margin and --watermark_skew must be ≥ 0 and --early_firing > 0")
	}
	if o.Dedup.Buckets == 0 {
		o.Dedup.Buckets = o.defaultDedupBuckets()
	}
	if o.Dedup.Horizon <= 0 || o.Dedup.Buckets <= 0 || o.Dedup.CacheIDs <= 0 {
		return fmt.Errorf("--dedup_horizon, --dedup_buckets and --dedup_cache_ids must be positive")
	}
	// Dedup keys its state by the horizon's epoch in milliseconds: under a
	// millisecond every bundle divided by zero. Under a second no repeat
	// a sender's retry makes would be caught.
	if o.Dedup.Horizon < time.Second {
		return fmt.Errorf("--dedup_horizon must be at least 1s, got %s", o.Dedup.Horizon)
	}
	// Stamped by a producer's attribute, the watermark follows the
	// producers' clocks, which may run ahead of the workers'.
	o.Dedup.ExpireOnWatermark = o.Source == SourcePubSub && o.PubSub.TimestampAttribute != ""
	if o.Lanes < 1 || o.Lanes > transforms.MaxLanes {
		return fmt.Errorf("--lanes must be between 1 and %d, got %d", transforms.MaxLanes, o.Lanes)
	}
	if o.Enrich {
		if err := o.Enrichment.Validate(); err != nil {
			return err
		}
	}
	o.Window.Size = time.Minute
	if o.Window.RunID == "" {
		o.Window.RunID = defaultRunID()
	}
	g := &o.Generator
	g.WindowSize, g.AllowedLateness, g.WatermarkSkew = o.Window.Size, o.Window.AllowedLateness, o.Window.WatermarkSkew
	g.MaxPayloadBytes = o.MaxPayloadBytes
	// A late event arrives after its window closed and within the allowed
	// lateness, which must then leave it room: past one window and a second
	// of slack, or the generator makes every late event too late instead,
	// and the run's traffic is not what its flags asked for.
	if o.Source == SourceGenerator && g.LateRate > 0 && o.Window.AllowedLateness <= o.Window.Size+time.Second {
		return fmt.Errorf("--late_rate=%g needs --allowed_lateness over %s (one window and a second), got %s: set --late_rate=0, or a longer lateness",
			g.LateRate, o.Window.Size+time.Second, o.Window.AllowedLateness)
	}
	return nil
}

// defaultRunID is the run id of a run that names none. On Dataflow it is
// the job's name, which an update of the job keeps along with its state (a
// job replaced under the same name must be given a new --run_id), and never
// anything new per launch: an update launches the binary again, and a new id
// would count the state it carries over a second time. Without a job name
// it is "dataflow". A local run gets the start time in UTC and a random
// suffix.
func defaultRunID() string {
	if OnDataflow() {
		if *jobopts.JobName != "" {
			return *jobopts.JobName
		}
		return "dataflow"
	}
	return "local-" + time.Now().UTC().Format("20060102T150405Z") + "-" + strconv.FormatUint(rand.Uint64()&0xffffff, 16)
}

// compressedMagic are the first bytes of the compressed files an export of
// JSON lines is likely to come as.
var compressedMagic = []struct {
	format, tool string
	magic        []byte
}{
	{"gzip", "gunzip", []byte{0x1f, 0x8b}},
	{"zstd", "unzstd", []byte{0x28, 0xb5, 0x2f, 0xfd}},
	{"bzip2", "bunzip2", []byte("BZh")},
	{"xz", "unxz", []byte{0xfd, '7', 'z', 'X', 'Z', 0}},
}

// checkNotCompressed fails if head, the first bytes of the file at path,
// are those of a compressed file: the file source reads lines of plain text
// (split by byte ranges, which a compressed stream cannot be), so every
// "line" of a compressed file would be dead-lettered as PARSE_INVALID_UTF8,
// the run would reconcile, and the mistake would show only as a dead letter
// per line.
func checkNotCompressed(path string, head []byte) error {
	for _, c := range compressedMagic {
		if bytes.HasPrefix(head, c.magic) {
			return fmt.Errorf("--input %s is %s-compressed: the file source reads plain JSON lines (%s it first)", path, c.format, c.tool)
		}
	}
	return nil
}

// statHead stats the file at path and, if it is a regular file, reads its
// first n bytes (fewer if it is shorter), by which a file's format shows:
// what Validate checks --input by, and ResetWarehouse the file it would
// replace.
func statHead(path string, n int) (os.FileInfo, []byte, error) {
	st, err := os.Stat(path)
	if err != nil || !st.Mode().IsRegular() {
		return st, nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return st, nil, err
	}
	defer f.Close()
	head := make([]byte, n)
	k, err := io.ReadFull(f, head)
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		err = nil
	}
	return st, head[:k], err
}

// defaultDedupBuckets is --dedup_buckets=0. On Dataflow the buckets are
// Dedup's parallelism: keys spread over workers. On a local runner the lanes
// are (a lane's Dedup takes every pending key into one bundle), and each
// bucket only adds a batch, and so a state request, per upstream bundle: one
// a lane.
func (o *Options) defaultDedupBuckets() int {
	if OnDataflow() {
		return transforms.DefaultDedupConfig.Buckets
	}
	return max(o.Lanes, 1)
}

// Unbounded reports whether the source never ends (a streaming run).
func (o *Options) Unbounded() bool { return o.Source == SourcePubSub }

// PubSubConfig is the input of --source=pubsub.
type PubSubConfig struct {
	// Project is the project of Subscriptions given as bare ids.
	Project string
	// Subscriptions are ids or projects/P/subscriptions/S; the reference
	// architecture gives each marketing source its own topic and so its own
	// subscription. Their messages are flattened into one stream.
	Subscriptions []string
	// Streams is how many streaming-pull streams the native source opens per
	// subscription: the emulator delivers about 2,000 messages/s a stream.
	Streams int
	// MaxOutstanding bounds the messages the source holds, queued or
	// emitted and not yet settled (flow control): a bundle's messages stay
	// held until their rows are committed (Settle), or, without Settle,
	// until the runner has committed the bundle. The client library may hold
	// up to a share a stream more, which the server sent ahead.
	MaxOutstanding int
	// MaxExtension is how long the native source keeps a pulled message's
	// lease before it lets it go for redelivery (a bundle that failed); a
	// message waiting for settlement after its bundle's commit is kept.
	MaxExtension time.Duration
	// Lease is how long each renewal of a held message's lease lasts: how
	// long a message whose holder died unannounced (or could not release
	// it) waits before Pub/Sub sends it again.
	Lease time.Duration
	// IDAttribute and TimestampAttribute are message attributes Dataflow's
	// Pub/Sub source may de-duplicate on and stamp event time from; the
	// publishers (cmd/eventgen, cmd/replay) set the ones named. Both are
	// empty by default, so no producer has to set any attribute: Dataflow
	// then stamps publish time, as ClassifyLateness assumes and the local
	// reader does, and drops only redeliveries (by message id), leaving
	// repeats to Dedup, which counts them. A named timestamp attribute makes
	// every producer responsible for it: Beam's reference reader fails on
	// a message without it, and Dataflow's native reader documents nothing.
	IDAttribute, TimestampAttribute string

	// Not flags. WatermarkSkew is how far the native source's watermark
	// trails the publish times (Build sets it from --watermark_skew).
	// Endpoint, if set, is a fake Pub/Sub's address (tests), dialled
	// without credentials; else the client uses $PUBSUB_EMULATOR_HOST or
	// Pub/Sub. DrainBase, if set, is the DrainSources count the run's
	// sources start from (DrainCount); unset, the count when the graph is
	// built. Main takes it before it arms --run_for and Ctrl-C, so a drain
	// asked while the run still starts (seeding Bigtable, say) stops the
	// sources as soon as they read.
	WatermarkSkew time.Duration
	// CatchUpLag (not a flag either; Build sets it to --allowed_lateness plus
	// --lateness_margin) is how far the native source's watermark trails the
	// newest backlog message it has read while it reads the backlog it
	// found at its start (pubsubReceiver.readUpTo).
	CatchUpLag time.Duration
	// Settle (not a flag; Build sets it for every local run: both sinks
	// settle every record they write, transforms.Settle) makes the native source
	// acknowledge a message only once its row is committed or Dedup has
	// dropped it as a repeat, instead of once the bundle that read it is:
	// a local job killed at any moment then loses nothing it acknowledged.
	Settle bool
	// Graph (not a flag; RunLocal or Build sets it) names the graph whose lanes share
	// the settlement indexes: each lane reads every subscription, so a
	// redelivery of a message one lane holds or released can reach another.
	Graph     string
	Endpoint  string
	DrainBase *int64
}

// DefaultPubSubConfig is what the flags default to.
var DefaultPubSubConfig = PubSubConfig{
	Streams: 16, MaxOutstanding: 50_000, MaxExtension: 2 * time.Minute, Lease: time.Minute,
}

// Validate checks the config and returns the subscriptions as full paths.
func (c *PubSubConfig) Validate() error {
	if len(c.Subscriptions) == 0 {
		return fmt.Errorf("--source=pubsub needs --subscriptions")
	}
	seen := make(map[string]string, len(c.Subscriptions))
	for i, sub := range c.Subscriptions {
		full, err := SubscriptionPath(c.Project, sub)
		if err != nil {
			return err
		}
		// One receiver per subscription and lane: a subscription named
		// twice would have two restrictions ack and nack each other's holds.
		if first, ok := seen[full]; ok {
			return fmt.Errorf("--subscriptions names %s twice (%q and %q)", full, first, sub)
		}
		seen[full] = sub
		c.Subscriptions[i] = full
	}
	if c.Streams < 1 || c.MaxOutstanding < 1 || c.MaxExtension <= 0 {
		return fmt.Errorf("--pubsub_streams, --pubsub_max_outstanding and --pubsub_max_extension must be positive")
	}
	if c.Lease < 10*time.Second || c.Lease > 10*time.Minute {
		return fmt.Errorf("--pubsub_lease must be between 10s and 10m (what Pub/Sub allows), got %s", c.Lease)
	}
	return nil
}

// SubscriptionPath returns sub as projects/P/subscriptions/S, taking P from
// project when sub is a bare id.
func SubscriptionPath(project, sub string) (string, error) {
	if parts := strings.Split(sub, "/"); len(parts) == 4 && parts[0] == "projects" && parts[2] == "subscriptions" && parts[1] != "" && parts[3] != "" {
		return sub, nil
	}
	if strings.Contains(sub, "/") || sub == "" {
		return "", fmt.Errorf("--subscriptions: %q is neither an id nor projects/P/subscriptions/S", sub)
	}
	if project == "" {
		return "", fmt.Errorf("--subscriptions: %q is a bare id: set --pubsub_project or give projects/P/subscriptions/%s", sub, sub)
	}
	return "projects/" + project + "/subscriptions/" + sub, nil
}

// stringList is a comma-separated list flag.
type stringList struct{ list *[]string }

func (l *stringList) String() string {
	if l.list == nil {
		return ""
	}
	return strings.Join(*l.list, ",")
}

func (l *stringList) Set(v string) error {
	*l.list = nil
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l.list = append(*l.list, s)
		}
	}
	return nil
}
