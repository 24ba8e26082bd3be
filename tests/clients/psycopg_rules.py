#!/usr/bin/env python3
"""Statement rules through psycopg 3 (extended protocol, server-side binding): a
destructive statement is refused with 42501 and the session goes on; a keyed delete runs.
Prints "OK <step>" lines and "OK all"; the DSN (it carries a token) is never printed.
"""

import os
import sys

import psycopg


def ok(step):
    print(f"OK {step}", flush=True)


def main():
    with psycopg.connect(os.environ["WARDEN_DSN"], autocommit=True) as conn:
        cur = conn.cursor()
        for sql in ["delete from rules_t", "DeLeTe   FROM rules_t", "truncate rules_t"]:
            try:
                cur.execute(sql)
                raise SystemExit(f"{sql!r} was not denied")
            except psycopg.errors.InsufficientPrivilege as e:
                assert "destructive statements need a DBA" in str(e), str(e)
        ok("denied with 42501")
        cur.execute("select count(*) from rules_t")
        assert cur.fetchone()[0] == 3
        ok("session goes on")
        cur.execute("delete from rules_t where id = %s", (1,))
        assert cur.rowcount == 1
        cur.execute("select count(*) from rules_t")
        assert cur.fetchone()[0] == 2
        ok("keyed delete allowed")
        with conn.transaction():
            cur.execute("insert into rules_t values (%s)", (10,))
            try:
                cur.execute("drop table rules_t")
                raise SystemExit("drop was not denied")
            except psycopg.errors.InsufficientPrivilege:
                pass
        cur.execute("select count(*) from rules_t where id = 10")
        assert cur.fetchone()[0] in (0, 1)
        ok("inside a transaction")
    ok("all")


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001 - report any failure as a non-zero exit
        print(f"FAIL {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
