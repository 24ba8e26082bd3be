//! Statement rules end to end: destructive statements denied with 42501 however they are
//! written, through psql, psycopg (extended protocol) and a raw client; the session goes
//! on; exempt groups pass; denials are recorded; a denial inside a half-forwarded pipeline
//! ends the session rather than answer out of order.

mod common;

use common::{psql, raw_login, simple_query, Gateway, Login, QueryResult};
use tokio::io::AsyncWriteExt;
use warden_testkit::{run_client_script, PgCluster};

const PW_ENV: &str = "WARDEN_TEST_RULES_PW";

async fn start() -> (PgCluster, Gateway) {
    let pg = PgCluster::start_scram().await.expect("cluster");
    pg.psql("CREATE TABLE rules_t (id int); INSERT INTO rules_t VALUES (1), (2), (3); CREATE TABLE secrets (v text)")
        .await
        .unwrap();
    let config = format!(
        r#"
[[connections]]
name = "app"
target = "postgres://127.0.0.1:{}/postgres"
allow_groups = ["agents", "dba"]
username = "postgres"
password_env = "{PW_ENV}"

[[connections.rules]]
action = "deny"
classes = ["destructive"]
except_groups = ["dba"]
message = "destructive statements need a DBA"

[[connections.rules]]
action = "deny"
tables = ["public.secrets"]
"#,
        pg.port()
    );
    let gw = Gateway::start(&config, &[(PW_ENV, pg.superuser_password())])
        .await
        .expect("gateway");
    (pg, gw)
}

async fn count(pg: &PgCluster) -> String {
    pg.psql("SELECT count(*) FROM rules_t").await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn destructive_statements_are_denied_and_the_session_goes_on() {
    let (pg, gw) = start().await;
    let agent = gw.issue_token("rule-agent", "agents", "1h").unwrap();
    for sql in [
        "DROP TABLE rules_t",
        "SELECT 1; DROP TABLE rules_t",
        "WITH d AS (DELETE FROM rules_t RETURNING *) SELECT count(*) FROM d",
        "/* just a comment */ DeLeTe\n\t  FROM rules_t",
        "select * from secrets",
        "this is not sql",
    ] {
        let err = psql(&gw.dsn("app", &agent), &["-c", sql])
            .unwrap_err()
            .to_string();
        assert!(err.contains("Warden denied this statement"), "{sql}: {err}");
    }
    assert_eq!(count(&pg).await, "3", "nothing ran");

    // Raw simple protocol: the error, then ReadyForQuery, then the session works.
    let Login::Ok(mut s) = raw_login(gw.pg, "app", &agent).await.unwrap() else {
        panic!("login")
    };
    match simple_query(&mut s, "TRUNCATE rules_t").await.unwrap() {
        QueryResult::Error(code, message) => {
            assert_eq!(code, "42501");
            assert!(message.contains("need a DBA"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        simple_query(&mut s, "select count(*) from rules_t")
            .await
            .unwrap()
            .scalar(),
        "3"
    );
    // Pipelined simple queries keep their order around a denial.
    s.write_all(&[q("select 'a'"), q("drop table rules_t"), q("select 'b'")].concat())
        .await
        .unwrap();
    let seen = common::outline(&mut s, 3).await.unwrap();
    assert_eq!(seen, ["a", "Z", "E", "Z", "b", "Z"]);

    // An exempt group may.
    let dba = gw.issue_token("rule-dba", "dba", "1h").unwrap();
    psql(
        &gw.dsn("app", &dba),
        &["-c", "delete from rules_t where id = 3"],
    )
    .unwrap();
    psql(&gw.dsn("app", &dba), &["-c", "truncate secrets"]).unwrap_err();
    assert_eq!(count(&pg).await, "2");

    // Recorded as denied.
    let out = gw
        .cli(&["sessions", "list", "--identity", "rule-agent", "--json"])
        .unwrap();
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = rows[0]["id"].as_str().unwrap().to_owned();
    let out = gw
        .cli(&["sessions", "export", &id, "--format", "ndjson"])
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.lines()
            .any(|l| l.contains("\"decision\":\"denied\"") && l.contains("TRUNCATE")),
        "{text}"
    );
}

fn q(sql: &str) -> Vec<u8> {
    common::query_frame(sql)
}

fn frame(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![tag];
    m.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
    m.extend_from_slice(body);
    m
}

#[tokio::test(flavor = "multi_thread")]
async fn psycopg_gets_42501_and_keyed_deletes_run() {
    let (pg, gw) = start().await;
    let agent = gw.issue_token("rule-agent", "agents", "1h").unwrap();
    run_client_script("psycopg_rules.py", &gw.dsn("app", &agent))
        .await
        .unwrap();
    // The keyed delete ran; the transaction around the denied DROP committed its insert
    // (the target never saw the DROP, so its transaction was still good).
    let ids = pg
        .psql("SELECT string_agg(id::text, ',' ORDER BY id) FROM rules_t")
        .await
        .unwrap();
    assert_eq!(ids, "2,3,10");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_denial_inside_a_forwarded_pipeline_ends_the_session() {
    let (pg, gw) = start().await;
    let agent = gw.issue_token("rule-agent", "agents", "1h").unwrap();
    let Login::Ok(mut s) = raw_login(gw.pg, "app", &agent).await.unwrap() else {
        panic!("login")
    };
    let parse = |sql: &str| frame(b'P', &[b"\0", sql.as_bytes(), b"\0\0\0"].concat());
    let bind = frame(b'B', b"\0\0\0\0\0\0\0\0");
    let execute = frame(b'E', b"\0\0\0\0\0");
    let batch = [
        parse("select 1"),
        bind.clone(),
        execute.clone(),
        parse("drop table rules_t"),
        bind,
        execute,
        frame(b'S', b""),
    ]
    .concat();
    s.write_all(&batch).await.unwrap();
    let mut buf = bytes::BytesMut::new();
    let mut fatal = None;
    while let Ok(f) = common::read_frame(&mut s, &mut buf).await {
        if f.tag() == b'E' {
            let e = <warden_wire::ErrorResponse as warden_wire::Message>::from_frame(&f).unwrap();
            fatal = Some((
                e.fields.code().unwrap_or("").to_owned(),
                e.fields.message().unwrap_or("").to_owned(),
            ));
        }
    }
    let (code, message) = fatal.expect("an error before the connection closed");
    assert_eq!(code, "42501");
    assert!(message.contains("pipeline"), "{message}");
    assert_eq!(count(&pg).await, "3");

    // A denied Parse at the start of a batch: error, skipped to Sync, ReadyForQuery.
    let Login::Ok(mut s) = raw_login(gw.pg, "app", &agent).await.unwrap() else {
        panic!("login")
    };
    let batch = [
        parse("drop table rules_t"),
        frame(b'B', b"\0\0\0\0\0\0\0\0"),
        frame(b'E', b"\0\0\0\0\0"),
        frame(b'S', b""),
    ]
    .concat();
    s.write_all(&batch).await.unwrap();
    match common::read_result(&mut s).await.unwrap() {
        QueryResult::Error(code, _) => assert_eq!(code, "42501"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        simple_query(&mut s, "select 42").await.unwrap().scalar(),
        "42"
    );
    assert_eq!(count(&pg).await, "3");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_denied_statement_sent_byte_by_byte_is_still_cut_cleanly() {
    let (pg, gw) = start().await;
    let agent = gw.issue_token("rule-agent", "agents", "1h").unwrap();
    let Login::Ok(mut s) = raw_login(gw.pg, "app", &agent).await.unwrap() else {
        panic!("login")
    };
    let bytes = [q("drop table rules_t"), q("select 7")].concat();
    for b in bytes {
        s.write_all(&[b]).await.unwrap();
        s.flush().await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    let seen = common::outline(&mut s, 2).await.unwrap();
    assert_eq!(seen, ["E", "Z", "7", "Z"]);
    assert_eq!(count(&pg).await, "3");
}

#[tokio::test(flavor = "multi_thread")]
async fn skipping_to_sync_survives_messages_split_across_reads() {
    let (pg, gw) = start().await;
    let agent = gw.issue_token("rule-agent", "agents", "1h").unwrap();
    let Login::Ok(mut s) = raw_login(gw.pg, "app", &agent).await.unwrap() else {
        panic!("login")
    };
    // A Bind with a large parameter arrives in pieces while the gateway skips to Sync.
    let big = vec![b'x'; 100_000];
    let mut bind_body = b"\0\0\0\0\0\x01".to_vec();
    bind_body.extend_from_slice(&(big.len() as i32).to_be_bytes());
    bind_body.extend_from_slice(&big);
    bind_body.extend_from_slice(b"\0\0");
    let bytes = [
        frame(b'P', b"\0drop table rules_t\0\0\0"),
        frame(b'B', &bind_body),
        frame(b'E', b"\0\0\0\0\0"),
        frame(b'S', b""),
        q("select 8"),
    ]
    .concat();
    for chunk in bytes.chunks(997) {
        s.write_all(chunk).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    let seen = common::outline(&mut s, 2).await.unwrap();
    assert_eq!(seen, ["E", "Z", "8", "Z"]);
    assert_eq!(count(&pg).await, "3");
}
