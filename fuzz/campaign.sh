#!/bin/sh
# The long fuzzing runs behind the figures in docs/fuzzing.md: each target
# (all of them, or those named) for RUNS executions (default 10 million)
# from its corpus, one after another, release build with debug assertions
# and overflow checks, no sanitizer (see docs/fuzzing.md for why). One log
# per target in logs/; a summary line per target at the end.
set -eu
cd "$(dirname "$0")"
runs=${RUNS:-10000000}
export RUSTC_BOOTSTRAP=1
[ -d corpus ] || sh ./seed.sh >/dev/null
cargo fuzz build -O -a -s none
mkdir -p logs
targets=${*:-$(cargo fuzz list)}
for t in $targets; do
  start=$(date +%s)
  status=0
  cargo fuzz run -O -a -s none "$t" "corpus/$t" -- -runs="$runs" -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 >"logs/$t.log" 2>&1 || status=$?
  secs=$(( $(date +%s) - start ))
  last=$(grep -E '^#[0-9]+' "logs/$t.log" | tail -1)
  echo "$t: exit $status, ${secs}s, $(ls "corpus/$t" | wc -l) corpus files; $last"
done
