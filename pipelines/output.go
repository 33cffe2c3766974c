package pipelines

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// WriteOutput calls write with the file out, or with stdout when out is -,
// so that a tool's output file is whole or absent: a file is written to a
// temporary file beside out (<name>.*.tmp), closed (a failed close is a
// failed write) and renamed over out only if all that succeeded. A failed
// write leaves an earlier out as it was, and no partial file that a later
// run would read as its input. A symbolic link is followed, so the file it
// names is replaced and the link stays; anything else that is not a regular
// file (a FIFO, /dev/null) is written through, as a rename would replace the
// device or pipe itself. The file gets os.Create's mode (0644 before the
// umask), not a temporary file's 0600. write's own error is returned as it
// is; the file's errors name out.
func WriteOutput(out string, stdout io.Writer, write func(io.Writer) error) error {
	if out == "-" {
		return write(stdout)
	}
	if st, err := os.Stat(out); err == nil && !st.Mode().IsRegular() {
		return writeThrough(out, write)
	}
	if target, err := filepath.EvalSymlinks(out); err == nil {
		out = target
	}
	f, err := os.CreateTemp(filepath.Dir(out), filepath.Base(out)+".*.tmp")
	if err != nil {
		return fmt.Errorf("%s: %w", out, err)
	}
	defer os.Remove(f.Name()) // after a successful rename, nothing to remove
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", out, err)
	}
	if err := writeAndClose(f, out, write); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), out); err != nil {
		return fmt.Errorf("%s: %w", out, err)
	}
	return nil
}

// writeThrough writes to an existing file that is not a regular one (a FIFO,
// a device) in place.
func writeThrough(out string, write func(io.Writer) error) error {
	f, err := os.OpenFile(out, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("%s: %w", out, err)
	}
	return writeAndClose(f, out, write)
}

// writeAndClose calls write with f and closes f; a failed close is a failed
// write.
func writeAndClose(f *os.File, out string, write func(io.Writer) error) error {
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("%s: %w", out, err)
	}
	return nil
}
