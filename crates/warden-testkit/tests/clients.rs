//! The driver smoke scripts pass directly against a private SCRAM cluster, and a failing
//! run is reported as a failure.

use anyhow::Result;
use warden_testkit::{run_client_script, PgCluster};

#[tokio::test]
async fn smoke_scripts_pass_against_scram_postgres() -> Result<()> {
    let pg = PgCluster::start_scram().await?;
    let dsn = pg.url_with_password();
    for script in ["psycopg_smoke.py", "asyncpg_smoke.py"] {
        let out = run_client_script(script, &dsn).await?;
        for step in ["OK connect", "OK listen/notify", "OK all"] {
            assert!(out.contains(step), "{script}: no {step:?} in\n{out}");
        }
    }
    Ok(())
}

#[tokio::test]
async fn smoke_scripts_fail_on_a_wrong_password() -> Result<()> {
    let pg = PgCluster::start_scram().await?;
    let dsn = format!(
        "postgres://postgres:wrong-secret-xyz@127.0.0.1:{}/postgres",
        pg.port()
    );
    for script in ["psycopg_smoke.py", "asyncpg_smoke.py"] {
        let err = run_client_script(script, &dsn).await.err();
        let msg = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(
            msg.contains("password authentication failed"),
            "{script}: {msg}"
        );
        assert!(
            !msg.contains("wrong-secret-xyz"),
            "{script} leaked the password: {msg}"
        );
    }
    Ok(())
}
