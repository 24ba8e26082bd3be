#!/usr/bin/env bash
# Warden session setup benchmark: the time to connect, authenticate, run `SELECT 1` and
# disconnect, for three paths measured in the same run, in interleaved batches:
#   direct  straight to PostgreSQL, SCRAM password auth as app_static
#   static  through Warden, which logs in to PostgreSQL as app_static (SCRAM)
#   jit     through Warden, which creates a login role for each session (credentials = "jit")
# Prints, per path, median / p90 / p99 over SESSIONS timed sessions, each Warden path's median
# relative to direct, the JIT-minus-static median difference, and Warden's own
# warden_pg_session_setup_seconds metric.
#
# Usage: bench/setup.sh     (SESSIONS=300 BATCH=20 WARMUP=5 BENCH_CASES=direct,static,jit)
#   BENCH_CASES=direct,static leaves the jit connection out of Warden's configuration too.
# Needs: initdb/psql (PostgreSQL server binaries), python3 with psycopg 3
# (python3 -m pip install 'psycopg[binary]'), a release build (built here).
# Everything listens on 127.0.0.1 only and is torn down. Passwords and the token are random,
# live in environment variables only (never argv, never printed). Exits non-zero if any
# session fails.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
SESSIONS=${SESSIONS:-300}
BATCH=${BATCH:-20}
WARMUP=${WARMUP:-5}
BENCH_CASES=${BENCH_CASES:-direct,static,jit}
OUT=${OUT:-$ROOT/bench/out}
IFS=, read -r -a _cases <<< "$BENCH_CASES"
for c in "${_cases[@]}"; do
  case $c in direct|static|jit) ;; *) echo "BENCH_CASES: unknown path '$c' (choose from direct,static,jit)"; exit 1 ;; esac
done
mkdir -p "$OUT"

python3 -c 'import psycopg' 2>/dev/null || { echo "missing psycopg 3 (python3 -m pip install 'psycopg[binary]')"; exit 1; }
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$PGBIN/initdb" ] || { echo "missing PostgreSQL server binaries (apt-get install postgresql)"; exit 1; }

cargo build --release -q -p warden
WARDEN=$ROOT/target/release/warden

WORK=$(mktemp -d /tmp/warden-setup-bench.XXXXXX)
chmod 755 "$WORK"
RUNAS=()
if [ "$(id -u)" = 0 ]; then RUNAS=(runuser -u postgres --); chown postgres "$WORK"; fi
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PGPORT=$(free_port); WARDEN_PORT=$(free_port); HTTP_PORT=$(free_port)
secret() { python3 -c 'import secrets; print(secrets.token_hex(24))'; }
SUPER_PW=$(secret); ADMIN_PW=$(secret); STATIC_PW=$(secret)
# Warden reads these (password_env / admin_password_env); exported, so never on any argv.
export BENCH_STATIC_PW=$STATIC_PW BENCH_ADMIN_PW=$ADMIN_PW

cleanup() {
  [ -n "${WARDEN_PID:-}" ] && kill "$WARDEN_PID" 2>/dev/null && wait "$WARDEN_PID" 2>/dev/null || true
  "${RUNAS[@]}" "$PGBIN/pg_ctl" -D "$WORK/pg" stop -m immediate >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

echo "== private PostgreSQL (scram-sha-256) on 127.0.0.1:$PGPORT"
(umask 077; printf '%s\n' "$SUPER_PW" > "$WORK/pwfile")
[ ${#RUNAS[@]} -gt 0 ] && chown postgres "$WORK/pwfile"
"${RUNAS[@]}" "$PGBIN/initdb" -D "$WORK/pg" -A scram-sha-256 -U postgres --pwfile="$WORK/pwfile" >/dev/null
rm -f "$WORK/pwfile"
"${RUNAS[@]}" "$PGBIN/pg_ctl" -D "$WORK/pg" -l "$WORK/pg.log" -w start \
  -o "-p $PGPORT -k $WORK -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off -c password_encryption=scram-sha-256" >/dev/null

# Role setup goes through stdin: the passwords are on no command line.
PGPASSWORD=$SUPER_PW "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PGPORT" -U postgres -d postgres >/dev/null <<EOF
CREATE ROLE warden_admin LOGIN CREATEROLE PASSWORD '$ADMIN_PW';
CREATE ROLE app_readonly NOLOGIN;
GRANT pg_read_all_data TO app_readonly;
CREATE ROLE app_static LOGIN PASSWORD '$STATIC_PW';
GRANT app_readonly TO app_static;
-- PostgreSQL 16+ lets a CREATEROLE role grant only roles it holds with ADMIN OPTION (the
-- JIT admin grants app_readonly to every session role); on 15 this changes nothing.
GRANT app_readonly TO warden_admin WITH ADMIN OPTION;
EOF
echo "== warden on 127.0.0.1:$WARDEN_PORT"
cat > "$WORK/warden.toml" <<EOF
[gateway]
data_dir = "$WORK/warden-data"
postgres_listen = "127.0.0.1:$WARDEN_PORT"
http_listen = "127.0.0.1:$HTTP_PORT"

[[connections]]
name = "static"
target = "postgres://127.0.0.1:$PGPORT/postgres"
allow_groups = ["bench"]
username = "app_static"
password_env = "BENCH_STATIC_PW"
EOF
if [[ ",$BENCH_CASES," == *,jit,* ]]; then
  cat >> "$WORK/warden.toml" <<EOF

[[connections]]
name = "jit"
target = "postgres://127.0.0.1:$PGPORT/postgres"
allow_groups = ["bench"]
credentials = "jit"

[connections.jit]
admin_username = "warden_admin"
admin_password_env = "BENCH_ADMIN_PW"
grant_roles = ["app_readonly"]
EOF
fi
TOKEN=$("$WARDEN" tokens issue --config "$WORK/warden.toml" --name bench --groups bench --ttl 1h)
RUST_LOG=${RUST_LOG:-warn} "$WARDEN" gateway --config "$WORK/warden.toml" 2>"$WORK/warden.log" &
WARDEN_PID=$!
for _ in $(seq 1 150); do
  grep -qs "PostgreSQL listener on" "$WORK/warden.log" && break
  kill -0 "$WARDEN_PID" 2>/dev/null || break
  sleep 0.2
done
if ! grep -qs "PostgreSQL listener on" "$WORK/warden.log"; then
  echo "warden did not start; its log:" >&2
  tail -n 30 "$WORK/warden.log" | sed 's/\x1b\[[0-9;]*m//g' >&2
  exit 1
fi

RAW=$OUT/setup-raw-$(date +%Y%m%d-%H%M%S).tsv
rc=0
BENCH_CASES=$BENCH_CASES SESSIONS=$SESSIONS BATCH=$BATCH WARMUP=$WARMUP \
  BENCH_PG_PORT=$PGPORT BENCH_WARDEN_PORT=$WARDEN_PORT BENCH_HTTP_ADDR=127.0.0.1:$HTTP_PORT \
  BENCH_DIRECT_USER=app_static BENCH_TOKEN_USER=bench BENCH_TOKEN=$TOKEN BENCH_RAW=$RAW \
  python3 "$ROOT/bench/setup_latency.py" || rc=$?

if [[ ",$BENCH_CASES," == *,jit,* ]]; then
  # Session roles are dropped when their sessions end; give the last ones a moment.
  left=?
  for _ in $(seq 1 20); do
    left=$(PGPASSWORD=$SUPER_PW "$PGBIN/psql" -X -qAt -h 127.0.0.1 -p "$PGPORT" -U postgres -d postgres \
      -c "SELECT count(*) FROM pg_roles WHERE rolname ~ '^warden_[0-9a-f]{12}\$'") || left=?
    [ "$left" = 0 ] && break
    sleep 0.5
  done
  echo "JIT session roles still present after the run: $left"
fi

if [ "$rc" != 0 ] || grep -qE 'WARN|ERROR' "$WORK/warden.log"; then
  echo "== last lines of warden's log (RUST_LOG=${RUST_LOG:-warn})"
  tail -n 20 "$WORK/warden.log" | sed 's/\x1b\[[0-9;]*m//g'
fi
echo "raw results: $RAW"
exit "$rc"
