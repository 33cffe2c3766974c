package templates_test

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/campaignpulse/campaignpulse/pipelines"
	"github.com/campaignpulse/campaignpulse/templates"
)

// go test ./templates -run TestMetadataMatchesFlags -write_metadata rewrites
// metadata.json: hand-written entries stay, new flags get a generated entry
// (review its label, help text and isOptional), removed flags go.
var update = flag.Bool("write_metadata", false, "rewrite templates/metadata.json from pipelines.RegisterFlags")

func pipelineFlags() *flag.FlagSet {
	fs := flag.NewFlagSet("campaignpulse", flag.ContinueOnError)
	pipelines.RegisterFlags(fs)
	return fs
}

// TestMetadataMatchesFlags: every parameter of metadata.json is a flag of the
// pipeline and every flag is a parameter, required only if it has no default,
// and every regex accepts the flag's default.
func TestMetadataMatchesFlags(t *testing.T) {
	fs := pipelineFlags()
	m, err := templates.Load()
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		b, err := templates.Marshal(templates.Sync(m, fs))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile("metadata.json", b, 0o644); err != nil {
			t.Fatal(err)
		}
		if m, err = templates.ParseMetadata(b); err != nil {
			t.Fatal(err)
		}
		t.Log("rewrote metadata.json; review the new entries")
	}
	if !m.Streaming {
		t.Error("metadata.json: streaming must be true (the production job reads Pub/Sub)")
	}
	if problems := templates.Check(m, fs); len(problems) > 0 {
		t.Errorf("templates/metadata.json and pipelines.RegisterFlags disagree:\n  %s\n(go test ./templates -run TestMetadataMatchesFlags -write_metadata adds and removes entries; then review them)",
			strings.Join(problems, "\n  "))
	}
}

// TestCheckReportsDisagreements shows that Check fails on each kind of
// disagreement and names the parameters.
func TestCheckReportsDisagreements(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.Int("lanes", 2, "lanes")
	fs.Duration("horizon", 10*time.Minute, "horizon")
	fs.String("input", "", "input")
	fs.String("new_flag", "", "a flag someone just added")
	m := templates.Metadata{Streaming: true, Parameters: []templates.Parameter{
		{Name: "lanes", Label: "Lanes", HelpText: "h", IsOptional: false, Regexes: []string{`^[0-9]+$`}},
		{Name: "horizon", Label: "Horizon", HelpText: "h", IsOptional: true, Regexes: []string{`^[0-9]+$`}},
		{Name: "input", Label: "", HelpText: "h", IsOptional: false},
		{Name: "gone_flag", Label: "Gone", HelpText: "h", IsOptional: true},
	}}
	got := strings.Join(templates.Check(m, fs), "\n")
	for _, want := range []string{
		`"lanes" is required (isOptional false) but the flag has the default "2"`,
		`"horizon": regex "^[0-9]+$" rejects the flag's default "10m0s"`,
		`"input": label and helpText must not be empty`,
		"flags missing from templates/metadata.json: new_flag",
		"no flag of pipelines.RegisterFlags: gone_flag",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("Check output lacks %q; got:\n%s", want, got)
		}
	}
	if strings.Contains(got, `"input" is required`) {
		t.Errorf("a required parameter without a default is fine; got:\n%s", got)
	}
	synced := templates.Sync(m, fs)
	if p := templates.Check(synced, fs); len(p) != 4-1 { // lanes, horizon and input stay as written
		t.Errorf("after Sync, want the 3 hand-written problems only, got %d:\n%s", len(p), strings.Join(p, "\n"))
	}
}

// TestTypeRegexAcceptsFlagValues: the generated regexes accept what the flag
// types print and parse, and reject what they would not parse.
func TestTypeRegexAcceptsFlagValues(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.Bool("b", false, "")
	fs.Int("i", 0, "")
	fs.Uint64("u", 0, "")
	fs.Float64("f", 0, "")
	fs.Duration("d", 0, "")
	cases := map[string]struct{ good, bad []string }{
		"b": {[]string{"true", "false"}, []string{"yes", ""}},
		"i": {[]string{"0", "-3", "16"}, []string{"1.5", "x"}},
		"u": {[]string{"0", "42"}, []string{"-1"}},
		"f": {[]string{"0.02", "1", "1e-3", ".5"}, []string{"abc", "1,5"}},
		"d": {[]string{"0", "10m0s", "5s", "1h30m", "250ms"}, []string{"10", "5 s"}},
	}
	for name, c := range cases {
		f := fs.Lookup(name)
		re := templates.TypeRegex(f)
		p := templates.Parameter{Name: name, Label: name, HelpText: name, IsOptional: true, Regexes: []string{re}}
		for _, v := range c.good {
			if err := fs.Set(name, v); err != nil {
				t.Fatalf("-%s=%s: %v", name, v, err)
			}
			f.DefValue = v
			if p := templates.Check(templates.Metadata{Parameters: []templates.Parameter{p}}, only(fs, name)); len(p) > 0 {
				t.Errorf("-%s=%s rejected by %s: %v", name, v, re, p)
			}
		}
		for _, v := range c.bad {
			f.DefValue = v
			if v != "" && len(templates.Check(templates.Metadata{Parameters: []templates.Parameter{p}}, only(fs, name))) == 0 {
				t.Errorf("-%s=%s accepted by %s", name, v, re)
			}
		}
	}
}

// only returns a flag set holding just the named flag of fs.
func only(fs *flag.FlagSet, name string) *flag.FlagSet {
	out := flag.NewFlagSet("one", flag.ContinueOnError)
	f := fs.Lookup(name)
	out.Var(f.Value, f.Name, f.Usage)
	out.Lookup(name).DefValue = f.DefValue
	return out
}

// TestRegexesRejectWhatTheBinaryRejects: a value the pipeline's own
// Options.Validate refuses for a flag's sake (its error names the flag), such
// as a negative duration or a zero count, is refused by the parameter's
// regexes too, so that gcloud and the Console reject it at launch instead of a
// launcher VM starting the binary only to fail. And a value Validate accepts
// wherever the flag applies is accepted by the regexes.
func TestRegexesRejectWhatTheBinaryRejects(t *testing.T) {
	m, err := templates.Load()
	if err != nil {
		t.Fatal(err)
	}
	input := filepath.Join(t.TempDir(), "events.jsonl")
	if err := os.WriteFile(input, []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The sources a flag can apply to, each with what it needs to validate.
	// The generator's without a late share: that share needs an allowed
	// lateness over one window (a refusal of the two flags together, for
	// the generator's traffic, not of an --allowed_lateness value; the
	// template's job reads Pub/Sub).
	sources := [][]string{
		{"--source=generator", "--late_rate=0"},
		{"--source=file", "--input=" + input},
		{"--source=pubsub", "--subscriptions=projects/p/subscriptions/s"},
	}
	// validate returns the error of the first source whose Validate refuses
	// --name=v naming the flag, or nil.
	validate := func(name, v string) error {
		for _, src := range sources {
			fs := flag.NewFlagSet("campaignpulse", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			o := pipelines.RegisterFlags(fs)
			if err := fs.Parse(append(src, "--"+name+"="+v)); err != nil {
				return err
			}
			if err := o.Validate(); err != nil && strings.Contains(err.Error(), "--"+name) {
				return err
			}
		}
		return nil
	}
	candidates := map[string][]string{
		"int":      {"-1", "0", "1", "16"},
		"float":    {"-0.5", "0", "0.02", ".5", "1", "1.5", "250"},
		"duration": {"-1s", "0", "0s", "0.0s", "1ms", "10s", "1m30s", "10m"},
	}
	checked := 0
	flags := pipelineFlags()
	for _, p := range m.Parameters {
		f := flags.Lookup(p.Name)
		if f == nil || len(p.Regexes) == 0 {
			continue
		}
		var kind string
		switch f.Value.(flag.Getter).Get().(type) {
		case int, int64:
			kind = "int"
		case float64:
			kind = "float"
		case time.Duration:
			kind = "duration"
		default:
			continue
		}
		regexes := make([]*regexp.Regexp, len(p.Regexes))
		for i, re := range p.Regexes {
			regexes[i] = regexp.MustCompile(re)
		}
		for _, v := range candidates[kind] {
			accepted := true
			for _, re := range regexes {
				accepted = accepted && re.MatchString(v)
			}
			switch err := validate(p.Name, v); {
			case err != nil && accepted && !signOrZero(v):
				// A range the regexes need not spell out (--pubsub_lease's
				// 10s to 10m): the binary still says why.
			case err != nil && accepted:
				t.Errorf("--%s=%s: the regexes %q accept it, the binary refuses it: %v", p.Name, v, p.Regexes, err)
			case err == nil && !accepted:
				t.Errorf("--%s=%s: the binary accepts it, the regexes %q refuse it", p.Name, v, p.Regexes)
			}
			checked++
		}
	}
	if checked < 50 {
		t.Fatalf("checked %d values: the numeric parameters were not found", checked)
	}
}

// signOrZero reports whether v is negative or zero, the values a regex can
// refuse by its shape.
func signOrZero(v string) bool {
	return strings.HasPrefix(v, "-") || strings.Trim(v, "0.s") == ""
}
