//! `warden connect CONNECTION`: a loopback PostgreSQL listener that signs its clients in to
//! the gateway with the person's cached login, so GUI tools and psql connect without a
//! password. Also the gateway dialer `warden exec` uses.
//!
//! Per client: answer SSLRequest/GSSENCRequest with `N` (the hop is loopback), take the
//! StartupMessage, get a fresh token, open the gateway's PostgreSQL listener (TLS when it is
//! not on loopback), send the client's startup with `database` = CONNECTION, answer the
//! cleartext password request with the token, then relay bytes both ways untouched.
//! Anything that goes wrong before the relay reaches the client as an ErrorResponse.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::Decoder;
use warden_types::Secret;
use warden_wire::{
    Authentication, ErrorResponse, Frame, Message, PasswordMessage, Severity, StartupCodec,
    StartupFrame, StartupMessage, ENCRYPTION_DECLINED, SSL_REQUEST_CODE,
};

use super::auth::{self, LoginNeeded};
use crate::{ConnectArgs, PgTarget, TlsMode};

/// Time a client has to send its startup packet.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// Time to open the gateway's listener (TCP and TLS).
const DIAL_TIMEOUT: Duration = Duration::from_secs(15);

/// A byte stream to the gateway, plain or TLS.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Where a token comes from: `--token`/`$WARDEN_TOKEN` (fixed), or the login cache
/// (refreshed as needed; one refresh at a time within this process).
pub enum TokenSource {
    /// A token given on the command line or in the environment.
    Fixed(Secret),
    /// The login cache for this gateway.
    Cache {
        /// The gateway URL (the cache key).
        gateway: String,
        /// Serializes refreshes between this process's client connections.
        lock: tokio::sync::Mutex<()>,
    },
}

impl TokenSource {
    /// `--token` if given, else the cache for `gateway`.
    pub fn new(token: Option<&str>, gateway: &str) -> TokenSource {
        match token.map(str::trim).filter(|t| !t.is_empty()) {
            Some(t) => TokenSource::Fixed(Secret::new(t)),
            None => TokenSource::Cache {
                gateway: gateway.to_owned(),
                lock: tokio::sync::Mutex::new(()),
            },
        }
    }

    /// A token to present now.
    pub async fn token(&self) -> Result<Secret, LoginNeeded> {
        match self {
            TokenSource::Fixed(t) => Ok(t.clone()),
            TokenSource::Cache { gateway, lock } => {
                let _one = lock.lock().await;
                auth::cached_token(gateway).await.map(|(t, _)| t)
            }
        }
    }
}

/// The gateway's PostgreSQL listener: `--postgres`, else what the gateway's auth config
/// says, else what it said at login.
pub async fn resolve_postgres(target: &PgTarget, gateway: &str) -> anyhow::Result<String> {
    if let Some(p) = &target.postgres {
        return Ok(p.clone());
    }
    let http = auth::http_client()?;
    let from_config = match auth::fetch_auth_config(&http, gateway).await {
        Ok(c) => c.postgres_listen,
        Err(e) => {
            tracing::debug!(error = %format!("{e:#}"), "no auth config");
            None
        }
    };
    from_config
        .or_else(|| auth::load(gateway).ok().flatten().and_then(|l| l.postgres_listen))
        .ok_or_else(|| {
            anyhow!("the gateway at {gateway} did not say where its PostgreSQL listener is; pass --postgres HOST:PORT")
        })
}

/// How to reach the gateway's PostgreSQL listener.
pub struct Dialer {
    addr: String,
    host: String,
    tls: TlsMode,
    tls_config: Option<Arc<rustls::ClientConfig>>,
}

impl Dialer {
    /// Prepares a dialer for `addr` (HOST:PORT); loads the TLS roots now so a bad
    /// `--ca-file` fails at once.
    pub fn new(addr: &str, target: &PgTarget) -> anyhow::Result<Dialer> {
        let host = match addr.rsplit_once(':') {
            Some((h, p)) if !h.is_empty() && p.parse::<u16>().is_ok() => {
                h.trim_start_matches('[').trim_end_matches(']').to_owned()
            }
            _ => bail!("--postgres must be HOST:PORT, not {addr:?}"),
        };
        let tls_config = match target.postgres_tls {
            TlsMode::Disable => None,
            _ => Some(Arc::new(tls_config(target.ca_file.as_ref())?)),
        };
        Ok(Dialer {
            addr: addr.to_owned(),
            host,
            tls: target.postgres_tls,
            tls_config,
        })
    }

    /// The address dialed.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Opens the listener: TCP, then TLS via SSLRequest when the mode or a non-loopback
    /// peer asks for it (the gateway requires TLS off loopback; tokens must not cross a
    /// network in clear).
    pub async fn dial(&self) -> anyhow::Result<Box<dyn Io>> {
        let tcp = tokio::time::timeout(DIAL_TIMEOUT, TcpStream::connect(&self.addr))
            .await
            .map_err(|_| anyhow!("timed out"))??;
        tcp.set_nodelay(true).ok();
        let peer = tcp.peer_addr()?;
        let use_tls = match self.tls {
            TlsMode::Require => true,
            TlsMode::Auto => !peer.ip().is_loopback(),
            TlsMode::Disable => {
                if !peer.ip().is_loopback() {
                    bail!("refusing to send a token in clear to {peer} (not loopback): drop --postgres-tls disable");
                }
                false
            }
        };
        if !use_tls {
            return Ok(Box::new(tcp));
        }
        let config = self
            .tls_config
            .clone()
            .ok_or_else(|| anyhow!("TLS is needed but not configured"))?;
        let mut tcp = tcp;
        let mut req = [0u8; 8];
        req[..4].copy_from_slice(&8u32.to_be_bytes());
        req[4..].copy_from_slice(&SSL_REQUEST_CODE.to_be_bytes());
        tcp.write_all(&req).await?;
        let mut answer = [0u8; 1];
        tokio::time::timeout(DIAL_TIMEOUT, tcp.read_exact(&mut answer))
            .await
            .map_err(|_| anyhow!("timed out waiting for the TLS answer"))??;
        if answer[0] != b'S' {
            bail!("the gateway at {} does not offer TLS", self.addr);
        }
        let name = rustls::pki_types::ServerName::try_from(self.host.clone())
            .map_err(|_| anyhow!("{:?} is not a valid TLS server name", self.host))?;
        let tls = tokio::time::timeout(
            DIAL_TIMEOUT,
            tokio_rustls::TlsConnector::from(config).connect(name, tcp),
        )
        .await
        .map_err(|_| anyhow!("TLS handshake timed out"))?
        .context("TLS handshake with the gateway failed")?;
        Ok(Box::new(tls))
    }
}

/// A rustls client configuration trusting `ca_file`, else the platform's roots.
fn tls_config(ca_file: Option<&PathBuf>) -> anyhow::Result<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    Ok(match ca_file {
        Some(path) => {
            let pem = std::fs::read(path)
                .with_context(|| format!("cannot read --ca-file {}", path.display()))?;
            let mut roots = rustls::RootCertStore::empty();
            for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
                roots
                    .add(cert.with_context(|| format!("{} is not PEM", path.display()))?)
                    .with_context(|| format!("{} holds an unusable certificate", path.display()))?;
            }
            if roots.is_empty() {
                bail!("--ca-file {} holds no certificate", path.display());
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        None => {
            use rustls_platform_verifier::BuilderVerifierExt as _;
            builder
                .with_platform_verifier()
                .context("cannot load the system's trusted roots")?
                .with_no_client_auth()
        }
    })
}

/// Why signing in to the gateway failed.
pub enum LoginFailure {
    /// The gateway answered with an ErrorResponse (to pass on as it is).
    Refused(ErrorResponse),
    /// The gateway spoke out of turn or the connection broke.
    Broken(anyhow::Error),
}

/// A signed-in gateway session, right after AuthenticationOk.
pub struct GatewaySession {
    /// The stream.
    pub io: Box<dyn Io>,
    /// Frames the client must see before the AuthenticationOk (NegotiateProtocolVersion).
    pub before: Vec<Frame>,
    /// The AuthenticationOk frame itself.
    pub ok: Frame,
    /// Bytes read after it.
    pub rest: BytesMut,
}

/// Reads one complete frame from `io`, with `buf` keeping what follows.
pub use warden_mcp::pg::read_frame;

/// Sends `startup` and answers the gateway's cleartext password request with `token`.
pub async fn sign_in(
    mut io: Box<dyn Io>,
    startup: &StartupMessage,
    token: &Secret,
) -> Result<GatewaySession, LoginFailure> {
    let broken = LoginFailure::Broken;
    startup.validate().map_err(|e| broken(e.into()))?;
    io.write_all(&startup.encode())
        .await
        .map_err(|e| broken(e.into()))?;
    let mut buf = BytesMut::new();
    let mut before = Vec::new();
    let mut sent = false;
    loop {
        let frame = tokio::time::timeout(STARTUP_TIMEOUT, read_frame(&mut io, &mut buf))
            .await
            .map_err(|_| broken(anyhow!("the gateway did not answer the login")))?
            .map_err(broken)?;
        match frame.tag() {
            b'R' => match Authentication::from_frame(&frame).map_err(|e| broken(e.into()))? {
                Authentication::CleartextPassword if !sent => {
                    sent = true;
                    io.write_all(&PasswordMessage::new(token.expose()).encode())
                        .await
                        .map_err(|e| broken(e.into()))?;
                }
                Authentication::Ok => {
                    return Ok(GatewaySession {
                        io,
                        before,
                        ok: frame,
                        rest: buf,
                    })
                }
                _ => {
                    return Err(broken(anyhow!(
                        "the gateway asked for an unexpected authentication"
                    )))
                }
            },
            b'E' => {
                return Err(LoginFailure::Refused(
                    ErrorResponse::from_frame(&frame).map_err(|e| broken(e.into()))?,
                ))
            }
            b'v' => before.push(frame),
            t => {
                return Err(broken(anyhow!(
                    "unexpected message {:?} during login",
                    t as char
                )))
            }
        }
    }
}

/// Adds "run `warden login`" to an identity error that lacks a hint.
pub fn with_login_hint(mut e: ErrorResponse, gateway: &str) -> ErrorResponse {
    if e.sqlstate().is_some_and(|c| c.starts_with("28")) && e.hint().is_none() {
        e = e.with_hint(format!(
            "run `warden login --gateway {gateway}` and connect again"
        ));
    }
    e
}

/// What every client connection shares.
struct Ctx {
    connection: String,
    gateway: String,
    dialer: Dialer,
    tokens: TokenSource,
}

/// Runs `warden connect`.
pub async fn run(args: ConnectArgs) -> anyhow::Result<ExitCode> {
    let gateway = auth::gateway_url(args.gateway.as_deref())?;
    if args.connection.is_empty() || args.connection.contains('\0') {
        bail!("CONNECTION must be a connection name");
    }
    let postgres = resolve_postgres(&args.target, &gateway).await?;
    let dialer = Dialer::new(&postgres, &args.target)?;
    let tokens = TokenSource::new(args.token.as_deref(), &gateway);
    if let TokenSource::Cache { .. } = tokens {
        // Not fatal: the person may log in while this runs; clients get a clear error meanwhile.
        if let Err(e) = auth::cached_token(&gateway).await {
            eprintln!("warning: {e}");
        }
    }
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], args.port)))
        .await
        .with_context(|| format!("cannot listen on 127.0.0.1:{}", args.port))?;
    let local = listener.local_addr()?;
    eprintln!(
        "Listening on {local} for connection {:?} through {} (gateway {gateway}); no password needed. Ctrl-C stops.",
        args.connection,
        dialer.addr()
    );
    println!(
        "psql \"host=127.0.0.1 port={} dbname={} sslmode=disable\"",
        local.port(),
        args.connection
    );
    let ctx = Arc::new(Ctx {
        connection: args.connection,
        gateway,
        dialer,
        tokens,
    });
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => {
                    let ctx = ctx.clone();
                    tokio::spawn(async move {
                        if let Err(e) = serve(tcp, &ctx).await {
                            eprintln!("client connection: {e:#}");
                        }
                    });
                }
                Err(e) => {
                    eprintln!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = tokio::signal::ctrl_c() => {
                eprintln!("stopped");
                return Ok(ExitCode::SUCCESS);
            }
        }
    }
}

/// Sends a FATAL ErrorResponse to the client and closes.
async fn refuse(client: &mut TcpStream, e: ErrorResponse) -> anyhow::Result<()> {
    client.write_all(&e.encode()).await?;
    client.shutdown().await.ok();
    Ok(())
}

/// One client connection, start to end.
async fn serve(mut client: TcpStream, ctx: &Ctx) -> anyhow::Result<()> {
    client.set_nodelay(true).ok();
    // The listener carries this person's identity: only their own processes may use it.
    let own = same_user(&client);
    let mut buf = BytesMut::new();
    let startup = loop {
        let packet = tokio::time::timeout(STARTUP_TIMEOUT, async {
            loop {
                if let Some(p) = StartupCodec.decode(&mut buf)? {
                    return anyhow::Ok(Some(p));
                }
                if client.read_buf(&mut buf).await? == 0 {
                    return Ok(None);
                }
            }
        })
        .await
        .map_err(|_| anyhow!("the client sent no startup packet"))?;
        let packet = match packet {
            Ok(Some(p)) => p,
            Ok(None) => return Ok(()),
            Err(e) => {
                let msg = format!("invalid startup packet: {e:#}");
                refuse(
                    &mut client,
                    ErrorResponse::new(Severity::Fatal, "08P01", msg),
                )
                .await?;
                return Ok(());
            }
        };
        match packet {
            // The client-to-listener hop is loopback; the gateway hop has its own TLS.
            StartupFrame::SslRequest | StartupFrame::GssEncRequest => {
                client.write_all(&[ENCRYPTION_DECLINED]).await?
            }
            StartupFrame::Cancel(_) if !own => return Ok(()),
            StartupFrame::Cancel(c) => {
                // The key is the gateway's own (relayed at login), so pass it on as is.
                if let Ok(mut gw) = ctx.dialer.dial().await {
                    gw.write_all(&c.encode()).await.ok();
                    gw.shutdown().await.ok();
                }
                return Ok(());
            }
            StartupFrame::Startup(s) => break s,
        }
    };

    if !own {
        let err = ErrorResponse::new(
            Severity::Fatal,
            "28000",
            "warden connect: this listener belongs to another user",
        )
        .with_hint("run your own `warden login` and `warden connect`");
        return refuse(&mut client, err).await;
    }
    let token = match ctx.tokens.token().await {
        Ok(t) => t,
        Err(e) => {
            let code = if matches!(e, LoginNeeded::Other(_)) {
                "08006"
            } else {
                "28000"
            };
            let err = ErrorResponse::new(Severity::Fatal, code, format!("warden connect: {e}"))
                .with_hint(format!(
                    "run `warden login --gateway {}` and connect again",
                    ctx.gateway
                ));
            return refuse(&mut client, err).await;
        }
    };
    let gw = match ctx.dialer.dial().await {
        Ok(g) => g,
        Err(e) => {
            let err = ErrorResponse::new(
                Severity::Fatal,
                "08001",
                format!(
                    "warden connect: cannot reach the gateway's PostgreSQL listener at {}: {e:#}",
                    ctx.dialer.addr()
                ),
            );
            return refuse(&mut client, err).await;
        }
    };
    // The client's own parameters pass through; the gateway decides what it accepts.
    let mut params: Vec<(String, String)> = startup
        .params
        .iter()
        .filter(|(k, _)| k != "database" && k != "user")
        .cloned()
        .collect();
    let user = startup
        .user()
        .filter(|u| !u.is_empty())
        .map(str::to_owned)
        .unwrap_or_else(os_user);
    params.insert(0, ("database".into(), ctx.connection.clone()));
    params.insert(0, ("user".into(), user));
    let upstream = StartupMessage {
        protocol: startup.protocol,
        params,
    };
    let mut session = match sign_in(gw, &upstream, &token).await {
        Ok(s) => s,
        Err(LoginFailure::Refused(e)) => {
            return refuse(&mut client, with_login_hint(e, &ctx.gateway)).await;
        }
        Err(LoginFailure::Broken(e)) => {
            let err = ErrorResponse::new(
                Severity::Fatal,
                "08006",
                format!("warden connect: the gateway login failed: {e:#}"),
            );
            return refuse(&mut client, err).await;
        }
    };
    drop(token);
    let mut head = BytesMut::new();
    for f in &session.before {
        head.extend_from_slice(f.raw());
    }
    head.extend_from_slice(session.ok.raw());
    head.extend_from_slice(&session.rest);
    client.write_all(&head).await?;
    if !buf.is_empty() {
        session.io.write_all(&buf).await?;
    }
    // From here on, bytes both ways, untouched.
    match tokio::io::copy_bidirectional(&mut client, &mut session.io).await {
        Ok(_) => Ok(()),
        // A peer closing abruptly is how many sessions end.
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::BrokenPipe
                    | std::io::ErrorKind::UnexpectedEof
            ) =>
        {
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// True when the process at the other end of `client` runs as this process's user.
///
/// Linux: the client's socket is the `/proc/net/tcp` row whose local address is our peer
/// and whose remote address is our end; its `uid` column is its owner. Fails closed: a row
/// that cannot be found or read counts as another user. Elsewhere there is no such table,
/// and any local process is let in (as with an SSH tunnel's local forward).
fn same_user(client: &TcpStream) -> bool {
    if !cfg!(target_os = "linux") {
        return true;
    }
    let (Ok(peer), Ok(local)) = (client.peer_addr(), client.local_addr()) else {
        return false;
    };
    let Ok(own) = std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m))
    else {
        return false;
    };
    let Ok(table) = std::fs::read_to_string("/proc/net/tcp") else {
        return false;
    };
    table
        .lines()
        .skip(1)
        .find_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (l, r, uid) = (f.get(1)?, f.get(2)?, f.get(7)?);
            (proc_addr(l)? == peer && proc_addr(r)? == local).then(|| uid.parse::<u32>().ok())?
        })
        .is_some_and(|uid| uid == own)
}

/// Parses `0100007F:1F90` (an IPv4 address as the kernel's in-memory u32, a hex port).
fn proc_addr(s: &str) -> Option<SocketAddr> {
    let (ip, port) = s.split_once(':')?;
    let ip = u32::from_str_radix(ip, 16).ok()?;
    let port = u16::from_str_radix(port, 16).ok()?;
    Some(SocketAddr::from((ip.to_ne_bytes(), port)))
}

/// The OS user name, for the informational `user` parameter.
pub fn os_user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "warden".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_net_tcp_addresses_parse() {
        // 127.0.0.1:8080 as Linux prints it on a little-endian machine.
        if cfg!(target_endian = "little") {
            assert_eq!(
                proc_addr("0100007F:1F90"),
                Some("127.0.0.1:8080".parse().unwrap())
            );
        }
        assert_eq!(proc_addr("zz:1F90"), None);
        assert_eq!(proc_addr("0100007F"), None);
    }
}
