#!/usr/bin/env python3
"""Smoke test of a PostgreSQL endpoint (the gateway, or PostgreSQL itself) with asyncpg.

Reads the connection string from WARDEN_DSN (asyncpg needs the URI form,
postgresql://user:password@host:port/dbname?sslmode=...), prints one "OK <step>" line per
passed step and exits 1 at the first failure. The DSN may carry a token as password, so
it is never printed.
"""

import asyncio
import os
import sys
import time
import traceback

import asyncpg

ROWS = [(1, "alice", "a@example.test"), (2, "bob", None), (3, "carol's", "c@x.test")]
COPY_ROWS = [(10, "tab\there", "new\nline"), (11, "back\\slash", None), (12, "ünïcode", "☃")]
CHANNEL = "warden_smoke"


def ok(step):
    print(f"OK {step}", flush=True)


def check(cond, what):
    if not cond:
        raise AssertionError(what)


async def connect():
    dsn = os.environ.get("WARDEN_DSN")
    if not dsn:
        raise SystemExit("WARDEN_DSN is not set")
    return await asyncpg.connect(dsn, timeout=10)


async def main():
    conn = await connect()
    check(await conn.fetchval("select 1") == 1, "select 1")
    ok("connect")

    stmt = await conn.prepare("select $1::int + $2::int, $3::text")
    row = await stmt.fetchrow(40, 2, "x")
    check(tuple(row) == (42, "x"), f"prepared returned {tuple(row)!r}")
    check(await stmt.fetchval(1, 1, None) == 2, "prepared reuse")
    ok("prepared statement with parameters")

    await conn.execute(
        "create temp table smoke (id int primary key, name text not null, email text)"
    )
    await conn.executemany("insert into smoke values ($1, $2, $3)", ROWS)
    rows = await conn.fetch("select id, name, email from smoke order by id")
    check([tuple(r) for r in rows] == ROWS, f"fetch returned {rows!r}")
    ok("fetch")

    n = await conn.copy_records_to_table(
        "smoke", records=COPY_ROWS, columns=["id", "name", "email"]
    )
    check(n.startswith("COPY 3"), f"copy_records_to_table said {n!r}")
    rows = await conn.fetch("select id, name, email from smoke where id >= 10 order by id")
    check([tuple(r) for r in rows] == COPY_ROWS, f"after copy in: {rows!r}")
    ok("copy_records_to_table")

    chunks = []

    async def sink(data):
        chunks.append(data)

    status = await conn.copy_from_query(
        "select id, name from smoke where id < $1 order by id", 3, output=sink, format="csv"
    )
    check(status.startswith("COPY 2"), f"copy_from_query said {status!r}")
    text = b"".join(chunks).decode()
    check(text == "1,alice\n2,bob\n", f"copy_from_query output {text!r}")
    ok("copy_from_query")

    try:
        await conn.execute("select 1 / 0")
        raise AssertionError("division by zero did not raise")
    except asyncpg.exceptions.DivisionByZeroError as e:
        check(e.sqlstate == "22012", f"sqlstate {e.sqlstate}")
    try:
        await conn.fetch("select * from no_such_table_smoke where id = $1", 1)
        raise AssertionError("missing table did not raise")
    except asyncpg.exceptions.UndefinedTableError as e:
        check(e.sqlstate == "42P01", f"sqlstate {e.sqlstate}")
    check(await conn.fetchval("select 2") == 2, "connection did not recover")
    ok("errors carry sqlstate and the connection recovers")

    received = asyncio.get_running_loop().create_future()

    def on_notify(_conn, _pid, channel, payload):
        if not received.done():
            received.set_result((channel, payload))

    await conn.add_listener(CHANNEL, on_notify)
    other = await connect()
    try:
        await other.execute("select pg_notify($1, $2)", CHANNEL, "hello from other")
    finally:
        await other.close()
    got = await asyncio.wait_for(received, timeout=5)
    check(got == (CHANNEL, "hello from other"), f"notification {got!r}")
    await conn.remove_listener(CHANNEL, on_notify)
    ok("listen/notify")

    started = time.monotonic()
    try:
        await conn.fetch("select pg_sleep(30)", timeout=0.5)
        raise AssertionError("pg_sleep(30) finished despite timeout")
    except asyncio.TimeoutError:
        pass
    took = time.monotonic() - started
    check(took < 1.5, f"timeout-cancel took {took:.2f}s")
    check(await conn.fetchval("select 3", timeout=5) == 3, "connection unusable after cancel")
    ok(f"timeout cancel ({took * 1000:.0f} ms)")

    await conn.close()
    ok("all")


if __name__ == "__main__":
    try:
        asyncio.run(asyncio.wait_for(main(), timeout=120))
    except BaseException as e:  # noqa: BLE001 - any failure is a failed smoke test
        if isinstance(e, SystemExit) and e.code in (0, None):
            raise
        traceback.print_exc()
        print("FAIL", flush=True)
        sys.exit(1)
