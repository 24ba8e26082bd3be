#!/usr/bin/env python3
"""A CrewAI crew whose analyst reaches PostgreSQL only through Warden.

Three ways in, one pipeline behind them (identity, policy, approvals, masking, recording):

  --transport stdio     crewai spawns `warden mcp` and talks MCP over its stdin/stdout
  --transport http      crewai talks MCP to the gateway at <gateway>/mcp (streamable HTTP,
                        `Authorization: Bearer <token>` on every request)
  --transport postgres  a small custom tool (`warden_sql`) that opens a PostgreSQL session on
                        the gateway with psycopg, the agent's token as the password

The agent's token comes from $WARDEN_TOKEN and is never printed. `--dry-run` builds the
agent, the task, the crew and the tools exactly as a real run would, lists the tools, calls
`list_connections` (or `warden_sql`) directly and stops before anything needs a model.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from typing import Any

# Before crewai is imported: no telemetry, no tracing, no version check. Nothing in this
# example talks to anything but the gateway (and the model, in a real run).
for _key, _value in {
    "CREWAI_DISABLE_TELEMETRY": "true",
    "CREWAI_DISABLE_TRACKING": "true",
    "OTEL_SDK_DISABLED": "true",
    "CREWAI_TRACING_ENABLED": "false",
    "CREWAI_DISABLE_VERSION_CHECK": "true",
}.items():
    os.environ.setdefault(_key, _value)

import psycopg  # noqa: E402
from crewai import LLM, Agent, Crew, Process, Task  # noqa: E402
from crewai.mcp import MCPServerHTTP, MCPServerStdio  # noqa: E402
from crewai.tools import BaseTool  # noqa: E402
from crewai.tools.tool_failure import ToolFailure, ToolFailureReason  # noqa: E402
from pydantic import BaseModel, Field, PrivateAttr  # noqa: E402

DEFAULT_GATEWAY = "http://127.0.0.1:8080"
DEFAULT_CONNECTION = "local"
DEFAULT_QUESTION = (
    "Which tables exist on the connection, and how many rows does each have? "
    "Summarise one of them in two sentences."
)


def mcp_server(transport: str, token: str, gateway: str = DEFAULT_GATEWAY,
               warden: str = "warden") -> MCPServerStdio | MCPServerHTTP:
    """crewai's native MCP configuration for Warden over `transport` (stdio or http)."""
    gateway = gateway.rstrip("/")
    if transport == "stdio":
        # The token goes in the child's environment, not its arguments (which `ps` shows).
        # The arguments stay short: crewai prefixes every tool name with them.
        return MCPServerStdio(command=warden, args=["mcp", "--gateway", gateway],
                              env={"WARDEN_TOKEN": token})
    if transport == "http":
        return MCPServerHTTP(url=f"{gateway}/mcp",
                             headers={"Authorization": f"Bearer {token}"},
                             streamable=True)
    raise ValueError(f"unknown MCP transport {transport!r} (stdio or http)")


def native_http_works() -> bool:
    """Whether crewai's native streamable-HTTP tools can be called on this Python.

    crewai 1.15 enters the MCP HTTP client inside `asyncio.wait_for` and leaves it in the
    calling task; before Python 3.12, wait_for runs the coroutine in a task of its own, so
    every tool call fails at disconnect ("Attempted to exit cancel scope in a different
    task"), whatever the server. crewai-tools' MCPServerAdapter keeps one session in a
    thread of its own and is not affected, so it is the default there.
    """
    return sys.version_info >= (3, 12)


def mcp_adapter(stack: contextlib.ExitStack, transport: str, token: str,
                gateway: str = DEFAULT_GATEWAY, warden: str = "warden") -> list[BaseTool]:
    """crewai-tools' MCPServerAdapter for Warden over `transport`: its tools, with the
    session closed when `stack` closes."""
    from crewai_tools import MCPServerAdapter
    from mcp import StdioServerParameters

    gateway = gateway.rstrip("/")
    params: Any
    if transport == "stdio":
        params = StdioServerParameters(command=warden, args=["mcp", "--gateway", gateway],
                                       env={"WARDEN_TOKEN": token,
                                            "PATH": os.environ.get("PATH", "")})
    elif transport == "http":
        params = {"url": f"{gateway}/mcp", "transport": "streamable-http",
                  "headers": {"Authorization": f"Bearer {token}"}}
    else:
        raise ValueError(f"unknown MCP transport {transport!r} (stdio or http)")
    adapter = MCPServerAdapter(params, connect_timeout=30)
    stack.callback(adapter.stop)
    return list(adapter.tools)


class SqlInput(BaseModel):
    """Arguments of `warden_sql`."""

    sql: str = Field(..., description="Exactly one SQL statement.")


class WardenSqlTool(BaseTool):
    """One SQL statement on a Warden connection over PostgreSQL, the agent's token as the
    password. The gateway applies the same controls as on the MCP path; this tool only
    reports what it answers."""

    name: str = "warden_sql"
    description: str = (
        "Run exactly one SQL statement on the database through the Warden gateway and get "
        "the rows back as JSON (columns, rows, row_count, truncated). Warden decides what "
        "you may do: some columns come back masked (for example '****'), some statements "
        "are refused with SQLSTATE 42501, and destructive ones (DROP, TRUNCATE, DELETE "
        "without WHERE) wait for a human's approval. Do not try to work around a refusal "
        "or a mask."
    )
    args_schema: type[BaseModel] = SqlInput
    max_rows: int = 200
    _conninfo: dict[str, Any] = PrivateAttr(default_factory=dict)

    def __init__(self, *, host: str, port: int, connection: str, token: str,
                 user: str = "crew-analyst", sslmode: str = "prefer", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # Kept out of the model's fields so that no repr or description ever shows the token.
        self._conninfo = {"host": host, "port": port, "dbname": connection, "user": user,
                          "password": token, "sslmode": sslmode, "connect_timeout": 10,
                          "application_name": "crewai-warden-example"}

    def _run(self, sql: str) -> Any:
        try:
            with psycopg.connect(autocommit=True, **self._conninfo) as conn:
                cur = conn.execute(sql)
                if cur.description is None:
                    return json.dumps({"columns": [], "rows": [], "row_count": cur.rowcount,
                                       "truncated": False,
                                       "command_tag": cur.statusmessage})
                columns = [c.name for c in cur.description]
                rows = cur.fetchmany(self.max_rows + 1)
                truncated = len(rows) > self.max_rows
                rows = rows[: self.max_rows]
                return json.dumps({"columns": columns, "rows": [list(r) for r in rows],
                                   "row_count": len(rows), "truncated": truncated,
                                   "command_tag": cur.statusmessage}, default=str)
        except psycopg.Error as e:
            # The agent sees Warden's answer (SQLSTATE and message); a refusal is a result to
            # reason about, not a crash.
            # A refused login has no SQLSTATE in libpq's report: 08001 and the gateway's text.
            diag = getattr(e, "diag", None)
            code = (diag.sqlstate if diag else None) or getattr(e, "sqlstate", None) or "08001"
            message = (diag.message_primary if diag else None) or str(e).strip()
            return ToolFailure(message=f"{code}: {message}",
                               reason=ToolFailureReason.TOOL_REPORTED,
                               details={"sqlstate": code})


def postgres_tool(token: str, pg: str = "127.0.0.1:15432", connection: str = DEFAULT_CONNECTION,
                  sslmode: str = "require", user: str = "crew-analyst") -> WardenSqlTool:
    """The psycopg tool for the gateway's PostgreSQL listener at `pg` (host:port)."""
    host, _, port = pg.rpartition(":")
    return WardenSqlTool(host=host or "127.0.0.1", port=int(port), connection=connection,
                         token=token, user=user, sslmode=sslmode)


def build_crew(*, transport: str, token: str, connection: str = DEFAULT_CONNECTION,
               gateway: str = DEFAULT_GATEWAY, warden: str = "warden",
               pg: str = "127.0.0.1:15432", sslmode: str = "require",
               question: str = DEFAULT_QUESTION, model: str | None = None,
               mcp_client: str = "auto", stack: contextlib.ExitStack | None = None,
               ) -> tuple[Crew, Agent]:
    """The crew: one analyst with Warden's tools (MCP or `warden_sql`) and one task.

    `mcp_client` is `native` (crewai's `mcps=`, connected at kickoff), `adapter`
    (crewai-tools' MCPServerAdapter, connected now and closed with `stack`) or `auto`
    (native, except the adapter for HTTP where native calls fail; see native_http_works).
    """
    mcps: list[Any] = []
    tools: list[BaseTool] = []
    if mcp_client == "auto":
        mcp_client = "adapter" if transport == "http" and not native_http_works() else "native"
    if transport in ("stdio", "http") and mcp_client == "native":
        mcps.append(mcp_server(transport, token, gateway, warden))
    elif transport in ("stdio", "http") and mcp_client == "adapter":
        if stack is None:
            raise ValueError("the MCPServerAdapter needs an ExitStack to close its session")
        tools += mcp_adapter(stack, transport, token, gateway, warden)
    elif transport in ("stdio", "http"):
        raise ValueError(f"unknown MCP client {mcp_client!r} (native, adapter or auto)")
    elif transport == "postgres":
        tools.append(postgres_tool(token, pg, connection, sslmode))
    else:
        raise ValueError(f"unknown transport {transport!r} (stdio, http or postgres)")
    llm = LLM(model=model or os.environ.get("MODEL", "openai/gpt-4o-mini"),
              # A dry run never calls the model; the placeholder only lets the LLM object
              # be built without a key.
              api_key=os.environ.get("OPENAI_API_KEY") or "no-key-dry-run")
    analyst = Agent(
        role="Data analyst",
        goal=f"Answer questions from the data on the Warden connection '{connection}'.",
        backstory=(
            "You reach the database only through Warden, which knows who you are. Masked "
            "values stay masked; a refused statement stays refused; a statement pending "
            "review waits for a human — report it and move on."
        ),
        llm=llm,
        mcps=mcps,
        tools=tools,
        allow_delegation=False,
        verbose=True,
    )
    task = Task(description=f"On connection '{connection}': {question}",
                expected_output="A short answer with the SQL you ran.", agent=analyst)
    crew = Crew(agents=[analyst], tasks=[task], process=Process.sequential, verbose=True)
    return crew, analyst


def crew_tools(agent: Agent) -> list[BaseTool]:
    """The tools the agent gets at kickoff: its own plus those crewai builds from `mcps`."""
    tools = list(agent.tools or [])
    if agent.mcps:
        tools += agent.get_mcp_tools(agent.mcps)
    return tools


def tool_named(tools: list[BaseTool], name: str) -> BaseTool:
    """The tool whose MCP name (or crewai name) is `name`; crewai prefixes MCP tools with
    the server's name."""
    for t in tools:
        if getattr(t, "original_tool_name", None) == name or t.name == name:
            return t
    raise LookupError(f"no tool {name!r} among {[t.name for t in tools]}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--transport", choices=["stdio", "http", "postgres"], default="stdio")
    ap.add_argument("--connection", default=DEFAULT_CONNECTION,
                    help="the Warden connection name (default: local, as `warden up` makes)")
    ap.add_argument("--gateway", default=DEFAULT_GATEWAY, help="the gateway's HTTP address")
    ap.add_argument("--warden", default="warden", help="the warden binary (stdio transport)")
    ap.add_argument("--pg", default="127.0.0.1:15432",
                    help="the gateway's PostgreSQL listener (postgres transport)")
    ap.add_argument("--sslmode", default="require",
                    help="libpq sslmode for the postgres transport (`warden up` serves TLS)")
    ap.add_argument("--question", default=DEFAULT_QUESTION)
    ap.add_argument("--model", default=None, help="LiteLLM-style model name (default $MODEL)")
    ap.add_argument("--mcp-client", choices=["auto", "native", "adapter"], default="auto",
                    help="crewai's native mcps= or crewai-tools' MCPServerAdapter (default: "
                         "native; the adapter for http before Python 3.12)")
    ap.add_argument("--dry-run", action="store_true",
                    help="build everything and call one tool directly; no model needed")
    ap.add_argument("--sql", default=None,
                    help="with --dry-run: also run this statement through the query tool")
    args = ap.parse_args()

    token = os.environ.get("WARDEN_TOKEN", "").strip()
    if not token:
        print("set WARDEN_TOKEN to the agent's token "
              "(warden tokens issue --name crew-analyst --groups local-users --ttl 1h)",
              file=sys.stderr)
        return 2

    with contextlib.ExitStack() as stack:
        return run(args, token, stack)


def run(args: argparse.Namespace, token: str, stack: contextlib.ExitStack) -> int:
    """Builds the crew and kicks it off, or (--dry-run) calls one tool directly."""
    crew, analyst = build_crew(transport=args.transport, token=token,
                               connection=args.connection, gateway=args.gateway,
                               warden=args.warden, pg=args.pg, sslmode=args.sslmode,
                               question=args.question, model=args.model,
                               mcp_client=args.mcp_client, stack=stack)
    if not args.dry_run:
        print(crew.kickoff())
        return 0

    tools = crew_tools(analyst)
    print(f"crew: {len(crew.agents)} agent, {len(crew.tasks)} task; "
          f"{len(tools)} tools via {args.transport}:")
    for t in tools:
        print(f"  - {t.name}")
    if args.transport == "postgres":
        sql_tool = tool_named(tools, "warden_sql")
        print("warden_sql(SELECT current_database()) ->",
              sql_tool.run(sql="SELECT current_database()"))
        if args.sql:
            print(f"warden_sql({args.sql}) ->", sql_tool.run(sql=args.sql))
    else:
        print("list_connections ->", tool_named(tools, "list_connections").run())
        if args.sql:
            out = tool_named(tools, "query").run(connection=args.connection, sql=args.sql)
            print(f"query({args.sql}) ->", out)
    print("dry run: stopped before the model")
    return 0


if __name__ == "__main__":
    sys.exit(main())
