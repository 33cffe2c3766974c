package enrichment

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/log"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/campaignpulse/campaignpulse/transforms"
)

func init() {
	register.DoFn5x1[context.Context, beam.EventTime, transforms.EventBatch, func(beam.EventTime, transforms.EventBatch), func(beam.EventTime, transforms.DeadLetter), error](&enrichFn{})
	register.Emitter2[beam.EventTime, transforms.EventBatch]()
	register.Emitter2[beam.EventTime, transforms.DeadLetter]()
}

// Counter names, all under transforms.Namespace; the run summary reads them.
const (
	CounterHits            = "enrich_cache_hits"      // distinct keys of a batch answered by the cache
	CounterMisses          = "enrich_cache_misses"    // distinct keys read from Bigtable
	CounterNotFound        = "enrich_not_found"       // of the misses, keys Bigtable does not hold
	CounterErrors          = "enrich_errors"          // failed ReadRows attempts, retries included
	CounterEnriched        = "enrich_events_enriched" // events that left with status enriched
	CounterUserUnknown     = "enrich_events_user_unknown"
	CounterCampaignUnknown = "enrich_events_campaign_unknown"
	CounterUnavailable     = "enrich_events_unavailable"        // events Bigtable did not answer for (passed or dead-lettered)
	CounterDeadLetter      = transforms.CounterDeadLetterEnrich // of those, dead-lettered
	DistributionLatency    = "enrich_lookup_latency_us"         // per batch that needed a read
)

var (
	counterHits            = beam.NewCounter(transforms.Namespace, CounterHits)
	counterMisses          = beam.NewCounter(transforms.Namespace, CounterMisses)
	counterNotFound        = beam.NewCounter(transforms.Namespace, CounterNotFound)
	counterErrors          = beam.NewCounter(transforms.Namespace, CounterErrors)
	counterEnriched        = beam.NewCounter(transforms.Namespace, CounterEnriched)
	counterUserUnknown     = beam.NewCounter(transforms.Namespace, CounterUserUnknown)
	counterCampaignUnknown = beam.NewCounter(transforms.Namespace, CounterCampaignUnknown)
	counterUnavailable     = beam.NewCounter(transforms.Namespace, CounterUnavailable)
	counterDeadLetter      = beam.NewCounter(transforms.Namespace, CounterDeadLetter)
	distLatency            = beam.NewDistribution(transforms.Namespace, DistributionLatency)
)

// Enrich adds each event's user and campaign context from Bigtable. Batches
// in, batches out, each output batch at its input batch's timestamp.
//
// Batches that Dedup emits can be small (a bundle's events split over its
// keys), and a lookup costs a round trip however few keys it carries, so
// Enrich gathers the batches of a bundle into micro-batches of up to
// cfg.MicroBatchEvents events: one cache pass and at most one ReadRows per
// table (chunked past MaxKeysPerRead) for the keys the cache misses. Because
// it may emit a batch after its input element (at the end of the bundle), its
// input must be in the global window, as Dedup's output is.
//
// A user or campaign Bigtable does not hold is not an error: the event goes on
// enriched, with user_found or campaign_found false and "unknown" attributes.
// When Bigtable does not answer within cfg.RetryBudget, cfg.OnUnavailable
// decides: "deadletter" sends each event that needed the missing answer to
// deadLetters with ENRICH_UNAVAILABLE and the event as replayable JSON;
// "pass" sends it on with status unavailable. Events whose answers the cache
// held are enriched even then. Either way every event leaves by exactly one
// output. A read Bigtable refuses (no such instance or table, no permission:
// ErrMisconfigured) fails the bundle instead: that is a deployment to fix,
// not an outage to ride out, and the runner retries the bundle until it is
// fixed, the events still unread at the source.
//
// Enrich owns its input: it fills in and compacts the batches it is given
// rather than copying every event, so batches must have no other consumer
// (in Build they are Dedup's output, which feeds Enrich alone).
func Enrich(s beam.Scope, cfg Config, batches beam.PCollection) (enriched, deadLetters beam.PCollection) {
	s = s.Scope("Enrich")
	return beam.ParDo2(s, &enrichFn{Cfg: cfg.WithDefaults()}, batches)
}

// enrichFn is the structural DoFn of Enrich. The Lookup (client and caches)
// is the process's shared one for Cfg, taken in Setup and given back in
// Teardown. Counters are summed per bundle and reported in FinishBundle.
type enrichFn struct {
	Cfg Config

	lookup  *Lookup
	release func()
	retryAt time.Time // when to try opening the client again after a failure

	pending       []pendingBatch // the micro-batch being gathered
	pendingEvents int
	reported      bool // the counters were named in this bundle

	st                                                                Stats
	enriched, userUnknown, campaignUnknown, unavailable, deadLettered int64
}

func (f *enrichFn) Setup(ctx context.Context) {
	f.open(ctx)
}

// open takes the shared Lookup. A failure (bad credentials, say) is not fatal:
// the batches go by the outage rule and opening is tried again later.
func (f *enrichFn) open(ctx context.Context) {
	if f.lookup != nil || time.Now().Before(f.retryAt) {
		return
	}
	l, release, err := acquireLookup(ctx, f.Cfg)
	if err != nil {
		log.Errorf(ctx, "enrich: cannot open Bigtable %s/%s: %v", f.Cfg.Project, f.Cfg.Instance, err)
		f.retryAt = time.Now().Add(f.Cfg.BreakerCooldown)
		f.st.Errors++
		return
	}
	f.lookup, f.release = l, release
}

// Teardown gives the shared Lookup back (the last one out closes it). The
// Go SDK harness may never call it; see CloseShared.
func (f *enrichFn) Teardown() {
	if f.release != nil {
		f.release()
		f.lookup, f.release = nil, nil
	}
}

type pendingBatch struct {
	ts    beam.EventTime
	batch transforms.EventBatch
}

func (f *enrichFn) ProcessElement(ctx context.Context, ts beam.EventTime, batch transforms.EventBatch,
	emit func(beam.EventTime, transforms.EventBatch), dead func(beam.EventTime, transforms.DeadLetter)) error {
	if !f.reported {
		// Name every counter early in the bundle (zeros), so they appear in
		// Prism's first progress report: Prism keeps only one payload per
		// not-yet-known metric id, so counters that first show up in the final
		// reports of two concurrent bundles (a split one and its residual)
		// lose one bundle's counts.
		f.report(ctx)
		f.reported = true
	}
	if len(batch.Events) == 0 {
		return nil
	}
	f.pending = append(f.pending, pendingBatch{ts, batch})
	f.pendingEvents += len(batch.Events)
	if f.pendingEvents >= f.Cfg.MicroBatchEvents {
		return f.flush(ctx, emit, dead)
	}
	return nil
}

// flush enriches the gathered batches with one Resolve and emits them. It
// fails (and so does the bundle) only when Bigtable refused a read
// (ErrMisconfigured).
func (f *enrichFn) flush(ctx context.Context, emit func(beam.EventTime, transforms.EventBatch), dead func(beam.EventTime, transforms.DeadLetter)) error {
	if len(f.pending) == 0 {
		return nil
	}
	userIDs, campaignIDs := distinctIDs(f.pending)
	var a Answers
	f.open(ctx)
	if f.lookup != nil {
		var st Stats
		a, st = f.lookup.Resolve(ctx, userIDs, campaignIDs)
		f.st.Add(st)
		if st.Misses > 0 {
			distLatency.Update(ctx, st.Latency.Microseconds())
		}
	} else {
		err := fmt.Errorf("%w: no client", ErrUnavailable)
		a = Answers{UsersErr: err, CampaignsErr: err}
	}
	for _, err := range []error{a.UsersErr, a.CampaignsErr} {
		if errors.Is(err, ErrMisconfigured) {
			// The bundle fails and its retry starts afresh: nothing of
			// this one's may be emitted later.
			f.dropPending()
			f.report(ctx)
			return fmt.Errorf("enrich: %w", err)
		}
	}
	now := time.Now().UnixMilli()
	for _, p := range f.pending {
		// Enrich fills in the batches Dedup built and compacts them in
		// place: Dedup's output has no consumer but this one, and a copy of
		// every event (about 500 bytes) was the largest allocation of an
		// enriched run, paid again in garbage collection.
		events, kept := p.batch.Events, 0
		// One block of contexts per batch, not one per event: the events
		// point into it, and it lives as long as the batch does.
		contexts := make([]transforms.Enrichment, len(events))
		keep := func(i int) { // moves event i to the next kept place
			if kept != i {
				events[kept] = events[i]
			}
			kept++
		}
		for i := range events {
			ev := &events[i]
			u, uok := a.Users[ev.UserID]
			c, cok := a.Campaigns[ev.CampaignID]
			if !uok || !cok {
				f.unavailable++
				if f.Cfg.OnUnavailable == OnUnavailablePass {
					x := &contexts[i]
					x.Status = transforms.EnrichUnavailable
					ev.Enrichment = x
					keep(i)
					continue
				}
				f.deadLettered++
				dead(p.ts, unavailableDeadLetter(ev, firstErr(a.UsersErr, a.CampaignsErr, uok), now))
				continue
			}
			x := &contexts[i]
			x.Status = transforms.EnrichOK
			setUser(x, u)
			setCampaign(x, c)
			ev.Enrichment = x
			f.enriched++
			if u == nil {
				f.userUnknown++
			}
			if c == nil {
				f.campaignUnknown++
			}
			keep(i)
		}
		if kept > 0 {
			emit(p.ts, transforms.EventBatch{Events: events[:kept]})
		}
	}
	f.dropPending()
	f.report(ctx)
	return nil
}

// dropPending empties the micro-batch, dropping its references to the input
// batches.
func (f *enrichFn) dropPending() {
	clear(f.pending)
	f.pending, f.pendingEvents = f.pending[:0], 0
}

func firstErr(usersErr, campaignsErr error, userAnswered bool) error {
	if !userAnswered && usersErr != nil {
		return usersErr
	}
	if campaignsErr != nil {
		return campaignsErr
	}
	if usersErr != nil {
		return usersErr
	}
	return ErrUnavailable
}

func (f *enrichFn) FinishBundle(ctx context.Context, emit func(beam.EventTime, transforms.EventBatch), dead func(beam.EventTime, transforms.DeadLetter)) error {
	err := f.flush(ctx, emit, dead)
	f.report(ctx)
	f.reported = false
	return err
}

// report adds what the DoFn counted since the last report to the counters.
// It runs after every micro-batch, not only at the end of the bundle: Prism
// splits a bundle that stalls (as one does while Bigtable is retried), and
// counts held back to FinishBundle were seen to go missing then (see
// ProcessElement).
func (f *enrichFn) report(ctx context.Context) {
	counterHits.Inc(ctx, f.st.Hits)
	counterMisses.Inc(ctx, f.st.Misses)
	counterNotFound.Inc(ctx, f.st.NotFound)
	counterErrors.Inc(ctx, f.st.Errors)
	counterEnriched.Inc(ctx, f.enriched)
	counterUserUnknown.Inc(ctx, f.userUnknown)
	counterCampaignUnknown.Inc(ctx, f.campaignUnknown)
	counterUnavailable.Inc(ctx, f.unavailable)
	counterDeadLetter.Inc(ctx, f.deadLettered)
	f.st = Stats{}
	f.enriched, f.userUnknown, f.campaignUnknown, f.unavailable, f.deadLettered = 0, 0, 0, 0, 0
}

// distinctIDs returns the distinct user and campaign ids of the batches.
func distinctIDs(batches []pendingBatch) (users, campaigns []string) {
	seenU := make(map[string]struct{}, 1024)
	seenC := make(map[string]struct{}, 64)
	for _, p := range batches {
		for i := range p.batch.Events {
			ev := &p.batch.Events[i]
			if _, ok := seenU[ev.UserID]; !ok {
				seenU[ev.UserID] = struct{}{}
				users = append(users, ev.UserID)
			}
			if _, ok := seenC[ev.CampaignID]; !ok {
				seenC[ev.CampaignID] = struct{}{}
				campaigns = append(campaigns, ev.CampaignID)
			}
		}
	}
	return users, campaigns
}

// unavailableDeadLetter is the dead letter of an event Bigtable did not
// answer for. ValidateSchema has dropped the raw payload of a valid event by
// now, so the payload is the event re-encoded in the contract's JSON: the
// replay tool feeds it back through ParseEvents like any other record.
func unavailableDeadLetter(ev *transforms.Event, cause error, now int64) transforms.DeadLetter {
	payload, err := transforms.EventJSON(ev)
	if err != nil {
		payload = nil // cannot happen for a valid event; the row still says which one
	}
	var publish int64
	if ev.IngestTime != ev.EventTime {
		publish = ev.IngestTime // the source's arrival time; equal to event time when it had none
	}
	return transforms.DeadLetter{
		Stage:           transforms.StageEnrich,
		ErrorCode:       transforms.CodeEnrichUnavailable,
		ErrorMessage:    cause.Error(),
		EventID:         ev.EventID,
		Payload:         payload,
		Source:          ev.Source,
		PublishTime:     publish,
		ProcessingTime:  now,
		PipelineVersion: transforms.PipelineVersion,
		Delivery:        ev.Delivery,
	}
}
