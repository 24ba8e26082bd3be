//! The MCP tools: argument checking, the calls into the gateway, and the JSON results.
//! A refusal or a bad argument is a tool error (`isError: true`) the model can read, never
//! a protocol error.

use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, Implementation, ListToolsResult,
    PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use warden_pg::mask::rules::MaskRules;

use crate::pg::{self, Outcome, Started};
use crate::{Caller, HeldState, Shared, ToolEvent};

/// Default and largest `max_rows`.
const DEFAULT_ROWS: usize = 100;
const MAX_ROWS: usize = 1000;

/// The MCP server for one session over the shared state; each request carries its caller,
/// verified by the HTTP layer.
#[derive(Clone)]
pub struct WardenMcp {
    shared: Arc<Shared>,
}

impl WardenMcp {
    /// A server over `shared`.
    pub fn new(shared: Arc<Shared>) -> WardenMcp {
        WardenMcp { shared }
    }

    fn caller(&self, ctx: &RequestContext<RoleServer>) -> Result<Caller, Answer> {
        ctx.extensions
            .get::<http::request::Parts>()
            .and_then(|p| p.extensions.get::<Caller>())
            .cloned()
            .ok_or_else(|| Answer::bad("unauthenticated", "no verified caller"))
    }
}

fn schema(v: Value) -> Arc<Map<String, Value>> {
    match v {
        Value::Object(m) => Arc::new(m),
        _ => Arc::new(Map::new()),
    }
}

/// The tools, as listed.
pub fn tools() -> Vec<Tool> {
    vec![
        Tool::new(
            "list_connections",
            "List the Warden database connections you can use or ask access to. Each entry \
             says whether you may query it now (`allowed`) and whether access can be requested. \
             Use a connection's `name` in the other tools.",
            schema(json!({"type": "object", "properties": {}, "additionalProperties": false})),
        ),
        Tool::new(
            "describe",
            "Describe a connection's database through Warden: without `table`, its tables and \
             views (optionally in one `schema`); with `table`, its columns and types. Columns \
             Warden masks are marked `masked: true` (you will only ever see masked values for \
             them). Only what your identity may read is shown.",
            schema(json!({
                "type": "object",
                "properties": {
                    "connection": {"type": "string", "description": "Connection name from list_connections"},
                    "schema": {"type": "string", "description": "Schema to list (default: all non-system schemas)"},
                    "table": {"type": "string", "description": "Table or view whose columns to list"}
                },
                "required": ["connection"],
                "additionalProperties": false
            })),
        ),
        Tool::new(
            "query",
            "Run ONE SQL statement on a connection through Warden, as you: your permissions, \
             Warden's policy and masking apply, and the statement is recorded. Multiple \
             statements in one call are refused. Statements Warden considers risky \
             (destructive writes, DDL) are held for a human reviewer: you then get \
             {status: \"pending_review\", review_id} at once — do not retry; call review_status \
             (or query with review_id) later to get the result once a human approves. A \
             statement Warden denies comes back as an error with its SQLSTATE; do not try to \
             work around a denial. Results: column names, rows (at most max_rows, default 100, \
             max 1000) and `truncated`.",
            schema(json!({
                "type": "object",
                "properties": {
                    "connection": {"type": "string", "description": "Connection name from list_connections"},
                    "sql": {"type": "string", "description": "Exactly one SQL statement"},
                    "max_rows": {"type": "integer", "minimum": 1, "maximum": 1000, "description": "Row cap (default 100)"},
                    "review_id": {"type": "string", "description": "Instead of sql: the review id of a held statement, to get its outcome"}
                },
                "additionalProperties": false
            })),
        ),
        Tool::new(
            "request_access",
            "Ask for time-bound access to a connection you may not use yet (list_connections \
             says which take requests). A human approves or rejects it; you get the request id \
             and status now. Access is not granted until approved.",
            schema(json!({
                "type": "object",
                "properties": {
                    "connection": {"type": "string", "description": "Connection name"},
                    "duration": {"type": "string", "description": "How long, like 30m or 2h"},
                    "reason": {"type": "string", "description": "Why you need access (shown to approvers)"}
                },
                "required": ["connection", "duration", "reason"],
                "additionalProperties": false
            })),
        ),
        Tool::new(
            "review_status",
            "The status of a statement held for review (the review_id a query returned): \
             pending, approved (with the statement's result: it ran exactly once, when \
             approved), rejected, or expired. Does not approve anything.",
            schema(json!({
                "type": "object",
                "properties": {
                    "review_id": {"type": "string", "description": "The review id (rv-…)"}
                },
                "required": ["review_id"],
                "additionalProperties": false
            })),
        ),
    ]
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DescribeArgs {
    connection: String,
    schema: Option<String>,
    table: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QueryArgs {
    connection: Option<String>,
    sql: Option<String>,
    max_rows: Option<i64>,
    review_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccessArgs {
    connection: String,
    duration: String,
    reason: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReviewArgs {
    review_id: String,
}

/// A tool's answer before it becomes a [`CallToolResult`]: the JSON, whether it is an
/// error, and the decision for the audit.
struct Answer {
    value: Value,
    error: bool,
    decision: String,
}

impl Answer {
    fn ok(value: Value) -> Answer {
        Answer {
            value,
            error: false,
            decision: "ok".into(),
        }
    }

    /// A tool error: `{error: {code, message}}`.
    fn bad(code: &str, message: impl Into<String>) -> Answer {
        let message = message.into();
        Answer {
            decision: format!("{code}: {message}"),
            value: json!({"error": {"code": code, "message": message}}),
            error: true,
        }
    }

    fn refused(e: &pg::PgError) -> Answer {
        Answer {
            value: e.to_json(),
            error: true,
            decision: format!("{} {}", e.sqlstate, e.message),
        }
    }
}

fn parse<T: for<'de> Deserialize<'de>>(args: &Value) -> Result<T, Answer> {
    serde_json::from_value(args.clone())
        .map_err(|e| Answer::bad("invalid_arguments", format!("invalid arguments: {e}")))
}

/// A name fit to send as `dbname` or in a URL path.
fn check_name(what: &str, v: &str) -> Result<(), Answer> {
    if v.is_empty() || v.len() > 256 || v.chars().any(char::is_control) {
        return Err(Answer::bad(
            "invalid_arguments",
            format!("{what} must be a non-empty name without control characters"),
        ));
    }
    Ok(())
}

/// `'text'` as an SQL literal (standard_conforming_strings).
fn literal(v: &str) -> String {
    format!("'{}'", v.replace('\'', "''"))
}

impl WardenMcp {
    async fn dispatch(&self, tool: &str, args: &Value, caller: &Caller) -> Answer {
        let r = match tool {
            "list_connections" => self.list_connections(args, caller).await,
            "describe" => self.describe(args, caller).await,
            "query" => self.query(args, caller).await,
            "request_access" => self.request_access(args, caller).await,
            "review_status" => self.review_status(args, caller).await,
            _ => Err(Answer::bad(
                "unknown_tool",
                format!("no tool named {tool:?}"),
            )),
        };
        r.unwrap_or_else(|a| a)
    }

    async fn list_connections(&self, args: &Value, caller: &Caller) -> Result<Answer, Answer> {
        if !args.as_object().is_some_and(|o| o.is_empty()) {
            return Err(Answer::bad(
                "invalid_arguments",
                "list_connections takes no arguments",
            ));
        }
        let list = self.api_get("/api/v1/connections", caller).await?;
        let conns: Vec<Value> = list
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|c| {
                        json!({
                            "name": c["name"],
                            "allowed": c["allowed"],
                            "access_until": c["access_until"],
                            "access_requests": c["access_requests"],
                            "credentials": c["credentials"],
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(Answer::ok(json!({ "connections": conns })))
    }

    async fn describe(&self, args: &Value, caller: &Caller) -> Result<Answer, Answer> {
        let a: DescribeArgs = parse(args)?;
        check_name("connection", &a.connection)?;
        for v in [&a.schema, &a.table].into_iter().flatten() {
            check_name("schema and table", v)?;
        }
        let schema_filter = match &a.schema {
            Some(s) => format!("table_schema = {}", literal(s)),
            None => "table_schema NOT IN ('pg_catalog', 'information_schema') AND table_schema NOT LIKE 'pg\\_%'".into(),
        };
        let app = "warden-mcp describe";
        match &a.table {
            None => {
                let sql = format!(
                    "SELECT table_schema, table_name, table_type FROM information_schema.tables WHERE {schema_filter} ORDER BY 1, 2"
                );
                let rows = self.catalog(&a.connection, &sql, caller, app).await?;
                let tables: Vec<Value> = rows
                    .rows
                    .iter()
                    .map(|r| {
                        json!({
                            "schema": r.first().cloned().flatten(),
                            "name": r.get(1).cloned().flatten(),
                            "type": r.get(2).cloned().flatten(),
                        })
                    })
                    .collect();
                Ok(Answer::ok(
                    json!({"connection": a.connection, "tables": tables, "truncated": rows.truncated}),
                ))
            }
            Some(t) => {
                let sql = format!(
                    "SELECT table_schema, table_name, column_name, data_type, is_nullable FROM information_schema.columns WHERE {schema_filter} AND table_name = {} ORDER BY table_schema, ordinal_position",
                    literal(t)
                );
                let rows = self.catalog(&a.connection, &sql, caller, app).await?;
                if rows.rows.is_empty() {
                    return Err(Answer::bad(
                        "not_found",
                        format!("no table {t:?} visible to you on {:?}", a.connection),
                    ));
                }
                let rules = self.shared.settings.masking.get(&a.connection);
                let columns: Vec<Value> = rows
                    .rows
                    .iter()
                    .map(|r| {
                        let get = |i: usize| r.get(i).cloned().flatten().unwrap_or_default();
                        let (s, tb, c) = (get(0), get(1), get(2));
                        let mask = rules
                            .map(|rs| masked_by(rs, caller, &s, &tb, &c))
                            .unwrap_or_default();
                        let mut col = json!({
                            "schema": s, "table": tb, "name": c,
                            "type": get(3), "nullable": get(4) == "YES",
                            "masked": !mask.is_empty(),
                        });
                        if !mask.is_empty() {
                            col["masking_rules"] = mask.into();
                        }
                        col
                    })
                    .collect();
                Ok(Answer::ok(json!({
                    "connection": a.connection,
                    "table": t,
                    "columns": columns,
                    "masking_known": rules.is_some(),
                })))
            }
        }
    }

    /// Runs a catalog query through the gateway; a hold (unlikely for a catalog read) is
    /// reported and the held connection dropped, which withdraws it.
    async fn catalog(
        &self,
        connection: &str,
        sql: &str,
        caller: &Caller,
        app: &str,
    ) -> Result<pg::Rows, Answer> {
        let login = pg::Login {
            addr: self.shared.settings.postgres,
            connection,
            token: &caller.token,
            application_name: app,
        };
        match pg::run(&login, sql, MAX_ROWS).await {
            Ok(Started::Finished(Outcome::Done(rows))) => Ok(rows),
            Ok(Started::Finished(Outcome::Refused(e))) => Err(Answer::refused(&e)),
            Ok(Started::Held { review_id, .. }) => Err(Answer::bad(
                "held",
                format!("Warden held the catalog query for review {review_id}; withdrawn"),
            )),
            Err(e) => Err(Answer::bad("gateway_unavailable", format!("{e:#}"))),
        }
    }

    async fn query(&self, args: &Value, caller: &Caller) -> Result<Answer, Answer> {
        let a: QueryArgs = parse(args)?;
        if let Some(id) = &a.review_id {
            if a.sql.is_some() {
                return Err(Answer::bad(
                    "invalid_arguments",
                    "give either sql or review_id, not both",
                ));
            }
            return self
                .review_status(&json!({ "review_id": id }), caller)
                .await;
        }
        let (Some(connection), Some(sql)) = (a.connection, a.sql) else {
            return Err(Answer::bad(
                "invalid_arguments",
                "query needs connection and sql (or review_id)",
            ));
        };
        check_name("connection", &connection)?;
        let max_rows = match a.max_rows {
            None => DEFAULT_ROWS,
            Some(n) if (1..=MAX_ROWS as i64).contains(&n) => n as usize,
            Some(_) => {
                return Err(Answer::bad(
                    "invalid_arguments",
                    format!("max_rows must be between 1 and {MAX_ROWS}"),
                ))
            }
        };
        if sql.contains('\0') {
            return Err(Answer::bad("invalid_arguments", "sql contains a NUL byte"));
        }
        let analysis = warden_policy::statement::analyze_uncached(&sql);
        match analysis.statements.len() {
            0 => return Err(Answer::bad("invalid_arguments", "sql holds no statement")),
            1 => {}
            n => {
                return Err(Answer::bad(
                    "multiple_statements",
                    format!("sql holds {n} statements; send exactly one per query call"),
                ))
            }
        }
        let owner = caller.key();
        let login = pg::Login {
            addr: self.shared.settings.postgres,
            connection: &connection,
            token: &caller.token,
            application_name: "warden-mcp query",
        };
        match pg::run(&login, &sql, max_rows).await {
            Ok(Started::Finished(Outcome::Done(rows))) => {
                let mut ans = Answer::ok(rows.to_json());
                ans.decision = format!("ok: {}", rows.command_tag);
                Ok(ans)
            }
            Ok(Started::Finished(Outcome::Refused(e))) => Err(Answer::refused(&e)),
            Ok(Started::Held {
                review_id,
                message,
                rest,
            }) => {
                // Over the cap, dropping the held connection withdraws the review at the
                // gateway: nothing waits that nobody tracks. Reads still run.
                if !self
                    .shared
                    .keep_held(owner, connection, review_id.clone(), rest)
                {
                    return Err(Answer::bad(
                        "too_many_pending",
                        format!(
                            "Warden wanted review {review_id} for this statement, but you already have {} statements waiting for review; it was withdrawn and did not run. Wait for them (review_status) first",
                            self.shared.settings.max_held
                        ),
                    ));
                }
                Ok(Answer {
                    decision: format!("pending_review {review_id}"),
                    value: json!({
                        "status": "pending_review",
                        "review_id": review_id,
                        "message": message,
                    }),
                    error: false,
                })
            }
            Err(e) => Err(Answer::bad("gateway_unavailable", format!("{e:#}"))),
        }
    }

    async fn request_access(&self, args: &Value, caller: &Caller) -> Result<Answer, Answer> {
        let a: AccessArgs = parse(args)?;
        check_name("connection", &a.connection)?;
        let url = format!("{}/api/v1/access-requests", self.shared.settings.http_base);
        let resp = self
            .shared
            .http
            .post(url)
            .bearer_auth(caller.token.expose())
            .json(&json!({"connection": a.connection, "duration": a.duration, "reason": a.reason}))
            .send()
            .await
            .map_err(|e| Answer::bad("gateway_unavailable", format!("{e}")))?;
        let r = api_json(resp).await?;
        Ok(Answer::ok(json!({
            "request_id": r["id"],
            "status": r["status"],
            "connection": a.connection,
            "request": r,
        })))
    }

    async fn review_status(&self, args: &Value, caller: &Caller) -> Result<Answer, Answer> {
        let a: ReviewArgs = parse(args)?;
        check_name("review_id", &a.review_id)?;
        let owner = caller.key();
        let local = {
            let held = self.shared.held();
            held.get(&a.review_id)
                .filter(|e| e.owner == owner)
                .map(|e| match &e.state {
                    HeldState::Pending => json!({
                        "status": "pending", "review_id": a.review_id, "connection": e.connection,
                    }),
                    HeldState::Decided(Outcome::Done(rows)) => json!({
                        "status": "approved", "review_id": a.review_id,
                        "connection": e.connection, "result": rows.to_json(),
                    }),
                    HeldState::Decided(Outcome::Refused(err)) => {
                        let status = if err.message.contains("was rejected") {
                            "rejected"
                        } else if err.message.contains("timed out") {
                            "expired"
                        } else {
                            "failed"
                        };
                        let mut v = err.to_json();
                        v["status"] = status.into();
                        v["review_id"] = a.review_id.clone().into();
                        v["connection"] = e.connection.clone().into();
                        v
                    }
                })
        };
        match local {
            Some(v) => Ok(Answer::ok(v)),
            None => Err(Answer::bad(
                "unknown_review",
                format!(
                    "no statement review {:?} started by you through this MCP server",
                    a.review_id
                ),
            )),
        }
    }

    async fn api_get(&self, path: &str, caller: &Caller) -> Result<Value, Answer> {
        let url = format!("{}{path}", self.shared.settings.http_base);
        let resp = self
            .shared
            .http
            .get(url)
            .bearer_auth(caller.token.expose())
            .send()
            .await
            .map_err(|e| Answer::bad("gateway_unavailable", format!("{e}")))?;
        api_json(resp).await
    }
}

/// The body of a 2xx answer, or the problem's detail as a tool error.
async fn api_json(resp: reqwest::Response) -> Result<Value, Answer> {
    let status = resp.status();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    if status.is_success() {
        return Ok(body);
    }
    let code = body["code"]
        .as_str()
        .or(body["type"].as_str())
        .unwrap_or("api_error")
        .to_owned();
    let detail = body["detail"]
        .as_str()
        .or(body["title"].as_str())
        .unwrap_or("the gateway refused the request")
        .to_owned();
    Err(Answer {
        decision: format!("{} {code}: {detail}", status.as_u16()),
        value: json!({"error": {"code": code, "status": status.as_u16(), "message": detail}}),
        error: true,
    })
}

/// The names of the masking rules that apply to `schema.table.column` for this caller.
fn masked_by(
    rules: &MaskRules,
    caller: &Caller,
    schema: &str,
    table: &str,
    column: &str,
) -> Vec<String> {
    let active = rules.active_for(&caller.identity);
    let mut hits = rules.column_taint(schema, table, column);
    hits.extend(rules.scan_scope(schema, table, column));
    hits.sort_unstable();
    hits.dedup();
    hits.into_iter()
        .filter(|&i| active.get(i as usize).copied().unwrap_or(true))
        .filter_map(|i| rules.rules.get(i as usize).map(|r| r.name.clone()))
        .collect()
}

/// Arguments as recorded: SQL that may hold a secret is redacted (literals replaced).
fn recordable(tool: &str, args: &Value) -> Value {
    let mut v = args.clone();
    if tool == "query" {
        if let Some(sql) = v.get("sql").and_then(Value::as_str) {
            let a = warden_policy::statement::analyze_uncached(sql);
            if a.may_hold_secret(sql) {
                v["sql"] = warden_policy::statement::redact(sql).into();
            }
        }
    }
    v
}

impl ServerHandler for WardenMcp {
    fn get_info(&self) -> ServerConfig {
        let mut info = Implementation::from_build_env();
        info.name = "warden".into();
        info.title = Some("Warden".into());
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(info)
            .with_instructions(
                "Warden is an identity-aware gateway to PostgreSQL databases. Every call runs \
                 as you, under Warden's policy: masked columns stay masked, denied statements \
                 stay denied, risky statements wait for a human (pending_review), and \
                 everything is recorded. Start with list_connections, then describe, then \
                 query one statement at a time.",
            )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(tools()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let args = Value::Object(request.arguments.clone().unwrap_or_default());
        let tool = request.name.to_string();
        let (ans, identity) = match self.caller(&ctx) {
            Ok(caller) => (
                self.dispatch(&tool, &args, &caller).await,
                Some(caller.identity),
            ),
            Err(a) => (a, None),
        };
        if let Some(rec) = &self.shared.settings.recorder {
            rec(ToolEvent {
                tool: tool.clone(),
                arguments: recordable(&tool, &args),
                identity,
                connection: args
                    .get("connection")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                allowed: !ans.error,
                decision: ans.decision.clone(),
            })
            .await;
        }
        tracing::info!(tool = %tool, error = ans.error, decision = %ans.decision, "mcp tool call");
        Ok(if ans.error {
            CallToolResult::structured_error(ans.value)
        } else {
            CallToolResult::structured(ans.value)
        }
        .into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_sql_with_a_secret_is_redacted() {
        let v = recordable(
            "query",
            &json!({"sql": "ALTER ROLE x PASSWORD 'hunter2'", "connection": "app"}),
        );
        assert!(!v.to_string().contains("hunter2"), "{v}");
        let v = recordable("query", &json!({"sql": "SELECT 1"}));
        assert_eq!(v["sql"], "SELECT 1");
    }

    #[test]
    fn every_tool_says_what_it_may_not_do() {
        let t = tools();
        let names: Vec<_> = t.iter().map(|t| t.name.to_string()).collect();
        assert_eq!(
            names,
            [
                "list_connections",
                "describe",
                "query",
                "request_access",
                "review_status"
            ]
        );
        let q = t.iter().find(|t| t.name == "query").unwrap();
        let d = q.description.as_deref().unwrap();
        assert!(d.contains("ONE SQL statement") && d.contains("held for a human"));
    }
}
