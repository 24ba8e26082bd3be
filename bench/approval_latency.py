#!/usr/bin/env python3
"""Approval round trip through a running Warden (driven by bench/approval.sh).

Each round: an agent (psycopg 3, its own thread) sends a destructive statement that returns
a row; Warden holds it. An automated approver (this process, another thread) learns of the
review either from the hold notice the agent receives (`SOURCE=notice`) or, as the web
console does, from the live review stream GET /api/v1/reviews/stream (`SOURCE=stream`,
the default), then calls POST /api/v1/reviews/{id}/approve and the statement runs.
Measured per round:
  round_trip   statement sent -> first result row at the client, with an approver that
               approves the moment it learns of the review (hold -> learn -> approve -> row)
  learn        statement sent -> the approver learns of the review (notice or stream event)
  approve_call the approve HTTP call itself (auth, store write, wake-up)
  release      approve call returned -> first result row at the client
Prints median / p90 / p99 / max of each, in milliseconds. Env: WARDEN_DSN (agent),
WARDEN_API (http://127.0.0.1:port), WARDEN_APPROVER_TOKEN, ROUNDS (default 200), SOURCE.
"""
import json
import os
import queue
import statistics
import threading
import time
import urllib.request

import psycopg

ROUNDS = int(os.environ.get("ROUNDS", "200"))
API = os.environ["WARDEN_API"]
TOKEN = os.environ["WARDEN_APPROVER_TOKEN"]
SOURCE = os.environ.get("SOURCE", "stream")
assert SOURCE in ("stream", "notice"), SOURCE

held = queue.Queue()


def approve(review_id):
    req = urllib.request.Request(
        f"{API}/api/v1/reviews/{review_id}/approve",
        data=b'{"reason":"bench"}',
        method="POST",
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        body = json.loads(r.read())
        assert body["status"] == "approved", body


def on_notice(d):
    if SOURCE != "notice":
        return
    msg = d.message_primary or ""
    at = msg.find("rv-")
    # Only the hold announcement; the "approved by" notice that follows names it too.
    if at >= 0 and "holding this statement" in msg:
        held.put((time.perf_counter(), msg[at : at + 19]))


def stream(ready):
    """Reads the review stream as the console does; queues each newly pending review."""
    req = urllib.request.Request(
        f"{API}/api/v1/reviews/stream",
        headers={"Authorization": f"Bearer {TOKEN}", "Accept": "text/event-stream"},
    )
    seen = set()
    with urllib.request.urlopen(req, timeout=60) as r:
        event = None
        for raw in r:
            line = raw.decode().rstrip("\r\n")
            if line.startswith(":"):
                ready.set()
            elif line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:") and event == "review":
                review = json.loads(line[5:])
                rid = review.get("id", "")
                if review.get("status") == "pending" and rid.startswith("rv-") and rid not in seen:
                    seen.add(rid)
                    held.put((time.perf_counter(), rid))
            elif line == "":
                event = None


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def main():
    conn = psycopg.connect(os.environ["WARDEN_DSN"], autocommit=True)
    conn.add_notice_handler(on_notice)
    conn.execute("CREATE TABLE IF NOT EXISTS warden_bench_approval (id int)")
    if SOURCE == "stream":
        ready = threading.Event()
        threading.Thread(target=stream, args=(ready,), daemon=True).start()
        assert ready.wait(10), "the review stream did not open"
    round_trip, learn, release, call = [], [], [], []
    approver_times = queue.Queue()

    def approver():
        while True:
            item = held.get()
            if item is None:
                return
            t_learn, rid = item
            t0 = time.perf_counter()
            approve(rid)
            t1 = time.perf_counter()
            approver_times.put((t_learn, t0, t1))

    th = threading.Thread(target=approver, daemon=True)
    th.start()
    for i in range(ROUNDS + 5):
        conn.execute("INSERT INTO warden_bench_approval VALUES (1)")
        t_sent = time.perf_counter()
        cur = conn.execute(
            "WITH d AS (DELETE FROM warden_bench_approval RETURNING *) SELECT count(*) FROM d"
        )
        # psycopg returns once the result is complete; the one row arrives with it.
        t_row = time.perf_counter()
        assert cur.fetchone()[0] == 1
        t_learn, t0, t1 = approver_times.get(timeout=10)
        if i >= 5:  # warm-up rounds are not counted
            call.append((t1 - t0) * 1000)
            release.append((t_row - t1) * 1000)
            learn.append((t_learn - t_sent) * 1000)
            round_trip.append((t_row - t_sent) * 1000)
    held.put(None)
    conn.close()
    print(f"rounds: {ROUNDS}, approver learns from: {SOURCE}")
    for name, xs in [
        ("round_trip(sent->row)", round_trip),
        (f"learn(sent->{SOURCE})", learn),
        ("approve_call", call),
        ("release(approve returned->row)", release),
    ]:
        print(
            f"{name:32s} median {statistics.median(xs):7.2f} ms  p90 {pct(xs, 90):7.2f} ms  "
            f"p99 {pct(xs, 99):7.2f} ms  max {max(xs):7.2f} ms"
        )


if __name__ == "__main__":
    main()
