//! Private PostgreSQL clusters with each supported authentication method.

use anyhow::Result;
use warden_testkit::{PgCluster, PgOptions};

#[tokio::test]
async fn scram_cluster_accepts_the_password_and_rejects_others() -> Result<()> {
    let pg = PgCluster::start_scram().await?;
    assert_eq!(pg.psql("select 1").await?, "1");
    assert_eq!(
        pg.psql("show password_encryption; select rolpassword like 'SCRAM-SHA-256$%' from pg_authid where rolname = 'postgres'")
            .await?,
        "scram-sha-256\nt"
    );
    let hba = pg
        .psql("select distinct auth_method from pg_hba_file_rules")
        .await?;
    assert_eq!(hba, "scram-sha-256");

    let wrong = pg
        .psql_as("postgres", Some("wrong"), "postgres", "select 1")
        .await;
    let msg = wrong.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(msg.contains("password authentication failed"), "{msg}");
    let none = pg.psql_as("postgres", None, "postgres", "select 1").await;
    assert!(none.is_err(), "connected without a password");

    assert_eq!(
        pg.url_without_password(),
        format!("postgres://postgres@127.0.0.1:{}/postgres", pg.port())
    );
    assert!(!format!("{pg:?}").contains(pg.superuser_password()));
    Ok(())
}

#[tokio::test]
async fn psql_reports_sql_errors_and_runs_statements_separately() -> Result<()> {
    let pg = PgCluster::start_scram().await?;
    let err = pg.psql("select * from no_such_table").await.err();
    let msg = err.map(|e| e.to_string()).unwrap_or_default();
    assert!(msg.contains("no_such_table"), "{msg}");

    // CREATE DATABASE cannot run in a multi-statement transaction: psql -f sends each alone.
    pg.psql("create database app; create role agent login password 'pw'")
        .await?;
    assert_eq!(
        pg.psql_as("agent", Some("pw"), "app", "select current_database()")
            .await?,
        "app"
    );

    // log_statement=all: the server log shows what was run.
    assert!(pg.log_contents().contains("create role agent"));
    Ok(())
}

#[tokio::test]
async fn md5_cluster_really_uses_md5() -> Result<()> {
    let pg = PgCluster::start_with_auth("md5").await?;
    assert_eq!(
        pg.psql("select rolpassword like 'md5%' from pg_authid where rolname = 'postgres'")
            .await?,
        "t"
    );
    assert!(pg
        .psql_as("postgres", Some("wrong"), "postgres", "select 1")
        .await
        .is_err());
    Ok(())
}

#[tokio::test]
async fn password_and_trust_clusters() -> Result<()> {
    let pg = PgCluster::start_with_auth("password").await?;
    assert_eq!(pg.psql("select 2").await?, "2");
    assert!(pg
        .psql_as("postgres", Some("wrong"), "postgres", "select 1")
        .await
        .is_err());
    drop(pg);

    let pg = PgCluster::start_with(PgOptions {
        auth: "trust".into(),
        settings: vec![("cluster_name".into(), "it's a test".into())],
    })
    .await?;
    assert_eq!(
        pg.psql_as("postgres", None, "postgres", "select 3").await?,
        "3"
    );
    assert_eq!(pg.psql("show cluster_name").await?, "it's a test");
    Ok(())
}

#[tokio::test]
async fn drop_stops_the_server_and_removes_the_directory() -> Result<()> {
    let pg = PgCluster::start_scram().await?;
    let port = pg.port();
    let data = pg.data_dir();
    assert!(data.join("PG_VERSION").is_file());
    drop(pg);
    assert!(!data.exists(), "{} left behind", data.display());
    let still_listening = std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
    assert!(!still_listening, "postgres still listening on {port}");
    Ok(())
}
