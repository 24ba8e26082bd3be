# Shared by bench/approval.sh and bench/mcp.sh (source it after `cd` to the repo root):
# a release build, a private trust-auth PostgreSQL and a Warden gateway, all on free
# loopback ports, torn down on exit.
#   bench_prepare NAME      builds warden, makes $WORK, picks PGPORT/WARDEN_PORT/HTTP_PORT,
#                           starts PostgreSQL on PGPORT, sets the cleanup trap
#   bench_start_warden      runs `warden gateway --config $WORK/warden.toml` and waits for it
# Sets ROOT, WARDEN, WORK, PGBIN, PGPORT, WARDEN_PORT, HTTP_PORT, WARDEN_PID.

bench_prepare() {
  ROOT=$(pwd)
  PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  [ -x "$PGBIN/initdb" ] || { echo "missing PostgreSQL server binaries (apt-get install postgresql)"; exit 1; }
  cargo build --release -q -p warden
  WARDEN=$ROOT/target/release/warden
  WORK=$(mktemp -d "/tmp/warden-$1-bench.XXXXXX")
  chmod 755 "$WORK"
  RUNAS=()
  if [ "$(id -u)" = 0 ]; then RUNAS=(runuser -u postgres --); chown postgres "$WORK"; fi
  PGPORT=$(bench_free_port); WARDEN_PORT=$(bench_free_port); HTTP_PORT=$(bench_free_port)
  trap bench_cleanup EXIT
  echo "== private PostgreSQL on 127.0.0.1:$PGPORT"
  "${RUNAS[@]}" "$PGBIN/initdb" -D "$WORK/pg" -A trust -U postgres >/dev/null
  "${RUNAS[@]}" "$PGBIN/pg_ctl" -D "$WORK/pg" -l "$WORK/pg.log" -w start \
    -o "-p $PGPORT -k $WORK -c listen_addresses=127.0.0.1" >/dev/null
  mkdir -p "$WORK/data"
}

bench_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

bench_cleanup() {
  [ -n "${WARDEN_PID:-}" ] && kill "$WARDEN_PID" 2>/dev/null && wait "$WARDEN_PID" 2>/dev/null || true
  "${RUNAS[@]}" "$PGBIN/pg_ctl" -D "$WORK/pg" stop -m immediate >/dev/null 2>&1 || true
  rm -rf "$WORK"
}

bench_start_warden() {
  echo "== warden on 127.0.0.1:$WARDEN_PORT (HTTP $HTTP_PORT)"
  RUST_LOG=warn "$WARDEN" gateway --config "$WORK/warden.toml" > "$WORK/warden.log" 2>&1 &
  WARDEN_PID=$!
  for _ in $(seq 1 100); do grep -q "PostgreSQL listener on" "$WORK/warden.log" && break; sleep 0.1; done
}
