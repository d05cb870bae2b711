#!/usr/bin/env bash
# A private PostgreSQL cluster for Airflow's metadata database (tests, local team set-up).
#
#   scripts/postgres.sh install            install PostgreSQL from Debian's packages if missing
#   POSTGRES_PASSWORD=... scripts/postgres.sh start DIR PORT
#                                          initialise a cluster in DIR (once), start it on
#                                          127.0.0.1:PORT (no other listener; its socket in DIR),
#                                          create role and database `airflow` with that password
#   scripts/postgres.sh stop DIR           stop it (fast shutdown); nothing to do if not running
#   scripts/postgres.sh status DIR         exit 0 when running
#
# Every command is idempotent. The password only comes from the environment (never an
# argument, never a file). Run as root, the server runs as the `postgres` OS user (created
# by the Debian package; root cannot run postgres), so DIR's parents must be traversable by
# it; run as another user, it runs as that user. Local socket: peer authentication for the
# cluster's superuser only; TCP: scram-sha-256 for `airflow` from 127.0.0.1 only.
set -euo pipefail

die() { echo "postgres.sh: $*" >&2; exit 1; }

bindir() {
    local dir
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    [ -n "$dir" ] && [ -x "$dir/initdb" ] || return 1
    echo "$dir"
}

install_postgres() {
    bindir >/dev/null && return 0
    echo "PostgreSQL not found: installing the Debian package postgresql" >&2
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql
    bindir >/dev/null || die "installed postgresql but found no /usr/lib/postgresql/*/bin/initdb"
}

# Run a command as the cluster's OS user (postgres when we are root, else ourselves).
as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

running() { as_owner "$BIN/pg_ctl" status -D "$DIR" >/dev/null 2>&1; }

# SQL string literal: double the single quotes.
literal() { local s=${1//\'/\'\'}; printf "'%s'" "$s"; }

start() {
    [ -n "${POSTGRES_PASSWORD:-}" ] || die "set POSTGRES_PASSWORD in the environment (the password of role airflow)"
    [[ "$PORT" =~ ^[0-9]+$ ]] || die "PORT must be a number, got '$PORT'"
    mkdir -p "$DIR"
    if [ "$(id -u)" -eq 0 ]; then
        id postgres >/dev/null 2>&1 || die "no 'postgres' OS user (is the Debian package installed?)"
        chown postgres: "$DIR"
        runuser -u postgres -- test -w "$DIR" \
            || die "user postgres cannot reach $DIR: make its parent folders traversable (chmod o+x)"
    fi
    chmod 700 "$DIR"

    if [ ! -f "$DIR/PG_VERSION" ]; then
        local out
        out=$(as_owner "$BIN/initdb" -D "$DIR" --auth-local=peer --auth-host=scram-sha-256 \
            --encoding=UTF8 --locale=C.UTF-8 2>&1) || { echo "$out" >&2; die "initdb failed"; }
    fi
    # Our settings, in a file of their own included by postgresql.conf, rewritten on each start.
    {
        echo "listen_addresses = '127.0.0.1'"
        echo "port = $PORT"
        echo "unix_socket_directories = '$DIR'"
        echo "password_encryption = 'scram-sha-256'"
        echo "max_connections = 200"
    } | as_owner tee "$DIR/harness.conf" >/dev/null
    grep -q "^include_if_exists = 'harness.conf'" "$DIR/postgresql.conf" \
        || echo "include_if_exists = 'harness.conf'" | as_owner tee -a "$DIR/postgresql.conf" >/dev/null
    # Only the airflow role over TCP, only from loopback (initdb's defaults also allow ::1 and
    # replication; we replace them).
    {
        echo "local   all       all                     peer"
        echo "host    airflow   airflow  127.0.0.1/32   scram-sha-256"
    } | as_owner tee "$DIR/pg_hba.conf" >/dev/null

    if ! running; then
        as_owner "$BIN/pg_ctl" start -D "$DIR" -l "$DIR/server.log" -w -t 60 >/dev/null \
            || { tail -n 30 "$DIR/server.log" >&2; die "pg_ctl start failed"; }
    else
        as_owner "$BIN/pg_ctl" reload -D "$DIR" >/dev/null
    fi

    # Role and database; the password goes through stdin, never argv.
    local superuser
    superuser=$(as_owner id -un)
    {
        echo "SELECT 'CREATE ROLE airflow LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'airflow')\\gexec"
        echo "ALTER ROLE airflow WITH LOGIN PASSWORD $(literal "$POSTGRES_PASSWORD");"
        echo "SELECT 'CREATE DATABASE airflow OWNER airflow' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'airflow')\\gexec"
    } | as_owner "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$DIR" -p "$PORT" -U "$superuser" -d postgres >/dev/null
    echo "PostgreSQL $(basename "$(dirname "$BIN")") running in $DIR on 127.0.0.1:$PORT (database airflow, role airflow)"
}

stop() {
    [ -f "$DIR/PG_VERSION" ] || return 0
    running || return 0
    as_owner "$BIN/pg_ctl" stop -D "$DIR" -m fast -w -t 60 >/dev/null
}

cmd=${1:-}
case "$cmd" in
    install)
        install_postgres ;;
    start)
        [ $# -eq 3 ] || die "usage: $0 start DIR PORT"
        install_postgres
        BIN=$(bindir); DIR=$(realpath -m "$2"); PORT=$3
        start ;;
    stop|status)
        [ $# -eq 2 ] || die "usage: $0 $cmd DIR"
        BIN=$(bindir) || die "PostgreSQL is not installed"
        DIR=$(realpath -m "$2")
        if [ "$cmd" = stop ]; then stop; else running; fi ;;
    *)
        die "usage: $0 install | start DIR PORT | stop DIR | status DIR" ;;
esac
