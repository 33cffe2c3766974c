//go:build cgo

package pipelines

import (
	"database/sql/driver"

	duckdb "github.com/duckdb/duckdb-go/v2"
)

// duckDBConnector opens the DuckDB file dsn names (a path, with options
// after "?"). DuckDB is a C++ library linked through cgo: a binary built
// with CGO_ENABLED=0 gets duckdb_nocgo.go's instead.
func duckDBConnector(dsn string) (driver.Connector, error) {
	return duckdb.NewConnector(dsn, nil)
}

// duckDBLinked is nil: this binary has the DuckDB warehouse.
func duckDBLinked() error { return nil }
