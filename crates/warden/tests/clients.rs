//! Real PostgreSQL clients through the gateway: psql, pgbench (simple, extended, prepared),
//! psycopg 3 and asyncpg (COPY both ways, cancel, LISTEN/NOTIFY), PgJDBC when installed,
//! and TLS (SSLRequest and the rule that non-loopback clients must use it).

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{psql, Gateway};
use warden_testkit::{run_client_script, PgCluster};

const PW_ENV: &str = "WARDEN_TEST_TARGET_PW";

async fn start() -> (PgCluster, Gateway, String) {
    let pg = PgCluster::start_scram().await.expect("scram cluster");
    let (gw, token) = start_gateway(&pg, "").await;
    (pg, gw, token)
}

/// A gateway in front of `pg`, with `gateway` (lines of its `[gateway]` section) added.
async fn start_gateway(pg: &PgCluster, gateway: &str) -> (Gateway, String) {
    let config = format!(
        r#"
[gateway]
{gateway}

[[connections]]
name = "app"
target = "postgres://127.0.0.1:{}/postgres"
allow_groups = ["agents"]
username = "postgres"
password_env = "{PW_ENV}"
"#,
        pg.port()
    );
    let gw = Gateway::start(&config, &[(PW_ENV, pg.superuser_password())])
        .await
        .expect("gateway");
    let token = gw.issue_token("client-tests", "agents", "1h").unwrap();
    (gw, token)
}

#[tokio::test(flavor = "multi_thread")]
async fn psql_copy_both_ways_errors_and_notices() {
    let (_pg, gw, token) = start().await;
    let dsn = gw.dsn("app", &token);
    let script = r#"
create table t (id int primary key, name text);
\copy t from stdin
1	alpha
2	beta
\.
select count(*) from t;
\copy (select name from t order by id) to stdout
do $$ begin raise notice 'hello from the target'; end $$;
"#;
    let out = Command::new("psql")
        .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", &dsn])
        .env("PGCONNECT_TIMEOUT", "10")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(script.as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("2\nalpha\nbeta"), "{stdout}");
    assert!(
        stderr.contains("NOTICE:  hello from the target"),
        "{stderr}"
    );

    // An error is passed through with its SQLSTATE and the session survives it.
    let err = psql(&dsn, &["-v", "VERBOSITY=verbose", "-c", "select 1/0"]).unwrap_err();
    assert!(err.to_string().contains("22012"), "{err}");
    let out = psql(
        &dsn,
        &[
            "-v",
            "ON_ERROR_STOP=0",
            "-c",
            "select 1/0",
            "-c",
            "select 'still here'",
        ],
    )
    .unwrap();
    assert!(out.contains("still here"), "{out}");
}

/// The gateway's threads named `warden-pg-*` and how often each was switched in so far.
fn session_threads(pid: u32) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let dir = task.unwrap().path();
        let Ok(comm) = std::fs::read_to_string(dir.join("comm")) else {
            continue;
        };
        let comm = comm.trim().to_owned();
        if !comm.starts_with("warden-pg-") {
            continue;
        }
        let status = std::fs::read_to_string(dir.join("status")).unwrap();
        let switches = status
            .lines()
            .filter(|l| l.contains("ctxt_switches:"))
            .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum();
        out.push((comm, switches));
    }
    out.sort();
    out
}

fn pgbench_init(pg: &PgCluster) {
    let init = Command::new("pgbench")
        .args([
            "-i",
            "-q",
            "-s",
            "1",
            "-h",
            "127.0.0.1",
            "-p",
            &pg.port().to_string(),
            "-U",
            "postgres",
            "postgres",
        ])
        .env("PGPASSWORD", pg.superuser_password())
        .output()
        .unwrap();
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
}

fn pgbench_through(gw: &Gateway, token: &str, args: &[&str]) -> String {
    let out = Command::new("pgbench")
        .args(args)
        .args(["-n", "-h", "127.0.0.1", "-p", &gw.pg.port().to_string()])
        .args(["-U", "bench", "app"])
        .env("PGPASSWORD", token)
        .env("PGSSLMODE", "disable")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_run_on_the_session_threads() {
    let pg = PgCluster::start_scram().await.expect("scram cluster");
    pgbench_init(&pg);

    // Two session threads: the sessions are spread over both, and they do the work.
    let (gw, token) = start_gateway(&pg, "session_threads = 2").await;
    let pid = gw.process.pid().unwrap();
    let before = session_threads(pid);
    assert_eq!(
        before.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        ["warden-pg-0", "warden-pg-1"],
        "{before:?}"
    );
    let out = pgbench_through(&gw, &token, &["-S", "-c", "4", "-j", "2", "-t", "300"]);
    assert!(out.contains("processed: 1200/1200"), "{out}");
    let after = session_threads(pid);
    for ((name, b), (_, a)) in before.iter().zip(&after) {
        // Each thread ran two of the four sessions: at least a wake-up per statement.
        assert!(a - b >= 300, "{name} was switched in {} times", a - b);
    }

    // 0: sessions on the shared runtime, as before there were session threads.
    let (gw, token) = start_gateway(&pg, "session_threads = 0").await;
    assert!(session_threads(gw.process.pid().unwrap()).is_empty());
    let out = pgbench_through(&gw, &token, &["-S", "-c", "4", "-j", "2", "-t", "100"]);
    assert!(out.contains("processed: 400/400"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn pgbench_all_three_protocol_modes() {
    let (pg, gw, token) = start().await;
    pgbench_init(&pg);
    for mode in ["simple", "extended", "prepared"] {
        let out = pgbench_through(&gw, &token, &["-M", mode, "-c", "4", "-j", "2", "-t", "50"]);
        assert!(
            out.contains("number of transactions actually processed: 200/200"),
            "{mode}: {out}"
        );
        assert!(
            out.contains("number of failed transactions: 0"),
            "{mode}: {out}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn psycopg_copy_cancel_listen_notify() {
    let (_pg, gw, token) = start().await;
    let out = run_client_script("psycopg_smoke.py", &gw.dsn("app", &token))
        .await
        .unwrap();
    for needle in [
        "OK copy from stdin",
        "OK copy to stdout",
        "OK cancel",
        "OK listen/notify",
        "OK all",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn asyncpg_prepared_copy_cancel_notify() {
    let (_pg, gw, token) = start().await;
    let out = run_client_script("asyncpg_smoke.py", &gw.uri("app", &token))
        .await
        .unwrap();
    assert!(out.contains("OK all"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn cancel_of_a_long_query_returns_quickly() {
    let (_pg, gw, token) = start().await;
    let dsn = gw.dsn("app", &token);
    // psql sends a CancelRequest on SIGINT; the gateway must route it to the right backend.
    let started = Instant::now();
    let child = Command::new("psql")
        .args(["-X", "-c", "select pg_sleep(30)", &dsn])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let pid = child.id().to_string();
    let sent = Instant::now();
    Command::new("kill").args(["-INT", &pid]).status().unwrap();
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let waited = sent.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("canceling statement due to user request"),
        "{stderr}"
    );
    assert!(waited < Duration::from_secs(1), "cancel took {waited:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_is_offered_and_works() {
    let (_pg, gw, token) = start().await;
    let dsn = format!(
        "host=127.0.0.1 port={} dbname=app user=t password={token} sslmode=require",
        gw.pg.port()
    );
    let out = psql(&dsn, &["-c", "select 'over tls'"]).unwrap();
    assert_eq!(out.trim(), "over tls");
    // The certificate was generated on first start under the data directory.
    assert!(gw.dir.path().join("data/tls/gateway-cert.pem").exists());
    // GSSAPI encryption is declined and the client falls back.
    let dsn = format!(
        "host=127.0.0.1 port={} dbname=app user=t password={token} gssencmode=prefer sslmode=disable",
        gw.pg.port()
    );
    assert_eq!(psql(&dsn, &["-c", "select 1"]).unwrap().trim(), "1");
}

#[tokio::test(flavor = "multi_thread")]
async fn jdbc_when_available() {
    let jar = "/usr/share/java/postgresql.jar";
    if !std::path::Path::new(jar).exists()
        || Command::new("javac").arg("-version").output().is_err()
    {
        eprintln!("skipping: PgJDBC ({jar}) or javac not installed");
        return;
    }
    let (_pg, gw, token) = start().await;
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("Smoke.java");
    std::fs::write(
        &src,
        r#"
import java.sql.*;
import java.util.Properties;
public class Smoke {
  public static void main(String[] a) throws Exception {
    Properties p = new Properties();
    p.setProperty("user", "jdbc");
    p.setProperty("password", System.getenv("WARDEN_TOKEN"));
    p.setProperty("sslmode", "disable");
    try (Connection c = DriverManager.getConnection(a[0], p)) {
      try (PreparedStatement s = c.prepareStatement("select ?::int + 1, current_user")) {
        for (int i = 0; i < 10; i++) {   // past prepareThreshold: server-side prepared
          s.setInt(1, i);
          try (ResultSet r = s.executeQuery()) { r.next(); if (r.getInt(1) != i + 1) throw new Exception("bad"); }
        }
      }
      try { c.createStatement().execute("select 1/0"); throw new Exception("no error"); }
      catch (SQLException e) { if (!"22012".equals(e.getSQLState())) throw e; }
      System.out.println("OK jdbc");
    }
  }
}
"#,
    )
    .unwrap();
    let javac = Command::new("javac")
        .arg("-d")
        .arg(dir.path())
        .arg(&src)
        .output()
        .unwrap();
    assert!(
        javac.status.success(),
        "{}",
        String::from_utf8_lossy(&javac.stderr)
    );
    let out = Command::new("java")
        .arg("-cp")
        .arg(format!("{}:{jar}", dir.path().display()))
        .arg("Smoke")
        .arg(format!("jdbc:postgresql://127.0.0.1:{}/app", gw.pg.port()))
        .env("WARDEN_TOKEN", &token)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("OK jdbc"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
