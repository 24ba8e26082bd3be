#!/usr/bin/env python3
"""Masking through asyncpg (extended protocol, binary result format) and psycopg with
binary results: masked columns arrive masked, whatever the format; a statement that would
carry a masked value elsewhere is refused. Prints "OK <step>" lines and "OK all"; never
prints the DSN (it carries a token).
"""

import asyncio
import json
import os

import asyncpg
import psycopg

SECRETS = ["alice@example.com", "bob@example.org", "123-45-6789", "987-65-4321",
           "alice@home.example", "bob@home.example", "4111111111111111"]


def ok(step):
    print(f"OK {step}", flush=True)


def clean(value, what):
    text = repr(value)
    for s in SECRETS:
        assert s not in text, f"{what} leaked {s!r}: {text}"


async def run_asyncpg(dsn):
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT id, email, ssn, profile, note FROM customers WHERE id = $1", 1)
        clean(rows, "asyncpg fetch")
        row = rows[0]
        assert row["email"].startswith("tok_"), row["email"]
        assert row["ssn"] == "****", row["ssn"]
        profile = json.loads(row["profile"])
        assert profile["contact"]["email"] == "****", profile
        assert profile["tier"] == "gold", profile
        assert "1111" in row["note"] and "1234567812345678" in row["note"], row["note"]
        ok("asyncpg binary rows masked")
        # A prepared statement executed several times keeps its masking.
        stmt = await conn.prepare("SELECT email FROM customers ORDER BY id")
        for _ in range(3):
            got = [r[0] for r in await stmt.fetch()]
            clean(got, "prepared")
            assert got[0] == got[2] and got[0] != got[1], got
        ok("asyncpg prepared statement masked on every execute")
        got = await conn.fetchval("SELECT lower(email) FROM customers WHERE id = $1", 2)
        clean(got, "expression")
        ok("asyncpg expression masked")
        try:
            await conn.fetch("SELECT set_config('x.leak', email, false) FROM customers")
            raise SystemExit("set_config was not refused")
        except asyncpg.exceptions.InsufficientPrivilegeError as e:
            clean(str(e), "refusal")
        assert await conn.fetchval("SELECT 41 + 1") == 42
        ok("asyncpg refusal and the session goes on")
    finally:
        await conn.close()


def run_psycopg(dsn):
    with psycopg.connect(dsn, autocommit=True) as conn:
        cur = conn.cursor(binary=True)
        cur.execute("SELECT c.email AS e, c.ssn, c.id FROM customers c WHERE c.id = %s", (2,))
        row = cur.fetchone()
        clean(row, "psycopg binary")
        assert row[0].startswith("tok_") and row[1] == "****" and row[2] == 2, row
        cur = conn.cursor()
        cur.execute("SELECT * FROM customers_view ORDER BY id")
        rows = cur.fetchall()
        clean(rows, "view through psycopg")
        ok("psycopg binary and text masked")


def main():
    dsn = os.environ["WARDEN_DSN"]
    asyncio.run(run_asyncpg(dsn))
    run_psycopg(dsn)
    ok("all")


if __name__ == "__main__":
    main()
