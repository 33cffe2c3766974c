// Package generator makes realistic, deterministic marketing traffic: campaigns
// on several platforms, a view → click → conversion funnel, and a chosen share
// of late, too-late, duplicate and malformed events. Event i depends only on
// the seed and i, so any range of the stream can be generated on its own (the
// source is splittable) and the expected counts are known without running the
// pipeline.
package generator

import (
	"bufio"
	"encoding/hex"
	"io"
	"math"
	"strconv"
	"time"

	"github.com/campaignpulse/campaignpulse/transforms"
)

// Config describes the traffic. The zero value is not useful; start from Default.
type Config struct {
	Seed      uint64
	Events    int64
	Campaigns int
	Users     int
	// Start is the arrival time of event 0; arrivals are spaced 1/Rate apart.
	Start time.Time
	// Rate is events per second of arrival time (not of wall time).
	Rate float64

	DuplicateRate float64 // share of events that repeat an earlier event's id and content
	MalformedRate float64 // share that fail parsing or validation, spread over every error code
	LateRate      float64 // share arriving after their window closed, within the allowed lateness
	TooLateRate   float64 // share arriving past the allowed lateness

	// The pipeline's lateness policy, so late events land on the right side of it.
	WindowSize      time.Duration
	AllowedLateness time.Duration
	WatermarkSkew   time.Duration
	// The pipeline's --max_payload_bytes, so oversize events exceed it (0:
	// transforms.DefaultMaxPayloadBytes). Every other event is at most
	// MaxEventBytes long.
	MaxPayloadBytes int
}

// MaxEventBytes bounds the payload of every event the generator makes except
// the oversize ones (about 390 bytes at most with the defaults):
// --max_payload_bytes below it would dead-letter events the generator counts
// as valid.
const MaxEventBytes = 1024

// PayloadLimit is the payload limit the generator's events are made for.
func (c *Config) PayloadLimit() int {
	if c.MaxPayloadBytes > 0 {
		return c.MaxPayloadBytes
	}
	return transforms.DefaultMaxPayloadBytes
}

// Default returns the traffic make run uses.
func Default() Config {
	return Config{
		Seed: 42, Events: 200_000, Campaigns: 40, Users: 50_000,
		Start: time.Now().UTC().Add(-24 * time.Hour).Truncate(time.Hour), Rate: 250,
		DuplicateRate: 0.02, MalformedRate: 0.01, LateRate: 0.03, TooLateRate: 0.005,
		WindowSize: time.Minute, AllowedLateness: 10 * time.Minute, WatermarkSkew: 5 * time.Second,
		MaxPayloadBytes: transforms.DefaultMaxPayloadBytes,
	}
}

// Kind is what the generator made event i to be.
type Kind uint8

// Kinds of events.
const (
	Normal Kind = iota
	Late
	TooLate
	Duplicate
	Malformed
)

func (k Kind) String() string {
	return [...]string{"normal", "late", "too_late", "duplicate", "malformed"}[k]
}

// Malformations: each produces exactly one dead-letter code.
var malformations = []struct {
	code string
	make func(c *Config, i int64, buf []byte) []byte
}{
	{transforms.CodeMalformedJSON, func(c *Config, i int64, buf []byte) []byte {
		b := c.appendEvent(buf, i, i)
		return b[:len(b)/2] // truncated in transit
	}},
	{transforms.CodeWrongType, func(c *Config, i int64, buf []byte) []byte {
		return c.appendEventWith(buf, i, i, func(f *fields) { f.rawTimestamp = strconv.FormatInt(f.eventTime, 10) })
	}},
	{transforms.CodeMissingField, func(c *Config, i int64, buf []byte) []byte {
		return c.appendEventWith(buf, i, i, func(f *fields) { f.userID = "" })
	}},
	{transforms.CodeBadEventType, func(c *Config, i int64, buf []byte) []byte {
		return c.appendEventWith(buf, i, i, func(f *fields) { f.eventType = "purchase" })
	}},
	{transforms.CodeBadPlatform, func(c *Config, i int64, buf []byte) []byte {
		return c.appendEventWith(buf, i, i, func(f *fields) { f.platform = "myspace" })
	}},
	{transforms.CodeFutureTimestamp, func(c *Config, i int64, buf []byte) []byte {
		return c.appendEventWith(buf, i, i, func(f *fields) { f.eventTime += FutureTimestampAhead.Milliseconds() })
	}},
	{transforms.CodeBadTimestamp, func(c *Config, i int64, buf []byte) []byte {
		return c.appendEventWith(buf, i, i, func(f *fields) { f.rawTimestamp = `"yesterday at noon"` })
	}},
	{transforms.CodeConversionMissingValue, func(c *Config, i int64, buf []byte) []byte {
		return c.appendEventWith(buf, i, i, func(f *fields) { f.eventType, f.value, f.currency = transforms.TypeConversion, -1, "" })
	}},
	{transforms.CodeBadCurrency, func(c *Config, i int64, buf []byte) []byte {
		return c.appendEventWith(buf, i, i, func(f *fields) { f.eventType, f.value, f.currency = transforms.TypeConversion, 19.99, "usd" })
	}},
	{transforms.CodeOutOfRange, func(c *Config, i int64, buf []byte) []byte {
		return c.appendEventWith(buf, i, i, func(f *fields) { f.eventType, f.score = transforms.TypeEngagement, 250 })
	}},
	{transforms.CodeUnsupportedSchemaVersion, func(c *Config, i int64, buf []byte) []byte {
		return c.appendEventWith(buf, i, i, func(f *fields) { f.schemaVersion = "2.0" })
	}},
	{transforms.CodeNotAnObject, func(c *Config, i int64, buf []byte) []byte {
		return append(buf, `["not","an","event"]`...)
	}},
	{transforms.CodeEmptyPayload, func(c *Config, i int64, buf []byte) []byte { return buf }},
	{transforms.CodeInvalidUTF8, func(c *Config, i int64, buf []byte) []byte {
		return c.appendEventWith(buf, i, i, func(f *fields) { f.adID = "ad\xff\xfe" })
	}},
	{transforms.CodeOversizePayload, func(c *Config, i int64, buf []byte) []byte {
		return c.appendEventWith(buf, i, i, func(f *fields) { f.padding = c.PayloadLimit() + 1 })
	}},
}

// MalformedCodes lists the dead-letter codes the generator produces, in the
// order it cycles through them.
func MalformedCodes() []string {
	out := make([]string, len(malformations))
	for i, m := range malformations {
		out[i] = m.code
	}
	return out
}

// splitmix64 is a counter-based generator: draw(i, stream) is random-looking
// and depends only on its inputs, which is what makes the source splittable.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

func (c *Config) draw(i int64, stream uint64) uint64 {
	return splitmix64(c.Seed*0x2545f4914f6cdd1d ^ uint64(i)*0x9e3779b97f4a7c15 ^ stream<<56)
}

// unit returns a float in [0, 1).
func (c *Config) unit(i int64, stream uint64) float64 {
	return float64(c.draw(i, stream)>>11) / (1 << 53)
}

const (
	sKind = iota + 1
	sDupOffset
	sMalformation
	sUser
	sCampaign
	sPlatform
	sType
	sJitter
	sValue
	sScore
	sAd
	sLate
)

// Kind says what event i is.
func (c *Config) Kind(i int64) Kind {
	u := c.unit(i, sKind)
	switch {
	case u < c.DuplicateRate:
		if j := c.dupTarget(i); j >= 0 {
			return Duplicate
		}
		return Normal
	case u < c.DuplicateRate+c.MalformedRate:
		return Malformed
	case u < c.DuplicateRate+c.MalformedRate+c.LateRate && c.lateWindow() > 0:
		return Late
	case u < c.DuplicateRate+c.MalformedRate+c.LateRate+c.TooLateRate:
		return TooLate
	}
	return Normal
}

// dupTarget is the earlier event a duplicate repeats, or -1 when that one is
// not a plain valid event (then i is a normal event). A repeat arrives within
// half a second of the original, as a client retry does, so whichever copy
// Dedup keeps falls on the same side of the lateness policy.
func (c *Config) dupTarget(i int64) int64 {
	span := max(uint64(c.Rate/2), 1)
	j := i - 1 - int64(c.draw(i, sDupOffset)%span)
	if j < 0 || c.unit(j, sKind) < c.DuplicateRate+c.MalformedRate {
		return -1
	}
	return j
}

// MalformedCode returns the dead-letter code of malformed event i.
func (c *Config) MalformedCode(i int64) string {
	return malformations[c.draw(i, sMalformation)%uint64(len(malformations))].code
}

func (c *Config) arrival(i int64) int64 {
	return c.Start.UnixMilli() + int64(float64(i)*1000/c.Rate)
}

// lateWindow is the span of delays that make an event late but not too late:
// from one window plus the skew to the allowed lateness plus the skew.
func (c *Config) lateWindow() int64 {
	return (c.AllowedLateness - c.WindowSize - time.Second).Milliseconds()
}

// FutureTimestampAhead is how far past a normal event time the generator's
// VALIDATE_FUTURE_TIMESTAMP events are (a normal event time is up to
// MaxJitter before arrival): --max_future_skew must stay under the
// difference, or they are valid.
const (
	FutureTimestampAhead = 48 * time.Hour
	MaxJitter            = 2 * time.Second
)

// eventTime of event i: a little before its arrival for a normal event, one
// window to the allowed lateness before it for a late one, and more than the
// allowed lateness plus a window before it for a too-late one.
func (c *Config) eventTime(i int64, kind Kind) int64 {
	a := c.arrival(i)
	skew, window := c.WatermarkSkew.Milliseconds(), c.WindowSize.Milliseconds()
	switch kind {
	case Late:
		return a - skew - window - int64(c.unit(i, sLate)*float64(c.lateWindow()))
	case TooLate:
		return a - skew - window - c.AllowedLateness.Milliseconds() - 1000 - int64(c.unit(i, sLate)*float64(30*time.Minute/time.Millisecond))
	}
	// Normal: up to MaxJitter (or the skew, if smaller) before arrival.
	return a - int64(c.unit(i, sJitter)*float64(min(MaxJitter.Milliseconds(), max(skew-1, 0))))
}

// Message returns event i's payload as the source would see it, appended to
// buf (which may be nil), with its arrival time.
func (c *Config) Message(i int64, buf []byte) transforms.Message {
	kind := c.Kind(i)
	var data []byte
	switch kind {
	case Duplicate:
		data = c.appendEvent(buf, c.dupTarget(i), i)
	case Malformed:
		data = malformations[c.draw(i, sMalformation)%uint64(len(malformations))].make(c, i, buf)
	default:
		data = c.appendEvent(buf, i, i)
	}
	return transforms.Message{Data: data, PublishTime: c.arrival(i), Source: "generator"}
}

// Route returns what a publisher needs of event i besides its payload: the
// platform, whose source topic carries it, and the event's id and time for
// the message attributes Dataflow's Pub/Sub source reads. A malformed event
// gets no id (ok false): an id attribute copied from a well-formed twin would
// make Dataflow drop it as a repeat instead of dead-lettering it.
func (c *Config) Route(i int64) (platform, eventID string, eventTime int64, ok bool) {
	j := i
	kind := c.Kind(i)
	if kind == Duplicate {
		j = c.dupTarget(i)
	}
	f := c.fieldsOf(j, i)
	if kind == Malformed {
		return f.platform, "", 0, false
	}
	return f.platform, f.eventID, f.eventTime, true
}

// fields of one generated event, before serialisation.
type fields struct {
	eventID, eventType, userID, campaignID, platform, adID, currency, schemaVersion string
	eventTime                                                                       int64
	rawTimestamp                                                                    string  // if set, written instead of the RFC 3339 time (with its quotes)
	value, score                                                                    float64 // <0: absent
	padding                                                                         int
}

var (
	currencies = []string{"USD", "USD", "USD", "EUR", "GBP"}
	mediums    = []string{"cpc", "paid_social", "display", "video"}
)

// CampaignID returns the id of campaign n.
func CampaignID(n int) string { return "cmp_" + pad(n, 4) }

// UserID returns the id of user n.
func UserID(n int) string { return "usr_" + pad(n, 6) }

func pad(n, width int) string {
	s := strconv.Itoa(n)
	for len(s) < width {
		s = "0" + s
	}
	return s
}

// CampaignCurrency is the one currency a campaign reports conversions in.
func CampaignCurrency(n int) string { return currencies[n%len(currencies)] }

// fieldsOf draws the content of event j (the original, for a duplicate) as it
// arrives at position i.
func (c *Config) fieldsOf(j, i int64) fields {
	var f fields
	var id [16]byte
	h1, h2 := splitmix64(c.Seed^uint64(j)*0xd6e8feb86659fd93), splitmix64(uint64(j)+c.Seed<<1)
	for k := 0; k < 8; k++ {
		id[k], id[8+k] = byte(h1>>(8*k)), byte(h2>>(8*k))
	}
	f.eventID = hex.EncodeToString(id[:])
	// Skewed popularity: a few campaigns and users carry most traffic.
	campaign := int(math.Pow(c.unit(j, sCampaign), 1.6) * float64(c.Campaigns))
	f.campaignID = CampaignID(campaign)
	platforms := transforms.Platforms
	// Each campaign runs on two neighbouring platforms.
	f.platform = platforms[(campaign+int(c.draw(j, sPlatform)%2))%len(platforms)]
	t := c.unit(j, sType)
	user := int(math.Pow(c.unit(j, sUser), 1.3) * float64(c.Users))
	f.value, f.score = -1, -1
	switch {
	case t < 0.74:
		f.eventType = transforms.TypeView
	case t < 0.88:
		f.eventType = transforms.TypeClick
		user /= 4 // clickers are a subset of viewers: the funnel narrows
	case t < 0.96:
		f.eventType = transforms.TypeEngagement
		user /= 4
		f.score = math.Round(c.unit(j, sScore)*10000) / 100
	default:
		f.eventType = transforms.TypeConversion
		user /= 16
		f.value = math.Round((5+400*math.Pow(c.unit(j, sValue), 3))*100) / 100
		f.currency = CampaignCurrency(campaign)
	}
	f.userID = UserID(user)
	f.adID = "ad_" + pad(campaign, 4) + "_" + strconv.Itoa(int(c.draw(j, sAd)%5))
	f.schemaVersion = "1.0"
	if c.draw(j, sAd)%10 == 0 {
		f.schemaVersion = "1.1" // a newer minor version: an additive field this build ignores
	}
	kind := Normal
	if j == i {
		kind = c.Kind(i)
	} else if jk := c.Kind(j); jk == Late || jk == TooLate {
		kind = jk
	}
	f.eventTime = c.eventTime(j, kind)
	return f
}

func (c *Config) appendEvent(buf []byte, j, i int64) []byte {
	return c.appendEventWith(buf, j, i, nil)
}

func (c *Config) appendEventWith(buf []byte, j, i int64, mutate func(*fields)) []byte {
	f := c.fieldsOf(j, i)
	if mutate != nil {
		mutate(&f)
	}
	b := append(buf, `{"schema_version":"`...)
	b = append(b, f.schemaVersion...)
	b = append(b, `","event_id":"`...)
	b = append(b, f.eventID...)
	b = append(b, `","event_type":"`...)
	b = append(b, f.eventType...)
	b = append(b, `","timestamp":`...)
	if f.rawTimestamp != "" {
		b = append(b, f.rawTimestamp...)
	} else {
		b = append(b, '"')
		b = time.UnixMilli(f.eventTime).UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z07:00")
		b = append(b, '"')
	}
	if f.userID != "" {
		b = append(b, `,"user_id":"`...)
		b = append(b, f.userID...)
		b = append(b, '"')
	}
	b = append(b, `,"campaign_id":"`...)
	b = append(b, f.campaignID...)
	b = append(b, `","platform":"`...)
	b = append(b, f.platform...)
	b = append(b, `","ad_id":"`...)
	b = append(b, f.adID...)
	b = append(b, '"')
	if f.score >= 0 {
		b = append(b, `,"engagement_score":`...)
		b = strconv.AppendFloat(b, f.score, 'f', -1, 64)
	}
	if f.value >= 0 {
		b = append(b, `,"conversion_value":`...)
		b = strconv.AppendFloat(b, f.value, 'f', -1, 64)
	}
	if f.currency != "" {
		b = append(b, `,"currency":"`...)
		b = append(b, f.currency...)
		b = append(b, '"')
	}
	b = append(b, `,"utm_source":"`...)
	b = append(b, f.platform...)
	b = append(b, `","utm_medium":"`...)
	b = append(b, mediums[len(f.campaignID)%len(mediums)]...)
	b = append(b, `","utm_campaign":"`...)
	b = append(b, f.campaignID...)
	b = append(b, '"')
	if f.schemaVersion == "1.1" {
		b = append(b, `,"consent":{"ads":true}`...)
	}
	if f.padding > 0 {
		b = append(b, `,"utm_content":"`...)
		for k := 0; k < f.padding; k++ {
			b = append(b, 'x')
		}
		b = append(b, '"')
	}
	return append(b, '}')
}

// Counts are what a run over the config must produce.
type Counts struct {
	Events, Valid, Duplicates, Malformed, Late, TooLate int64
	DeadLetterCodes                                     map[string]int64
}

// Expected walks the kinds of events [0, Events) without building payloads.
func (c *Config) Expected() Counts {
	n := Counts{Events: c.Events, DeadLetterCodes: map[string]int64{}}
	for i := int64(0); i < c.Events; i++ {
		switch c.Kind(i) {
		case Duplicate:
			n.Duplicates++
		case Malformed:
			n.Malformed++
			n.DeadLetterCodes[c.MalformedCode(i)]++
		case Late:
			n.Late++
			n.Valid++
		case TooLate:
			n.TooLate++
			n.Valid++
		default:
			n.Valid++
		}
	}
	return n
}

// ValidEvents returns those of events [0, n) that ParseEvents and
// ValidateSchema pass with their default limits, judged at their arrival as
// the pipeline judges them, and as ValidateSchema emits them (payload
// released): the events a sink writes or Dedup's shuffle carries, for tests
// and benchmarks.
func (c *Config) ValidEvents(n int64) []transforms.Event {
	cfg := transforms.ValidateConfig{MaxFutureSkew: transforms.DefaultMaxFutureSkew}
	var out []transforms.Event
	for i := range n {
		msg := c.Message(i, nil)
		ev, rej := transforms.Parse(msg, c.PayloadLimit())
		if rej != nil || transforms.Validate(&ev, msg.PublishTime, cfg) != nil {
			continue
		}
		ev.ReleasePayload()
		out = append(out, ev)
	}
	return out
}

// WriteJSONLines writes the payloads of events [0, Events) to w, one a line,
// calling progress (if not nil) every 100,000 events. Payloads never contain a
// raw newline (JSON escapes them), so each line is one input record.
func (c *Config) WriteJSONLines(w io.Writer, progress func(done int64)) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	buf := make([]byte, 0, 1024)
	for i := int64(0); i < c.Events; i++ {
		m := c.Message(i, buf[:0])
		buf = m.Data
		bw.Write(m.Data)
		if err := bw.WriteByte('\n'); err != nil {
			return err
		}
		if progress != nil && (i+1)%100_000 == 0 {
			progress(i + 1)
		}
	}
	return bw.Flush()
}
