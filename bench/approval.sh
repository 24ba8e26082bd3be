#!/usr/bin/env bash
# Warden approval round-trip benchmark: a held statement, approved through the API by an
# automated approver the moment it learns of it (from the live review stream, as the web
# console does, then from the hold notice); prints median / p90 / p99 of the round trip
# (statement sent -> first result row), of learning, of the approve call, and of the
# release (approve call returned -> first row). See bench/approval_latency.py.
#
# Usage: bench/approval.sh      (ROUNDS=200)
# Needs: initdb (PostgreSQL server binaries), python3 with psycopg 3, a release build (built
# here). Everything listens on 127.0.0.1 only and is torn down.
set -euo pipefail
cd "$(dirname "$0")/.."
export ROUNDS=${ROUNDS:-200}
python3 -c 'import psycopg' 2>/dev/null || { echo "missing psycopg 3 (python3 -m pip install 'psycopg[binary]')"; exit 1; }
. bench/lib.sh
bench_prepare approval

cat > "$WORK/warden.toml" <<CONF
[gateway]
data_dir = "$WORK/data"
postgres_listen = "127.0.0.1:$WARDEN_PORT"
http_listen = "127.0.0.1:$HTTP_PORT"

[[connections]]
name = "bench"
target = "postgres://127.0.0.1:$PGPORT/postgres"
allow_groups = ["agents"]
username = "postgres"

[[connections.rules]]
action = "review"
classes = ["destructive"]
approver_groups = ["dba"]
timeout = "30s"
CONF

bench_start_warden
AGENT=$("$WARDEN" tokens issue --config "$WORK/warden.toml" --name bench-agent --groups agents --ttl 1h)
DBA=$("$WARDEN" tokens issue --config "$WORK/warden.toml" --name bench-dba --groups dba --ttl 1h)

for source in stream notice; do
  echo "== $ROUNDS approval round trips, the approver learning from the $source"
  SOURCE=$source \
  WARDEN_DSN="host=127.0.0.1 port=$WARDEN_PORT dbname=bench user=agent password=$AGENT sslmode=disable" \
  WARDEN_API="http://127.0.0.1:$HTTP_PORT" WARDEN_APPROVER_TOKEN="$DBA" \
    python3 bench/approval_latency.py
done
