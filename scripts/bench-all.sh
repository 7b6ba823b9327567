#!/usr/bin/env bash
# Runs every bench scenario at the BENCHMARKS.md sizes on SQLite (a temporary
# file) and on a throwaway PostgreSQL with durable settings; one JSON line each.
# Usage: scripts/bench-all.sh [OUTPUT]   (default: bench-results.jsonl)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out=${1:-bench-results.jsonl}
cargo build --release -p skill-metrics
# Where cargo put it: CARGO_TARGET_DIR, if set, moves the target directory.
target=${CARGO_TARGET_DIR:-$PWD/target}
bin=$(cd "$target" && pwd)/release/skill-metrics
: >"$out"
scenarios=(
    "--scenario single --events 20000"
    "--scenario bulk --events 100000"
    "--scenario read --events 100000"
    "--scenario scale --events 1000000"
    "--scenario concurrent --events 20000 --writers 4"
)
for s in "${scenarios[@]}"; do
    # shellcheck disable=SC2086
    "$bin" bench $s | tee -a "$out"
done
# PostgreSQL: a fresh database per scenario (bench refuses a used store).
SKILL_METRICS_PG_DURABLE=1 scripts/with-postgres.sh bash -c '
    set -euo pipefail
    i=0
    for s in "$@"; do
        i=$((i + 1))
        db="bench_$i"
        psql -q "$SKILL_METRICS_TEST_POSTGRES_URL" -c "CREATE DATABASE $db"
        url="${SKILL_METRICS_TEST_POSTGRES_URL%/*}/$db"
        # shellcheck disable=SC2086
        "'"$bin"'" --database-url "$url" bench $s | tee -a "'"$out"'"
    done
' bench "--scenario single --events 5000" "--scenario bulk --events 100000" "--scenario read --events 100000" \
    "--scenario scale --events 200000" "--scenario concurrent --events 5000 --writers 4"
