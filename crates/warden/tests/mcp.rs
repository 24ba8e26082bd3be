//! Warden's MCP server driven by the real Python `mcp` client (1.30, the version CrewAI
//! 1.15 depends on; `pip install "mcp==1.30.0"`) over stdio (`warden mcp`) and streamable
//! HTTP (`/mcp`): initialize, tools, masked query, row cap, denial, multi-statement and
//! malformed arguments as tool errors, a held DELETE that runs once after
//! `warden reviews approve`, a bad token, an unknown connection; the audit has every tool
//! call and never the token. The driver is tests/clients/mcp_warden.py.

mod common;

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{ensure, Context, Result};
use common::{psql, Gateway};
use serde_json::Value;

/// The local PostgreSQL (trust authentication), as in CI.
const LOCAL_PG: &str = "host=127.0.0.1 port=5432 user=postgres dbname=postgres sslmode=disable";

const SCHEMA: &str = r#"
CREATE TABLE customers (id int PRIMARY KEY, name text, email text);
INSERT INTO customers VALUES (1, 'Alice', 'alice@example.com'), (2, 'Bob', 'bob@example.org');
CREATE TABLE payroll (id int, salary int);
INSERT INTO payroll VALUES (1, 98000);
CREATE TABLE scratch (id int);
INSERT INTO scratch VALUES (1), (2), (3);
"#;

/// A throw-away database on the local PostgreSQL, dropped on drop.
struct Database(String);

impl Database {
    fn create(prefix: &str) -> Result<Database> {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos();
        let name = format!("{prefix}_{}_{nanos}", std::process::id());
        psql(LOCAL_PG, &["-c", &format!("CREATE DATABASE {name}")])?;
        let db = Database(name);
        psql(&db.dsn(), &["-c", SCHEMA])?;
        Ok(db)
    }

    fn dsn(&self) -> String {
        LOCAL_PG.replace("dbname=postgres", &format!("dbname={}", self.0))
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let _ = psql(
            LOCAL_PG,
            &[
                "-c",
                &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.0),
            ],
        );
    }
}

async fn start(db: &Database) -> Result<Gateway> {
    let config = format!(
        r#"
[[connections]]
name = "crm"
target = "postgres://127.0.0.1:5432/{db}"
allow_groups = ["agents", "dba"]
username = "postgres"

[[connections.masking]]
name = "personal"
columns = ["public.customers.email"]
exempt_groups = ["dba"]

[[connections.rules]]
action = "deny"
tables = ["public.payroll"]
message = "payroll is off limits to agents"

[[connections.rules]]
action = "review"
classes = ["destructive"]
approver_groups = ["dba"]
timeout = "60s"
message = "destructive statements need a DBA"
"#,
        db = db.0
    );
    Gateway::start(&config, &[]).await
}

/// Runs the driver in `mode`; returns its steps by name.
async fn drive(gw: &Gateway, token: &str, mode: &str) -> Result<HashMap<String, Value>> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = std::env::var("WARDEN_TEST_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let run = tokio::process::Command::new(&python)
        .arg(root.join("tests/clients/mcp_warden.py"))
        .arg(mode)
        .env("WARDEN_TOKEN", token)
        .env("WARDEN_GATEWAY", format!("http://{}", gw.http))
        .env("WARDEN_BIN", common::warden_bin())
        .env("WARDEN_CONFIG", &gw.config)
        .env("WARDEN_CONNECTION", "crm")
        .env("PYTHONUNBUFFERED", "1")
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .context("mcp_warden.py timed out")??;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    ensure!(
        !stdout.contains(token) && !stderr.contains(token),
        "the driver's output carries the token"
    );
    ensure!(
        out.status.success() && stdout.lines().any(|l| l == "DONE"),
        "mcp_warden.py {mode} failed ({}); it needs `pip install mcp==1.30.0`\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    let mut steps = HashMap::new();
    for line in stdout.lines().filter(|l| l.starts_with('{')) {
        let v: Value = serde_json::from_str(line)?;
        steps.insert(v["step"].as_str().unwrap_or_default().to_owned(), v);
    }
    Ok(steps)
}

fn step<'a>(steps: &'a HashMap<String, Value>, name: &str) -> &'a Value {
    steps
        .get(name)
        .unwrap_or_else(|| panic!("no step {name}: {steps:#?}"))
}

fn assert_tool_error(steps: &HashMap<String, Value>, name: &str) -> &'static str {
    let s = step(steps, name);
    assert_eq!(s["is_error"], true, "{name} must be a tool error: {s}");
    assert!(s["data"]["error"].is_object(), "{name}: {s}");
    "ok"
}

/// Everything both transports must show.
fn check(steps: &HashMap<String, Value>, mode: &str) {
    assert_eq!(step(steps, "initialize")["data"]["server"], "warden");
    let tools = &step(steps, "list_tools")["data"];
    for t in [
        "list_connections",
        "describe",
        "query",
        "request_access",
        "review_status",
    ] {
        assert!(tools[t].is_string(), "{mode}: tool {t} missing: {tools}");
    }
    assert!(tools["query"]
        .as_str()
        .unwrap()
        .contains("held for a human reviewer"));

    let conns = &step(steps, "list_connections")["data"]["connections"];
    assert_eq!(conns[0]["name"], "crm", "{conns}");
    assert_eq!(conns[0]["allowed"], true);

    let tables = step(steps, "describe_tables")["data"]["tables"].to_string();
    assert!(
        tables.contains("customers") && tables.contains("scratch"),
        "{tables}"
    );
    let cols = step(steps, "describe_customers")["data"]["columns"]
        .as_array()
        .unwrap()
        .clone();
    let col = |n: &str| cols.iter().find(|c| c["name"] == n).unwrap().clone();
    assert_eq!(col("email")["masked"], true, "{cols:?}");
    assert_eq!(col("name")["masked"], false);

    let q = &step(steps, "query_masked")["data"];
    assert_eq!(q["columns"], serde_json::json!(["id", "name", "email"]));
    assert_eq!(q["rows"][0][0], 1);
    assert_eq!(q["rows"][0][1], "Alice");
    let email = q["rows"][0][2].as_str().unwrap_or("");
    assert!(
        !email.contains("alice@example.com"),
        "{mode}: email not masked: {q}"
    );
    assert_eq!(q["truncated"], false);

    let capped = &step(steps, "query_capped")["data"];
    assert_eq!(capped["row_count"], 2, "{capped}");
    assert_eq!(capped["truncated"], true);

    assert_tool_error(steps, "query_denied");
    let denied = &step(steps, "query_denied")["data"]["error"];
    assert_eq!(denied["sqlstate"], "42501", "{denied}");
    assert!(denied["message"].as_str().unwrap().contains("payroll"));

    assert_tool_error(steps, "query_two_statements");
    assert_eq!(
        step(steps, "query_two_statements")["data"]["error"]["code"],
        "multiple_statements"
    );
    assert_tool_error(steps, "query_unknown_connection");
    assert_tool_error(steps, "query_malformed");
    assert_eq!(
        step(steps, "query_malformed")["data"]["error"]["code"],
        "invalid_arguments"
    );
    assert_tool_error(steps, "query_unknown_field");
    assert_tool_error(steps, "describe_malformed");
    assert_tool_error(steps, "unknown_tool");
    assert_tool_error(steps, "review_status_unknown");

    let held = &step(steps, "query_destructive")["data"];
    assert_eq!(held["status"], "pending_review", "{mode}: {held}");
    assert!(held["review_id"].as_str().unwrap().starts_with("rv-"));
    assert_eq!(
        step(steps, "review_status_pending")["data"]["status"],
        "pending"
    );
    assert_eq!(step(steps, "approve")["is_error"], false, "{steps:#?}");
    let decided = &step(steps, "review_status_decided")["data"];
    assert_eq!(decided["status"], "approved", "{mode}: {decided}");
    assert_eq!(decided["result"]["command_tag"], "DELETE 3");
    assert_eq!(
        step(steps, "query_by_review_id")["data"]["status"],
        "approved"
    );

    assert_eq!(
        step(steps, "query_drop")["data"]["status"],
        "pending_review"
    );
    assert_eq!(step(steps, "reject")["is_error"], false, "{steps:#?}");
    let rejected = &step(steps, "review_status_rejected")["data"];
    assert_eq!(rejected["status"], "rejected", "{mode}: {rejected}");
    assert!(rejected["error"]["sqlstate"].is_string(), "{rejected}");

    assert_eq!(step(steps, "bad_token")["is_error"], true);
}

/// The held DELETE ran exactly once (after approval); the rejected DROP never ran.
fn assert_outcomes_in_database(db: &Database) {
    let q = |sql: &str| psql(&db.dsn(), &["-tAc", sql]).unwrap().trim().to_owned();
    assert_eq!(q("SELECT count(*) FROM scratch"), "0");
    assert_eq!(q("SELECT to_regclass('public.scratch') IS NOT NULL"), "t");
}

#[tokio::test(flavor = "multi_thread")]
async fn python_mcp_client_over_stdio() {
    let db = Database::create("mcp_stdio").expect("database");
    let gw = start(&db).await.expect("gateway");
    let token = gw.issue_token("mcp-agent", "agents", "1h").unwrap();
    let steps = drive(&gw, &token, "stdio").await.unwrap();
    check(&steps, "stdio");
    // The unknown connection is the gateway's refusal, with its SQLSTATE.
    let unknown = &step(&steps, "query_unknown_connection")["data"]["error"];
    assert!(unknown["sqlstate"].is_string(), "{unknown}");
    let bad = &step(&steps, "bad_token")["data"]["error"];
    assert!(
        bad["sqlstate"].as_str().unwrap_or("").starts_with("28"),
        "{bad}"
    );
    assert_outcomes_in_database(&db);
    let logs = gw.logs();
    assert!(!logs.contains(&token), "the gateway logged the token");
    // The gateway recorded the MCP tool sessions as the agent's, naming the tool, with the
    // statements and the denial.
    let recorded = recordings_of(&gw, "mcp-agent");
    for needle in [
        "warden-mcp query",
        "warden-mcp describe",
        "SELECT * FROM payroll",
        "DELETE FROM scratch",
    ] {
        assert!(
            recorded.contains(needle),
            "{needle:?} not recorded:\n{recorded}"
        );
    }
    assert!(!recorded.contains(&token), "a recording holds the token");
}

/// Every recorded session of `identity`, exported as NDJSON and concatenated.
fn recordings_of(gw: &Gateway, identity: &str) -> String {
    let out = gw
        .cli(&["sessions", "list", "--identity", identity, "--json"])
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut all = String::new();
    for row in rows.as_array().unwrap() {
        let id = row["id"].as_str().unwrap();
        let out = gw
            .cli(&["sessions", "export", id, "--format", "ndjson"])
            .unwrap();
        all.push_str(&String::from_utf8_lossy(&out.stdout));
    }
    all
}

#[tokio::test(flavor = "multi_thread")]
async fn python_mcp_client_over_http_with_audit() {
    let db = Database::create("mcp_http").expect("database");
    let gw = start(&db).await.expect("gateway");
    // An agent token that names the human behind it.
    let out = gw
        .cli(&[
            "tokens",
            "issue",
            "--name",
            "mcp-agent",
            "--groups",
            "agents",
            "--ttl",
            "1h",
            "--actor",
            "alice@example.com",
        ])
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let steps = drive(&gw, &token, "http").await.unwrap();
    check(&steps, "http");
    // A bad token never reaches a tool: the transport is refused with 401.
    let bad = step(&steps, "bad_token")["data"]["exception"].to_string();
    assert!(bad.contains("401"), "{bad}");
    assert_outcomes_in_database(&db);

    // Every tool call is in the audit chain, with the identity and decision, never the token.
    let audit = common::sqlite_dump(
        &gw.store_path(),
        "SELECT subject, result, reason FROM auth_audit WHERE client_addr = 'mcp' ORDER BY id",
    )
    .unwrap();
    assert!(!audit.contains(&token), "the audit holds the token");
    for needle in [
        "mcp tool list_connections",
        "mcp tool describe",
        "mcp tool query {\"connection\":\"crm\",\"sql\":\"SELECT * FROM payroll\"} actor=alice@example.com: 42501",
        "pending_review rv-",
        "mcp tool review_status",
    ] {
        assert!(audit.contains(needle), "{needle:?} not in audit:\n{audit}");
    }
    // Each row names the agent and the human behind it; the refusal is a denied row.
    let denied = audit
        .lines()
        .find(|l| l.contains("SELECT * FROM payroll"))
        .unwrap();
    assert!(denied.contains("|denied|"), "{denied}");
    assert!(
        audit
            .lines()
            .all(|l| l.contains("actor=alice@example.com") && !l.starts_with('|')),
        "{audit}"
    );
    let logs = gw.logs();
    assert!(!logs.contains(&token), "the gateway logged the token");
}

#[tokio::test(flavor = "multi_thread")]
async fn http_without_a_token_is_401_with_resource_metadata() {
    let db = Database::create("mcp_401").expect("database");
    let gw = start(&db).await.expect("gateway");
    let client = reqwest::Client::new();
    let base = format!("http://{}", gw.http);
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
    for auth in [None, Some("Bearer nope")] {
        let mut req = client
            .post(format!("{base}/mcp"))
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(body);
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 401);
        let challenge = resp.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(
            challenge,
            format!("Bearer resource_metadata=\"{base}/.well-known/oauth-protected-resource\"")
        );
    }
    let meta: Value = client
        .get(format!("{base}/.well-known/oauth-protected-resource"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(meta["resource"], format!("{base}/mcp"));
    assert!(meta["authorization_servers"].is_array(), "{meta}");
}
