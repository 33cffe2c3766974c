package terraform

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// A reader of HCL literal values, enough to read the object and list
// literals the tests compare with the Go definitions (variable defaults,
// locals) without a dependency on the HCL library. Values that are
// expressions (var.x, function calls, arithmetic) come back as Expr holding
// their source text.

// Expr is an expression the reader does not evaluate.
type Expr string

type hclReader struct {
	src string
	pos int
}

// literalAfter finds the first match of pattern in file and reads the
// literal value that starts right after it.
func literalAfter(t *testing.T, file, pattern string) any {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	src := string(b)
	loc := regexp.MustCompile(pattern).FindStringIndex(src)
	if loc == nil {
		t.Fatalf("%s: nothing matches %s", file, pattern)
	}
	r := &hclReader{src: src, pos: loc[1]}
	v, err := r.value()
	if err != nil {
		t.Fatalf("%s: after %s: %v", file, pattern, err)
	}
	return v
}

// variableDefault reads the default value of the variable named name in file.
func variableDefault(t *testing.T, file, name string) any {
	t.Helper()
	return literalAfter(t, file, `(?s)variable "`+regexp.QuoteMeta(name)+`" \{.*?\n\s*default\s*=\s*`)
}

// localValue reads the value of the local named name, the first one defined
// after a locals block opens in file.
func localValue(t *testing.T, file, name string) any {
	t.Helper()
	return literalAfter(t, file, `(?s)locals \{.*?\n\s*`+regexp.QuoteMeta(name)+`\s*=\s*`)
}

func (r *hclReader) errorf(format string, args ...any) error {
	line := 1 + strings.Count(r.src[:r.pos], "\n")
	return fmt.Errorf("line %d: %s", line, fmt.Sprintf(format, args...))
}

// skip passes over spaces, comments and, if newlines, line breaks and commas.
func (r *hclReader) skip(newlines bool) {
	for r.pos < len(r.src) {
		c := r.src[r.pos]
		switch {
		case c == ' ' || c == '\t' || c == '\r':
			r.pos++
		case newlines && (c == '\n' || c == ','):
			r.pos++
		case c == '#' || strings.HasPrefix(r.src[r.pos:], "//"):
			for r.pos < len(r.src) && r.src[r.pos] != '\n' {
				r.pos++
			}
		case strings.HasPrefix(r.src[r.pos:], "/*"):
			end := strings.Index(r.src[r.pos+2:], "*/")
			if end < 0 {
				r.pos = len(r.src)
				return
			}
			r.pos += end + 4
		default:
			return
		}
	}
}

func (r *hclReader) value() (any, error) {
	r.skip(false)
	if r.pos >= len(r.src) {
		return nil, r.errorf("unexpected end of file")
	}
	start := r.pos
	switch c := r.src[r.pos]; {
	case c == '{':
		return r.object()
	case c == '[':
		return r.list()
	case c == '"':
		s, err := r.str()
		if err != nil {
			return nil, err
		}
		if r.atValueEnd() {
			return s, nil
		}
	}
	// Anything else: a number, a bool, null, or an expression read to the end
	// of the value.
	r.pos = start
	text := strings.TrimSpace(r.exprText())
	switch text {
	case "true":
		return true, nil
	case "false":
		return false, nil
	case "null":
		return nil, nil
	}
	if f, err := strconv.ParseFloat(text, 64); err == nil {
		return f, nil
	}
	if text == "" {
		return nil, r.errorf("empty value")
	}
	return Expr(text), nil
}

// atValueEnd reports whether only spaces or a comment stand between the
// position and the end of the value.
func (r *hclReader) atValueEnd() bool {
	save := r.pos
	r.skip(false)
	end := r.pos >= len(r.src) || strings.ContainsRune("\n,}]", rune(r.src[r.pos]))
	r.pos = save
	return end
}

// exprText reads to the end of the value: a newline, comma or closing bracket
// outside any bracket or string.
func (r *hclReader) exprText() string {
	start, depth := r.pos, 0
	for r.pos < len(r.src) {
		c := r.src[r.pos]
		switch {
		case c == '"':
			if _, err := r.str(); err != nil {
				return r.src[start:r.pos]
			}
			continue
		case c == '(' || c == '[' || c == '{':
			depth++
		case c == ')' || c == ']' || c == '}':
			if depth == 0 {
				return r.src[start:r.pos]
			}
			depth--
		case (c == '\n' || c == ',') && depth == 0:
			return r.src[start:r.pos]
		}
		r.pos++
	}
	return r.src[start:r.pos]
}

// str reads a quoted string, keeping ${...} interpolations as written.
func (r *hclReader) str() (string, error) {
	r.pos++ // opening quote
	var b strings.Builder
	for r.pos < len(r.src) {
		c := r.src[r.pos]
		switch c {
		case '\\':
			if r.pos+1 < len(r.src) {
				b.WriteByte(r.src[r.pos+1])
			}
			r.pos += 2
			continue
		case '"':
			r.pos++
			return b.String(), nil
		case '\n':
			return "", r.errorf("newline in string")
		}
		b.WriteByte(c)
		r.pos++
	}
	return "", r.errorf("unterminated string")
}

func (r *hclReader) object() (map[string]any, error) {
	r.pos++ // {
	out := map[string]any{}
	for {
		r.skip(true)
		if r.pos >= len(r.src) {
			return nil, r.errorf("unterminated object")
		}
		if r.src[r.pos] == '}' {
			r.pos++
			return out, nil
		}
		var key string
		if r.src[r.pos] == '"' {
			k, err := r.str()
			if err != nil {
				return nil, err
			}
			key = k
		} else {
			start := r.pos
			for r.pos < len(r.src) && (isIdent(r.src[r.pos])) {
				r.pos++
			}
			key = r.src[start:r.pos]
			if key == "" {
				return nil, r.errorf("expected a key, found %q", r.src[r.pos])
			}
		}
		r.skip(false)
		if r.pos >= len(r.src) || (r.src[r.pos] != '=' && r.src[r.pos] != ':') {
			return nil, r.errorf("expected = after key %q", key)
		}
		r.pos++
		v, err := r.value()
		if err != nil {
			return nil, err
		}
		if _, dup := out[key]; dup {
			return nil, r.errorf("key %q twice", key)
		}
		out[key] = v
	}
}

func (r *hclReader) list() ([]any, error) {
	r.pos++ // [
	var out []any
	for {
		r.skip(true)
		if r.pos >= len(r.src) {
			return nil, r.errorf("unterminated list")
		}
		if r.src[r.pos] == ']' {
			r.pos++
			return out, nil
		}
		v, err := r.value()
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
}

func isIdent(c byte) bool {
	return c == '_' || c == '-' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// TestHCLReader pins the reader on the forms the Terraform files use.
func TestHCLReader(t *testing.T) {
	src := `
locals {
  # a comment
  tables = {
    a = {
      description     = "x \"quoted\" ${var.y}"
      partition_field = "window_start"  // trailing comment
      clustering      = ["campaign_id", "platform"]
      expiration_days = var.partition_expiration_days
      n               = 1.5
      call            = merge({ k = 1 }, var.m)
    }
    "b/c" = { max_versions = 1, max_age = "9600h" }
    d = null
  }
}`
	f, err := os.CreateTemp(t.TempDir(), "*.tf")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(src); err != nil {
		t.Fatal(err)
	}
	f.Close()
	got := literalAfter(t, f.Name(), `tables\s*=\s*`)
	want := map[string]any{
		"a": map[string]any{
			"description":     `x "quoted" ${var.y}`,
			"partition_field": "window_start",
			"clustering":      []any{"campaign_id", "platform"},
			"expiration_days": Expr("var.partition_expiration_days"),
			"n":               1.5,
			"call":            Expr("merge({ k = 1 }, var.m)"),
		},
		"b/c": map[string]any{"max_versions": 1.0, "max_age": "9600h"},
		"d":   nil,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("read\n%v\nwant\n%v", got, want)
	}
}
