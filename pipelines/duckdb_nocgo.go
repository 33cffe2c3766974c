//go:build !cgo

package pipelines

import (
	"database/sql/driver"
	"errors"
)

// errNoDuckDB is what a binary built with CGO_ENABLED=0 says where a
// DuckDB file is needed. The Dataflow template's binary is built so
// (templates/Dockerfile): static, it starts in the launcher image and in
// the Go SDK's worker container whatever C libraries they ship, and on
// Dataflow it writes to BigQuery only.
var errNoDuckDB = errors.New("this binary was built with CGO_ENABLED=0, as the Dataflow template's is, and has no DuckDB: run it with --sink=bigquery, or build it with cgo (make build) for the local warehouse")

func duckDBConnector(string) (driver.Connector, error) { return nil, errNoDuckDB }

// duckDBLinked says why this binary cannot open a DuckDB warehouse.
func duckDBLinked() error { return errNoDuckDB }
