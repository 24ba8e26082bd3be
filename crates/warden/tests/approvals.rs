//! Approvals end to end: risky statements are held until a human decides (from the CLI
//! in another process, or the API), however they are written and through both protocols;
//! an approval runs exactly the reviewed statement; self-approval is refused, a timeout
//! rejects, a cancel withdraws; webhooks arrive signed; access requests open a connection
//! for a bounded time.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use bytes::BytesMut;
use common::{extended, http, psql, read_frame, Gateway, QueryResult};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use warden_testkit::{workspace_root, PgCluster};
use warden_wire::{
    Authentication, ErrorResponse, Message, NoticeResponse, PasswordMessage, StartupMessage,
};

const PW_ENV: &str = "WARDEN_TEST_APPROVALS_PW";
const HOOK_ENV: &str = "WARDEN_TEST_APPROVALS_HOOK";
const HOOK_SECRET: &str = "approvals-test-hook-secret-0123";

/// What the webhook receiver saw: (event header, timestamp, signature, body).
type Deliveries = Arc<Mutex<Vec<(String, String, String, Vec<u8>)>>>;

async fn webhook_receiver() -> (SocketAddr, Deliveries) {
    use axum::http::HeaderMap;
    let seen: Deliveries = Arc::default();
    let store = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let store = store.clone();
            async move {
                let h = |k: &str| {
                    headers
                        .get(k)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_owned()
                };
                store.lock().unwrap().push((
                    h("x-warden-event"),
                    h("x-warden-timestamp"),
                    h("x-warden-signature"),
                    body.to_vec(),
                ));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, seen)
}

async fn start() -> (PgCluster, Gateway, Deliveries) {
    let pg = PgCluster::start_scram().await.expect("cluster");
    pg.psql(
        "CREATE TABLE keep_t (id int, v text); INSERT INTO keep_t VALUES (1, 'a'), (2, 'b'), (3, 'c');
         CREATE TABLE review_t (id int); CREATE TABLE reject_t (id int);
         CREATE TABLE a_t (id int); CREATE TABLE b_t (id int); CREATE TABLE cancel_t (id int)",
    )
    .await
    .unwrap();
    let (hook, seen) = webhook_receiver().await;
    let config = format!(
        r#"
[[connections]]
name = "app"
target = "postgres://127.0.0.1:{port}/postgres"
allow_groups = ["agents", "dba"]
username = "postgres"
password_env = "{PW_ENV}"

[[connections.rules]]
action = "review"
kinds = ["TRUNCATE"]
approver_groups = ["dba"]
timeout = "1s"
message = "TRUNCATE needs a DBA"

[[connections.rules]]
action = "review"
classes = ["destructive"]
approver_groups = ["dba"]
timeout = "60s"
message = "destructive statements need a DBA"

[connections.webhook]
url = "http://{hook}/hook"
secret_env = "{HOOK_ENV}"
max_attempts = 2

[[connections]]
name = "idle"
target = "postgres://127.0.0.1:{port}/postgres"
allow_groups = ["agents"]
username = "postgres"
password_env = "{PW_ENV}"
idle_timeout = "1s"

[[connections.rules]]
action = "review"
classes = ["destructive"]
approver_groups = ["dba"]

[[connections]]
name = "restricted"
target = "postgres://127.0.0.1:{port}/postgres"
allow_groups = ["dba"]
username = "postgres"
password_env = "{PW_ENV}"

[connections.access_requests]
approver_groups = ["dba"]
max_duration = "1h"
"#,
        port = pg.port()
    );
    let gw = Gateway::start(
        &config,
        &[(PW_ENV, pg.superuser_password()), (HOOK_ENV, HOOK_SECRET)],
    )
    .await
    .expect("gateway");
    (pg, gw, seen)
}

/// A raw protocol session with one read buffer.
struct Raw {
    s: TcpStream,
    buf: BytesMut,
    key: (i32, Vec<u8>),
}

impl Raw {
    async fn login(addr: SocketAddr, db: &str, password: &str) -> Result<Raw> {
        let mut s = TcpStream::connect(addr).await?;
        let startup = StartupMessage::new(vec![
            ("user".into(), "raw".into()),
            ("database".into(), db.into()),
        ]);
        s.write_all(&startup.encode()).await?;
        let mut buf = BytesMut::new();
        let mut key = (0, Vec::new());
        loop {
            let f = read_frame(&mut s, &mut buf).await?;
            match f.tag() {
                b'R' => {
                    if let Authentication::CleartextPassword = Authentication::from_frame(&f)? {
                        s.write_all(&PasswordMessage::new(password).encode())
                            .await?;
                    }
                }
                b'K' => {
                    let b = f.body();
                    key = (i32::from_be_bytes(b[..4].try_into()?), b[4..].to_vec());
                }
                b'E' => {
                    let e = ErrorResponse::from_frame(&f)?;
                    bail!(
                        "login refused: {} {}",
                        e.fields.code().unwrap_or(""),
                        e.fields.message().unwrap_or("")
                    );
                }
                b'Z' => return Ok(Raw { s, buf, key }),
                _ => {}
            }
        }
    }

    async fn send(&mut self, bytes: &[u8]) -> Result<()> {
        Ok(self.s.write_all(bytes).await?)
    }

    async fn query(&mut self, sql: &str) -> Result<()> {
        self.send(&common::query_frame(sql)).await
    }

    /// Reads until a NoticeResponse names a review; returns its id.
    async fn held(&mut self) -> Result<String> {
        loop {
            let f = read_frame(&mut self.s, &mut self.buf).await?;
            match f.tag() {
                b'N' => {
                    let n = NoticeResponse::from_frame(&f)?;
                    let msg = n.fields.message().unwrap_or("");
                    // Only the hold announcement: the "approved by" notice of an earlier
                    // review names its id too, and may arrive after that statement's result.
                    if let Some(at) = msg
                        .find("holding this statement for review rv-")
                        .map(|at| at + "holding this statement for review ".len())
                    {
                        return Ok(msg[at..at + 19].to_owned());
                    }
                }
                b'E' | b'C' | b'Z' => bail!("expected a hold, got {:?}", f.tag() as char),
                _ => {}
            }
        }
    }

    /// Reads up to ReadyForQuery: rows (first column) or the error, and the command tags.
    async fn result(&mut self) -> Result<(QueryResult, Vec<String>)> {
        let mut rows = Vec::new();
        let mut tags = Vec::new();
        let mut error = None;
        loop {
            let f = read_frame(&mut self.s, &mut self.buf).await?;
            match f.tag() {
                b'D' => rows.push(vec![Some(
                    String::from_utf8_lossy(f.body().get(6..).unwrap_or(&[])).into_owned(),
                )]),
                b'C' => tags.push(
                    String::from_utf8_lossy(f.body())
                        .trim_end_matches('\0')
                        .to_owned(),
                ),
                b'E' => {
                    let e = ErrorResponse::from_frame(&f)?;
                    error = Some(QueryResult::Error(
                        e.fields.code().unwrap_or("").to_owned(),
                        e.fields.message().unwrap_or("").to_owned(),
                    ));
                }
                b'Z' => return Ok((error.unwrap_or(QueryResult::Rows(rows)), tags)),
                _ => {}
            }
        }
    }

    /// Sends a CancelRequest with this session's key on a new connection.
    async fn cancel(&self, addr: SocketAddr) -> Result<()> {
        let mut c = TcpStream::connect(addr).await?;
        let mut m = Vec::new();
        m.extend_from_slice(&16i32.to_be_bytes());
        m.extend_from_slice(&80877102i32.to_be_bytes());
        m.extend_from_slice(&self.key.0.to_be_bytes());
        m.extend_from_slice(&self.key.1);
        c.write_all(&m).await?;
        Ok(())
    }
}

fn cli_ok(gw: &Gateway, args: &[&str]) -> String {
    let out = gw.cli(args).unwrap();
    assert!(
        out.status.success(),
        "warden {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

async fn api(gw: &Gateway, method: &str, path: &str, token: &str) -> (u16, serde_json::Value) {
    let (status, body) = http(gw.http, method, path, Some(token)).await.unwrap();
    (
        status,
        serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
    )
}

async fn pending_ids(gw: &Gateway) -> Vec<String> {
    let out = cli_ok(gw, &["reviews", "list", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn table_exists(pg: &PgCluster, name: &str) -> bool {
    pg.psql(&format!("SELECT to_regclass('public.{name}') IS NOT NULL"))
        .await
        .unwrap()
        == "t"
}

/// Runs `tests/clients/psycopg_review.py` in the background.
fn psycopg_review(
    dsn: String,
    expect: &str,
    table: &str,
    reason: &str,
) -> tokio::task::JoinHandle<Result<String>> {
    let path = workspace_root().join("tests/clients/psycopg_review.py");
    let mut cmd = tokio::process::Command::new("python3");
    cmd.arg(path)
        .env("WARDEN_DSN", dsn)
        .env("WARDEN_REVIEW_EXPECT", expect)
        .env("WARDEN_REVIEW_TABLE", table)
        .env("WARDEN_REVIEW_REASON", reason)
        .kill_on_drop(true);
    tokio::spawn(async move {
        let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
            .await
            .context("psycopg_review.py timed out")??;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() || !stdout.lines().any(|l| l == "OK all") {
            bail!(
                "psycopg_review.py failed:\n{stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(stdout)
    })
}

async fn wait_pending(gw: &Gateway, n: usize) -> Vec<String> {
    for _ in 0..200 {
        let ids = pending_ids(gw).await;
        if ids.len() >= n {
            return ids;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no pending review appeared:\n{}", gw.logs());
}

#[tokio::test(flavor = "multi_thread")]
async fn psycopg_drop_table_is_held_then_approved_or_rejected_from_the_cli() {
    let (pg, gw, _) = start().await;
    let agent = gw.issue_token("review-agent", "agents", "1h").unwrap();

    let client = psycopg_review(gw.dsn("app", &agent), "approved", "review_t", "");
    let ids = wait_pending(&gw, 1).await;
    assert!(table_exists(&pg, "review_t").await, "held, not run");
    let shown = cli_ok(&gw, &["reviews", "list"]);
    assert!(shown.contains("DROP TABLE review_t"), "{shown}");
    let out = gw
        .cli(&["reviews", "approve", &ids[0], "--reason", "planned cleanup"])
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains(&format!("{} is approved", ids[0])), "{said}");
    let stdout = client.await.unwrap().unwrap();
    assert!(stdout.contains("OK dropped"), "{stdout}");
    assert!(!table_exists(&pg, "review_t").await);

    let client = psycopg_review(gw.dsn("app", &agent), "rejected", "reject_t", "not today");
    let ids = wait_pending(&gw, 1).await;
    cli_ok(
        &gw,
        &["reviews", "reject", &ids[0], "--reason", "not today"],
    );
    client.await.unwrap().unwrap();
    assert!(table_exists(&pg, "reject_t").await, "rejected, not run");

    // Both decisions are in the session recording and the audit trail.
    let out = cli_ok(
        &gw,
        &["sessions", "list", "--identity", "review-agent", "--json"],
    );
    let rows: serde_json::Value = serde_json::from_str(&out).unwrap();
    let mut decisions = String::new();
    for r in rows.as_array().unwrap() {
        let id = r["id"].as_str().unwrap();
        decisions.push_str(&cli_ok(
            &gw,
            &["sessions", "export", id, "--format", "ndjson"],
        ));
    }
    assert!(
        decisions
            .lines()
            .any(|l| l.contains("\"decision\":\"approved\"")
                && l.contains("DROP TABLE review_t")
                && l.contains("planned cleanup")),
        "{decisions}"
    );
    assert!(
        decisions
            .lines()
            .any(|l| l.contains("\"decision\":\"rejected\"") && l.contains("DROP TABLE reject_t")),
        "{decisions}"
    );
    let audit = common::sqlite_dump(
        &gw.store_path(),
        "SELECT result, reason FROM auth_audit WHERE credential_kind = 'approval'",
    )
    .unwrap();
    assert!(
        audit.contains("approved") && audit.contains("planned cleanup"),
        "{audit}"
    );
    assert!(
        audit.contains("rejected") && audit.contains("not today"),
        "{audit}"
    );
    cli_ok(&gw, &["audit", "verify"]);

    // Metrics: decisions by kind, review outcomes and how long the client waited.
    let (status, metrics) = http(gw.http, "GET", "/metrics", None).await.unwrap();
    assert_eq!(status, 200);
    for needle in [
        r#"warden_pg_statement_decisions_total{decision="held"} 2"#,
        r#"warden_review_outcomes_total{outcome="approved"} 1"#,
        r#"warden_review_outcomes_total{outcome="rejected"} 1"#,
        r#"warden_review_wait_seconds_count{outcome="approved"} 1"#,
        "warden_pg_statement_decisions_total{decision=\"allowed\"}",
        "warden_pg_client_connections",
        "warden_pg_session_setup_seconds",
    ] {
        assert!(metrics.contains(needle), "{needle} not in\n{metrics}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_spelling_of_a_risky_statement_is_held_and_keyed_deletes_are_not() {
    let (pg, gw, _) = start().await;
    let agent = gw.issue_token("review-agent", "agents", "1h").unwrap();
    let dba = gw.issue_token("review-dba", "dba", "1h").unwrap();
    let mut s = Raw::login(gw.pg, "app", &agent).await.unwrap();
    for sql in [
        "WITH d AS (DELETE FROM keep_t RETURNING *) SELECT count(*) FROM d",
        "SELECT 1; DROP TABLE keep_t",
        "DeLeTe   FROM keep_t",
        "/* harmless? */ delete\n\t from -- no where\n keep_t",
        "this is not sql at all",
    ] {
        s.query(sql).await.unwrap();
        let id = s.held().await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        let (status, body) = api(&gw, "POST", &format!("/api/v1/reviews/{id}/reject"), &dba).await;
        assert_eq!(status, 200, "{body}");
        match s.result().await.unwrap().0 {
            QueryResult::Error(code, msg) => {
                assert_eq!(code, "57014", "{sql}");
                assert!(msg.contains("rejected by review-dba"), "{msg}");
            }
            other => panic!("{sql}: {other:?}"),
        }
    }
    assert_eq!(pg.psql("SELECT count(*) FROM keep_t").await.unwrap(), "3");
    // A keyed delete is a write, not destructive: it runs at once.
    s.query("DELETE FROM keep_t WHERE id = 1").await.unwrap();
    let (res, tags) = s.result().await.unwrap();
    assert_eq!(res, QueryResult::Rows(vec![]));
    assert_eq!(tags, ["DELETE 1"]);
    assert!(pending_ids(&gw).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_approval_runs_only_the_reviewed_statement_with_its_parameters() {
    let (pg, gw, _) = start().await;
    let agent = gw.issue_token("review-agent", "agents", "1h").unwrap();
    let dba = gw.issue_token("review-dba", "dba", "1h").unwrap();
    let mut s = Raw::login(gw.pg, "app", &agent).await.unwrap();

    s.query("DROP TABLE a_t").await.unwrap();
    let first = s.held().await.unwrap();
    let (status, body) = api(
        &gw,
        "POST",
        &format!("/api/v1/reviews/{first}/approve"),
        &dba,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "approved");
    let (res, tags) = s.result().await.unwrap();
    assert_eq!(res, QueryResult::Rows(vec![]));
    assert_eq!(tags, ["DROP TABLE"]);
    assert!(!table_exists(&pg, "a_t").await);

    // A different statement after the approval is held anew; the old approval is spent.
    s.query("DROP TABLE b_t").await.unwrap();
    let second = s.held().await.unwrap();
    assert_ne!(first, second);
    let (status, body) = api(
        &gw,
        "POST",
        &format!("/api/v1/reviews/{first}/approve"),
        &dba,
    )
    .await;
    assert_eq!(status, 409, "{body}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        table_exists(&pg, "b_t").await,
        "the new statement did not run"
    );
    api(
        &gw,
        "POST",
        &format!("/api/v1/reviews/{second}/reject"),
        &dba,
    )
    .await;
    assert!(matches!(s.result().await.unwrap().0, QueryResult::Error(c, _) if c == "57014"));

    // Extended protocol: held at Execute, the approver sees the Bind parameters, and the
    // approved (text, parameters) is what runs.
    s.send(&extended("UPDATE keep_t SET v = $1", &["it's approved"]))
        .await
        .unwrap();
    let id = s.held().await.unwrap();
    let (_, shown) = api(&gw, "GET", &format!("/api/v1/reviews/{id}"), &dba).await;
    assert_eq!(shown["statement"], "UPDATE keep_t SET v = $1");
    assert_eq!(shown["params"], serde_json::json!(["it's approved"]));
    api(&gw, "POST", &format!("/api/v1/reviews/{id}/approve"), &dba).await;
    let (res, tags) = s.result().await.unwrap();
    assert_eq!(res, QueryResult::Rows(vec![]));
    assert_eq!(tags, ["UPDATE 3"]);
    assert_eq!(
        pg.psql("SELECT string_agg(DISTINCT v, ',') FROM keep_t")
            .await
            .unwrap(),
        "it's approved"
    );
    // Rejected in the extended protocol: the batch's earlier messages are answered, then
    // 57014, then ReadyForQuery; the session goes on.
    s.send(&extended("UPDATE keep_t SET v = $1", &["no"]))
        .await
        .unwrap();
    let id = s.held().await.unwrap();
    api(&gw, "POST", &format!("/api/v1/reviews/{id}/reject"), &dba).await;
    assert!(matches!(s.result().await.unwrap().0, QueryResult::Error(c, _) if c == "57014"));
    s.query("SELECT count(*) FROM keep_t WHERE v = 'no'")
        .await
        .unwrap();
    assert_eq!(s.result().await.unwrap().0.scalar(), "0");
}

#[tokio::test(flavor = "multi_thread")]
async fn self_approval_is_refused_a_timeout_rejects_and_a_cancel_withdraws() {
    let (pg, gw, _) = start().await;
    // In the approver group itself, but it asked.
    let both = gw.issue_token("review-self", "agents,dba", "1h").unwrap();
    let mut s = Raw::login(gw.pg, "app", &both).await.unwrap();
    s.query("DROP TABLE cancel_t").await.unwrap();
    let id = s.held().await.unwrap();
    let (status, body) = api(&gw, "POST", &format!("/api/v1/reviews/{id}/approve"), &both).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["code"], "self_approval");
    let out = gw
        .cli(&["reviews", "approve", &id, "--token", &both])
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("your own request"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Not in an approver group at all.
    let other = gw.issue_token("review-other", "agents", "1h").unwrap();
    let (status, _) = api(
        &gw,
        "POST",
        &format!("/api/v1/reviews/{id}/approve"),
        &other,
    )
    .await;
    assert_eq!(status, 403);

    // A cancel request withdraws the review.
    s.cancel(gw.pg).await.unwrap();
    match s.result().await.unwrap().0 {
        QueryResult::Error(code, msg) => {
            assert_eq!(code, "57014");
            assert!(msg.contains("withdrawn"), "{msg}");
        }
        other => panic!("{other:?}"),
    }
    let (_, r) = api(&gw, "GET", &format!("/api/v1/reviews/{id}"), &both).await;
    assert_eq!(r["status"], "withdrawn");
    assert!(table_exists(&pg, "cancel_t").await);

    // TRUNCATE's rule times out after 1 s: rejected with 57014.
    s.query("TRUNCATE keep_t").await.unwrap();
    let id = s.held().await.unwrap();
    match s.result().await.unwrap().0 {
        QueryResult::Error(code, msg) => {
            assert_eq!(code, "57014");
            assert!(msg.contains("timed out"), "{msg}");
        }
        other => panic!("{other:?}"),
    }
    let (_, r) = api(&gw, "GET", &format!("/api/v1/reviews/{id}"), &both).await;
    assert_eq!(r["status"], "expired");
    assert_eq!(pg.psql("SELECT count(*) FROM keep_t").await.unwrap(), "3");

    // Hostile API input gets a problem, not a crash.
    for path in [
        "/api/v1/reviews/..%2f..%2fetc",
        "/api/v1/reviews/rv-zzzzzzzzzzzzzzzz/approve",
        "/api/v1/reviews/rv-0000000000000000/approve",
    ] {
        let (status, _) = api(&gw, "POST", path, &both).await;
        assert!(matches!(status, 400 | 404 | 405), "{path}: {status}");
    }
    let (status, _) = http(gw.http, "GET", "/api/v1/reviews", None).await.unwrap();
    assert_eq!(status, 401);
    for (path, body) in [
        ("/api/v1/access-requests", b"{\"connection\":".to_vec()),
        (
            "/api/v1/access-requests",
            b"{\"connection\":\"restricted\",\"duration\":\"forever\"}".to_vec(),
        ),
        (
            "/api/v1/access-requests",
            b"{\"connection\":\"restricted\",\"duration\":\"1h\",\"x\":1}".to_vec(),
        ),
        ("/api/v1/access-requests", vec![b'['; 3 << 20]),
        (
            "/api/v1/reviews/rv-0000000000000000/reject",
            b"\xff\xfe".to_vec(),
        ),
    ] {
        let status = post_body(gw.http, path, &both, &body).await;
        assert!(matches!(status, 400 | 404 | 413), "{path}: {status}");
    }
    // The gateway is still healthy.
    let (status, _) = http(gw.http, "GET", "/healthz", None).await.unwrap();
    assert_eq!(status, 200);
}

/// A POST with a body, over a raw socket: the status.
async fn post_body(addr: SocketAddr, path: &str, token: &str, body: &[u8]) -> u16 {
    use tokio::io::AsyncReadExt;
    let mut c = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.0\r\nHost: warden\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    c.write_all(head.as_bytes()).await.unwrap();
    // The server may answer (413) before reading everything.
    let _ = c.write_all(body).await;
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), c.read_to_end(&mut raw)).await;
    String::from_utf8_lossy(&raw)
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn webhooks_arrive_signed_when_a_review_opens_and_closes() {
    let (_pg, gw, seen) = start().await;
    let agent = gw.issue_token("review-agent", "agents", "1h").unwrap();
    let dba = gw.issue_token("review-dba", "dba", "1h").unwrap();
    let mut s = Raw::login(gw.pg, "app", &agent).await.unwrap();
    s.query("DELETE FROM keep_t").await.unwrap();
    let id = s.held().await.unwrap();
    api(&gw, "POST", &format!("/api/v1/reviews/{id}/reject"), &dba).await;
    s.result().await.unwrap();
    let mut events = Vec::new();
    for _ in 0..100 {
        events = seen.lock().unwrap().clone();
        if events.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(events.len(), 2, "{events:?}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut names = Vec::new();
    for (event, ts, sig, body) in &events {
        warden_approvals::webhook::verify(HOOK_SECRET.as_bytes(), ts, sig, body, now, 300)
            .unwrap_or_else(|e| panic!("bad signature on {event}: {e:?}"));
        assert!(
            warden_approvals::webhook::verify(b"wrong secret", ts, sig, body, now, 300).is_err()
        );
        let v: serde_json::Value = serde_json::from_slice(body).unwrap();
        assert_eq!(v["request"]["id"], id.as_str());
        assert!(
            v["text"].as_str().unwrap().contains("DELETE FROM keep_t"),
            "{v}"
        );
        names.push(event.clone());
    }
    names.sort();
    assert_eq!(names, ["review.closed", "review.opened"]);
    // The secret never reaches the logs.
    assert!(!gw.logs().contains(HOOK_SECRET));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_access_request_approved_for_2s_opens_a_connection_until_it_expires() {
    let (_pg, gw, _) = start().await;
    let agent = gw.issue_token("access-agent", "agents", "1h").unwrap();
    let err = Raw::login(gw.pg, "restricted", &agent)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("42501"), "{err}");

    // The requester's own credential; a connection without access requests refuses.
    let out = gw
        .cli(&["access", "request", "app", "--for", "2s", "--token", &agent])
        .unwrap();
    assert!(!out.status.success());
    let out = cli_ok(
        &gw,
        &[
            "access",
            "request",
            "restricted",
            "--for",
            "2s",
            "--reason",
            "incident 42",
            "--token",
            &agent,
        ],
    );
    let id = out.trim().to_owned();
    assert!(id.starts_with("ar-"), "{out}");
    // Still refused while pending.
    assert!(Raw::login(gw.pg, "restricted", &agent).await.is_err());
    cli_ok(
        &gw,
        &["reviews", "approve", &id, "--reason", "ok for the incident"],
    );

    let mut s = Raw::login(gw.pg, "restricted", &agent)
        .await
        .expect("allowed by the grant");
    s.query("SELECT 7").await.unwrap();
    assert_eq!(s.result().await.unwrap().0.scalar(), "7");
    // The session ends when the grant does.
    let started = std::time::Instant::now();
    let ended = loop {
        match read_frame(&mut s.s, &mut s.buf).await {
            Ok(f) if f.tag() == b'E' => break ErrorResponse::from_frame(&f).unwrap(),
            Ok(_) => continue,
            Err(e) => panic!("closed without an error: {e}"),
        }
    };
    assert_eq!(ended.fields.code(), Some("57P01"));
    assert!(
        ended
            .fields
            .message()
            .unwrap_or("")
            .contains("access request"),
        "{:?}",
        ended.fields.message()
    );
    assert!(started.elapsed() < Duration::from_secs(4));
    assert!(Raw::login(gw.pg, "restricted", &agent).await.is_err());
    // psql agrees.
    assert!(psql(&gw.dsn("restricted", &agent), &["-c", "select 1"]).is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn waiting_for_a_review_is_not_idleness() {
    let (pg, gw, _) = start().await;
    let agent = gw.issue_token("idle-agent", "agents", "1h").unwrap();
    let dba = gw.issue_token("idle-dba", "dba", "1h").unwrap();
    let mut s = Raw::login(gw.pg, "idle", &agent).await.unwrap();
    // Pipelined behind a running query, so the last thing the gateway saw before the hold
    // is the target's ReadyForQuery, not the client speaking.
    let batch = [
        common::query_frame("SELECT pg_sleep(0.3)"),
        common::query_frame("DROP TABLE b_t"),
    ]
    .concat();
    s.send(&batch).await.unwrap();
    s.result().await.unwrap();
    let id = s.held().await.unwrap();
    // Held well past the 1 s idle_timeout, then approved: it runs.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (status, body) = api(&gw, "POST", &format!("/api/v1/reviews/{id}/approve"), &dba).await;
    assert_eq!(status, 200, "{body}");
    let (res, tags) = s.result().await.unwrap();
    assert_eq!(res, QueryResult::Rows(vec![]), "{}", gw.logs());
    assert_eq!(tags, ["DROP TABLE"]);
    assert!(!table_exists(&pg, "b_t").await);
    // Idle afterwards: the session ends as configured.
    let ended = loop {
        let f = read_frame(&mut s.s, &mut s.buf).await.unwrap();
        if f.tag() == b'E' {
            break ErrorResponse::from_frame(&f).unwrap();
        }
    };
    assert_eq!(ended.fields.code(), Some("57P01"));
}
