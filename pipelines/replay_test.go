package pipelines

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/campaignpulse/campaignpulse/pipelines/generator"
	"github.com/campaignpulse/campaignpulse/transforms"
)

// TestReplayDeadLetters runs the local job, replays the dead letters of two
// codes to a JSON-lines file and checks the file holds exactly their
// payloads, then runs the job again on that file: each line comes back as a
// dead letter with the same code (these codes are permanent; a transient one,
// ENRICH_UNAVAILABLE, would pass), so the file is the file source's input
// and nothing was lost on the way.
func TestReplayDeadLetters(t *testing.T) {
	ctx := context.Background()
	o := testOptions(t, 5_000)
	if _, err := RunLocal(ctx, o, true, nil); err != nil {
		t.Fatal(err)
	}
	codes := []string{"VALIDATE_UNSUPPORTED_SCHEMA_VERSION", "PARSE_WRONG_TYPE"}
	var want []string
	for i := int64(0); i < o.Generator.Events; i++ {
		if o.Generator.Kind(i) == generator.Malformed {
			if code := o.Generator.MalformedCode(i); code == codes[0] || code == codes[1] {
				want = append(want, string(o.Generator.Message(i, nil).Data))
			}
		}
	}
	if len(want) < 10 {
		t.Fatalf("only %d generated dead letters of %v: the test needs more", len(want), codes)
	}

	if _, err := ReplayToFile(ctx, o.Warehouse, ReplayFilter{}, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "name the error codes") {
		t.Errorf("a replay without codes: got %v, want an error asking for them", err)
	}
	var none bytes.Buffer
	if n, err := ReplayToFile(ctx, o.Warehouse, ReplayFilter{Codes: codes, Stage: "enrich"}, &none); err != nil || n.Selected != 0 || none.Len() != 0 {
		t.Errorf("stage enrich selected %d (%v), wrote %d bytes; want none", n.Selected, err, none.Len())
	}
	// A misspelt code or stage is an error, not an empty replay.
	for _, f := range []ReplayFilter{{Codes: []string{"ENRICH_UNAVAILABL"}}, {Codes: codes, Stage: "Enrich"}} {
		if _, err := ReplayToFile(ctx, o.Warehouse, f, &none); err == nil || !strings.Contains(err.Error(), "unknown") {
			t.Errorf("replay of %+v: got %v, want an error naming the unknown code or stage", f, err)
		}
	}

	var out bytes.Buffer
	n, err := ReplayToFile(ctx, o.Warehouse, ReplayFilter{Codes: codes, Since: time.Now().Add(-time.Hour)}, &out)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	sort.Strings(got)
	sort.Strings(want)
	if n.Selected != len(want) || n.Sent != len(want) || strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("replayed %v, %d lines; want the %d payloads of %v", n, len(got), len(want), codes)
	}

	// A dead letter the at-least-once sink wrote again, and a sender's
	// retry of a rejected event (another message, the same event id):
	// each event is still replayed once, under its first dead letter.
	one := `(select * from dead_letter_events where error_code = '` + codes[0] + `' and event_id is not null
		order by event_id, processing_timestamp limit 1)`
	execWarehouse(t, o.Warehouse,
		`insert into dead_letter_events select * replace (processing_timestamp + interval 1 second as processing_timestamp) from `+one,
		`insert into dead_letter_events select * replace (message_id || '-retry' as message_id,
		   processing_timestamp + interval 2 second as processing_timestamp) from `+one)
	var repeated bytes.Buffer
	n, err = ReplayToFile(ctx, o.Warehouse, ReplayFilter{Codes: codes}, &repeated)
	again := strings.Split(strings.TrimSuffix(repeated.String(), "\n"), "\n")
	sort.Strings(again)
	if err != nil || n.Selected != len(want)+2 || n.Repeats != 2 || n.Sent != len(want) || strings.Join(again, "\n") != strings.Join(want, "\n") {
		t.Fatalf("with an event's dead letter written three times: replayed %v (%v), %d bytes; want selected=%d, 2 repeats and the same %d lines",
			n, err, repeated.Len(), len(want)+2, len(want))
	}

	// A dead letter whose event is already a fact (replayed before: the
	// dead letters stay) is not sent again: a second run would count it twice.
	execWarehouse(t, o.Warehouse,
		`insert into fact_marketing_events select * replace ((select event_id from `+one+`) as event_id)
		 from fact_marketing_events limit 1`)
	var replayed bytes.Buffer
	n, err = ReplayToFile(ctx, o.Warehouse, ReplayFilter{Codes: codes}, &replayed)
	if err != nil || n.InFacts != 1 || n.Repeats != 2 || n.Sent != len(want)-1 || strings.Count(replayed.String(), "\n") != len(want)-1 {
		t.Fatalf("with one event already a fact: replayed %v (%v), %d lines; want skipped_in_facts=1 and %d lines",
			n, err, strings.Count(replayed.String(), "\n"), len(want)-1)
	}

	file := filepath.Join(t.TempDir(), "replay.jsonl")
	if err := os.WriteFile(file, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	rerun := testOptions(t, 1)
	rerun.Source, rerun.Input = SourceFile, file
	if err := rerun.Validate(); err != nil {
		t.Fatal(err)
	}
	sum, err := RunLocal(ctx, rerun, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	if sum.In != int64(len(want)) || sum.DeadLetters != sum.In ||
		sum.DeadLettersByCode["validate/"+codes[0]]+sum.DeadLettersByCode["parse/"+codes[1]] != sum.In {
		t.Errorf("the replayed file: in=%d dead letters %v; want each of the %d lines back under its code", sum.In, sum.DeadLettersByCode, len(want))
	}
}

// TestReplayLine: a payload becomes one line of a JSON-lines file, JSON
// compacted, or is refused when it cannot be one.
func TestReplayLine(t *testing.T) {
	for _, c := range []struct {
		in, want string
		ok       bool
	}{
		{`{"event_id":"e1"}`, `{"event_id":"e1"}`, true},
		{"{\n  \"event_id\": \"a b\\n\"\n}", `{"event_id":"a b\n"}`, true},
		{`not json`, `not json`, true},
		{"not\njson", "", false},
		{"{\"event_id\":\r", "", false},
	} {
		got, ok := ReplayLine([]byte(c.in))
		if ok != c.ok || string(got) != c.want {
			t.Errorf("ReplayLine(%q) = %q, %v; want %q, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

// TestReplayToPubSub publishes the replayed payloads to a pstest topic, byte
// for byte, with a replay_of attribute naming the dead letter; with the
// production defaults no other attribute, and, for a job set to read them,
// the id and event-time attributes it reads when the payload is an event.
func TestReplayToPubSub(t *testing.T) {
	ctx := context.Background()
	o := testOptions(t, 2_000)
	if _, err := RunLocal(ctx, o, true, nil); err != nil {
		t.Fatal(err)
	}
	code := "VALIDATE_UNSUPPORTED_SCHEMA_VERSION"
	want := map[string]bool{}
	for i := int64(0); i < o.Generator.Events; i++ {
		if o.Generator.Kind(i) == generator.Malformed && o.Generator.MalformedCode(i) == code {
			want[string(o.Generator.Message(i, nil).Data)] = true
		}
	}
	withAttributes := DefaultPubSubConfig
	withAttributes.IDAttribute, withAttributes.TimestampAttribute = "event_id", "event_time"
	for _, ps := range []PubSubConfig{DefaultPubSubConfig, withAttributes} {
		srv := pstest.NewServer()
		defer srv.Close()
		client := replayTopic(t, srv)
		// To a real topic, the generator's synthetic events never go.
		n, err := ReplayToPubSub(ctx, o.Warehouse, ReplayFilter{Codes: []string{code}, SkipSynthetic: true}, client, "replay", ps)
		if err != nil || n.Sent != 0 || n.Synthetic != len(want) || len(srv.Messages()) != 0 {
			t.Fatalf("a replay that skips synthetic dead letters: %v (%v), %d messages; want skipped_synthetic=%d and none sent",
				n, err, len(srv.Messages()), len(want))
		}
		n, err = ReplayToPubSub(ctx, o.Warehouse, ReplayFilter{Codes: []string{code}}, client, "replay", ps)
		if err != nil {
			t.Fatal(err)
		}
		msgs := srv.Messages()
		if n.Sent != len(want) || len(msgs) != len(want) || len(want) == 0 {
			t.Fatalf("replayed %v, %d messages on the topic; want the %d payloads", n, len(msgs), len(want))
		}
		for _, m := range msgs {
			if !want[string(m.Data)] {
				t.Errorf("published %.80q, not one of the dead letters' payloads", m.Data)
			}
			// As the Dataflow source reads it: the message names its dead
			// letter, and Dedup's identity of the event differs from its
			// first copy's, as does an id Dataflow deduplicates on.
			raw, err := proto.Marshal(&pubsubpb.PubsubMessage{Data: m.Data, Attributes: m.Attributes})
			if err != nil {
				t.Fatal(err)
			}
			read, err := (&pubsubMessageFn{Source: "replay"}).ProcessElement(0, raw)
			if err != nil {
				t.Fatal(err)
			}
			ev, rej := transforms.Parse(read, len(read.Data)+1)
			if rej != nil {
				t.Fatalf("the replayed payload does not parse: %v", rej)
			}
			first := transforms.Event{EventID: ev.EventID}
			if ev.ReplayOf == "" || ev.ReplayOf != m.Attributes[ReplayOfAttribute] || ev.DedupHash() == first.DedupHash() {
				t.Errorf("message %.60q (attributes %v) reads as an event with replay_of %q: Dedup would take it for its first copy", m.Data, m.Attributes, ev.ReplayOf)
			}
			switch {
			case ps.IDAttribute == "" && (m.Attributes["event_id"] != "" || m.Attributes["event_time"] != ""):
				t.Errorf("message %.60q has attributes %v; a job that reads none is sent none but replay_of and source", m.Data, m.Attributes)
			case ps.IDAttribute != "" && (m.Attributes["event_id"] != ev.EventID+" replay_of "+ev.ReplayOf || m.Attributes["event_time"] == ""):
				t.Errorf("message %.60q has attributes %v, want the event id with its replay_of, and event_time", m.Data, m.Attributes)
			}
		}
	}
}

// replayTopic returns a client of srv, closed with the test, with the topic
// "replay" created in project "p".
func replayTopic(t *testing.T, srv *pstest.Server) *pubsub.Client {
	t.Helper()
	client, err := pubsub.NewClient(context.Background(), "p", option.WithEndpoint(srv.Addr), option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	if _, err := client.TopicAdminClient.CreateTopic(context.Background(), &pubsubpb.Topic{Name: "projects/p/topics/replay"}); err != nil {
		t.Fatal(err)
	}
	return client
}

// stallPublish holds every Publish call of a pstest server until release is
// closed.
type stallPublish struct{ release chan struct{} }

func (r stallPublish) React(any) (bool, any, error) {
	<-r.release
	return false, nil, nil
}

// TestReplayToPubSubHoldsABoundedQueue stalls Pub/Sub and checks that a
// replay stops reading dead letters once replayOutstanding messages wait
// unsent, rather than read every payload into memory while Pub/Sub catches
// up; then lets Pub/Sub answer and checks that every payload went out.
func TestReplayToPubSubHoldsABoundedQueue(t *testing.T) {
	ctx := context.Background()
	o := testOptions(t, 2_000)
	if _, err := RunLocal(ctx, o, true, nil); err != nil {
		t.Fatal(err)
	}
	var f ReplayFilter
	for code := range transforms.ErrorCodes {
		f.Codes = append(f.Codes, code)
	}
	all, err := ReadDeadLetters(ctx, o.Warehouse, f, func(ReplayPayload) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	const bound = 4
	if all.Selected-all.Truncated < 5*bound {
		t.Fatalf("the run left %v dead letters; the test needs more than %d", all, 5*bound)
	}
	defer func(old int) { replayOutstanding = old }(replayOutstanding)
	replayOutstanding = bound

	stall := stallPublish{release: make(chan struct{})}
	var releaseOnce sync.Once
	release := func() { releaseOnce.Do(func() { close(stall.release) }) }
	srv := pstest.NewServer(pstest.ServerReactorOption{FuncName: "Publish", Reactor: stall})
	defer srv.Close()
	defer release()
	client := replayTopic(t, srv)

	readBefore := ReplayStats.Read.Load()
	type result struct {
		n   ReplayCounts
		err error
	}
	done := make(chan result, 1)
	go func() {
		n, err := ReplayToPubSub(ctx, o.Warehouse, f, client, "replay", PubSubConfig{})
		done <- result{n, err}
	}()
	// With Pub/Sub stalled, the replay may read the messages it can hold,
	// one more that waits to be published, and the truncated dead letters,
	// which it skips without publishing.
	limit := int64(bound + 1 + all.Truncated)
	deadline := time.Now().Add(30 * time.Second)
	for ReplayStats.Read.Load()-readBefore < bound && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // time to read on, were it not held
	if read := ReplayStats.Read.Load() - readBefore; read < bound || read > limit {
		t.Errorf("with Pub/Sub stalled the replay read %d of %d dead letters; want %d to %d", read, all.Selected, bound, limit)
	}
	release()
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.n.Sent != all.Selected-all.Truncated || len(srv.Messages()) != r.n.Sent {
		t.Errorf("replayed %v, %d messages on the topic; want all %d untruncated dead letters", r.n, len(srv.Messages()), all.Selected-all.Truncated)
	}
}
