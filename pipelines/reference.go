package pipelines

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/campaignpulse/campaignpulse/transforms"
)

// ReferenceResult is what the plain-Go reference loop computed.
type ReferenceResult struct {
	In, Valid, Duplicates, DeadLetters, TooLate int64
	AggregatedEvents                            int64 // sum of events over every (window, key) aggregate
	WindowKeys                                  int
}

// Agrees reports whether a run over the same file counted what the
// reference did: in, valid, duplicates, dead letters, too late, the events
// of the latest panes and the window keys. The bench checks every run with
// it, and TestFileSourceMatchesReference the file source.
func (r ReferenceResult) Agrees(sum *Summary) error {
	got := [...]int64{sum.In, sum.Valid, sum.Duplicates, sum.DeadLetters, sum.TooLate, sum.LatestPaneEvents, sum.WindowKeys}
	want := [...]int64{r.In, r.Valid, r.Duplicates, r.DeadLetters, r.TooLate, r.AggregatedEvents, int64(r.WindowKeys)}
	if got != want {
		return fmt.Errorf("counts in/valid/duplicates/dead_letter/too_late/aggregated/window_keys %v differ from the reference's %v", got, want)
	}
	return nil
}

// Reference processes a JSON-lines file as the pipeline does, with no Beam
// and no warehouse: the same Parse, Validate and lateness rule, de-duplication
// by event id and aggregation into transforms.Metrics per (window, key), on
// every core. It is the speed limit the benchmark compares the pipeline to,
// and a second implementation its counts are tested against.
//
// Readers split the file into line-aligned byte ranges and parse in
// parallel; each event goes, in batches, to the aggregator goroutine that
// owns its id's hash, which de-duplicates and aggregates; the aggregators'
// maps are merged at the end.
func Reference(path string, o *Options, workers int) (ReferenceResult, error) {
	if workers <= 0 {
		workers = runtime.NumCPU()
	}
	st, err := os.Stat(path)
	if err != nil {
		return ReferenceResult{}, err
	}
	type batch []transforms.Event
	shards := make([]chan batch, workers)
	results := make([]ReferenceResult, workers)
	aggs := make([]map[partialKey]*transforms.Metrics, workers)
	var aggWG sync.WaitGroup
	sizeMillis := o.Window.Size.Milliseconds()
	for k := range shards {
		shards[k] = make(chan batch, 64)
		aggs[k] = map[partialKey]*transforms.Metrics{}
		aggWG.Add(1)
		go func(k int) {
			defer aggWG.Done()
			seen := map[uint64]struct{}{}
			res := &results[k]
			for b := range shards[k] {
				for i := range b {
					ev := &b[i]
					h := ev.DedupHash()
					if _, dup := seen[h]; dup {
						res.Duplicates++
						continue
					}
					seen[h] = struct{}{}
					res.Valid++
					if ev.TooLate {
						res.TooLate++
						continue
					}
					pk := partialKey{transforms.WindowStart(ev.EventTime, sizeMillis), transforms.MetricKey(ev)}
					m := aggs[k][pk]
					if m == nil {
						m = &transforms.Metrics{}
						aggs[k][pk] = m
					}
					m.Add(ev)
				}
			}
		}(k)
	}
	var readWG sync.WaitGroup
	readErrs := make([]error, workers)
	counts := make([][2]int64, workers) // in, dead letters
	vcfg := transforms.ValidateConfig{MaxFutureSkew: o.MaxFutureSkew}
	for r := 0; r < workers; r++ {
		readWG.Add(1)
		go func(r int) {
			defer readWG.Done()
			out := make([]batch, workers)
			for k := range out {
				out[k] = make(batch, 0, 256)
			}
			flush := func(k int) {
				if len(out[k]) > 0 {
					shards[k] <- out[k]
					out[k] = make(batch, 0, 256)
				}
			}
			rng := laneRange(st.Size(), r, workers)
			readErrs[r] = eachLine(path, rng.Start, rng.End, func(line []byte) {
				counts[r][0]++
				msg := transforms.Message{Data: line, Source: "file"}
				ev, rej := transforms.Parse(msg, o.MaxPayloadBytes)
				if rej == nil {
					now := ev.IngestTime
					if now == 0 {
						now = time.Now().UnixMilli()
					}
					rej = transforms.Validate(&ev, now, vcfg)
				}
				if rej != nil {
					counts[r][1]++
					return
				}
				ev.ReleasePayload()
				watermark := ev.IngestTime - o.Window.WatermarkSkew.Milliseconds()
				end := transforms.WindowEnd(ev.EventTime, sizeMillis)
				ev.TooLate = watermark >= end+o.Window.AllowedLateness.Milliseconds()
				ev.Late = !ev.TooLate && watermark >= end
				k := int(ev.DedupHash() % uint64(workers))
				out[k] = append(out[k], ev)
				if len(out[k]) >= 256 {
					flush(k)
				}
			})
			for k := range out {
				flush(k)
			}
		}(r)
	}
	readWG.Wait()
	for _, c := range shards {
		close(c)
	}
	aggWG.Wait()
	var res ReferenceResult
	for r := range counts {
		if readErrs[r] != nil {
			return res, readErrs[r]
		}
		res.In += counts[r][0]
		res.DeadLetters += counts[r][1]
	}
	merged := aggs[0]
	for k, rr := range results {
		res.Valid += rr.Valid
		res.Duplicates += rr.Duplicates
		res.TooLate += rr.TooLate
		if k == 0 {
			continue
		}
		for pk, m := range aggs[k] {
			if into := merged[pk]; into != nil {
				into.Merge(*m)
			} else {
				merged[pk] = m
			}
		}
	}
	res.WindowKeys = len(merged)
	for _, m := range merged {
		res.AggregatedEvents += m.Events
	}
	return res, nil
}

type partialKey struct {
	windowStart int64
	key         string
}

// eachLine calls fn for every line that starts in [start, end) of the file,
// with the same rules as ReadJSONLines: a line belongs to the range its first
// byte is in, and a byte order mark starting the file is dropped.
func eachLine(path string, start, end int64, fn func([]byte)) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	pos := start
	if start > 0 {
		pos--
	}
	if _, err := f.Seek(pos, io.SeekStart); err != nil {
		return err
	}
	rd := bufio.NewReaderSize(f, 1<<20)
	if start > 0 {
		skipped, err := rd.ReadBytes('\n')
		if err == io.EOF {
			return nil
		}
		pos += int64(len(skipped))
	}
	for pos < end {
		line, err := rd.ReadBytes('\n')
		if len(line) == 0 && err == io.EOF {
			return nil
		}
		first := pos == 0
		pos += int64(len(line))
		if first {
			line = bytes.TrimPrefix(line, utf8BOM) // as ReadJSONLines does
		}
		fn(bytes.TrimSuffix(line, []byte{'\n'}))
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
	return nil
}
