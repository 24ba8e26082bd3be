//! The proxy loop: after login, bytes flow both ways with statements inspected on the way
//! to the target.
//!
//! Each direction walks its read buffer frame by frame and forwards every complete frame it
//! has seen in one write, so a pipelined batch costs one syscall, not one per message.
//! Frames the gateway does not inspect (CopyData, DataRow, …) are streamed through as they
//! arrive, so a large row or COPY never needs to sit in memory whole. Frames it inspects
//! (Query, Parse from the client; ReadyForQuery from the target) are read whole, bounded by
//! the configured maximum message size. This is hand-written rather than built on a codec
//! because a `Framed` stream would split and re-encode every message.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use warden_policy::statement::{Analyzer, StatementClass};
use warden_types::SessionId;
use warden_wire::WireError;

use crate::error::SessionError;
use crate::stream::ClientStream;

/// What the proxy loop knows about its session.
pub struct SessionCtx {
    /// This session's id.
    pub session_id: SessionId,
    /// Connection name.
    pub connection: String,
    /// Target role.
    pub role: String,
    /// Who is connected.
    pub subject: String,
    /// Shared statement analysis.
    pub analyzer: Arc<Analyzer>,
    /// Largest message accepted.
    pub max_message: usize,
    /// Statement counters, looked up once per session rather than per statement.
    pub counters: StatementCounters,
}

/// `warden_pg_statements_total` by class.
pub struct StatementCounters([metrics::Counter; 6]);

impl StatementCounters {
    /// Registers (or finds) the counters.
    pub fn new() -> Self {
        StatementCounters(
            ALL_CLASSES.map(
                |c| metrics::counter!("warden_pg_statements_total", "class" => class_label(c)),
            ),
        )
    }

    fn count(&self, class: StatementClass) {
        let i = ALL_CLASSES.iter().position(|c| *c == class).unwrap_or(5);
        if let Some(c) = self.0.get(i) {
            c.increment(1);
        }
    }
}

impl Default for StatementCounters {
    fn default() -> Self {
        Self::new()
    }
}

const ALL_CLASSES: [StatementClass; 6] = [
    StatementClass::Read,
    StatementClass::Write,
    StatementClass::Ddl,
    StatementClass::Destructive,
    StatementClass::Utility,
    StatementClass::Unknown,
];

const READ_CHUNK: usize = 16 * 1024;
/// Most memory reserved ahead of bytes that have actually arrived, so a peer announcing a
/// huge message and then stalling cannot pin the configured maximum per connection.
const MAX_RESERVE_AHEAD: usize = 256 * 1024;

/// Runs the session until either side closes.
pub async fn run(
    client: ClientStream,
    client_buf: BytesMut,
    server: TcpStream,
    server_buf: BytesMut,
    ctx: &SessionCtx,
) -> Result<(), SessionError> {
    let (srd, swr) = server.into_split();
    match client {
        // Owned halves of a plain socket need no lock between the two directions.
        ClientStream::Plain(tcp) => {
            let (crd, cwr) = tcp.into_split();
            relay(crd, cwr, client_buf, srd, swr, server_buf, ctx).await
        }
        ClientStream::Tls(tls) => {
            let (crd, cwr) = tokio::io::split(*tls);
            relay(crd, cwr, client_buf, srd, swr, server_buf, ctx).await
        }
    }
}

async fn relay<CR, CW, SR, SW>(
    mut crd: CR,
    mut cwr: CW,
    client_buf: BytesMut,
    mut srd: SR,
    mut swr: SW,
    server_buf: BytesMut,
    ctx: &SessionCtx,
) -> Result<(), SessionError>
where
    CR: AsyncRead + Unpin,
    CW: AsyncWrite + Unpin,
    SR: AsyncRead + Unpin,
    SW: AsyncWrite + Unpin,
{
    let terminated = AtomicBool::new(false);
    let c2s = client_to_server(&mut crd, &mut swr, client_buf, ctx, &terminated);
    let s2c = server_to_client(&mut srd, &mut cwr, server_buf, ctx, &terminated);
    let res = tokio::select! {
        r = c2s => r,
        r = s2c => r,
    };
    let res = match res {
        Err(SessionError::TargetGone(_)) if terminated.load(Ordering::Relaxed) => Ok(()),
        other => other,
    };
    // The one place a mid-session error reaches the client: a FATAL ErrorResponse.
    if let Err(e) = &res {
        if let Some(msg) = e.to_error_response() {
            let _ = cwr.write_all(&msg).await;
        }
    }
    let _ = cwr.shutdown().await;
    res
}

/// Header of the frame at the start of `buf`: its tag and total length (tag included).
/// `None` until five bytes are there.
fn header(buf: &[u8], max_len: usize) -> Result<Option<(u8, usize)>, WireError> {
    warden_wire::frame_header(buf, max_len)
}

async fn client_to_server<R, W>(
    rd: &mut R,
    wr: &mut W,
    mut buf: BytesMut,
    ctx: &SessionCtx,
    terminated: &AtomicBool,
) -> Result<(), SessionError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    // Bytes of a streamed (uninspected) frame still to come from the client.
    let mut passing = 0usize;
    loop {
        let mut ready = 0usize;
        let mut want = READ_CHUNK;
        loop {
            if passing > 0 {
                let n = passing.min(buf.len() - ready);
                ready += n;
                passing -= n;
                if passing > 0 {
                    break;
                }
                continue;
            }
            let rest = &buf[ready..];
            let Some((tag, len)) =
                header(rest, ctx.max_message).map_err(SessionError::ClientProtocol)?
            else {
                break;
            };
            match tag {
                b'Q' | b'P' => {
                    if rest.len() < len {
                        want = want.max((len - rest.len()).min(MAX_RESERVE_AHEAD));
                        break;
                    }
                    inspect_client(tag, &rest[5..len], ctx)
                        .map_err(SessionError::ClientProtocol)?;
                    ready += len;
                }
                b'X' => {
                    terminated.store(true, Ordering::Relaxed);
                    passing = len;
                }
                // FunctionCall runs a function by OID with no SQL text to inspect: refuse it
                // rather than let it bypass statement policy.
                b'F' => return Err(SessionError::Unsupported("the FunctionCall message")),
                _ => passing = len,
            }
        }
        if ready > 0 {
            let chunk = buf.split_to(ready);
            wr.write_all(&chunk)
                .await
                .map_err(SessionError::target_io)?;
        }
        buf.reserve(want);
        let n = rd
            .read_buf(&mut buf)
            .await
            .map_err(|e| SessionError::ClientGone(e.to_string()))?;
        if n == 0 {
            return Err(SessionError::ClientGone("closed".into()));
        }
    }
}

async fn server_to_client<R, W>(
    rd: &mut R,
    wr: &mut W,
    mut buf: BytesMut,
    ctx: &SessionCtx,
    terminated: &AtomicBool,
) -> Result<(), SessionError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut passing = 0usize;
    loop {
        let mut ready = 0usize;
        let mut want = READ_CHUNK;
        loop {
            if passing > 0 {
                let n = passing.min(buf.len() - ready);
                ready += n;
                passing -= n;
                if passing > 0 {
                    break;
                }
                continue;
            }
            let rest = &buf[ready..];
            let Some((tag, len)) = header(rest, ctx.max_message)
                .map_err(|e| SessionError::TargetProtocol(e.to_string()))?
            else {
                break;
            };
            match tag {
                b'Z' => {
                    if rest.len() < len {
                        want = want.max((len - rest.len()).min(MAX_RESERVE_AHEAD));
                        break;
                    }
                    ready += len;
                }
                _ => passing = len,
            }
        }
        if ready > 0 {
            let chunk = buf.split_to(ready);
            wr.write_all(&chunk)
                .await
                .map_err(|e| SessionError::ClientGone(e.to_string()))?;
            wr.flush()
                .await
                .map_err(|e| SessionError::ClientGone(e.to_string()))?;
        }
        buf.reserve(want);
        let n = rd
            .read_buf(&mut buf)
            .await
            .map_err(SessionError::target_io)?;
        if n == 0 {
            if terminated.load(Ordering::Relaxed) {
                return Ok(());
            }
            return Err(SessionError::TargetGone("closed".into()));
        }
    }
}

/// Inspects a Query or Parse body. Analysis is cached, so the hot path normally costs a
/// lexer pass and a hash lookup.
fn inspect_client(tag: u8, body: &[u8], ctx: &SessionCtx) -> Result<(), WireError> {
    let sql = match tag {
        b'Q' => warden_wire::query_text(body)?,
        _ => warden_wire::parse_text(body)?.1,
    };
    let analysis = ctx.analyzer.analyze(sql);
    let class = analysis.riskiest();
    ctx.counters.count(class);
    if tracing::enabled!(tracing::Level::DEBUG) {
        tracing::debug!(session = %ctx.session_id, class = class_label(class), statements = analysis.statements.len(), "statement");
    }
    Ok(())
}

fn class_label(c: StatementClass) -> &'static str {
    match c {
        StatementClass::Read => "read",
        StatementClass::Write => "write",
        StatementClass::Ddl => "ddl",
        StatementClass::Destructive => "destructive",
        StatementClass::Utility => "utility",
        StatementClass::Unknown => "unknown",
    }
}
