#!/usr/bin/env bash
# Fuzzes every parser that sees outside bytes (fuzz/fuzz_targets): the sidx and Cues indexes,
# DataChannel messages, VideoInfo JSON, Range headers, video paths and ids, signalling
# messages and the YouTube parser.
#   scripts/fuzz.sh                    every target for 30 s (what CI runs)
#   scripts/fuzz.sh 600 sidx cues      10 min for these two
#   scripts/fuzz.sh --asan 600         with AddressSanitizer, 10 min per target
#   RUNS=10000000 scripts/fuzz.sh --asan   ten million executions per target
# The default build is the debug profile (overflow checks and debug assertions on) without a
# sanitizer: the node is safe Rust, and that build takes minutes where an ASan build of
# wasmtime and the WebRTC stack takes most of an hour on two cores. `--asan` is the release
# profile with AddressSanitizer, for long runs.
# cargo-fuzz drives libFuzzer; it needs nightly rustc features, which the stable toolchain
# allows with RUSTC_BOOTSTRAP=1. New inputs go to fuzz/corpus/<target>/ (only the committed
# seed-* files are kept in git); a crash stops the run with its input in
# fuzz/artifacts/<target>/ and a non-zero exit.
set -euo pipefail
cd "$(dirname "$0")/.."
build=(--dev -s none)
if [ "${1:-}" = "--asan" ]; then
  build=(--release -s address)
  shift
fi
seconds="${1:-30}"
shift || true
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --version 0.13.1 --locked
fi
export RUSTC_BOOTSTRAP=1
cd fuzz
targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
  mapfile -t targets < <(cargo fuzz list)
fi
limit=(-max_total_time="$seconds")
what="${seconds}s"
if [ -n "${RUNS:-}" ]; then
  limit=(-runs="$RUNS")
  what="$RUNS runs"
fi
cargo fuzz build "${build[@]}"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for t in "${targets[@]}"; do
  echo "fuzz: $t ($what)"
  mkdir -p "corpus/$t"
  if ! cargo fuzz run "${build[@]}" "$t" "corpus/$t" -- "${limit[@]}" \
      -print_final_stats=1 >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "fuzz: $t failed; a crashing input is in fuzz/artifacts/$t/" >&2
    exit 1
  fi
  grep -E "^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)" "$log" \
    | sed "s/^/fuzz: $t /"
done
