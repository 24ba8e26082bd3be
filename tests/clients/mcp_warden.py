"""Drives Warden's MCP server with the Python `mcp` client (the version CrewAI 1.15 uses).

Usage: mcp_warden.py stdio|http

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
        env["RUST_LOG"] = "warn"
        params = StdioServerParameters(
            command=BIN, args=["mcp", "--gateway", GATEWAY, "--config", CONFIG], env=env
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


async def main():
    mode = sys.argv[1]
    await session_steps(mode)
    await asyncio.wait_for(bad_token(mode), 30)
    print("DONE", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
