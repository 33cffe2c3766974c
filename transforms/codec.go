package transforms

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"sync"
	"unsafe"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/klauspost/compress/zstd"
)

// Events cross shuffles (in EventBatch) by the million, so they get a compact
// hand-written binary coder instead of the reflective schema coder: about a
// third of the bytes and no reflection on the hot path. Field order is the
// wire format; append new fields at the end.
func init() {
	beam.RegisterCoder(reflect.TypeOf((*Event)(nil)).Elem(), encodeEvent, decodeEvent)
	beam.RegisterCoder(reflect.TypeOf((*EventBatch)(nil)).Elem(), encodeEventBatch, decodeEventBatch)
}

const codecVersion = 2

var errShortBuffer = errors.New("transforms: truncated event encoding")

const (
	flagEngagement = 1 << iota
	flagConversion
	flagLate
	flagTooLate
	// flagMessageID: Event.MessageID follows the enrichment. A flag, not a
	// new codec version: an event without one (every event past Validate)
	// encodes as before, and batches written by an older build still read.
	flagMessageID
	// flagDelivery: Event.Delivery follows, the same way (only the events
	// of a source that settles have one).
	flagDelivery
	// flagReadWatermark: Event.ReadWatermark follows (only events of the
	// native Pub/Sub source, and only until ClassifyLateness, which runs
	// fused with the source: encoded should a runner ever cut between).
	flagReadWatermark
)

func encodeEvent(e Event) []byte {
	return appendEvent(make([]byte, 0, 160+len(e.Raw)), &e)
}

func decodeEvent(b []byte) (Event, error) {
	var e Event
	r := reader{s: string(b)}
	readEvent(&r, &e)
	return e, r.err
}

// A batch crosses a shuffle compressed: zstd at its fastest level shrinks a
// batch of generated events from 145 to 41 bytes an event for about a
// microsecond of CPU an event, and everything the runner does with the
// bytes (Prism keeps a stateful stage's pending input in memory and copies
// it into each bundle) shrinks with them. The decoder refuses to inflate a
// batch past maxBatchBytes, so a corrupt element cannot exhaust memory.
const (
	batchPlain    = codecVersion
	batchZstd     = codecVersion | 0x80
	maxBatchBytes = 256 << 20
)

var (
	zstdEncoder = mustZstd(zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithLowerEncoderMem(true)))
	zstdDecoder = mustZstd(zstd.NewReader(nil, zstd.WithDecoderMaxMemory(maxBatchBytes)))
)

func mustZstd[T any](v T, err error) T {
	if err != nil {
		panic(err) // only for invalid options: a programming error
	}
	return v
}

// bodyPool holds the uncompressed bodies encodeEventBatch builds: a body
// (about 145 bytes an event) is garbage once compressed, and allocating one a
// batch was 314 MB of a 1M-event run's allocation.
var bodyPool = sync.Pool{New: func() any { return new([]byte) }}

func encodeEventBatch(b EventBatch) []byte {
	pooled := bodyPool.Get().(*[]byte)
	body := slices.Grow((*pooled)[:0], binary.MaxVarintLen64+len(b.Events)*160)
	body = binary.AppendUvarint(body, uint64(len(b.Events)))
	for i := range b.Events {
		body = appendEvent(body, &b.Events[i])
	}
	out := make([]byte, 1, 1+len(body)/3)
	out[0] = batchZstd
	out = zstdEncoder.EncodeAll(body, out)
	if cap(body) <= maxPooledBody {
		*pooled = body
		bodyPool.Put(pooled)
	}
	return out
}

// maxPooledBody bounds the bodies bodyPool keeps: a batch of a few large
// dead-letter payloads should not stay in memory.
const maxPooledBody = 4 << 20

func decodeEventBatch(b []byte) (EventBatch, error) {
	if len(b) < 1 {
		return EventBatch{}, errors.New("transforms: empty event batch encoding")
	}
	// One string holds the whole batch: every string field of every event
	// is a slice of it, one allocation a batch instead of one a field. So
	// whatever keeps an event's string past the event (the enrichment
	// cache, an aggregate's currency) keeps a copy (strings.Clone), or it
	// keeps the whole batch alive.
	var r reader
	switch b[0] {
	case batchPlain:
		r.s = string(b[1:]) // a copy: b is the runner's
	case batchZstd:
		body, err := zstdDecoder.DecodeAll(b[1:], nil)
		if err != nil {
			return EventBatch{}, fmt.Errorf("transforms: event batch: %w", err)
		}
		// body is new and nothing else refers to it or writes to it:
		// the string takes it over instead of copying it.
		r.s = unsafe.String(unsafe.SliceData(body), len(body))
	default:
		return EventBatch{}, errors.New("transforms: unknown event batch encoding")
	}
	size := len(r.s)
	n := r.uvarint()
	if r.err != nil || n > uint64(size) {
		return EventBatch{}, errShortBuffer
	}
	out := EventBatch{Events: make([]Event, n)}
	for i := range out.Events {
		if readEvent(&r, &out.Events[i]); r.err != nil {
			return EventBatch{}, r.err
		}
	}
	return out, nil
}

// reader decodes the wire format from a string. The first error sticks and
// every later read returns zero values.
type reader struct {
	s   string
	err error
}

func (r *reader) fail() { r.err, r.s = errShortBuffer, "" }

func (r *reader) byte() byte {
	if len(r.s) < 1 {
		r.fail()
		return 0
	}
	c := r.s[0]
	r.s = r.s[1:]
	return c
}

func (r *reader) uvarint() uint64 {
	var x uint64
	for i := 0; i < binary.MaxVarintLen64; i++ {
		if i >= len(r.s) {
			break
		}
		c := r.s[i]
		if c < 0x80 {
			if i == binary.MaxVarintLen64-1 && c > 1 {
				break // overflows 64 bits
			}
			r.s = r.s[i+1:]
			return x | uint64(c)<<(7*i)
		}
		x |= uint64(c&0x7f) << (7 * i)
	}
	r.fail()
	return 0
}

func (r *reader) varint() int64 {
	ux := r.uvarint()
	x := int64(ux >> 1)
	if ux&1 != 0 {
		x = ^x
	}
	return x
}

func (r *reader) float64() float64 {
	if len(r.s) < 8 {
		r.fail()
		return 0
	}
	var v uint64
	for i := 7; i >= 0; i-- {
		v = v<<8 | uint64(r.s[i])
	}
	r.s = r.s[8:]
	return math.Float64frombits(v)
}

func (r *reader) str() string {
	n := r.uvarint()
	if r.err != nil {
		return ""
	}
	if n > uint64(len(r.s)) {
		r.fail()
		return ""
	}
	v := r.s[:n]
	r.s = r.s[n:]
	return v
}

func appendEvent(b []byte, e *Event) []byte {
	var flags byte
	if e.HasEngagementScore {
		flags |= flagEngagement
	}
	if e.HasConversionValue {
		flags |= flagConversion
	}
	if e.Late {
		flags |= flagLate
	}
	if e.TooLate {
		flags |= flagTooLate
	}
	if e.MessageID != "" {
		flags |= flagMessageID
	}
	if e.Delivery != 0 {
		flags |= flagDelivery
	}
	if e.ReadWatermark != 0 {
		flags |= flagReadWatermark
	}
	b = append(b, flags)
	for _, s := range [...]string{e.EventID, e.EventType, e.UserID, e.CampaignID, e.Platform, e.AdID,
		e.Currency, e.UTMSource, e.UTMMedium, e.UTMCampaign, e.UTMTerm, e.UTMContent, e.SchemaVersion,
		e.Timestamp, e.Source, e.ReplayOf} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	b = binary.AppendVarint(b, e.EventTime)
	b = binary.AppendVarint(b, e.IngestTime)
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(e.EngagementScore))
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(e.ConversionValue))
	b = binary.AppendUvarint(b, uint64(len(e.Raw)))
	b = append(b, e.Raw...)
	b = appendEnrichment(b, e.Enrichment)
	if e.MessageID != "" {
		b = binary.AppendUvarint(b, uint64(len(e.MessageID)))
		b = append(b, e.MessageID...)
	}
	if e.Delivery != 0 {
		b = binary.AppendUvarint(b, e.Delivery)
	}
	if e.ReadWatermark != 0 {
		b = binary.AppendVarint(b, e.ReadWatermark)
	}
	return b
}

const (
	flagUserFound = 1 << iota
	flagCampaignFound
)

// appendEnrichment writes the context: its status (empty when x is nil: the
// lookup has not run) and, when there is one, a flags byte and the attributes.
func appendEnrichment(b []byte, x *Enrichment) []byte {
	if x == nil {
		return binary.AppendUvarint(b, 0)
	}
	var flags byte
	if x.UserFound {
		flags |= flagUserFound
	}
	if x.CampaignFound {
		flags |= flagCampaignFound
	}
	b = binary.AppendUvarint(b, uint64(len(x.Status)))
	b = append(b, x.Status...)
	if x.Status == "" {
		return b
	}
	b = append(b, flags)
	for _, s := range [...]string{x.UserSegment, x.UserCountry, x.CampaignName, x.CampaignObjective, x.CampaignChannel, x.Advertiser} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(x.UserLifetimeValue))
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(x.CampaignDailyBudget))
	for _, t := range [...]int64{x.UserFirstSeen, x.CampaignStart, x.CampaignEnd} {
		b = binary.AppendVarint(b, t)
	}
	return b
}

// readEnrichment reads what appendEnrichment wrote: nil for an empty status,
// as before Enrich.
func readEnrichment(r *reader) *Enrichment {
	status := r.str()
	if status == "" {
		return nil
	}
	x := &Enrichment{Status: status}
	flags := r.byte()
	x.UserFound = flags&flagUserFound != 0
	x.CampaignFound = flags&flagCampaignFound != 0
	for _, p := range [...]*string{&x.UserSegment, &x.UserCountry, &x.CampaignName, &x.CampaignObjective, &x.CampaignChannel, &x.Advertiser} {
		*p = r.str()
	}
	x.UserLifetimeValue = r.float64()
	x.CampaignDailyBudget = r.float64()
	for _, p := range [...]*int64{&x.UserFirstSeen, &x.CampaignStart, &x.CampaignEnd} {
		*p = r.varint()
	}
	return x
}

func readEvent(r *reader, e *Event) {
	flags := r.byte()
	e.HasEngagementScore = flags&flagEngagement != 0
	e.HasConversionValue = flags&flagConversion != 0
	e.Late = flags&flagLate != 0
	e.TooLate = flags&flagTooLate != 0
	for _, p := range [...]*string{&e.EventID, &e.EventType, &e.UserID, &e.CampaignID, &e.Platform, &e.AdID,
		&e.Currency, &e.UTMSource, &e.UTMMedium, &e.UTMCampaign, &e.UTMTerm, &e.UTMContent, &e.SchemaVersion,
		&e.Timestamp, &e.Source, &e.ReplayOf} {
		*p = r.str()
	}
	e.EventTime = r.varint()
	e.IngestTime = r.varint()
	e.EngagementScore = r.float64()
	e.ConversionValue = r.float64()
	if raw := r.str(); len(raw) > 0 {
		e.Raw = []byte(raw)
	}
	e.Enrichment = readEnrichment(r)
	if flags&flagMessageID != 0 {
		e.MessageID = r.str()
	}
	if flags&flagDelivery != 0 {
		e.Delivery = r.uvarint()
	}
	if flags&flagReadWatermark != 0 {
		e.ReadWatermark = r.varint()
	}
	if r.err != nil {
		*e = Event{}
	}
}

func readBytes(b []byte) (field, rest []byte, err error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return nil, nil, errShortBuffer
	}
	return b[k : k+int(n)], b[k+int(n):], nil
}
