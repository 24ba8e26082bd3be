//! Just-in-time credentials end to end: a real SCRAM cluster, the gateway as a process,
//! real clients. Each session gets its own role, with exactly the granted privileges, gone
//! within a second of the session ending; a killed gateway's roles are swept on restart;
//! misconfiguration is named to the client; no secret reaches a log or the store.

mod common;

use std::time::{Duration, Instant};

use common::{psql, raw_login, simple_query, sqlite_dump, Gateway, Login, QueryResult};
use tokio::io::AsyncWriteExt;
use warden_testkit::PgCluster;

const ADMIN_PW: &str = "adm1n-Secret-6d0c4ab2e9";
const ADMIN_ENV: &str = "WARDEN_TEST_JIT_ADMIN_PW";
const STATIC_ENV: &str = "WARDEN_TEST_STATIC_PW";

async fn cluster() -> PgCluster {
    let pg = PgCluster::start_scram().await.expect("scram cluster");
    pg.psql(&format!(
        "CREATE ROLE warden_admin LOGIN CREATEROLE PASSWORD '{ADMIN_PW}';
         CREATE ROLE weak_admin LOGIN PASSWORD '{ADMIN_PW}';
         CREATE ROLE app_readonly NOLOGIN;
         CREATE TABLE granted (id int); INSERT INTO granted VALUES (1), (2);
         CREATE TABLE secret (id int);
         CREATE TABLE extra (id int);
         GRANT SELECT ON granted TO app_readonly;
         GRANT CREATE ON SCHEMA public TO app_readonly;
         GRANT INSERT ON extra TO warden_admin WITH GRANT OPTION;"
    ))
    .await
    .expect("cluster setup");
    pg
}

fn config(pg: &PgCluster) -> String {
    let port = pg.port();
    let jit = |name: &str, extra: &str| {
        format!(
            r#"
[[connections]]
name = "{name}"
target = "postgres://127.0.0.1:{port}/postgres"
allow_groups = ["agents"]
credentials = "jit"

[connections.jit]
admin_password_env = "{ADMIN_ENV}"
{extra}
"#
        )
    };
    [
        jit(
            "app",
            "admin_username = \"warden_admin\"\ngrant_roles = [\"app_readonly\"]\n\
             grants = [\"GRANT INSERT ON public.extra TO {role}\"]",
        ),
        jit(
            "app_drop",
            "admin_username = \"warden_admin\"\ngrant_roles = [\"app_readonly\"]\n\
             owned_objects = \"drop\"",
        ),
        jit(
            "short",
            "admin_username = \"warden_admin\"\ngrant_roles = [\"app_readonly\"]",
        )
        .replace(
            "credentials = \"jit\"",
            "credentials = \"jit\"\nmax_session = \"1s\"",
        ),
        jit(
            "weak",
            "admin_username = \"weak_admin\"\ngrant_roles = [\"app_readonly\"]",
        ),
        jit(
            "missing",
            "admin_username = \"warden_admin\"\ngrant_roles = [\"no_such_role\"]",
        ),
        format!(
            r#"
[[connections]]
name = "static"
target = "postgres://127.0.0.1:{port}/postgres"
allow_groups = ["agents"]
username = "postgres"
password_env = "{STATIC_ENV}"
"#
        ),
    ]
    .concat()
}

async fn start(pg: &PgCluster) -> (Gateway, String) {
    let gw = Gateway::start(
        &config(pg),
        &[(ADMIN_ENV, ADMIN_PW), (STATIC_ENV, pg.superuser_password())],
    )
    .await
    .expect("gateway");
    let token = gw.issue_token("jit-agent", "agents", "1h").unwrap();
    (gw, token)
}

async fn login(gw: &Gateway, db: &str, token: &str) -> tokio::net::TcpStream {
    match raw_login(gw.pg, db, token).await.expect("login") {
        Login::Ok(s) => s,
        Login::Error { code, message } => panic!("login to {db} failed: {code} {message}"),
    }
}

/// A live session on `app` and the JIT role it runs as.
async fn session_role(gw: &Gateway, token: &str) -> (tokio::net::TcpStream, String) {
    let mut s = login(gw, "app", token).await;
    let role = simple_query(&mut s, "select current_user")
        .await
        .unwrap()
        .scalar();
    (s, role)
}

async fn count(pg: &PgCluster, sql: &str) -> i64 {
    pg.psql(sql).await.unwrap().trim().parse().unwrap()
}

/// Waits up to `limit` for `sql` (a count) to reach zero; returns how long it took.
async fn until_zero(pg: &PgCluster, sql: &str, limit: Duration) -> Duration {
    let t = Instant::now();
    while count(pg, sql).await != 0 {
        assert!(t.elapsed() < limit, "still not zero after {limit:?}: {sql}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    t.elapsed()
}

/// Counts session roles: Warden's marker in the comment and the prefix in the name.
fn session_roles() -> String {
    "SELECT count(*) FROM pg_roles WHERE starts_with(rolname, 'warden_') \
     AND shobj_description(oid, 'pg_authid') LIKE 'warden-jit v1 %'"
        .into()
}

#[tokio::test(flavor = "multi_thread")]
async fn session_role_has_granted_privileges_and_is_gone_after_disconnect() {
    let pg = cluster().await;
    // The setup above set the admin password in SQL; everything after is Warden's doing.
    let setup_log_len = pg.log_contents().len();
    let (gw, token) = start(&pg).await;

    // psql: current_user is a session role with exactly what was granted.
    let out = psql(
        &gw.dsn("app", &token),
        &[
            "-c",
            "select current_user, session_user = current_user",
            "-c",
            "select count(*) from granted",
            "-c",
            "insert into extra values (1)",
        ],
    )
    .unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("warden_") && lines[0].ends_with("|t"),
        "{out}"
    );
    assert_eq!(lines[1], "2", "{out}");
    let first_role = lines[0].split('|').next().unwrap().to_owned();
    for (sql, table) in [
        ("insert into granted values (3)", "granted"),
        ("select * from secret", "secret"),
        ("create role sneaky", ""),
    ] {
        let err = psql(&gw.dsn("app", &token), &["-c", sql]).unwrap_err();
        assert!(
            err.to_string().contains("permission denied"),
            "{sql}: {err}"
        );
        assert!(err.to_string().contains(table), "{sql}: {err}");
    }

    // Two concurrent sessions of one identity: distinct roles, visible in pg_stat_activity.
    let mut a = login(&gw, "app", &token).await;
    let mut b = login(&gw, "app", &token).await;
    let role_a = simple_query(&mut a, "select current_user")
        .await
        .unwrap()
        .scalar();
    let role_b = simple_query(&mut b, "select current_user")
        .await
        .unwrap()
        .scalar();
    assert_ne!(role_a, role_b);
    assert_ne!(role_a, first_role);
    let activity = pg
        .psql(&format!(
            "SELECT usename || ' ' || application_name FROM pg_stat_activity \
             WHERE usename IN ('{role_a}', '{role_b}') ORDER BY usename"
        ))
        .await
        .unwrap();
    let mut want = [role_a.clone(), role_b.clone()];
    want.sort();
    for (line, role) in activity.lines().zip(want.iter()) {
        let sid = role.trim_start_matches("warden_");
        assert_eq!(line, format!("{role} warden:{sid}:jit-agent"), "{activity}");
    }
    assert_eq!(activity.lines().count(), 2, "{activity}");

    // Ending one session drops its role within a second; the other keeps working.
    drop(a);
    let took = until_zero(
        &pg,
        &format!("SELECT count(*) FROM pg_roles WHERE rolname = '{role_a}'"),
        Duration::from_secs(1),
    )
    .await;
    eprintln!("role dropped {took:?} after disconnect");
    assert_eq!(
        simple_query(&mut b, "select count(*) from granted")
            .await
            .unwrap()
            .scalar(),
        "2"
    );
    // A clean Terminate drops it just the same.
    b.write_all(&[b'X', 0, 0, 0, 4]).await.unwrap();
    drop(b);
    until_zero(&pg, &session_roles(), Duration::from_secs(1)).await;

    // No secret in the gateway's logs, its store, or the target's statement log.
    let server_log = pg.log_contents()[setup_log_len..].to_owned();
    assert!(
        server_log.contains("CREATE ROLE \"warden_"),
        "log_statement=all is on"
    );
    let mut store = sqlite_dump(&gw.store_path(), "select * from auth_audit").unwrap();
    assert!(
        store.contains("role warden_"),
        "the audit names the session role: {store}"
    );
    // The raw bytes of the database and its WAL, whatever table a secret could hide in.
    for entry in std::fs::read_dir(gw.store_path().parent().unwrap()).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("warden.db")
        {
            store.push_str(&String::from_utf8_lossy(&std::fs::read(path).unwrap()));
        }
    }
    for (what, text) in [
        ("gateway log", gw.logs()),
        ("store", store),
        ("server log", server_log.clone()),
    ] {
        assert!(!text.contains(ADMIN_PW), "admin password in the {what}");
    }
    // Every PASSWORD in SQL text is a SCRAM verifier, never a plaintext.
    let mut verifiers = 0;
    for (i, _) in server_log.match_indices("PASSWORD ") {
        let after = &server_log[i + 9..];
        if let Some(quoted) = after.strip_prefix('\'') {
            assert!(
                quoted.starts_with("SCRAM-SHA-256$1:"),
                "plaintext: {}",
                &after[..40.min(after.len())]
            );
            let v: String = quoted.chars().take_while(|c| *c != '\'').collect();
            assert!(!gw.logs().contains(&v), "verifier in the gateway log");
            verifiers += 1;
        }
    }
    // The sessions above made six roles (three psql runs that failed on privileges count).
    assert!(verifiers >= 6, "{verifiers} verifiers");
}

#[tokio::test(flavor = "multi_thread")]
async fn roles_that_own_objects_are_still_dropped() {
    let pg = cluster().await;
    let (gw, token) = start(&pg).await;
    psql(&gw.dsn("app", &token), &["-c", "create table kept (x int)"]).unwrap();
    psql(
        &gw.dsn("app_drop", &token),
        &["-c", "create table dropped (x int)"],
    )
    .unwrap();
    until_zero(&pg, &session_roles(), Duration::from_secs(2)).await;
    let owners = pg
        .psql(
            "SELECT tablename || ':' || tableowner FROM pg_tables \
             WHERE tablename IN ('kept', 'dropped')",
        )
        .await
        .unwrap();
    assert_eq!(
        owners, "kept:warden_admin",
        "reassigned, or dropped with the role"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn misconfiguration_is_named_and_the_gateway_keeps_serving() {
    let pg = cluster().await;
    let (gw, token) = start(&pg).await;
    for (db, needles) in [
        ("weak", ["permission denied to create role", "CREATEROLE"]),
        (
            "missing",
            ["\"no_such_role\" does not exist", "grant_roles"],
        ),
    ] {
        let out = psql(&gw.dsn(db, &token), &["-c", "select 1"])
            .unwrap_err()
            .to_string();
        for n in needles {
            assert!(out.contains(n), "{db}: {n:?} not in {out}");
        }
        assert!(!out.contains(ADMIN_PW));
        match raw_login(gw.pg, db, &token).await.unwrap() {
            Login::Error { code, .. } => assert_eq!(code, "08004"),
            Login::Ok(_) => panic!("{db} should fail"),
        }
    }
    assert_eq!(
        psql(&gw.dsn("static", &token), &["-c", "select 1"])
            .unwrap()
            .trim(),
        "1"
    );
    assert!(psql(&gw.dsn("app", &token), &["-c", "select current_user"])
        .unwrap()
        .starts_with("warden_"));
    // Nothing half-made by the failures, and the good session's role dropped.
    until_zero(&pg, &session_roles(), Duration::from_secs(1)).await;
    assert!(!gw.logs().contains(ADMIN_PW));
}

#[tokio::test(flavor = "multi_thread")]
async fn roles_of_a_killed_gateway_are_swept_on_restart() {
    let pg = cluster().await;
    let (gw, token) = start(&pg).await;
    let (mut s, role) = session_role(&gw, &token).await;
    // A statement still running on the target when the gateway dies.
    s.write_all(&common::query_frame("select pg_sleep(60)"))
        .await
        .unwrap();
    let backends = format!("SELECT count(*) FROM pg_stat_activity WHERE usename = '{role}'");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(count(&pg, &backends).await, 1);

    let Gateway {
        mut process, dir, ..
    } = gw;
    process.kill().await.unwrap();
    drop(process);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let role_left = format!("SELECT count(*) FROM pg_roles WHERE rolname = '{role}'");
    assert_eq!(
        count(&pg, &role_left).await,
        1,
        "SIGKILL leaves the role behind"
    );
    assert_eq!(count(&pg, &backends).await, 1, "and the busy backend");

    let gw = Gateway::start_in(
        dir,
        &config(&pg),
        &[(ADMIN_ENV, ADMIN_PW), (STATIC_ENV, pg.superuser_password())],
    )
    .await
    .expect("restart");
    let took = until_zero(&pg, &role_left, Duration::from_secs(10)).await;
    eprintln!("orphan swept {took:?} after restart");
    assert_eq!(count(&pg, &backends).await, 0, "stale backend terminated");
    assert!(
        gw.logs().contains("sweeper dropped a session role"),
        "{}",
        gw.logs()
    );
    // Roles that are not Warden's are untouched.
    assert_eq!(
        count(&pg, "SELECT count(*) FROM pg_roles WHERE rolname IN ('warden_admin', 'weak_admin', 'app_readonly')").await,
        3
    );
    // And the restarted gateway serves new sessions.
    let mut s2 = login(&gw, "app", &token).await;
    assert!(matches!(
        simple_query(&mut s2, "select 1").await.unwrap(),
        QueryResult::Rows(_)
    ));
}

/// Reads frames until an ErrorResponse; returns its SQLSTATE and message.
async fn next_error(s: &mut tokio::net::TcpStream) -> (String, String) {
    let mut buf = bytes::BytesMut::new();
    loop {
        let f = common::read_frame(s, &mut buf)
            .await
            .expect("an error before EOF");
        if f.tag() == b'E' {
            let e = <warden_wire::ErrorResponse as warden_wire::Message>::from_frame(&f).unwrap();
            return (
                e.fields.code().unwrap_or("").to_owned(),
                e.fields.message().unwrap_or("").to_owned(),
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn max_session_ends_the_session_and_drops_the_role() {
    let pg = cluster().await;
    let (gw, token) = start(&pg).await;
    let mut s = login(&gw, "short", &token).await;
    let started = Instant::now();
    s.write_all(&common::query_frame("select pg_sleep(10)"))
        .await
        .unwrap();
    let (code, message) = next_error(&mut s).await;
    assert_eq!(code, "57P01", "{message}");
    assert!(message.contains("maximum length"), "{message}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    until_zero(&pg, &session_roles(), Duration::from_secs(2)).await;
    until_zero(
        &pg,
        "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'select pg_sleep(10)%'",
        Duration::from_secs(2),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_drops_live_roles_and_metrics_show_setup_latency() {
    let pg = cluster().await;
    let (gw, token) = start(&pg).await;
    let (_session, role) = session_role(&gw, &token).await;

    // Setup latency by credential kind, and the live-role gauge.
    let metrics = http_get(gw.http, "/metrics").await;
    for needle in [
        "warden_pg_session_setup_seconds_count{credentials=\"jit\"}",
        "warden_jit_role_create_seconds_count",
        "warden_jit_roles_live{connection=\"app\"} 1",
    ] {
        assert!(metrics.contains(needle), "{needle} not in\n{metrics}");
    }

    let Gateway { mut process, .. } = gw;
    let pid = process.pid().unwrap().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(15), process.wait())
        .await
        .expect("gateway exits on SIGTERM")
        .unwrap();
    assert!(status.success(), "{status:?}");
    assert_eq!(
        count(
            &pg,
            &format!("SELECT count(*) FROM pg_roles WHERE rolname = '{role}'")
        )
        .await,
        0,
        "role dropped before exit"
    );
    assert_eq!(
        count(
            &pg,
            &format!("SELECT count(*) FROM pg_stat_activity WHERE usename = '{role}'")
        )
        .await,
        0
    );
}

async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::AsyncReadExt;
    let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
    c.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    c.read_to_string(&mut out).await.unwrap();
    out
}
