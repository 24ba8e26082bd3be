//! Runs the Python driver smoke scripts of `tests/clients/` (psycopg 3, asyncpg) against a
//! DSN, so integration tests can prove that real drivers work through the gateway.

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use tokio::process::Command;

use crate::workspace_root;

/// Runs `tests/clients/<script>` (e.g. `psycopg_smoke.py`) with `WARDEN_DSN=dsn` and
/// returns its stdout (`OK …` lines). Fails if it exits non-zero or prints no `OK all`.
/// The interpreter is `$WARDEN_TEST_PYTHON` or `python3`; it needs `psycopg[binary]` and
/// `asyncpg`. The DSN is not included in errors (it may carry a token).
pub async fn run_client_script(script: &str, dsn: &str) -> Result<String> {
    let path = workspace_root().join("tests").join("clients").join(script);
    ensure!(path.is_file(), "no client script {}", path.display());
    let python = std::env::var("WARDEN_TEST_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let run = Command::new(&python)
        .arg(&path)
        .env("WARDEN_DSN", dsn)
        .env("PYTHONUNBUFFERED", "1")
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(180), run)
        .await
        .with_context(|| format!("{script} timed out"))?
        .with_context(|| format!("running {python} {script}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(
        out.status.success() && stdout.lines().any(|l| l == "OK all"),
        "{script} failed ({}); missing modules need `pip install 'psycopg[binary]' asyncpg`\n\
         stdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    Ok(stdout)
}
