#!/usr/bin/env bash
# Benchmark (not a timed test): wall time of every suite in suites/ against the in-process
# reference broker, with --jobs 1 and with the default number of jobs.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q --bin mqtt-conformance
bin=target/debug/mqtt-conformance
for jobs in 1 default; do
  args=(run --no-junit)
  [ "$jobs" = default ] || args+=(--jobs "$jobs")
  start=$(date +%s.%N)
  "$bin" "${args[@]}" > /dev/null || true
  end=$(date +%s.%N)
  printf 'jobs=%-8s wall=%.2fs\n' "$jobs" "$(echo "$end - $start" | bc)"
done
