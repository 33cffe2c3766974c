package templates_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// fakeGcloud records every gcloud command make runs, one line each, and
// answers "artifacts docker images describe" as if the image existed when
// $FAKE_IMAGE_EXISTS is set. Cloud Build and Artifact Registry cannot run
// here; what is checked is the order and choice of make template's steps.
const fakeGcloud = `#!/bin/sh
echo "$*" >> "$FAKE_GCLOUD_LOG"
case "$*" in
"artifacts docker images describe "*)
	[ -n "$FAKE_IMAGE_EXISTS" ] && exit 0
	echo "ERROR: NOT_FOUND" >&2
	exit 1;;
esac
exit 0
`

// TestMakeTemplateSteps: make template builds the image when its tag is
// new, reuses it when the tag (the commit) exists, since the repository's
// tags are immutable and a second build of the same commit would be refused
// at the push, and refuses a tag that exists but is not the commit, or a
// tree with uncommitted changes, before building anything.
func TestMakeTemplateSteps(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("no make on this machine")
	}
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "gcloud"), []byte(fakeGcloud), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		exists   bool
		vars     []string
		wantErr  string   // in make's output, if make must fail
		wantCmds []string // the gcloud commands, by their first words
	}{
		{name: "new tag", vars: []string{"VERSION=abc1234"},
			wantCmds: []string{"artifacts docker images describe", "builds submit", "dataflow flex-template build"}},
		{name: "the commit's image exists", exists: true, vars: []string{"VERSION=abc1234"},
			wantCmds: []string{"artifacts docker images describe", "dataflow flex-template build"}},
		{name: "another image under the tag", exists: true, vars: []string{"VERSION=abc1234", "TAG=v1"},
			wantErr: "choose another TAG", wantCmds: []string{"artifacts docker images describe"}},
		{name: "uncommitted changes", vars: []string{"VERSION=abc1234-dirty"},
			wantErr: "uncommitted changes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log := filepath.Join(t.TempDir(), "gcloud.log")
			args := append([]string{"-s", "-C", "..", "template", "PROJECT=p", "REGION=europe-west1", "BUCKET=b",
				"IMAGE=europe-west1-docker.pkg.dev/p/r/campaign-pulse"}, tc.vars...)
			cmd := exec.Command("make", args...)
			cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"), "FAKE_GCLOUD_LOG="+log, "FAKE_IMAGE_EXISTS=")
			if tc.exists {
				cmd.Env = append(cmd.Env, "FAKE_IMAGE_EXISTS=1")
			}
			out, err := cmd.CombinedOutput()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("make template: %v\n%s", err, out)
			case tc.wantErr != "" && err == nil:
				t.Fatalf("make template succeeded, want it to fail with %q:\n%s", tc.wantErr, out)
			case tc.wantErr != "" && !strings.Contains(string(out), tc.wantErr):
				t.Errorf("make template's output lacks %q:\n%s", tc.wantErr, out)
			}
			b, _ := os.ReadFile(log)
			var got []string
			for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
				for _, want := range []string{"artifacts docker images describe", "builds submit", "dataflow flex-template build"} {
					if strings.HasPrefix(line, want) {
						got = append(got, want)
					}
				}
			}
			if strings.Join(got, "; ") != strings.Join(tc.wantCmds, "; ") {
				t.Errorf("gcloud ran %q, want %q\nmake's output:\n%s", got, tc.wantCmds, out)
			}
		})
	}
}
