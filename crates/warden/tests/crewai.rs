//! The CrewAI example (examples/crewai) against a real gateway, without a model: the tool
//! objects crewai builds from Warden's MCP server (crewai's native `mcps=` and crewai-tools'
//! MCPServerAdapter, over stdio and streamable HTTP) and the example's psycopg tool call
//! through the gateway and come back masked; a refused statement is a tool failure with its
//! SQLSTATE, a held DROP a `pending_review` result that runs once approved, a bad token a
//! refusal; the token shows up in no output. The driver is tests/clients/crewai_example.py;
//! it fails on any socket to anything but loopback. Needs
//! `pip install -r examples/crewai/requirements.txt`.

mod common;

use std::process::Command;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use common::{psql, Database, Gateway};

const SCHEMA: &str = r#"
CREATE TABLE customers (id int PRIMARY KEY, name text, email text, ssn text);
INSERT INTO customers VALUES
  (1, 'Alice', 'alice@example.com', '123-45-6789'),
  (2, 'Bob', 'bob@example.org', '987-65-4321');
CREATE TABLE payroll (id int, salary int);
INSERT INTO payroll VALUES (1, 98000);
CREATE TABLE scratch (id int);
"#;

/// A gateway with `crm` (masked email and ssn, payroll refused, destructive statements held
/// for a DBA) on `db`, and `hr`, which the agent's group may not use.
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
columns = ["public.customers.email", "public.customers.ssn"]
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
name = "hr"
target = "postgres://127.0.0.1:5432/{db}"
allow_groups = ["hr"]
username = "postgres"
"#,
        db = db.name()
    );
    Gateway::start(&config, &[]).await
}

/// Runs the driver's `part` (postgres or mcp) with the agent's `token`; returns stdout.
async fn run_driver(gw: &Gateway, token: &str, part: &str) -> Result<String> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let script = root.join("tests/clients/crewai_example.py");
    let bin_dir = common::warden_bin()
        .parent()
        .context("warden binary dir")?
        .to_path_buf();
    let path = std::env::join_paths(std::iter::once(bin_dir).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))?;
    let python = std::env::var("WARDEN_TEST_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let run = tokio::process::Command::new(&python)
        .arg(&script)
        .arg(part)
        .env("PATH", path)
        .env("WARDEN_TOKEN", token)
        .env("WARDEN_GATEWAY", format!("http://{}", gw.http))
        .env("WARDEN_PG", gw.pg.to_string())
        .env("WARDEN_CONNECTION", "crm")
        .env("WARDEN_OTHER_CONNECTION", "hr")
        .env("PYTHONUNBUFFERED", "1")
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(300), run)
        .await
        .context("crewai_example.py timed out")??;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    // The token is the agent's password: it must not surface anywhere.
    ensure!(
        !stdout.contains(token) && !stderr.contains(token),
        "the driver's output carries the token"
    );
    ensure!(
        out.status.success() && stdout.lines().any(|l| l == "OK all"),
        "crewai_example.py {part} failed ({}); it needs `pip install -r examples/crewai/requirements.txt`\n\
         stdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    Ok(stdout)
}

fn assert_steps(stdout: &str, steps: &[&str]) {
    for step in steps {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with("OK ") && l.contains(step)),
            "missing step {step:?} in:\n{stdout}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn crewai_psycopg_tool_gets_masked_rows_with_the_agents_token() {
    let db = Database::create("crewai_pg", SCHEMA).expect("database");
    let gw = start(&db).await.expect("gateway");
    let token = gw.issue_token("crew-analyst", "agents", "1h").unwrap();

    let stdout = run_driver(&gw, &token, "postgres").await.unwrap();
    assert_steps(
        &stdout,
        &[
            "postgres: crew built with warden_sql",
            "postgres: warden_sql returns masked rows",
            "postgres: warden_sql reports a refusal",
            "postgres: a bad token is refused",
            "nothing left loopback",
        ],
    );
    let logs = gw.logs();
    assert!(!logs.contains(&token), "the gateway logged the token");
    // The session was the agent's, and it is recorded under its name.
    assert!(logs.contains("crew-analyst"), "{logs}");
}

#[tokio::test(flavor = "multi_thread")]
async fn crewai_mcp_tools_call_through_warden_over_stdio_and_http() {
    let db = Database::create("crewai_mcp", SCHEMA).expect("database");
    let gw = start(&db).await.expect("gateway");
    let token = gw.issue_token("crew-analyst", "agents", "1h").unwrap();

    let stdout = run_driver(&gw, &token, "mcp").await.unwrap();
    let mut steps = Vec::new();
    // crewai's native client over HTTP is built but not called before Python 3.12 (a crewai
    // bug; see native_http_works in examples/crewai/crew.py): the driver says which.
    let native_http_calls = !stdout.contains("http/native: calls skipped");
    for (t, client) in [
        ("stdio", "native"),
        ("stdio", "adapter"),
        ("http", "adapter"),
        ("http", "native"),
    ] {
        let label = format!("{t}/{client}");
        steps.push(format!("{label}: crewai built 5 tools"));
        if label == "http/native" && !native_http_calls {
            continue;
        }
        steps.extend([
            format!("{label}: list_connections names crm and not hr"),
            format!("{label}: query returns masked rows"),
            format!("{label}: a refused statement is a tool failure with its SQLSTATE"),
            format!("{label}: a connection the token may not use is a tool failure"),
        ]);
    }
    steps.extend([
        "http: DROP comes back pending_review with a review id".into(),
        "stdio: a bad token is refused".into(),
        "http: a bad token is refused".into(),
        "nothing left loopback".into(),
    ]);
    assert_steps(
        &stdout,
        &steps.iter().map(String::as_str).collect::<Vec<_>>(),
    );

    // The held DROP did not run: the table is still there and the review is pending; once
    // a DBA approves it, it runs.
    let review = stdout
        .lines()
        .find_map(|l| l.strip_prefix("REVIEW "))
        .expect("a review id")
        .trim()
        .to_owned();
    let scratch = "SELECT count(*) FROM pg_tables WHERE tablename = 'scratch'";
    let still = psql(&db.dsn(), &["-c", scratch]).unwrap();
    assert_eq!(still.trim(), "1", "the held DROP ran without approval");
    let out = gw.cli(&["reviews", "list", "--json"]).unwrap();
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && listed.contains(&review),
        "review {review} not pending: {listed} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = gw.cli(&["reviews", "approve", &review]).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        if psql(&db.dsn(), &["-c", scratch]).unwrap().trim() == "0" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the approved DROP did not run"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(!gw.logs().contains(&token), "the gateway logged the token");
}

/// The example's dry run, as the README shows it, over the PostgreSQL path: it builds the
/// crew, lists its tools, calls one and stops before the model.
#[tokio::test(flavor = "multi_thread")]
async fn crewai_example_dry_run_stops_before_the_model() {
    let db = Database::create("crewai_dry", SCHEMA).expect("database");
    let gw = start(&db).await.expect("gateway");
    let token = gw.issue_token("crew-analyst", "agents", "1h").unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = std::env::var("WARDEN_TEST_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let out = Command::new(python)
        .arg(root.join("examples/crewai/crew.py"))
        .args([
            "--transport",
            "postgres",
            "--connection",
            "crm",
            "--sslmode",
            "disable",
        ])
        .arg("--pg")
        .arg(gw.pg.to_string())
        .args([
            "--dry-run",
            "--sql",
            "SELECT name, email FROM customers ORDER BY id",
        ])
        .env("WARDEN_TOKEN", &token)
        .env_remove("OPENAI_API_KEY")
        .env("CREWAI_DISABLE_TELEMETRY", "true")
        .env("OTEL_SDK_DISABLED", "true")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("  - warden_sql"), "{stdout}");
    assert!(stdout.contains("\"Alice\", \"****\""), "{stdout}");
    assert!(!stdout.contains("alice@example.com"), "{stdout}");
    assert!(
        stdout.contains("dry run: stopped before the model"),
        "{stdout}"
    );
    assert!(!stdout.contains(&token) && !stderr.contains(&token));
}
