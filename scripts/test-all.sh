#!/usr/bin/env bash
# Run the whole test suite against both SQLite and PostgreSQL.
#
# Usage: scripts/test-all.sh [EXTRA CARGO TEST ARGS...]
#   e.g. scripts/test-all.sh some_test_filter -- --nocapture
#
# A throwaway PostgreSQL server is started by scripts/with-postgres.sh (or
# the server in SKILL_METRICS_TEST_POSTGRES_URL is used, if set). Extra
# arguments go to the first `cargo test` (all targets) only; the doc tests
# always run in full.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Make the Rust test harness fail, rather than skip, the PostgreSQL tests when
# no server is reachable, so a broken setup cannot pass silently.
export SKILL_METRICS_REQUIRE_POSTGRES=1
# Likewise the dashboard's tests in a real browser: Debian's chromium and
# chromium-driver must be installed (.ci/run installs them).
export SKILL_METRICS_REQUIRE_BROWSER=1

# Both cargo runs share one server, so it is started only once.
# shellcheck disable=SC2016 # expanded by the inner bash, not here
exec scripts/with-postgres.sh bash -c '
    set -euo pipefail
    cargo test --workspace --all-targets "$@"
    cargo test --workspace --doc
' test-all "$@"
