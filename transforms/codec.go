package transforms

import (
	"encoding/binary"
	"errors"
	"math"
	"reflect"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
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
)

func encodeEvent(e Event) []byte {
	return appendEvent(make([]byte, 0, 160+len(e.Raw)), &e)
}

func decodeEvent(b []byte) (Event, error) {
	var e Event
	_, err := readEvent(b, &e)
	return e, err
}

func encodeEventBatch(b EventBatch) []byte {
	buf := make([]byte, 0, 1+binary.MaxVarintLen64+len(b.Events)*120)
	buf = append(buf, codecVersion)
	buf = binary.AppendUvarint(buf, uint64(len(b.Events)))
	for i := range b.Events {
		buf = appendEvent(buf, &b.Events[i])
	}
	return buf
}

func decodeEventBatch(b []byte) (EventBatch, error) {
	if len(b) < 1 || b[0] != codecVersion {
		return EventBatch{}, errors.New("transforms: unknown event batch encoding")
	}
	n, k := binary.Uvarint(b[1:])
	if k <= 0 || n > uint64(len(b)) {
		return EventBatch{}, errShortBuffer
	}
	b = b[1+k:]
	out := EventBatch{Events: make([]Event, n)}
	for i := range out.Events {
		rest, err := readEvent(b, &out.Events[i])
		if err != nil {
			return EventBatch{}, err
		}
		b = rest
	}
	return out, nil
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
	b = append(b, flags)
	for _, s := range [...]string{e.EventID, e.EventType, e.UserID, e.CampaignID, e.Platform, e.AdID,
		e.Currency, e.UTMSource, e.UTMMedium, e.UTMCampaign, e.UTMTerm, e.UTMContent, e.SchemaVersion,
		e.Timestamp, e.Source} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	b = binary.AppendVarint(b, e.EventTime)
	b = binary.AppendVarint(b, e.IngestTime)
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(e.EngagementScore))
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(e.ConversionValue))
	b = binary.AppendUvarint(b, uint64(len(e.Raw)))
	b = append(b, e.Raw...)
	return appendEnrichment(b, &e.Enrichment)
}

const (
	flagUserFound = 1 << iota
	flagCampaignFound
)

// appendEnrichment writes the context: one flags byte and, for an enriched
// event only, its attributes.
func appendEnrichment(b []byte, x *Enrichment) []byte {
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

func readEnrichment(b []byte, x *Enrichment) ([]byte, error) {
	status, b, err := readBytes(b)
	if err != nil {
		return nil, err
	}
	x.Status = string(status)
	if x.Status == "" {
		return b, nil
	}
	if len(b) < 1 {
		return nil, errShortBuffer
	}
	x.UserFound = b[0]&flagUserFound != 0
	x.CampaignFound = b[0]&flagCampaignFound != 0
	b = b[1:]
	for _, p := range [...]*string{&x.UserSegment, &x.UserCountry, &x.CampaignName, &x.CampaignObjective, &x.CampaignChannel, &x.Advertiser} {
		var raw []byte
		if raw, b, err = readBytes(b); err != nil {
			return nil, err
		}
		*p = string(raw)
	}
	if len(b) < 16 {
		return nil, errShortBuffer
	}
	x.UserLifetimeValue = math.Float64frombits(binary.LittleEndian.Uint64(b))
	x.CampaignDailyBudget = math.Float64frombits(binary.LittleEndian.Uint64(b[8:]))
	b = b[16:]
	for _, p := range [...]*int64{&x.UserFirstSeen, &x.CampaignStart, &x.CampaignEnd} {
		var k int
		if *p, k = binary.Varint(b); k <= 0 {
			return nil, errShortBuffer
		}
		b = b[k:]
	}
	return b, nil
}

func readEvent(b []byte, e *Event) ([]byte, error) {
	if len(b) < 1 {
		return nil, errShortBuffer
	}
	flags := b[0]
	b = b[1:]
	e.HasEngagementScore = flags&flagEngagement != 0
	e.HasConversionValue = flags&flagConversion != 0
	e.Late = flags&flagLate != 0
	e.TooLate = flags&flagTooLate != 0
	var err error
	for _, p := range [...]*string{&e.EventID, &e.EventType, &e.UserID, &e.CampaignID, &e.Platform, &e.AdID,
		&e.Currency, &e.UTMSource, &e.UTMMedium, &e.UTMCampaign, &e.UTMTerm, &e.UTMContent, &e.SchemaVersion,
		&e.Timestamp, &e.Source} {
		var raw []byte
		if raw, b, err = readBytes(b); err != nil {
			return nil, err
		}
		*p = string(raw)
	}
	var k int
	if e.EventTime, k = binary.Varint(b); k <= 0 {
		return nil, errShortBuffer
	}
	b = b[k:]
	if e.IngestTime, k = binary.Varint(b); k <= 0 {
		return nil, errShortBuffer
	}
	b = b[k:]
	if len(b) < 16 {
		return nil, errShortBuffer
	}
	e.EngagementScore = math.Float64frombits(binary.LittleEndian.Uint64(b))
	e.ConversionValue = math.Float64frombits(binary.LittleEndian.Uint64(b[8:]))
	b = b[16:]
	var raw []byte
	if raw, b, err = readBytes(b); err != nil {
		return nil, err
	}
	if len(raw) > 0 {
		e.Raw = append([]byte(nil), raw...)
	}
	return readEnrichment(b, &e.Enrichment)
}

func readBytes(b []byte) (field, rest []byte, err error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return nil, nil, errShortBuffer
	}
	return b[k : k+int(n)], b[k+int(n):], nil
}
