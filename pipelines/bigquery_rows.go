package pipelines

import (
	"encoding/json"
	"fmt"
	"time"

	"cloud.google.com/go/bigquery/storage/apiv1/storagepb"
	"cloud.google.com/go/bigquery/storage/managedwriter/adapt"
	"github.com/campaignpulse/campaignpulse/transforms"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

// This file builds the rows the BigQuery sink sends: Go row → proto2 message
// of the table's schema, with no network, so it is tested here while the
// client calls (bigquery.go) stay thin. The message type is derived from the
// same schema definition as the DuckDB DDL and terraform/schemas.

// storageTypes maps the definition's types to the Storage Write API's.
var storageTypes = map[string]storagepb.TableFieldSchema_Type{
	"STRING": storagepb.TableFieldSchema_STRING, "INT64": storagepb.TableFieldSchema_INT64,
	"FLOAT64": storagepb.TableFieldSchema_DOUBLE, "BOOL": storagepb.TableFieldSchema_BOOL,
	"BYTES": storagepb.TableFieldSchema_BYTES, "TIMESTAMP": storagepb.TableFieldSchema_TIMESTAMP,
}

// StorageSchema returns a table's schema as the Storage Write API describes it.
func StorageSchema(t transforms.Table) (*storagepb.TableSchema, error) {
	s := &storagepb.TableSchema{}
	for _, c := range t.Columns {
		typ, ok := storageTypes[c.Type]
		if !ok {
			return nil, fmt.Errorf("%s.%s: no Storage Write API type for %s", t.Name, c.Name, c.Type)
		}
		mode := storagepb.TableFieldSchema_NULLABLE
		if c.Mode == "REQUIRED" {
			mode = storagepb.TableFieldSchema_REQUIRED
		}
		s.Fields = append(s.Fields, &storagepb.TableFieldSchema{Name: c.Name, Type: typ, Mode: mode, Description: c.Description})
	}
	return s, nil
}

// RowEncoder encodes the rows of one table as serialized proto2 messages,
// the Storage Write API's wire format. Not safe for concurrent use (a DoFn
// instance owns one).
type RowEncoder struct {
	table  transforms.Table
	desc   protoreflect.MessageDescriptor
	fields []protoreflect.FieldDescriptor // by column
	dp     *descriptorpb.DescriptorProto
	vals   []any
	buf    []byte
}

// NewRowEncoder builds the message type of a table with the client
// library's own schema conversion (adapt), so the descriptor the stream is
// opened with is the one BigQuery expects for the schema.
func NewRowEncoder(t transforms.Table) (*RowEncoder, error) {
	schema, err := StorageSchema(t)
	if err != nil {
		return nil, err
	}
	d, err := adapt.StorageSchemaToProto2Descriptor(schema, "root")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", t.Name, err)
	}
	md, ok := d.(protoreflect.MessageDescriptor)
	if !ok {
		return nil, fmt.Errorf("%s: schema conversion gave %T, not a message", t.Name, d)
	}
	dp, err := adapt.NormalizeDescriptor(md)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", t.Name, err)
	}
	e := &RowEncoder{table: t, desc: md, dp: dp}
	for _, c := range t.Columns {
		f := md.Fields().ByName(protoreflect.Name(c.Name))
		if f == nil {
			return nil, fmt.Errorf("%s: column %s has no field in the message", t.Name, c.Name)
		}
		e.fields = append(e.fields, f)
	}
	return e, nil
}

// Descriptor is the self-contained message description the stream is opened with.
func (e *RowEncoder) Descriptor() *descriptorpb.DescriptorProto { return e.dp }

// Encode serializes a row (a value of the table's row type). A null column
// is an absent field; a TIMESTAMP is microseconds since the epoch, as the
// Storage Write API takes it.
func (e *RowEncoder) Encode(row any) ([]byte, error) {
	m := dynamicpb.NewMessage(e.desc)
	e.vals = e.table.Values(row, e.vals)
	for i, v := range e.vals {
		if v == nil {
			continue
		}
		var pv protoreflect.Value
		switch x := v.(type) {
		case string:
			pv = protoreflect.ValueOfString(x)
		case int64:
			pv = protoreflect.ValueOfInt64(x)
		case float64:
			pv = protoreflect.ValueOfFloat64(x)
		case bool:
			pv = protoreflect.ValueOfBool(x)
		case []byte:
			pv = protoreflect.ValueOfBytes(x)
		case time.Time:
			pv = protoreflect.ValueOfInt64(x.UnixMicro())
		default:
			return nil, fmt.Errorf("%s.%s: unsupported value %T", e.table.Name, e.table.Columns[i].Name, v)
		}
		m.Set(e.fields[i], pv)
	}
	b, err := proto.MarshalOptions{}.MarshalAppend(e.buf[:0], m)
	if err != nil {
		return nil, fmt.Errorf("%s: encode row: %w", e.table.Name, err)
	}
	out := append([]byte(nil), b...)
	e.buf = b
	return out, nil
}

// Decode reads an encoded row back into column values, in column order, nil
// for an absent field and time.Time (UTC) for a TIMESTAMP: the inverse of
// Encode, for tests and for the dead letter of a rejected row.
func (e *RowEncoder) Decode(b []byte) ([]any, error) {
	m := dynamicpb.NewMessage(e.desc)
	if err := proto.Unmarshal(b, m); err != nil {
		return nil, fmt.Errorf("%s: decode row: %w", e.table.Name, err)
	}
	out := make([]any, len(e.fields))
	for i, f := range e.fields {
		if !m.Has(f) {
			continue
		}
		v := m.Get(f)
		switch e.table.Columns[i].Type {
		case "STRING":
			out[i] = v.String()
		case "INT64":
			out[i] = v.Int()
		case "FLOAT64":
			out[i] = v.Float()
		case "BOOL":
			out[i] = v.Bool()
		case "BYTES":
			out[i] = append([]byte{}, v.Bytes()...)
		case "TIMESTAMP":
			out[i] = time.UnixMicro(v.Int()).UTC()
		}
	}
	return out, nil
}

// RowJSON renders an encoded row as a JSON object keyed by column, the
// payload of its dead letter when BigQuery rejects it: readable, and
// replayable with the table's schema (BYTES in base64, TIMESTAMP in RFC 3339,
// UTC: dbt's pane reconciliation reads a refused fact row's hour from the
// text). A fact row's event_timestamp is also written as timestamp, the
// contract's name: every other field of the event contract is a column of
// the same name, so the dead letter of a refused fact row is the event,
// which a replay publishes as it is (the other columns are fields the
// contract tolerates). Without it the replay was refused again, for good,
// as VALIDATE_MISSING_FIELD.
func (e *RowEncoder) RowJSON(b []byte) []byte {
	vals, err := e.Decode(b)
	if err != nil {
		return b
	}
	out := []byte{'{'}
	var eventTime []byte
	for i, v := range vals {
		if i > 0 {
			out = append(out, ',')
		}
		name, _ := json.Marshal(e.table.Columns[i].Name)
		out = append(out, name...)
		out = append(out, ':')
		if t, ok := v.(time.Time); ok {
			v = t.UTC().Format(time.RFC3339Nano)
		}
		js, err := json.Marshal(v)
		if err != nil {
			js = []byte("null")
		}
		out = append(out, js...)
		if e.table.Columns[i].Name == "event_timestamp" {
			eventTime = js
		}
	}
	if eventTime != nil {
		out = append(append(out, `,"timestamp":`...), eventTime...)
	}
	return append(out, '}')
}
