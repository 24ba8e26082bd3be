#!/usr/bin/env python3
"""A fixed psycopg 3 session for the recording tests: DDL, inserts (one with bound
parameters), a parameterised query, a failing statement, and a password change that must
never reach the recording. Prints "OK <step>" lines and "OK all"; the DSN (it carries a
token) is never printed.
"""

import os
import sys

import psycopg


def ok(step):
    print(f"OK {step}", flush=True)


def main():
    dsn = os.environ["WARDEN_DSN"]
    with psycopg.connect(dsn, autocommit=True) as conn:
        cur = conn.cursor()
        cur.execute("create table rec_items (id int primary key, name text, price numeric)")
        ok("ddl")
        cur.execute("insert into rec_items values (1, 'apple', 1.25), (2, 'pear', 2.50)")
        cur.execute("insert into rec_items values (%s, %s, %s)", (3, "plum's", 3.75))
        ok("inserts")
        cur.execute("select id, name from rec_items where price > %s order by id", (2,))
        rows = cur.fetchall()
        assert rows == [(2, "pear"), (3, "plum's")], rows
        ok("parameterised query")
        try:
            cur.execute("select 1/0")
            raise SystemExit("division by zero did not fail")
        except psycopg.errors.DivisionByZero:
            ok("failing statement")
        cur.execute("create role rec_victim")
        cur.execute("alter role rec_victim password 'hunter2'")
        cur.execute("drop role rec_victim")
        ok("password change")
    ok("all")


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001 - report any failure as a non-zero exit
        print(f"FAIL {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
