#!/usr/bin/env python3
"""Per-call latency of one small query (10 rows x 3 columns): directly on PostgreSQL,
through Warden's PostgreSQL listener, and through Warden's MCP `query` tool over streamable
HTTP and over stdio (`warden mcp`, a relay to /mcp). Sequential calls on one open
connection or MCP session; warm-up calls are not counted. Driven by bench/mcp.sh.

Env: DIRECT_DSN, WARDEN_DSN, WARDEN_GATEWAY (http://127.0.0.1:port), WARDEN_TOKEN,
WARDEN_BIN, CONNECTION, CALLS (default 300).
"""
import asyncio
import os
import statistics
import time

import psycopg
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamablehttp_client

CALLS = int(os.environ.get("CALLS", "300"))
WARMUP = 20
SQL = "SELECT id, name, email FROM bench_people ORDER BY id"


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def pg(dsn):
    out = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        for i in range(CALLS + WARMUP):
            t = time.perf_counter()
            rows = conn.execute(SQL).fetchall()
            if i >= WARMUP:
                out.append((time.perf_counter() - t) * 1000)
            assert len(rows) == 10
    return out


async def mcp(transport):
    out = []
    async with transport as streams:
        async with ClientSession(streams[0], streams[1]) as session:
            await session.initialize()
            args = {"connection": os.environ["CONNECTION"], "sql": SQL}
            for i in range(CALLS + WARMUP):
                t = time.perf_counter()
                r = await session.call_tool("query", args)
                if i >= WARMUP:
                    out.append((time.perf_counter() - t) * 1000)
                assert not r.isError and r.structuredContent["row_count"] == 10, r
    return out


def main():
    gateway = os.environ["WARDEN_GATEWAY"]
    token = os.environ["WARDEN_TOKEN"]
    http = streamablehttp_client(f"{gateway}/mcp", headers={"Authorization": f"Bearer {token}"})
    stdio = stdio_client(
        StdioServerParameters(
            command=os.environ["WARDEN_BIN"],
            args=["mcp", "--gateway", gateway],
            env={"WARDEN_TOKEN": token, "PATH": os.environ.get("PATH", "")},
        )
    )
    results = [
        ("direct (psycopg)", pg(os.environ["DIRECT_DSN"])),
        ("Warden PostgreSQL (psycopg)", pg(os.environ["WARDEN_DSN"])),
        ("Warden MCP over HTTP", asyncio.run(mcp(http))),
        ("Warden MCP over stdio", asyncio.run(mcp(stdio))),
    ]
    base = statistics.median(results[0][1])
    print(f"calls: {CALLS} each, sequential, one connection or session")
    for name, xs in results:
        m = statistics.median(xs)
        print(
            f"{name:30s} median {m:6.2f} ms  p90 {pct(xs, 90):6.2f} ms  p99 {pct(xs, 99):6.2f} ms"
            f"  ({m / base:5.1f}x direct)"
        )


if __name__ == "__main__":
    main()
