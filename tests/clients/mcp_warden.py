"""Drives Warden's MCP server with the Python `mcp` client (the version CrewAI 1.15 uses).

Usage: mcp_warden.py stdio|http|limits

`limits` (over HTTP): request_access to WARDEN_RESTRICTED, which the token may not use yet,
then a query there once `warden access`'s approval is in; and the per-identity cap on held
statements (8 held, the 9th refused, also from a second session).

Environment: WARDEN_TOKEN, WARDEN_GATEWAY (http://127.0.0.1:PORT), WARDEN_BIN (the warden
binary), WARDEN_CONFIG (the gateway's config, for `warden reviews approve`),
WARDEN_CONNECTION. Prints one JSON object per step ({"step", "is_error", "data"}) and
"DONE" at the end; crates/warden/tests/mcp.rs asserts on them.
"""

import asyncio
import json
import os
import subprocess
import sys

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamablehttp_client

TOKEN = os.environ["WARDEN_TOKEN"]
GATEWAY = os.environ["WARDEN_GATEWAY"]
BIN = os.environ["WARDEN_BIN"]
CONFIG = os.environ["WARDEN_CONFIG"]
CONN = os.environ["WARDEN_CONNECTION"]


def emit(step, is_error=None, data=None):
    print(json.dumps({"step": step, "is_error": is_error, "data": data}), flush=True)


def structured(result):
    if result.structuredContent is not None:
        return result.structuredContent
    text = "".join(c.text for c in result.content if getattr(c, "type", "") == "text")
    try:
        return json.loads(text)
    except ValueError:
        return {"text": text}


async def call(session, step, tool, args):
    result = await session.call_tool(tool, args)
    emit(step, bool(result.isError), structured(result))
    return result


def decide(verb, review, reason):
    """`warden reviews approve|reject` as the local operator, not as the agent."""
    run = subprocess.run(
        [BIN, "reviews", verb, review, "--reason", reason, "--config", CONFIG],
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if k not in ("WARDEN_TOKEN", "WARDEN_GATEWAY")},
    )
    return run.returncode != 0, {"stderr": run.stderr[-500:]}


async def wait_decided(session, review):
    """review_status until it is no longer pending (10 s at most)."""
    for _ in range(100):
        r = await session.call_tool("review_status", {"review_id": review})
        data = structured(r)
        if data.get("status") != "pending":
            break
        await asyncio.sleep(0.1)
    return r, data


def transport(mode, token):
    if mode == "stdio":
        env = dict(os.environ)
        env["WARDEN_TOKEN"] = token
        # The default log level is checked: `warden mcp` must keep the terminal quiet.
        env.pop("RUST_LOG", None)
        params = StdioServerParameters(
            command=BIN, args=["mcp", "--gateway", GATEWAY], env=env
        )
        return stdio_client(params)
    return streamablehttp_client(
        f"{GATEWAY}/mcp", headers={"Authorization": f"Bearer {token}"}
    )


async def session_steps(mode):
    async with transport(mode, TOKEN) as streams:
        read, write = streams[0], streams[1]
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            emit("initialize", False, {"server": init.serverInfo.name})
            tools = await session.list_tools()
            emit(
                "list_tools",
                False,
                {t.name: (t.description or "") for t in tools.tools},
            )
            await call(session, "list_connections", "list_connections", {})
            await call(
                session, "describe_tables", "describe", {"connection": CONN}
            )
            await call(
                session,
                "describe_customers",
                "describe",
                {"connection": CONN, "table": "customers"},
            )
            await call(
                session,
                "query_masked",
                "query",
                {
                    "connection": CONN,
                    "sql": "SELECT id, name, email FROM customers ORDER BY id",
                },
            )
            await call(
                session,
                "query_capped",
                "query",
                {
                    "connection": CONN,
                    "sql": "SELECT g FROM generate_series(1, 5) g",
                    "max_rows": 2,
                },
            )
            await call(
                session,
                "query_denied",
                "query",
                {"connection": CONN, "sql": "SELECT * FROM payroll"},
            )
            await call(
                session,
                "query_two_statements",
                "query",
                {"connection": CONN, "sql": "SELECT 1; SELECT 2"},
            )
            await call(
                session,
                "query_unknown_connection",
                "query",
                {"connection": "no_such_connection", "sql": "SELECT 1"},
            )
            await call(
                session,
                "query_malformed",
                "query",
                {"connection": CONN, "sql": "SELECT 1", "max_rows": "lots"},
            )
            await call(
                session,
                "query_unknown_field",
                "query",
                {"connection": CONN, "sql": "SELECT 1", "password": "x"},
            )
            await call(session, "describe_malformed", "describe", {})
            await call(session, "unknown_tool", "drop_everything", {})
            await call(
                session,
                "review_status_unknown",
                "review_status",
                {"review_id": "rv-nope"},
            )

            held = await call(
                session,
                "query_destructive",
                "query",
                {"connection": CONN, "sql": "DELETE FROM scratch"},
            )
            review = structured(held).get("review_id")
            await call(
                session, "review_status_pending", "review_status", {"review_id": review}
            )
            emit("approve", *decide("approve", review, "mcp test"))
            r, data = await wait_decided(session, review)
            emit("review_status_decided", bool(r.isError), data)
            if mode == "stdio":
                # The review lives in the gateway: another session, over HTTP, sees it.
                await other_session_review_status(review)
            await call(
                session, "query_by_review_id", "query", {"review_id": review}
            )

            # A rejected statement never runs; review_status says so.
            held = await call(
                session,
                "query_drop",
                "query",
                {"connection": CONN, "sql": "DROP TABLE scratch"},
            )
            review = structured(held).get("review_id")
            emit("reject", *decide("reject", review, "keep it"))
            r, data = await wait_decided(session, review)
            emit("review_status_rejected", bool(r.isError), data)


async def other_session_review_status(review):
    async with transport("http", TOKEN) as streams:
        async with ClientSession(streams[0], streams[1]) as session:
            await session.initialize()
            await call(
                session, "http_review_status", "review_status", {"review_id": review}
            )


async def bad_token(mode):
    try:
        async with transport(mode, "not-a-valid-token") as streams:
            read, write = streams[0], streams[1]
            async with ClientSession(read, write) as session:
                await session.initialize()
                result = await session.call_tool(
                    "query", {"connection": CONN, "sql": "SELECT 1"}
                )
                emit("bad_token", bool(result.isError), structured(result))
    except BaseException as e:  # the HTTP transport refuses before any tool runs
        text = repr(e)
        emit("bad_token", True, {"exception": text[:500]})


async def limits_steps():
    restricted = os.environ["WARDEN_RESTRICTED"]
    async with transport("http", TOKEN) as streams:
        async with ClientSession(streams[0], streams[1]) as session:
            await session.initialize()
            await call(
                session,
                "restricted_before",
                "query",
                {"connection": restricted, "sql": "SELECT 7 AS n"},
            )
            await call(
                session,
                "request_access_no_requests",
                "request_access",
                {"connection": CONN, "duration": "30m", "reason": "not needed"},
            )
            await call(
                session,
                "request_access_bad_duration",
                "request_access",
                {"connection": restricted, "duration": "forever", "reason": "x"},
            )
            await call(
                session,
                "request_access_missing_reason",
                "request_access",
                {"connection": restricted, "duration": "30m"},
            )
            r = await call(
                session,
                "request_access",
                "request_access",
                {"connection": restricted, "duration": "30m", "reason": "incident 42"},
            )
            request = structured(r).get("request_id")
            emit("approve_access", *decide("approve", request, "ok for the incident"))
            await call(
                session,
                "restricted_after",
                "query",
                {"connection": restricted, "sql": "SELECT 7 AS n"},
            )
            await call(session, "list_after", "list_connections", {})

            held = []
            for i in range(8):
                r = await call(
                    session,
                    f"held_{i}",
                    "query",
                    {"connection": CONN, "sql": "DELETE FROM scratch"},
                )
                held.append(structured(r).get("review_id"))
            await call(
                session,
                "held_9th",
                "query",
                {"connection": CONN, "sql": "DELETE FROM scratch"},
            )
    # The cap is per identity, not per session.
    async with transport("http", TOKEN) as streams:
        async with ClientSession(streams[0], streams[1]) as session:
            await session.initialize()
            await call(
                session,
                "held_9th_other_session",
                "query",
                {"connection": CONN, "sql": "TRUNCATE scratch"},
            )
            # Reads still run while the cap is reached.
            await call(
                session,
                "read_at_cap",
                "query",
                {"connection": CONN, "sql": "SELECT count(*) AS n FROM scratch"},
            )


async def main():
    mode = sys.argv[1]
    if mode == "limits":
        await limits_steps()
        print("DONE", flush=True)
        return
    await session_steps(mode)
    await asyncio.wait_for(bad_token(mode), 30)
    print("DONE", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
