//! A minimal simple-protocol client for the gateway's own PostgreSQL listener: sign in with
//! the caller's bearer token as the password, send one query, collect the rows. The gateway
//! does everything else (identity, policy, JIT credentials, masking, approvals, recording).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{anyhow, bail};
use bytes::BytesMut;
use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use warden_types::Secret;
use warden_wire::{
    scan_frame, Authentication, CommandComplete, DataRow, ErrorResponse, Frame, Message,
    NoticeResponse, PasswordMessage, Query, RowDescription, StartupMessage, Terminate,
    DEFAULT_MAX_MESSAGE_LEN,
};

/// The gateway's notice when it holds a statement for review (crates/warden-pg proxy.rs).
pub const HELD_PREFIX: &str = "Warden is holding this statement for review ";

/// Time to connect and sign in.
const LOGIN_TIMEOUT: Duration = Duration::from_secs(30);

/// One statement's result.
#[derive(Debug, Clone, Default)]
pub struct Rows {
    /// Column names and type OIDs.
    pub columns: Vec<(String, u32)>,
    /// Rows in text format; NULL is `None`. At most the cap.
    pub rows: Vec<Vec<Option<String>>>,
    /// More rows came than the cap.
    pub truncated: bool,
    /// The command tag (`SELECT 3`, `DELETE 1`).
    pub command_tag: String,
}

impl Rows {
    /// `{columns, rows, row_count, truncated, command_tag}` with typed JSON values.
    pub fn to_json(&self) -> Value {
        let rows: Vec<Value> = self
            .rows
            .iter()
            .map(|r| {
                Value::Array(
                    self.columns
                        .iter()
                        .zip(r)
                        .map(|((_, oid), v)| typed(*oid, v.as_deref()))
                        .collect(),
                )
            })
            .collect();
        json!({
            "columns": self.columns.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
            "row_count": rows.len(),
            "rows": rows,
            "truncated": self.truncated,
            "command_tag": self.command_tag,
        })
    }
}

/// A PostgreSQL error as the gateway sent it.
#[derive(Debug, Clone)]
pub struct PgError {
    /// SQLSTATE.
    pub sqlstate: String,
    /// The message.
    pub message: String,
    /// DETAIL, if any.
    pub detail: Option<String>,
    /// HINT, if any.
    pub hint: Option<String>,
}

impl PgError {
    fn from_response(e: &ErrorResponse) -> PgError {
        PgError {
            sqlstate: e.sqlstate().unwrap_or("XX000").to_owned(),
            message: e.message().unwrap_or("(no message)").to_owned(),
            detail: e.detail().map(str::to_owned),
            hint: e.hint().map(str::to_owned),
        }
    }

    /// `{error: {sqlstate, message, detail?, hint?}}`.
    pub fn to_json(&self) -> Value {
        let mut e = json!({"sqlstate": self.sqlstate, "message": self.message});
        if let Some(d) = &self.detail {
            e["detail"] = d.clone().into();
        }
        if let Some(h) = &self.hint {
            e["hint"] = h.clone().into();
        }
        json!({ "error": e })
    }
}

/// How a statement ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// It ran (the last result set, if any).
    Done(Rows),
    /// The gateway (or the target) refused it.
    Refused(PgError),
}

/// What [`run`] returns.
pub enum Started {
    /// The statement finished.
    Finished(Outcome),
    /// The gateway holds it for review; [`Held::finish`] waits for the decision.
    Held {
        /// The review id (`rv-…`).
        review_id: String,
        /// The gateway's notice text.
        message: String,
        /// The connection, waiting for the decision.
        rest: Held,
    },
}

/// A connection whose statement waits for review.
pub struct Held {
    io: TcpStream,
    buf: BytesMut,
    max_rows: usize,
    rows: Rows,
}

impl Held {
    /// Waits for the review's decision and the statement's result.
    pub async fn finish(mut self) -> anyhow::Result<Outcome> {
        let mut r = read_result(&mut self.io, &mut self.buf, self.max_rows, self.rows).await?;
        close(&mut self.io).await;
        match r.take_outcome() {
            Some(o) => Ok(o),
            None => bail!("the gateway held the statement twice"),
        }
    }
}

/// Where and as whom to open a gateway session.
pub struct Login<'a> {
    /// The gateway's PostgreSQL listener (loopback).
    pub addr: SocketAddr,
    /// The connection name (sent as `database`).
    pub connection: &'a str,
    /// The caller's bearer token (sent as the password).
    pub token: &'a Secret,
    /// `application_name` (names the tool in the gateway's session record).
    pub application_name: &'a str,
}

/// Opens a gateway session and runs `sql` (one statement) through it.
pub async fn run(login: &Login<'_>, sql: &str, max_rows: usize) -> anyhow::Result<Started> {
    let (mut io, mut buf) = match sign_in(login).await? {
        Ok(s) => s,
        Err(e) => return Ok(Started::Finished(Outcome::Refused(e))),
    };
    io.write_all(&Query::new(sql)?.encode()).await?;
    let r = read_result(&mut io, &mut buf, max_rows, Rows::default()).await?;
    match r {
        Step::Held {
            review_id,
            message,
            rows,
        } => Ok(Started::Held {
            review_id,
            message,
            rest: Held {
                io,
                buf,
                max_rows,
                rows,
            },
        }),
        Step::Done(o) => {
            close(&mut io).await;
            Ok(Started::Finished(o))
        }
    }
}

async fn close(io: &mut TcpStream) {
    io.write_all(&Terminate.encode()).await.ok();
    io.shutdown().await.ok();
}

enum Step {
    Done(Outcome),
    Held {
        review_id: String,
        message: String,
        rows: Rows,
    },
}

impl Step {
    fn take_outcome(&mut self) -> Option<Outcome> {
        match self {
            Step::Done(o) => Some(o.clone()),
            Step::Held { .. } => None,
        }
    }
}

/// Reads up to ReadyForQuery, or up to a "held for review" notice.
async fn read_result(
    io: &mut TcpStream,
    buf: &mut BytesMut,
    max_rows: usize,
    mut rows: Rows,
) -> anyhow::Result<Step> {
    let mut error: Option<PgError> = None;
    loop {
        let f = read_frame(io, buf).await?;
        match f.tag() {
            b'T' => {
                let rd = RowDescription::from_frame(&f)?;
                rows = Rows {
                    columns: rd
                        .fields()
                        .iter()
                        .map(|c| (c.name.clone(), c.type_oid))
                        .collect(),
                    ..Rows::default()
                };
            }
            b'D' => {
                if rows.rows.len() >= max_rows {
                    rows.truncated = true;
                    continue;
                }
                let row = DataRow::from_frame(&f)?;
                rows.rows.push(
                    row.columns()
                        .map(|c| c.map(|b| String::from_utf8_lossy(b).into_owned()))
                        .collect(),
                );
            }
            b'C' => rows.command_tag = CommandComplete::from_frame(&f)?.tag,
            b'N' => {
                let n = NoticeResponse::from_frame(&f)?;
                if let Some(rest) = n.message().and_then(|m| m.strip_prefix(HELD_PREFIX)) {
                    let review_id = rest
                        .split(|c: char| c == ':' || c.is_whitespace())
                        .next()
                        .unwrap_or("")
                        .to_owned();
                    if !review_id.is_empty() {
                        return Ok(Step::Held {
                            review_id,
                            message: n.message().unwrap_or("").to_owned(),
                            rows,
                        });
                    }
                }
            }
            b'E' => error = Some(PgError::from_response(&ErrorResponse::from_frame(&f)?)),
            // COPY FROM STDIN has no input here: refuse it the protocol's way.
            b'G' => {
                io.write_all(
                    &warden_wire::CopyFail {
                        message: "the MCP query tool does not send COPY data".into(),
                    }
                    .encode(),
                )
                .await?
            }
            b'Z' => {
                return Ok(Step::Done(match error {
                    Some(e) => Outcome::Refused(e),
                    None => Outcome::Done(rows),
                }))
            }
            _ => {}
        }
    }
}

/// Connects and signs in; `Ok(Err(_))` when the gateway refused the login.
async fn sign_in(login: &Login<'_>) -> anyhow::Result<Result<(TcpStream, BytesMut), PgError>> {
    if !login.addr.ip().is_loopback() {
        bail!(
            "the gateway's PostgreSQL listener {} is not on loopback; the MCP server only sends tokens over loopback",
            login.addr
        );
    }
    tokio::time::timeout(LOGIN_TIMEOUT, async {
        let mut io = TcpStream::connect(login.addr).await.map_err(|e| {
            anyhow!(
                "cannot reach the gateway's PostgreSQL listener at {}: {e}",
                login.addr
            )
        })?;
        io.set_nodelay(true).ok();
        let startup = StartupMessage::new(vec![
            ("user".into(), "warden-mcp".into()),
            ("database".into(), login.connection.to_owned()),
            ("application_name".into(), login.application_name.to_owned()),
            ("client_encoding".into(), "UTF8".into()),
        ]);
        startup.validate()?;
        io.write_all(&startup.encode()).await?;
        let mut buf = BytesMut::new();
        let mut sent = false;
        loop {
            let f = read_frame(&mut io, &mut buf).await?;
            match f.tag() {
                b'R' => match Authentication::from_frame(&f)? {
                    Authentication::CleartextPassword if !sent => {
                        sent = true;
                        io.write_all(&PasswordMessage::new(login.token.expose()).encode())
                            .await?;
                    }
                    Authentication::Ok => break,
                    _ => bail!("the gateway asked for an unexpected authentication"),
                },
                b'E' => return Ok(Err(PgError::from_response(&ErrorResponse::from_frame(&f)?))),
                b'v' => {}
                t => bail!("unexpected message {:?} during login", t as char),
            }
        }
        // Parameters and the cancel key, up to the first ReadyForQuery.
        loop {
            let f = read_frame(&mut io, &mut buf).await?;
            match f.tag() {
                b'E' => return Ok(Err(PgError::from_response(&ErrorResponse::from_frame(&f)?))),
                b'Z' => return Ok(Ok((io, buf))),
                _ => {}
            }
        }
    })
    .await
    .map_err(|_| anyhow!("the gateway did not answer the login in time"))?
}

/// Reads one complete frame from `io`, with `buf` keeping what follows.
pub async fn read_frame(
    io: &mut (impl AsyncRead + Unpin + ?Sized),
    buf: &mut BytesMut,
) -> anyhow::Result<Frame> {
    loop {
        if let Some((_, len)) = scan_frame(buf, DEFAULT_MAX_MESSAGE_LEN)? {
            return Ok(Frame::from_raw(
                buf.split_to(len).freeze(),
                DEFAULT_MAX_MESSAGE_LEN,
            )?);
        }
        buf.reserve(8192);
        if io.read_buf(buf).await? == 0 {
            bail!("the gateway closed the connection");
        }
    }
}

/// A text-format value as JSON: booleans, integers, floats and json/jsonb keep their type;
/// other values (numeric included, to keep its precision) are strings; NULL is null.
pub fn typed(oid: u32, v: Option<&str>) -> Value {
    let Some(v) = v else { return Value::Null };
    let parsed = match oid {
        16 => match v {
            "t" => Some(Value::Bool(true)),
            "f" => Some(Value::Bool(false)),
            _ => None,
        },
        20 | 21 | 23 | 26 => v.parse::<i64>().ok().map(Value::from),
        700 | 701 => v
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number),
        114 | 3802 => serde_json::from_str(v).ok(),
        _ => None,
    };
    parsed.unwrap_or_else(|| Value::String(v.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_values() {
        assert_eq!(typed(23, Some("7")), json!(7));
        assert_eq!(typed(16, Some("f")), json!(false));
        assert_eq!(typed(1700, Some("1.10")), json!("1.10"));
        assert_eq!(typed(3802, Some("{\"a\":1}")), json!({"a": 1}));
        assert_eq!(typed(25, None), Value::Null);
    }
}
