// Package enrichment will hold the Bigtable side-lookup (batched reads, a
// bounded TTL cache, retries, outage behaviour). It is not built yet: see the
// enrichment issue. The pipeline runs without enrichment until then.
package enrichment
