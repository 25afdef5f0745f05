#!/bin/sh
# A long differential run of `arca verify` against conex 1.0's own verifiers
# (tests/differential.rs): CASES seeded cases (default 5000) from SEED
# (default: the current time), then the real opam-repository updates and
# renames. Every mismatch is printed with its seed and case number.
#
#   scripts/differential.sh [CASES] [SEED]
set -eu
cd "$(dirname "$0")/.."
cases=${1:-5000}
seed=${2:-$(date +%s)}
echo "differential: $cases cases from seed $seed"
ARCA_DIFF_CASES=$cases ARCA_DIFF_SEED=$seed ARCA_DIFF_REAL_UPDATES=60 \
  cargo test --locked --test differential -- --nocapture --test-threads 1
