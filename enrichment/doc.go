// Package enrichment is the Bigtable side-lookup of Campaign Pulse: it adds
// each event's user profile and campaign to the event (Enrich), from the
// tables that Layout defines and Seed fills.
//
// Why it is shaped this way: events arrive in batches (transforms.EventBatch),
// so a batch costs one pass over a bounded TTL cache and, for the keys the
// cache misses, one ReadRows over a row list per table, not a round trip per
// event. Bigtable being slow or down must neither crash a worker nor lose an
// event: reads retry with backoff inside a budget, then the outage rule
// (dead letter or pass on, flagged) decides, and a breaker keeps a long
// outage from costing the budget on every batch.
package enrichment
