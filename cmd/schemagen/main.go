// Command schemagen writes the warehouse schemas that are derived from the one
// schema definition, the Go row types in transforms/rows.go:
//
//   - terraform/schemas/<table>.json: BigQuery JSON schemas, which Terraform
//     reads to create the tables the BigQuery sink writes to;
//   - dbt/models/staging/_campaign_pulse__sources.yml: dbt's sources, with
//     every column's name and description and the accepted values the
//     pipeline guarantees (event types, platforms, stages, error codes).
//
// The DuckDB DDL needs no file: the sink generates it from the same types.
//
//	go run ./cmd/schemagen           # rewrite the files (make schemas)
//	go run ./cmd/schemagen -check    # exit 1 if a committed file differs
//
// The test in this folder runs the check, so a column added to a Go row type
// alone fails `make test`.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/campaignpulse/campaignpulse/transforms"
)

// SourcesPath is the generated dbt sources file, relative to the repository root.
const SourcesPath = "dbt/models/staging/_campaign_pulse__sources.yml"

// SchemaPath is the BigQuery JSON schema of a table, relative to the repository root.
func SchemaPath(table string) string { return filepath.Join("terraform", "schemas", table+".json") }

// bqLegacyType maps the definition's GoogleSQL type names to the names the
// BigQuery API returns for a table's schema. The API accepts both, but
// Terraform compares the JSON it sent with what it reads back, and INT64
// against INTEGER would be a change on every plan.
var bqLegacyType = map[string]string{
	"STRING": "STRING", "INT64": "INTEGER", "FLOAT64": "FLOAT", "BOOL": "BOOLEAN",
	"BYTES": "BYTES", "TIMESTAMP": "TIMESTAMP",
}

// BigQuerySchema returns a table's schema in BigQuery's JSON schema format.
func BigQuerySchema(t transforms.Table) ([]byte, error) {
	type field struct {
		Name        string `json:"name"`
		Type        string `json:"type"`
		Mode        string `json:"mode"`
		Description string `json:"description"`
	}
	fields := make([]field, 0, len(t.Columns))
	for _, c := range t.Columns {
		typ, ok := bqLegacyType[c.Type]
		if !ok {
			return nil, fmt.Errorf("%s.%s: no BigQuery type for %s", t.Name, c.Name, c.Type)
		}
		fields = append(fields, field{c.Name, typ, c.Mode, c.Description})
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(fields); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// sourceTable is what dbt needs to know about a table besides its columns.
type sourceTable struct {
	description string
	// loadedAt is the column freshness reads: the time the pipeline wrote
	// the row, not the event time, so freshness says whether the pipeline
	// is writing, and a backfill of old events is fresh.
	loadedAt string
	// freshness is false for a table that may rightly stay empty.
	freshness bool
	// partitionedBy is the column the BigQuery table is partitioned on
	// (terraform/modules/bigquery). The tables may require a partition
	// filter, so every test and freshness query on a source carries one.
	partitionedBy string
}

var sourceTables = map[string]sourceTable{
	transforms.TableMetrics: {
		description: "One row per emitted pane of a one-minute window of (campaign, platform, event type). " +
			"Panes accumulate within a run: the highest pane_version of a window key and run_id is that run's whole count, and a window key's total is the sum over its runs. Too-late events are not here.",
		loadedAt: "emitted_at", freshness: true, partitionedBy: "window_start",
	},
	transforms.TableEvents: {
		description: "Every valid, de-duplicated event, late and too late included, with its user and campaign context.",
		loadedAt:    "processed_at", freshness: true, partitionedBy: "event_timestamp",
	},
	transforms.TableDeadLetters: {
		description: "Every rejected input record: stage, stable error code, message and the raw payload.",
		loadedAt:    "processing_timestamp", freshness: false, partitionedBy: "processing_timestamp",
	},
}

// acceptedValues are the columns whose values the pipeline guarantees, from
// the same Go definitions the validator and the dead-letter code use.
func acceptedValues() map[string][]string {
	var codes, stages []string
	seen := map[string]bool{}
	for code, stage := range transforms.ErrorCodes {
		codes = append(codes, code)
		if !seen[stage] {
			seen[stage] = true
			stages = append(stages, stage)
		}
	}
	for _, st := range []string{transforms.StageParse, transforms.StageValidate, transforms.StageEnrich, transforms.StageSink} {
		if !seen[st] {
			seen[st] = true
			stages = append(stages, st)
		}
	}
	sort.Strings(codes)
	sort.Strings(stages)
	return map[string][]string{
		"event_type":        transforms.EventTypes,
		"platform":          transforms.Platforms,
		"enrichment_status": {transforms.EnrichOK, transforms.EnrichUnavailable, transforms.EnrichDisabled},
		"stage":             stages,
		"error_code":        codes,
	}
}

// quote writes s as a YAML double-quoted scalar (a JSON string is one).
func quote(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.Encode(s)
	return strings.TrimSuffix(b.String(), "\n")
}

// DBTSources returns dbt's sources.yml for the tables.
func DBTSources(tables []transforms.Table) ([]byte, error) {
	var b strings.Builder
	b.WriteString(`# Generated by cmd/schemagen from transforms/rows.go (make schemas). Do not edit:
# change the Go row types, then run make schemas. The column tests here are the
# values the pipeline guarantees (REQUIRED columns are NOT NULL in the tables
# themselves); the models' own tests live beside them.
version: 2

sources:
  - name: campaign_pulse
    description: "The tables the Campaign Pulse pipeline writes (BigQuery in production, DuckDB locally)."
    # The pipeline's dataset. Locally the models and the sources share DuckDB's
    # main schema; in production set CAMPAIGN_PULSE_SOURCE_DATASET to the
    # pipeline's --bq_dataset when dbt writes its marts to another dataset.
    schema: "{{ env_var('CAMPAIGN_PULSE_SOURCE_DATASET', target.schema) }}"
    config:
      # Freshness of the load time (when the pipeline wrote the row), not of
      # event time. dbt build does not run freshness; dbt source freshness
      # does. The limits are vars so a deployment sets its own: a streaming
      # job writes every minute, so prod wants warn 30 min, error 2 h
      # (--vars '{freshness_warn_minutes: 30, freshness_error_minutes: 120}').
      # The defaults let a local warehouse from make run pass for a day.
      # Each table repeats these with a filter on its partition column.
      freshness:
        warn_after: &warn_after {count: "{{ var('freshness_warn_minutes', 720) }}", period: minute}
        error_after: &error_after {count: "{{ var('freshness_error_minutes', 1440) }}", period: minute}
    tables:
`)
	accepted := acceptedValues()
	for _, t := range tables {
		st, ok := sourceTables[t.Name]
		if !ok {
			return nil, fmt.Errorf("schemagen: no source description for table %s", t.Name)
		}
		fmt.Fprintf(&b, "      - name: %s\n", t.Name)
		fmt.Fprintf(&b, "        description: %s\n", quote(st.description))
		// A literal bound, not a macro: dbt renders these properties before
		// the project's macros exist. BigQuery and DuckDB read it alike.
		filter := fmt.Sprintf(`"%s >= timestamp '{{ var('source_start_date', '2000-01-01') }}'"`, st.partitionedBy)
		if st.freshness {
			fmt.Fprintf(&b, "        config:\n          loaded_at_field: %s\n", st.loadedAt)
			fmt.Fprintf(&b, "          freshness:\n            warn_after: *warn_after\n            error_after: *error_after\n            filter: %s\n", filter)
		} else {
			b.WriteString("        config:\n          freshness: null\n")
		}
		b.WriteString("        columns:\n")
		for _, c := range t.Columns {
			fmt.Fprintf(&b, "          - name: %s\n", c.Name)
			fmt.Fprintf(&b, "            description: %s\n", quote(c.Description))
			fmt.Fprintf(&b, "            data_type: %s\n", strings.ToLower(c.Type))
			// No not_null tests: a REQUIRED column is NOT NULL in DuckDB's
			// DDL and REQUIRED in BigQuery, so the warehouse enforces it.
			var tests []string
			if vals, ok := accepted[c.Name]; ok {
				var q []string
				for _, v := range vals {
					q = append(q, quote(v))
				}
				tests = append(tests, fmt.Sprintf("              - accepted_values:\n                  arguments:\n                    values: [%s]\n                  config:\n                    where: %s\n", strings.Join(q, ", "), filter))
			}
			if len(tests) > 0 {
				b.WriteString("            data_tests:\n")
				for _, t := range tests {
					b.WriteString(t)
				}
			}
		}
	}
	return []byte(b.String()), nil
}

// Generate returns every derived file, by path relative to the repository root.
func Generate(tables []transforms.Table) (map[string][]byte, error) {
	out := map[string][]byte{}
	for _, t := range tables {
		js, err := BigQuerySchema(t)
		if err != nil {
			return nil, err
		}
		out[SchemaPath(t.Name)] = js
	}
	src, err := DBTSources(tables)
	if err != nil {
		return nil, err
	}
	out[SourcesPath] = src
	return out, nil
}

// Check compares the files under root with what the tables generate and
// returns an error naming every file that differs and the first line where.
func Check(root string, tables []transforms.Table) error {
	files, err := Generate(tables)
	if err != nil {
		return err
	}
	var problems []string
	for _, path := range sortedKeys(files) {
		got, err := os.ReadFile(filepath.Join(root, path))
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", path, err))
			continue
		}
		if !bytes.Equal(got, files[path]) {
			problems = append(problems, fmt.Sprintf("%s differs from the Go definition: %s", path, firstDiff(got, files[path])))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("schema drift (run make schemas):\n  %s", strings.Join(problems, "\n  "))
	}
	return nil
}

func firstDiff(got, want []byte) string {
	g, w := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := 0; i < max(len(g), len(w)); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return fmt.Sprintf("line %d is %q, the definition makes %q", i+1, strings.TrimSpace(gl), strings.TrimSpace(wl))
		}
	}
	return "same lines, different bytes"
}

func sortedKeys(m map[string][]byte) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func main() {
	root := flag.String("root", ".", "repository root")
	check := flag.Bool("check", false, "compare the committed files with the definition instead of writing them")
	flag.Parse()
	if *check {
		if err := Check(*root, transforms.Tables); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	files, err := Generate(transforms.Tables)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for _, path := range sortedKeys(files) {
		full := filepath.Join(*root, path)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if err := os.WriteFile(full, files[path], 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println("wrote", path)
	}
}
