package enrichment

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/bigtable/apiv2/bigtablepb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// failReadsOf makes every ReadRows of the table whose name ends with
// "/tables/"+table fail with Unavailable, as a table whose tablets are down
// while the other's answer, and counts them.
func failReadsOf(table string, failed *atomic.Int64) grpc.StreamClientInterceptor {
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		cs, err := streamer(ctx, desc, cc, method, opts...)
		if err != nil || !strings.HasSuffix(method, "/ReadRows") {
			return cs, err
		}
		return &failingStream{ClientStream: cs, table: table, failed: failed}, nil
	}
}

type failingStream struct {
	grpc.ClientStream
	table  string
	failed *atomic.Int64
	fail   bool
}

func (s *failingStream) SendMsg(m any) error {
	if r, ok := m.(*bigtablepb.ReadRowsRequest); ok && strings.HasSuffix(r.GetTableName(), "/tables/"+s.table) {
		s.fail = true
	}
	return s.ClientStream.SendMsg(m)
}

func (s *failingStream) RecvMsg(m any) error {
	if s.fail {
		s.failed.Add(1)
		return status.Error(codes.Unavailable, "injected: the table's tablets are down")
	}
	return s.ClientStream.RecvMsg(m)
}

// lookupWithFailingUsers opens a Lookup on an in-process Bigtable whose users
// table fails every read (counted in failed) while the campaigns table
// answers, with the given retry budget and breaker cooldown. Everything is
// closed with the test.
func lookupWithFailingUsers(t *testing.T, failed *atomic.Int64, budget, cooldown time.Duration) *Lookup {
	t.Helper()
	return lookupThrough(t, failReadsOf(UsersTable, failed), budget, 100*time.Millisecond, cooldown)
}

// lookupThrough opens a Lookup on an in-process Bigtable whose reads pass
// through the stream interceptor in, with the given retry budget, attempt
// timeout and breaker cooldown. Everything is closed with the test.
func lookupThrough(t *testing.T, in grpc.StreamClientInterceptor, budget, attempt, cooldown time.Duration) *Lookup {
	t.Helper()
	srv, err := StartInProcess()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	testDialOptions = []grpc.DialOption{grpc.WithStreamInterceptor(in)}
	t.Cleanup(func() { testDialOptions = nil })
	cfg := Config{Endpoint: srv.Addr, Project: "p", Instance: "i",
		RetryBudget: budget, AttemptTimeout: attempt,
		InitialBackoff: 10 * time.Millisecond, BreakerCooldown: cooldown}.WithDefaults()
	ctx := context.Background()
	admin, closeAdmin, err := DialAdmin(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	err = EnsureLayout(ctx, admin, false)
	closeAdmin()
	if err != nil {
		t.Fatal(err)
	}
	l, err := OpenLookup(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// TestBreakerIsPerTable: while the users table fails and the campaigns
// table answers, the users breaker opens and stays open, and campaign reads
// go on. With one breaker for both, the users failure refused campaign reads
// for the cooldown, and a campaign read that succeeded closed the breaker
// again, so every batch paid the users table's whole retry budget.
func TestBreakerIsPerTable(t *testing.T) {
	var failed atomic.Int64
	l := lookupWithFailingUsers(t, &failed, 300*time.Millisecond, time.Minute)
	ctx := context.Background()

	a, _ := l.Resolve(ctx, []string{"usr_1"}, []string{"cmp_1"})
	if !errors.Is(a.UsersErr, ErrUnavailable) || a.CampaignsErr != nil {
		t.Fatalf("first read: users error %v, campaigns error %v; want users unavailable, campaigns answered", a.UsersErr, a.CampaignsErr)
	}
	if failed.Load() == 0 {
		t.Fatal("no users read failed: the injection did not reach the client")
	}
	// Campaigns are still read while the users breaker is open.
	a, st := l.Resolve(ctx, nil, []string{"cmp_2"})
	if a.CampaignsErr != nil || st.Reads != 1 {
		t.Errorf("campaign read after the users failure: error %v, %d reads; want answered by one read", a.CampaignsErr, st.Reads)
	}
	// And that success leaves the users breaker open: the next users read is
	// refused at once, not tried for another budget.
	before := failed.Load()
	a, _ = l.Resolve(ctx, []string{"usr_2"}, nil)
	if !errors.Is(a.UsersErr, errBreakerOpen) || failed.Load() != before {
		t.Errorf("users read after a campaign success: error %v, %d more failed reads; want refused by the open breaker, none",
			a.UsersErr, failed.Load()-before)
	}
}

// TestBreakerLetsOneReadThroughAfterItsCooldown: once the cooldown is over,
// one caller tries the failing table and the others are refused at once, as
// during the cooldown. All of them went through: 16 concurrent resolves
// each paid the whole retry budget and opened 153 read streams.
func TestBreakerLetsOneReadThroughAfterItsCooldown(t *testing.T) {
	// The one caller let through moves the deadline on by a cooldown and
	// then spends its retry budget: a cooldown well past the budget keeps a
	// caller the scheduler started late from counting as a second trial.
	const cooldown = time.Second
	var failed atomic.Int64
	l := lookupWithFailingUsers(t, &failed, 200*time.Millisecond, cooldown)
	ctx := context.Background()

	if a, _ := l.Resolve(ctx, []string{"usr_0"}, nil); !errors.Is(a.UsersErr, ErrUnavailable) {
		t.Fatalf("first read: %v, want unavailable", a.UsersErr)
	}
	time.Sleep(cooldown + 50*time.Millisecond)
	const callers = 16
	var refused, tried atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			a, _ := l.Resolve(ctx, []string{fmt.Sprintf("usr_%d", i+1)}, nil)
			switch {
			case errors.Is(a.UsersErr, errBreakerOpen):
				refused.Add(1)
			case errors.Is(a.UsersErr, ErrUnavailable):
				tried.Add(1)
			default:
				t.Errorf("caller %d: %v, want unavailable", i, a.UsersErr)
			}
		}()
	}
	close(start)
	wg.Wait()
	if tried.Load() != 1 || refused.Load() != callers-1 {
		t.Errorf("after the cooldown, %d concurrent resolves: %d tried the table, %d were refused; want 1 and %d",
			callers, tried.Load(), refused.Load(), callers-1)
	}
}

// failFirstReadsOf makes the first n ReadRows of table fail with err (then
// they answer), counting the failures.
func failFirstReadsOf(table string, n int64, err error, failed *atomic.Int64) grpc.StreamClientInterceptor {
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		cs, serr := streamer(ctx, desc, cc, method, opts...)
		if serr != nil || !strings.HasSuffix(method, "/ReadRows") {
			return cs, serr
		}
		return &firstFailing{ClientStream: cs, table: table, n: n, err: err, failed: failed}, nil
	}
}

type firstFailing struct {
	grpc.ClientStream
	table  string
	n      int64
	err    error
	failed *atomic.Int64
	fail   bool
}

func (s *firstFailing) SendMsg(m any) error {
	if r, ok := m.(*bigtablepb.ReadRowsRequest); ok && strings.HasSuffix(r.GetTableName(), "/tables/"+s.table) {
		s.fail = s.failed.Add(1) <= s.n
	}
	return s.ClientStream.SendMsg(m)
}

func (s *firstFailing) RecvMsg(m any) error {
	if s.fail {
		return s.err
	}
	return s.ClientStream.RecvMsg(m)
}

// TestACredentialsHiccupIsRetried: gRPC reports a call whose credentials
// could not be fetched (a token refresh that met a metadata-server 503) as
// Unauthenticated, the code of a server refusing bad credentials. The
// first is an outage, retried within the budget; the second a deployment
// mistake, which fails at once as ErrMisconfigured. Both were the second:
// one token refresh during a blip failed the bundle.
func TestACredentialsHiccupIsRetried(t *testing.T) {
	for _, tc := range []struct {
		name  string
		err   error
		fails int64
		want  error // nil: answered
	}{
		{"creds fetch failed", status.Error(codes.Unauthenticated, "transport: per-RPC creds failed due to error: metadata: GCE metadata \"instance/service-accounts/default/token\" not defined: 503"), 2, nil},
		{"server refused", status.Error(codes.Unauthenticated, "Request had invalid authentication credentials."), 1, ErrMisconfigured},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var failed atomic.Int64
			l := lookupThrough(t, failFirstReadsOf(UsersTable, tc.fails, tc.err, &failed), 2*time.Second, 500*time.Millisecond, time.Minute)
			a, _ := l.Resolve(context.Background(), []string{"usr_1"}, nil)
			if failed.Load() == 0 {
				t.Fatal("no users read was failed: the injection did not reach the client")
			}
			_, answered := a.Users["usr_1"]
			switch {
			case tc.want == nil && (a.UsersErr != nil || !answered):
				t.Errorf("after %d reads failed with %v: users error %v, answered %v; want the read retried and answered", tc.fails, tc.err, a.UsersErr, answered)
			case tc.want != nil && !errors.Is(a.UsersErr, tc.want):
				t.Errorf("a read failed with %v: users error %v, want %v", tc.err, a.UsersErr, tc.want)
			}
		})
	}
}
