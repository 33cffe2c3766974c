package pipelines

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// TestWriteOutputIsWholeOrNothing: eventgen's --out was created in place, so a failed
// write left a partial file that a run would read as its input, and a
// failed close went unnoticed. A write or a close that fails must return an
// error and leave an earlier file as it was, with no temporary file beside
// it; one that succeeds replaces it.
func TestWriteOutputIsWholeOrNothing(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "events.jsonl")
	const earlier = "an earlier file\n"
	for _, c := range []struct {
		name  string
		write func(io.Writer) error
	}{
		{"the write fails", func(w io.Writer) error {
			io.WriteString(w, "partial\n")
			return errors.New("disk full")
		}},
		{"the close fails", func(w io.Writer) error {
			io.WriteString(w, "partial\n")
			return w.(*os.File).Close() // so that writeFile's close fails
		}},
	} {
		if err := os.WriteFile(out, []byte(earlier), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := WriteOutput(out, io.Discard, c.write); err == nil {
			t.Errorf("%s: no error", c.name)
		}
		if b, _ := os.ReadFile(out); string(b) != earlier {
			t.Errorf("%s: the file holds %q, want the earlier %q", c.name, b, earlier)
		}
		checkOnly(t, dir, "events.jsonl")
	}
	if err := WriteOutput(out, io.Discard, func(w io.Writer) error {
		_, err := io.WriteString(w, "new\n")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(out); string(b) != "new\n" {
		t.Errorf("the file holds %q after a successful write", b)
	}
	if st, err := os.Stat(out); err != nil || st.Mode().Perm() != 0o644 {
		t.Errorf("the file's mode: %v %v, want -rw-r--r--", st.Mode(), err)
	}
	checkOnly(t, dir, "events.jsonl")
}

func checkOnly(t *testing.T, dir string, name string) {
	t.Helper()
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != name {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("the directory holds %v, want only %s", names, name)
	}
}

// TestWriteOutputKeepsLinksAndDevices: --out through a symbolic link replaces
// the file the link names and keeps the link; --out=/dev/null writes to the
// device rather than renaming a file over it.
func TestWriteOutputKeepsLinksAndDevices(t *testing.T) {
	dir := t.TempDir()
	target, link := filepath.Join(dir, "target.jsonl"), filepath.Join(dir, "link.jsonl")
	if err := os.WriteFile(target, []byte("old\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	write := func(w io.Writer) error { _, err := io.WriteString(w, "new\n"); return err }
	if err := WriteOutput(link, nil, write); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Lstat(link); err != nil || st.Mode()&os.ModeSymlink == 0 {
		t.Errorf("after writing through the link, %s is %v (%v); want the link kept", link, st.Mode(), err)
	}
	if b, err := os.ReadFile(target); err != nil || string(b) != "new\n" {
		t.Errorf("the link's target holds %q (%v); want the new events", b, err)
	}
	before, err := os.Stat(os.DevNull)
	if err != nil {
		t.Skip(err)
	}
	if err := WriteOutput(os.DevNull, nil, write); err != nil {
		t.Fatal(err)
	}
	if after, err := os.Stat(os.DevNull); err != nil || after.Mode() != before.Mode() {
		t.Errorf("after writing to %s its mode is %v (%v); want the device's %v", os.DevNull, after.Mode(), err, before.Mode())
	}
}
