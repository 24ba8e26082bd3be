#!/usr/bin/env python3
"""Session setup latency: connect, authenticate, `SELECT 1`, disconnect, timed in-process.

Run by bench/setup.sh, which starts a private PostgreSQL and a Warden and passes everything
through the environment (secrets never on argv, never printed):

  BENCH_CASES         comma-separated paths, any of direct,static,jit (default all three)
  SESSIONS            timed sessions per path (default 300)
  BATCH               sessions per batch; batches of the paths alternate (default 20)
  WARMUP              untimed sessions per path before the first batch (default 5)
  BENCH_PG_PORT       the private PostgreSQL (direct path, SCRAM as BENCH_DIRECT_USER)
  BENCH_DIRECT_USER   role for the direct path (default app_static)
  BENCH_STATIC_PW     its password
  BENCH_WARDEN_PORT   Warden's PostgreSQL listener
  BENCH_TOKEN         Warden token, sent as the password
  BENCH_TOKEN_USER    user name sent to Warden (default bench)
  BENCH_HTTP_ADDR     Warden's HTTP address (host:port), scraped for
                      warden_pg_session_setup_seconds at the end
  BENCH_RAW           optional path: every timed session as TSV (round, path, ms)

Exits 1 if any session failed (each path stops after MAX_CONSECUTIVE_FAILURES in a row).
"""

import math
import os
import statistics
import sys
import time
import urllib.request

try:
    import psycopg
except ImportError:
    sys.exit("setup_latency.py needs psycopg 3: python3 -m pip install 'psycopg[binary]'")

ALL_PATHS = ("direct", "static", "jit")
MAX_CONSECUTIVE_FAILURES = 5
# Whole setup as Warden sees it, and the role-creation part of it.
METRICS = ("warden_pg_session_setup_seconds", "warden_jit_role_create_seconds")


def env(name, default=None):
    v = os.environ.get(name, default)
    if v is None:
        sys.exit(f"setup_latency.py: environment variable {name} is not set")
    return v


def connect_args(path):
    """psycopg.connect keyword arguments for one path (never printed: they hold secrets)."""
    if path == "direct":
        return dict(
            host="127.0.0.1",
            port=int(env("BENCH_PG_PORT")),
            dbname="postgres",
            user=env("BENCH_DIRECT_USER", "app_static"),
            password=env("BENCH_STATIC_PW"),
        )
    return dict(
        host="127.0.0.1",
        port=int(env("BENCH_WARDEN_PORT")),
        dbname=path,  # the Warden connection: "static" or "jit"
        user=env("BENCH_TOKEN_USER", "bench"),
        password=env("BENCH_TOKEN"),
    )


def one_session(kwargs):
    """Seconds for connect -> SELECT 1 -> fetchone -> close."""
    t0 = time.perf_counter()
    conn = psycopg.connect(**kwargs, sslmode="disable", connect_timeout=10, autocommit=True)
    try:
        row = conn.execute("SELECT 1").fetchone()
    finally:
        conn.close()
    elapsed = time.perf_counter() - t0
    if row != (1,):
        raise RuntimeError(f"SELECT 1 returned {row!r}")
    return elapsed


def redact(text):
    """Masks the secrets this script was given, should an error message ever echo one."""
    for name in ("BENCH_STATIC_PW", "BENCH_TOKEN"):
        secret = os.environ.get(name)
        if secret:
            text = text.replace(secret, "***")
    return text


def pct(sorted_xs, p):
    """Nearest-rank percentile of a sorted list."""
    k = max(1, math.ceil(p / 100 * len(sorted_xs)))
    return sorted_xs[k - 1]


def scrape_metrics(addr):
    url = f"http://{addr}/metrics"
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            body = r.read().decode()
    except OSError as e:
        print(f"could not scrape {url}: {e}")
        return
    lines = [l for l in body.splitlines() if any(m in l for m in METRICS)]
    print(f"\n== {url}: lines with {', '.join(METRICS)}")
    if not lines:
        print("  (none)")
    for l in lines:
        print("  " + l)
    # Summary quantiles cover a recent window only; _sum/_count cover the whole run.
    sums, counts = {}, {}
    for l in lines:
        if l.startswith("#"):
            continue
        name, _, value = l.rpartition(" ")
        base, _, labels = name.partition("{")
        for m in METRICS:
            key = (m, labels.rstrip("}"))
            if base == m + "_sum":
                sums[key] = float(value)
            elif base == m + "_count":
                counts[key] = float(value)
    for key, n in counts.items():
        if n and key in sums:
            m, labels = key
            print(f"  mean over the run of {m}{' ' + labels if labels else ''}: {sums[key] / n * 1000:.2f} ms")


def main():
    paths = [p.strip() for p in env("BENCH_CASES", ",".join(ALL_PATHS)).split(",") if p.strip()]
    bad = [p for p in paths if p not in ALL_PATHS]
    if bad or not paths:
        sys.exit(f"BENCH_CASES: unknown path(s) {bad}; choose from {','.join(ALL_PATHS)}")
    sessions = int(env("SESSIONS", "300"))
    batch = int(env("BATCH", "20"))
    warmup = int(env("WARMUP", "5"))
    if sessions < 1 or batch < 1 or warmup < 0:
        sys.exit("SESSIONS and BATCH must be >= 1, WARMUP >= 0")
    rounds = math.ceil(sessions / batch)
    kwargs = {p: connect_args(p) for p in paths}

    times = {p: [] for p in paths}  # seconds, timed sessions
    by_round = {p: {} for p in paths}  # round -> [seconds]
    failures = {p: 0 for p in paths}
    first_error = {}
    streak = {p: 0 for p in paths}
    given_up = set()
    raw = []

    def run(path, rnd):
        if path in given_up:
            return
        try:
            s = one_session(kwargs[path])
        except Exception as e:  # noqa: BLE001 - any failure counts and is reported
            failures[path] += 1
            first_error.setdefault(path, redact(f"{type(e).__name__}: {e}".strip()))
            streak[path] += 1
            if streak[path] >= MAX_CONSECUTIVE_FAILURES:
                given_up.add(path)
                print(f"  {path}: {streak[path]} failures in a row, giving up on this path")
            return
        streak[path] = 0
        if rnd is not None:
            times[path].append(s)
            by_round[path].setdefault(rnd, []).append(s)
            raw.append((rnd, path, s * 1000))

    print(
        f"== session setup: {sessions} timed sessions per path ({', '.join(paths)}), "
        f"{rounds} rounds of batches of up to {batch}, order rotating; {warmup} warm-up each"
    )
    for p in paths:
        for _ in range(warmup):
            run(p, None)
    done = 0
    for r in range(rounds):
        n = min(batch, sessions - done)
        done += n
        order = paths[r % len(paths):] + paths[: r % len(paths)]
        for p in order:
            for _ in range(n):
                run(p, r)
        if (r + 1) % max(1, rounds // 5) == 0 or r + 1 == rounds:
            meds = "  ".join(
                f"{p}={statistics.median(times[p]) * 1000:.2f}ms" for p in paths if times[p]
            )
            print(f"  round {r + 1}/{rounds}: running medians {meds}")

    if raw_path := os.environ.get("BENCH_RAW"):
        with open(raw_path, "w") as f:
            f.write("round\tpath\tms\n")
            for rnd, p, ms in raw:
                f.write(f"{rnd}\t{p}\t{ms:.4f}\n")

    med = {p: statistics.median(times[p]) for p in paths if times[p]}
    print()
    print(
        f"{'path':<8} {'n':>5} {'fail':>5} {'median ms':>10} {'p90 ms':>8} {'p99 ms':>8} "
        f"{'min ms':>8} {'max ms':>8} {'median/direct':>14}"
    )
    for p in paths:
        xs = sorted(times[p])
        if not xs:
            print(f"{p:<8} {0:>5} {failures[p]:>5}   (no successful session)")
            continue
        ratio = ""
        if p != "direct" and med.get("direct"):
            ratio = f"{med[p] / med['direct']:.2f}"
        print(
            f"{p:<8} {len(xs):>5} {failures[p]:>5} {med[p] * 1000:>10.2f} "
            f"{pct(xs, 90) * 1000:>8.2f} {pct(xs, 99) * 1000:>8.2f} {xs[0] * 1000:>8.2f} "
            f"{xs[-1] * 1000:>8.2f} {ratio:>14}"
        )
    if "static" in med and "jit" in med:
        diff = (med["jit"] - med["static"]) * 1000
        paired = [
            statistics.median(by_round["jit"][r]) - statistics.median(by_round["static"][r])
            for r in by_round["static"]
            if r in by_round["jit"]
        ]
        print(f"\nJIT - static median: {diff:+.2f} ms", end="")
        if paired:
            print(
                f" (median over {len(paired)} rounds of the per-round difference: "
                f"{statistics.median(paired) * 1000:+.2f} ms)"
            )
        else:
            print()
    for p in paths:
        if p != "direct" and p in med and "direct" in med:
            added = (med[p] - med["direct"]) * 1000
            print(f"{p} - direct median: {added:+.2f} ms")

    scrape_metrics(env("BENCH_HTTP_ADDR"))

    total_failed = sum(failures.values())
    short = [p for p in paths if len(times[p]) < sessions]
    if total_failed or short:
        print("\nFAILED:")
        for p in paths:
            if failures[p] or len(times[p]) < sessions:
                print(
                    f"  {p}: {failures[p]} failed session(s), {len(times[p])}/{sessions} timed; "
                    f"first error: {first_error.get(p, '-')}"
                )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
