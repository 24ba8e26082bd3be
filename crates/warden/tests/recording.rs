//! Session recording end to end: real clients through the gateway process, recordings
//! replayed, exported and verified with the CLI, tampering named, a SIGKILL survived,
//! secrets kept out; and the session bounds (idle timeout, kill, revocation, token expiry).

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{raw_login, simple_query, Gateway, Login};
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use warden_testkit::{run_client_script, PgCluster};

const PW_ENV: &str = "WARDEN_TEST_REC_PW";

fn config(pg: &PgCluster) -> String {
    let port = pg.port();
    let conn = |name: &str, extra: &str| {
        format!(
            r#"
[[connections]]
name = "{name}"
target = "postgres://127.0.0.1:{port}/postgres"
allow_groups = ["agents"]
username = "postgres"
password_env = "{PW_ENV}"
{extra}
"#
        )
    };
    [conn("app", ""), conn("idle", "idle_timeout = \"2s\"")].concat()
}

async fn start() -> (PgCluster, Gateway, String) {
    let pg = PgCluster::start_scram().await.expect("cluster");
    let gw = Gateway::start(&config(&pg), &[(PW_ENV, pg.superuser_password())])
        .await
        .expect("gateway");
    let token = gw.issue_token("rec-agent", "agents", "1h").unwrap();
    (pg, gw, token)
}

fn cli(gw: &Gateway, args: &[&str]) -> (bool, String) {
    let out = gw.cli(args).unwrap();
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// The newest session of `identity`, once its status is `status`.
async fn session_of(gw: &Gateway, identity: &str, status: &str) -> Value {
    let t = Instant::now();
    loop {
        let (ok, out) = cli(gw, &["sessions", "list", "--identity", identity, "--json"]);
        assert!(ok, "{out}");
        let rows: Value = serde_json::from_str(&out).unwrap_or(Value::Null);
        if let Some(row) = rows.as_array().and_then(|r| r.first()) {
            if row["status"] == status {
                return row.clone();
            }
        }
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "no {status} session for {identity}: {out}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn events(gw: &Gateway, id: &str) -> Vec<Value> {
    let (ok, out) = cli(gw, &["sessions", "export", id, "--format", "ndjson"]);
    assert!(ok, "{out}");
    out.lines()
        .map(|l| serde_json::from_str(l).expect("ndjson line"))
        .collect()
}

fn recording_path(gw: &Gateway, id: &str) -> PathBuf {
    gw.dir
        .path()
        .join("data")
        .join("recordings")
        .join(&id[..2])
        .join(format!("{id}.wrec"))
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files(&p));
        } else {
            out.push(p);
        }
    }
    out
}

async fn login(gw: &Gateway, db: &str, token: &str) -> tokio::net::TcpStream {
    match raw_login(gw.pg, db, token).await.expect("login") {
        Login::Ok(s) => s,
        Login::Error { code, message } => panic!("login failed: {code} {message}"),
    }
}

/// Waits for the FATAL the gateway sends when it ends a session.
async fn ended(s: &mut tokio::net::TcpStream, within: Duration) -> (String, String) {
    let mut buf = bytes::BytesMut::new();
    tokio::time::timeout(within, async {
        loop {
            let f = common::read_frame(s, &mut buf)
                .await
                .expect("a FATAL before EOF");
            if f.tag() == b'E' {
                let e =
                    <warden_wire::ErrorResponse as warden_wire::Message>::from_frame(&f).unwrap();
                return (
                    e.fields.code().unwrap_or("").to_owned(),
                    e.fields.message().unwrap_or("").to_owned(),
                );
            }
        }
    })
    .await
    .expect("the session was ended in time")
}

#[tokio::test(flavor = "multi_thread")]
async fn psycopg_session_replays_in_order_and_verifies() {
    let (_pg, gw, token) = start().await;
    run_client_script("psycopg_recorded.py", &gw.dsn("app", &token))
        .await
        .unwrap();
    let row = session_of(&gw, "rec-agent", "complete").await;
    let id = row["id"].as_str().unwrap().to_owned();
    assert_eq!(row["end_reason"], "client_quit", "{row}");

    let evs = events(&gw, &id);
    assert_eq!(evs[0]["type"], "session_start");
    assert_eq!(evs[0]["subject"], "rec-agent");
    assert_eq!(evs.last().unwrap()["type"], "session_end");
    let seqs: Vec<u64> = evs.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (0..evs.len() as u64).collect::<Vec<_>>());

    let stmts: Vec<&Value> = evs.iter().filter(|e| e["type"] == "statement").collect();
    let find = |needle: &str| -> &Value {
        stmts
            .iter()
            .find(|s| s["sql"].as_str().unwrap().contains(needle))
            .unwrap_or_else(|| panic!("no statement with {needle:?} in {stmts:#?}"))
    };
    // A statement carries its completion when both were written at the same
    // ReadyForQuery (always, in this session: nothing runs across a flush).
    assert!(!evs.iter().any(|e| e["type"] == "completion"), "{evs:#?}");
    let completion = |id: &Value| -> &Value {
        let c = &find_id(&stmts, id)["completion"];
        assert_eq!(c["statement"], *id);
        c
    };
    let ddl = find("create table rec_items");
    assert_eq!(completion(&ddl["id"])["tag"], "CREATE TABLE");
    let ins = find("values ($1, $2, $3)");
    assert_eq!(ins["protocol"], "extended");
    assert_eq!(ins["params"], serde_json::json!(["3", "plum's", "3.75"]));
    assert_eq!(completion(&ins["id"])["tag"], "INSERT 0 1");
    let sel = find("where price > $1");
    assert_eq!(sel["params"], serde_json::json!(["2"]));
    // The rows travel in the statement's completion.
    assert!(!evs.iter().any(|e| e["type"] == "result"), "{evs:#?}");
    let result = &completion(&sel["id"])["result"];
    assert_eq!(result["columns"], serde_json::json!(["id", "name"]));
    assert_eq!(
        result["rows"],
        serde_json::json!([["2", "pear"], ["3", "plum's"]])
    );
    let bad = find("select 1/0");
    assert_eq!(completion(&bad["id"])["error"]["code"], "22012");
    // Statements in the order they were sent.
    let order: Vec<u64> = [ddl, ins, sel, bad]
        .iter()
        .map(|s| s["id"].as_u64().unwrap())
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");

    // The password change is recorded, redacted; the password is nowhere on disk.
    let alter = find("alter role rec_victim password");
    assert_eq!(alter["redacted"], true);
    for f in files(&gw.dir.path().join("data")) {
        let bytes = std::fs::read(&f).unwrap();
        assert!(
            !bytes.windows(7).any(|w| w == b"hunter2"),
            "hunter2 in {}",
            f.display()
        );
    }
    assert!(!gw.logs().contains("hunter2"));

    let (ok, out) = cli(&gw, &["sessions", "replay", &id]);
    assert!(ok, "{out}");
    for needle in ["select 1/0", "22012", "plum's", "rec-agent"] {
        assert!(out.contains(needle), "{needle} not in replay:\n{out}");
    }
    let (ok, out) = cli(&gw, &["sessions", "verify", &id]);
    assert!(ok && out.contains("verified"), "{out}");
    let (ok, out) = cli(&gw, &["audit", "verify"]);
    assert!(ok, "{out}");
    let (ok, out) = cli(&gw, &["sessions", "export", &id, "--format", "csv"]);
    assert!(
        ok && out.contains("select 1/0") && out.contains("22012"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn tampering_is_named_by_verify() {
    let (_pg, gw, token) = start().await;
    let mut s = login(&gw, "app", &token).await;
    // One line per statement (with its completion), between the start and the end.
    for i in 1..=6 {
        simple_query(&mut s, &format!("select {i}")).await.unwrap();
    }
    drop(s);
    let row = session_of(&gw, "rec-agent", "complete").await;
    let id = row["id"].as_str().unwrap().to_owned();
    let path = recording_path(&gw, &id);
    let original = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = original.lines().collect();
    assert!(lines.len() >= 8, "{original}");
    let write = |lines: &[String]| std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let owned: Vec<String> = lines.iter().map(|l| l.to_string()).collect();

    // Flip one byte inside the third event's JSON.
    let mut edited = owned.clone();
    let l = &mut edited[2];
    let pos = l.rfind('"').unwrap() - 1;
    let flipped = if l.as_bytes()[pos] == b'x' { 'y' } else { 'x' };
    l.replace_range(pos..pos + 1, &flipped.to_string());
    write(&edited);
    let (ok, out) = cli(&gw, &["sessions", "verify", &id]);
    assert!(
        !ok && out.contains("line 3") && out.contains("edited"),
        "{out}"
    );

    // Delete one event.
    let mut dropped = owned.clone();
    dropped.remove(3);
    write(&dropped);
    let (ok, out) = cli(&gw, &["sessions", "verify", &id]);
    assert!(
        !ok && out.contains("dropped") && out.contains("seq 3"),
        "{out}"
    );

    // Swap two events.
    let mut swapped = owned.clone();
    swapped.swap(3, 4);
    write(&swapped);
    let (ok, out) = cli(&gw, &["sessions", "verify", &id]);
    assert!(!ok && out.contains("reordered"), "{out}");

    write(&owned);
    let (ok, out) = cli(&gw, &["sessions", "verify", &id]);
    assert!(ok, "{out}");

    // The audit chain: an edited row is named.
    let db = gw.store_path();
    let py = Command::new("python3")
        .arg("-c")
        .arg("import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute(\"update auth_audit set reason='forged' where id=1\"); c.commit()")
        .arg(&db)
        .status()
        .unwrap();
    assert!(py.success());
    let (ok, out) = cli(&gw, &["audit", "verify"]);
    assert!(
        !ok && out.contains("auth_audit row 1") && out.contains("edited"),
        "{out}"
    );
}

use std::process::Command;

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_leaves_an_incomplete_session_with_every_acknowledged_statement() {
    let (pg, gw, token) = start().await;
    let mut s = login(&gw, "app", &token).await;
    for i in 1..=3 {
        simple_query(&mut s, &format!("select 'acknowledged-{i}'"))
            .await
            .unwrap();
    }
    let row = session_of(&gw, "rec-agent", "live").await;
    let id = row["id"].as_str().unwrap().to_owned();
    let Gateway {
        mut process, dir, ..
    } = gw;
    process.kill().await.unwrap();
    drop(process);
    // The killed writer's file still ends in its preallocated (mapped) window.
    let file = warden_recording::path_for(&dir.path().join("data/recordings"), &id).unwrap();
    let zeros = |f: &std::path::Path| {
        let b = std::fs::read(f).unwrap();
        b.len() - b.iter().rposition(|&c| c != 0).map_or(0, |i| i + 1)
    };
    if cfg!(target_os = "linux") {
        assert!(zeros(&file) > 0);
    }
    let gw = Gateway::start_in(dir, &config(&pg), &[(PW_ENV, pg.superuser_password())])
        .await
        .expect("restart");
    let row = session_of(&gw, "rec-agent", "incomplete").await;
    assert_eq!(row["id"], id.as_str());
    // The restart trims it to the events written (just after marking it incomplete).
    let t = Instant::now();
    while zeros(&file) > 0 && t.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(zeros(&file), 0);
    let evs = events(&gw, &id);
    for i in 1..=3 {
        let sql = format!("select 'acknowledged-{i}'");
        let st = evs
            .iter()
            .find(|e| e["type"] == "statement" && e["sql"] == sql.as_str())
            .unwrap_or_else(|| panic!("{sql} missing"));
        assert_eq!(st["completion"]["statement"], st["id"], "{st}");
    }
    let (_, out) = cli(&gw, &["sessions", "verify", &id]);
    assert!(
        !out.contains("edited") && !out.contains("reordered"),
        "{out}"
    );
    let (ok, out) = cli(&gw, &["audit", "verify"]);
    assert!(ok, "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_timeout_spares_a_running_statement() {
    let (_pg, gw, token) = start().await;
    let mut s = login(&gw, "idle", &token).await;
    let t = Instant::now();
    let r = simple_query(&mut s, "select pg_sleep(5)").await.unwrap();
    assert!(matches!(r, common::QueryResult::Rows(_)), "{r:?}");
    assert!(
        t.elapsed() >= Duration::from_secs(5),
        "the statement ran to its end"
    );
    let idle_from = Instant::now();
    let (code, message) = ended(&mut s, Duration::from_secs(5)).await;
    assert_eq!(code, "57P01");
    assert!(message.contains("idle_timeout"), "{message}");
    let waited = idle_from.elapsed();
    assert!(
        waited >= Duration::from_millis(1900) && waited < Duration::from_secs(4),
        "{waited:?}"
    );
    let row = session_of(&gw, "rec-agent", "complete").await;
    assert_eq!(row["end_reason"], "idle_timeout");
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_revocation_and_token_expiry_end_live_sessions() {
    let (_pg, gw, token) = start().await;
    let mut s = login(&gw, "app", &token).await;
    let row = session_of(&gw, "rec-agent", "live").await;
    let id = row["id"].as_str().unwrap().to_owned();
    let t = Instant::now();
    let (ok, out) = cli(&gw, &["sessions", "kill", &id]);
    assert!(ok, "{out}");
    let (code, message) = ended(&mut s, Duration::from_secs(2)).await;
    assert_eq!(code, "57P01");
    assert!(message.contains("operator"), "{message}");
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    let (ok, _) = cli(&gw, &["sessions", "kill", &id]);
    assert!(!ok, "a session that is over cannot be killed");

    // Revoking the token ends the session it opened.
    let revocable = gw.issue_token("rev-agent", "agents", "1h").unwrap();
    let mut s = login(&gw, "app", &revocable).await;
    let (ok, out) = cli(&gw, &["tokens", "list", "--json"]);
    assert!(ok);
    let list: Value = serde_json::from_str(&out).unwrap();
    let jti = list["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["identity"] == "rev-agent")
        .unwrap()["jti"]
        .as_str()
        .unwrap()
        .to_owned();
    let (ok, out) = cli(&gw, &["tokens", "revoke", &jti]);
    assert!(ok, "{out}");
    let (code, message) = ended(&mut s, Duration::from_secs(2)).await;
    assert_eq!(code, "57P01");
    assert!(message.contains("revoked"), "{message}");

    // Revoking an API key ends the sessions it opened just the same.
    let out = gw
        .cli(&[
            "tokens",
            "issue",
            "--name",
            "key-agent",
            "--groups",
            "agents",
            "--api-key",
        ])
        .unwrap();
    assert!(out.status.success());
    let key = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let mut s = login(&gw, "app", &key).await;
    let key_id = key.split('_').nth(1).unwrap().to_owned();
    let (ok, out) = cli(&gw, &["tokens", "revoke", &key_id]);
    assert!(ok, "{out}");
    let (code, message) = ended(&mut s, Duration::from_secs(2)).await;
    assert_eq!(code, "57P01");
    assert!(message.contains("revoked"), "{message}");

    // A session lives no longer than its token.
    let short = gw.issue_token("short-agent", "agents", "2s").unwrap();
    let mut s = login(&gw, "app", &short).await;
    let (code, message) = ended(&mut s, Duration::from_secs(4)).await;
    assert_eq!(code, "57P01");
    assert!(message.contains("expired"), "{message}");
    let _ = s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_api_needs_the_right_group_and_serves_recordings() {
    let (_pg, gw, token) = start().await;
    let auditor = gw
        .issue_token("ann-auditor", "warden-auditors", "1h")
        .unwrap();
    let admin = gw.issue_token("ada-admin", "warden-admins", "1h").unwrap();
    let mut s = login(&gw, "app", &token).await;
    simple_query(&mut s, "select 'via api'").await.unwrap();
    let row = session_of(&gw, "rec-agent", "live").await;
    let id = row["id"].as_str().unwrap().to_owned();
    let get = |path: String, who: Option<String>| {
        let addr = gw.http;
        async move {
            common::http(addr, "GET", &path, who.as_deref())
                .await
                .unwrap()
        }
    };

    let (st, body) = get("/api/v1/sessions".into(), None).await;
    assert_eq!(st, 401, "{body}");
    let problem: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(problem["code"], "unauthenticated");
    let (st, _) = get("/api/v1/sessions".into(), Some("not-a-token".into())).await;
    assert_eq!(st, 401);
    let (st, body) = get("/api/v1/sessions".into(), Some(token.clone())).await;
    assert_eq!(st, 403, "an agent may not read recordings: {body}");

    let (st, body) = get(
        "/api/v1/sessions?identity=rec-agent".into(),
        Some(auditor.clone()),
    )
    .await;
    assert_eq!(st, 200, "{body}");
    assert!(body.contains(&id), "{body}");
    let (st, body) = get(
        format!("/api/v1/sessions/{id}/events?format=ndjson"),
        Some(auditor.clone()),
    )
    .await;
    assert_eq!(st, 200);
    assert!(body.contains("select 'via api'"), "{body}");
    let (st, body) = get(
        format!("/api/v1/sessions/{id}/replay"),
        Some(auditor.clone()),
    )
    .await;
    assert!(st == 200 && body.contains("via api"), "{st} {body}");
    for (path, want) in [
        (format!("/api/v1/sessions/{id}/events?format=xml"), 400),
        (format!("/api/v1/sessions/{id}/events?fmt=json"), 400),
        ("/api/v1/sessions?limit=0".to_owned(), 400),
        ("/api/v1/sessions?since=yesterday".to_owned(), 400),
        ("/api/v1/sessions/..%2F..%2Fetc%2Fpasswd".to_owned(), 400),
        (
            "/api/v1/sessions/00000000-0000-4000-8000-000000000000".to_owned(),
            404,
        ),
    ] {
        let (st, body) = get(path.clone(), Some(auditor.clone())).await;
        assert_eq!(st, want, "{path}: {body}");
        assert!(
            body.contains("\"status\":"),
            "problem body for {path}: {body}"
        );
    }
    let (st, body) = get("/api/v1/audit/verify".into(), Some(auditor.clone())).await;
    assert!(st == 200 && body.contains("\"clean\":true"), "{body}");

    let (st, _) = common::http(
        gw.http,
        "POST",
        &format!("/api/v1/sessions/{id}/kill"),
        Some(&auditor),
    )
    .await
    .unwrap();
    assert_eq!(st, 403, "auditors may not kill");
    let (st, body) = common::http(
        gw.http,
        "POST",
        &format!("/api/v1/sessions/{id}/kill"),
        Some(&admin),
    )
    .await
    .unwrap();
    assert_eq!(st, 202, "{body}");
    let (code, message) = ended(&mut s, Duration::from_secs(1)).await;
    assert_eq!(code, "57P01");
    assert!(message.contains("ada-admin"), "{message}");
    let row = session_of(&gw, "rec-agent", "complete").await;
    assert_eq!(row["end_reason"], "killed");
    let (st, body) = get(format!("/api/v1/sessions/{id}/verify"), Some(auditor)).await;
    assert!(st == 200 && body.contains("\"clean\":true"), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn retention_purges_old_recordings_and_keeps_the_chain_verifiable() {
    let pg = PgCluster::start_scram().await.expect("cluster");
    let cfg = format!(
        "{}\n[recording]\nretention = \"2s\"\npurge_interval = \"1s\"\n",
        config(&pg)
    );
    let gw = Gateway::start(&cfg, &[(PW_ENV, pg.superuser_password())])
        .await
        .expect("gateway");
    let token = gw.issue_token("old-agent", "agents", "1h").unwrap();
    let mut s = login(&gw, "app", &token).await;
    simple_query(&mut s, "select 'soon purged'").await.unwrap();
    drop(s);
    let row = session_of(&gw, "old-agent", "complete").await;
    let id = row["id"].as_str().unwrap().to_owned();
    let path = recording_path(&gw, &id);
    assert!(path.exists());
    // A live session is never purged, however old its first events are.
    let token2 = gw.issue_token("live-agent", "agents", "1h").unwrap();
    let mut live = login(&gw, "app", &token2).await;
    simple_query(&mut live, "select 'still here'")
        .await
        .unwrap();
    let live_row = session_of(&gw, "live-agent", "live").await;

    let row = session_of(&gw, "old-agent", "purged").await;
    assert_eq!(row["id"], id.as_str());
    assert!(!path.exists(), "recording file removed");
    let live_path = recording_path(&gw, live_row["id"].as_str().unwrap());
    assert!(live_path.exists(), "live session kept");
    let (ok, out) = cli(&gw, &["sessions", "verify", &id]);
    assert!(ok && out.contains("purged"), "{out}");
    let (ok, out) = cli(&gw, &["audit", "verify"]);
    assert!(ok, "{out}");
    simple_query(&mut live, "select 1").await.unwrap();
}

/// The statement event with `id` among `stmts`.
fn find_id<'a>(stmts: &[&'a Value], id: &Value) -> &'a Value {
    stmts
        .iter()
        .find(|s| s["id"] == *id)
        .unwrap_or_else(|| panic!("no statement {id}"))
}
