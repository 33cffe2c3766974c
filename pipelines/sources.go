package pipelines

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"reflect"
	"strconv"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/sdf"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/rtrackers/offsetrange"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/campaignpulse/campaignpulse/pipelines/generator"
	"github.com/campaignpulse/campaignpulse/transforms"
)

func init() {
	register.DoFn4x2[context.Context, *sdf.LockRTracker, []byte, func(transforms.MessageBatch), sdf.ProcessContinuation, error](&generateFn{})
	register.DoFn4x2[context.Context, *sdf.LockRTracker, string, func(transforms.MessageBatch), sdf.ProcessContinuation, error](&readLinesFn{})
	register.Emitter1[transforms.MessageBatch]()
	beam.RegisterType(reflect.TypeOf((*generator.Config)(nil)).Elem())
}

// Generate is the deterministic traffic source: event i depends only on the
// seed and i, so any range of [0, events) is generated on its own. Lane k of
// n reads the k-th n-th of the range, as an offset-range restriction that a
// runner can split further.
func Generate(s beam.Scope, cfg generator.Config, lane, lanes, splits int) beam.PCollection {
	s = s.Scope("Generate")
	return beam.ParDo(s, &generateFn{Config: cfg, Lane: lane, Lanes: lanes, Splits: splits}, beam.Impulse(s))
}

type generateFn struct {
	Config      generator.Config
	Lane, Lanes int
	Splits      int
}

func (f *generateFn) CreateInitialRestriction(_ []byte) offsetrange.Restriction {
	return laneRange(f.Config.Events, f.Lane, f.Lanes)
}

// laneRange is lane k of n's share of [0, size).
func laneRange(size int64, k, n int) offsetrange.Restriction {
	n = max(n, 1)
	return offsetrange.Restriction{Start: size * int64(k) / int64(n), End: size * int64(k+1) / int64(n)}
}

func (f *generateFn) SplitRestriction(_ []byte, r offsetrange.Restriction) []offsetrange.Restriction {
	return r.EvenSplits(int64(f.Splits))
}

func (f *generateFn) RestrictionSize(_ []byte, r offsetrange.Restriction) float64 { return r.Size() }

func (f *generateFn) CreateTracker(r offsetrange.Restriction) *sdf.LockRTracker {
	return sdf.NewLockRTracker(offsetrange.NewTracker(r))
}

func (f *generateFn) ProcessElement(ctx context.Context, rt *sdf.LockRTracker, _ []byte, emit func(transforms.MessageBatch)) (sdf.ProcessContinuation, error) {
	r := rt.GetRestriction().(offsetrange.Restriction)
	b := newBatcher(emit)
	defer b.flush()
	id := recordIDs{prefix: strconv.FormatUint(f.Config.Seed, 10) + ":"}
	for i := r.Start; rt.TryClaim(i); i++ {
		msg := f.Config.Message(i, make([]byte, 0, 384))
		msg.ID = id.of(i) // unique for the seed, as the event is
		b.add(msg)
		if b.full() {
			return sdf.ResumeProcessingIn(0), nil
		}
	}
	return sdf.StopProcessing(), nil
}

// RecordsPerBundle is how many records a source emits before it checkpoints
// and hands the rest of its range back to the runner. Prism runs a stage's
// bundle over everything pending, so a source that read its whole range in
// one go would hold all of it in memory at once before the next stage ran;
// checkpointing bounds what is in flight and lets the stages overlap.
const RecordsPerBundle = 64 * transforms.DefaultBatchSize

// batcher gathers a source's messages into MessageBatch elements. A source
// flushes it before it returns, so a batch holds only records of positions
// it has claimed, and a split or checkpoint never strands a record.
type batcher struct {
	emit    func(transforms.MessageBatch)
	buf     []transforms.Message
	emitted int
}

// full reports whether the call has emitted RecordsPerBundle records.
func (b *batcher) full() bool { return b.emitted+len(b.buf) >= RecordsPerBundle }

func newBatcher(emit func(transforms.MessageBatch)) *batcher {
	return &batcher{emit: emit, buf: make([]transforms.Message, 0, transforms.DefaultBatchSize)}
}

func (b *batcher) add(m transforms.Message) {
	b.buf = append(b.buf, m)
	if len(b.buf) == transforms.DefaultBatchSize {
		b.flush()
	}
}

// recordIDs names a source's records (transforms.Message.ID) as a prefix
// and a position, with one allocation a record (the string) where
// concatenating a formatted number takes two: the sources run once per
// record.
type recordIDs struct {
	prefix string
	buf    []byte
}

// of returns the id of the record at position n.
func (r *recordIDs) of(n int64) string {
	r.buf = strconv.AppendInt(append(r.buf[:0], r.prefix...), n, 10)
	return string(r.buf)
}

// utf8BOM is the UTF-8 byte order mark.
var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// readLine reads the next line, newline included, and returns its first
// maxBytes bytes (all of it when shorter), how many bytes it had, and
// ReadBytes's error: io.EOF for a last line without a newline.
func readLine(rd *bufio.Reader, maxBytes int) (line []byte, n int64, err error) {
	for {
		chunk, err := rd.ReadSlice('\n')
		n += int64(len(chunk))
		if keep := min(len(chunk), maxBytes-len(line)); keep > 0 {
			line = append(line, chunk[:keep]...)
		}
		if err != bufio.ErrBufferFull {
			return line, n, err
		}
	}
}

func (b *batcher) flush() {
	if len(b.buf) == 0 {
		return
	}
	Progress.Read.Add(int64(len(b.buf)))
	b.emitted += len(b.buf)
	b.emit(transforms.MessageBatch{Messages: b.buf})
	b.buf = make([]transforms.Message, 0, transforms.DefaultBatchSize)
}

// ReadJSONLines reads newline-delimited events from files. Each file splits
// into byte ranges of blockSize; a line belongs to the range its first byte is
// in. Every line, blank ones too, becomes a message: a blank line is an input
// record like any other and is dead-lettered, not skipped. A UTF-8 byte order
// mark at the start of a file is not part of its first line.
//
// Lane k of n reads the k-th n-th of each file's bytes.
//
// A line longer than maxPayloadBytes can only be dead-lettered as oversize,
// and a dead letter keeps at most transforms.MaxDeadLetterPayloadBytes of it:
// the reader keeps the larger of the two (and the line's size), and skips the
// rest, so one huge line (a file is anyone's) cannot exhaust memory.
func ReadJSONLines(s beam.Scope, lane, lanes, maxPayloadBytes int, paths ...string) beam.PCollection {
	s = s.Scope("ReadJSONLines")
	return beam.ParDo(s, &readLinesFn{BlockSize: 8 << 20, Lane: lane, Lanes: lanes,
		MaxLineBytes: max(transforms.MaxDeadLetterPayloadBytes, maxPayloadBytes+1)}, beam.CreateList(s, paths))
}

// fileRecordPrefix names the lines of the file at path as it is now: its
// path, size and modification time, then a line's byte offset after the
// colon. Size and time tell the file from a later one written at the same
// path (the replay file of the README, a daily export), whose dead letters
// would otherwise share message ids with the first's, and dbt keeps one
// dead letter per message id.
func fileRecordPrefix(path string, fi os.FileInfo) string {
	return fmt.Sprintf("%s@%d.%d:", path, fi.Size(), fi.ModTime().UnixNano())
}

type readLinesFn struct {
	BlockSize    int64
	Lane, Lanes  int
	MaxLineBytes int // bytes kept of a line (see ReadJSONLines)
}

func (f *readLinesFn) CreateInitialRestriction(path string) offsetrange.Restriction {
	st, err := os.Stat(path)
	if err != nil {
		panic(fmt.Errorf("ReadJSONLines: %w", err)) // a missing input is a configuration error: fail the job at once
	}
	return laneRange(st.Size(), f.Lane, f.Lanes)
}

func (f *readLinesFn) SplitRestriction(_ string, r offsetrange.Restriction) []offsetrange.Restriction {
	return r.SizedSplits(f.BlockSize)
}

func (f *readLinesFn) RestrictionSize(_ string, r offsetrange.Restriction) float64 { return r.Size() }

func (f *readLinesFn) CreateTracker(r offsetrange.Restriction) *sdf.LockRTracker {
	return sdf.NewLockRTracker(offsetrange.NewTracker(r))
}

func (f *readLinesFn) ProcessElement(ctx context.Context, rt *sdf.LockRTracker, path string, emit func(transforms.MessageBatch)) (sdf.ProcessContinuation, error) {
	r := rt.GetRestriction().(offsetrange.Restriction)
	file, err := os.Open(path)
	if err != nil {
		return sdf.StopProcessing(), err
	}
	defer file.Close()
	fi, err := file.Stat()
	if err != nil {
		return sdf.StopProcessing(), err
	}
	pos := r.Start
	if pos > 0 {
		// The line that straddles Start belongs to the previous range.
		pos--
	}
	if _, err := file.Seek(pos, io.SeekStart); err != nil {
		return sdf.StopProcessing(), err
	}
	rd := bufio.NewReaderSize(file, 1<<20)
	if r.Start > 0 {
		skipped, err := rd.ReadSlice('\n')
		for err == bufio.ErrBufferFull {
			pos += int64(len(skipped))
			skipped, err = rd.ReadSlice('\n')
		}
		if err == io.EOF {
			rt.TryClaim(r.End) // nothing starts in this range
			return sdf.StopProcessing(), nil
		}
		pos += int64(len(skipped))
	}
	b := newBatcher(emit)
	defer b.flush()
	id := recordIDs{prefix: fileRecordPrefix(path, fi)}
	for {
		line, n, err := readLine(rd, f.MaxLineBytes)
		if n == 0 && err == io.EOF {
			rt.TryClaim(r.End) // end of file: mark the rest of the range done
			break
		}
		if !rt.TryClaim(pos) {
			break
		}
		start := pos
		pos += n
		if start == 0 && bytes.HasPrefix(line, utf8BOM) {
			// A file's byte order mark, not the first event's: Windows
			// tools and spreadsheet exports write one, and JSON parsers
			// refuse it. The line was claimed at its offset, 0.
			line, n = line[len(utf8BOM):], n-int64(len(utf8BOM))
		}
		// The file and the line's byte offset name it, whichever range or
		// lane reads it.
		msg := transforms.Message{Data: line, Source: "file", ID: id.of(start)}
		if len(line) > 0 && line[len(line)-1] == '\n' {
			msg.Data = line[:len(line)-1]
		} else if int64(len(line)) < n {
			msg.Size = n // cut: its size less the newline, if it had one
			if err == nil {
				msg.Size--
			}
		}
		b.add(msg)
		if err == io.EOF {
			rt.TryClaim(r.End)
			break
		}
		if err != nil {
			return sdf.StopProcessing(), err
		}
		if b.full() {
			// The residual starts one byte after the last line's start: the
			// next call skips the rest of that line, as for any split.
			return sdf.ResumeProcessingIn(0), nil
		}
	}
	return sdf.StopProcessing(), nil
}
