package pipelines

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"

	"github.com/campaignpulse/campaignpulse/pipelines/generator"
)

// BenchmarkPubSubEmulatorBacklog measures what a backlog costs the official
// Pub/Sub emulator, the local stand-in a streaming run shares its two cores
// with: 600,000 generated events published at 20,000/s to the six source
// topics (by Publish, as make run-streaming does), read by six subscriptions
// of four streams that acknowledge at once, the subscribers starting on time
// or some seconds late, each holding at most max_outstanding messages (the
// client's default, 1,000, or the pipeline's default share, 50,000 over six
// subscriptions). It reports the emulator's CPU (its process group's,
// from /proc) and the rate at which it delivered once they had started. One
// iteration takes 30-60 s:
//
//	go test -run=XXX -bench=PubSubEmulatorBacklog ./pipelines/
//
// What it measured is in the README (Streaming, session 11).
func BenchmarkPubSubEmulatorBacklog(b *testing.B) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		b.Skip("reads process CPU times from /proc")
	}
	for _, outstanding := range []int{1000, 50_000 / 6} {
		for _, late := range []time.Duration{0, 10 * time.Second, 20 * time.Second} {
			b.Run(fmt.Sprintf("max_outstanding=%d/subscribers_late=%v", outstanding, late), func(b *testing.B) {
				var cpu, rate float64
				for range b.N {
					c, r := emulatorBacklogRun(b, late, outstanding)
					cpu += c.Seconds()
					rate += r
				}
				b.ReportMetric(cpu/float64(b.N), "emulator-cpu-s/op")
				b.ReportMetric(rate/float64(b.N), "delivered/s")
			})
		}
	}
}

// emulatorBacklogRun runs one scenario of BenchmarkPubSubEmulatorBacklog on
// a new emulator and returns its CPU time and the delivery rate.
func emulatorBacklogRun(b *testing.B, late time.Duration, maxOutstanding int) (time.Duration, float64) {
	const project, prefix, events, rate = "cp-bench", "cp-bench-", 600_000, 20_000
	ctx := context.Background()
	emu, err := StartPubSubEmulator(ctx, project, filepath.Join(b.TempDir(), "emulator.log"))
	if err != nil {
		b.Skip(err)
	}
	defer emu.Stop()
	b.Setenv("PUBSUB_EMULATOR_HOST", emu.Addr)
	client, err := pubsub.NewClient(ctx, project)
	if err != nil {
		b.Fatal(err)
	}
	defer client.Close()
	subs, err := EnsureTopics(ctx, client, project, prefix, time.Minute)
	if err != nil {
		b.Fatal(err)
	}

	rctx, stop := context.WithCancel(ctx)
	defer stop()
	var received atomic.Int64
	started := make(chan time.Time, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case <-time.After(late):
		case <-rctx.Done():
			return
		}
		started <- time.Now()
		for _, name := range subs {
			sub := client.Subscriber(name)
			sub.ReceiveSettings.NumGoroutines = 4
			sub.ReceiveSettings.MaxOutstandingMessages = maxOutstanding
			sub.ReceiveSettings.MaxOutstandingBytes = -1
			wg.Add(1)
			go func() {
				defer wg.Done()
				sub.Receive(rctx, func(_ context.Context, m *pubsub.Message) {
					m.Ack()
					received.Add(1)
				})
			}()
		}
	}()
	if late == 0 {
		time.Sleep(time.Second) // let the streams open before publishing
	}

	cpu0 := processGroupCPU(emu.Pgid())
	gen := generator.Default()
	gen.Rate, gen.Events = rate, events
	counts, err := Publish(ctx, client, PublishConfig{TopicPrefix: prefix, Generator: gen})
	if err != nil {
		b.Fatal(err)
	}
	from := <-started
	for received.Load() < counts.Published {
		if time.Since(from) > 3*time.Minute {
			b.Fatalf("delivered %d of %d in 3 minutes", received.Load(), counts.Published)
		}
		time.Sleep(50 * time.Millisecond)
	}
	elapsed := time.Since(from)
	cpu := processGroupCPU(emu.Pgid()) - cpu0
	stop()
	wg.Wait()
	return cpu, float64(counts.Published) / elapsed.Seconds()
}
