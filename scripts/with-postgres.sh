#!/usr/bin/env bash
# Run a command against a throwaway PostgreSQL 15 server.
#
# Usage: scripts/with-postgres.sh COMMAND [ARGS...]
#
# Starts a private cluster in a fresh temporary folder, listening only on
# 127.0.0.1 on a free port, and runs COMMAND with
# SKILL_METRICS_TEST_POSTGRES_URL set to the URL of a superuser (who may
# CREATE DATABASE). The server is stopped and the folder removed on exit.
# Exits with COMMAND's exit status.
#
# Environment:
#   SKILL_METRICS_TEST_POSTGRES_URL  if already set, nothing is started and
#                                    COMMAND is run against that server.
#   PG_BIN                           folder with initdb/pg_ctl/postgres
#                                    (default /usr/lib/postgresql/15/bin).
#   SKILL_METRICS_KEEP_PG=1          leave the server running afterwards.
set -euo pipefail

readonly PROG=${0##*/}
readonly PG_USER_NAME=skill_metrics      # superuser inside the cluster
readonly START_TIMEOUT=30                # seconds to wait for the server

die() { printf '%s: %s\n' "$PROG" "$*" >&2; exit 1; }
note() { printf '%s: %s\n' "$PROG" "$*" >&2; }

[[ $# -gt 0 ]] || die "usage: $PROG COMMAND [ARGS...]"

# Bring-your-own server: nothing to start.
if [[ -n ${SKILL_METRICS_TEST_POSTGRES_URL:-} ]]; then
    exec "$@"
fi

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
for tool in initdb pg_ctl postgres; do
    [[ -x $PG_BIN/$tool ]] || die "$PG_BIN/$tool not found; install the" \
        "'postgresql-15' Debian package (apt-get install postgresql-15) or set PG_BIN"
done

# --- Who runs the server -----------------------------------------------------
# PostgreSQL refuses to run as root, so as root we run initdb/pg_ctl as an
# unprivileged system user.
run_user=
if [[ $(id -u) -eq 0 ]]; then
    if getent passwd postgres >/dev/null; then
        run_user=postgres
    else
        run_user=skillmetrics-pg
        if ! getent passwd "$run_user" >/dev/null; then
            # A concurrent invocation may win the race to create it; only
            # fail if the user still does not exist afterwards.
            useradd --system --no-create-home --shell /usr/sbin/nologin \
                "$run_user" 2>/dev/null \
                || getent passwd "$run_user" >/dev/null \
                || die "could not create system user $run_user"
        fi
    fi
fi

# Run a server tool as the server user, from inside the cluster folder (the
# caller's cwd may not be readable by that user, which initdb warns about).
as_pg() {
    if [[ -n $run_user ]]; then
        (cd "$tmp" && runuser -u "$run_user" -- "$@")
    else
        (cd "$tmp" && "$@")
    fi
}

# --- Cleanup -----------------------------------------------------------------
tmp=
started=
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    [[ -n $tmp ]] || exit "$status"
    if [[ ${SKILL_METRICS_KEEP_PG:-} == 1 && -n $started ]]; then
        note "SKILL_METRICS_KEEP_PG=1: leaving the server running"
        note "  data/log: $tmp (URL in $tmp/url)"
        note "  stop with: ${run_user:+runuser -u $run_user -- }$PG_BIN/pg_ctl stop -D $tmp/data && rm -rf $tmp"
        exit "$status"
    fi
    if [[ -f $tmp/data/postmaster.pid ]]; then
        # Immediate shutdown: the data is thrown away anyway.
        if ! as_pg "$PG_BIN/pg_ctl" stop -D "$tmp/data" -m immediate -w -t 30 \
            >/dev/null 2>&1; then
            local pid
            pid=$(head -n 1 "$tmp/data/postmaster.pid" 2>/dev/null || true)
            [[ -n $pid ]] && kill -9 "$pid" 2>/dev/null || true
        fi
    fi
    rm -rf -- "$tmp"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- Cluster folder ----------------------------------------------------------
tmp=$(mktemp -d "${TMPDIR:-/tmp}/skill-metrics-pg.XXXXXX")
if [[ -n $run_user ]]; then
    chown "$run_user" "$tmp"
    chmod 0700 "$tmp"
    # The server user must be able to reach the folder; $TMPDIR may sit below
    # a folder only root can traverse (e.g. /root). Fall back to /tmp.
    if ! runuser -u "$run_user" -- test -w "$tmp"; then
        rm -rf -- "$tmp"
        tmp=$(mktemp -d /tmp/skill-metrics-pg.XXXXXX)
        chown "$run_user" "$tmp"
        chmod 0700 "$tmp"
        runuser -u "$run_user" -- test -w "$tmp" \
            || die "user $run_user cannot write to $tmp"
    fi
fi

# Hex only, so it needs no escaping in the URL.
password=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
printf '%s\n' "$password" >"$tmp/pwfile"
if [[ -n $run_user ]]; then chown "$run_user" "$tmp/pwfile"; fi
chmod 0600 "$tmp/pwfile"

# --- initdb --------------------------------------------------------------------
# C.UTF-8 gives UTF-8 semantics without depending on generated locales; fall
# back to plain C where glibc lacks it.
locale=C
if locale -a 2>/dev/null | grep -qixE 'c\.utf-?8'; then
    locale=C.UTF-8
fi
if ! as_pg "$PG_BIN/initdb" -D "$tmp/data" -U "$PG_USER_NAME" --pwfile="$tmp/pwfile" \
    --auth-local=trust --auth-host=scram-sha-256 \
    --encoding=UTF8 --locale="$locale" >"$tmp/initdb.log" 2>&1; then
    cat "$tmp/initdb.log" >&2
    die "initdb failed"
fi
rm -f -- "$tmp/pwfile"

# --- Start -----------------------------------------------------------------------
pick_port() {
    local port
    # Let the kernel choose a free port, then release it for the server.
    if port=$(python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])' 2>/dev/null) && [[ $port =~ ^[0-9]+$ ]]; then
        echo "$port"
        return
    fi
    # No python3: probe random high ports until nothing answers.
    local i
    for i in {1..50}; do
        port=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return
        fi
    done
    die "could not find a free port"
}

mkdir "$tmp/sock"
if [[ -n $run_user ]]; then chown "$run_user" "$tmp/sock"; fi

# A port found free can still be taken before the server binds it (e.g. by a
# concurrent run), so retry with a new port when binding fails.
for attempt in 1 2 3 4 5; do
    port=$(pick_port)
    # Appended settings override earlier ones in postgresql.conf; each attempt
    # re-adds its port, so the last one wins.
    # TEST-ONLY settings: no durability (fsync etc. off) in exchange for speed;
    # never use them for a server whose data matters. SKILL_METRICS_PG_DURABLE=1
    # keeps PostgreSQL's durable defaults (for benchmarks).
    durability="fsync = off
synchronous_commit = off
full_page_writes = off"
    if [[ ${SKILL_METRICS_PG_DURABLE:-} == 1 ]]; then durability="# durable defaults kept"; fi
    cat >>"$tmp/data/postgresql.conf" <<EOF

# --- added by $PROG (attempt $attempt) ---
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$tmp/sock'
max_connections = 200
shared_buffers = 128MB
$durability
EOF
    # -w waits until the server accepts connections (or the timeout passes).
    if as_pg "$PG_BIN/pg_ctl" start -D "$tmp/data" -l "$tmp/server.log" \
        -w -t "$START_TIMEOUT" >/dev/null 2>&1; then
        started=1
        break
    fi
    if grep -q 'could not bind\|could not create any TCP/IP sockets' \
        "$tmp/server.log" 2>/dev/null && [[ $attempt -lt 5 ]]; then
        note "port $port is taken, retrying with another one"
        # The failed postmaster may not have cleaned up yet.
        as_pg "$PG_BIN/pg_ctl" stop -D "$tmp/data" -m immediate -w >/dev/null 2>&1 || true
        continue
    fi
    note "PostgreSQL failed to start (timeout ${START_TIMEOUT}s); server log:"
    cat "$tmp/server.log" >&2 || true
    exit 1
done
[[ -n $started ]] || die "PostgreSQL did not start"

url="postgres://$PG_USER_NAME:$password@127.0.0.1:$port/postgres"
export SKILL_METRICS_TEST_POSTGRES_URL=$url
if [[ ${SKILL_METRICS_KEEP_PG:-} == 1 ]]; then
    printf '%s\n' "$url" >"$tmp/url"
    chmod 0600 "$tmp/url"
fi
note "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') at" \
    "${url/:$password@/:***@} (run as ${run_user:-$(id -un)}, locale $locale)"

# --- Run the command ---------------------------------------------------------
# Not exec'ed: the EXIT trap has to run afterwards.
set +e
"$@"
status=$?
set -e
exit "$status"
