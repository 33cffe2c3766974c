package transforms

import (
	"bytes"
	"fmt"
	"time"
)

// Stages that can dead-letter a record.
const (
	StageParse    = "parse"
	StageValidate = "validate"
	StageEnrich   = "enrich"
	StageSink     = "sink"
)

// Stable error codes. They are part of the contract with whoever reads the
// dead_letter_events table (alerts, the replay tool, dbt's data-quality mart):
// never rename one, only add.
const (
	CodeEmptyPayload             = "PARSE_EMPTY_PAYLOAD"
	CodeOversizePayload          = "PARSE_OVERSIZE_PAYLOAD"
	CodeInvalidUTF8              = "PARSE_INVALID_UTF8"
	CodeMalformedJSON            = "PARSE_MALFORMED_JSON"
	CodeNotAnObject              = "PARSE_NOT_AN_OBJECT"
	CodeWrongType                = "PARSE_WRONG_TYPE"
	CodeMissingField             = "VALIDATE_MISSING_FIELD"
	CodeFieldTooLong             = "VALIDATE_FIELD_TOO_LONG"
	CodeBadSchemaVersion         = "VALIDATE_BAD_SCHEMA_VERSION"
	CodeUnsupportedSchemaVersion = "VALIDATE_UNSUPPORTED_SCHEMA_VERSION"
	CodeBadTimestamp             = "VALIDATE_BAD_TIMESTAMP"
	CodeFutureTimestamp          = "VALIDATE_FUTURE_TIMESTAMP"
	CodeBadEventType             = "VALIDATE_BAD_EVENT_TYPE"
	CodeBadPlatform              = "VALIDATE_BAD_PLATFORM"
	CodeOutOfRange               = "VALIDATE_OUT_OF_RANGE"
	CodeConversionMissingValue   = "VALIDATE_CONVERSION_MISSING_VALUE"
	CodeBadCurrency              = "VALIDATE_BAD_CURRENCY"
	// CodeSinkRejected: the warehouse refused the row (a BigQuery row error in
	// an append result); the dead letter carries the row as JSON and the error.
	CodeSinkRejected = "SINK_REJECTED"
	// CodeEnrichUnavailable: Bigtable did not answer the enrichment lookup
	// within the retry budget; the dead letter carries the event as JSON.
	CodeEnrichUnavailable = "ENRICH_UNAVAILABLE"
)

// ErrorCodes lists every code with the stage that emits it; the docs and the
// warehouse's accepted-values tests are checked against it.
var ErrorCodes = map[string]string{
	CodeEmptyPayload: StageParse, CodeOversizePayload: StageParse, CodeInvalidUTF8: StageParse,
	CodeMalformedJSON: StageParse, CodeNotAnObject: StageParse, CodeWrongType: StageParse,
	CodeMissingField: StageValidate, CodeFieldTooLong: StageValidate, CodeBadSchemaVersion: StageValidate,
	CodeUnsupportedSchemaVersion: StageValidate, CodeBadTimestamp: StageValidate,
	CodeFutureTimestamp: StageValidate, CodeBadEventType: StageValidate, CodeBadPlatform: StageValidate,
	CodeOutOfRange: StageValidate, CodeConversionMissingValue: StageValidate, CodeBadCurrency: StageValidate,
	CodeSinkRejected:      StageSink,
	CodeEnrichUnavailable: StageEnrich,
}

// PipelineVersion is stamped on every dead letter so a replay knows which
// build rejected the record. Overridden at link time by the Makefile.
var PipelineVersion = "dev"

// MaxDeadLetterPayloadBytes is how much of a rejected payload a dead letter
// keeps. Every payload the pipeline can accept (--max_payload_bytes, 64 KiB by
// default) fits whole, so whatever a replay could use is kept byte for byte;
// only an oversize or malformed payload past 1 MiB is cut, and PayloadBytes
// keeps its size. Pub/Sub carries messages of up to 10 MB, and BigQuery takes
// at most 10 MB in one AppendRows request: a dead letter holding such a
// payload whole could never be written, and its bundle would be retried
// forever.
const MaxDeadLetterPayloadBytes = 1 << 20

// DeadLetter is the one record type every stage uses for input it cannot
// process. The raw payload is kept byte for byte (up to
// MaxDeadLetterPayloadBytes) so the record can be replayed once the cause is
// fixed.
type DeadLetter struct {
	Stage        string
	ErrorCode    string
	ErrorMessage string
	EventID      string // when the stage got far enough to know it
	Payload      []byte
	// PayloadBytes is the size of the payload as it arrived, which Payload
	// holds only the first MaxDeadLetterPayloadBytes of when it is larger
	// (0: len(Payload)).
	PayloadBytes    int64
	Source          string
	PublishTime     int64 // unix ms, 0 if unknown
	ProcessingTime  int64 // unix ms when the record was rejected
	PipelineVersion string
	// MessageID is the source's id of the rejected record (Message.ID), ""
	// when unknown, as after Dedup (enrich and sink dead letters carry the
	// event id instead). The BigQuery sink writes at least once; dbt's
	// staging keeps one dead letter per message id.
	MessageID string
	// Delivery is the rejected record's Message.Delivery (settle.go).
	Delivery uint64
}

// Reject is the error a stage returns for a bad record: a stable code and a
// human reason.
type Reject struct {
	Code    string
	Message string
}

func (r *Reject) Error() string { return r.Code + ": " + r.Message }

func reject(code, format string, args ...any) *Reject {
	return &Reject{Code: code, Message: fmt.Sprintf(format, args...)}
}

// NewDeadLetter builds the dead-letter record for msg rejected at stage.
func NewDeadLetter(stage string, r *Reject, msg Message, eventID string) DeadLetter {
	if len(eventID) > MaxIDLength {
		eventID = "" // an over-long id is itself the fault; the payload keeps it
	}
	payload := msg.Data
	if len(payload) > MaxDeadLetterPayloadBytes {
		// A copy, so the rest of the payload can be freed.
		payload = bytes.Clone(payload[:MaxDeadLetterPayloadBytes])
	}
	return DeadLetter{
		Stage:           stage,
		ErrorCode:       r.Code,
		ErrorMessage:    r.Message,
		EventID:         eventID,
		Payload:         payload,
		PayloadBytes:    msg.SourceBytes(),
		Source:          msg.Source,
		PublishTime:     msg.PublishTime,
		ProcessingTime:  time.Now().UnixMilli(),
		PipelineVersion: PipelineVersion,
		MessageID:       msg.ID,
		Delivery:        msg.Delivery,
	}
}
