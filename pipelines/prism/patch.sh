#!/usr/bin/env bash
# Prepares the patched Prism the Makefile builds with, and prints the path of
# the go.mod to pass as -modfile (the Makefile puts it in GOFLAGS):
#
#   .build/prism/beam/    go.mod and go/ of the Beam Go SDK at the version
#                         go.mod requires, with prism.patch applied to Prism
#                         (runners/prism/internal), harness.patch to the SDK
#                         harness (core/runtime/harness), runnerlib.patch to
#                         the universal runner's launcher
#                         (runners/universal/runnerlib), exec.patch to
#                         the SDK's execution nodes (core/runtime/exec),
#                         and the patches' tests added;
#   .build/prism/go.mod   our go.mod plus a replace of the SDK by that copy,
#   .build/prism/go.sum   our go.sum.
#
# go.mod itself is untouched, so `go build` without the Makefile (and the
# flex template image, which never runs Prism) builds the unpatched SDK.
# Why a patch and not a fork: README.md in this folder.
set -euo pipefail
cd "$(dirname "$0")/../.."
here=pipelines/prism
out="$PWD/.build/prism"
export GOFLAGS=
sdk=github.com/apache/beam/sdks/v2

# go.mod's "go 1.26.8" line needs a go command that reads three-part
# versions and fetches the toolchain it names: Go 1.21 or newer.
case "$(go env GOVERSION 2>/dev/null)" in
go1.2[1-9]* | go1.[3-9][0-9]* | go[2-9]*) ;;
*)
  echo "patch.sh: $(go version 2>/dev/null || echo 'no go command') is too old: install Go 1.21 or newer (it fetches the 1.26 toolchain go.mod names) and run make again" >&2
  exit 1
  ;;
esac

# Two makes started at once on a fresh clone would both build the copy.
mkdir -p "$(dirname "$out")"
if command -v flock >/dev/null; then
  exec 9>"$out.lock"
  flock 9
fi

# The stamp covers the path too: go.mod's replace names the copy by its
# absolute path, so a moved or copied checkout must write its own.
stamp="$({ echo "$out"; cat go.mod go.sum "$here/prism.patch" "$here/harness.patch" "$here/runnerlib.patch" "$here/exec.patch" "$here"/*_test.go.in "$0"; } | sha256sum | cut -c1-16)"
if [ -f "$out/stamp" ] && [ "$(cat "$out/stamp")" = "$stamp" ] && [ -d "$out/beam/go" ]; then
  echo "$out/go.mod"
  exit 0
fi

if ! command -v patch >/dev/null; then
  echo "patch.sh: patch(1) is not installed; install it (Debian: apt-get install patch) and run make again" >&2
  exit 1
fi
go mod download "$sdk"
mod="$(go list -m -f '{{.Dir}}' "$sdk")"
rm -rf "$out"
mkdir -p "$out/beam"
cp "$mod/go.mod" "$mod/go.sum" "$out/beam/"
cp -R "$mod/go" "$out/beam/go"
chmod -R u+w "$out/beam"
internal="$out/beam/go/pkg/beam/runners/prism/internal"
if ! patch --quiet --no-backup-if-mismatch -p1 -d "$internal" <"$here/prism.patch" >&2; then
  echo "$here/prism.patch does not apply to $sdk's Prism at $(go list -m -f '{{.Version}}' "$sdk"):" \
    "check whether Beam fixed the bugs and drop or redo the patch ($here/README.md)" >&2
  exit 1
fi
harness="$out/beam/go/pkg/beam/core/runtime/harness"
if ! patch --quiet --no-backup-if-mismatch -p1 -d "$harness" <"$here/harness.patch" >&2; then
  echo "$here/harness.patch does not apply to $sdk's harness at $(go list -m -f '{{.Version}}' "$sdk"):" \
    "check whether Beam made state writes asynchronous and drop or redo the patch ($here/README.md)" >&2
  exit 1
fi
runnerlib="$out/beam/go/pkg/beam/runners/universal/runnerlib"
if ! patch --quiet --no-backup-if-mismatch -p1 -d "$runnerlib" <"$here/runnerlib.patch" >&2; then
  echo "$here/runnerlib.patch does not apply to $sdk's runnerlib at $(go list -m -f '{{.Version}}' "$sdk"):" \
    "check whether Beam stopped leaking the loopback placeholder file and drop or redo the patch ($here/README.md)" >&2
  exit 1
fi
execdir="$out/beam/go/pkg/beam/core/runtime/exec"
if ! patch --quiet --no-backup-if-mismatch -p1 -d "$execdir" <"$here/exec.patch" >&2; then
  echo "$here/exec.patch does not apply to $sdk's exec at $(go list -m -f '{{.Version}}' "$sdk"):" \
    "check whether Beam changed how a PCollection samples element sizes and drop or redo the patch ($here/README.md)" >&2
  exit 1
fi
cp "$here/state_writes_test.go.in" "$harness/state_writes_test.go"
cp "$here/metrics_unknown_ids_test.go.in" "$internal/jobservices/metrics_unknown_ids_test.go"
cp "$here/split_keys_test.go.in" "$internal/engine/split_keys_test.go"
cp "$here/sdf_watermark_test.go.in" "$internal/engine/sdf_watermark_test.go"
cp "$here/split_timers_test.go.in" "$internal/split_timers_test.go"
cp "$here/pull_decoder_test.go.in" "$internal/pull_decoder_test.go"
cp go.sum "$out/go.sum"
{ cat go.mod; printf '\n// Written by %s: Prism with %s.\nreplace %s => %s\n' "$here/patch.sh" "$here/prism.patch" "$sdk" "$out/beam"; } >"$out/go.mod"
echo "$stamp" >"$out/stamp"
echo "$out/go.mod"
