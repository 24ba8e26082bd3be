//! The CLI for people, end to end against the real OIDC provider (npm oidc-provider) and a
//! real gateway: `warden login` (device flow, driving the provider's own login form),
//! the login cache (mode 0600, refresh), `warden connect` with plain psql and no password,
//! `warden exec` in every format, `warden logout`, and hostile IdP / gateway answers.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{warden_bin, Gateway};
use serde_json::{json, Value};
use warden_testkit::{free_port, LoggedProcess, OidcOptions, OidcProvider};

/// A person's machine: a HOME with its own config directory, and the commands they run.
struct Person {
    home: tempfile::TempDir,
    gateway: String,
}

impl Person {
    fn new(gateway: &str) -> Person {
        Person {
            home: tempfile::tempdir().unwrap(),
            gateway: gateway.to_owned(),
        }
    }

    fn config_home(&self) -> PathBuf {
        self.home.path().join("config")
    }

    /// The login cache file for this person's gateway (as the CLI names it).
    fn cache_file(&self) -> PathBuf {
        let name: String = self
            .gateway
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        self.config_home()
            .join("warden")
            .join("tokens")
            .join(format!("{name}.json"))
    }

    fn cache(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.cache_file()).unwrap()).unwrap()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(warden_bin());
        cmd.args(args)
            .env("HOME", self.home.path())
            .env("XDG_CONFIG_HOME", self.config_home())
            .env("WARDEN_GATEWAY", &self.gateway)
            .env_remove("WARDEN_TOKEN")
            .env_remove("PGPASSWORD")
            .env_remove("RUST_LOG");
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Starts `warden login`, with the issuer given by flags (`idp`) or learnt from the
    /// gateway's auth config (`None`); returns the process once it printed its user code,
    /// and the code.
    async fn start_login(&self, idp: Option<&OidcProvider>) -> (LoggedProcess, String) {
        let mut args = vec!["login"];
        if let Some(idp) = idp {
            args.extend([
                "--issuer",
                idp.issuer(),
                "--client-id",
                OidcProvider::CLI_CLIENT_ID,
                "--audience",
                OidcProvider::AUDIENCE,
            ]);
        }
        let cmd = self.command(&args);
        let p = LoggedProcess::spawn(cmd).unwrap();
        let line = p
            .wait_for_line("enter the code:", Duration::from_secs(30))
            .await
            .unwrap();
        let code = line.rsplit(' ').next().unwrap().trim().to_owned();
        assert!(!code.is_empty(), "{line}");
        (p, code)
    }

    /// A complete login as `login`; `flags` passes the issuer on the command line instead
    /// of letting the CLI learn it from the gateway.
    async fn login(&self, idp: &OidcProvider, login: &str, flags: bool) -> String {
        let (mut p, code) = self.start_login(flags.then_some(idp)).await;
        idp.approve_device(&code, login).await.unwrap();
        p.wait_for_line("Logged in to", Duration::from_secs(30))
            .await
            .unwrap();
        assert!(p.wait().await.unwrap().success(), "{}", p.output());
        p.output()
    }
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn gateway_config(idp: &OidcProvider) -> String {
    format!(
        r#"
[api]
cli_client_id = "warden-cli"

[[identity.oidc]]
issuer = "{issuer}"
audience = "urn:warden"
jwks_min_refresh = "1s"

[[connections]]
name = "app"
target = "postgres://127.0.0.1:5432/postgres"
allow_groups = ["dba"]
username = "postgres"

[[connections.rules]]
action = "review"
classes = ["destructive"]
approver_groups = ["dba"]
timeout = "120s"
message = "dropping a table needs a second pair of eyes"
"#,
        issuer = idp.issuer()
    )
}

async fn world(options: OidcOptions) -> (OidcProvider, Gateway) {
    let idp = OidcProvider::start_with(options)
        .await
        .expect("oidc provider");
    idp.set_user_groups("alice", &["dba"]).await.unwrap();
    let gw = Gateway::start(&gateway_config(&idp), &[])
        .await
        .expect("gateway");
    (idp, gw)
}

fn exec(p: &Person, gw: &Gateway, sql: &str, format: &str) -> Output {
    let pg = gw.pg.to_string();
    p.run(&[
        "exec",
        "app",
        "-c",
        sql,
        "--format",
        format,
        "--postgres",
        &pg,
    ])
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread")]
async fn device_login_then_connect_exec_and_logout() {
    let (idp, gw) = world(OidcOptions::default()).await;
    let p = Person::new(&format!("http://{}", gw.http));

    // Before any login: a clear message, not a crash.
    let out = exec(&p, &gw, "select 1", "table");
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("not logged in") && err.contains("warden login"),
        "{err}"
    );

    // The device flow, approved through the provider's real login form.
    let printed = p.login(&idp, "alice", true).await;
    assert!(
        printed.contains("Logged in to") && printed.contains("as alice"),
        "{printed}"
    );
    let file = p.cache_file();
    assert_eq!(mode(&file), 0o600);
    assert_eq!(mode(file.parent().unwrap()), 0o700);
    assert_eq!(mode(&p.config_home().join("warden")), 0o700);
    let cache = p.cache();
    let access = cache["access_token"].as_str().unwrap().to_owned();
    let refresh = cache["refresh_token"].as_str().unwrap().to_owned();
    assert!(access.len() > 100 && refresh.len() > 10);
    assert!(!printed.contains(&access) && !printed.contains(&refresh));
    let (_, claims) = warden_testkit::decode_jwt_unverified(&access).unwrap();
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["aud"], OidcProvider::AUDIENCE);

    // exec: table, JSON, CSV.
    let sql =
        "select 1 as n, 'a,b \"q\"' as s, null::text as z, true as b, '{\"k\":[1,2]}'::jsonb as j";
    let out = exec(&p, &gw, sql, "table");
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let header = stdout
        .lines()
        .find(|l| l.contains(" n "))
        .unwrap_or_default();
    for col in ["n", "s", "z", "b", "j"] {
        assert!(header.contains(&format!(" {col} ")), "{stdout}");
    }
    let row = stdout
        .lines()
        .find(|l| l.contains("a,b"))
        .unwrap_or_default();
    assert!(
        row.contains(" 1 ") && row.contains("a,b \"q\"") && row.contains(" t "),
        "{stdout}"
    );
    assert!(stderr.contains("SELECT 1"), "{stderr}");
    assert!(!stdout.contains(&access) && !stderr.contains(&access));

    let out = exec(&p, &gw, sql, "json");
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let rows: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        rows,
        json!([{"n": 1, "s": "a,b \"q\"", "z": null, "b": true, "j": {"k": [1, 2]}}])
    );

    let out = exec(&p, &gw, sql, "csv");
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        stdout,
        "n,s,z,b,j\r\n1,\"a,b \"\"q\"\"\",,t,\"{\"\"k\"\": [1, 2]}\"\r\n"
    );

    // TLS to the gateway's listener (what a non-loopback gateway gets), trusting its
    // self-signed certificate; without that root, a clear refusal.
    let pg = gw.pg.to_string();
    let ca = gw.dir.path().join("data/tls/gateway-cert.pem");
    let ca = ca.to_str().unwrap();
    let tls = ["--postgres", pg.as_str(), "--postgres-tls", "require"];
    let out = p.run(
        &[
            &["exec", "app", "-c", "select 'over tls'", "--ca-file", ca][..],
            &tls,
        ]
        .concat(),
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("over tls"), "{stdout}");
    let out = p.run(&[&["exec", "app", "-c", "select 1"][..], &tls].concat());
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("TLS handshake"), "{stderr}");

    // A failing statement: exit 1 with its SQLSTATE.
    let out = exec(&p, &gw, "select * from warden_no_such_table", "table");
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("42P01"), "{stderr}");

    // A held statement: exec waits (no TTY, so the notice instead of a spinner) until an
    // approver decides, then prints the outcome.
    let table = format!("warden_login_t_{}", std::process::id());
    assert!(
        exec(&p, &gw, &format!("create table {table} (id int)"), "table")
            .status
            .success()
    );
    let mut held = LoggedProcess::spawn(p.command(&[
        "exec",
        "app",
        "-c",
        &format!("drop table {table}"),
        "--postgres",
        &pg,
    ]))
    .unwrap();
    held.wait_for_line("holding this statement for review", Duration::from_secs(20))
        .await
        .unwrap();
    let review = {
        let out = gw.cli(&["reviews", "list", "--json"]).unwrap();
        let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["statement"].as_str().unwrap_or("").contains(&table))
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .expect("the held drop is listed")
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        held.try_wait().unwrap().is_none(),
        "exec must wait for the decision"
    );
    let out = gw
        .cli(&["reviews", "approve", &review, "--reason", "test"])
        .unwrap();
    assert!(out.status.success(), "{}", text(&out).1);
    held.wait_for_line("DROP TABLE", Duration::from_secs(20))
        .await
        .unwrap();
    assert!(held.wait().await.unwrap().success(), "{}", held.output());

    assert!(
        !held.output().contains("waiting for approval"),
        "a spinner without a TTY"
    );

    // On a terminal (script(1) gives it one), a spinner shows while the statement waits.
    let shell_quote = |a: &str| format!("'{}'", a.replace('\'', "'\\''"));
    let drop2 = format!("drop table {table}_2");
    assert!(exec(
        &p,
        &gw,
        &format!("create table {table}_2 (id int)"),
        "table"
    )
    .status
    .success());
    let inner = [
        warden_bin().to_str().unwrap(),
        "exec",
        "app",
        "-c",
        &drop2,
        "--postgres",
        &pg,
    ]
    .map(shell_quote)
    .join(" ");
    let cmd = p.command(&[]);
    let mut tty = Command::new("script");
    // The spinner redraws one line without a newline: read script's typescript file.
    let typescript = p.home.path().join("typescript");
    tty.args(["-qfec", &inner]).arg(&typescript);
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => tty.env(k, v),
            None => tty.env_remove(k),
        };
    }
    let held = LoggedProcess::spawn(tty).unwrap();
    held.wait_for_line("holding this statement for review", Duration::from_secs(20))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let shown = || std::fs::read_to_string(&typescript).unwrap_or_default();
    while !shown().contains("waiting for approval") {
        assert!(
            Instant::now() < deadline,
            "no spinner on a TTY:\n{}",
            shown()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let out = gw.cli(&["reviews", "list", "--json"]).unwrap();
    let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
    let second = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["statement"].as_str().unwrap_or("").contains(&drop2))
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .expect("the second held drop is listed");
    let out = gw
        .cli(&["reviews", "reject", &second, "--reason", "not today"])
        .unwrap();
    assert!(out.status.success(), "{}", text(&out).1);
    held.wait_for_line("57014", Duration::from_secs(20))
        .await
        .unwrap();

    // The API commands use the login too: alice (no --token, no --config) sees her review.
    let out = p.run(&["reviews", "list", "--all", "--json"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let rows: Value = serde_json::from_str(&stdout).unwrap();
    let mine = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == review.as_str())
        .expect("alice's review is listed");
    assert_eq!(mine["requester"], "alice");
    assert_eq!(mine["status"], "approved");

    // connect: plain psql, no password anywhere, through the local listener.
    let port = free_port();
    let mut connect = LoggedProcess::spawn(p.command(&[
        "connect",
        "app",
        "--port",
        &port.to_string(),
        "--postgres",
        &pg,
    ]))
    .unwrap();
    let line = connect
        .wait_for_line("psql \"host=127.0.0.1", Duration::from_secs(20))
        .await
        .unwrap();
    assert!(line.contains(&format!("port={port}")), "{line}");
    for sslmode in ["disable", "prefer"] {
        let out = Command::new("psql")
            .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-w", "-c"])
            .arg("select current_user, 40 + 2")
            .arg(format!(
                "host=127.0.0.1 port={port} dbname=whatever user=someone sslmode={sslmode}"
            ))
            .env_remove("PGPASSWORD")
            .env("PGPASSFILE", "/nonexistent")
            .env("PGCONNECT_TIMEOUT", "10")
            .output()
            .unwrap();
        let (stdout, stderr) = text(&out);
        assert!(
            out.status.success(),
            "psql ({sslmode}): {stderr}\n{}",
            connect.output()
        );
        assert_eq!(stdout.trim(), "postgres|42");
    }
    // Another OS user on the machine cannot borrow alice's identity through the listener.
    let root = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self").unwrap()) == 0;
    if root {
        let out = Command::new("runuser")
            .args([
                "-u", "nobody", "--", "psql", "-X", "-A", "-t", "-w", "-c", "select 1",
            ])
            .arg(format!(
                "host=127.0.0.1 port={port} dbname=app sslmode=disable"
            ))
            .env_remove("PGPASSWORD")
            .current_dir("/")
            .output()
            .unwrap();
        let (stdout, stderr) = text(&out);
        assert!(!out.status.success(), "another user got in: {stdout}");
        assert!(stderr.contains("belongs to another user"), "{stderr}");
    }

    // A cancel (psql sends a CancelRequest on Ctrl-C) goes through the listener too.
    let sleeper = tokio::process::Command::new("psql")
        .args(["-X", "-A", "-t", "-w", "-c", "select pg_sleep(60)"])
        .arg(format!(
            "host=127.0.0.1 port={port} dbname=app sslmode=disable"
        ))
        .env_remove("PGPASSWORD")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let pid = sleeper.id().unwrap().to_string();
    assert!(Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success());
    let out = tokio::time::timeout(Duration::from_secs(15), sleeper.wait_with_output())
        .await
        .expect("the cancel did not end the statement")
        .unwrap();
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("canceling statement"), "{stderr}");

    // The gateway recorded the sessions as the OIDC user.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let out = gw
            .cli(&["sessions", "list", "--identity", "alice", "--json"])
            .unwrap();
        let rows: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        let n = rows.as_array().map(Vec::len).unwrap_or(0);
        // exec x9 above + psql x3.
        if n >= 12 {
            assert!(rows
                .as_array()
                .unwrap()
                .iter()
                .all(|r| r.to_string().contains("alice")));
            break;
        }
        assert!(Instant::now() < deadline, "sessions of alice: {rows}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(!connect.output().contains(&access));
    assert!(!gw.logs().contains(&access), "the gateway logged the token");

    // logout: the cache is gone (and revoked at the IdP); connect's clients and exec get
    // a clear "log in" answer.
    let out = p.run(&["logout"]);
    assert!(out.status.success(), "{}", text(&out).1);
    assert!(!p.cache_file().exists());
    let out = Command::new("psql")
        .args(["-X", "-A", "-t", "-w", "-c", "select 1"])
        .arg(format!(
            "host=127.0.0.1 port={port} dbname=app sslmode=disable"
        ))
        .env_remove("PGPASSWORD")
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(
        stderr.contains("not logged in") && stderr.contains("warden login"),
        "{stderr}"
    );
    // The revoked refresh token no longer works at the IdP.
    let resp = reqwest::Client::new()
        .post(idp.token_endpoint())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=refresh_token&client_id={}&refresh_token={refresh}",
            OidcProvider::CLI_CLIENT_ID
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status().as_u16(),
        400,
        "the refresh token survived logout"
    );
    connect.kill().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_denied_login_fails_clearly() {
    let idp = OidcProvider::start().await.unwrap();
    // No gateway at all: the flags say everything.
    let p = Person::new(&format!("http://127.0.0.1:{}", free_port()));
    let (mut login, code) = p.start_login(Some(&idp)).await;
    idp.deny_device(&code, "mallory").await.unwrap();
    login
        .wait_for_line("error:", Duration::from_secs(30))
        .await
        .unwrap();
    let status = login.wait().await.unwrap();
    assert_eq!(status.code(), Some(1));
    assert!(login.output().contains("denied"), "{}", login.output());
    assert!(!p.cache_file().exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_are_refreshed_and_an_expired_login_says_so() {
    let (idp, gw) = world(OidcOptions {
        token_ttl_secs: Some(6),
        ..Default::default()
    })
    .await;
    let p = Person::new(&format!("http://{}", gw.http));
    // This time the issuer, client and PostgreSQL address come from the gateway.
    p.login(&idp, "alice", false).await;
    let cache = p.cache();
    let first = cache["access_token"].as_str().unwrap().to_owned();
    assert_eq!(cache["postgres_listen"], gw.pg.to_string());
    assert_eq!(cache["client_id"], OidcProvider::CLI_CLIENT_ID);

    // Still fresh: used as is. (No --postgres: the gateway says where it listens.)
    let out = p.run(&["exec", "app", "-c", "select 7", "--format", "csv"]);
    assert!(out.status.success(), "{}", text(&out).1);
    assert_eq!(text(&out).0, "?column?\r\n7\r\n");

    // Past its lifetime: exec refreshes it first and the cache holds the new one.
    tokio::time::sleep(Duration::from_secs(7)).await;
    let out = p.run(&["exec", "app", "-c", "select 8", "--format", "csv"]);
    assert!(out.status.success(), "{}", text(&out).1);
    assert_eq!(text(&out).0, "?column?\r\n8\r\n");
    let cache = p.cache();
    let second = cache["access_token"].as_str().unwrap().to_owned();
    assert_ne!(first, second, "the token was not refreshed");
    assert_eq!(mode(&p.cache_file()), 0o600);

    // connect refreshes too, per client connection.
    let port = free_port();
    let mut connect =
        LoggedProcess::spawn(p.command(&["connect", "app", "--port", &port.to_string()])).unwrap();
    connect
        .wait_for_line("psql", Duration::from_secs(20))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(7)).await;
    let psql = |sql: &str| {
        Command::new("psql")
            .args(["-X", "-A", "-t", "-w", "-c", sql])
            .arg(format!(
                "host=127.0.0.1 port={port} dbname=app sslmode=disable"
            ))
            .env_remove("PGPASSWORD")
            .output()
            .unwrap()
    };
    let out = psql("select 9");
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out).1,
        connect.output()
    );
    assert_eq!(text(&out).0.trim(), "9");
    assert_ne!(p.cache()["access_token"].as_str().unwrap(), second);

    // A refresh token the IdP refuses: the person is told to log in again, by exec and by
    // connect (as a PostgreSQL error, not a dropped connection).
    let mut cache = p.cache();
    cache["refresh_token"] = json!("not-a-valid-refresh-token");
    cache["expires_at"] = json!(0);
    let file = p.cache_file();
    std::fs::write(&file, serde_json::to_vec(&cache).unwrap()).unwrap();
    assert_eq!(mode(&file), 0o600);
    let out = exec(&p, &gw, "select 1", "table");
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("expired") && stderr.contains("warden login"),
        "{stderr}"
    );
    assert!(!stderr.contains("not-a-valid-refresh-token"), "{stderr}");
    let out = psql("select 1");
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(
        stderr.contains("expired") && stderr.contains("warden login"),
        "{stderr}"
    );
    connect.kill().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cache_readable_by_others_is_refused() {
    let p = Person::new("http://127.0.0.1:9");
    let file = p.cache_file();
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, "{}").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = p.run(&["exec", "app", "-c", "select 1", "--postgres", "127.0.0.1:9"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("readable by others"), "{stderr}");
}

/// A fake gateway + IdP on one port: `/{case}/...` answers the way `case` says.
async fn hostile_server() -> std::net::SocketAddr {
    use axum::extract::Path as P;
    use axum::http::{header, StatusCode};
    use axum::response::{IntoResponse, Response};
    use axum::routing::{get, post};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let base = format!("http://{addr}");
    fn json_resp(v: Value) -> Response {
        ([(header::CONTENT_TYPE, "application/json")], v.to_string()).into_response()
    }
    let b1 = base.clone();
    let b2 = base.clone();
    let b3 = base.clone();
    let app = axum::Router::new()
        .route(
            "/{case}/api/v1/auth/config",
            get(move |P(case): P<String>| {
                let base = b1.clone();
                async move {
                    let ok = json!({"oidc": {"issuer": format!("{base}/{case}"), "audience": "urn:warden",
                                    "cli_client_id": "cli", "console_client_id": null, "scopes": []},
                                    "builtin": false, "postgres_listen": "127.0.0.1:15432"});
                    match case.as_str() {
                        "config-not-json" => "<html>hello</html>".into_response(),
                        "config-wrong-types" => json_resp(json!({"oidc": {"issuer": 42}})),
                        "config-http-issuer" => json_resp(json!({"oidc": {"issuer": "http://idp.example.com", "cli_client_id": "cli"}})),
                        "config-no-oidc" => json_resp(json!({"oidc": null, "builtin": true})),
                        "config-500" => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
                        "config-huge" => json_resp(json!({"pad": "x".repeat(2 << 20)})),
                        _ => json_resp(ok),
                    }
                }
            }),
        )
        .route(
            "/{case}/.well-known/openid-configuration",
            get(move |P(case): P<String>| {
                let base = b2.clone();
                async move {
                    let issuer = if case == "mixup" { format!("{base}/other") } else { format!("{base}/{case}") };
                    json_resp(json!({
                        "issuer": issuer,
                        "device_authorization_endpoint": format!("{base}/{case}/device"),
                        "token_endpoint": format!("{base}/{case}/token"),
                    }))
                }
            }),
        )
        .route(
            "/{case}/device",
            post(move |P(case): P<String>| {
                let base = b3.clone();
                async move {
                    if case == "device-escape" {
                        return json_resp(json!({"device_code": "d", "user_code": "\u{1b}]0;owned\u{7}",
                            "verification_uri": format!("{base}/v"), "expires_in": 60, "interval": 1}));
                    }
                    json_resp(json!({"device_code": "d", "user_code": "ABCD-EFGH",
                        "verification_uri": format!("{base}/v"), "expires_in": 60, "interval": 1}))
                }
            }),
        )
        .route(
            "/{case}/token",
            post(|P(case): P<String>| async move {
                let r: Response = match case.as_str() {
                    "token-wrong-type" => json_resp(json!({"access_token": 12, "token_type": "Bearer"})),
                    "token-not-bearer" => json_resp(json!({"access_token": "abc", "token_type": "MAC"})),
                    "token-huge" => json_resp(json!({"access_token": "x".repeat(2 << 20)})),
                    "token-not-json" => (StatusCode::OK, "garbage").into_response(),
                    "token-expired" => (StatusCode::BAD_REQUEST, json_resp(json!({"error": "expired_token"}))).into_response(),
                    _ => (StatusCode::BAD_REQUEST, json_resp(json!({"error": "server_exploded\u{1b}[2J", "error_description": "boom"}))).into_response(),
                };
                r
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_gateway_and_idp_answers_give_clear_errors() {
    let addr = hostile_server().await;
    let cases: &[(&str, &str)] = &[
        ("config-not-json", "unusable answer"),
        ("config-wrong-types", "issuer"),
        ("config-http-issuer", "https"),
        ("config-no-oidc", "no OIDC sign-in"),
        ("config-500", "HTTP 500"),
        ("config-huge", "larger than"),
        ("mixup", "names issuer"),
        ("device-escape", "user_code"),
        ("token-wrong-type", "access_token"),
        ("token-not-bearer", "Bearer"),
        ("token-huge", "larger than"),
        ("token-not-json", "no access_token"),
        ("token-expired", "code expired"),
        ("token-other", "server_exploded"),
    ];
    for (case, needle) in cases {
        let p = Person::new(&format!("http://{addr}/{case}"));
        let out = tokio::time::timeout(
            Duration::from_secs(30),
            tokio::process::Command::from(p.command(&["login"])).output(),
        )
        .await
        .unwrap()
        .unwrap();
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{case}: {stderr}");
        assert!(
            stderr.contains(needle),
            "{case}: wanted {needle:?} in:\n{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{case}: {stderr}");
        assert!(
            !stderr.contains('\u{1b}') && !stdout.contains('\u{1b}'),
            "{case}: escape sequence printed"
        );
        assert!(!p.cache_file().exists(), "{case}: something was cached");
    }
}
