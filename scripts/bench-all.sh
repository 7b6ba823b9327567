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
# PostgreSQL: a fresh database per scenario (bench refuses a used store),
# named after this run so that a server of one's own can be used again, and
# dropped afterwards. URLs reach psql and bench through the environment
# (PGPASSWORD, SKILL_METRICS_DATABASE_URL), never on a command line, where a
# process listing would show the password.
SKILL_METRICS_PG_DURABLE=1 scripts/with-postgres.sh bash -c '
    set -euo pipefail
    base=$SKILL_METRICS_TEST_POSTGRES_URL
    # postgres://USER:PASSWORD@HOST... -> PGPASSWORD, and the URL without it.
    if [[ $base =~ ^(postgres(ql)?://[^:@/]*):([^@/]*)@(.*)$ ]]; then
        export PGPASSWORD=${BASH_REMATCH[3]}
        bare="${BASH_REMATCH[1]}@${BASH_REMATCH[4]}"
    else
        bare=$base
    fi
    run=$$
    i=0
    for s in "$@"; do
        i=$((i + 1))
        db="bench_${run}_$i"
        psql -q "$bare" -c "CREATE DATABASE $db"
        # shellcheck disable=SC2086
        SKILL_METRICS_DATABASE_URL="${base%/*}/$db" "'"$bin"'" bench $s | tee -a "'"$out"'"
        psql -q "$bare" -c "DROP DATABASE $db"
    done
' bench "--scenario single --events 5000" "--scenario bulk --events 100000" "--scenario read --events 100000" \
    "--scenario scale --events 200000" "--scenario concurrent --events 5000 --writers 4"
