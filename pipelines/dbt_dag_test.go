package pipelines

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// dbtNode is the part of a node of dbt's manifest.json the DAG tests read.
type dbtNode struct {
	ResourceType string `json:"resource_type"`
	Config       struct {
		Materialized string `json:"materialized"`
	} `json:"config"`
	DependsOn struct {
		Nodes []string `json:"nodes"`
	} `json:"depends_on"`
	AttachedNode string `json:"attached_node"`
	TestMetadata *struct {
		Name   string         `json:"name"`
		Kwargs map[string]any `json:"kwargs"`
	} `json:"test_metadata"`
}

// dbtManifest parses the project (no warehouse is opened) and returns its
// nodes, seeds and sources by unique id.
func dbtManifest(t *testing.T) map[string]dbtNode {
	t.Helper()
	scratch := t.TempDir()
	if out, err := dbtCommandIn(t, scratch, filepath.Join(scratch, "unused.duckdb"), "parse"); err != nil {
		t.Fatalf("dbt parse: %v\n%s", err, out)
	}
	b, err := os.ReadFile(filepath.Join(scratch, "target", "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Nodes   map[string]dbtNode `json:"nodes"`
		Sources map[string]dbtNode `json:"sources"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for id, n := range m.Sources {
		m.Nodes[id] = n
	}
	return m.Nodes
}

// TestDBTBuildsDimensionsAfterTheirFacts: on BigQuery the job writes while
// dbt builds, and a table dbt builds is a snapshot of the live tables at its
// build. A relationships test from a fact to a dimension built from the live
// tables holds only if the dimension's snapshot is the later one: every
// table that first reads live data on the fact's side (a model materialized
// as a table whose input is a source or a view over one) must be built before
// the dimension, i.e. be its ancestor. Else a campaign whose first event lands
// between the dimension's build and the fact's fails a correct build.
func TestDBTBuildsDimensionsAfterTheirFacts(t *testing.T) {
	nodes := dbtManifest(t)
	isTable := func(id string) bool {
		m := nodes[id].Config.Materialized
		return nodes[id].ResourceType == "model" && m != "view" && m != "ephemeral"
	}
	var live func(id string) bool // reads a source, directly or through parents
	live = func(id string) bool {
		if nodes[id].ResourceType == "source" {
			return true
		}
		return slices.ContainsFunc(nodes[id].DependsOn.Nodes, live)
	}
	ancestors := func(id string) map[string]bool {
		seen := map[string]bool{}
		stack := []string{id}
		for len(stack) > 0 {
			n := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			for _, p := range nodes[n].DependsOn.Nodes {
				if !seen[p] {
					seen[p] = true
					stack = append(stack, p)
				}
			}
		}
		return seen
	}
	// snapshotsOf: the tables at or above id that read live data through
	// no other table.
	snapshotsOf := func(id string) []string {
		var out []string
		up := ancestors(id)
		up[id] = true
		for a := range up {
			if isTable(a) && slices.ContainsFunc(nodes[a].DependsOn.Nodes, func(p string) bool {
				return !isTable(p) && live(p)
			}) {
				out = append(out, a)
			}
		}
		return out
	}
	checked := 0
	for id, n := range nodes {
		if n.ResourceType != "test" || n.TestMetadata == nil || n.TestMetadata.Name != "relationships" {
			continue
		}
		to, _ := n.TestMetadata.Kwargs["to"].(string)
		var parent string
		for _, p := range n.DependsOn.Nodes {
			if p != n.AttachedNode && strings.Contains(to, "'"+p[strings.LastIndex(p, ".")+1:]+"'") {
				parent = p
			}
		}
		if parent == "" {
			t.Fatalf("%s: cannot tell which of %v is %s", id, n.DependsOn.Nodes, to)
		}
		if !isTable(parent) || !live(parent) {
			continue // a view reads the tables as they are when tested; a seed or a spine does not move
		}
		before := ancestors(parent)
		for _, s := range snapshotsOf(n.AttachedNode) {
			if s != parent && !before[s] {
				t.Errorf("%s is built from live tables, but not after %s, whose rows %s checks against it (a -- depends_on: ref in %s orders them)",
					parent, s, id, parent)
			}
		}
		checked++
	}
	if checked < 4 {
		t.Fatalf("checked %d relationships tests against live dimensions; the marts have at least 4", checked)
	}
}
