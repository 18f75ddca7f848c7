#!/usr/bin/env bash
# Cold start and package size of every Lambda function under functions/ (lib/docs/cold-start.md).
#
#   tests/coldstart.sh [RUNS]          RUNS timed starts per function (default 30)
#
# 1. Builds the release binaries of every function for this machine, and the harness
#    (tests/src/bin/coldstart.rs: a stand-in for the Lambda Runtime API).
# 2. Runs the harness on each binary: time from exec to the first
#    `GET /2018-06-01/runtime/invocation/next`, after one untimed run that checks the function
#    answers an API Gateway event.
# 3. With cargo-lambda on PATH (and COLDSTART_ARM64 not 0), builds the arm64 Lambda packages
#    with `cargo lambda build --release --arm64` and reports each bootstrap's size and the size
#    of the zip Lambda receives (`zip -9` of the bootstrap, as SAM uploads it).
# The last lines printed are the Markdown table of lib/docs/cold-start.md.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${1:-30}
FUNCS=()
for dir in functions/*/; do
  [ -f "$dir/Cargo.toml" ] && FUNCS+=("$(basename "$dir")")
done
if [ ${#FUNCS[@]} -eq 0 ]; then
  echo "no function under functions/" >&2
  exit 1
fi
PKGS=()
for f in "${FUNCS[@]}"; do PKGS+=(-p "$f"); done

echo "==> cargo build --release ${PKGS[*]}" >&2
cargo build --release "${PKGS[@]}"
echo "==> cargo build -p klozeo-tests --bin coldstart" >&2
cargo build -p klozeo-tests --bin coldstart
HARNESS=target/debug/coldstart

ARM64=0
if [ "${COLDSTART_ARM64:-1}" != 0 ]; then
  if cargo lambda --version >/dev/null 2>&1; then
    echo "==> cargo lambda build --release --arm64 ${PKGS[*]}" >&2
    if cargo lambda build --release --arm64 "${PKGS[@]}"; then
      ARM64=1
    else
      echo "cargo lambda build --arm64 failed; sizes left out" >&2
    fi
  else
    echo "cargo-lambda is not on PATH; arm64 sizes left out (see lib/docs/cold-start.md)" >&2
  fi
fi

size_of() { stat -c %s "$1"; }
mib() { awk -v b="$1" 'BEGIN { printf "%.2f MiB", b / 1048576 }'; }

ZIPDIR=$(mktemp -d)
trap 'rm -rf "$ZIPDIR"' EXIT

ROWS=()
for f in "${FUNCS[@]}"; do
  echo "==> $HARNESS --runs $RUNS target/release/$f" >&2
  timing=$("$HARNESS" --runs "$RUNS" --name "$f" "target/release/$f")
  # "| name | runs | min | median | p90 | max |" -> the numbers
  IFS='|' read -r _ _ runs min median p90 max _ <<<"$timing"
  native=$(mib "$(size_of "target/release/$f")")
  bootstrap="n/a"
  zipped="n/a"
  if [ "$ARM64" = 1 ] && [ -f "target/lambda/$f/bootstrap" ]; then
    bootstrap=$(mib "$(size_of "target/lambda/$f/bootstrap")")
    (cd "target/lambda/$f" && zip -q -9 -X "$ZIPDIR/$f.zip" bootstrap)
    zipped=$(mib "$(size_of "$ZIPDIR/$f.zip")")
  fi
  ROWS+=("| $f |${runs}|${min}|${median}|${p90}|${max}| $native | $bootstrap | $zipped |")
done

echo
echo "Machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| function | runs | min (ms) | median (ms) | p90 (ms) | max (ms) | release binary (x86_64) | arm64 bootstrap | arm64 zip |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
printf '%s\n' "${ROWS[@]}"
