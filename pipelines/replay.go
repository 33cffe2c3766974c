package pipelines

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"cloud.google.com/go/pubsub/v2"

	"github.com/campaignpulse/campaignpulse/transforms"
)

// ReplayFilter selects the dead letters to send through the pipeline again.
// Codes is required: most codes are permanent (a malformed payload fails the
// same way every time), so a replay names the transient ones it means, such
// as ENRICH_UNAVAILABLE, or a code a newer pipeline now accepts.
type ReplayFilter struct {
	Codes []string  // error codes to replay (docs/event-schema.md)
	Stage string    // only this stage, if set
	Since time.Time // only dead letters processed at or after this, if set
	// SkipSynthetic leaves out the dead letters of the generator's
	// synthetic events (source "generator"), which must never reach a real
	// Pub/Sub topic: cmd/replay sets it when it publishes anywhere but the
	// emulator.
	SkipSynthetic bool
}

// ReplayCounts is what a replay read and sent.
type ReplayCounts struct {
	Selected int // dead letters the filter matched
	Sent     int // payloads written or published
	// Truncated dead letters kept only their payload's first MiB (payload_bytes
	// is larger): replaying them would send a different payload, so they are
	// skipped.
	Truncated int
	// NotOneLine payloads are neither JSON nor free of line breaks: a
	// JSON-lines file cannot carry them (Pub/Sub can).
	NotOneLine int
	// Repeats are dead letters of an event (or, without an event id, of a
	// source record) that an earlier selected dead letter already replays:
	// a row the at-least-once sink wrote again, or a sender's retry that
	// Validate rejected once per copy, before Dedup. Each would be sent
	// under its own replay_of, which Dedup takes for another event.
	Repeats int
	// InFacts are dead letters whose event is in fact_marketing_events
	// already: replayed before (the dead letters stay), or also written
	// valid by a retried bundle. Sent again, the event would be counted
	// twice: Dedup does not remember an earlier run's events.
	InFacts int
	// Synthetic are the generator's dead letters left out by
	// ReplayFilter.SkipSynthetic.
	Synthetic int
}

func (c ReplayCounts) String() string {
	return fmt.Sprintf("selected=%d sent=%d skipped_truncated=%d skipped_not_one_line=%d skipped_repeats=%d skipped_in_facts=%d skipped_synthetic=%d",
		c.Selected, c.Sent, c.Truncated, c.NotOneLine, c.Repeats, c.InFacts, c.Synthetic)
}

// ReplayStats is the running count of the replays of this process, for
// progress lines: dead letters read (selected, truncated ones too) and
// payloads written or published.
var ReplayStats struct{ Read, Sent atomic.Int64 }

// ReplayPayload is one dead letter to replay.
type ReplayPayload struct {
	ErrorCode   string
	EventID     string // "" when the stage could not read it
	Payload     []byte
	ProcessedAt time.Time // when the pipeline dead-lettered it
}

// ReplayOfAttribute is the Pub/Sub attribute that marks a replayed dead
// letter (transforms.Message.ReplayOf): its value names the dead letter, so
// that Dedup tells the replay from the first copy the running job has seen
// (see transforms.Event.DedupHash).
const ReplayOfAttribute = "replay_of"

// replayOf names a dead letter for ReplayOfAttribute: the time it was
// dead-lettered, which with its event id tells it from any other.
func (p ReplayPayload) replayOf() string { return p.ProcessedAt.UTC().Format(time.RFC3339Nano) }

// ReadDeadLetters reads the dead letters the filter selects from the DuckDB
// warehouse at path (readWarehouse), oldest first, and calls fn with each
// whole payload; it counts, and does not pass, truncated ones, repeats
// (ReplayCounts.Repeats: only the first-rejected dead letter of an event id,
// or of a source record's message id, is replayed, so replaying twice still
// sends the same replay_of), those whose event is already a fact (so a
// replay run twice does not count its events twice) and, if the filter says
// so, synthetic ones. An unknown code or stage is an error, not an empty
// replay.
func ReadDeadLetters(ctx context.Context, path string, f ReplayFilter, fn func(ReplayPayload) error) (ReplayCounts, error) {
	var n ReplayCounts
	if len(f.Codes) == 0 {
		return n, errors.New("replay: name the error codes to replay (most codes fail again the same way)")
	}
	for _, code := range f.Codes {
		if _, ok := transforms.ErrorCodes[code]; !ok {
			return n, fmt.Errorf("replay: unknown error code %q (docs/event-schema.md lists them)", code)
		}
	}
	if f.Stage != "" && !slices.Contains(slices.Collect(maps.Values(transforms.ErrorCodes)), f.Stage) {
		return n, fmt.Errorf("replay: unknown stage %q (parse, validate, enrich or sink)", f.Stage)
	}
	if _, err := os.Stat(path); err != nil {
		return n, fmt.Errorf("replay: warehouse: %w", err)
	}
	db, closeDB, err := readWarehouse(path)
	if err != nil {
		return n, fmt.Errorf("replay: open %s: %w", path, err)
	}
	defer closeDB()
	args := make([]any, 0, len(f.Codes)+2)
	marks := make([]string, len(f.Codes))
	for i, code := range f.Codes {
		marks[i] = "?"
		args = append(args, code)
	}
	// A record is its event id, else its source's message id (a warehouse
	// an older build wrote may lack the column: then each row is its own);
	// rowid keeps the rows with neither apart.
	record := "coalesce(event_id, 'row ' || rowid::varchar)"
	var hasMessageID bool
	if err := db.QueryRowContext(ctx, `SELECT count(*) > 0 FROM information_schema.columns
		WHERE table_name = ? AND column_name = 'message_id'`, transforms.TableDeadLetters).Scan(&hasMessageID); err != nil {
		return n, fmt.Errorf("replay: read dead letters: %w", err)
	}
	if hasMessageID {
		record = "coalesce(event_id, source || ' ' || message_id, 'row ' || rowid::varchar)"
	}
	where := " WHERE error_code IN (" + strings.Join(marks, ", ") + ")"
	if f.Stage != "" {
		where += " AND stage = ?"
		args = append(args, f.Stage)
	}
	if !f.Since.IsZero() {
		where += " AND processing_timestamp >= ?"
		args = append(args, f.Since.UTC())
	}
	// The generator's events are synthetic; its records are named by it.
	query := "SELECT error_code, event_id, payload, payload_bytes, processing_timestamp, copies, " +
		"coalesce(event_id IN (SELECT event_id FROM " + transforms.TableEvents + "), false) AS in_facts, " +
		"coalesce(source = 'generator', false) AS synthetic FROM (" +
		"SELECT *, row_number() OVER (PARTITION BY " + record + " ORDER BY processing_timestamp, rowid) AS copy_rank, " +
		"count(*) OVER (PARTITION BY " + record + ") AS copies FROM " + transforms.TableDeadLetters + where +
		") WHERE copy_rank = 1 ORDER BY processing_timestamp"
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return n, fmt.Errorf("replay: read dead letters: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var p ReplayPayload
		var id sql.NullString
		var size, copies int64
		var inFacts, synthetic bool
		if err := rows.Scan(&p.ErrorCode, &id, &p.Payload, &size, &p.ProcessedAt, &copies, &inFacts, &synthetic); err != nil {
			return n, fmt.Errorf("replay: read dead letters: %w", err)
		}
		p.EventID = id.String
		n.Selected += int(copies)
		n.Repeats += int(copies) - 1
		ReplayStats.Read.Add(copies)
		switch {
		case synthetic && f.SkipSynthetic:
			n.Synthetic++
			continue
		case inFacts:
			n.InFacts++
			continue
		case size > int64(len(p.Payload)):
			n.Truncated++
			continue
		}
		if err := fn(p); err != nil {
			return n, err
		}
	}
	return n, rows.Err()
}

// ReplayLine returns payload as one line of a JSON-lines file, the input of
// --source=file: JSON compacted (a pretty-printed payload holds line breaks
// outside its strings), anything else as it is when it has no line break.
// ok is false when the payload cannot be one line.
func ReplayLine(payload []byte) (line []byte, ok bool) {
	if json.Valid(payload) {
		var b bytes.Buffer
		if json.Compact(&b, payload) == nil {
			return b.Bytes(), true
		}
	}
	if bytes.ContainsAny(payload, "\r\n") {
		return nil, false
	}
	return payload, true
}

// ReplayToFile writes the selected dead letters' payloads to w as JSON
// lines, for campaignpulse --source=file.
func ReplayToFile(ctx context.Context, warehouse string, f ReplayFilter, w io.Writer) (ReplayCounts, error) {
	var notOneLine, sent int
	n, err := ReadDeadLetters(ctx, warehouse, f, func(p ReplayPayload) error {
		line, ok := ReplayLine(p.Payload)
		if !ok {
			notOneLine++
			return nil
		}
		if _, err := w.Write(append(line, '\n')); err != nil {
			return err
		}
		sent++
		ReplayStats.Sent.Add(1)
		return nil
	})
	n.NotOneLine, n.Sent = notOneLine, sent
	return n, err
}

// ReplayToPubSub publishes the selected dead letters' payloads, byte for
// byte, to topic (an id in the client's project), with the attributes the
// production source reads (the event id and event time, taken from the
// payload when it parses), and waits for every result.
//
// The topic feeds the running job, which has already seen the ids of the
// events it dead-lettered after Dedup (Enrich's ENRICH_UNAVAILABLE). So each
// message also names its dead letter (ReplayOfAttribute), which Dedup adds to
// the event's identity, and its id attribute, which Dataflow deduplicates
// on for about 10 minutes, is the event id with that name: the replay is not
// dropped as a repeat of its first copy, and two replays of one dead letter
// are still repeats of each other.
func ReplayToPubSub(ctx context.Context, warehouse string, f ReplayFilter, client *pubsub.Client, topic string, ps PubSubConfig) (ReplayCounts, error) {
	pub := boundedPublisher(client, topic, replayOutstanding)
	results := newResultCollector(replayOutstanding, &ReplayStats.Sent, nil)
	n, err := ReadDeadLetters(ctx, warehouse, f, func(p ReplayPayload) error {
		replayOf := p.replayOf()
		msg := &pubsub.Message{Data: p.Payload, Attributes: map[string]string{"source": "replay", ReplayOfAttribute: replayOf}}
		if ev, rej := transforms.Parse(transforms.Message{Data: p.Payload}, len(p.Payload)+1); rej == nil {
			ts, err := transforms.ParseRFC3339(ev.Timestamp)
			timeAttr := ps.TimestampAttribute
			if err != nil {
				timeAttr = "" // the id still goes; the event time only when it parses
			}
			setEventAttributes(msg.Attributes, ps.IDAttribute, timeAttr, ev.EventID+" replay_of "+replayOf, ts)
		}
		results.add(pub.Publish(ctx, msg))
		return nil
	})
	pub.Stop()
	published, failed, perr := results.wait()
	n.Sent = int(published)
	if err == nil && failed > 0 {
		err = fmt.Errorf("replay: %d of %d messages to %s failed, the first with: %w", failed, published+failed, topic, perr)
	}
	return n, err
}

// replayOutstanding bounds the messages a replay to Pub/Sub holds unsent and
// the results it holds uncollected (boundedPublisher, resultCollector): a
// replay reads dead letters as fast as DuckDB returns them, and without a
// bound would hold every payload in memory while Pub/Sub catches up.
// A variable so that tests can lower it.
var replayOutstanding = 10_000

// readWarehouse returns a handle to read the DuckDB file at path: the
// pipeline's own when this process has the file open (DuckDB refuses a second
// handle with other settings in one process), else one opened read-only, so
// that reading never changes the file.
func readWarehouse(path string) (*sql.DB, func() error, error) {
	warehouses.Lock()
	w := sharedLocked(path)
	warehouses.Unlock()
	if w != nil {
		return w.db, w.Release, nil
	}
	c, err := duckDBConnector(path + "?access_mode=read_only")
	if err != nil {
		return nil, nil, err
	}
	db := sql.OpenDB(c)
	return db, db.Close, nil
}
