package terraform

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/campaignpulse/campaignpulse/enrichment"
	"github.com/campaignpulse/campaignpulse/templates"
	"github.com/campaignpulse/campaignpulse/transforms"
)

var environments = []string{"dev", "prod"}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func asObject(t *testing.T, v any, what string) map[string]any {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("%s: want an object literal, got %T %v", what, v, v)
	}
	return m
}

func asStrings(t *testing.T, v any, what string) []string {
	t.Helper()
	l, ok := v.([]any)
	if !ok {
		t.Fatalf("%s: want a list literal, got %T %v", what, v, v)
	}
	var out []string
	for _, e := range l {
		s, ok := e.(string)
		if !ok {
			t.Fatalf("%s: want strings, got %T %v", what, e, e)
		}
		out = append(out, s)
	}
	return out
}

// TestBigQueryTablesAreTheWarehouseTables: the bigquery module creates one
// table per table of transforms.Tables and no other, each from
// schemas/<name>.json (the file the schema generator writes from the Go row
// type), partitioned by day on a TIMESTAMP column of that table and clustered
// on at most four of its columns.
func TestBigQueryTablesAreTheWarehouseTables(t *testing.T) {
	const mainTF = "modules/bigquery/main.tf"
	tables := asObject(t, localValue(t, mainTF, "tables"), "local.tables")

	var want []string
	for _, tb := range transforms.Tables {
		want = append(want, tb.Name)
	}
	sort.Strings(want)
	if got := keys(tables); !reflect.DeepEqual(got, want) {
		t.Errorf("%s creates tables %v; transforms.Tables defines %v", mainTF, got, want)
	}

	src := readFile(t, mainTF)
	// The table resource iterates local.tables and reads each schema by name.
	res := regexp.MustCompile(`(?s)resource "google_bigquery_table" "this" \{(.*?)\n\}`).FindStringSubmatch(src)
	if res == nil {
		t.Fatalf(`%s: no resource "google_bigquery_table" "this"`, mainTF)
	}
	for _, line := range []string{
		`for_each = local.tables`,
		`table_id = each.key`,
		`schema = file("${local.schemas_dir}/${each.key}.json")`,
		`field = each.value.partition_field`,
		`clustering = each.value.clustering`,
		`type = "DAY"`,
	} {
		if !regexp.MustCompile(`(?m)^\s*` + strings.ReplaceAll(regexp.QuoteMeta(line), " = ", `\s*=\s*`) + `\s*$`).MatchString(res[1]) {
			t.Errorf("%s: google_bigquery_table.this lacks `%s`", mainTF, line)
		}
	}
	// schemas_dir defaults to terraform/schemas, relative to the module.
	m := regexp.MustCompile(`schemas_dir\s*=\s*coalesce\(var\.schemas_dir,\s*"\$\{path\.module\}/([^"]+)"\)`).FindStringSubmatch(src)
	if m == nil {
		t.Fatalf("%s: local.schemas_dir is not coalesce(var.schemas_dir, \"${path.module}/...\")", mainTF)
	}
	if dir := filepath.Clean(filepath.Join("modules/bigquery", m[1])); dir != "schemas" {
		t.Errorf("%s: schemas are read from terraform/%s, want terraform/schemas", mainTF, dir)
	}

	for _, tb := range transforms.Tables {
		spec, ok := tables[tb.Name].(map[string]any)
		if !ok {
			continue // reported above
		}
		cols := map[string]transforms.Column{}
		for _, c := range tb.Columns {
			cols[c.Name] = c
		}
		pf, _ := spec["partition_field"].(string)
		if c, ok := cols[pf]; !ok || c.Type != "TIMESTAMP" {
			t.Errorf("%s: partition_field %q is not a TIMESTAMP column of %s", tb.Name, pf, tb.Name)
		}
		clustering := asStrings(t, spec["clustering"], tb.Name+".clustering")
		if len(clustering) == 0 || len(clustering) > 4 {
			t.Errorf("%s: clustering %v: BigQuery takes 1 to 4 columns", tb.Name, clustering)
		}
		for _, c := range clustering {
			if _, ok := cols[c]; !ok {
				t.Errorf("%s: clustering column %q is not a column of %s", tb.Name, c, tb.Name)
			}
		}
		if tb.Name != transforms.TableDeadLetters && !slices.Equal(clustering, []string{"campaign_id", "platform"}) {
			t.Errorf("%s: clustered by %v, want campaign_id, platform (the marts' filters)", tb.Name, clustering)
		}
	}
}

// TestSchemaFilesAreTheGoDefinition: the schema files Terraform reads hold
// the columns of the Go row types, in order, with their types and modes. (The
// schema generator's own drift test compares them byte for byte; this one
// fails on its own if Terraform would create a table the pipeline cannot
// write.)
func TestSchemaFilesAreTheGoDefinition(t *testing.T) {
	for _, tb := range transforms.Tables {
		path := filepath.Join("schemas", tb.Name+".json")
		b, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("%s: %v (the BigQuery module reads it; generate it from transforms/rows.go)", tb.Name, err)
			continue
		}
		var fields []struct{ Name, Type, Mode string }
		if err := json.Unmarshal(b, &fields); err != nil {
			t.Errorf("%s: %v", path, err)
			continue
		}
		var got, want []string
		for _, f := range fields {
			got = append(got, f.Name+" "+bqType(f.Type)+" "+f.Mode)
		}
		for _, c := range tb.Columns {
			want = append(want, c.Name+" "+bqType(c.Type)+" "+c.Mode)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s disagrees with transforms.%s:\n got  %v\n want %v", path, tb.Row.Name(), got, want)
		}
	}
}

// bqType maps BigQuery's legacy type names, which schema files may use, to
// the standard SQL names of the Go tags.
func bqType(t string) string {
	switch t {
	case "INTEGER":
		return "INT64"
	case "FLOAT":
		return "FLOAT64"
	case "BOOLEAN":
		return "BOOL"
	}
	return t
}

// TestBigtableIsTheEnrichmentLayout: the bigtable module's default tables,
// column families and GC rules are enrichment.Layout's.
func TestBigtableIsTheEnrichmentLayout(t *testing.T) {
	const varsTF = "modules/bigtable/variables.tf"
	tables := asObject(t, variableDefault(t, varsTF, "tables"), "var.tables default")

	type family struct {
		versions int
		age      time.Duration
	}
	got := map[string]family{}
	for tname, spec := range tables {
		fams := asObject(t, asObject(t, spec, tname)["column_families"], tname+".column_families")
		for fname, gc := range fams {
			g := asObject(t, gc, tname+"/"+fname)
			var f family
			if v, ok := g["max_versions"].(float64); ok {
				f.versions = int(v)
			}
			if s, ok := g["max_age"].(string); ok {
				d, err := time.ParseDuration(s)
				if err != nil {
					t.Errorf("%s/%s: max_age %q: %v", tname, fname, s, err)
				}
				f.age = d
			}
			got[tname+"/"+fname] = f
		}
	}
	want := map[string]family{}
	for _, tb := range enrichment.Layout {
		for _, f := range tb.Families {
			want[tb.Name+"/"+f.Name] = family{f.MaxVersions, f.MaxAge}
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s default (table/family: {max versions, max age}):\n  %v\nenrichment.Layout:\n  %v", varsTF, got, want)
	}
}

// TestSourcesAreThePlatforms: the Pub/Sub sources (one topic each) default to
// the platforms the event contract accepts, in the module and in every
// environment.
func TestSourcesAreThePlatforms(t *testing.T) {
	files := []string{"modules/pubsub/variables.tf"}
	for _, env := range environments {
		files = append(files, filepath.Join("environments", env, "variables.tf"))
	}
	for _, file := range files {
		got := asStrings(t, variableDefault(t, file, "sources"), file+" sources")
		if !slices.Equal(got, transforms.Platforms) {
			t.Errorf("%s: sources default %v, transforms.Platforms %v", file, got, transforms.Platforms)
		}
	}
}

// TestDeadLetterAlertCountsEveryStage: the dead-letter alert's counter regex
// (PromQL's =~ is anchored at both ends, as here) matches the dead-letter
// counter of every stage that has an error code, and neither the input
// counter it divides by nor the sink's count of unwritable dead letters,
// which their own stage counted already.
func TestDeadLetterAlertCountsEveryStage(t *testing.T) {
	const vars = "modules/monitoring/variables.tf"
	str := func(name string) string {
		t.Helper()
		s, ok := variableDefault(t, vars, name).(string)
		if !ok {
			t.Fatalf("%s: the default of %s is not a string", vars, name)
		}
		return s
	}
	re, err := regexp.Compile("^(?:" + str("dead_letter_counter_regex") + ")$")
	if err != nil {
		t.Fatal(err)
	}
	if in := str("input_counter"); in != transforms.CounterIn || re.MatchString(in) {
		t.Errorf("input_counter %q: want %q, not matched by the dead-letter regex %s", in, transforms.CounterIn, re)
	}
	for _, stage := range transforms.ErrorCodes {
		c, ok := transforms.DeadLetterCounters[stage]
		if !ok {
			t.Errorf("stage %s has error codes but no dead-letter counter in transforms.DeadLetterCounters", stage)
		} else if !re.MatchString(c) {
			t.Errorf("the dead-letter alert's regex %s misses %s, stage %s's counter", re, c, stage)
		}
	}
	if re.MatchString("sink_unwritable_dead_letters") {
		t.Errorf("the dead-letter alert's regex %s counts unwritable dead letters twice", re)
	}
}

// TestNothingTakesWhatARunningJobHolds: the job's source subscriptions have
// no Pub/Sub dead-letter or retry policy (documented as not supported with
// Dataflow: missed deadline extensions count as delivery attempts, and
// messages the job holds would move to a topic no one reads), and by default
// no lifecycle rule deletes the staged worker binary a running job's new
// workers download.
func TestNothingTakesWhatARunningJobHolds(t *testing.T) {
	pubsub := readFile(t, "modules/pubsub/main.tf")
	for _, block := range []string{"dead_letter_policy", "retry_policy"} {
		if regexp.MustCompile(`(?m)^\s*` + block + `\s*\{`).MatchString(pubsub) {
			t.Errorf("modules/pubsub/main.tf: the source subscriptions have a %s, which Dataflow does not support", block)
		}
	}
	const vars = "modules/gcs/variables.tf"
	if d := variableDefault(t, vars, "staging_retention_days"); d != 0.0 { // numbers read as float64
		t.Errorf("%s: staging_retention_days defaults to %v; a rule that age would delete a running job's worker binary", vars, d)
	}
}

// TestLongestNamePrefixFits: the longest name_prefix an environment accepts
// still makes a worker account id and a Bigtable instance id their modules
// accept, and a Bigtable cluster id within 30 characters; and every
// name_prefix and project_id an environment accepts together make a bucket
// name prefix (<project_id>-<name_prefix>-<env>) the gcs module accepts, and
// bucket names within Cloud Storage's 63 characters. The bucket names depend
// on both variables, so the environment bounds their combined length in a
// second validation of name_prefix; the test reads that bound and checks the
// longest project id with the longest prefix the bound then leaves, and the
// longest prefix with the longest project id the bound then leaves. So a
// valid prefix never fails later in plan or apply.
func TestLongestNamePrefixFits(t *testing.T) {
	account := variablePattern(t, "modules/iam/variables.tf", "account_id")
	instance := variablePattern(t, "modules/bigtable/variables.tf", "instance_name")
	bucketPrefix := variablePattern(t, "modules/gcs/variables.tf", "name_prefix")
	buckets := keys(asObject(t, localValue(t, "modules/gcs/main.tf", "buckets"), "modules/gcs local.buckets"))
	if len(buckets) == 0 {
		t.Fatal("modules/gcs/main.tf: no buckets in local.buckets")
	}
	// Cloud Storage: 3-63 characters (without dots), lowercase letters,
	// digits, hyphens and underscores, starting and ending with a letter or
	// digit.
	bucketName := regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{1,61}[a-z0-9]$`)
	for _, env := range environments {
		vars := filepath.Join("environments", env, "variables.tf")
		prefixPattern := variablePattern(t, vars, "name_prefix")
		longest := longestMatch(prefixPattern)
		prefix := longest + "-" + env // local.prefix in environments/<env>/main.tf
		if id := prefix + "-worker"; !account.MatchString(id) {
			t.Errorf("%s: name_prefix %q (%d characters) makes the account id %q, which modules/iam refuses", env, longest, len(longest), id)
		}
		if id := prefix + "-bt"; !instance.MatchString(id) || len(id+"-c1") > 30 {
			t.Errorf("%s: name_prefix %q (%d characters) makes the Bigtable instance %q and cluster %q (at most 30)", env, longest, len(longest), id, id+"-c1")
		}

		// The bucket name prefix, "${var.project_id}-${local.prefix}" in main.tf.
		main := filepath.Join("environments", env, "main.tf")
		if !regexp.MustCompile(`(?m)^\s*name_prefix\s*=\s*"\$\{var\.project_id\}-\$\{local\.prefix\}"$`).MatchString(moduleBlock(t, main, "gcs")) {
			t.Errorf("%s: module gcs is not given name_prefix = \"${var.project_id}-${local.prefix}\"; the test checks that form", main)
			continue
		}
		projectPattern := variablePattern(t, vars, "project_id")
		longestProject := longestMatch(projectPattern)
		bound := len(longestProject) + 1 + len(prefix) // no bound: both at their longest
		m := regexp.MustCompile(`(?s)variable "name_prefix" \{.*?condition\s*=\s*length\("\$\{var\.project_id\}-\$\{var\.name_prefix\}-` + env + `"\)\s*<=\s*(\d+)\s*\n`).FindStringSubmatch(readFile(t, vars))
		if m != nil {
			if _, err := fmt.Sscan(m[1], &bound); err != nil {
				t.Fatalf("%s: %v", vars, err)
			}
		}
		// Each extreme the bound allows: the longest project id with the
		// longest prefix left, and the longest prefix with the longest
		// project id left (both at least as long as their own minimum).
		seen := map[[2]int]bool{}
		for _, c := range []struct{ project, prefix int }{
			{len(longestProject), min(len(longest), bound-len(longestProject)-2-len(env))},
			{min(len(longestProject), bound-len(longest)-2-len(env)), len(longest)},
		} {
			project, namePrefix := strings.Repeat("p", c.project), strings.Repeat("a", c.prefix)
			if seen[[2]int{c.project, c.prefix}] || !projectPattern.MatchString(project) || !prefixPattern.MatchString(namePrefix) {
				continue // checked, or the bound leaves no valid value at this extreme
			}
			seen[[2]int{c.project, c.prefix}] = true
			name := project + "-" + namePrefix + "-" + env
			if !bucketPrefix.MatchString(name) {
				t.Errorf("%s: project_id (%d characters) and name_prefix (%d) make the bucket name prefix %q (%d characters), which modules/gcs refuses; bound the two in %s", env, c.project, c.prefix, name, len(name), vars)
			}
			for _, b := range buckets {
				if n := name + "-" + b; !bucketName.MatchString(n) {
					t.Errorf("%s: the bucket name %q (%d characters) is not a valid Cloud Storage bucket name (at most 63)", env, n, len(n))
				}
			}
		}
	}
	// The gcs module's own limit: its longest prefix with every bucket.
	for _, b := range buckets {
		if n := longestMatch(bucketPrefix) + "-" + b; !bucketName.MatchString(n) {
			t.Errorf("modules/gcs: name_prefix %d characters long makes the bucket %q (%d characters, at most 63)", len(n)-len(b)-1, n, len(n))
		}
	}
}

// TestJobParametersAreTemplateParameters: every parameter an environment
// launches the job with is a parameter of templates/metadata.json.
func TestJobParametersAreTemplateParameters(t *testing.T) {
	m, err := templates.Load()
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, n := range m.Names() {
		known[n] = true
	}
	for _, env := range environments {
		file := filepath.Join("environments", env, "main.tf")
		params := jobParameters(t, file)
		var unknown []string
		for _, name := range keys(params) {
			if !known[name] {
				unknown = append(unknown, name)
			}
		}
		if len(unknown) > 0 {
			t.Errorf("%s launches the job with parameters that are not in templates/metadata.json: %s", file, strings.Join(unknown, ", "))
		}
	}
}

// TestModulesFollowTheLayout: every module and environment has the four
// files of the terraform-google-modules layout.
func TestModulesFollowTheLayout(t *testing.T) {
	dirs, _ := filepath.Glob("modules/*")
	for _, env := range environments {
		dirs = append(dirs, filepath.Join("environments", env))
	}
	if len(dirs) < 9 {
		t.Fatalf("found only %v", dirs)
	}
	for _, d := range dirs {
		for _, f := range []string{"main.tf", "variables.tf", "outputs.tf", "versions.tf"} {
			if _, err := os.Stat(filepath.Join(d, f)); err != nil {
				t.Errorf("%s: %v", d, err)
			}
		}
	}
}

// TestEnvironmentsAgree: dev and prod wire the same modules the same way and
// export the same outputs; only their name and variable defaults differ.
func TestEnvironmentsAgree(t *testing.T) {
	for _, f := range []string{"main.tf", "outputs.tf", "versions.tf", "terraform.tfvars.example"} {
		dev := readFile(t, filepath.Join("environments", "dev", f))
		prod := readFile(t, filepath.Join("environments", "prod", f))
		norm := func(s, env string) string {
			s = regexp.MustCompile(`\b`+env+`\b`).ReplaceAllString(s, "ENV")
			return regexp.MustCompile(`(?m)^max_workers = \d+$`).ReplaceAllString(s, "max_workers = N")
		}
		if norm(dev, "dev") != norm(prod, "prod") {
			t.Errorf("environments/dev/%s and environments/prod/%s differ beyond the environment's name", f, f)
		}
	}
}

// TestKeyGrantsReachAgentsThatExist: with a key, every service agent the
// cmek module grants exists before its grant. Google creates some agents
// only on first use, and the encrypted resource the grant is for is that
// first use, so on a fresh project the grant would fail with "does not
// exist". Each agent is either read through its API (which creates it),
// generated with google_project_service_identity before the grants, or one
// that enabling its API creates (Pub/Sub's, Dataflow's and Compute Engine's).
func TestKeyGrantsReachAgentsThatExist(t *testing.T) {
	const file = "modules/cmek/main.tf"
	createdByTheirAPI := map[string]bool{"pubsub": true, "dataflow": true, "compute": true}
	agents := asObject(t, localValue(t, file, "agents"), "local.agents")
	identities := asObject(t, localValue(t, file, "identity_apis"), "local.identity_apis")
	src := readFile(t, file)
	if len(identities) > 0 && !regexp.MustCompile(`(?s)resource "google_kms_crypto_key_iam_member" "service_agents" \{[^}]*depends_on\s*=\s*\[google_project_service_identity\.agents\]`).MatchString(src) {
		t.Errorf("%s: the key grants do not depend on google_project_service_identity.agents", file)
	}
	for service, member := range agents {
		expr, _ := member.(Expr)
		switch {
		case strings.Contains(string(expr), "data."):
			// read through its API, which creates it
		case identities[service] != nil:
			if api, _ := identities[service].(string); !strings.HasSuffix(api, ".googleapis.com") {
				t.Errorf("%s: identity_apis[%q] = %v, not an API name", file, service, identities[service])
			}
		case !createdByTheirAPI[service]:
			t.Errorf("%s: the %s agent (%v) is granted by its email, but nothing creates it first", file, service, member)
		}
	}
	for service := range identities {
		if agents[service] == nil {
			t.Errorf("%s: identity_apis names %q, which local.agents does not grant", file, service)
		}
	}
}

// TestScratchBucketsDoNotSoftDelete: soft delete is off by default on the
// buckets Dataflow writes and deletes its files in (staging, temp), as the
// Beam SDK's launch warning and Dataflow's docs advise, and the buckets
// apply the setting.
func TestScratchBucketsDoNotSoftDelete(t *testing.T) {
	const file, vars = "modules/gcs/main.tf", "modules/gcs/variables.tf"
	if d := variableDefault(t, vars, "scratch_soft_delete_seconds"); d != 0.0 {
		t.Errorf("%s: scratch_soft_delete_seconds defaults to %v, want 0 (off)", vars, d)
	}
	buckets := asObject(t, localValue(t, file, "buckets"), "local.buckets")
	for _, name := range []string{"staging", "temp"} {
		b := asObject(t, buckets[name], name)
		if b["soft_delete"] != Expr("var.scratch_soft_delete_seconds") {
			t.Errorf("%s: the %s bucket's soft_delete is %v, want var.scratch_soft_delete_seconds", file, name, b["soft_delete"])
		}
	}
	if !regexp.MustCompile(`(?s)dynamic "soft_delete_policy" \{\s*for_each = each\.value\.soft_delete == null \? \[\] : \[each\.value\.soft_delete\]\s*content \{\s*retention_duration_seconds = soft_delete_policy\.value`).MatchString(readFile(t, file)) {
		t.Errorf("%s: the buckets do not set soft_delete_policy from each.value.soft_delete", file)
	}
}

// TestANewReleaseIsANewRun: in each environment the job's name ends with
// var.release, the job and its alerts use that one name, and the
// environment's parameters leave run_id to modules/dataflow, which sets it
// from the job name and the plan's timestamp, which the job keeps
// (ignore_changes). So shipping with a new release replaces the job under a
// new name, and every job Terraform creates (a new release's, a replacement
// for new settings, or one launched again after a failure under the same
// name) is a new run that dbt adds to the old job's. Every release the
// variable accepts, after the longest prefix, makes a name Dataflow accepts.
func TestANewReleaseIsANewRun(t *testing.T) {
	dataflowName := regexp.MustCompile(`^[a-z]([-a-z0-9]*[a-z0-9])?$`) // and at most 1,024 characters
	for _, env := range environments {
		main := filepath.Join("environments", env, "main.tf")
		src := readFile(t, main)
		if !strings.Contains(src, `job_name_prefix = "${local.prefix}-streaming-"`) ||
			!strings.Contains(src, `job_name        = "${local.job_name_prefix}${var.release}"`) {
			t.Errorf("%s: local.job_name is not local.job_name_prefix followed by var.release", main)
		}
		for _, module := range []string{"dataflow", "monitoring"} {
			if !regexp.MustCompile(`(?m)^\s*job_name\s*=\s*local\.job_name$`).MatchString(moduleBlock(t, main, module)) {
				t.Errorf("%s: module %s is not given job_name = local.job_name", main, module)
			}
		}
		if _, ok := jobParameters(t, main)["run_id"]; ok {
			t.Errorf("%s: the job's parameters set run_id, so a re-created job would not be a new run", main)
		}
		vars := filepath.Join("environments", env, "variables.tf")
		release := variablePattern(t, vars, "release")
		if d, _ := variableDefault(t, vars, "release").(string); !release.MatchString(d) {
			t.Errorf("%s: the default release %q fails its own validation", vars, d)
		}
		longestPrefix := longestMatch(variablePattern(t, vars, "name_prefix"))
		for _, r := range []string{longestMatch(release), "0", "v2-1"} {
			if name := longestPrefix + "-" + env + "-streaming-" + r; release.MatchString(r) && (!dataflowName.MatchString(name) || len(name) > 1024) {
				t.Errorf("%s: release %q makes the job name %q, which Dataflow refuses", vars, r, name)
			}
		}
	}
	const module = "modules/dataflow/main.tf"
	src := readFile(t, module)
	if !regexp.MustCompile(`(?m)^\s*run_id\s*=\s*"\$\{var\.job_name\}-\$\{formatdate\("[^"]+", plantimestamp\(\)\)\}"$`).MatchString(src) ||
		!regexp.MustCompile(`(?m)^\s*parameters\s*=\s*merge\(var\.parameters, \{ run_id = local\.run_id \}\)$`).MatchString(src) ||
		!regexp.MustCompile(`(?m)^\s*parameters\s*=\s*local\.parameters$`).MatchString(src) {
		t.Errorf("%s: the job's parameters are not var.parameters with run_id = <job name>-<plan timestamp> over them", module)
	}
	// ignore_changes lists parameters: TestTerraformNeverUpdatesTheJobInPlace.
}

// TestWorkerMayTrackTheWatermark: when the job reads event time from a
// message attribute, Dataflow creates a watermark tracking subscription per
// source topic as the worker, so the worker needs a custom project role with
// the subscription permissions and roles/pubsub.subscriber on the source
// topics; without them the job starts and reads nothing. By default the job
// reads publish time (the golden job has no timestamp attribute) and none of
// that is granted: both environments grant it exactly when the job's
// pubsub_timestamp_attribute parameter is set.
func TestWorkerMayTrackTheWatermark(t *testing.T) {
	golden := readFile(t, "../templates/testdata/dataflow_job.golden")
	if regexp.MustCompile(`(?m)^pubsub_read .* timestamp_attribute=\S+`).MatchString(golden) {
		t.Errorf("the production job reads a timestamp attribute by default; the environments grant the tracking subscriptions only when its parameter is set")
	}
	const file = "modules/iam/main.tf"
	src := readFile(t, file)
	role := regexp.MustCompile(`(?s)resource "google_project_iam_custom_role" "(\w+)" \{\s*count\s*=\s*var\.tracking_subscriptions \? 1 : 0\n.*?permissions = (\[.*?\])`).FindStringSubmatch(src)
	if role == nil {
		t.Fatalf("%s: no custom project role for the tracking subscriptions, made when var.tracking_subscriptions is set", file)
	}
	var perms []string
	if err := json.Unmarshal([]byte(regexp.MustCompile(`,\s*\]`).ReplaceAllString(role[2], "]")), &perms); err != nil {
		t.Fatalf("%s: the role's permissions %s: %v", file, role[2], err)
	}
	for _, p := range []string{"pubsub.subscriptions.create", "pubsub.subscriptions.get", "pubsub.subscriptions.consume", "pubsub.subscriptions.delete"} {
		if !slices.Contains(perms, p) {
			t.Errorf("%s: the custom role lacks %s", file, p)
		}
	}
	if !regexp.MustCompile(`(?s)resource "google_project_iam_member" "\w+" \{\s*count\s*=\s*var\.tracking_subscriptions \? 1 : 0\n[^}]*role\s*=\s*google_project_iam_custom_role\.` + role[1] + `\[0\]\.id[^}]*member\s*=\s*local\.worker`).MatchString(src) {
		t.Errorf("%s: the worker is not granted the custom role %s on the project when var.tracking_subscriptions is set", file, role[1])
	}
	if !regexp.MustCompile(`(?s)resource "google_pubsub_topic_iam_member" "\w+" \{\s*for_each = var\.tracking_subscriptions \? var\.topic_names : \{\}[^}]*role\s*=\s*"roles/pubsub\.(subscriber|editor)"[^}]*member\s*=\s*local\.worker`).MatchString(src) {
		t.Errorf("%s: the worker may not attach subscriptions to each source topic when var.tracking_subscriptions is set", file)
	}
	for _, env := range environments {
		main := filepath.Join("environments", env, "main.tf")
		iam := moduleBlock(t, main, "iam")
		if !regexp.MustCompile(`(?m)^\s*topic_names\s*=\s*module\.pubsub\.topic_names$`).MatchString(iam) {
			t.Errorf("%s: module iam is not given the source topics", main)
		}
		if !regexp.MustCompile(`(?m)^\s*tracking_subscriptions\s*=\s*lookup\(local\.pipeline_parameters, "pubsub_timestamp_attribute", ""\) != ""$`).MatchString(iam) {
			t.Errorf("%s: module iam's tracking_subscriptions does not follow the job's pubsub_timestamp_attribute parameter", main)
		}
	}
}

// variablePattern returns the regex a variable's validation in file checks
// it against (regex("...", var.<variable>)).
func variablePattern(t *testing.T, file, variable string) *regexp.Regexp {
	t.Helper()
	m := regexp.MustCompile(`(?s)variable "` + variable + `" \{.*?regex\("([^"]+)", var\.` + variable + `\)`).FindStringSubmatch(readFile(t, file))
	if m == nil {
		t.Fatalf("%s: no regex validation of %s", file, variable)
	}
	return regexp.MustCompile(m[1])
}

// longestMatch returns the longest run of "a", under 64 characters, that re
// accepts: the longest name a length-limited validation lets through.
func longestMatch(re *regexp.Regexp) string {
	longest := ""
	for s := "a"; len(s) < 64; s += "a" {
		if re.MatchString(s) {
			longest = s
		}
	}
	return longest
}

// TestAGoneJobAlerts: the monitoring module alerts when the job failed or
// stopped reporting, which the value thresholds cannot see (a job that is
// gone writes no values): a policy with a condition on
// dataflow.googleapis.com/job/is_failed and an absence condition on the
// job's system lag, created only while a job is expected, which each
// environment ties to launch_job. It watches every release's job as one
// series (job_name_prefix, a cross-series reducer), so a release change, the
// old job drained before the new one reports, fires it only if the gap
// outlasts absent_duration. The PromQL condition on the user counters
// skips metric validation, since the first apply runs before any job has
// reported them.
func TestAGoneJobAlerts(t *testing.T) {
	const file = "modules/monitoring/main.tf"
	src := readFile(t, file)
	policy := regexp.MustCompile(`(?s)resource "google_monitoring_alert_policy" "job_not_running" \{\n(.*?)\n\}\n`).FindStringSubmatch(src)
	if policy == nil {
		t.Fatalf("%s: no job_not_running alert policy", file)
	}
	body := policy[1]
	for what, re := range map[string]string{
		"created only when a job is expected": `^\s*count\s*=\s*var\.job_expected \? 1 : 0`,
		"a condition on is_failed":            `(?s)condition_threshold \{\s*filter\s*=\s*"\$\{local\.family_filter\} AND metric\.type = \\"dataflow\.googleapis\.com/job/is_failed\\""\s*comparison\s*=\s*"COMPARISON_GT"\s*threshold_value\s*=\s*0`,
		"an absence condition on system lag":  `(?s)condition_absent \{\s*filter\s*=\s*"\$\{local\.family_filter\} AND metric\.type = \\"dataflow\.googleapis\.com/job/system_lag\\""\s*duration\s*=\s*var\.absent_duration`,
		"either condition fires it (OR)":      `combiner\s*=\s*"OR"`,
	} {
		if !regexp.MustCompile(`(?m)` + re).MatchString(body) {
			t.Errorf("%s: job_not_running lacks %s", file, what)
		}
	}
	if !regexp.MustCompile(`(?s)condition_prometheus_query_language \{.*?\n\s*disable_metric_validation\s*=\s*true\n.*?\n    \}`).MatchString(src) {
		t.Errorf("%s: the PromQL condition validates its metric, which no job has reported at the first apply", file)
	}
	if c, r := strings.Count(body, "conditions {"), len(regexp.MustCompile(`cross_series_reducer\s*=\s*"REDUCE_MAX"`).FindAllString(body, -1)); c != r {
		t.Errorf("%s: job_not_running has %d conditions and %d reduce the jobs to one series: a drained job's series going quiet would fire it", file, c, r)
	}
	if !strings.Contains(src, `family_filter = "resource.type = \"dataflow_job\" AND resource.labels.job_name = starts_with(\"${var.job_name_prefix}\")"`) {
		t.Errorf("%s: local.family_filter does not select every job whose name starts with var.job_name_prefix", file)
	}
	if strings.Contains(body, "local.job_filter") || strings.Contains(body, "var.job_name}:") {
		t.Errorf("%s: job_not_running still watches, or is named after, one release's job: a release change would fire it", file)
	}
	for _, env := range environments {
		main := filepath.Join("environments", env, "main.tf")
		block := moduleBlock(t, main, "monitoring")
		if !regexp.MustCompile(`(?m)^\s*job_expected\s*=\s*var\.launch_job$`).MatchString(block) {
			t.Errorf("%s: module monitoring's job_expected is not var.launch_job", main)
		}
		if !regexp.MustCompile(`(?m)^\s*job_name_prefix\s*=\s*local\.job_name_prefix$`).MatchString(block) {
			t.Errorf("%s: module monitoring's job_name_prefix is not local.job_name_prefix", main)
		}
	}
}

// jobParameters reads the pipeline flags an environment's main.tf launches
// the job with (the literal map merged with var.pipeline_parameters).
func jobParameters(t *testing.T, mainTF string) map[string]any {
	t.Helper()
	return asObject(t, literalAfter(t, mainTF, `pipeline_parameters\s*=\s*merge\(`), mainTF+" pipeline_parameters")
}

// moduleBlock returns the text of the module block named name in file.
func moduleBlock(t *testing.T, file, name string) string {
	t.Helper()
	block := regexp.MustCompile(`(?s)\nmodule "` + regexp.QuoteMeta(name) + `" \{.*?\n\}`).FindString(readFile(t, file))
	if block == "" {
		t.Fatalf("%s: no module %q", file, name)
	}
	return block
}

// TestJobStartsAfterItsRolesAndTables: in both environments the Dataflow
// job waits for the worker's roles, every BigQuery table and the Bigtable
// tables. Its parameters reference only the dataset and the instance, so
// without the explicit dependency the first apply may launch workers that
// append to tables, or read tables, not created yet, and a schema change
// may reach the job before the table.
func TestJobStartsAfterItsRolesAndTables(t *testing.T) {
	for _, env := range environments {
		main := filepath.Join("environments", env, "main.tf")
		deps := regexp.MustCompile(`(?m)^\s*depends_on\s*=\s*\[([^\]]*)\]`).FindStringSubmatch(moduleBlock(t, main, "dataflow"))
		if deps == nil {
			t.Errorf("%s: module dataflow has no depends_on", main)
			continue
		}
		for _, m := range []string{"module.iam", "module.bigquery", "module.bigtable"} {
			if !regexp.MustCompile(`(^|[\s,])` + regexp.QuoteMeta(m) + `($|[\s,])`).MatchString(deps[1]) {
				t.Errorf("%s: module dataflow does not depend on %s (depends_on = [%s])", main, m, deps[1])
			}
		}
	}
}

// TestTerraformNeverUpdatesTheJobInPlace: the google-beta provider builds an
// update's launch request from the job's state, and reads a flex template
// job's worker settings back from the options the SDK wrote into the job,
// which the Go SDK leaves without them: an update (a new template object,
// new parameters) would relaunch the job with no worker ceiling, on the
// default network. So every argument of the job an update would send is
// ignored after creation and taken from local.launch, whose every change
// replaces the job (terraform_data.launch in replace_triggered_by); only
// the arguments that replace it anyway (or change nothing on the job:
// on_delete) are set apart, and parameters, which adds the run_id to
// local.launch's.
func TestTerraformNeverUpdatesTheJobInPlace(t *testing.T) {
	main := filepath.Join("modules", "dataflow", "main.tf")
	src := readFile(t, main)
	block := regexp.MustCompile(`(?s)\nresource "google_dataflow_flex_template_job" "this" \{.*?\n\}`).FindString(src)
	if block == "" {
		t.Fatalf("%s: no google_dataflow_flex_template_job.this", main)
	}
	life := regexp.MustCompile(`(?s)\n  lifecycle \{.*?\n  \}`).FindString(block)
	m := regexp.MustCompile(`(?s)ignore_changes\s*=\s*\[([^\]]*)\]`).FindStringSubmatch(life)
	if m == nil {
		t.Fatalf("%s: the job has no lifecycle ignore_changes", main)
	}
	ignored := map[string]bool{}
	for _, a := range strings.Split(m[1], ",") {
		if a = strings.TrimSpace(a); a != "" {
			ignored[a] = true
		}
	}
	if !regexp.MustCompile(`(?m)^\s*replace_triggered_by\s*=\s*\[terraform_data\.launch\]$`).MatchString(life) ||
		!regexp.MustCompile(`(?s)\nresource "terraform_data" "launch" \{\s*input = local\.launch\s*\}`).MatchString(src) {
		t.Errorf("%s: a change of local.launch does not replace the job (terraform_data.launch { input = local.launch } in replace_triggered_by)", main)
	}
	launch := asObject(t, localValue(t, main, "launch"), main+" local.launch")
	if p := launch["parameters"]; p != Expr("var.parameters") {
		t.Errorf("%s: local.launch.parameters = %v, want var.parameters (without the run_id, new at every plan)", main, p)
	}
	for a := range launch {
		if !ignored[a] {
			t.Errorf("%s: %s is in local.launch but not in ignore_changes: a change of it would update the job in place", main, a)
		}
	}
	apart := map[string]string{
		"provider": "", "project": "var.project_id", "region": "var.region", "name": "var.job_name",
		"enable_streaming_engine": "", "on_delete": "var.on_delete", "parameters": "local.parameters",
	}
	args := regexp.MustCompile(`(?m)^  ([a-z_]+)\s*=\s*(.+)$`).FindAllStringSubmatch(strings.Replace(block, life, "", 1), -1)
	seen := map[string]bool{}
	for _, a := range args {
		name, expr := a[1], strings.TrimSpace(a[2])
		seen[name] = true
		if want, ok := apart[name]; ok {
			if want != "" && expr != want {
				t.Errorf("%s: the job's %s = %s, want %s", main, name, expr, want)
			}
			continue
		}
		if expr != "local.launch."+name || launch[name] == nil || !ignored[name] {
			t.Errorf("%s: the job's %s = %s: not local.launch.%s, or not in local.launch and ignore_changes, so a change of it updates the job in place", main, name, expr, name)
		}
	}
	if !ignored["parameters"] {
		t.Errorf("%s: ignore_changes does not list parameters: every plan would update the job to a new run_id", main)
	}
	for _, a := range []string{"container_spec_gcs_path", "num_workers", "max_workers", "machine_type", "network", "subnetwork", "staging_location", "service_account_email", "temp_location", "labels"} {
		if !seen[a] {
			t.Errorf("%s: the job does not set %s (the test reads its arguments at two spaces' indentation)", main, a)
		}
	}
}

// TestWorkerHoldsNoProjectRoleItDoesNotUse: the worker's project-wide roles
// are only those that exist at project level alone: roles/dataflow.worker
// and the tracking-subscription custom role. The BigQuery sink appends
// through the Storage Write API and runs no job, so roles/bigquery.jobUser
// would only let the account run (and bill) query jobs in the project.
func TestWorkerHoldsNoProjectRoleItDoesNotUse(t *testing.T) {
	main := filepath.Join("modules", "iam", "main.tf")
	blocks := regexp.MustCompile(`(?s)\nresource "google_project_iam_member" "([^"]+)" \{.*?\n\}`).FindAllStringSubmatch(readFile(t, main), -1)
	if len(blocks) == 0 {
		t.Fatalf("%s: no project-level grant found; the test reads them by resource type", main)
	}
	allowed := map[string]bool{`"roles/dataflow.worker"`: true, `google_project_iam_custom_role.tracking_subscriptions[0].id`: true}
	for _, b := range blocks {
		role := regexp.MustCompile(`(?m)^\s*role\s*=\s*(.+)$`).FindStringSubmatch(b[0])
		if role == nil || !allowed[strings.TrimSpace(role[1])] {
			t.Errorf("%s: %s grants the worker a project-wide role it does not need: %v", main, b[1], role)
		}
	}
}

// TestFirstApplyLaunchesNoJob: launch_job defaults to false in both
// environments. The job starts from the template make template publishes
// into the bucket and repository the first apply creates, so an apply
// without the example tfvars must not try to launch it.
func TestFirstApplyLaunchesNoJob(t *testing.T) {
	for _, env := range environments {
		vars := filepath.Join("environments", env, "variables.tf")
		if d, ok := variableDefault(t, vars, "launch_job").(bool); !ok || d {
			t.Errorf("%s: launch_job defaults to %v, want false", vars, variableDefault(t, vars, "launch_job"))
		}
	}
}
