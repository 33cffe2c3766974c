package pipelines

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/passert"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"github.com/campaignpulse/campaignpulse/transforms"
)

func init() {
	register.Function2x0(messageShapes)
	register.Emitter1[string]()
}

// TestReadLine reads lines through bufio's smallest buffer (16 bytes), so
// lines span many ReadSlice calls: each comes back whole up to maxBytes, cut
// past it, with its true size, and the last one without a newline too.
func TestReadLine(t *testing.T) {
	long := strings.Repeat("x", 100)
	in := "short\n" + long + "\n\n" + strings.Repeat("y", 19) + "\n" + strings.Repeat("z", 50)
	rd := bufio.NewReaderSize(strings.NewReader(in), 16)
	want := []struct {
		line string
		n    int64
		err  error
	}{
		{"short\n", 6, nil},
		{long[:20], 101, nil},
		{"\n", 1, nil},
		{strings.Repeat("y", 19) + "\n", 20, nil},
		{strings.Repeat("z", 20), 50, io.EOF},
		{"", 0, io.EOF},
	}
	for i, w := range want {
		line, n, err := readLine(rd, 20)
		if string(line) != w.line || n != w.n || err != w.err {
			t.Errorf("line %d: %q, %d bytes, %v; want %q, %d, %v", i, line, n, err, w.line, w.n, w.err)
		}
	}
}

// messageShapes describes a message by its size at the source, the bytes it
// kept, whether those are the start of a line of its size, and its id.
func messageShapes(b transforms.MessageBatch, emit func(string)) {
	for _, m := range b.Messages {
		emit(fmt.Sprintf("%d/%d/%v@%s", m.SourceBytes(), len(m.Data), bytes.Equal(m.Data, bytes.Repeat([]byte{'a'}, len(m.Data))), m.ID))
	}
}

// TestReadJSONLinesCutsOnlyHugeLines reads a file whose lines straddle the
// reader's 8 MB blocks, one of them 20 MB: every line arrives once, whole up
// to the payload limit or 1 MiB, the huge one as its first MiB with its size,
// named by its path and byte offset whichever block read it.
func TestReadJSONLinesCutsOnlyHugeLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "in.jsonl")
	sizes := []int{0, 10, 2 << 20, 20 << 20, 5, 7 << 20, 1}
	var buf bytes.Buffer
	for i, n := range sizes {
		buf.Write(bytes.Repeat([]byte{'a'}, n))
		if i < len(sizes)-1 {
			buf.WriteByte('\n')
		}
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	var want []any
	var offset int
	for _, n := range sizes {
		kept := min(n, max(transforms.MaxDeadLetterPayloadBytes, 4<<20+1))
		want = append(want, fmt.Sprintf("%d/%d/true@%s%d", n, kept, filePrefix(t, path), offset))
		offset += n + 1
	}
	p, s := beam.NewPipelineWithRoot()
	msgs := ReadJSONLines(s, 0, 1, 4<<20, path)
	passert.Equals(s, beam.ParDo(s, messageShapes, msgs), want...)
	ptest.RunAndValidate(t, p)
}

// TestReadJSONLinesSkipsAByteOrderMark reads, in two lanes, files that start
// with a UTF-8 byte order mark: it is not part of the first line, whether
// that line is whole or cut, and a mark later in a file is data.
func TestReadJSONLinesSkipsAByteOrderMark(t *testing.T) {
	dir := t.TempDir()
	bom := string(utf8BOM)
	short := filepath.Join(dir, "short.jsonl")
	huge := filepath.Join(dir, "huge.jsonl")
	if err := os.WriteFile(short, []byte(bom+"aaa\n"+bom+"aa\na"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(huge, []byte(bom+strings.Repeat("a", 3<<20)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p, s := beam.NewPipelineWithRoot()
	msgs := beam.Flatten(s, ReadJSONLines(s, 0, 2, 1024, short, huge), ReadJSONLines(s, 1, 2, 1024, short, huge))
	kept := transforms.MaxDeadLetterPayloadBytes - len(bom) // the mark was read, then dropped
	passert.Equals(s, beam.ParDo(s, messageShapes, msgs),
		"3/3/true@"+filePrefix(t, short)+"0", "5/5/false@"+filePrefix(t, short)+"7", "1/1/true@"+filePrefix(t, short)+"13",
		fmt.Sprintf("%d/%d/true@%s0", 3<<20, kept, filePrefix(t, huge)))
	ptest.RunAndValidate(t, p)
}

// filePrefix is the record-id prefix of the file at path as it is now.
func filePrefix(t *testing.T, path string) string {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fileRecordPrefix(path, fi)
}

// TestFileRecordIDsNameTheFileVersion: a file written again at the same
// path (the README's replay file, a daily export) names its lines apart
// from the first one's, even at the same offsets: dbt keeps one dead letter
// per message id, and would have taken the second file's for repeats.
func TestFileRecordIDsNameTheFileVersion(t *testing.T) {
	path := filepath.Join(t.TempDir(), "replay.jsonl")
	if err := os.WriteFile(path, []byte("{\"a\":1}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	first := filePrefix(t, path)
	if !strings.HasPrefix(first, path+"@") || !strings.HasSuffix(first, ":") {
		t.Errorf("prefix %q does not start with the path and end with the offset's colon", first)
	}
	if err := os.WriteFile(path, []byte("{\"b\":2}\n"), 0o644); err != nil { // the same size
		t.Fatal(err)
	}
	later := time.Now().Add(time.Minute)
	if err := os.Chtimes(path, later, later); err != nil {
		t.Fatal(err)
	}
	if second := filePrefix(t, path); second == first {
		t.Errorf("two versions of %s share the record-id prefix %q", path, first)
	}
}
