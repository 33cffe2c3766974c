package templates_test

import (
	"os"
	"regexp"
	"testing"
)

// TestDockerfileRunsThePipelineBinary: the image builds cmd/campaignpulse,
// copies it to the path FLEX_TEMPLATE_GO_BINARY names, and starts Google's Go
// launcher from its base image.
func TestDockerfileRunsThePipelineBinary(t *testing.T) {
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	src := string(b)
	build := regexp.MustCompile(`go build[^\n]*(?:\\\n[^\n]*)*-o (\S+) \./cmd/campaignpulse`).FindStringSubmatch(src)
	if build == nil {
		t.Fatal("Dockerfile does not go build ./cmd/campaignpulse with -o")
	}
	copyLine := regexp.MustCompile(`(?m)^COPY --from=build ` + regexp.QuoteMeta(build[1]) + ` (\S+)$`).FindStringSubmatch(src)
	if copyLine == nil {
		t.Fatalf("Dockerfile does not copy the built binary %s into the launcher image", build[1])
	}
	env := regexp.MustCompile(`(?m)^ENV FLEX_TEMPLATE_GO_BINARY=(\S+)$`).FindStringSubmatch(src)
	if env == nil {
		t.Fatal("Dockerfile does not set FLEX_TEMPLATE_GO_BINARY")
	}
	if env[1] != copyLine[1] {
		t.Errorf("FLEX_TEMPLATE_GO_BINARY=%s, but the binary is copied to %s", env[1], copyLine[1])
	}
	if !regexp.MustCompile(`(?m)^FROM gcr\.io/dataflow-templates-base/go-template-launcher-base(:\S+)?$`).MatchString(src) {
		t.Error("the final stage is not FROM gcr.io/dataflow-templates-base/go-template-launcher-base")
	}
	if !regexp.MustCompile(`(?m)^ENTRYPOINT \["/opt/google/dataflow/go_template_launcher"\]$`).MatchString(src) {
		t.Error("the entry point is not /opt/google/dataflow/go_template_launcher")
	}
}
