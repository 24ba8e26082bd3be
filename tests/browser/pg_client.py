"""psycopg 3 clients the console browser test drives through the gateway.

Usage: python3 pg_client.py MODE  (DSN in WARDEN_DSN)
  drop TABLE         DROP TABLE (held for review); prints "OK dropped" once it runs, then
                     "OK 42" from a parameterised SELECT on the same session.
  update-xss         an UPDATE whose text and parameter carry HTML (held); expects a
                     rejection: prints "OK rejected 57014".
  sleep              prints "CONNECTED", then runs pg_sleep(120) and expects the session
                     to be ended from outside: prints "OK ended 57P01" (or "OK closed").
Exits non-zero on anything else.
"""
import os
import sys

import psycopg

dsn = os.environ["WARDEN_DSN"]
mode = sys.argv[1]

with psycopg.connect(dsn, autocommit=True, application_name=f"console-test-{mode}") as conn:
    cur = conn.cursor()
    if mode == "drop":
        table = sys.argv[2]
        print("HOLDING", flush=True)
        cur.execute(f"DROP TABLE {table}")
        print("OK dropped", flush=True)
        cur.execute("SELECT 41 + %s AS answer", (1,))
        print(f"OK {cur.fetchone()[0]}", flush=True)
    elif mode == "update-xss":
        print("HOLDING", flush=True)
        try:
            cur.execute(
                "UPDATE xss_t SET v = '<img src=x onerror=window.__xss=1>' WHERE id = %s AND v <> %s",
                (1, "<svg onload=window.__xss=2>"),
            )
            print("FAIL the rejected statement ran", flush=True)
            sys.exit(1)
        except psycopg.errors.QueryCanceled as e:
            print(f"OK rejected {e.sqlstate}", flush=True)
    elif mode == "sleep":
        cur.execute("SELECT 1")
        print("CONNECTED", flush=True)
        try:
            cur.execute("SELECT pg_sleep(120)")
            print("FAIL the sleep finished: the session was not ended", flush=True)
            sys.exit(1)
        except psycopg.errors.AdminShutdown as e:
            print(f"OK ended {e.sqlstate}", flush=True)
            sys.exit(0)
        except psycopg.OperationalError as e:
            code = getattr(e, "sqlstate", None)
            print(f"OK closed {code or ''} {str(e).strip().splitlines()[0] if str(e).strip() else ''}", flush=True)
            sys.exit(0)
    else:
        print(f"unknown mode {mode}", file=sys.stderr)
        sys.exit(2)
