#!/usr/bin/env bash
# Masking benchmark: a 1,000-row result with 3 masked columns (keyed hash, redaction,
# partial), through Warden as an agent (masked) and as an exempt group (same gateway, no
# masking), against the target directly, in interleaved rounds. Prints the median ratio of
# each to direct throughput. Our bar: masked >= 0.70 of direct.
#
# Usage: bench/masking.sh            (ROUNDS=3 SECONDS_PER_RUN=5 CLIENTS=4 by default)
# Needs: pgbench, initdb (PostgreSQL server binaries), a release build (built here if
# missing). Everything listens on 127.0.0.1 only; everything is torn down.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
ROUNDS=${ROUNDS:-3}
SECS=${SECONDS_PER_RUN:-5}
CLIENTS=${CLIENTS:-4}
OUT=${OUT:-$ROOT/bench/out}
mkdir -p "$OUT"
command -v pgbench >/dev/null || { echo "missing pgbench (apt-get install postgresql-contrib)"; exit 1; }
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)

cargo build --release -q -p warden
WARDEN=$ROOT/target/release/warden

WORK=$(mktemp -d /tmp/warden-mask-bench.XXXXXX)
chmod 755 "$WORK"
RUNAS=()
if [ "$(id -u)" = 0 ]; then RUNAS=(runuser -u postgres --); chown postgres "$WORK"; fi
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PGPORT=$(free_port); WARDEN_PORT=$(free_port); HTTP_PORT=$(free_port)

cleanup() {
  [ -n "${WARDEN_PID:-}" ] && kill "$WARDEN_PID" 2>/dev/null || true
  "${RUNAS[@]}" "$PGBIN/pg_ctl" -D "$WORK/pg" stop -m immediate >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

echo "== private PostgreSQL on 127.0.0.1:$PGPORT"
"${RUNAS[@]}" "$PGBIN/initdb" -D "$WORK/pg" -A trust -U postgres >/dev/null
"${RUNAS[@]}" "$PGBIN/pg_ctl" -D "$WORK/pg" -l "$WORK/pg.log" -w start \
  -o "-p $PGPORT -k $WORK -c listen_addresses=127.0.0.1 -c fsync=off" >/dev/null
psql -q -h 127.0.0.1 -p "$PGPORT" -U postgres -d postgres <<'SQL'
CREATE TABLE customers (id int PRIMARY KEY, name text, email text, ssn text, card text, city text);
INSERT INTO customers
SELECT i, 'name ' || i, 'user' || i || '@example.com',
       lpad((i % 900)::text, 3, '0') || '-' || lpad((i % 90)::text, 2, '0') || '-' || lpad(i::text, 4, '0'),
       '4111 1111 1111 ' || lpad((i % 10000)::text, 4, '0'), 'city ' || (i % 50)
FROM generate_series(1, 1000) i;
SQL

cat > "$WORK/warden.toml" <<EOF
[gateway]
data_dir = "$WORK/warden"
postgres_listen = "127.0.0.1:$WARDEN_PORT"
http_listen = "127.0.0.1:$HTTP_PORT"

[recording]
enabled = false

[[connections]]
name = "bench"
target = "postgres://127.0.0.1:$PGPORT/postgres"
allow_groups = ["agents", "dba"]
username = "postgres"

[[connections.masking]]
columns = ["public.customers.email"]
strategy = "hash"
exempt_groups = ["dba"]

[[connections.masking]]
columns = ["public.customers.ssn"]
exempt_groups = ["dba"]

[[connections.masking]]
columns = ["public.customers.card"]
strategy = "partial"
exempt_groups = ["dba"]
EOF
AGENT=$("$WARDEN" tokens issue --config "$WORK/warden.toml" --name bench-agent --groups agents --ttl 2h)
DBA=$("$WARDEN" tokens issue --config "$WORK/warden.toml" --name bench-dba --groups dba --ttl 2h)
env RUST_LOG=warn "$WARDEN" gateway --config "$WORK/warden.toml" 2>"$WORK/warden.log" &
WARDEN_PID=$!
for _ in $(seq 1 50); do (echo > /dev/tcp/127.0.0.1/$WARDEN_PORT) 2>/dev/null && break; sleep 0.2; done

echo 'SELECT id, name, email, ssn, card, city FROM customers;' > "$WORK/rows.sql"
dsn() {
  case $1 in
    direct) echo "host=127.0.0.1 port=$PGPORT dbname=postgres user=postgres sslmode=disable" ;;
    masked) echo "host=127.0.0.1 port=$WARDEN_PORT dbname=bench user=a password=$AGENT sslmode=disable" ;;
    exempt) echo "host=127.0.0.1 port=$WARDEN_PORT dbname=bench user=d password=$DBA sslmode=disable" ;;
  esac
}
# Masking is really on: the agent sees tokens, the exempt group sees addresses.
psql -X -A -t -c "SELECT email FROM customers WHERE id = 1" "$(dsn masked)" | grep -q '^tok_' || { echo "masking is not on"; exit 1; }
psql -X -A -t -c "SELECT email FROM customers WHERE id = 1" "$(dsn exempt)" | grep -q '@' || { echo "exempt group is masked"; exit 1; }

RESULTS=$OUT/masking-$(date +%Y%m%d-%H%M%S).tsv
echo -e "round\tmode\ttarget\ttps" > "$RESULTS"
echo "== $ROUNDS interleaved rounds of ${SECS}s per run, $CLIENTS clients"
for r in $(seq 1 "$ROUNDS"); do
  for mode in simple extended; do
    for t in direct masked exempt; do
      out=$(pgbench -n -f "$WORK/rows.sql" -M "$mode" -c "$CLIENTS" -j 2 -T "$SECS" "$(dsn $t)" 2>&1) || { echo "$out" >&2; exit 1; }
      tps=$(echo "$out" | sed -n 's/^tps = \([0-9.]*\).*/\1/p' | head -1)
      echo -e "$r\t$mode\t$t\t$tps" >> "$RESULTS"
      printf '  round %s %-8s %-7s tps=%s\n' "$r" "$mode" "$t" "$tps"
    done
  done
done

python3 - "$RESULTS" <<'EOF'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
by = {}
for r in rows:
    by.setdefault((r["mode"], r["round"]), {})[r["target"]] = float(r["tps"])
print(f"\n{'mode':<9} {'masked/direct':>14} {'exempt/direct':>14}")
for mode in ("simple", "extended"):
    m = [t["masked"] / t["direct"] for (md, _), t in by.items() if md == mode]
    e = [t["exempt"] / t["direct"] for (md, _), t in by.items() if md == mode]
    print(f"{mode:<9} {statistics.median(m):>14.2f} {statistics.median(e):>14.2f}")
print(f"\nraw results: {sys.argv[1]}")
EOF
