"""Warden review smoke test: a DROP TABLE from psycopg 3 (extended protocol) is held.

WARDEN_REVIEW_EXPECT=approved: the statement runs once an approver approves it, and the
client saw a notice naming the review. WARDEN_REVIEW_EXPECT=rejected: the client gets
SQLSTATE 57014 with the reviewer's reason (WARDEN_REVIEW_REASON) and the session goes on.
Prints `OK …` lines, then `OK all`.
"""
import os
import sys

import psycopg

dsn = os.environ["WARDEN_DSN"]
expect = os.environ.get("WARDEN_REVIEW_EXPECT", "approved")
table = os.environ.get("WARDEN_REVIEW_TABLE", "review_t")
reason = os.environ.get("WARDEN_REVIEW_REASON", "")

notices = []
with psycopg.connect(dsn, autocommit=True) as conn:
    conn.add_notice_handler(lambda d: notices.append(d.message_primary or ""))
    cur = conn.cursor()
    print("HOLDING", flush=True)
    if expect == "approved":
        cur.execute(f"DROP TABLE {table}")
        print("OK dropped", flush=True)
    else:
        try:
            cur.execute(f"DROP TABLE {table}")
            print("FAIL the rejected statement ran")
            sys.exit(1)
        except psycopg.errors.QueryCanceled as e:
            assert e.sqlstate == "57014", e.sqlstate
            msg = e.diag.message_primary or ""
            assert "rejected by" in msg, msg
            assert reason in msg, msg
            print("OK rejected with 57014", flush=True)
    held = [n for n in notices if "holding this statement for review rv-" in n]
    assert held, notices
    print("OK notice " + held[0], flush=True)
    # The session is healthy afterwards.
    cur.execute("SELECT 41 + %s", (1,))
    assert cur.fetchone()[0] == 42
    print("OK session goes on", flush=True)
print("OK all")
