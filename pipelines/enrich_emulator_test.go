package pipelines

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/campaignpulse/campaignpulse/enrichment"
	"github.com/campaignpulse/campaignpulse/transforms"
)

// TestEnrichAgainstEmulatorSurvivesOutage runs the whole local job with
// enrichment against the official Bigtable emulator (cbtemulator, started
// here), kills the emulator while the pipeline is enriching, and checks each
// outage rule: the events enriched before the outage are enriched; those
// after are, with deadletter, dead letters with ENRICH_UNAVAILABLE and a
// payload that parses and validates again, or, with pass, rows with
// enrichment_status unavailable; and every count still reconciles (in =
// valid + duplicates + dead letters, and the rest of Problems).
//
// The pipeline reaches the emulator through a byte-counting TCP relay; once
// the emulator has sent relayKillAfter bytes of answers (a fraction of what
// the run reads), the test kills the emulator process. The relay only
// observes: the outage is the real process going away.
func TestEnrichAgainstEmulatorSurvivesOutage(t *testing.T) {
	for _, mode := range []string{enrichment.OnUnavailableDeadLetter, enrichment.OnUnavailablePass} {
		t.Run(mode, func(t *testing.T) { testEmulatorOutage(t, mode) })
	}
}

func testEmulatorOutage(t *testing.T, mode string) {
	ctx := context.Background()
	emu, err := enrichment.StartEmulator(ctx)
	if err != nil {
		t.Fatalf("this test needs the Cloud Bigtable emulator: %v", err)
	}
	t.Cleanup(emu.Stop)

	o := testOptions(t, 30_000)
	o.Lanes = 2
	direct := enrichment.Config{Project: "test", Instance: "enrichment", Endpoint: emu.Addr}.WithDefaults()
	if err := SeedEnrichment(ctx, &direct, o.Generator, nil, false); err != nil {
		t.Fatal(err)
	}
	// The run reads about 3 MB of answers (some 20,000 distinct users);
	// one micro-batch's answer can be a few hundred KB, and the outage must
	// not hit the very first read (that would open the breaker at once).
	const relayKillAfter = 1 << 20
	relay := startRelay(t, emu.Addr, relayKillAfter, emu.Stop)

	o.Enrich = true
	o.Enrichment = direct
	o.Enrichment.Endpoint = relay.addr
	o.Enrichment.OnUnavailable = mode
	// A long breaker: after the first read that fails past its budget, the
	// rest of the run fails fast, so the test stays short. The budget is not
	// short: a read that times out on a busy machine would open the breaker
	// before the outage.
	o.Enrichment.RetryBudget, o.Enrichment.AttemptTimeout = 3*time.Second, 2*time.Second
	o.Enrichment.BreakerCooldown = time.Minute
	o.Enrichment.MicroBatchEvents = 256

	sum, err := RunLocal(ctx, o, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	x := sum.Enrichment
	t.Logf("relay passed %d bytes of answers; enriched=%d unavailable=%d dead-lettered=%d read errors=%d hits=%d misses=%d",
		relay.answered.Load(), x.Enriched, x.Unavailable, x.DeadLettered, x.ReadErrors, x.Hits, x.Misses)
	if !relay.killed.Load() {
		t.Fatalf("the run finished before the emulator was stopped (it answered %d bytes); lower relayKillAfter", relay.answered.Load())
	}
	if p := sum.Problems(); len(p) > 0 {
		t.Fatalf("counts do not reconcile after the outage: %v", p)
	}
	if sum.In != sum.Valid+sum.Duplicates+sum.DeadLetters {
		t.Fatalf("in=%d valid=%d duplicates=%d dead=%d", sum.In, sum.Valid, sum.Duplicates, sum.DeadLetters)
	}
	if mode == enrichment.OnUnavailablePass {
		if x.Enriched == 0 || x.Unavailable == 0 || x.DeadLettered != 0 || x.RowsUnavailable != x.Unavailable || x.ReadErrors == 0 {
			t.Fatalf("want events enriched before the outage and passed on unavailable after it: %+v", x)
		}
		if e := o.Generator.Expected(); sum.Valid != e.Valid || sum.DeadLetters != e.Malformed {
			t.Errorf("pass mode lost or dead-lettered events: valid=%d dead=%d, generator made %d valid, %d malformed", sum.Valid, sum.DeadLetters, e.Valid, e.Malformed)
		}
		return
	}
	if x.Enriched == 0 || x.DeadLettered == 0 || x.Unavailable != x.DeadLettered || x.ReadErrors == 0 {
		t.Fatalf("want events enriched before the outage and dead-lettered after it: %+v", x)
	}
	if got := sum.DeadLettersByCode[transforms.StageEnrich+"/"+transforms.CodeEnrichUnavailable]; got != x.DeadLettered {
		t.Errorf("%d ENRICH_UNAVAILABLE rows in the warehouse, Enrich counted %d", got, x.DeadLettered)
	}

	// Every dead-lettered event can be replayed: its payload parses and
	// validates as the event it was.
	w, err := OpenWarehouse(o.Warehouse)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Release()
	rows, err := w.DB().QueryContext(ctx, `select event_id, payload from `+transforms.TableDeadLetters+` where error_code = ?`, transforms.CodeEnrichUnavailable)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var n int64
	for rows.Next() {
		var id string
		var payload []byte
		if err := rows.Scan(&id, &payload); err != nil {
			t.Fatal(err)
		}
		ev, rej := transforms.Parse(transforms.Message{Data: payload}, transforms.DefaultMaxPayloadBytes)
		if rej == nil {
			rej = transforms.Validate(&ev, time.Now().UnixMilli(), transforms.ValidateConfig{MaxFutureSkew: time.Hour})
		}
		if rej != nil || ev.EventID != id {
			t.Fatalf("dead letter %s does not replay: %v (payload %s)", id, rej, payload)
		}
		n++
	}
	if n != x.DeadLettered {
		t.Errorf("read %d ENRICH_UNAVAILABLE payloads, want %d", n, x.DeadLettered)
	}
}

// relay forwards TCP connections to a backend and calls kill once the
// backend has sent more than killAfter bytes.
type relay struct {
	addr     string
	answered atomic.Int64
	killed   atomic.Bool
}

func startRelay(t *testing.T, backend string, killAfter int64, kill func()) *relay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &relay{addr: ln.Addr().String()}
	var once sync.Once
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				b, err := net.DialTimeout("tcp", backend, time.Second)
				if err != nil {
					return // the backend is gone: the client sees the connection close
				}
				defer b.Close()
				done := make(chan struct{})
				go func() {
					io.Copy(b, c)
					b.(*net.TCPConn).CloseWrite()
					close(done)
				}()
				buf := make([]byte, 32<<10)
				for {
					k, err := b.Read(buf)
					if k > 0 {
						if _, werr := c.Write(buf[:k]); werr != nil {
							break
						}
						if r.answered.Add(int64(k)) > killAfter {
							once.Do(func() { kill(); r.killed.Store(true) })
						}
					}
					if err != nil {
						if !errors.Is(err, io.EOF) && !strings.Contains(err.Error(), "closed") {
							t.Logf("relay: %v", err)
						}
						break
					}
				}
				c.Close()
				<-done
			}()
		}
	}()
	return r
}
