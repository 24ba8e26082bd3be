//! The `warden` command line: help, `config check`, `warden up`.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{psql, warden_bin};
use warden_testkit::LoggedProcess;

#[test]
fn help_explains_every_command() {
    let out = Command::new(warden_bin()).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for cmd in ["gateway", "up", "config", "tokens"] {
        assert!(help.contains(cmd), "--help lacks {cmd}:\n{help}");
    }
    for sub in [
        &["gateway", "--help"][..],
        &["up", "--help"],
        &["config", "check", "--help"],
        &["tokens", "issue", "--help"],
    ] {
        let out = Command::new(warden_bin()).args(sub).output().unwrap();
        assert!(out.status.success(), "{sub:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).len() > 200,
            "{sub:?} help too short"
        );
    }
}

#[test]
fn config_check_reports_every_error_with_location() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        "[[connections]]\nname = \"app\"\ntarget = \"postgres://127.0.0.1:5432/postgres\"\nallow_groups = [\"a\"]\nusername = \"postgres\"\n",
    )
    .unwrap();
    let out = Command::new(warden_bin())
        .args(["config", "check"])
        .arg(&good)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("OK (1 connection(s)"));

    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[[connections]]\nname = \"app\"\ntarget = \"postgres://u:pw-in-config@h/d\"\nallow_groups = []\npassword_env = \"WARDEN_NO_SUCH_VAR\"\n",
    )
    .unwrap();
    let out = Command::new(warden_bin())
        .args(["config", "check"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let file = bad.display().to_string();
    for needle in [
        format!("{file}: connections[0].target: must not contain a password"),
        format!("{file}: connections[0].allow_groups"),
        format!("{file}: connections[0].password_env: environment variable WARDEN_NO_SUCH_VAR is not set"),
        "4 problem(s) found".to_owned(),
    ] {
        assert!(err.contains(&needle), "missing {needle:?} in:\n{err}");
    }
    assert!(!err.contains("pw-in-config"));

    let syntax = dir.path().join("syntax.toml");
    std::fs::write(&syntax, "[gateway]\npostgres_listen = 15432\n").unwrap();
    let out = Command::new(warden_bin())
        .args(["config", "check"])
        .arg(&syntax)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{}:2:", syntax.display())), "{err}");
    assert!(err.contains("gateway.postgres_listen"), "{err}");

    let out = Command::new(warden_bin())
        .args(["config", "check", "/nonexistent/w.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read file"));
}

#[tokio::test(flavor = "multi_thread")]
async fn up_prints_a_working_psql_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = up_command(dir.path(), "postgres://postgres@127.0.0.1:5432/postgres");
    cmd.env("USER", "quickstart");
    let up = LoggedProcess::spawn(cmd).unwrap();
    let line = up
        .wait_for_line("psql \"host=", Duration::from_secs(30))
        .await
        .unwrap_or_else(|e| panic!("{e}: {}", up.output()));
    let dsn = line
        .trim()
        .strip_prefix("psql \"")
        .and_then(|s| s.strip_suffix('"'))
        .unwrap()
        .to_owned();
    assert!(up.output().contains("is reachable"), "{}", up.output());
    assert!(dir.path().join(".warden/warden.db").exists());
    let out = psql(&dsn, &["-c", "select current_user"]).unwrap();
    assert_eq!(out.trim(), "postgres");

    // The quickstart masks columns named like personal data...
    let table = format!("up_people_{}", std::process::id());
    let out = psql(
        &dsn,
        &[
            "-c",
            &format!("create table {table} (name text, email text)"),
            "-c",
            &format!("insert into {table} values ('Ada', 'ada.lovelace@example.com')"),
            "-c",
            &format!("select name, email from {table}"),
        ],
    )
    .unwrap();
    assert!(out.contains("Ada|"), "{out}");
    assert!(!out.contains("ada.lovelace"), "email not masked: {out}");

    // ...holds a DROP until the operator whose token is in the console URL approves it.
    let console = up
        .output()
        .lines()
        .find_map(|l| l.split_once("console        : ").map(|(_, r)| r.to_owned()))
        .unwrap_or_else(|| panic!("no console line: {}", up.output()));
    let (url, rest) = console.split_once("/#token=").unwrap();
    let operator = rest.split_whitespace().next().unwrap().to_owned();
    let http: std::net::SocketAddr = url.trim_start_matches("http://").parse().unwrap();
    let drop_sql = format!("drop table {table}");
    let dropper = {
        let dsn = dsn.clone();
        std::thread::spawn(move || psql(&dsn, &["-c", &drop_sql]))
    };
    let mut id = None;
    for _ in 0..100 {
        let (status, body) = common::http(http, "GET", "/api/v1/reviews", Some(&operator))
            .await
            .unwrap();
        assert_eq!(status, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let list = v.get("items").unwrap_or(&v);
        if let Some(r) = list.as_array().and_then(|a| {
            a.iter()
                .find(|r| r["statement"].as_str().is_some_and(|s| s.contains(&table)))
        }) {
            id = r["id"].as_str().map(str::to_owned);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let id = id.expect("the DROP is held for review");
    assert!(!dropper.is_finished(), "the DROP waits for a decision");
    let (status, body) = common::http(
        http,
        "POST",
        &format!("/api/v1/reviews/{id}/approve"),
        Some(&operator),
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{body}");
    dropper.join().unwrap().unwrap();
    let err = psql(&dsn, &["-c", &format!("select 1 from {table}")]).unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn up_reports_an_unreachable_target_without_dying() {
    let dir = tempfile::tempdir().unwrap();
    let port = warden_testkit::free_port();
    let cmd = up_command(dir.path(), &format!("postgres://127.0.0.1:{port}/postgres"));
    let up = LoggedProcess::spawn(cmd).unwrap();
    up.wait_for_line("psql \"host=", Duration::from_secs(30))
        .await
        .unwrap_or_else(|e| panic!("{e}: {}", up.output()));
    assert!(up.output().contains("is not reachable"), "{}", up.output());
}

/// `warden up` in `dir` on free loopback ports, targeting `database_url`.
fn up_command(dir: &std::path::Path, database_url: &str) -> Command {
    let mut cmd = Command::new(warden_bin());
    cmd.current_dir(dir)
        .args([
            "up",
            "--postgres-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
        ])
        .env("DATABASE_URL", database_url);
    cmd
}
