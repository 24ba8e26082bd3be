//! `warden exec CONNECTION -c SQL`: one simple-protocol query through the gateway with the
//! person's login; the result as a table, JSON or CSV on stdout, command tags and notices
//! on stderr, a spinner while the gateway holds the statement for review.

use std::io::{IsTerminal as _, Write as _};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, bail};
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use warden_wire::{
    BackendKeyData, CancelRequest, CommandComplete, CopyFail, DataRow, ErrorResponse, Frame,
    Message, NoticeResponse, Query, RowDescription, StartupMessage, Terminate,
};

use super::auth;
use super::connect::{self, Dialer, LoginFailure, TokenSource};
use crate::{ExecArgs, OutputFormat};
use warden_mcp::pg::typed;

/// The gateway's notice when it holds a statement for review (crates/warden-pg proxy.rs).
const HELD_PREFIX: &str = "Warden is holding this statement for review";

/// One statement's rows.
struct ResultSet {
    columns: Vec<(String, u32)>,
    rows: Vec<Vec<Option<String>>>,
}

/// Runs `warden exec`.
pub async fn run(args: ExecArgs) -> anyhow::Result<ExitCode> {
    let gateway = auth::gateway_url(args.gateway.as_deref())?;
    if args.connection.is_empty() {
        bail!("CONNECTION must be a connection name");
    }
    let tokens = TokenSource::new(args.token.as_deref(), &gateway);
    // The login first: "not logged in" is the likeliest problem and the clearest message.
    let token = tokens.token().await.map_err(|e| anyhow!("{e}"))?;
    let postgres = connect::resolve_postgres(&args.target, &gateway).await?;
    let dialer = Dialer::new(&postgres, &args.target)?;
    let io = dialer.dial().await.map_err(|e| {
        anyhow!("cannot reach the gateway's PostgreSQL listener at {postgres}: {e:#}")
    })?;
    let startup = StartupMessage::new(vec![
        ("user".into(), connect::os_user()),
        ("database".into(), args.connection.clone()),
        ("application_name".into(), "warden exec".into()),
        ("client_encoding".into(), "UTF8".into()),
    ]);
    let session = match connect::sign_in(io, &startup, &token).await {
        Ok(s) => s,
        Err(LoginFailure::Refused(e)) => {
            report_error(&connect::with_login_hint(e, &gateway));
            return Ok(ExitCode::from(1));
        }
        Err(LoginFailure::Broken(e)) => return Err(e.context("the gateway login failed")),
    };
    drop(token);
    let mut io = session.io;
    let mut buf = session.rest;

    // Up to the first ReadyForQuery: parameters and the cancel key.
    let mut key = None;
    loop {
        let f = connect::read_frame(&mut io, &mut buf).await?;
        match f.tag() {
            b'K' => key = BackendKeyData::from_frame(&f).ok(),
            b'N' => print_notice(&f),
            b'E' => {
                report_error(&ErrorResponse::from_frame(&f)?);
                return Ok(ExitCode::from(1));
            }
            b'Z' => break,
            _ => {}
        }
    }

    io.write_all(&Query::new(&args.command)?.encode()).await?;
    let mut spinner = Spinner::new();
    let mut sets: Vec<ResultSet> = Vec::new();
    let mut current: Option<ResultSet> = None;
    let mut error: Option<ErrorResponse> = None;
    let mut cancelled = false;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        let f = tokio::select! {
            f = connect::read_frame(&mut io, &mut buf) => f?,
            _ = &mut ctrl_c, if !cancelled => {
                // Ask the gateway to cancel (a held statement is then withdrawn); keep reading
                // for its answer.
                cancelled = true;
                spinner.clear();
                eprintln!("cancelling…");
                if let Some(k) = &key {
                    if let Ok(mut c) = dialer.dial().await {
                        c.write_all(&CancelRequest::new(k.process_id, k.secret_key.clone()).encode()).await.ok();
                        c.shutdown().await.ok();
                    }
                }
                continue;
            }
        };
        match f.tag() {
            b'T' => {
                let rd = RowDescription::from_frame(&f)?;
                current = Some(ResultSet {
                    columns: rd
                        .fields()
                        .iter()
                        .map(|c| (c.name.clone(), c.type_oid))
                        .collect(),
                    rows: Vec::new(),
                });
            }
            b'D' => {
                let row = DataRow::from_frame(&f)?;
                let set = current
                    .as_mut()
                    .ok_or_else(|| anyhow!("the gateway sent a row without a description"))?;
                set.rows.push(
                    row.columns()
                        .map(|c| c.map(|b| String::from_utf8_lossy(b).into_owned()))
                        .collect(),
                );
            }
            b'C' => {
                spinner.clear();
                let tag = CommandComplete::from_frame(&f)?.tag;
                if let Some(set) = current.take() {
                    sets.push(set);
                }
                eprintln!("{tag}");
            }
            b'I' => current = None,
            b'N' => {
                let n = NoticeResponse::from_frame(&f)?;
                spinner.clear();
                print_notice(&f);
                if n.message().is_some_and(|m| m.starts_with(HELD_PREFIX)) {
                    spinner.start("waiting for approval…");
                }
            }
            b'E' => {
                spinner.clear();
                error = Some(ErrorResponse::from_frame(&f)?);
                current = None;
            }
            // COPY FROM STDIN has no input here.
            b'G' => {
                io.write_all(
                    &CopyFail {
                        message: "warden exec does not send COPY data".into(),
                    }
                    .encode(),
                )
                .await?
            }
            b'd' => {
                let mut out = std::io::stdout().lock();
                out.write_all(f.body())?;
            }
            b'Z' => break,
            _ => {}
        }
    }
    spinner.clear();
    io.write_all(&Terminate.encode()).await.ok();
    io.shutdown().await.ok();

    let mut out = std::io::stdout().lock();
    for set in &sets {
        match args.format {
            OutputFormat::Table => writeln!(out, "{}", table(set))?,
            OutputFormat::Json => writeln!(out, "{}", serde_json::to_string_pretty(&json(set))?)?,
            OutputFormat::Csv => out.write_all(csv(set).as_bytes())?,
        }
    }
    out.flush()?;
    match error {
        Some(e) => {
            report_error(&e);
            Ok(ExitCode::from(1))
        }
        None => Ok(ExitCode::SUCCESS),
    }
}

/// `NOTICE:  message` (and hint) on stderr, as psql prints them.
fn print_notice(f: &Frame) {
    if let Ok(n) = NoticeResponse::from_frame(f) {
        eprintln!(
            "{}:  {}",
            n.severity().unwrap_or("NOTICE"),
            auth::sanitize(n.message().unwrap_or(""))
        );
        if let Some(h) = n.hint() {
            eprintln!("HINT:  {}", auth::sanitize(h));
        }
    }
}

/// `error: SQLSTATE message` plus detail and hint, on stderr.
fn report_error(e: &ErrorResponse) {
    eprintln!(
        "error: {} {}",
        e.sqlstate().unwrap_or("XX000"),
        auth::sanitize(e.message().unwrap_or("(no message)"))
    );
    if let Some(d) = e.detail() {
        eprintln!("DETAIL:  {}", auth::sanitize(d));
    }
    if let Some(h) = e.hint() {
        eprintln!("HINT:  {}", auth::sanitize(h));
    }
}

fn table(set: &ResultSet) -> comfy_table::Table {
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
    t.set_header(set.columns.iter().map(|(n, _)| n.as_str()));
    for row in &set.rows {
        t.add_row(row.iter().map(|v| v.as_deref().unwrap_or("")));
    }
    t
}

/// Rows as JSON objects; booleans, integers, floats and json/jsonb keep their type, other
/// values (numeric included, to keep its precision) are strings; NULL is null.
fn json(set: &ResultSet) -> Value {
    Value::Array(
        set.rows
            .iter()
            .map(|row| {
                let mut obj = serde_json::Map::new();
                for ((name, oid), v) in set.columns.iter().zip(row) {
                    obj.insert(name.clone(), typed(*oid, v.as_deref()));
                }
                Value::Object(obj)
            })
            .collect(),
    )
}

/// RFC 4180 CSV: a header line, then rows; NULL is an empty field.
fn csv(set: &ResultSet) -> String {
    fn field(out: &mut String, v: &str) {
        if v.contains([',', '"', '\n', '\r']) || v.starts_with(' ') || v.ends_with(' ') {
            out.push('"');
            out.push_str(&v.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(v);
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, cells: &mut dyn Iterator<Item = &str>| {
        for (i, c) in cells.enumerate() {
            if i > 0 {
                out.push(',');
            }
            field(out, c);
        }
        out.push_str("\r\n");
    };
    line(&mut out, &mut set.columns.iter().map(|(n, _)| n.as_str()));
    for row in &set.rows {
        line(
            &mut out,
            &mut row.iter().map(|v| v.as_deref().unwrap_or("")),
        );
    }
    out
}

/// An indicatif spinner on stderr, only when stderr is a terminal.
struct Spinner {
    tty: bool,
    bar: Option<indicatif::ProgressBar>,
}

impl Spinner {
    fn new() -> Spinner {
        Spinner {
            tty: std::io::stderr().is_terminal(),
            bar: None,
        }
    }

    fn start(&mut self, msg: &'static str) {
        self.clear();
        if !self.tty {
            return;
        }
        let pb =
            indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
        pb.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        pb.set_message(msg);
        pb.enable_steady_tick(Duration::from_millis(120));
        self.bar = Some(pb);
    }

    fn clear(&mut self) {
        if let Some(pb) = self.bar.take() {
            pb.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set() -> ResultSet {
        ResultSet {
            columns: vec![
                ("n".into(), 23),
                ("s".into(), 25),
                ("b".into(), 16),
                ("j".into(), 3802),
            ],
            rows: vec![
                vec![
                    Some("1".into()),
                    Some("a,\"b\"".into()),
                    Some("t".into()),
                    Some("{\"k\":[1]}".into()),
                ],
                vec![None, Some("plain".into()), Some("f".into()), None],
            ],
        }
    }

    #[test]
    fn csv_quotes_what_needs_it() {
        assert_eq!(
            csv(&set()),
            "n,s,b,j\r\n1,\"a,\"\"b\"\"\",t,\"{\"\"k\"\":[1]}\"\r\n,plain,f,\r\n"
        );
    }

    #[test]
    fn json_keeps_types() {
        assert_eq!(
            json(&set()),
            serde_json::json!([
                {"n": 1, "s": "a,\"b\"", "b": true, "j": {"k": [1]}},
                {"n": null, "s": "plain", "b": false, "j": null}
            ])
        );
    }
}
