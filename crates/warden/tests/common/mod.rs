//! Shared harness for the gateway's integration tests: start `warden gateway` as a real
//! process on loopback, and a raw PostgreSQL client that reports SQLSTATEs.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use warden_testkit::LoggedProcess;
use warden_wire::{
    scan_frame, Authentication, ErrorResponse, Frame, Message, PasswordMessage, StartupMessage,
};

/// Path of the `warden` binary under test.
pub fn warden_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_warden"))
}

/// A running gateway process.
pub struct Gateway {
    pub process: LoggedProcess,
    pub pg: SocketAddr,
    pub http: SocketAddr,
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
}

impl Gateway {
    /// Writes `config` (TOML without `[gateway]` listen addresses or data_dir) and starts
    /// the gateway on free loopback ports. `env` is passed to the process.
    pub async fn start(config: &str, env: &[(&str, &str)]) -> Result<Gateway> {
        let dir = tempfile::tempdir()?;
        Self::start_in(dir, config, env).await
    }

    /// Like [`Gateway::start`] with a given data directory (to restart on the same state).
    pub async fn start_in(
        dir: tempfile::TempDir,
        config: &str,
        env: &[(&str, &str)],
    ) -> Result<Gateway> {
        let data = dir.path().join("data");
        let path = dir.path().join("warden.toml");
        let header = format!(
            "[gateway]\ndata_dir = {:?}\npostgres_listen = \"127.0.0.1:0\"\nhttp_listen = \"127.0.0.1:0\"\n",
            data.display().to_string()
        );
        let text = if config.contains("[gateway]") {
            config.replacen("[gateway]", &header, 1)
        } else {
            format!("{header}\n{config}")
        };
        std::fs::write(&path, text)?;
        let mut cmd = Command::new(warden_bin());
        cmd.arg("gateway").arg("--config").arg(&path);
        cmd.env(
            "RUST_LOG",
            "debug,sqlx=warn,hyper=info,reqwest=info,rustls=info,h2=info",
        );
        for (k, v) in env {
            cmd.env(k, v);
        }
        let process = LoggedProcess::spawn(cmd)?;
        let line = process
            .wait_for_line("PostgreSQL listener on", Duration::from_secs(30))
            .await
            .with_context(|| format!("gateway did not start:\n{}", process.output()))?;
        let (pg, http) = parse_ready(&line)?;
        Ok(Gateway {
            process,
            pg,
            http,
            dir,
            config: path,
        })
    }

    /// Everything the gateway printed so far.
    pub fn logs(&self) -> String {
        self.process.output()
    }

    /// Runs a `warden` CLI command against this gateway's configuration.
    pub fn cli(&self, args: &[&str]) -> Result<std::process::Output> {
        let mut cmd = Command::new(warden_bin());
        cmd.args(args);
        cmd.arg("--config").arg(&self.config);
        Ok(cmd.output()?)
    }

    /// Issues a built-in token with the CLI (as an operator would).
    pub fn issue_token(&self, name: &str, groups: &str, ttl: &str) -> Result<String> {
        let out = self.cli(&[
            "tokens", "issue", "--name", name, "--groups", groups, "--ttl", ttl,
        ])?;
        if !out.status.success() {
            bail!(
                "tokens issue failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8(out.stdout)?.trim().to_owned())
    }

    /// A libpq connection string for this gateway.
    pub fn dsn(&self, dbname: &str, password: &str) -> String {
        format!(
            "host=127.0.0.1 port={} dbname={dbname} user=test password={password} sslmode=disable",
            self.pg.port()
        )
    }

    /// The SQLite store file.
    pub fn store_path(&self) -> PathBuf {
        self.dir.path().join("data").join("warden.db")
    }
}

fn parse_ready(line: &str) -> Result<(SocketAddr, SocketAddr)> {
    // "warden: PostgreSQL listener on 127.0.0.1:X, HTTP on http://127.0.0.1:Y"
    let pg = line
        .split("listener on ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .context("no pg address")?
        .trim()
        .parse()?;
    let http = line
        .split("http://")
        .nth(1)
        .context("no http address")?
        .trim()
        .parse()?;
    Ok((pg, http))
}

/// Runs `psql` with `args` against `dsn`, returning stdout, or stderr as the error.
pub fn psql(dsn: &str, args: &[&str]) -> Result<String> {
    let out = Command::new("psql")
        .arg("-X")
        .arg("-A")
        .arg("-t")
        .arg("-v")
        .arg("ON_ERROR_STOP=1")
        .args(args)
        .arg(dsn)
        .env("PGCONNECT_TIMEOUT", "10")
        .output()?;
    if !out.status.success() {
        bail!("{}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8(out.stdout)?)
}

/// The outcome of a raw login attempt.
#[derive(Debug)]
pub enum Login {
    /// AuthenticationOk and ReadyForQuery arrived.
    Ok(TcpStream),
    /// The gateway answered with an ErrorResponse.
    Error { code: String, message: String },
}

/// Reads one frame from `s`.
pub async fn read_frame(s: &mut TcpStream, buf: &mut BytesMut) -> Result<Frame> {
    loop {
        if let Some((_, len)) = scan_frame(buf, 1 << 26)? {
            return Ok(Frame::from_raw(buf.split_to(len).freeze(), 1 << 26)?);
        }
        buf.reserve(4096);
        let n = tokio::time::timeout(Duration::from_secs(10), s.read_buf(buf)).await??;
        if n == 0 {
            bail!("connection closed");
        }
    }
}

/// Logs in with a hand-rolled client: startup (dbname), password = `password`.
pub async fn raw_login(addr: SocketAddr, dbname: &str, password: &str) -> Result<Login> {
    let mut s = TcpStream::connect(addr).await?;
    let startup = StartupMessage::new(vec![
        ("user".into(), "raw".into()),
        ("database".into(), dbname.into()),
    ]);
    s.write_all(&startup.encode()).await?;
    let mut buf = BytesMut::new();
    loop {
        let f = read_frame(&mut s, &mut buf).await?;
        match f.tag() {
            b'R' => match Authentication::from_frame(&f)? {
                Authentication::CleartextPassword => {
                    s.write_all(&PasswordMessage::new(password).encode())
                        .await?;
                }
                Authentication::Ok => {}
                other => bail!("unexpected auth request {other:?}"),
            },
            b'E' => {
                let e = ErrorResponse::from_frame(&f)?;
                return Ok(Login::Error {
                    code: e.fields.code().unwrap_or("").to_owned(),
                    message: e.fields.message().unwrap_or("").to_owned(),
                });
            }
            b'Z' => return Ok(Login::Ok(s)),
            _ => {}
        }
    }
}

/// Asserts that a login fails with `code` and a message containing `needle`.
pub async fn expect_login_error(
    addr: SocketAddr,
    db: &str,
    password: &str,
    code: &str,
    needle: &str,
) {
    match raw_login(addr, db, password).await.expect("login attempt") {
        Login::Ok(_) => panic!("login with a bad credential succeeded (wanted {code})"),
        Login::Error { code: c, message } => {
            assert_eq!(c, code, "wrong SQLSTATE; message: {message}");
            assert!(
                message.contains(needle),
                "message {message:?} does not contain {needle:?}"
            );
        }
    }
}

/// Runs a read-only SQL query on the gateway's SQLite store (through Python's sqlite3, so the
/// test reads the file exactly as an operator's tool would); rows are `|`-joined.
pub fn sqlite_dump(db: &Path, sql: &str) -> Result<String> {
    let out = Command::new("python3")
        .arg("-c")
        .arg("import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); [print('|'.join(map(str,r))) for r in c.execute(sys.argv[2])]")
        .arg(db)
        .arg(sql)
        .output()?;
    if !out.status.success() {
        bail!("{}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8(out.stdout)?)
}

impl Gateway {
    /// A `postgresql://` URI for this gateway (asyncpg accepts only this form).
    pub fn uri(&self, dbname: &str, password: &str) -> String {
        format!(
            "postgresql://test:{password}@127.0.0.1:{}/{dbname}?sslmode=disable",
            self.pg.port()
        )
    }
}

/// The outcome of one simple query on a raw session.
#[derive(Debug, PartialEq, Eq)]
pub enum QueryResult {
    /// Rows as text (`None` for NULL).
    Rows(Vec<Vec<Option<String>>>),
    /// An ErrorResponse: SQLSTATE and message.
    Error(String, String),
}

impl QueryResult {
    /// The first column of the first row; panics on an error or no rows.
    pub fn scalar(&self) -> String {
        match self {
            QueryResult::Rows(r) => r[0][0].clone().unwrap_or_default(),
            QueryResult::Error(c, m) => panic!("query failed: {c} {m}"),
        }
    }
}

/// Sends a simple Query on a raw session and reads up to ReadyForQuery.
pub async fn simple_query(s: &mut TcpStream, sql: &str) -> Result<QueryResult> {
    let mut msg = vec![b'Q'];
    msg.extend_from_slice(&((sql.len() + 5) as i32).to_be_bytes());
    msg.extend_from_slice(sql.as_bytes());
    msg.push(0);
    s.write_all(&msg).await?;
    read_result(s).await
}

/// Reads a simple query's result up to ReadyForQuery.
pub async fn read_result(s: &mut TcpStream) -> Result<QueryResult> {
    let mut buf = BytesMut::new();
    let mut rows = Vec::new();
    let mut error = None;
    loop {
        let f = read_frame(s, &mut buf).await?;
        match f.tag() {
            b'D' => {
                let body = f.body();
                let n = i16::from_be_bytes([body[0], body[1]]) as usize;
                let mut at = 2;
                let mut row = Vec::with_capacity(n);
                for _ in 0..n {
                    let len = i32::from_be_bytes(body[at..at + 4].try_into()?);
                    at += 4;
                    if len < 0 {
                        row.push(None);
                    } else {
                        let end = at + len as usize;
                        row.push(Some(String::from_utf8_lossy(&body[at..end]).into_owned()));
                        at = end;
                    }
                }
                rows.push(row);
            }
            b'E' => {
                let e = ErrorResponse::from_frame(&f)?;
                error = Some((
                    e.fields.code().unwrap_or("").to_owned(),
                    e.fields.message().unwrap_or("").to_owned(),
                ));
            }
            b'Z' => {
                return Ok(match error {
                    Some((c, m)) => QueryResult::Error(c, m),
                    None => QueryResult::Rows(rows),
                })
            }
            _ => {}
        }
    }
}

/// A minimal HTTP/1.0 request to the gateway's HTTP listener: (status, body).
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    bearer: Option<&str>,
) -> Result<(u16, String)> {
    let mut c = TcpStream::connect(addr).await?;
    let auth = bearer
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    c.write_all(
        format!("{method} {path} HTTP/1.0\r\nHost: warden\r\n{auth}Content-Length: 0\r\n\r\n")
            .as_bytes(),
    )
    .await?;
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), c.read_to_end(&mut raw)).await??;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok((status, body.to_owned()))
}

/// A simple Query message for `sql`.
pub fn query_frame(sql: &str) -> Vec<u8> {
    let mut m = vec![b'Q'];
    m.extend_from_slice(&((sql.len() + 5) as i32).to_be_bytes());
    m.extend_from_slice(sql.as_bytes());
    m.push(0);
    m
}

/// Reads frames until `readies` ReadyForQuery have arrived, one buffer across results
/// (they may share a read): the first column of each DataRow, `E` for each
/// ErrorResponse, `Z` for each ReadyForQuery.
pub async fn outline(s: &mut TcpStream, readies: usize) -> Result<Vec<String>> {
    let mut buf = BytesMut::new();
    let mut seen = Vec::new();
    while seen.iter().filter(|t: &&String| *t == "Z").count() < readies {
        let f = read_frame(s, &mut buf).await?;
        match f.tag() {
            b'D' => {
                seen.push(String::from_utf8_lossy(f.body().get(6..).unwrap_or(&[])).into_owned())
            }
            b'E' => seen.push("E".into()),
            b'Z' => seen.push("Z".into()),
            _ => {}
        }
    }
    Ok(seen)
}

/// One frontend message.
pub fn frame(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![tag];
    m.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
    m.extend_from_slice(body);
    m
}

/// Parse (unnamed) + Bind (text parameters) + Execute + Sync.
pub fn extended(sql: &str, params: &[&str]) -> Vec<u8> {
    let mut parse = vec![0u8];
    parse.extend_from_slice(sql.as_bytes());
    parse.extend_from_slice(&[0, 0, 0]);
    let mut bind = vec![0u8, 0u8, 0, 0];
    bind.extend_from_slice(&(params.len() as i16).to_be_bytes());
    for p in params {
        bind.extend_from_slice(&(p.len() as i32).to_be_bytes());
        bind.extend_from_slice(p.as_bytes());
    }
    bind.extend_from_slice(&[0, 0]);
    [
        frame(b'P', &parse),
        frame(b'B', &bind),
        frame(b'E', &[0, 0, 0, 0, 0]),
        frame(b'S', &[]),
    ]
    .concat()
}

/// The local PostgreSQL (trust authentication), as in CI.
pub const LOCAL_PG: &str = "host=127.0.0.1 port=5432 user=postgres dbname=postgres sslmode=disable";

/// A throw-away database on the local PostgreSQL, dropped (with its sessions) on drop.
pub struct Database(String);

impl Database {
    /// Creates `{prefix}_{pid}_{nanos}` and runs `schema` in it.
    pub fn create(prefix: &str, schema: &str) -> Result<Database> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_nanos();
        let name = format!("{prefix}_{}_{nanos}", std::process::id());
        psql(LOCAL_PG, &["-c", &format!("CREATE DATABASE {name}")])?;
        let db = Database(name);
        psql(&db.dsn(), &["-c", schema])?;
        Ok(db)
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.0
    }

    /// A libpq DSN for it, as the superuser.
    pub fn dsn(&self) -> String {
        LOCAL_PG.replace("dbname=postgres", &format!("dbname={}", self.0))
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let _ = psql(
            LOCAL_PG,
            &[
                "-c",
                &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.0),
            ],
        );
    }
}
