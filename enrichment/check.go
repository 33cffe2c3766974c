package enrichment

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"cloud.google.com/go/bigtable"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// checkTimeout bounds CheckTables' read of one table.
const checkTimeout = 15 * time.Second

// CheckTables reads one row of each enrichment table before a run that uses
// a Bigtable it did not start. Enrich treats a failed read as an outage and
// dead-letters the events that needed it (ENRICH_UNAVAILABLE), which is
// right for an outage and wrong for a mistake: without this check, a run
// naming an instance it had no credentials for dead-lettered every valid
// event in 0.2 s and still ended "reconcile … ok". No credentials, a
// missing instance or table, or a refused read stop the run here; a server
// that does not answer is only reported to progress (when that is not nil),
// and Enrich's outage handling takes it from there.
func CheckTables(ctx context.Context, cfg Config, progress io.Writer) error {
	cfg = cfg.WithDefaults()
	where := fmt.Sprintf("Bigtable instance %s/%s", cfg.Project, cfg.Instance)
	if cfg.Endpoint != "" {
		where += " at " + cfg.Endpoint
	}
	client, closeClient, err := Dial(ctx, cfg)
	if err != nil {
		return fmt.Errorf("%s: %w (give the run credentials, e.g. gcloud auth application-default login, or set BIGTABLE_EMULATOR_HOST for the emulator)", where, err)
	}
	defer closeClient()
	for _, table := range []string{UsersTable, CampaignsTable} {
		cctx, cancel := context.WithTimeout(ctx, checkTimeout)
		err := client.Open(table).ReadRows(cctx, bigtable.InfiniteRange(""), func(bigtable.Row) bool { return false }, bigtable.LimitRows(1))
		cancel()
		switch code := status.Code(err); {
		case err == nil:
		case code == codes.DeadlineExceeded || code == codes.Unavailable || errors.Is(err, context.DeadlineExceeded):
			if progress != nil {
				fmt.Fprintf(progress, "enrichment: %s: table %s did not answer within %s (%v); starting anyway, with the outage handling of --enrich_on_unavailable\n", where, table, checkTimeout, err)
			}
			return nil
		case code == codes.NotFound:
			return fmt.Errorf("%s: table %s does not exist (go run ./cmd/seed creates and fills it): %w", where, table, err)
		default:
			return fmt.Errorf("%s: reading table %s: %w", where, table, err)
		}
	}
	return nil
}
