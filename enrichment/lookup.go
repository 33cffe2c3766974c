package enrichment

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"cloud.google.com/go/bigtable"
	"golang.org/x/sync/errgroup"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// Outage behaviours: what Enrich does with an event whose lookup Bigtable did
// not answer within the retry budget.
const (
	OnUnavailableDeadLetter = "deadletter" // dead-letter it with ENRICH_UNAVAILABLE (replayable payload)
	OnUnavailablePass       = "pass"       // pass it on unenriched, enrichment_status = unavailable
)

// Config is where the enrichment data lives and how hard to try for it. It is
// a plain value (JSON-encoded into the DoFn by Beam), filled from flags.
type Config struct {
	Project, Instance string
	// Endpoint is host:port of a Bigtable emulator (cbtemulator, or bttest
	// in-process), reached in plaintext without credentials. Empty: the
	// client library's default, which is BIGTABLE_EMULATOR_HOST when that is
	// set and the real service otherwise.
	Endpoint string

	// CacheSize bounds each of the two caches (users, campaigns) in entries;
	// CacheTTL is how long an answer, found or not, is trusted. The caches
	// are shared by every Enrich instance of a worker process.
	CacheSize int
	CacheTTL  time.Duration

	// RetryBudget is the whole time the read of one chunk of keys
	// (MaxKeysPerRead) may take, retries and backoff included; chunks run
	// ReadConcurrency at a time, so a large cold batch may take a few
	// budgets. AttemptTimeout bounds one ReadRows; backoff starts at
	// InitialBackoff and doubles (with jitter) up to MaxBackoff.
	RetryBudget    time.Duration
	AttemptTimeout time.Duration
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
	// BreakerCooldown: after a read of a table has failed past its budget,
	// that table's reads fail at once for this long instead of each spending
	// the budget again, so an outage slows the pipeline by one budget per
	// cooldown, not per batch. A failed open of the client is likewise
	// the answer of every Enrich instance of the process for this long.
	BreakerCooldown time.Duration

	// MaxKeysPerRead chunks a row list into several ReadRows, run
	// ReadConcurrency at a time: each request stays well under Bigtable's
	// request size limit, and a batch's misses are read in parallel (500:
	// a cold 1,000-key batch against cbtemulator on 2 cores read 44,000-
	// 48,000 keys/s as one ReadRows, 58,000-70,000 as two;
	// BenchmarkResolveColdBatchEmulator compares chunkings).
	MaxKeysPerRead  int
	ReadConcurrency int
	// MicroBatchEvents is how many events Enrich gathers (within a bundle)
	// before it looks their keys up together.
	MicroBatchEvents int

	// OnUnavailable is OnUnavailableDeadLetter or OnUnavailablePass.
	OnUnavailable string
}

// DefaultConfig is what the flags default to.
var DefaultConfig = Config{
	Project: "campaignpulse-local", Instance: "enrichment",
	CacheSize: 200_000, CacheTTL: 10 * time.Minute,
	RetryBudget: 5 * time.Second, AttemptTimeout: 2 * time.Second,
	InitialBackoff: 50 * time.Millisecond, MaxBackoff: time.Second, BreakerCooldown: 10 * time.Second,
	MaxKeysPerRead: 500, ReadConcurrency: 4, MicroBatchEvents: 4096,
	OnUnavailable: OnUnavailableDeadLetter,
}

// WithDefaults fills zero fields from DefaultConfig.
func (c Config) WithDefaults() Config {
	d := DefaultConfig
	if c.Project == "" {
		c.Project = d.Project
	}
	if c.Instance == "" {
		c.Instance = d.Instance
	}
	if c.CacheSize <= 0 {
		c.CacheSize = d.CacheSize
	}
	if c.CacheTTL <= 0 {
		c.CacheTTL = d.CacheTTL
	}
	if c.RetryBudget <= 0 {
		c.RetryBudget = d.RetryBudget
	}
	if c.AttemptTimeout <= 0 {
		c.AttemptTimeout = min(d.AttemptTimeout, c.RetryBudget)
	}
	if c.InitialBackoff <= 0 {
		c.InitialBackoff = d.InitialBackoff
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = d.MaxBackoff
	}
	if c.BreakerCooldown < 0 {
		c.BreakerCooldown = 0
	} else if c.BreakerCooldown == 0 {
		c.BreakerCooldown = d.BreakerCooldown
	}
	if c.MaxKeysPerRead <= 0 {
		c.MaxKeysPerRead = d.MaxKeysPerRead
	}
	if c.ReadConcurrency <= 0 {
		c.ReadConcurrency = d.ReadConcurrency
	}
	if c.MicroBatchEvents <= 0 {
		c.MicroBatchEvents = d.MicroBatchEvents
	}
	if c.OnUnavailable == "" {
		c.OnUnavailable = d.OnUnavailable
	}
	return c
}

// Validate checks a config given by flags.
func (c Config) Validate() error {
	if c.OnUnavailable != OnUnavailableDeadLetter && c.OnUnavailable != OnUnavailablePass {
		return fmt.Errorf("--enrich_on_unavailable=%q: want %s or %s", c.OnUnavailable, OnUnavailableDeadLetter, OnUnavailablePass)
	}
	if c.CacheSize <= 0 || c.CacheTTL <= 0 || c.RetryBudget <= 0 {
		return fmt.Errorf("--enrich_cache_size, --enrich_cache_ttl and --enrich_retry_budget must be positive")
	}
	return nil
}

// testDialOptions are added to an emulator's connection (Config.Endpoint):
// tests inject failures with them.
var testDialOptions []grpc.DialOption

// Dial opens a data client for cfg (see Config.Endpoint). Close it with the
// returned func.
func Dial(ctx context.Context, cfg Config) (*bigtable.Client, func() error, error) {
	cfg = cfg.WithDefaults()
	if cfg.Endpoint == "" {
		c, err := bigtable.NewClient(ctx, cfg.Project, cfg.Instance)
		if err != nil {
			return nil, nil, err
		}
		return c, c.Close, nil
	}
	conn, err := grpc.NewClient("passthrough:///"+cfg.Endpoint,
		append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, testDialOptions...)...)
	if err != nil {
		return nil, nil, err
	}
	c, err := bigtable.NewClientWithConfig(ctx, cfg.Project, cfg.Instance,
		bigtable.ClientConfig{MetricsProvider: bigtable.NoopMetricsProvider{}}, option.WithGRPCConn(conn))
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	return c, func() error { err := c.Close(); conn.Close(); return err }, nil
}

// DialAdmin opens a table-admin client for cfg, like Dial.
func DialAdmin(ctx context.Context, cfg Config) (*bigtable.AdminClient, func() error, error) {
	cfg = cfg.WithDefaults()
	if cfg.Endpoint == "" {
		a, err := bigtable.NewAdminClient(ctx, cfg.Project, cfg.Instance)
		if err != nil {
			return nil, nil, err
		}
		return a, a.Close, nil
	}
	conn, err := grpc.NewClient("passthrough:///"+cfg.Endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, nil, err
	}
	a, err := bigtable.NewAdminClient(ctx, cfg.Project, cfg.Instance, option.WithGRPCConn(conn))
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	return a, func() error { err := a.Close(); conn.Close(); return err }, nil
}

// ErrUnavailable wraps every error of a read that did not succeed within
// its retry budget (or was refused by the open breaker).
var ErrUnavailable = errors.New("bigtable unavailable")

// ErrMisconfigured wraps a read Bigtable refused for a reason only an
// operator can fix: the instance or table does not exist, or the job's
// credentials may not read it. Such a read is not retried and does not open
// the breaker, and Enrich fails its bundle instead of dead-lettering: every
// event would otherwise become an ENRICH_UNAVAILABLE dead letter (or, with
// --enrich_on_unavailable=pass, be written unenriched for good) until the
// mistake is fixed, where a failed bundle leaves them in Pub/Sub, retried
// until the table exists or the grant takes effect. A job launched before
// its IAM grant has propagated recovers by itself.
var ErrMisconfigured = errors.New("bigtable refused the read (missing instance or table, or no permission)")

// misconfigured reports whether a failed read is ErrMisconfigured's kind.
// Not a call whose credentials could not be fetched (credentialsUnavailable):
// that is an outage, retried and then handled as one.
func misconfigured(err error) bool {
	switch status.Code(err) {
	case codes.NotFound, codes.PermissionDenied:
		return true
	case codes.Unauthenticated:
		return !credentialsUnavailable(err)
	}
	return false
}

// credentialsUnavailable reports whether err is gRPC's report of a call
// that never left the client because its per-RPC credentials could not be
// had: a token refresh that failed or timed out (the metadata server
// answering 503, a network blip, the attempt's deadline). gRPC reports it
// as Unauthenticated, "transport: per-RPC creds failed due to error: …",
// the code of the server's refusal of bad credentials, which only an
// operator can fix; this one passes by itself. It was taken for the
// latter, and one token refresh that hit a blip failed the bundle (on a
// local run, after the runner's retries, the job) instead of being retried.
func credentialsUnavailable(err error) bool {
	s, ok := status.FromError(err)
	return ok && s.Code() == codes.Unauthenticated && strings.Contains(s.Message(), "per-RPC creds failed")
}

// errBreakerOpen is the cause while the breaker is open.
var errBreakerOpen = errors.New("circuit open after a recent outage")

// Lookup reads users and campaigns by id through a bounded TTL cache, with
// batched ReadRows over row lists, retries and a breaker. It is safe for
// concurrent use. Enrich shares one per worker process and config.
type Lookup struct {
	cfg       Config
	client    *bigtable.Client
	close     func() error
	users     *bigtable.Table
	campaigns *bigtable.Table

	// nil values are answers too: "not in Bigtable" (negative caching, so
	// an unknown user does not cost a read in every batch).
	userCache     *ttlCache[*User]
	campaignCache *ttlCache[*Campaign]

	// Each table has its own breaker, the unix ns until which it refuses
	// reads: a failing table does not stop reads of the healthy one, and
	// a success of the healthy one does not close the failing one's.
	usersOpenUntil, campaignsOpenUntil atomic.Int64
}

// OpenLookup dials Bigtable and makes the caches. Dialing does not wait for a
// connection: an unreachable Bigtable shows as read errors, not here.
func OpenLookup(ctx context.Context, cfg Config) (*Lookup, error) {
	cfg = cfg.WithDefaults()
	client, closeFn, err := Dial(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return &Lookup{
		cfg: cfg, client: client, close: closeFn,
		users: client.Open(UsersTable), campaigns: client.Open(CampaignsTable),
		userCache:     newTTLCache[*User](cfg.CacheSize, cfg.CacheTTL),
		campaignCache: newTTLCache[*Campaign](cfg.CacheSize, cfg.CacheTTL),
	}, nil
}

// Close closes the client. The caches go with the Lookup.
func (l *Lookup) Close() error {
	l.userCache.Purge()
	l.campaignCache.Purge()
	return l.close()
}

// CacheLen is the number of entries in the user and campaign caches.
func (l *Lookup) CacheLen() (users, campaigns int) { return l.userCache.Len(), l.campaignCache.Len() }

// Stats are what one Resolve did. Keys are distinct ids.
type Stats struct {
	Hits, Misses, NotFound int64 // per key: answered by the cache, read from Bigtable, of those not in Bigtable
	Errors                 int64 // failed ReadRows attempts (each retry counts)
	Reads                  int64 // ReadRows calls that succeeded
	Latency                time.Duration
}

// Add sums s2 into s.
func (s *Stats) Add(s2 Stats) {
	s.Hits += s2.Hits
	s.Misses += s2.Misses
	s.NotFound += s2.NotFound
	s.Errors += s2.Errors
	s.Reads += s2.Reads
	s.Latency += s2.Latency
}

// Answers maps ids to what Bigtable holds: a nil value means not found; an
// id missing from the map was not answered (UsersErr or CampaignsErr says
// why).
type Answers struct {
	Users        map[string]*User
	Campaigns    map[string]*Campaign
	UsersErr     error
	CampaignsErr error
}

// Resolve answers every id of userIDs and campaignIDs (each distinct): from
// the cache where it can, the rest with one batched read per table, the two
// tables read concurrently. A read that fails past the retry budget leaves
// its ids unanswered and sets the table's error (wrapping ErrUnavailable,
// or ErrMisconfigured); Resolve itself never fails.
func (l *Lookup) Resolve(ctx context.Context, userIDs, campaignIDs []string) (Answers, Stats) {
	a := Answers{Users: make(map[string]*User, len(userIDs)), Campaigns: make(map[string]*Campaign, len(campaignIDs))}
	var st Stats
	var missUsers, missCampaigns []string
	for _, id := range userIDs {
		if u, ok := l.userCache.Get(id); ok {
			a.Users[id] = u
			st.Hits++
		} else {
			missUsers = append(missUsers, id)
		}
	}
	for _, id := range campaignIDs {
		if c, ok := l.campaignCache.Get(id); ok {
			a.Campaigns[id] = c
			st.Hits++
		} else {
			missCampaigns = append(missCampaigns, id)
		}
	}
	st.Misses = int64(len(missUsers) + len(missCampaigns))
	if st.Misses == 0 {
		return a, st
	}
	start := time.Now()
	var wg sync.WaitGroup
	var ust, cst Stats
	if len(missCampaigns) > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.CampaignsErr = readInto(ctx, l, l.campaigns, CampaignsTable, &l.campaignsOpenUntil, missCampaigns, campaignFromRow, l.campaignCache, a.Campaigns, &cst)
		}()
	}
	if len(missUsers) > 0 {
		a.UsersErr = readInto(ctx, l, l.users, UsersTable, &l.usersOpenUntil, missUsers, userFromRow, l.userCache, a.Users, &ust)
	}
	wg.Wait()
	st.Add(ust)
	st.Add(cst)
	st.Latency = time.Since(start)
	return a, st
}

// readInto reads ids from t and records every answer, found or not, in the
// cache and in out. On failure nothing of the failed read is recorded.
// openUntil is t's breaker.
func readInto[V any](ctx context.Context, l *Lookup, t *bigtable.Table, name string, openUntil *atomic.Int64, ids []string,
	decode func(bigtable.Row) V, cache *ttlCache[*V], out map[string]*V, st *Stats) error {
	// An open breaker refuses reads for its cooldown. After it, one caller
	// (the one that moves the deadline on) tries the table, and the others
	// are refused as before until its answer closes the breaker or opens it
	// again: every bundle of the worker shares this Lookup, and letting all
	// of them through at once made each pay a whole retry budget and sent
	// Bigtable, recovering or not, a burst of reads every cooldown.
	if until := openUntil.Load(); until != 0 {
		now := time.Now().UnixNano()
		if now < until || !openUntil.CompareAndSwap(until, now+int64(l.cfg.BreakerCooldown)) {
			return fmt.Errorf("%w: %s: %w", ErrUnavailable, name, errBreakerOpen)
		}
	}
	found := make(map[string]*V, len(ids))
	var mu sync.Mutex
	var errs atomic.Int64
	var reads atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(l.cfg.ReadConcurrency)
	for lo := 0; lo < len(ids); lo += l.cfg.MaxKeysPerRead {
		chunk := ids[lo:min(lo+l.cfg.MaxKeysPerRead, len(ids))]
		keys := make(bigtable.RowList, len(chunk))
		for i, id := range chunk {
			keys[i] = RowKey(id)
		}
		g.Go(func() error {
			return l.withRetry(gctx, &errs, func(actx context.Context) error {
				// Only the newest cell of each column: GC drops older
				// versions lazily, so a row may still hold them. (No family
				// filter: each table has one family, and the emulator
				// evaluates a family regex per cell.)
				var rows []*V
				var rowIDs []string
				err := t.ReadRows(actx, keys, func(r bigtable.Row) bool {
					v := decode(r)
					rows = append(rows, &v)
					rowIDs = append(rowIDs, IDOfRowKey(r.Key()))
					return true
				}, bigtable.RowFilter(bigtable.LatestNFilter(1)))
				if err != nil {
					return err
				}
				reads.Add(1)
				mu.Lock()
				for i, id := range rowIDs {
					found[id] = rows[i]
				}
				mu.Unlock()
				return nil
			})
		})
	}
	err := g.Wait()
	st.Errors += errs.Load()
	st.Reads += reads.Load()
	if err != nil {
		if misconfigured(err) {
			return fmt.Errorf("%w: read %d keys of %s: %w", ErrMisconfigured, len(ids), name, err)
		}
		// Open the breaker: the next reads fail at once for a cooldown.
		openUntil.Store(time.Now().Add(l.cfg.BreakerCooldown).UnixNano())
		return fmt.Errorf("%w: read %d keys of %s: %w", ErrUnavailable, len(ids), name, err)
	}
	openUntil.Store(0)
	for _, id := range ids {
		v := found[id] // nil: not found
		if v == nil {
			st.NotFound++
		}
		out[id] = v
		// The cache keeps its own copy of the id: an event's strings are
		// slices of its whole decoded batch (transforms.decodeEventBatch),
		// so a cached id would keep that batch alive, tens of kilobytes an
		// entry instead of a few bytes, and the cache's memory would no
		// longer be bounded by its size.
		cache.Add(strings.Clone(id), v)
	}
	return nil
}

// transient reports whether a failed read is worth retrying: the server or
// the network may answer next time.
func transient(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted, codes.Aborted, codes.Internal, codes.Unknown:
		return true
	}
	return credentialsUnavailable(err)
}

// withRetry runs read until it succeeds, a permanent error, or the retry
// budget is spent. Each attempt gets AttemptTimeout (the client library also
// retries inside an attempt); between attempts it sleeps an exponential
// backoff with full jitter, so many workers recovering at once do not hit
// Bigtable in lockstep.
func (l *Lookup) withRetry(ctx context.Context, errs *atomic.Int64, read func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, l.cfg.RetryBudget)
	defer cancel()
	backoff := l.cfg.InitialBackoff
	for {
		actx, acancel := context.WithTimeout(ctx, l.cfg.AttemptTimeout)
		err := read(actx)
		acancel()
		if err == nil {
			return nil
		}
		errs.Add(1)
		if !transient(err) || ctx.Err() != nil {
			return err
		}
		sleep := time.Duration(rand.Int64N(int64(backoff)) + 1)
		if dl, _ := ctx.Deadline(); time.Until(dl) <= sleep {
			return err
		}
		t := time.NewTimer(sleep)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		backoff = min(2*backoff, l.cfg.MaxBackoff)
	}
}

// shared holds one Lookup per config per process: every Enrich DoFn
// instance of a worker (Prism runs one per lane and stage) uses it, so the
// cache bound holds per process and its hits serve every lane. The lock
// guards the map and the entries' fields; it is never held while a client
// is opened or closed. On real Bigtable opening can block for half a
// minute when the endpoint does not answer, and every instance of the
// process, of any config, would wait on the lock for it.
var shared struct {
	sync.Mutex
	m map[Config]*sharedLookup
}

// sharedLookup is one config's Lookup, or the attempt to open it. One
// caller opens; the others of the same config wait on ready, so a slow or
// failing Bigtable costs one open at a time, not one per instance.
type sharedLookup struct {
	// ready is closed when the attempt has ended. Then exactly one of l
	// and err is set.
	ready chan struct{}
	l     *Lookup
	err   error
	// retryAt: a failed attempt's err answers every acquire until then
	// (the end of the attempt plus BreakerCooldown). The instances of a
	// worker then retry together, once a cooldown, not each on its own.
	retryAt time.Time
	refs    int
	// closed: CloseShared or the last release has closed l.
	closed bool
}

// openLookup opens a shared Lookup. Tests substitute a slow or failing one.
var openLookup = OpenLookup

// errOpenPanicked is a failed attempt's error when opening panicked, so
// its waiters do not wait forever.
var errOpenPanicked = errors.New("opening the Bigtable client panicked")

// CloseShared closes every Lookup that Enrich instances share in this
// process. The Go SDK harness does not call Teardown (it keeps its plans),
// so a process that runs pipelines in-process on Prism and goes on (the
// bench, tests, RunLocal) calls this after a run to free the clients and
// caches. On a worker the shared Lookup lives as long as the worker, which is
// what a cache wants. An attempt still in flight is dropped from the map:
// its acquirers get its Lookup, and the last release closes it.
func CloseShared() {
	var toClose []*Lookup
	shared.Lock()
	for cfg, s := range shared.m {
		if s.l != nil && !s.closed {
			s.closed = true
			toClose = append(toClose, s.l)
		}
		delete(shared.m, cfg)
	}
	shared.Unlock()
	for _, l := range toClose {
		l.Close()
	}
}

// acquireLookup returns the process's Lookup for cfg, opening it on first use.
// Call the returned release exactly once. Only the caller that starts an
// attempt opens; the others wait for it, or for ctx. A failed attempt's
// error is returned again, without a new attempt, until its retryAt.
func acquireLookup(ctx context.Context, cfg Config) (*Lookup, func(), error) {
	cfg = cfg.WithDefaults()
	shared.Lock()
	if shared.m == nil {
		shared.m = map[Config]*sharedLookup{}
	}
	s := shared.m[cfg]
	opener := s == nil
	if opener {
		s = &sharedLookup{ready: make(chan struct{})}
		shared.m[cfg] = s
	}
	shared.Unlock()
	for {
		if opener {
			s.open(ctx, cfg)
		} else {
			select {
			case <-s.ready:
			case <-ctx.Done():
				return nil, nil, ctx.Err()
			}
		}
		shared.Lock()
		switch {
		case s.err == nil && !s.closed:
			s.refs++
			shared.Unlock()
			return s.l, s.release(cfg), nil
		case s.err != nil && (opener || time.Now().Before(s.retryAt)):
			err := s.err
			shared.Unlock()
			return nil, nil, err
		}
		// The failure is older than its cooldown, or the Lookup was closed
		// (its last release, or CloseShared) after this caller found it:
		// start again, unless another caller already has (then wait for
		// its attempt).
		if cur := shared.m[cfg]; cur != nil && cur != s {
			s, opener = cur, false
		} else {
			s, opener = &sharedLookup{ready: make(chan struct{})}, true
			shared.m[cfg] = s
		}
		shared.Unlock()
	}
}

// open runs s's attempt, without the lock, and records its end.
func (s *sharedLookup) open(ctx context.Context, cfg Config) {
	var l *Lookup
	err := errOpenPanicked
	defer func() {
		shared.Lock()
		defer shared.Unlock()
		s.l, s.err = l, err
		if err != nil {
			s.retryAt = time.Now().Add(cfg.BreakerCooldown)
			if ctx.Err() != nil {
				// The opener gave up, Bigtable did not fail: whoever waits
				// tries at once.
				s.retryAt = time.Time{}
			}
		}
		close(s.ready)
	}()
	l, err = openLookup(ctx, cfg)
}

// release returns a func that gives one reference to s back. The last one
// closes the Lookup (unless CloseShared has) and removes s from the map if
// it is still there: after CloseShared the map may hold a newer entry.
func (s *sharedLookup) release(cfg Config) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			shared.Lock()
			s.refs--
			last := s.refs == 0 && !s.closed
			if s.refs == 0 {
				s.closed = true
				if shared.m[cfg] == s {
					delete(shared.m, cfg)
				}
			}
			shared.Unlock()
			if last {
				s.l.Close()
			}
		})
	}
}
