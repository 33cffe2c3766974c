package main

import (
	"encoding/csv"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/campaignpulse/campaignpulse/transforms"
)

const root = "../.."

// TestCommittedSchemasMatchDefinition is the drift check: the BigQuery JSON
// schemas under terraform/schemas and dbt's sources.yml are exactly what the
// Go row types generate. Fix a failure with make schemas.
func TestCommittedSchemasMatchDefinition(t *testing.T) {
	if err := Check(root, transforms.Tables); err != nil {
		t.Fatal(err)
	}
}

// withExtraField returns a copy of row's struct type with one more column,
// as if someone had added a field to the Go row type and nothing else.
func withExtraField(t *testing.T, row any) any {
	t.Helper()
	rt := reflect.TypeOf(row)
	fields := make([]reflect.StructField, 0, rt.NumField()+1)
	for i := 0; i < rt.NumField(); i++ {
		fields = append(fields, rt.Field(i))
	}
	fields = append(fields, reflect.StructField{
		Name: "Coupon", Type: reflect.TypeOf((*string)(nil)),
		Tag: `bq:"coupon_code,STRING,NULLABLE" desc:"Coupon the user redeemed."`,
	})
	return reflect.New(reflect.StructOf(fields)).Elem().Interface()
}

// TestDriftCheckFailsOnFieldAddedToRowTypeOnly shows the check can fail: the
// same comparison, run against a copy of EventRow with one extra field, names
// both generated files that no longer match.
func TestDriftCheckFailsOnFieldAddedToRowTypeOnly(t *testing.T) {
	extended := withExtraField(t, transforms.EventRow{})
	cols, err := transforms.SchemaOf(extended)
	if err != nil {
		t.Fatal(err)
	}
	tables := append([]transforms.Table(nil), transforms.Tables...)
	for i := range tables {
		if tables[i].Name == transforms.TableEvents {
			tables[i] = transforms.Table{Name: transforms.TableEvents, Row: reflect.TypeOf(extended), Columns: cols}
		}
	}
	err = Check(root, tables)
	if err == nil {
		t.Fatal("Check passed with a column the committed schemas do not have")
	}
	for _, want := range []string{SchemaPath(transforms.TableEvents), SourcesPath, "coupon_code"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("drift error does not mention %s:\n%v", want, err)
		}
	}
	// The other tables did not change and are not reported.
	if strings.Contains(err.Error(), SchemaPath(transforms.TableMetrics)) {
		t.Errorf("drift error blames an unchanged table:\n%v", err)
	}
}

// TestBigQuerySchemaTypes checks the type and mode mapping on one table.
func TestBigQuerySchemaTypes(t *testing.T) {
	tbl, _ := transforms.TableByName(transforms.TableDeadLetters)
	js, err := BigQuerySchema(tbl)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`"name": "payload",` + "\n" + `    "type": "BYTES",` + "\n" + `    "mode": "REQUIRED"`,
		`"name": "payload_bytes",` + "\n" + `    "type": "INTEGER"`,
		`"name": "publish_timestamp",` + "\n" + `    "type": "TIMESTAMP",` + "\n" + `    "mode": "NULLABLE"`,
	} {
		if !strings.Contains(string(js), want) {
			t.Errorf("schema lacks %q:\n%s", want, js)
		}
	}
}

// TestPlatformSeedMatchesContract keeps dbt's platforms seed (dim_platform)
// equal to the platforms the validator accepts.
func TestPlatformSeedMatchesContract(t *testing.T) {
	f, err := os.Open(root + "/dbt/seeds/platforms.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recs[1:] {
		got = append(got, r[0])
	}
	if !reflect.DeepEqual(got, transforms.Platforms) {
		t.Errorf("dbt/seeds/platforms.csv has %v, the contract %v", got, transforms.Platforms)
	}
}
