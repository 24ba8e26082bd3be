#!/usr/bin/env bash
# Warden end-to-end benchmark: pgbench against the target directly, through pgbouncer
# (session mode, the reference every PostgreSQL user knows) and through Warden, in
# interleaved rounds on one machine. Prints, per case, the median ratio of each proxy's
# throughput to the direct connection's, the added latency per query for one pinned client,
# and Warden's CPU time per transaction. A second Warden with session recording off runs in
# the same rounds, so the cost of recording is measured as 1 - (recording on / off).
#
# Usage: bench/pgbench.sh            (ROUNDS=3 SECONDS_PER_RUN=5 CLIENTS=8 by default)
#   BENCH_CASES="simple prepared"      which cases (default: all five)
#   BENCH_TARGETS="warden norec"       only the two Wardens: twice the rounds in the same
#                                      time, for pricing recording alone
# Needs: pgbench, pgbouncer, initdb (PostgreSQL server binaries), taskset, a release build
# (built here if missing). Everything listens on 127.0.0.1 only; everything is torn down.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
ROUNDS=${ROUNDS:-3}
SECS=${SECONDS_PER_RUN:-5}
CLIENTS=${CLIENTS:-8}
SCALE=${SCALE:-10}
OUT=${OUT:-$ROOT/bench/out}
mkdir -p "$OUT"

for tool in pgbench pgbouncer taskset; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install postgresql-contrib pgbouncer util-linux)"; exit 1; }
done
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)

cargo build --release -q -p warden
WARDEN=$ROOT/target/release/warden

WORK=$(mktemp -d /tmp/warden-bench.XXXXXX)
chmod 755 "$WORK"
RUNAS=()
if [ "$(id -u)" = 0 ]; then RUNAS=(runuser -u postgres --); chown postgres "$WORK"; fi
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PGPORT=$(free_port); BOUNCER_PORT=$(free_port); WARDEN_PORT=$(free_port); HTTP_PORT=$(free_port)
NOREC_PORT=$(free_port); NOREC_HTTP_PORT=$(free_port)

cleanup() {
  [ -n "${WARDEN_PID:-}" ] && kill "$WARDEN_PID" 2>/dev/null || true
  [ -n "${NOREC_PID:-}" ] && kill "$NOREC_PID" 2>/dev/null || true
  [ -n "${BOUNCER_PID:-}" ] && kill "$BOUNCER_PID" 2>/dev/null || true
  "${RUNAS[@]}" "$PGBIN/pg_ctl" -D "$WORK/pg" stop -m immediate >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

echo "== private PostgreSQL on 127.0.0.1:$PGPORT"
"${RUNAS[@]}" "$PGBIN/initdb" -D "$WORK/pg" -A trust -U postgres >/dev/null
"${RUNAS[@]}" "$PGBIN/pg_ctl" -D "$WORK/pg" -l "$WORK/pg.log" -w start \
  -o "-p $PGPORT -k $WORK -c listen_addresses=127.0.0.1 -c max_connections=200 -c shared_buffers=256MB -c fsync=off" >/dev/null
PGPID=$(head -1 "$WORK/pg/postmaster.pid")
createdb -h 127.0.0.1 -p "$PGPORT" -U postgres bench
pgbench -i -q -s "$SCALE" -h 127.0.0.1 -p "$PGPORT" -U postgres bench >/dev/null 2>&1

echo "== pgbouncer (session mode) on 127.0.0.1:$BOUNCER_PORT"
cat > "$WORK/pgbouncer.ini" <<EOF
[databases]
bench = host=127.0.0.1 port=$PGPORT dbname=bench user=postgres
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $BOUNCER_PORT
unix_socket_dir =
auth_type = trust
auth_file = $WORK/userlist.txt
pool_mode = session
max_client_conn = 200
default_pool_size = 50
logfile = $WORK/pgbouncer.log
EOF
echo '"postgres" ""' > "$WORK/userlist.txt"
chown -R postgres "$WORK/pgbouncer.ini" "$WORK/userlist.txt" 2>/dev/null || true
"${RUNAS[@]}" pgbouncer "$WORK/pgbouncer.ini" >/dev/null 2>&1 &
BOUNCER_PID=$!

echo "== warden on 127.0.0.1:$WARDEN_PORT"
cat > "$WORK/warden.toml" <<EOF
[gateway]
data_dir = "$WORK/warden"
postgres_listen = "127.0.0.1:$WARDEN_PORT"
http_listen = "127.0.0.1:$HTTP_PORT"

[[connections]]
name = "bench"
target = "postgres://127.0.0.1:$PGPORT/bench"
allow_groups = ["bench"]
username = "postgres"
EOF
TOKEN=$("$WARDEN" tokens issue --config "$WORK/warden.toml" --name bench-agent --groups bench --ttl 2h)
env RUST_LOG=warn ${WARDEN_ENV:-} "$WARDEN" gateway --config "$WORK/warden.toml" 2>"$WORK/warden.log" &
WARDEN_PID=$!
# The same gateway with session recording off, to price recording in the same run.
sed -e "s/127.0.0.1:$WARDEN_PORT/127.0.0.1:$NOREC_PORT/" -e "s/127.0.0.1:$HTTP_PORT/127.0.0.1:$NOREC_HTTP_PORT/" \
  -e "s|data_dir = \"$WORK/warden\"|data_dir = \"$WORK/warden-norec\"|" "$WORK/warden.toml" > "$WORK/warden-norec.toml"
printf '\n[recording]\nenabled = false\n' >> "$WORK/warden-norec.toml"
NOREC_TOKEN=$("$WARDEN" tokens issue --config "$WORK/warden-norec.toml" --name bench-agent --groups bench --ttl 2h)
env RUST_LOG=warn ${WARDEN_ENV:-} "$WARDEN" gateway --config "$WORK/warden-norec.toml" 2>"$WORK/warden-norec.log" &
NOREC_PID=$!
for _ in $(seq 1 50); do
  (echo > /dev/tcp/127.0.0.1/$WARDEN_PORT) 2>/dev/null && (echo > /dev/tcp/127.0.0.1/$BOUNCER_PORT) 2>/dev/null \
    && (echo > /dev/tcp/127.0.0.1/$NOREC_PORT) 2>/dev/null && break
  sleep 0.2
done

cat > "$WORK/rows1000.sql" <<'EOF'
SELECT aid, bid, abalance, filler FROM pgbench_accounts WHERE aid <= 1000;
EOF

dsn() {
  case $1 in
    direct) echo "host=127.0.0.1 port=$PGPORT dbname=bench user=postgres sslmode=disable" ;;
    pgbouncer) echo "host=127.0.0.1 port=$BOUNCER_PORT dbname=bench user=postgres sslmode=disable" ;;
    warden) echo "host=127.0.0.1 port=$WARDEN_PORT dbname=bench user=bench-agent password=$TOKEN sslmode=disable" ;;
    norec) echo "host=127.0.0.1 port=$NOREC_PORT dbname=bench user=bench-agent password=$NOREC_TOKEN sslmode=disable" ;;
  esac
}

cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
CLK_TCK=$(getconf CLK_TCK)

pin_all() { # $1 = cpu list
  for p in "$PGPID" $(pgrep -P "$PGPID") "$BOUNCER_PID" "$WARDEN_PID" "$NOREC_PID"; do taskset -a -p -c "$1" "$p" >/dev/null 2>&1 || true; done
}

# case name -> pgbench arguments
declare -A ARGS=(
  [simple]="-S -M simple -c $CLIENTS -j 2"
  [extended]="-S -M extended -c $CLIENTS -j 2"
  [prepared]="-S -M prepared -c $CLIENTS -j 2"
  [rows1000]="-n -f $WORK/rows1000.sql -M extended -c $CLIENTS -j 2"
  [pinned1]="-S -M extended -c 1 -j 1"
)
read -r -a CASES <<< "${BENCH_CASES:-simple extended prepared rows1000 pinned1}"
RESULTS=$OUT/raw-$(date +%Y%m%d-%H%M%S).tsv
echo -e "round\tcase\ttarget\ttps\tlatency_ms\twarden_cpu_us_per_tx" > "$RESULTS"

run_one() { # round case target
  local args=${ARGS[$2]} extra=() before after out tps lat cpu=""
  if [ "$2" = pinned1 ]; then pin_all 0; extra=(taskset -c 0); else pin_all 0-1; fi
  local pid=""
  case $3 in warden) pid=$WARDEN_PID ;; norec) pid=$NOREC_PID ;; esac
  [ -n "$pid" ] && before=$(cpu_ticks "$pid")
  # shellcheck disable=SC2086
  out=$("${extra[@]}" pgbench $args -T "$SECS" "$(dsn "$3")" 2>&1) || { echo "$out" >&2; return 1; }
  tps=$(echo "$out" | sed -n 's/^tps = \([0-9.]*\).*/\1/p' | head -1)
  lat=$(echo "$out" | sed -n 's/^latency average = \([0-9.]*\) ms/\1/p')
  local txs
  txs=$(echo "$out" | sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p')
  if [ -n "$pid" ]; then
    after=$(cpu_ticks "$pid")
    cpu=$(python3 -c "print(round(($after-$before)/$CLK_TCK/max($txs,1)*1e6,2))")
  fi
  echo -e "$1\t$2\t$3\t$tps\t$lat\t$cpu" >> "$RESULTS"
  printf '  round %s %-9s %-9s tps=%-10s lat=%sms %s\n' "$1" "$2" "$3" "$tps" "$lat" "${cpu:+cpu=${cpu}us/tx}"
}

echo "== $ROUNDS interleaved rounds of ${SECS}s per run, $CLIENTS clients"
for r in $(seq 1 "$ROUNDS"); do
  for c in "${CASES[@]}"; do
    # Recording on and off swap places every other round, so neither always runs just
    # after the other (the kernel writes the recordings back some 30 s later, into
    # whichever run is going then).
    if [ $((r % 2)) = 1 ]; then order="direct pgbouncer warden norec"; else order="direct pgbouncer norec warden"; fi
    for t in $order; do
      if [[ " ${BENCH_TARGETS:-direct pgbouncer warden norec} " == *" $t "* ]]; then run_one "$r" "$c" "$t"; fi
    done
  done
done
pin_all 0-1

python3 - "$RESULTS" <<'EOF'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
by = {}
for r in rows:
    by.setdefault((r["case"], r["round"]), {})[r["target"]] = r
cases = []
for r in rows:
    if r["case"] not in cases:
        cases.append(r["case"])


def med(xs, fmt="{:.2f}"):
    return fmt.format(statistics.median(xs)) if xs else "-"


def middle_half(xs):
    if len(xs) < 4:
        return "-"
    q = statistics.quantiles(xs, n=4)
    return f"{q[0]*100:.1f} to {q[2]*100:.1f}%"


print()
print(f"{'case':<10} {'pgbouncer/direct':>17} {'warden/direct':>14} {'no-rec/direct':>14} {'recording cost':>15} {'middle half of rounds':>22} {'cpu us/tx (rec, no-rec)':>24} {'added latency us (bouncer, warden)':>36}")
for c in cases:
    rb, rw, rn, cost, cpu, cpun, lb, lw = [], [], [], [], [], [], [], []
    for (case, rnd), t in by.items():
        if case != c:
            continue
        tps = {k: float(v["tps"]) for k, v in t.items()}
        if "direct" in t:
            d = tps["direct"]
            for name, out in (("pgbouncer", rb), ("warden", rw), ("norec", rn)):
                if name in t:
                    out.append(tps[name] / d)
        if "warden" in t and "norec" in t:
            # Throughput lost to recording: 1 - (recording on / off), same round.
            cost.append(1 - tps["warden"] / tps["norec"])
        for name, out in (("warden", cpu), ("norec", cpun)):
            if name in t and t[name]["warden_cpu_us_per_tx"]:
                out.append(float(t[name]["warden_cpu_us_per_tx"]))
        if c == "pinned1" and "direct" in t:
            ld = float(t["direct"]["latency_ms"])
            for name, out in (("pgbouncer", lb), ("warden", lw)):
                if name in t:
                    out.append((float(t[name]["latency_ms"]) - ld) * 1000)
    lat = f"{med(lb, '{:.1f}')}, {med(lw, '{:.1f}')}" if c == "pinned1" else ""
    cpus = f"{med(cpu, '{:.1f}')}, {med(cpun, '{:.1f}')}"
    costs = f"{statistics.median(cost)*100:.1f}%" if cost else "-"
    print(f"{c:<10} {med(rb):>17} {med(rw):>14} {med(rn):>14} {costs:>15} {middle_half(cost):>22} {cpus:>24} {lat:>36}")
EOF
