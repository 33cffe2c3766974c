package transforms

import (
	"encoding/json"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
	"unicode"
)

// TestJSONSchemaMatchesDecoder keeps docs/event.schema.json, the decoder's
// wire type and the validator's enums in step.
func TestJSONSchemaMatchesDecoder(t *testing.T) {
	schema := readEventSchema(t)
	var inSchema, inDecoder []string
	for k := range schema.Properties {
		inSchema = append(inSchema, k)
	}
	wt := reflect.TypeOf(wireEvent{})
	for i := 0; i < wt.NumField(); i++ {
		inDecoder = append(inDecoder, strings.Split(wt.Field(i).Tag.Get("json"), ",")[0])
	}
	sort.Strings(inSchema)
	sort.Strings(inDecoder)
	if !reflect.DeepEqual(inSchema, inDecoder) {
		t.Errorf("schema fields %v\ndecoder fields %v", inSchema, inDecoder)
	}
	if got := schema.Properties["event_type"].Enum; !reflect.DeepEqual(got, EventTypes) {
		t.Errorf("event_type enum %v, validator accepts %v", got, EventTypes)
	}
	if got := schema.Properties["platform"].Enum; !reflect.DeepEqual(got, Platforms) {
		t.Errorf("platform enum %v, validator accepts %v", got, Platforms)
	}
	// Every required field is rejected when missing.
	for _, f := range schema.Required {
		ev := Event{SchemaVersion: "1.0", EventID: "e", EventType: TypeView, Timestamp: "2026-11-01T00:00:00Z",
			UserID: "u", CampaignID: "c", Platform: "meta"}
		v := reflect.ValueOf(&ev).Elem()
		for i := 0; i < wt.NumField(); i++ {
			if strings.Split(wt.Field(i).Tag.Get("json"), ",")[0] == f {
				v.FieldByName(wt.Field(i).Name).SetString("")
			}
		}
		if rej := Validate(&ev, 0, ValidateConfig{MaxFutureSkew: DefaultMaxFutureSkew}); rej == nil || rej.Code != CodeMissingField {
			t.Errorf("missing %s: got %v, want %s", f, rej, CodeMissingField)
		}
	}
}

// TestErrorCodesDocumented checks every code is in docs/event-schema.md.
func TestErrorCodesDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/event-schema.md")
	if err != nil {
		t.Fatal(err)
	}
	for code, stage := range ErrorCodes {
		if !strings.Contains(string(doc), "| "+stage+" | `"+code+"` |") {
			t.Errorf("%s (%s) is not in the error-code table of docs/event-schema.md", code, stage)
		}
	}
}

// eventSchema is what the contract tests read of docs/event.schema.json.
type eventSchema struct {
	Required   []string `json:"required"`
	Properties map[string]struct {
		Enum    []string `json:"enum"`
		Pattern string   `json:"pattern"`
	} `json:"properties"`
}

// readEventSchema reads docs/event.schema.json.
func readEventSchema(t *testing.T) eventSchema {
	t.Helper()
	raw, err := os.ReadFile("../docs/event.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var schema eventSchema
	if err := json.Unmarshal(raw, &schema); err != nil {
		t.Fatal(err)
	}
	return schema
}

// TestJSONSchemaBlankRule keeps the pattern that docs/event.schema.json gives
// the ids (a character that is not white space) and Validate's blank rule
// (strings.TrimSpace, i.e. unicode.IsSpace) in step, rune by rune over the
// Basic Multilingual Plane. TestValidate checks the rule itself.
func TestJSONSchemaBlankRule(t *testing.T) {
	schema := readEventSchema(t)
	// JSON Schema patterns are ECMA-262: \uXXXX is RE2's \x{XXXX}.
	toRE2 := regexp.MustCompile(`\\u([0-9a-fA-F]{4})`)
	for _, field := range []string{"event_id", "user_id", "campaign_id"} {
		pattern := schema.Properties[field].Pattern
		if pattern == "" {
			t.Errorf("%s has no pattern", field)
			continue
		}
		re, err := regexp.Compile(toRE2.ReplaceAllString(pattern, `\x{$1}`))
		if err != nil {
			t.Fatalf("%s pattern %q: %v", field, pattern, err)
		}
		for r := rune(0); r < 0x10000; r++ {
			if r >= 0xd800 && r < 0xe000 {
				continue // surrogates are no string's runes
			}
			if re.MatchString(string(r)) == unicode.IsSpace(r) {
				t.Errorf("%s pattern and unicode.IsSpace disagree on %U", field, r)
			}
		}
	}
}
