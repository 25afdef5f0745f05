#!/bin/sh
# Short fuzzing smoke run for CI: every target for SECONDS (default 20) from
# the seed corpora, built as the long runs are (release, debug assertions and
# overflow checks, no sanitizer: docs/fuzzing.md). Needs cargo-fuzz and a
# nightly-capable toolchain (RUSTC_BOOTSTRAP=1 is set here). Exits non-zero
# on the first crash, timeout or out-of-memory.
set -eu
cd "$(dirname "$0")"
secs=${1:-20}
export RUSTC_BOOTSTRAP=1
sh ./seed.sh >/dev/null
cargo fuzz build -O -a -s none
for t in $(cargo fuzz list); do
  echo "== $t (${secs}s)"
  cargo fuzz run -O -a -s none "$t" "corpus/$t" -- -max_total_time="$secs" -max_len=65536 -timeout=10 -rss_limit_mb=2048 2>&1 \
    | grep -E '^(#[0-9]+.*DONE|Done|==[0-9]+==|SUMMARY|.*panicked)' || true
  # cargo fuzz run exits non-zero on a crash; re-check the artifacts dir.
  if ls "artifacts/$t"/crash-* "artifacts/$t"/oom-* "artifacts/$t"/timeout-* >/dev/null 2>&1; then
    echo "fuzz target $t found a failing input: $(ls artifacts/$t)"; exit 1
  fi
done
