package pipelines

import (
	"testing"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"

	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/runners/prism"
)

// Tests run on Prism, the runner make run uses: the legacy direct runner
// cannot run TestStream.
func TestMain(m *testing.M) {
	ptest.MainWithDefault(m, "prism")
}
