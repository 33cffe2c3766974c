// Package templates holds the Dataflow flex template of the pipeline: the
// launcher image (Dockerfile), metadata.json, which describes every
// parameter the template takes, and the check that metadata.json and the
// binary's flags (pipelines.RegisterFlags) agree.
package templates

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"flag"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"
)

// MetadataJSON is templates/metadata.json, as built into the binary.
//
//go:embed metadata.json
var MetadataJSON []byte

// Metadata is a flex template's metadata file (the --metadata-file of
// gcloud dataflow flex-template build).
type Metadata struct {
	Name        string      `json:"name"`
	Description string      `json:"description"`
	Streaming   bool        `json:"streaming"`
	Parameters  []Parameter `json:"parameters"`
}

// Parameter is one template parameter: a pipeline flag, without its dashes.
type Parameter struct {
	Name       string   `json:"name"`
	Label      string   `json:"label"`
	HelpText   string   `json:"helpText"`
	IsOptional bool     `json:"isOptional"`
	Regexes    []string `json:"regexes,omitempty"`
}

// ParseMetadata decodes a metadata file, refusing fields it does not know
// (a misspelt isOptional would otherwise silently make a parameter required).
func ParseMetadata(b []byte) (Metadata, error) {
	var m Metadata
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return Metadata{}, fmt.Errorf("metadata.json: %w", err)
	}
	return m, nil
}

// Load returns the embedded metadata.json.
func Load() (Metadata, error) { return ParseMetadata(MetadataJSON) }

// Names returns the parameter names in file order.
func (m Metadata) Names() []string {
	names := make([]string, len(m.Parameters))
	for i, p := range m.Parameters {
		names[i] = p.Name
	}
	return names
}

var paramName = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9_]*$`)

// Check compares the metadata with the flags the pipeline defines and
// returns every disagreement, one line each, naming the parameters:
//
//   - a flag missing from the metadata, or a parameter that is no flag;
//   - a parameter without a label or help text, or with a bad name;
//   - a regex that does not compile, or that rejects the flag's own default
//     (the template would refuse the binary's default value);
//   - a required parameter (isOptional false) whose flag has a default: the
//     template would force users to pass what the binary already knows.
func Check(m Metadata, fs *flag.FlagSet) []string {
	var problems []string
	flags := map[string]*flag.Flag{}
	fs.VisitAll(func(f *flag.Flag) { flags[f.Name] = f })
	seen := map[string]bool{}
	var extra []string
	for _, p := range m.Parameters {
		if seen[p.Name] {
			problems = append(problems, fmt.Sprintf("parameter %q is listed twice", p.Name))
			continue
		}
		seen[p.Name] = true
		f, ok := flags[p.Name]
		if !ok {
			extra = append(extra, p.Name)
			continue
		}
		if !paramName.MatchString(p.Name) {
			problems = append(problems, fmt.Sprintf("parameter %q: name must match %s", p.Name, paramName))
		}
		if strings.TrimSpace(p.Label) == "" || strings.TrimSpace(p.HelpText) == "" {
			problems = append(problems, fmt.Sprintf("parameter %q: label and helpText must not be empty", p.Name))
		}
		if !p.IsOptional && f.DefValue != "" {
			problems = append(problems, fmt.Sprintf("parameter %q is required (isOptional false) but the flag has the default %q: make it optional", p.Name, f.DefValue))
		}
		for _, re := range p.Regexes {
			r, err := regexp.Compile(re)
			if err != nil {
				problems = append(problems, fmt.Sprintf("parameter %q: regex %q: %v", p.Name, re, err))
				continue
			}
			if f.DefValue != "" && !r.MatchString(f.DefValue) {
				problems = append(problems, fmt.Sprintf("parameter %q: regex %q rejects the flag's default %q", p.Name, re, f.DefValue))
			}
		}
	}
	var missing []string
	for name := range flags {
		if !seen[name] {
			missing = append(missing, name)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 0 {
		problems = append(problems, fmt.Sprintf("flags missing from templates/metadata.json: %s", strings.Join(missing, ", ")))
	}
	if len(extra) > 0 {
		problems = append(problems, fmt.Sprintf("parameters in templates/metadata.json that are no flag of pipelines.RegisterFlags: %s", strings.Join(extra, ", ")))
	}
	return problems
}

// Sync returns m with the parameters of every flag of fs, in the flags'
// (sorted) order: entries already in m are kept as written, missing flags get
// a generated entry (label from the name, help text from the usage, a regex
// from the flag's type), and parameters that are no flag are dropped.
func Sync(m Metadata, fs *flag.FlagSet) Metadata {
	old := map[string]Parameter{}
	for _, p := range m.Parameters {
		old[p.Name] = p
	}
	out := m
	out.Parameters = nil
	fs.VisitAll(func(f *flag.Flag) {
		if p, ok := old[f.Name]; ok {
			out.Parameters = append(out.Parameters, p)
			return
		}
		out.Parameters = append(out.Parameters, Generate(f))
	})
	return out
}

// Generate makes the metadata entry of a flag: optional, labelled from its
// name, its usage as help text, and a regex for its type.
func Generate(f *flag.Flag) Parameter {
	label := strings.ReplaceAll(f.Name, "_", " ")
	label = strings.ToUpper(label[:1]) + label[1:]
	help := f.Usage
	if f.DefValue != "" {
		help += fmt.Sprintf(" (default %s)", f.DefValue)
	}
	p := Parameter{Name: f.Name, Label: label, HelpText: help, IsOptional: true}
	if re := TypeRegex(f); re != "" {
		p.Regexes = []string{re}
	}
	return p
}

// TypeRegex is a regex that accepts the values a flag's type parses, or ""
// for strings.
func TypeRegex(f *flag.Flag) string {
	g, ok := f.Value.(flag.Getter)
	if !ok {
		return ""
	}
	switch g.Get().(type) {
	case bool:
		return `^(true|false)$`
	case int, int64:
		return `^-?[0-9]+$`
	case uint, uint64:
		return `^[0-9]+$`
	case float64:
		return `^-?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$`
	case time.Duration:
		return `^(0|-?([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+)$`
	}
	return ""
}

// Marshal encodes metadata as metadata.json is written: indented, one
// parameter per block, a final newline.
func Marshal(m Metadata) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(m); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
