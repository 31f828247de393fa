#!/usr/bin/env bash
# Starts the machine's PostgreSQL cluster for the collector's store tests and
# prints the URL of a test database (role gw502, database gw502_test).
#
# Idempotent: safe to run again while the cluster is up, and works on a fresh
# Debian machine (installs postgresql when missing, creates the cluster when
# the package left none). `.ci/run` exports its output as
# GW502_TEST_DATABASE_URL. Progress goes to stderr; only the URL to stdout.
set -euo pipefail

role=gw502
password=gw502
database=gw502_test

log() { echo "postgres.sh: $*" >&2; }

if ! command -v pg_lsclusters >/dev/null 2>&1; then
    log "installing postgresql"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq postgresql >&2
fi

# The newest installed major version, and its first cluster (Debian: "main").
version=$(ls /usr/lib/postgresql | sort -V | tail -n1)
if [ -z "$version" ]; then
    log "no postgresql server version under /usr/lib/postgresql"
    exit 1
fi
cluster=$(pg_lsclusters -h | awk -v v="$version" '$1 == v { print $2; exit }')
if [ -z "$cluster" ]; then
    cluster=main
    log "creating cluster $version/$cluster"
    pg_createcluster "$version" "$cluster" >&2
fi

status=$(pg_lsclusters -h | awk -v v="$version" -v c="$cluster" '$1 == v && $2 == c { print $4 }')
if [ "$status" != "online" ]; then
    log "starting cluster $version/$cluster"
    pg_ctlcluster "$version" "$cluster" start >&2
fi
port=$(pg_lsclusters -h | awk -v v="$version" -v c="$cluster" '$1 == v && $2 == c { print $3 }')

# Wait (bounded) until the server accepts connections.
for _ in $(seq 1 60); do
    if pg_isready -q -h 127.0.0.1 -p "$port"; then
        break
    fi
    sleep 0.5
done
if ! pg_isready -q -h 127.0.0.1 -p "$port"; then
    log "cluster $version/$cluster on port $port is not ready"
    exit 1
fi

psql_admin() {
    # From /: the caller's directory (a private temp clone) is not the postgres user's to enter.
    (cd / && runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -p "$port" -tA "$@")
}

if [ "$(psql_admin -c "SELECT 1 FROM pg_roles WHERE rolname = '$role'")" != "1" ]; then
    log "creating role $role"
    psql_admin -c "CREATE ROLE $role LOGIN PASSWORD '$password'"
else
    psql_admin -c "ALTER ROLE $role LOGIN PASSWORD '$password'"
fi
if [ "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = '$database'")" != "1" ]; then
    log "creating database $database"
    psql_admin -c "CREATE DATABASE $database OWNER $role"
fi

echo "postgres://$role:$password@127.0.0.1:$port/$database"
