package templates_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/log"
	pipepb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/pipeline_v1"
	"github.com/campaignpulse/campaignpulse/pipelines"
	df "google.golang.org/api/dataflow/v1b3"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
)

// goldenJob is the reviewed summary of the production graph as Dataflow
// receives it.
const goldenJob = "testdata/dataflow_job.golden"

// prodArgs are the pipeline flags terraform/environments/prod/main.tf
// launches the flex template with (pipeline_parameters), with placeholder
// names for the resources Terraform creates.
var prodArgs = []string{
	"--source=pubsub",
	"--subscriptions=projects/p/subscriptions/ads,projects/p/subscriptions/social",
	"--sink=bigquery", "--bq_project=p", "--bq_dataset=d",
	"--bigtable_project=p", "--bigtable_instance=i",
	"--lanes=1",
}

// dataflowArgs are the Dataflow runner's own flags (what the flex template
// launcher adds), all fake: --dry_run translates the job and prints it
// instead of submitting it, so nothing is created and nothing is staged.
var dataflowArgs = map[string]string{
	"runner":           "dataflow",
	"dry_run":          "true",
	"project":          "fake-project",
	"region":           "europe-west1",
	"staging_location": "gs://fake-staging/staging",
	"temp_location":    "gs://fake-temp/tmp",
	"job_name":         "campaign-pulse-dryrun",
}

// TestDataflowDryRun builds the production graph (Pub/Sub → … → BigQuery),
// runs pipelines.RunDataflow with the Dataflow runner's --dry_run, reads
// back the pipeline and the job the runner printed, and compares their
// summary (summarizeJob: one line per step: kind, name, inputs, settings)
// with testdata/dataflow_job.golden. After a deliberate change to the graph:
//
//	go test ./templates -run TestDataflowDryRun -update
//	git diff templates/testdata/dataflow_job.golden
//
// (-update is the Dataflow runner's own flag, linked into this test binary,
// for updating a running job; this test reads it as "rewrite the golden"
// and clears it before the dry run.)
//
// The test also checks the flow itself (TestDataflowDryRun/flow), so a
// golden rewritten without looking cannot silently lose a stage.
func TestDataflowDryRun(t *testing.T) {
	updateFlag := flag.Lookup("update")
	regenerate := updateFlag != nil && updateFlag.Value.String() == "true"
	if regenerate {
		if err := updateFlag.Value.Set("false"); err != nil {
			t.Fatal(err)
		}
	}

	start := time.Now()
	p, job := dryRun(t, prodArgs)
	t.Logf("dry run: %s", time.Since(start).Round(time.Millisecond))
	// What a real submission would do besides: stage this binary as the
	// worker (the launcher image cannot compile one) and not wait for the
	// streaming job to end.
	if self, _ := os.Executable(); runtime.GOOS == "linux" && runtime.GOARCH == "amd64" && flag.Lookup("worker_binary").Value.String() != self {
		t.Errorf("--worker_binary=%q, want the running binary %q", flag.Lookup("worker_binary").Value, self)
	}
	if flag.Lookup("async").Value.String() != "true" {
		t.Errorf("--async is not set: the launcher would wait for a streaming job to end")
	}
	got := summarizeJob(p, job)

	if regenerate {
		if err := os.WriteFile(goldenJob, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s: review it with git diff", goldenJob)
	}
	want, err := os.ReadFile(goldenJob)
	if err != nil {
		t.Fatalf("%v (create it with: go test ./templates -run TestDataflowDryRun -update)", err)
	}
	if d := lineDiff(string(want), got); d != "" {
		t.Errorf("the Dataflow job differs from %s (- golden, + now):\n%s\nIf the change is intended: go test ./templates -run TestDataflowDryRun -update, and review git diff templates/%s",
			goldenJob, d, goldenJob)
	}

	t.Run("flow", func(t *testing.T) {
		for _, problem := range flowProblems(p, job) {
			t.Error(problem)
		}
	})
}

// TestDataflowDryRunFlowCheck: the flow check notices a stage that is gone
// (here Enrich, turned off) and the arrows through it.
func TestDataflowDryRunFlowCheck(t *testing.T) {
	p, job := dryRun(t, append(slices.Clone(prodArgs), "--enrich=false"))
	problems := flowProblems(p, job)
	t.Logf("reported: %q", problems)
	if len(problems) == 0 || !strings.Contains(strings.Join(problems, "\n"), "stage Enrich") {
		t.Errorf("without Enrich the flow check reports %q", problems)
	}
}

// flowProblems checks the mission's flow (DESIGN.md) on the translated
// graph: each stage is a step of the job, under its name and of its kind,
// and each feeds the next, so the golden cannot lose one unnoticed.
func flowProblems(p *pipepb.Pipeline, job *df.Job) []string {
	var problems []string
	errorf := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if job.Type != "JOB_TYPE_STREAMING" {
		errorf("job type %q, want JOB_TYPE_STREAMING (an unbounded Pub/Sub source)", job.Type)
	}
	g := newGraph(p)
	// Each stage: the step's kind and a part of its name that identifies it.
	stages := []struct{ stage, kind, name string }{
		{"Pub/Sub read (ads)", "pubsub_read", "ReadPubSubIO/ads/pubsubio.Read"},
		{"Pub/Sub read (social)", "pubsub_read", "ReadPubSubIO/social/pubsubio.Read"},
		{"ParseEvents", "pardo", "/ParseEvents/"},
		{"ValidateSchema", "pardo", "/ValidateSchema/"},
		{"Dedup", "pardo", "/DedupBatches/"},
		{"Enrich", "pardo", "/Enrich/"},
		{"windowing", "window_into", "AggregatePanes/WindowInto"},
		{"CombinePerKey", "combine_per_key", "AggregatePanes/CombinePerKey"},
		{"dead letter", "pardo", "DeadLetters/transforms.NewDeadLetterRow"},
		{"BigQuery write fact_marketing_events", "pardo", "BigQuerySink/WriteBigQuery.fact_marketing_events/"},
		{"BigQuery write fact_campaign_metrics_1m", "pardo", "BigQuerySink/WriteBigQuery.fact_campaign_metrics_1m/"},
		{"BigQuery write dead_letter_events", "pardo", "BigQuerySink/WriteBigQuery.dead_letter_events/"},
	}
	step := map[string]string{} // stage → step name
	for _, st := range stages {
		var found []string
		for _, id := range g.order {
			tr := g.transforms[id]
			if strings.Contains(tr.GetUniqueName(), st.name) && kind(tr) == st.kind && (st.kind == "combine_per_key" || len(tr.GetSubtransforms()) == 0) {
				found = append(found, id)
			}
		}
		if len(found) != 1 {
			errorf("stage %s: want one %s step named *%s*, found %d", st.stage, st.kind, st.name, len(found))
			continue
		}
		step[st.stage] = found[0]
	}
	if len(problems) > 0 {
		return problems
	}
	// Who feeds whom: the design's arrows.
	for _, e := range [][2]string{
		{"Pub/Sub read (ads)", "ParseEvents"},
		{"Pub/Sub read (social)", "ParseEvents"},
		{"ParseEvents", "ValidateSchema"},
		{"ValidateSchema", "Dedup"},
		{"Dedup", "Enrich"},
		{"Enrich", "windowing"},
		{"windowing", "CombinePerKey"},
		{"CombinePerKey", "BigQuery write fact_campaign_metrics_1m"},
		{"Enrich", "BigQuery write fact_marketing_events"},
		{"ParseEvents", "dead letter"},
		{"ValidateSchema", "dead letter"},
		{"Enrich", "dead letter"},
		{"dead letter", "BigQuery write dead_letter_events"},
		// Rows BigQuery refuses become dead letters too.
		{"BigQuery write fact_marketing_events", "BigQuery write dead_letter_events"},
		{"BigQuery write fact_campaign_metrics_1m", "BigQuery write dead_letter_events"},
	} {
		if !g.reaches(step[e[0]], step[e[1]]) {
			errorf("%s (%s) does not feed %s (%s)", e[0], g.name(step[e[0]]), e[1], g.name(step[e[1]]))
		}
	}
	for _, sub := range []string{"projects/p/subscriptions/ads", "projects/p/subscriptions/social"} {
		var ok bool
		for _, id := range g.order {
			var rp pipepb.PubSubReadPayload
			if kind(g.transforms[id]) == "pubsub_read" && proto.Unmarshal(g.transforms[id].GetSpec().GetPayload(), &rp) == nil &&
				rp.GetSubscription() == sub && rp.GetIdAttribute() == "" && rp.GetTimestampAttribute() == "" && rp.GetWithAttributes() {
				ok = true
			}
		}
		if !ok {
			// No attribute a producer must set: elements stamped by publish
			// time, as the lateness rule assumes; repeats left to Dedup.
			errorf("no Pub/Sub read of %s stamped by publish time, with no id attribute, with attributes", sub)
		}
	}
	ws := g.windowing(step["windowing"])
	if ws.GetWindowFn().GetUrn() != "beam:window_fn:fixed_windows:v1" || ws.GetAllowedLateness() <= 0 {
		errorf("the aggregates' windows: %s, want fixed windows with an allowed lateness", windowing(ws))
	}
	return problems
}

// TestDataflowNeedsCloudResources: on Dataflow the binary refuses a local
// sink or a Bigtable it would start itself, before it builds anything.
func TestDataflowNeedsCloudResources(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // in the error; "" for none
	}{
		{prodArgs, ""},
		{append(slices.Clone(prodArgs), "--enrich=false", "--bigtable_instance=", "--bigtable_project="), ""},
		{append(slices.Clone(prodArgs), "--sink=duckdb"), "--sink=bigquery"},
		{append(slices.Clone(prodArgs), "--source=file", "--input=dryrun_test.go"), "--source=pubsub"},
		{append(slices.Clone(prodArgs), "--bigtable_instance="), "--bigtable_instance"},
		{append(slices.Clone(prodArgs), "--bigtable_project="), "--bigtable_project"},
	} {
		o := parseOptions(t, tc.args)
		err := o.CheckDataflow()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%v: %v", tc.args, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%v: error %v, want one naming %s", tc.args, err, tc.want)
		}
	}
}

func parseOptions(t *testing.T, args []string) *pipelines.Options {
	t.Helper()
	fs := flag.NewFlagSet("campaignpulse", flag.ContinueOnError)
	o := pipelines.RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	return o
}

// dryRun runs pipelines.RunDataflow with args and the Dataflow runner's
// --dry_run, and returns the pipeline and the job the runner printed.
//
// The runner's flags are the process's flags (flag.CommandLine): they are
// set here and restored afterwards. The dry run needs no network: it
// neither builds nor stages the worker binary nor uploads the model; it
// only asks Cloud Storage whether the staging and temp buckets keep deleted
// objects (a cost warning), which a fake bucket endpoint answers here
// ($STORAGE_EMULATOR_HOST). The test fails if the runner asks it anything
// else.
func dryRun(t *testing.T, args []string) (*pipepb.Pipeline, *df.Job) {
	t.Helper()
	o := parseOptions(t, args)
	for name, v := range dataflowArgs {
		f := flag.Lookup(name)
		if f == nil {
			t.Fatalf("no flag --%s: is the Dataflow runner linked?", name)
		}
		old := f.Value.String()
		if err := f.Value.Set(v); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Value.Set(old) })
	}
	for _, name := range []string{"worker_binary", "async"} { // RunDataflow sets them
		f := flag.Lookup(name)
		old := f.Value.String()
		t.Cleanup(func() { f.Value.Set(old) })
	}

	gcsURL, unexpected := fakeBucketSettings(t)
	t.Setenv("STORAGE_EMULATOR_HOST", gcsURL)
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", "")

	logs := &captureLogger{}
	log.SetLogger(logs)
	t.Cleanup(func() { log.SetLogger(&log.Structural{}) })

	beam.Init() // the runner refuses to run before it
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := pipelines.RunDataflow(ctx, o); err != nil {
		t.Fatalf("dry run: %v\nlog:\n%s", err, strings.Join(logs.all(), "\n"))
	}
	if u := unexpected(); len(u) > 0 {
		t.Errorf("the dry run asked Cloud Storage for more than the buckets' settings: %v", u)
	}

	// The runner logs the pipeline (the proto Dataflow runs, in text
	// format) and then the job (JSON) that would be submitted with it.
	var p *pipepb.Pipeline
	var job *df.Job
	for _, m := range logs.all() {
		switch {
		case strings.HasPrefix(m, "components:"):
			p = &pipepb.Pipeline{}
			if err := prototext.Unmarshal([]byte(m), p); err != nil {
				t.Fatalf("the pipeline the dry run printed: %v", err)
			}
		case strings.HasPrefix(strings.TrimSpace(m), "{"):
			job = &df.Job{}
			if err := json.Unmarshal([]byte(m), job); err != nil {
				t.Fatalf("the job the dry run printed: %v", err)
			}
		}
	}
	if p == nil || job == nil {
		t.Fatalf("the dry run printed no pipeline or no job; it logged:\n%s", strings.Join(logs.all(), "\n"))
	}
	return p, job
}

// fakeBucketSettings serves what a dry run asks Cloud Storage: the settings
// of the fake staging and temp buckets (whether they keep deleted objects).
// It refuses anything else, and unexpected lists what it refused.
func fakeBucketSettings(t *testing.T) (url string, unexpected func() []string) {
	var mu sync.Mutex
	var refused []string
	gcs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || !strings.HasPrefix(r.URL.Path, "/storage/v1/b/fake-") || strings.Contains(r.URL.Path, "/o") {
			mu.Lock()
			refused = append(refused, r.Method+" "+r.URL.String())
			mu.Unlock()
			http.Error(w, "not in a dry run", http.StatusForbidden)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"kind":"storage#bucket","name":%q}`, strings.TrimPrefix(r.URL.Path, "/storage/v1/b/"))
	}))
	t.Cleanup(gcs.Close)
	return gcs.URL, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(refused)
	}
}

// captureLogger keeps what Beam logs.
type captureLogger struct {
	mu   sync.Mutex
	msgs []string
}

func (c *captureLogger) Log(_ context.Context, _ log.Severity, _ int, msg string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.msgs = append(c.msgs, msg)
}

func (c *captureLogger) all() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.msgs)
}

// graph indexes a pipeline's transforms.
type graph struct {
	p          *pipepb.Pipeline
	transforms map[string]*pipepb.PTransform
	order      []string             // every transform, composites before their parts, in the pipeline's order
	producer   map[string][2]string // PCollection → leaf transform, output tag
	consumers  map[string][]string  // PCollection → leaf transforms reading it
}

func newGraph(p *pipepb.Pipeline) *graph {
	g := &graph{p: p, transforms: p.GetComponents().GetTransforms(), producer: map[string][2]string{}, consumers: map[string][]string{}}
	var walk func(id string)
	walk = func(id string) {
		g.order = append(g.order, id)
		t := g.transforms[id]
		for _, sub := range t.GetSubtransforms() {
			walk(sub)
		}
		if len(t.GetSubtransforms()) > 0 {
			return
		}
		for tag, pc := range t.GetOutputs() {
			g.producer[pc] = [2]string{id, tag}
		}
		for _, pc := range t.GetInputs() {
			g.consumers[pc] = append(g.consumers[pc], id)
		}
	}
	for _, id := range p.GetRootTransformIds() {
		walk(id)
	}
	return g
}

func (g *graph) name(id string) string { return g.transforms[id].GetUniqueName() }

// leaves returns id if it is a leaf, else its leaf transforms.
func (g *graph) leaves(id string) []string {
	t := g.transforms[id]
	if len(t.GetSubtransforms()) == 0 {
		return []string{id}
	}
	var out []string
	for _, sub := range t.GetSubtransforms() {
		out = append(out, g.leaves(sub)...)
	}
	return out
}

// reaches reports whether data flows from transform a to transform b
// (either may be a composite).
func (g *graph) reaches(a, b string) bool {
	target := map[string]bool{}
	for _, id := range g.leaves(b) {
		target[id] = true
	}
	seen := map[string]bool{}
	queue := g.leaves(a)
	for len(queue) > 0 {
		id := queue[0]
		queue = queue[1:]
		if seen[id] {
			continue
		}
		seen[id] = true
		for _, pc := range g.transforms[id].GetOutputs() {
			for _, c := range g.consumers[pc] {
				if target[c] {
					return true
				}
				queue = append(queue, c)
			}
		}
	}
	return false
}

// windowing returns the windowing of a transform's (first) output.
func (g *graph) windowing(id string) *pipepb.WindowingStrategy {
	c := g.p.GetComponents()
	for _, tag := range sortedKeys(g.transforms[id].GetOutputs()) {
		return c.GetWindowingStrategies()[c.GetPcollections()[g.transforms[id].GetOutputs()[tag]].GetWindowingStrategyId()]
	}
	return nil
}

// summarizeJob reduces the dry run's pipeline and job to what a reviewer
// reads: the job's type and settings that matter, then one line per step
// Dataflow runs, in the pipeline's order:
//
//	kind  name  ← inputs  | settings
//
// kind is the transform's URN without its beam:transform: prefix and
// version (pardo, group_by_key, flatten, window_into, pubsub_read, …);
// name is the transform's full name (its scopes in the graph); inputs name
// the steps that produce them ([i1]: that step's second output; (side): a
// side input). Steps are the leaf transforms plus the composites Dataflow
// itself implements (combine_per_key, which it lifts into a partial combine
// before the shuffle). Settings: the subscription and attributes of a
// Pub/Sub read, the state and timers of a stateful ParDo, the windowing a
// window_into sets. Nothing that changes from run to run (staging paths,
// ids, coders' schema ids) is in it.
func summarizeJob(p *pipepb.Pipeline, job *df.Job) string {
	g := newGraph(p)
	var b strings.Builder
	fmt.Fprintf(&b, "# The production graph as the Dataflow runner translates it (go test ./templates -run TestDataflowDryRun).\n")
	fmt.Fprintf(&b, "# Regenerate after a deliberate change: go test ./templates -run TestDataflowDryRun -update\n")
	fmt.Fprintf(&b, "job type: %s\n", job.Type)
	if job.Environment != nil {
		fmt.Fprintf(&b, "experiments: %s\n", strings.Join(job.Environment.Experiments, ","))
		for _, wp := range job.Environment.WorkerPools {
			for _, img := range wp.SdkHarnessContainerImages {
				fmt.Fprintf(&b, "sdk container: %s\n", img.ContainerImage)
			}
		}
	}
	fmt.Fprintf(&b, "requirements: %s\n", strings.Join(p.GetRequirements(), ","))
	fmt.Fprintf(&b, "steps:\n")
	for _, id := range g.steps() {
		t := g.transforms[id]
		k := kind(t)
		line := fmt.Sprintf("%-15s %s", k, t.GetUniqueName())
		if in := g.inputs(id); len(in) > 0 {
			line += "  ← " + strings.Join(in, ", ")
		}
		if s := g.settings(id); s != "" {
			line += "  | " + s
		}
		b.WriteString(line + "\n")
	}
	return b.String()
}

// steps returns the leaf transforms in a topological order that does not
// depend on how the SDK happened to order the pipeline's maps: depth first,
// so a chain of steps reads in one run; of the steps a step makes ready, the
// first by name comes next; then the latest step made ready before them. A
// combine_per_key composite comes just before its first part.
func (g *graph) steps() []string {
	parent := map[string]string{}
	pending := map[string]int{} // leaf → inputs not yet produced
	var ready []string
	for _, id := range g.order {
		t := g.transforms[id]
		for _, sub := range t.GetSubtransforms() {
			parent[sub] = id
		}
		if len(t.GetSubtransforms()) > 0 {
			continue
		}
		pending[id] = len(t.GetInputs())
		if pending[id] == 0 {
			ready = append(ready, id)
		}
	}
	var out []string
	emitted := map[string]bool{}
	byNameDesc := func(ids []string) {
		sort.Slice(ids, func(i, j int) bool { return g.name(ids[i]) > g.name(ids[j]) })
	}
	byNameDesc(ready)
	for len(ready) > 0 {
		id := ready[len(ready)-1]
		ready = ready[:len(ready)-1]
		var composites []string
		for a := parent[id]; a != ""; a = parent[a] {
			if kind(g.transforms[a]) == "combine_per_key" && !emitted[a] {
				emitted[a] = true
				composites = append([]string{a}, composites...)
			}
		}
		out = append(out, composites...)
		out = append(out, id)
		var next []string
		for _, pc := range sortedValues(g.transforms[id].GetOutputs()) {
			for _, c := range g.consumers[pc] {
				if pending[c]--; pending[c] == 0 {
					next = append(next, c)
				}
			}
		}
		byNameDesc(next)
		ready = append(ready, next...)
	}
	return out
}

func sortedValues(m map[string]string) []string {
	var v []string
	for _, k := range sortedKeys(m) {
		v = append(v, m[k])
	}
	return v
}

// kind is a transform's URN, short: beam:transform:pardo:v1 → pardo.
func kind(t *pipepb.PTransform) string {
	urn := t.GetSpec().GetUrn()
	if urn == "" {
		return "composite"
	}
	urn = strings.TrimPrefix(urn, "beam:transform:")
	if i := strings.LastIndex(urn, ":v"); i > 0 {
		urn = urn[:i]
	}
	return urn
}

// inputs names the producers of a step's inputs, sorted.
func (g *graph) inputs(id string) []string {
	t := g.transforms[id]
	side := map[string]bool{}
	if t.GetSpec().GetUrn() == "beam:transform:pardo:v1" {
		var pd pipepb.ParDoPayload
		if proto.Unmarshal(t.GetSpec().GetPayload(), &pd) == nil {
			for tag := range pd.GetSideInputs() {
				side[tag] = true
			}
		}
	}
	var out []string
	for tag, pc := range t.GetInputs() {
		prod, ok := g.producer[pc]
		if !ok {
			out = append(out, "?"+pc)
			continue
		}
		name := g.name(prod[0])
		if len(g.transforms[prod[0]].GetOutputs()) > 1 {
			name += "[" + prod[1] + "]"
		}
		if side[tag] {
			name += " (side)"
		}
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// settings are what a reviewer checks of a step beyond its place.
func (g *graph) settings(id string) string {
	t := g.transforms[id]
	switch t.GetSpec().GetUrn() {
	case "beam:transform:pubsub_read:v1":
		var rp pipepb.PubSubReadPayload
		if err := proto.Unmarshal(t.GetSpec().GetPayload(), &rp); err != nil {
			return "payload: " + err.Error()
		}
		return fmt.Sprintf("subscription=%s id_attribute=%s timestamp_attribute=%s with_attributes=%t",
			rp.GetSubscription(), rp.GetIdAttribute(), rp.GetTimestampAttribute(), rp.GetWithAttributes())
	case "beam:transform:pardo:v1":
		var pd pipepb.ParDoPayload
		if err := proto.Unmarshal(t.GetSpec().GetPayload(), &pd); err != nil {
			return "payload: " + err.Error()
		}
		var s []string
		if st := sortedKeys(pd.GetStateSpecs()); len(st) > 0 {
			s = append(s, "state="+strings.Join(st, ","))
		}
		if tm := sortedKeys(pd.GetTimerFamilySpecs()); len(tm) > 0 {
			s = append(s, "timers="+strings.Join(tm, ","))
		}
		if pd.GetRequiresStableInput() {
			s = append(s, "stable_input")
		}
		return strings.Join(s, " ")
	case "beam:transform:window_into:v1":
		return windowing(g.windowing(id))
	}
	return ""
}

// windowing renders a windowing strategy: window, trigger, lateness, mode.
func windowing(ws *pipepb.WindowingStrategy) string {
	if ws == nil {
		return "no windowing"
	}
	var win string
	switch fn := ws.GetWindowFn(); fn.GetUrn() {
	case "beam:window_fn:global_windows:v1":
		win = "global"
	case "beam:window_fn:fixed_windows:v1":
		var fp pipepb.FixedWindowsPayload
		if err := proto.Unmarshal(fn.GetPayload(), &fp); err != nil {
			return err.Error()
		}
		win = fmt.Sprintf("fixed %s", fp.GetSize().AsDuration())
		if off := fp.GetOffset().AsTime().Sub(time.Unix(0, 0)); off != 0 {
			win += fmt.Sprintf(" offset %s", off)
		}
	default:
		win = fn.GetUrn()
	}
	return fmt.Sprintf("window=%s trigger=%s allowed_lateness=%s %s",
		win, trigger(ws.GetTrigger()), time.Duration(ws.GetAllowedLateness())*time.Millisecond,
		strings.ToLower(ws.GetAccumulationMode().String()))
}

// trigger renders a trigger as its constructors read.
func trigger(t *pipepb.Trigger) string {
	list := func(ts []*pipepb.Trigger) string {
		s := make([]string, len(ts))
		for i, x := range ts {
			s[i] = trigger(x)
		}
		return strings.Join(s, ", ")
	}
	switch {
	case t == nil:
		return "none"
	case t.GetDefault() != nil:
		return "Default"
	case t.GetAlways() != nil:
		return "Always"
	case t.GetNever() != nil:
		return "Never"
	case t.GetElementCount() != nil:
		return fmt.Sprintf("AfterCount(%d)", t.GetElementCount().GetElementCount())
	case t.GetAfterProcessingTime() != nil:
		var d []string
		for _, x := range t.GetAfterProcessingTime().GetTimestampTransforms() {
			switch {
			case x.GetDelay() != nil:
				d = append(d, fmt.Sprintf("+%s", time.Duration(x.GetDelay().GetDelayMillis())*time.Millisecond))
			case x.GetAlignTo() != nil:
				d = append(d, fmt.Sprintf("align %dms", x.GetAlignTo().GetPeriod()))
			}
		}
		return "AfterProcessingTime(" + strings.Join(d, " ") + ")"
	case t.GetAfterEndOfWindow() != nil:
		e := t.GetAfterEndOfWindow()
		s := "AfterEndOfWindow("
		var parts []string
		if e.GetEarlyFirings() != nil {
			parts = append(parts, "early="+trigger(e.GetEarlyFirings()))
		}
		if e.GetLateFirings() != nil {
			parts = append(parts, "late="+trigger(e.GetLateFirings()))
		}
		return s + strings.Join(parts, ", ") + ")"
	case t.GetRepeat() != nil:
		return "Repeat(" + trigger(t.GetRepeat().GetSubtrigger()) + ")"
	case t.GetAfterAny() != nil:
		return "AfterAny(" + list(t.GetAfterAny().GetSubtriggers()) + ")"
	case t.GetAfterAll() != nil:
		return "AfterAll(" + list(t.GetAfterAll().GetSubtriggers()) + ")"
	case t.GetAfterEach() != nil:
		return "AfterEach(" + list(t.GetAfterEach().GetSubtriggers()) + ")"
	case t.GetOrFinally() != nil:
		return "OrFinally(" + trigger(t.GetOrFinally().GetMain()) + ", " + trigger(t.GetOrFinally().GetFinally()) + ")"
	}
	return prototext.MarshalOptions{}.Format(t)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// lineDiff is a small line diff (longest common subsequence): "" if a and
// b are equal, else the differing lines, - from a and + from b, with the
// line numbers of b.
func lineDiff(a, b string) string {
	if a == b {
		return ""
	}
	x, y := strings.Split(a, "\n"), strings.Split(b, "\n")
	lcs := make([][]int, len(x)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(y)+1)
	}
	for i := len(x) - 1; i >= 0; i-- {
		for j := len(y) - 1; j >= 0; j-- {
			if x[i] == y[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var out strings.Builder
	i, j := 0, 0
	for i < len(x) || j < len(y) {
		switch {
		case i < len(x) && j < len(y) && x[i] == y[j]:
			i, j = i+1, j+1
		case i < len(x) && (j == len(y) || lcs[i+1][j] >= lcs[i][j+1]):
			fmt.Fprintf(&out, "- %4s  %s\n", "", x[i])
			i++
		default:
			fmt.Fprintf(&out, "+ %4d  %s\n", j+1, y[j])
			j++
		}
	}
	return out.String()
}
