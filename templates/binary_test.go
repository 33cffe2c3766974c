package templates_test

import (
	"context"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// dockerfileBuild returns the environment and the flags of the Dockerfile's
// go build of cmd/campaignpulse (its RUN instruction, continuation lines
// joined).
func dockerfileBuild(t *testing.T) (env, flags []string) {
	t.Helper()
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	src := strings.ReplaceAll(string(b), "\\\n", " ")
	run := regexp.MustCompile(`(?m)^RUN\s+(.*\bgo build\b.*\./cmd/campaignpulse.*)$`).FindStringSubmatch(src)
	if run == nil {
		t.Fatal("no RUN ... go build ... ./cmd/campaignpulse in the Dockerfile")
	}
	fields := strings.Fields(run[1])
	i := slices.Index(fields, "go")
	env = fields[:i]
	for _, f := range fields[i+2:] { // after "go build"
		if f == "-trimpath" {
			flags = append(flags, f)
		}
	}
	return env, flags
}

// TestTemplateBinaryIsStatic builds cmd/campaignpulse with the environment
// of the Dockerfile's go build and checks what the launcher and Dataflow's
// workers will run:
//
//   - the binary is static (no ELF interpreter, no shared library), so it
//     starts in the launcher's base image and in the Go SDK's worker
//     container whatever C libraries they ship. The cgo build of make build
//     needs glibc 2.34 and libstdc++ for DuckDB, which an unpinned launcher
//     base need not have: then every launch would fail;
//   - run with the production flags and the Dataflow runner's --dry_run, it
//     translates the job, as the launcher's run would before submitting it;
//   - asked for the local warehouse, it says why it has none, and creates
//     no file.
//
// The build compiles every dependency a second time without cgo: about
// four minutes on a cold cache of this 2-core machine.
func TestTemplateBinaryIsStatic(t *testing.T) {
	env, flags := dockerfileBuild(t)
	if !slices.Contains(env, "CGO_ENABLED=0") {
		t.Errorf("the Dockerfile builds with %q, not CGO_ENABLED=0: the binary would need the C libraries it was built against", env)
	}
	bin := filepath.Join(t.TempDir(), "campaignpulse")
	build := exec.Command("go", append(append([]string{"build"}, flags...), "-o", bin, "./cmd/campaignpulse")...)
	build.Dir = ".."
	// The Dockerfile's build, not the Makefile's: without the patched-Prism
	// go.mod and tag that make test puts in GOFLAGS (pipelines/prism).
	build.Env = append(append(os.Environ(), "GOFLAGS="), env...)
	start := time.Now()
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", strings.Join(env, " "), build, err, out)
	}
	t.Logf("built with %s in %s", strings.Join(env, " "), time.Since(start).Round(time.Second))

	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary has an ELF interpreter: it is dynamically linked")
		}
	}
	if libs, err := f.ImportedLibraries(); err != nil || len(libs) > 0 {
		t.Errorf("the binary needs shared libraries %q (%v)", libs, err)
	}
	f.Close()

	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Skipf("the binary is built for linux/amd64, this is %s/%s: not run", runtime.GOOS, runtime.GOARCH)
	}
	t.Run("dry run", func(t *testing.T) {
		gcsURL, unexpected := fakeBucketSettings(t)
		args := slices.Clone(prodArgs)
		for name, v := range dataflowArgs {
			args = append(args, "--"+name+"="+v)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		run := exec.CommandContext(ctx, bin, args...)
		run.Dir = t.TempDir()
		run.Env = append(os.Environ(), "STORAGE_EMULATOR_HOST="+gcsURL, "GOOGLE_APPLICATION_CREDENTIALS=")
		out, err := run.CombinedOutput()
		if err != nil {
			t.Fatalf("the template binary's dry run: %v\n%s", err, tail(out))
		}
		if u := unexpected(); len(u) > 0 {
			t.Errorf("the dry run asked Cloud Storage for more than the buckets' settings: %v", u)
		}
		// Beam's logger quotes the job's JSON: match its escaped form too.
		if !regexp.MustCompile(`\\?"type\\?":\s*\\?"JOB_TYPE_STREAMING`).Match(out) {
			t.Errorf("the dry run printed no streaming job:\n%s", tail(out))
		}
	})
	t.Run("no local warehouse", func(t *testing.T) {
		dir := t.TempDir()
		run := exec.Command(bin, "--source=generator", "--events=10", "--warehouse="+filepath.Join(dir, "w.duckdb"))
		run.Dir = dir
		out, err := run.CombinedOutput()
		if err == nil {
			t.Fatalf("a run with --sink=duckdb succeeded without DuckDB:\n%s", out)
		}
		if !strings.Contains(string(out), "CGO_ENABLED=0") || !strings.Contains(string(out), "--sink=bigquery") {
			t.Errorf("the error does not say why or what to do instead:\n%s", out)
		}
		if _, err := os.Stat(filepath.Join(dir, "w.duckdb")); err == nil {
			t.Error("the failed run created the warehouse file")
		}
	})
}

// tail returns the last 4 KB of a command's output.
func tail(out []byte) []byte {
	if len(out) > 4096 {
		return out[len(out)-4096:]
	}
	return out
}
