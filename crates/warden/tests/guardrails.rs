//! Guardrails end to end: a result over max_rows is cut off with a warning and an honest
//! command tag (simple and extended protocol, COPY); statements over the per-identity rate
//! are refused with 53400 across the identity's sessions, in order inside a pipeline, while
//! exempt groups and other identities go on.

mod common;

use common::{extended, psql, raw_login, simple_query, Gateway, Login, QueryResult};
use tokio::io::AsyncWriteExt;
use warden_testkit::PgCluster;

const PW_ENV: &str = "WARDEN_TEST_GUARD_PW";

async fn start(guardrails: &str) -> (PgCluster, Gateway) {
    let pg = PgCluster::start_scram().await.expect("cluster");
    let config = format!(
        r#"
[[connections]]
name = "app"
target = "postgres://127.0.0.1:{}/postgres"
allow_groups = ["agents", "dba"]
username = "postgres"
password_env = "{PW_ENV}"

[connections.guardrails]
exempt_groups = ["dba"]
{guardrails}
"#,
        pg.port()
    );
    let gw = Gateway::start(&config, &[(PW_ENV, pg.superuser_password())])
        .await
        .expect("gateway");
    (pg, gw)
}

#[tokio::test(flavor = "multi_thread")]
async fn results_over_max_rows_are_cut_off_with_a_warning() {
    let (_pg, gw) = start("max_rows = 3").await;
    let agent = gw.issue_token("guard-rows", "agents", "1h").unwrap();
    let out = std::process::Command::new("psql")
        .args([
            "-X",
            "-A",
            "-t",
            "-c",
            "SELECT g FROM generate_series(1, 10) g",
        ])
        .arg(gw.dsn("app", &agent))
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        ["1", "2", "3"],
        "{stdout}"
    );
    assert!(
        stderr.contains("cut this result off after 3 rows") && stderr.contains("7 more rows"),
        "{stderr}"
    );
    // COPY is a result too.
    let copy = psql(
        &gw.dsn("app", &agent),
        &["-c", "COPY (SELECT generate_series(1, 10)) TO STDOUT"],
    )
    .unwrap();
    assert_eq!(copy.lines().count(), 3, "{copy}");

    // The tag says what was sent; the next result starts afresh.
    let Login::Ok(mut s) = raw_login(gw.pg, "app", &agent).await.unwrap() else {
        panic!("login")
    };
    match simple_query(&mut s, "SELECT generate_series(1, 5)")
        .await
        .unwrap()
    {
        QueryResult::Rows(rows) => assert_eq!(rows.len(), 3),
        other => panic!("{other:?}"),
    }
    match simple_query(&mut s, "SELECT 1 UNION ALL SELECT 2")
        .await
        .unwrap()
    {
        QueryResult::Rows(rows) => assert_eq!(rows.len(), 2),
        other => panic!("{other:?}"),
    }
    // Exempt: everything.
    let dba = gw.issue_token("guard-dba", "dba", "1h").unwrap();
    let all = psql(
        &gw.dsn("app", &dba),
        &["-c", "SELECT g FROM generate_series(1, 10) g"],
    )
    .unwrap();
    assert_eq!(all.lines().count(), 10);
}

#[tokio::test(flavor = "multi_thread")]
async fn statements_over_the_rate_are_refused_across_sessions() {
    let (_pg, gw) = start("max_statements_per_minute = 4").await;
    let agent = gw.issue_token("guard-rate", "agents", "1h").unwrap();
    let Login::Ok(mut s) = raw_login(gw.pg, "app", &agent).await.unwrap() else {
        panic!("login")
    };
    for i in 0..3 {
        assert_eq!(
            simple_query(&mut s, &format!("SELECT {i}"))
                .await
                .unwrap()
                .scalar(),
            i.to_string()
        );
    }
    // A second session of the same identity shares the minute.
    let Login::Ok(mut s2) = raw_login(gw.pg, "app", &agent).await.unwrap() else {
        panic!("login")
    };
    assert_eq!(
        simple_query(&mut s2, "SELECT 3").await.unwrap().scalar(),
        "3"
    );
    for session in [&mut s, &mut s2] {
        match simple_query(session, "SELECT 4").await.unwrap() {
            QueryResult::Error(code, message) => {
                assert_eq!(code, "53400");
                assert!(message.contains("4 statements per minute"), "{message}");
            }
            other => panic!("not refused: {other:?}"),
        }
    }
    // In the extended protocol the refused Execute answers in order, after the Parse and
    // Bind that reached the target: ParseComplete, BindComplete, the error, ReadyForQuery.
    s.write_all(&extended("SELECT $1::int", &["5"]))
        .await
        .unwrap();
    assert_eq!(common::outline(&mut s, 1).await.unwrap(), ["E", "Z"]);
    assert!(
        matches!(simple_query(&mut s, "SELECT 5").await.unwrap(), QueryResult::Error(c, _) if c == "53400"),
        "still limited"
    );
    // Another identity and an exempt group are not affected.
    let other = gw.issue_token("guard-rate-2", "agents", "1h").unwrap();
    assert_eq!(
        psql(&gw.dsn("app", &other), &["-c", "SELECT 6"])
            .unwrap()
            .trim(),
        "6"
    );
    let dba = gw.issue_token("guard-rate-dba", "dba", "1h").unwrap();
    for _ in 0..6 {
        psql(&gw.dsn("app", &dba), &["-c", "SELECT 7"]).unwrap();
    }
}
