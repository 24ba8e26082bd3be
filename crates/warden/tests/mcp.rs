//! Warden's MCP server driven by the real Python `mcp` client (1.30, the version CrewAI
//! 1.15 depends on; `pip install "mcp==1.30.0"`) over stdio (`warden mcp`) and streamable
//! HTTP (`/mcp`): initialize, tools, masked query, row cap, denial, multi-statement and
//! malformed arguments as tool errors, a held DELETE that runs once after
//! `warden reviews approve`, a bad token, an unknown connection; the audit has every tool
//! call and never the token. The driver is tests/clients/mcp_warden.py.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use common::{psql, Database, Gateway};
use serde_json::Value;

const SCHEMA: &str = r#"
CREATE TABLE customers (id int PRIMARY KEY, name text, email text);
INSERT INTO customers VALUES (1, 'Alice', 'alice@example.com'), (2, 'Bob', 'bob@example.org');
CREATE TABLE payroll (id int, salary int);
INSERT INTO payroll VALUES (1, 98000);
CREATE TABLE scratch (id int);
INSERT INTO scratch VALUES (1), (2), (3);
"#;

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

[[connections]]
name = "vault"
target = "postgres://127.0.0.1:5432/{db}"
allow_groups = ["dba"]
username = "postgres"

[connections.access_requests]
approver_groups = ["dba"]
max_duration = "1h"
"#,
        db = db.name()
    );
    Gateway::start(&config, &[]).await
}

/// Runs the driver in `mode`; returns its steps by name and its stderr (where the Python
/// client and, over stdio, `warden mcp` log).
async fn drive(gw: &Gateway, token: &str, mode: &str) -> Result<(HashMap<String, Value>, String)> {
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
        .env("WARDEN_RESTRICTED", "vault")
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
    // rmcp's 202 to DELETE /mcp made the Python client log this on every close.
    ensure!(
        !stderr.contains("Session termination failed"),
        "the client could not end its session:\n{stderr}"
    );
    Ok((steps, stderr))
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
    let conn = |n: &str| {
        conns
            .as_array()
            .and_then(|a| a.iter().find(|c| c["name"] == n))
            .unwrap_or_else(|| panic!("{mode}: no connection {n}: {conns}"))
            .clone()
    };
    assert_eq!(conn("crm")["allowed"], true, "{conns}");
    // Not usable by agents, but listed because access can be requested.
    assert_eq!(conn("vault")["allowed"], false, "{conns}");
    assert!(conn("vault")["access_requests"].is_object(), "{conns}");

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
    let db = Database::create("mcp_stdio", SCHEMA).expect("database");
    let gw = start(&db).await.expect("gateway");
    let token = gw.issue_token("mcp-agent", "agents", "1h").unwrap();
    let (steps, stderr) = drive(&gw, &token, "stdio").await.unwrap();
    check(&steps, "stdio");
    // Without RUST_LOG, `warden mcp` keeps the agent's terminal quiet: warnings only.
    assert!(
        !stderr.contains("INFO"),
        "warden mcp logged at INFO:\n{stderr}"
    );
    // The unknown connection is the gateway's refusal, with its SQLSTATE.
    let unknown = &step(&steps, "query_unknown_connection")["data"]["error"];
    assert!(unknown["sqlstate"].is_string(), "{unknown}");
    // The gateway's 401 to the relay is a clear tool error, not a crash.
    let bad = &step(&steps, "bad_token")["data"]["error"];
    assert_eq!(bad["code"], "unauthenticated", "{bad}");
    assert!(
        bad["message"].as_str().unwrap_or("").contains("401"),
        "{bad}"
    );
    // The review started over stdio lives in the gateway: an HTTP session of the same
    // caller sees its outcome.
    let other = &step(&steps, "http_review_status")["data"];
    assert_eq!(other["status"], "approved", "{other}");
    assert_eq!(other["result"]["command_tag"], "DELETE 3", "{other}");
    assert_outcomes_in_database(&db);
    // The stdio tool calls ran in the gateway, so they are in its audit chain.
    let audit = mcp_audit(&gw);
    assert!(!audit.contains(&token), "the audit holds the token");
    for needle in [
        "mcp tool list_connections",
        "mcp tool describe",
        "mcp tool query {\"connection\":\"crm\",\"sql\":\"SELECT * FROM payroll\"}: 42501",
        "pending_review rv-",
        "mcp tool review_status",
    ] {
        assert!(audit.contains(needle), "{needle:?} not in audit:\n{audit}");
    }
    assert!(
        audit.lines().all(|l| l.starts_with("mcp-agent|")),
        "{audit}"
    );
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

/// The MCP rows of the audit chain: `subject|result|reason` per line.
fn mcp_audit(gw: &Gateway) -> String {
    common::sqlite_dump(
        &gw.store_path(),
        "SELECT subject, result, reason FROM auth_audit WHERE client_addr = 'mcp' ORDER BY id",
    )
    .unwrap()
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
    let db = Database::create("mcp_http", SCHEMA).expect("database");
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
    let (steps, _) = drive(&gw, &token, "http").await.unwrap();
    check(&steps, "http");
    // A bad token never reaches a tool: the transport is refused with 401.
    let bad = step(&steps, "bad_token")["data"]["exception"].to_string();
    assert!(bad.contains("401"), "{bad}");
    assert_outcomes_in_database(&db);

    // Every tool call is in the audit chain, with the identity and decision, never the token.
    let audit = mcp_audit(&gw);
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
    let db = Database::create("mcp_401", SCHEMA).expect("database");
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

#[tokio::test(flavor = "multi_thread")]
async fn http_session_delete_is_204_and_ends_the_session() {
    let db = Database::create("mcp_delete", SCHEMA).expect("database");
    let gw = start(&db).await.expect("gateway");
    let token = gw.issue_token("mcp-agent", "agents", "1h").unwrap();
    let client = reqwest::Client::new();
    let url = format!("http://{}/mcp", gw.http);
    let post = |body: &'static str, session: Option<&str>| {
        let mut req = client
            .post(&url)
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-06-18")
            .body(body);
        if let Some(s) = session {
            req = req.header("mcp-session-id", s);
        }
        req.send()
    };
    let init = post(
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#,
        None,
    )
    .await
    .unwrap();
    assert_eq!(init.status(), 200);
    let session = init.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let _ = init.text().await;
    let ack = post(
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        Some(&session),
    )
    .await
    .unwrap();
    assert!(ack.status().is_success(), "{}", ack.status());
    let deleted = client
        .delete(&url)
        .bearer_auth(&token)
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-06-18")
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    // The session is gone: a request on it is refused.
    let after = post(
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
        Some(&session),
    )
    .await
    .unwrap();
    assert_eq!(after.status(), 404, "{:?}", after.text().await);
    // Without a token, DELETE is refused like every other request.
    let anonymous = client
        .delete(&url)
        .header("mcp-session-id", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn request_access_and_the_cap_on_held_statements() {
    let db = Database::create("mcp_limits", SCHEMA).expect("database");
    let gw = start(&db).await.expect("gateway");
    let token = gw.issue_token("mcp-agent", "agents", "1h").unwrap();
    let (steps, _) = drive(&gw, &token, "limits").await.unwrap();

    // Before the grant, the agent's groups do not allow the connection.
    assert_tool_error(&steps, "restricted_before");
    let before = &step(&steps, "restricted_before")["data"]["error"];
    assert_eq!(before["sqlstate"], "42501", "{before}");
    // Refusals from the access-request API are tool errors naming the problem.
    for name in ["request_access_no_requests", "request_access_bad_duration"] {
        assert_tool_error(&steps, name);
        let e = &step(&steps, name)["data"]["error"];
        assert!(e["status"].as_u64().unwrap_or(0) >= 400, "{name}: {e}");
        assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{e}");
    }
    assert_tool_error(&steps, "request_access_missing_reason");
    assert_eq!(
        step(&steps, "request_access_missing_reason")["data"]["error"]["code"],
        "invalid_arguments"
    );
    let req = &step(&steps, "request_access")["data"];
    assert_eq!(step(&steps, "request_access")["is_error"], false, "{req}");
    assert!(
        req["request_id"].as_str().unwrap_or("").starts_with("ar-"),
        "{req}"
    );
    assert_eq!(req["status"], "pending", "{req}");
    assert_eq!(req["connection"], "vault");
    assert_eq!(
        step(&steps, "approve_access")["is_error"],
        false,
        "{steps:#?}"
    );
    // Once approved, the same agent may query it, and list_connections says so.
    let after = &step(&steps, "restricted_after")["data"];
    assert_eq!(after["rows"], serde_json::json!([[7]]), "{after}");
    let vault = step(&steps, "list_after")["data"]["connections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "vault")
        .unwrap()
        .clone();
    assert_eq!(vault["allowed"], true, "{vault}");
    assert!(vault["access_until"].is_number(), "{vault}");

    // Eight held statements per identity; the ninth is refused with a clear tool error,
    // from any session of the same caller.
    for i in 0..8 {
        let h = &step(&steps, &format!("held_{i}"))["data"];
        assert_eq!(h["status"], "pending_review", "held_{i}: {h}");
    }
    for name in ["held_9th", "held_9th_other_session"] {
        assert_tool_error(&steps, name);
        let e = &step(&steps, name)["data"]["error"];
        assert_eq!(e["code"], "too_many_pending", "{name}: {e}");
        assert!(
            e["message"].as_str().unwrap_or("").contains('8'),
            "{name}: {e}"
        );
    }
    let read = &step(&steps, "read_at_cap")["data"];
    assert_eq!(read["rows"], serde_json::json!([[3]]), "{read}");
    // Nothing held ran.
    let q = psql(&db.dsn(), &["-tAc", "SELECT count(*) FROM scratch"]).unwrap();
    assert_eq!(q.trim(), "3");
    // The refused holds were withdrawn at the gateway: eight reviews stay pending, not ten.
    let mut pending = Value::Null;
    for _ in 0..50 {
        let out = gw.cli(&["reviews", "list", "--json"]).unwrap();
        pending = serde_json::from_slice(&out.stdout).unwrap();
        let statements = pending
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["id"].as_str().unwrap_or("").starts_with("rv-"))
            .count();
        if statements == 8 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("not eight pending statement reviews: {pending}");
}

/// `warden mcp` with no gateway behind its URL still answers MCP: `initialize` works, the
/// tool call is a clear tool error naming the gateway, and listing tools is an MCP error.
#[tokio::test(flavor = "multi_thread")]
async fn stdio_relay_reports_an_unreachable_gateway() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let gateway = format!("http://127.0.0.1:{port}");
    let mut child = tokio::process::Command::new(common::warden_bin())
        .args(["mcp", "--gateway", &gateway])
        .env("WARDEN_TOKEN", "some-token")
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut answers = Vec::new();
    for (msg, answered) in [
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#,
            true,
        ),
        (
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            false,
        ),
        (
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"query","arguments":{"connection":"crm","sql":"SELECT 1"}}}"#,
            true,
        ),
        (
            r#"{"jsonrpc":"2.0","id":3,"method":"tools/list","params":{}}"#,
            true,
        ),
    ] {
        stdin.write_all(msg.as_bytes()).await.unwrap();
        stdin.write_all(b"\n").await.unwrap();
        stdin.flush().await.unwrap();
        if answered {
            let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
                .await
                .expect("warden mcp answered in time")
                .unwrap()
                .expect("warden mcp is still running");
            answers.push(serde_json::from_str::<Value>(&line).unwrap());
        }
    }
    assert_eq!(
        answers[0]["result"]["serverInfo"]["name"], "warden",
        "{}",
        answers[0]
    );
    let call = &answers[1]["result"];
    assert_eq!(call["isError"], true, "{call}");
    assert_eq!(
        call["structuredContent"]["error"]["code"],
        "gateway_unavailable"
    );
    let message = call["structuredContent"]["error"]["message"]
        .as_str()
        .unwrap();
    assert!(message.contains(&gateway), "{message}");
    assert!(
        answers[2]["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("cannot reach the Warden gateway"),
        "{}",
        answers[2]
    );
    drop(stdin);
    let out = tokio::time::timeout(Duration::from_secs(10), child.wait_with_output())
        .await
        .expect("warden mcp exits when stdin closes")
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("some-token"), "{stderr}");
    assert!(!stderr.contains("INFO"), "{stderr}");
}
