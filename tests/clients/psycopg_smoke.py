#!/usr/bin/env python3
"""Smoke test of a PostgreSQL endpoint (the gateway, or PostgreSQL itself) with psycopg 3.

Reads the connection string from WARDEN_DSN (URI or key=value form), prints one
"OK <step>" line per passed step and exits 1 at the first failure. The DSN may carry a
token as password, so it is never printed.
"""

import os
import sys
import threading
import time
import traceback

import psycopg
from psycopg import errors, sql

TABLE_ROWS = [(1, "alice", "a@example.test"), (2, "bob", None), (3, "carol's", "c@x.test")]
COPY_ROWS = [(10, "tab\there", "new\nline"), (11, "back\\slash", None), (12, "ünïcode", "☃")]
CHANNEL = "warden_smoke"


def ok(step):
    print(f"OK {step}", flush=True)


def connect():
    dsn = os.environ.get("WARDEN_DSN")
    if not dsn:
        raise SystemExit("WARDEN_DSN is not set")
    return psycopg.connect(dsn, autocommit=True, connect_timeout=10)


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def main():
    conn = connect()
    check(conn.execute("select 1").fetchone() == (1,), "select 1")
    ok("connect")

    conn.execute(
        "create temp table smoke (id int primary key, name text not null, email text)"
    )
    with conn.cursor() as cur:
        cur.executemany("insert into smoke values (%s, %s, %s)", TABLE_ROWS)
    ok("insert with parameters")

    rows = conn.execute("select id, name, email from smoke order by id").fetchall()
    check(rows == TABLE_ROWS, f"select returned {rows!r}")
    row = conn.execute(
        "select name from smoke where id = %s", (2,), prepare=True
    ).fetchone()
    check(row == ("bob",), f"prepared select returned {row!r}")
    with conn.cursor(binary=True) as cur:
        cur.execute("select id, name from smoke where id = %s", (3,))
        row = cur.fetchone()
        check(row == (3, "carol's"), f"binary select returned {row!r}")
    ok("select (text, prepared, binary)")

    with conn.cursor() as cur:
        with cur.copy("copy smoke (id, name, email) from stdin") as copy:
            for r in COPY_ROWS:
                copy.write_row(r)
        check(cur.rowcount == len(COPY_ROWS), f"copy in rowcount {cur.rowcount}")
    ok("copy from stdin")

    copied = []
    with conn.cursor() as cur:
        with cur.copy("copy (select id, name, email from smoke order by id) to stdout") as copy:
            copy.set_types(["int4", "text", "text"])
            for r in copy.rows():
                copied.append(tuple(r))
    check(copied == TABLE_ROWS + COPY_ROWS, f"copy out returned {copied!r}")
    ok("copy to stdout")

    try:
        conn.execute("select 1 / 0")
        raise AssertionError("division by zero did not raise")
    except errors.DivisionByZero as e:
        check(e.sqlstate == "22012", f"sqlstate {e.sqlstate}")
    try:
        conn.execute("select * from no_such_table_smoke")
        raise AssertionError("missing table did not raise")
    except errors.UndefinedTable as e:
        check(e.sqlstate == "42P01", f"sqlstate {e.sqlstate}")
    check(conn.execute("select 2").fetchone() == (2,), "connection did not recover")
    # An error inside a transaction block aborts it until rollback, then all is well.
    try:
        with conn.transaction():
            conn.execute("insert into smoke values (1, 'dup', null)")
        raise AssertionError("duplicate key did not raise")
    except errors.UniqueViolation as e:
        check(e.sqlstate == "23505", f"sqlstate {e.sqlstate}")
    check(conn.execute("select count(*) from smoke").fetchone() == (6,), "rollback")
    ok("errors carry sqlstate and the connection recovers")

    conn.execute(sql.SQL("listen {}").format(sql.Identifier(CHANNEL)))
    with connect() as other:
        other.execute("select pg_notify(%s, %s)", (CHANNEL, "hello from other"))
    got = [n for n in conn.notifies(timeout=5, stop_after=1)]
    check(len(got) == 1, f"received {len(got)} notifications")
    check(got[0].channel == CHANNEL and got[0].payload == "hello from other", repr(got[0]))
    conn.execute("notify " + CHANNEL + ", 'hello from self'")
    got = [n for n in conn.notifies(timeout=5, stop_after=1)]
    check(len(got) == 1 and got[0].payload == "hello from self", f"self notify {got!r}")
    conn.execute("unlisten *")
    ok("listen/notify")

    result = {}

    def sleeper():
        started = time.monotonic()
        try:
            conn.execute("select pg_sleep(30)")
            result["error"] = None
        except Exception as e:  # noqa: BLE001 - reported below
            result["error"] = e
        result["ended"] = time.monotonic()
        result["started"] = started

    t = threading.Thread(target=sleeper, daemon=True)
    t.start()
    time.sleep(0.5)
    cancelled_at = time.monotonic()
    conn.cancel()
    t.join(timeout=10)
    check(not t.is_alive(), "query still running 10s after cancel")
    err = result.get("error")
    check(isinstance(err, errors.QueryCanceled), f"expected QueryCanceled, got {err!r}")
    check(err.sqlstate == "57014", f"sqlstate {err.sqlstate}")
    took = result["ended"] - cancelled_at
    check(took < 1.0, f"cancel took {took:.2f}s")
    check(conn.execute("select 3").fetchone() == (3,), "connection unusable after cancel")
    ok(f"cancel ({took * 1000:.0f} ms)")

    conn.close()
    ok("all")


if __name__ == "__main__":
    try:
        main()
    except Exception:  # noqa: BLE001 - any failure is a failed smoke test
        traceback.print_exc()
        print("FAIL", flush=True)
        sys.exit(1)
