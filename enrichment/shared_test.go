package enrichment

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// blockedFor is how long a test waits for a call that must not block before
// it calls it blocked. It is generous: no test measures speed.
const blockedFor = 5 * time.Second

// sharedCfg returns a config of its own (the shared map is keyed by config)
// pointing at an in-process Bigtable.
func sharedCfg(t *testing.T, instance string, cooldown time.Duration) Config {
	t.Helper()
	srv, err := StartInProcess()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return Config{Endpoint: srv.Addr, Project: "p", Instance: t.Name() + "/" + instance, BreakerCooldown: cooldown}.WithDefaults()
}

// substituteOpen makes acquireLookup open with open until the test ends.
func substituteOpen(t *testing.T, open func(context.Context, Config) (*Lookup, error)) {
	old := openLookup
	openLookup = open
	t.Cleanup(func() { openLookup = old })
}

// gatedOpener opens a real Lookup, but first counts the call, reports it on
// entered and waits for gate: a Bigtable that does not answer yet. Like a
// dial, it gives up when its context ends.
type gatedOpener struct {
	calls   atomic.Int64
	entered chan struct{}
	gate    chan struct{}
	err     error // returned after the gate instead of opening
}

func newGatedOpener() *gatedOpener {
	return &gatedOpener{entered: make(chan struct{}, 100), gate: make(chan struct{})}
}

func (g *gatedOpener) open(ctx context.Context, cfg Config) (*Lookup, error) {
	g.calls.Add(1)
	g.entered <- struct{}{}
	select {
	case <-g.gate:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if g.err != nil {
		return nil, g.err
	}
	return OpenLookup(ctx, cfg)
}

type acquired struct {
	l       *Lookup
	release func()
	err     error
}

func acquireAsync(ctx context.Context, cfg Config) <-chan acquired {
	ch := make(chan acquired, 1)
	go func() {
		l, release, err := acquireLookup(ctx, cfg)
		ch <- acquired{l, release, err}
	}()
	return ch
}

// within returns what ch gives within blockedFor; ok is false if it gave
// nothing.
func within[T any](ch <-chan T) (v T, ok bool) {
	select {
	case v = <-ch:
		return v, true
	case <-time.After(blockedFor):
		return v, false
	}
}

// drain releases what acquires still running give, once the test has
// unblocked them, so no Lookup or goroutine outlives the test. Nil
// channels (acquires already seen) are skipped.
func drain(chs ...<-chan acquired) {
	for _, ch := range chs {
		if ch == nil {
			continue
		}
		if a := <-ch; a.release != nil {
			a.release()
		}
	}
}

func inShared(cfg Config) bool {
	shared.Lock()
	defer shared.Unlock()
	_, ok := shared.m[cfg]
	return ok
}

// TestAcquireAnotherConfigWhileOneOpens: an open that hangs (Bigtable not
// answering) holds up neither another config's acquire nor its release.
func TestAcquireAnotherConfigWhileOneOpens(t *testing.T) {
	a, b := sharedCfg(t, "a", 0), sharedCfg(t, "b", 0)
	g := newGatedOpener()
	substituteOpen(t, func(ctx context.Context, cfg Config) (*Lookup, error) {
		if cfg == a {
			return g.open(ctx, cfg)
		}
		return OpenLookup(ctx, cfg)
	})
	ctx := context.Background()
	chA := acquireAsync(ctx, a)
	var chB <-chan acquired
	defer func() {
		close(g.gate)
		drain(chA, chB)
	}()
	if _, ok := within(g.entered); !ok {
		t.Fatal("the open of config a never started")
	}

	chB = acquireAsync(ctx, b)
	got, ok := within(chB)
	if !ok {
		t.Fatalf("acquire of config b still blocked after %v while config a's open hangs", blockedFor)
	}
	chB = nil
	if got.err != nil {
		t.Fatalf("acquire of config b: %v", got.err)
	}
	released := make(chan struct{})
	go func() { got.release(); close(released) }()
	if _, ok := within((<-chan struct{})(released)); !ok {
		t.Fatalf("release of config b still blocked after %v while config a's open hangs", blockedFor)
	}
	if inShared(b) {
		t.Error("config b is still shared after its only release")
	}
}

// TestAcquireSharesOneOpen: the acquires of one config that arrive while
// its open hangs wait for that open: one open, whose Lookup (or error)
// they all get.
func TestAcquireSharesOneOpen(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
	}{{"opens", nil}, {"fails", errors.New("injected: bigtable did not answer")}} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := sharedCfg(t, "a", time.Minute)
			g := newGatedOpener()
			g.err = tc.err
			substituteOpen(t, g.open)
			ctx := context.Background()
			const n = 8
			chs := []<-chan acquired{acquireAsync(ctx, cfg)}
			var once sync.Once
			letGo := func() { once.Do(func() { close(g.gate) }) }
			defer letGo()
			if _, ok := within(g.entered); !ok {
				t.Fatal("the open never started")
			}
			for range n - 1 {
				chs = append(chs, acquireAsync(ctx, cfg))
			}
			time.Sleep(50 * time.Millisecond) // let them reach the wait; not needed for the check
			letGo()

			var got []acquired
			for i, ch := range chs {
				a, ok := within(ch)
				if !ok {
					go drain(chs[i:]...)
					t.Fatalf("acquire %d still blocked %v after the open was let go", i, blockedFor)
				}
				got = append(got, a)
			}
			for _, a := range got {
				if a.release != nil {
					defer a.release()
				}
			}
			if c := g.calls.Load(); c != 1 {
				t.Errorf("%d acquires made %d opens, want 1", n, c)
			}
			for i, a := range got {
				switch {
				case tc.err == nil && (a.err != nil || a.l != got[0].l):
					t.Errorf("acquire %d: Lookup %p, error %v; want the first's Lookup %p", i, a.l, a.err, got[0].l)
				case tc.err != nil && !errors.Is(a.err, tc.err):
					t.Errorf("acquire %d: error %v, want the open's %v", i, a.err, tc.err)
				}
			}
		})
	}
}

// TestAcquireSharesAFailedOpen: a failed open answers the config's acquires
// for BreakerCooldown without another open (the Enrich instances of a
// worker do not each retry on their own cooldown); after it, the next
// acquire opens again.
func TestAcquireSharesAFailedOpen(t *testing.T) {
	// Long enough that a loaded machine does not take it for two acquires,
	// which would skip the check.
	const cooldown = 2 * time.Second
	cfg := sharedCfg(t, "a", cooldown)
	errDown := errors.New("injected: bigtable did not answer")
	var calls atomic.Int64
	substituteOpen(t, func(ctx context.Context, cfg Config) (*Lookup, error) {
		if calls.Add(1) == 1 {
			return nil, errDown
		}
		return OpenLookup(ctx, cfg)
	})
	ctx := context.Background()
	inCooldown := time.Now().Add(cooldown) // the failure's cooldown ends after this
	if _, _, err := acquireLookup(ctx, cfg); !errors.Is(err, errDown) {
		t.Fatalf("first acquire: error %v, want %v", err, errDown)
	}
	l, release, err := acquireLookup(ctx, cfg)
	if time.Now().After(inCooldown) {
		t.Skipf("the machine took over %v for two failed acquires; cannot check the cooldown", cooldown)
	}
	if release != nil {
		defer release()
	}
	if !errors.Is(err, errDown) || calls.Load() != 1 {
		t.Fatalf("acquire within the cooldown: Lookup %p, error %v, %d opens; want the first's error and 1 open", l, err, calls.Load())
	}

	time.Sleep(cooldown + 10*time.Millisecond)
	l, release, err = acquireLookup(ctx, cfg)
	if err != nil || calls.Load() != 2 {
		t.Fatalf("acquire after the cooldown: error %v, %d opens; want a Lookup from a second open", err, calls.Load())
	}
	release()
	if inShared(cfg) {
		t.Error("the config is still shared after its only release")
	}
}

// TestAcquireWaiterGivesUpWithItsContext: an acquire waiting for another's
// open returns its context's error when its context ends, while the open
// still hangs; the open goes on for the others.
func TestAcquireWaiterGivesUpWithItsContext(t *testing.T) {
	cfg := sharedCfg(t, "a", time.Minute)
	g := newGatedOpener()
	substituteOpen(t, g.open)
	chOpener := acquireAsync(context.Background(), cfg)
	var once sync.Once
	letGo := func() { once.Do(func() { close(g.gate) }) }
	var chWaiter <-chan acquired
	defer func() {
		letGo()
		drain(chOpener, chWaiter)
	}()
	if _, ok := within(g.entered); !ok {
		t.Fatal("the open never started")
	}

	ctx, cancel := context.WithCancel(context.Background())
	chWaiter = acquireAsync(ctx, cfg)
	cancel()
	got, ok := within(chWaiter)
	if !ok {
		t.Fatalf("cancelled waiter still blocked %v while the open hangs", blockedFor)
	}
	chWaiter = nil
	if !errors.Is(got.err, context.Canceled) || got.l != nil {
		if got.release != nil {
			got.release()
		}
		t.Fatalf("cancelled waiter: Lookup %p, error %v; want %v", got.l, got.err, context.Canceled)
	}

	letGo()
	a, ok := within(chOpener)
	if !ok {
		t.Fatalf("opener still blocked %v after the open was let go", blockedFor)
	}
	chOpener = nil
	if a.err != nil {
		t.Fatalf("opener: %v", a.err)
	}
	a.release()
	if g.calls.Load() != 1 {
		t.Errorf("%d opens, want 1", g.calls.Load())
	}
}

// TestAcquireAfterTheOpenerGaveUp: when the acquire that opens gives up
// (its context ended), Bigtable has not failed: a waiter opens again at
// once instead of taking the opener's context error for a cooldown.
func TestAcquireAfterTheOpenerGaveUp(t *testing.T) {
	cfg := sharedCfg(t, "a", time.Minute)
	g := newGatedOpener()
	substituteOpen(t, g.open)
	octx, cancel := context.WithCancel(context.Background())
	defer cancel()
	chOpener := acquireAsync(octx, cfg)
	var chWaiter <-chan acquired
	defer func() {
		close(g.gate)
		drain(chOpener, chWaiter)
	}()
	if _, ok := within(g.entered); !ok {
		t.Fatal("the open never started")
	}
	chWaiter = acquireAsync(context.Background(), cfg)
	time.Sleep(50 * time.Millisecond) // let it reach the wait; not needed for the check

	cancel()
	a, ok := within(chOpener)
	if !ok {
		t.Fatalf("opener still blocked %v after its context ended", blockedFor)
	}
	chOpener = nil
	if !errors.Is(a.err, context.Canceled) {
		if a.release != nil {
			a.release()
		}
		t.Fatalf("opener: Lookup %p, error %v; want %v", a.l, a.err, context.Canceled)
	}
	if _, ok := within(g.entered); !ok {
		t.Fatalf("the waiter did not open again within %v of the opener giving up", blockedFor)
	}
	if g.calls.Load() != 2 {
		t.Errorf("%d opens, want 2", g.calls.Load())
	}
}
