//! The web console in a real browser: headless Debian Chromium driven by playwright-core
//! (`tests/browser/console.test.mjs`) against a real gateway, a real OIDC provider and a
//! private PostgreSQL, with psycopg clients waiting on the other side.
//!
//! The browser signs in through the provider's own login and consent pages, sees a held
//! `DROP TABLE` arrive in the inbox without a reload and approves it (the waiting psycopg
//! client gets its result), rejects a statement whose text carries HTML (shown as text),
//! approves and requests access, kills a live session (the client sees 57P01), replays a
//! recorded session with play/pause, checks the audit and connections pages, and signs in
//! with a pasted token. Screenshots of every page land in `target/test-output/console/`.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use common::Gateway;
use warden_testkit::{workspace_root, OidcProvider, PgCluster};

const PW_ENV: &str = "WARDEN_TEST_CONSOLE_PW";
const CHROMIUM: &str = "/usr/bin/chromium";
/// The end user who signs in through the OIDC provider.
const LOGIN: &str = "alice";

fn browser_dir() -> PathBuf {
    workspace_root().join("tests").join("browser")
}

/// Where a test's screenshots go, `target/test-output/NAME/` (emptied first, so an old
/// run cannot pass for this one).
fn output_dir(name: &str) -> Result<PathBuf> {
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
        .join("test-output")
        .join(name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    Ok(dir)
}

/// The browser tests need Debian's Chromium and playwright-core.
async fn browser_ready() -> Result<PathBuf> {
    ensure!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: apt-get install -y chromium (the browser tests need Debian's build)"
    );
    let dir = browser_dir();
    ensure_playwright(&dir).await?;
    Ok(dir)
}

/// A node command in tests/browser (`WARDEN_TEST_NODE` picks the binary).
fn node(dir: &Path) -> tokio::process::Command {
    let bin = std::env::var("WARDEN_TEST_NODE").unwrap_or_else(|_| "node".to_owned());
    let mut cmd = tokio::process::Command::new(bin);
    cmd.current_dir(dir)
        .env("WARDEN_CHROMIUM", CHROMIUM)
        .kill_on_drop(true);
    cmd
}

/// Runs `cmd` for at most `secs`; returns (success, stdout, stderr).
async fn run(mut cmd: tokio::process::Command, secs: u64) -> Result<(bool, String, String)> {
    let out = tokio::time::timeout(Duration::from_secs(secs), cmd.output())
        .await
        .with_context(|| format!("the browser test ran for more than {secs} s"))??;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// Fails unless every line of `wanted` is a line of `stdout`.
fn expect_lines(stdout: &str, wanted: &[&str], report: impl Fn() -> String) -> Result<()> {
    for line in wanted {
        ensure!(
            stdout.lines().any(|l| l == *line),
            "missing {line:?}:\n{}",
            report()
        );
    }
    Ok(())
}

/// Runs `npm ci` in tests/browser once if playwright-core is missing; parallel test
/// processes serialise on a lock and re-check inside it.
async fn ensure_playwright(dir: &Path) -> Result<()> {
    let marker = dir.join("node_modules/playwright-core/package.json");
    if marker.is_file() {
        return Ok(());
    }
    let out = tokio::process::Command::new("flock")
        .arg(std::env::temp_dir().join("warden-browser-npm-ci.lock"))
        .arg("sh")
        .arg("-c")
        .arg("test -f node_modules/playwright-core/package.json || npm ci --no-audit --no-fund")
        .current_dir(dir)
        .output()
        .await
        .context("running npm ci in tests/browser")?;
    ensure!(
        out.status.success() && marker.is_file(),
        "npm ci in {} failed:\n{}{}",
        dir.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

fn config(pg_port: u16, issuer: &str) -> String {
    format!(
        r#"
[[identity.oidc]]
issuer = "{issuer}"
audience = "{audience}"

[api]
console_client_id = "warden-console"

[[connections]]
name = "app"
target = "postgres://127.0.0.1:{pg_port}/postgres"
allow_groups = ["agents", "dba"]
username = "postgres"
password_env = "{PW_ENV}"

[[connections.rules]]
action = "review"
classes = ["destructive"]
approver_groups = ["dba"]
timeout = "120s"
message = "destructive statements need a DBA"

[[connections.rules]]
action = "review"
kinds = ["UPDATE"]
approver_groups = ["dba"]
timeout = "120s"
message = "updates need a DBA"

[[connections]]
name = "restricted"
target = "postgres://127.0.0.1:{pg_port}/postgres"
allow_groups = ["nobody-yet"]
username = "postgres"
password_env = "{PW_ENV}"

[connections.access_requests]
approver_groups = ["dba"]
max_duration = "1h"
"#,
        audience = OidcProvider::AUDIENCE,
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn the_console_signs_in_decides_reviews_kills_and_replays_in_chromium() -> Result<()> {
    let dir = browser_ready().await?;
    let out_dir = output_dir("console")?;

    let pg = PgCluster::start_scram().await?;
    pg.psql(
        "CREATE TABLE console_drop_t (id int);
         CREATE TABLE xss_t (id int, v text); INSERT INTO xss_t VALUES (1, 'kept')",
    )
    .await?;
    let oidc = OidcProvider::start().await?;
    oidc.set_user_groups(LOGIN, &["dba", "warden-admins"])
        .await?;
    let gw = Gateway::start(
        &config(pg.port(), oidc.issuer()),
        &[(PW_ENV, pg.superuser_password())],
    )
    .await?;
    let base = format!("http://{}", gw.http);

    // The console is served from the binary, with its CSP naming the issuer and nothing else.
    let http = reqwest::Client::builder().no_proxy().build()?;
    let index = http.get(format!("{base}/")).send().await?;
    ensure!(index.status() == 200, "GET / answered {}", index.status());
    let csp = index.headers()["content-security-policy"]
        .to_str()?
        .to_owned();
    ensure!(
        csp.contains(&format!("connect-src 'self' {};", oidc.issuer()))
            && csp.contains("script-src 'self';"),
        "CSP: {csp}"
    );
    let js = http.get(format!("{base}/assets/js/main.js")).send().await?;
    ensure!(
        js.headers()["content-type"] == "text/javascript; charset=utf-8",
        "main.js served as {:?}",
        js.headers()["content-type"]
    );

    let token = |name: &str, groups: &str| gw.issue_token(name, groups, "1h");
    let drop_agent = token("drop-agent", "agents")?;
    let xss_agent = token("xss-agent", "agents")?;
    let kill_agent = token("kill-agent", "agents")?;
    let access_agent = token("access-agent", "agents")?;
    let auditor = token("auditor-bob", "warden-auditors")?;

    // Someone else's access request, for the browser to approve.
    let asked = http
        .post(format!("{base}/api/v1/access-requests"))
        .bearer_auth(&access_agent)
        .json(&serde_json::json!({"connection": "restricted", "duration": "15m", "reason": "incident 42"}))
        .send()
        .await?;
    ensure!(asked.status() == 201, "access request: {}", asked.status());

    let mut cmd = node(&dir);
    cmd.arg("console.test.mjs")
        .env("WARDEN_URL", &base)
        .env("WARDEN_OIDC_ISSUER", oidc.issuer())
        .env("WARDEN_OUT", &out_dir)
        .env("WARDEN_LOGIN", LOGIN)
        .env("WARDEN_DROP_DSN", gw.dsn("app", &drop_agent))
        .env("WARDEN_DROP_TABLE", "console_drop_t")
        .env("WARDEN_DROP_SUBJECT", "drop-agent")
        .env("WARDEN_XSS_DSN", gw.dsn("app", &xss_agent))
        .env("WARDEN_KILL_DSN", gw.dsn("app", &kill_agent))
        .env("WARDEN_KILL_SUBJECT", "kill-agent")
        .env("WARDEN_ACCESS_REQUESTER", "access-agent")
        .env("WARDEN_PASTE_TOKEN", &auditor)
        .env("WARDEN_PASTE_SUBJECT", "auditor-bob");
    let (ok, stdout, stderr) = run(cmd, 300).await?;
    let report = || {
        format!(
            "--- browser test stdout\n{stdout}\n--- stderr\n{stderr}\n--- gateway log (tail)\n{}",
            tail(&gw.logs(), 60)
        )
    };
    ensure!(ok, "browser test failed:\n{}", report());
    expect_lines(
        &stdout,
        &[
            "OK sign-in-through-oidc",
            "OK held-drop-appears-live-and-approval-releases-it",
            "OK statement-html-renders-as-text",
            "OK access-requests",
            "OK kill-a-live-session",
            "OK replay-a-recorded-session",
            "OK audit-trail",
            "OK connections",
            "OK sign-out",
            "OK sign-in-with-a-pasted-token",
            "OK no console errors",
            "OK all",
        ],
        report,
    )?;
    println!("{stdout}");

    // What the browser did happened for real.
    let exists = pg
        .psql("SELECT to_regclass('public.console_drop_t') IS NOT NULL")
        .await?;
    ensure!(exists == "f", "the approved DROP TABLE did not run");
    let kept = pg.psql("SELECT v FROM xss_t WHERE id = 1").await?;
    ensure!(kept == "kept", "the rejected UPDATE ran: {kept}");
    let killed: serde_json::Value = http
        .get(format!("{base}/api/v1/sessions?identity=kill-agent"))
        .bearer_auth(&auditor)
        .send()
        .await?
        .json()
        .await?;
    let killed = killed
        .as_array()
        .and_then(|a| a.first())
        .context("no session of kill-agent")?;
    ensure!(
        killed["status"] != "live",
        "killed session still live: {killed}"
    );
    ensure!(
        killed["end_reason"].as_str().unwrap_or("").contains("kill"),
        "killed session ended for another reason: {killed}"
    );

    let shots: Vec<_> = std::fs::read_dir(&out_dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".png"))
        .collect();
    for page in [
        "sign-in",
        "provider-login",
        "provider-consent",
        "inbox-held-drop",
        "inbox-approved",
        "inbox-html-as-text",
        "access-requests",
        "sessions",
        "kill-confirmation",
        "replay",
        "audit",
        "connections",
        "signed-in-with-token",
    ] {
        ensure!(
            shots.iter().any(|n| n.ends_with(&format!("-{page}.png"))),
            "no screenshot of {page} in {}: {shots:?}",
            out_dir.display()
        );
    }
    // Tokens the browser handled never reach the gateway's log.
    ensure!(
        !gw.logs().contains(&auditor),
        "a pasted token appears in the gateway log"
    );
    Ok(())
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The `warden up` case: no OIDC provider, so the console offers a pasted token, refuses a
/// bad one with a clear message and signs in with a built-in one.
#[tokio::test(flavor = "multi_thread")]
async fn without_oidc_the_console_signs_in_with_a_pasted_token() -> Result<()> {
    let dir = browser_ready().await?;
    let out_dir = output_dir("console-quickstart")?;
    // The target is never contacted: the console only lists the connection.
    let gw = Gateway::start(
        r#"
[[connections]]
name = "local"
target = "postgres://127.0.0.1:9/postgres"
allow_groups = ["agents"]
username = "postgres"
"#,
        &[],
    )
    .await?;
    let token = gw.issue_token("quickstart-agent", "agents", "1h")?;
    let mut cmd = node(&dir);
    cmd.arg("token-signin.test.mjs")
        .env("WARDEN_URL", format!("http://{}", gw.http))
        .env("WARDEN_OUT", &out_dir)
        .env("WARDEN_PASTE_TOKEN", &token)
        .env("WARDEN_PASTE_SUBJECT", "quickstart-agent");
    let (ok, stdout, stderr) = run(cmd, 120).await?;
    let report = || {
        format!(
            "{stdout}\n--- stderr\n{stderr}\n--- gateway\n{}",
            tail(&gw.logs(), 40)
        )
    };
    ensure!(ok, "browser test failed:\n{}", report());
    expect_lines(
        &stdout,
        &[
            "OK token form offered",
            "OK bad token refused",
            "OK signed in with a token",
            "OK no console errors",
            "OK all",
        ],
        report,
    )?;
    for shot in ["quickstart-sign-in.png", "quickstart-connections.png"] {
        ensure!(out_dir.join(shot).is_file(), "no screenshot {shot}");
    }
    ensure!(
        !gw.logs().contains(&token),
        "the pasted token appears in the gateway log"
    );
    Ok(())
}

/// The console's event-stream parser (what the inbox reads `/api/v1/reviews/stream` with).
#[tokio::test]
async fn the_consoles_event_stream_parser_passes_its_unit_tests() -> Result<()> {
    let dir = browser_dir();
    let mut cmd = node(&dir);
    cmd.arg("--test").arg("sse.test.mjs");
    let (ok, stdout, stderr) = run(cmd, 60).await?;
    ensure!(ok && stdout.contains("# fail 0"), "{stdout}\n{stderr}");
    Ok(())
}
