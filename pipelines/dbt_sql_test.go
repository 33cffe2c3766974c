package pipelines

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/campaignpulse/campaignpulse/transforms"
)

// TestDBTStagingNamesNoCTEAfterAColumn: no staging model names a CTE like a
// column of the pipeline table it reads. On BigQuery a name that is both a
// range variable (a CTE read with "from x") and a column resolves to the
// range variable, the whole row: "select cast(source as string) from
// source" casts a STRUCT, which BigQuery refuses, where DuckDB, the only
// warehouse the tests run, reads the column. dead_letter_events and
// fact_marketing_events both have a source column, and the staging models'
// import CTE was called source.
func TestDBTStagingNamesNoCTEAfterAColumn(t *testing.T) {
	models, err := filepath.Glob("../dbt/models/staging/*.sql")
	if err != nil || len(models) == 0 {
		t.Fatalf("no staging models under ../dbt/models/staging (%v)", err)
	}
	sourceRef := regexp.MustCompile(`source\(\s*'campaign_pulse'\s*,\s*'(\w+)'\s*\)`)
	cte := regexp.MustCompile(`(?m)^\s*(\w+) as \(`)
	for _, m := range models {
		b, err := os.ReadFile(m)
		if err != nil {
			t.Fatal(err)
		}
		columns := map[string]string{}
		for _, ref := range sourceRef.FindAllStringSubmatch(string(b), -1) {
			table, ok := transforms.TableByName(ref[1])
			if !ok {
				t.Errorf("%s reads %s, which the pipeline does not write", m, ref[1])
				continue
			}
			for _, c := range table.Columns {
				columns[c.Name] = table.Name
			}
		}
		if len(columns) == 0 {
			t.Errorf("%s reads no pipeline table", m)
		}
		for _, name := range cte.FindAllStringSubmatch(string(b), -1) {
			if table, ok := columns[name[1]]; ok {
				t.Errorf("%s: the CTE %s has the name of a column of %s; BigQuery would read the CTE's whole row where the model means the column", filepath.Base(m), name[1], table)
			}
		}
	}
}
