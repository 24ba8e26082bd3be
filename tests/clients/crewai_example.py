#!/usr/bin/env python3
"""The CrewAI example's tool layer against a real gateway, without a model.

Builds the crew from examples/crewai/crew.py and the tool objects crewai builds from
Warden's MCP server (crewai's native `mcps=` over stdio and streamable HTTP, and crewai-tools'
MCPServerAdapter), plus the example's psycopg tool, and calls them: list_connections, query
with masking applied, a refused statement, a held DROP, a bad token.

Usage: crewai_example.py postgres|mcp. Environment: WARDEN_TOKEN (the agent's token),
WARDEN_GATEWAY (http://127.0.0.1:PORT), WARDEN_PG (127.0.0.1:PORT), WARDEN_CONNECTION,
WARDEN_OTHER_CONNECTION (one the token may not use); `warden` must be on PATH.
Prints "OK <step>" lines and "OK all"; never prints the token. Any attempt to open a
socket to anything but loopback fails the run.
"""

import contextlib
import ipaddress
import json
import os
import sys
import tempfile

# crewai stays offline: no telemetry, tracing or version check, and its storage in a
# throw-away directory.
os.environ.update({
    "CREWAI_DISABLE_TELEMETRY": "true",
    "CREWAI_DISABLE_TRACKING": "true",
    "OTEL_SDK_DISABLED": "true",
    "CREWAI_TRACING_ENABLED": "false",
    "CREWAI_DISABLE_VERSION_CHECK": "true",
    "CREWAI_STORAGE_DIR": tempfile.mkdtemp(prefix="crewai-test-"),
})
os.environ.pop("OPENAI_API_KEY", None)

OFF_LOOPBACK = []


def _loopback(host):
    if host in (None, "", "localhost", b"localhost"):
        return True
    if isinstance(host, bytes):
        host = host.decode()
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def _guard(event, args):
    # Every TCP connect and name lookup in this process (any thread) must stay on loopback.
    if event == "socket.connect":
        addr = args[1]
        if isinstance(addr, tuple) and not _loopback(addr[0]):
            OFF_LOOPBACK.append(f"connect {addr!r}")
            raise ConnectionRefusedError(f"test guard: {addr!r} is not loopback")
    elif event == "socket.getaddrinfo":
        if not _loopback(args[0]):
            OFF_LOOPBACK.append(f"getaddrinfo {args[0]!r}")
            raise OSError(f"test guard: lookup of {args[0]!r}")


sys.addaudithook(_guard)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "examples", "crewai"))

import crew as example  # noqa: E402
from crewai.tools.tool_failure import ToolFailure  # noqa: E402

SECRETS = ["alice@example.com", "bob@example.org", "123-45-6789"]
MASK = "****"
SELECT = "SELECT id, name, email, ssn FROM customers ORDER BY id"


def ok(step):
    print(f"OK {step}", flush=True)


def text(out):
    return out.message if isinstance(out, ToolFailure) else str(out)


def as_json(out):
    if isinstance(out, ToolFailure):
        return None
    try:
        return json.loads(out)
    except (TypeError, ValueError):
        return None


def check_masked(out, what):
    body = text(out)
    assert not isinstance(out, ToolFailure), f"{what}: tool failed: {body}"
    for s in SECRETS:
        assert s not in body, f"{what} leaked {s!r}: {body}"
    result = as_json(out)
    assert result is not None, f"{what}: not a JSON result: {body}"
    assert result["columns"] == ["id", "name", "email", "ssn"], f"{what}: {body}"
    rows = result["rows"]
    assert len(rows) == 2 and result["row_count"] == 2, f"{what}: {body}"
    assert rows[0][1] == "Alice" and rows[1][1] == "Bob", f"unmasked columns pass: {body}"
    for row in rows:
        assert MASK in str(row[2]) and MASK in str(row[3]), f"{what}: not masked: {body}"
    assert result.get("truncated") is False, f"{what}: {body}"


def failure_text(out):
    """The error an agent sees, or None: crewai's native tools turn MCP `isError` into a
    ToolFailure; MCPServerAdapter hands over the text, Warden's `{"error": {...}}` JSON."""
    if isinstance(out, ToolFailure):
        return out.message
    result = as_json(out)
    if isinstance(result, dict) and "error" in result:
        return str(out)
    return None


def check_refused(out, what):
    message = failure_text(out)
    assert message is not None, f"{what}: not reported as a failure: {out!r}"
    assert "42501" in message, f"{what}: no SQLSTATE 42501: {message}"
    assert "off limits" in message, f"{what}: the rule's message is lost: {message}"


def env():
    return (os.environ["WARDEN_TOKEN"], os.environ["WARDEN_GATEWAY"],
            os.environ["WARDEN_CONNECTION"], os.environ["WARDEN_OTHER_CONNECTION"])


def run_postgres():
    token, _, conn, _ = env()
    pg = os.environ["WARDEN_PG"]
    crew, agent = example.build_crew(transport="postgres", token=token, connection=conn,
                                     pg=pg, sslmode="disable")
    tools = example.crew_tools(agent)
    assert [t.name for t in tools] == ["warden_sql"], [t.name for t in tools]
    assert token not in repr(tools[0]) and token not in tools[0].description
    assert len(crew.agents) == 1 and len(crew.tasks) == 1
    ok("postgres: crew built with warden_sql, the token kept out of its repr")
    sql = example.tool_named(tools, "warden_sql")
    check_masked(sql.run(sql=SELECT), "warden_sql")
    ok("postgres: warden_sql returns masked rows")
    check_refused(sql.run(sql="SELECT * FROM payroll"), "warden_sql payroll")
    ok("postgres: warden_sql reports a refusal as a tool failure")
    bad = example.postgres_tool("not-a-token", pg, conn, sslmode="disable")
    out = bad.run(sql="SELECT 1")
    assert isinstance(out, ToolFailure) and "access token" in out.message, text(out)
    assert "not-a-token" not in out.message, out.message
    ok("postgres: a bad token is refused")


WANTED = {"list_connections", "describe", "query", "request_access", "review_status"}


def build(stack, transport, client, token):
    _, gateway, conn, _ = env()
    crew, agent = example.build_crew(transport=transport, token=token, connection=conn,
                                     gateway=gateway, warden="warden", mcp_client=client,
                                     stack=stack)
    assert len(crew.agents) == 1 and len(crew.tasks) == 1
    assert len(agent.mcps or []) == (1 if client == "native" else 0)
    return example.crew_tools(agent)


def check_tools(label, tools, token):
    names = {getattr(t, "original_tool_name", t.name) for t in tools}
    assert WANTED <= names, f"{label}: tools {sorted(names)}"
    for t in tools:
        assert t.description.strip(), f"{t.name} has no description"
        assert token not in t.description and token not in repr(t)
    ok(f"{label}: crewai built {len(tools)} tools from Warden's MCP server: "
       + ", ".join(sorted(names)))


def call_through(label, tools):
    _, _, conn, other = env()
    out = example.tool_named(tools, "list_connections").run()
    assert failure_text(out) is None, text(out)
    listed = [c["name"] for c in as_json(out)["connections"]]
    assert conn in listed and other not in listed, text(out)
    ok(f"{label}: list_connections names {conn} and not {other}")

    query = example.tool_named(tools, "query")
    check_masked(query.run(connection=conn, sql=SELECT), f"{label} query")
    ok(f"{label}: query returns masked rows")
    check_refused(query.run(connection=conn, sql="SELECT * FROM payroll"),
                  f"{label} query payroll")
    ok(f"{label}: a refused statement is a tool failure with its SQLSTATE")
    out = query.run(connection=other, sql="SELECT 1")
    message = failure_text(out)
    assert message is not None and "42501" in message, f"{label}: {other}: {text(out)}"
    ok(f"{label}: a connection the token may not use is a tool failure")


def bad_token(transport):
    _, _, conn, _ = env()
    with contextlib.ExitStack() as stack:
        try:
            tools = build(stack, transport, "native", "not-a-token")
        except Exception as e:  # crewai raises MCPConnectionError when the server refuses
            ok(f"{transport}: a bad token is refused when crewai connects "
               f"({type(e).__name__})")
            return
        # The server may start and refuse each call instead; either way no data comes back.
        out = example.tool_named(tools, "list_connections").run()
        message = failure_text(out)
        assert message is not None and f'"{conn}"' not in message, text(out)
        assert "not-a-token" not in message, message
        ok(f"{transport}: a bad token is refused on the first call")


def run_mcp():
    token, _, conn, _ = env()
    combos = [("stdio", "native"), ("stdio", "adapter"), ("http", "adapter"),
              ("http", "native")]
    http_tools = None
    for transport, client in combos:
        label = f"{transport}/{client}"
        with contextlib.ExitStack() as stack:
            tools = build(stack, transport, client, token)
            check_tools(label, tools, token)
            if (transport, client) == ("http", "native") and not example.native_http_works():
                # crewai's bug on Python < 3.12 (see crew.native_http_works): the tools are
                # built (discovery works), calls go through the adapter instead.
                ok(f"{label}: calls skipped on Python "
                   f"{sys.version_info.major}.{sys.version_info.minor}")
                continue
            call_through(label, tools)
            if transport == "http" and (client == "native") == example.native_http_works():
                # A destructive statement is held for review: a structured answer at once.
                out = example.tool_named(tools, "query").run(connection=conn,
                                                             sql="DROP TABLE scratch")
                result = as_json(out)
                assert result and result.get("status") == "pending_review" \
                    and result.get("review_id"), text(out)
                http_tools = result["review_id"]
                ok("http: DROP comes back pending_review with a review id")
    assert http_tools, "no pending review"
    print(f"REVIEW {http_tools}", flush=True)
    for transport in ("stdio", "http"):
        bad_token(transport)


def main():
    parts = sys.argv[1:] or ["postgres", "mcp"]
    for part in parts:
        {"postgres": run_postgres, "mcp": run_mcp}[part]()
    assert not OFF_LOOPBACK, f"non-loopback network use: {OFF_LOOPBACK}"
    ok("nothing left loopback")
    ok("all")


if __name__ == "__main__":
    main()
