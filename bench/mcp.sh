#!/usr/bin/env bash
# Warden MCP latency benchmark: one small query per call, directly on PostgreSQL, through
# Warden's PostgreSQL listener, and through the MCP `query` tool over streamable HTTP and
# over stdio; prints median / p90 / p99 and each median as a multiple of direct. See
# bench/mcp_latency.py.
#
# Usage: bench/mcp.sh      (CALLS=300)
# Needs: initdb (PostgreSQL server binaries), python3 with psycopg 3, a release build (built
# here). Everything listens on 127.0.0.1 only and is torn down.
set -euo pipefail
cd "$(dirname "$0")/.."
export CALLS=${CALLS:-300}
python3 -c 'import psycopg, mcp' 2>/dev/null || { echo "missing psycopg 3 or mcp (python3 -m pip install -r examples/crewai/requirements.txt)"; exit 1; }
. bench/lib.sh
bench_prepare mcp
psql -X -q "host=127.0.0.1 port=$PGPORT user=postgres dbname=postgres" -c \
  "CREATE TABLE bench_people (id int, name text, email text);
   INSERT INTO bench_people SELECT g, 'name ' || g, 'person' || g || '@example.com' FROM generate_series(1, 10) g"

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

[[connections.masking]]
name = "personal"
columns = ["public.bench_people.email"]
CONF

bench_start_warden
AGENT=$("$WARDEN" tokens issue --config "$WORK/warden.toml" --name bench-agent --groups agents --ttl 1h)

echo "== $CALLS calls each"
DIRECT_DSN="host=127.0.0.1 port=$PGPORT dbname=postgres user=postgres sslmode=disable" \
WARDEN_DSN="host=127.0.0.1 port=$WARDEN_PORT dbname=bench user=agent password=$AGENT sslmode=disable" \
WARDEN_GATEWAY="http://127.0.0.1:$HTTP_PORT" WARDEN_TOKEN="$AGENT" WARDEN_BIN="$WARDEN" CONNECTION=bench \
  python3 bench/mcp_latency.py
