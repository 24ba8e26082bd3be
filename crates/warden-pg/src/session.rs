//! The listener and a session's startup phase: TLS negotiation, the token in the password
//! field, identity, policy, and the target login. Then [`crate::proxy`] takes over.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout_at;
use tokio_util::codec::Decoder;
use warden_config::RequireTls;
use warden_identity::AuthError;
use warden_store::{AuthEvent, AuthResult};
use warden_types::{Identity, SessionId};
use warden_wire::{
    Authentication, BackendKeyData, CancelRequest, Message, NegotiateProtocolVersion,
    PasswordMessage, StartupCodec, StartupFrame, StartupMessage, MAX_AUTH_MESSAGE_LEN,
    PROTOCOL_3_0,
};

use warden_credentials::{JitLease, SessionInfo};
use warden_policy::access::AccessDenied;
use warden_recording::event::{EventBody, SessionStart};
use warden_recording::writer::SessionWriter;
use warden_store::SessionRow;

use crate::backend::{self, BackendLogin};
use crate::cancel::CancelTarget;
use crate::error::{Ended, SessionError};
use crate::io::read_frame;
use crate::proxy::{self, SessionCtx};
use crate::record::Recorder;
use crate::runtime::Runtime;
use crate::stream::ClientStream;

/// Startup parameters Warden sets itself or refuses to forward to the target.
const RESERVED_PARAMS: &[&str] = &["user", "database", "replication"];

/// Accepts clients forever, one task per connection: on `threads` (see
/// [`SessionThreads`]), or on the caller's runtime when there are none.
pub async fn serve(listener: TcpListener, rt: Arc<Runtime>, threads: SessionThreads) {
    loop {
        match listener.accept().await {
            Ok((tcp, peer)) => threads.spawn(tcp, peer, rt.clone()),
            Err(e) => {
                // Usually EMFILE: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

/// Threads that each run sessions on a single-threaded runtime of their own, a session
/// staying on the thread that accepted it, its sockets polled by that thread.
///
/// On the shared work-stealing runtime, a session's wake-ups move between worker threads
/// and the workers wake each other: on two cores shared with PostgreSQL and the clients,
/// `pgbench -S` ran 4-13 % slower that way at the same CPU per transaction
/// (`bench/pgbench.sh`, README). Proxies keep a connection on one event loop for the same
/// reason (Envoy's workers, pgbouncer's one thread).
#[derive(Default)]
pub struct SessionThreads {
    threads: Vec<SessionThread>,
}

struct SessionThread {
    handle: tokio::runtime::Handle,
    /// Sessions running on it, to place the next one on the least busy thread.
    live: Arc<std::sync::atomic::AtomicUsize>,
}

impl SessionThreads {
    /// Starts `n` threads (none for 0), before the listener is announced. They run until
    /// the process exits. When the system refuses a thread, the ones already started are
    /// kept; an error only when none was.
    pub fn start(n: usize) -> std::io::Result<SessionThreads> {
        let mut threads = Vec::with_capacity(n);
        for i in 0..n {
            match Self::start_one(i) {
                Ok(t) => threads.push(t),
                Err(e) if threads.is_empty() => return Err(e),
                Err(e) => {
                    tracing::warn!(error = %e, started = i, wanted = n, "fewer session threads than configured");
                    break;
                }
            }
        }
        Ok(SessionThreads { threads })
    }

    fn start_one(i: usize) -> std::io::Result<SessionThread> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        std::thread::Builder::new()
            .name(format!("warden-pg-{i}"))
            .spawn(move || runtime.block_on(std::future::pending::<()>()))?;
        Ok(SessionThread {
            handle,
            live: Arc::default(),
        })
    }

    /// Runs the session of an accepted connection.
    fn spawn(&self, tcp: TcpStream, peer: SocketAddr, rt: Arc<Runtime>) {
        use std::sync::atomic::Ordering;
        let Some(thread) = self
            .threads
            .iter()
            .min_by_key(|t| t.live.load(Ordering::Relaxed))
        else {
            tokio::spawn(async move { handle(tcp, peer, rt).await });
            return;
        };
        // The socket moves to the session thread's own reactor.
        let tcp = match tcp.into_std() {
            Ok(tcp) => tcp,
            Err(e) => {
                tracing::warn!(%peer, error = %e, "could not hand a connection to a session thread");
                return;
            }
        };
        let live = thread.live.clone();
        live.fetch_add(1, Ordering::Relaxed);
        thread.handle.spawn(async move {
            let _done = Decrement(live);
            match TcpStream::from_std(tcp) {
                Ok(tcp) => handle(tcp, peer, rt).await,
                Err(e) => tracing::warn!(%peer, error = %e, "could not register a connection"),
            }
        });
    }
}

/// Counts a session out of its thread when it ends, however it ends.
struct Decrement(Arc<std::sync::atomic::AtomicUsize>);

impl Drop for Decrement {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Runs one client connection to completion. Never panics on client input.
pub async fn handle(tcp: TcpStream, peer: SocketAddr, rt: Arc<Runtime>) {
    tcp.set_nodelay(true).ok();
    let Ok(_permit) = rt.conn_limit.clone().try_acquire_owned() else {
        let mut tcp = tcp;
        if let Some(msg) = SessionError::TooManyConnections.to_error_response() {
            let _ = tcp.write_all(&msg).await;
        }
        return;
    };
    metrics::gauge!("warden_pg_client_connections").increment(1.0);
    let started = Instant::now();
    let mut client: Option<ClientStream> = None;
    let result = run(tcp, peer, &rt, &mut client, started).await;
    metrics::gauge!("warden_pg_client_connections").decrement(1.0);
    if let Err(e) = result {
        if let (Some(stream), Some(msg)) = (client.as_mut(), e.to_error_response()) {
            let _ = stream.write_all(&msg).await;
            let _ = stream.shutdown().await;
        }
        match &e {
            SessionError::ClientGone(_) => tracing::debug!(%peer, error = %e, "client left"),
            _ => tracing::info!(%peer, error = %e, "session ended with an error"),
        }
        metrics::counter!("warden_pg_session_errors_total", "kind" => e.label()).increment(1);
    }
}

/// Everything up to the proxy loop. `slot` holds the client stream so the caller can send
/// the final error whatever step failed.
async fn run(
    tcp: TcpStream,
    peer: SocketAddr,
    rt: &Arc<Runtime>,
    slot: &mut Option<ClientStream>,
    started: Instant,
) -> Result<(), SessionError> {
    let deadline = tokio::time::Instant::now() + rt.handshake_timeout;
    let mut buf = BytesMut::with_capacity(1024);

    // PostgreSQL 17's direct TLS starts with a TLS ClientHello (0x16) instead of SSLRequest.
    let mut first = [0u8; 1];
    let peeked = timeout_at(deadline, tcp.peek(&mut first))
        .await
        .map_err(|_| SessionError::HandshakeTimeout)?
        .map_err(|e| SessionError::ClientGone(e.to_string()))?;
    if peeked == 0 {
        return Err(SessionError::ClientGone("closed before startup".into()));
    }
    *slot = Some(if first[0] == 0x16 {
        tls_accept(ClientStream::Plain(tcp), rt, deadline).await?
    } else {
        ClientStream::Plain(tcp)
    });

    let startup = loop {
        let stream = slot
            .as_mut()
            .ok_or(SessionError::ClientGone("no stream".into()))?;
        let frame = read_startup(stream, &mut buf, deadline).await?;
        match frame {
            StartupFrame::SslRequest => {
                if stream.is_tls() {
                    return Err(proto("SSLRequest inside TLS"));
                }
                if !buf.is_empty() {
                    // Bytes sent before the TLS handshake would be read as if they were
                    // encrypted (CVE-2021-23214): refuse them.
                    return Err(proto("unencrypted data after SSLRequest"));
                }
                write_client(stream, b"S").await?;
                let plain = slot
                    .take()
                    .ok_or(SessionError::ClientGone("no stream".into()))?;
                *slot = Some(tls_accept(plain, rt, deadline).await?);
            }
            StartupFrame::GssEncRequest => {
                if stream.is_tls() {
                    return Err(proto("GSSENCRequest inside TLS"));
                }
                write_client(stream, b"N").await?;
            }
            StartupFrame::Cancel(req) => {
                forward_cancel(rt, &req).await;
                return Ok(());
            }
            StartupFrame::Startup(s) => break s,
        }
    };
    let stream = slot
        .as_mut()
        .ok_or(SessionError::ClientGone("no stream".into()))?;

    if !stream.is_tls() && tls_required(rt.require_tls, peer) {
        return Err(SessionError::TlsRequired);
    }
    negotiate_version(stream, &startup).await?;
    if startup
        .get("replication")
        .is_some_and(|v| v != "false" && v != "0" && v != "off")
    {
        return Err(SessionError::Unsupported("replication"));
    }
    refuse_unsafe_settings(&startup)?;
    let connection = match startup.database().or(startup.user()) {
        Some(db) if !db.is_empty() => db.to_owned(),
        _ => return Err(SessionError::NoConnectionNamed),
    };

    // Ask for the token as a cleartext password (the channel is TLS outside loopback).
    write_client(stream, &Authentication::CleartextPassword.encode()).await?;
    let frame = timeout_at(deadline, read_frame(stream, &mut buf, MAX_AUTH_MESSAGE_LEN))
        .await
        .map_err(|_| SessionError::HandshakeTimeout)?
        .map_err(SessionError::client_read)?;
    let password = PasswordMessage::from_frame(&frame).map_err(SessionError::ClientProtocol)?;

    let mut audit = AuthEvent {
        at: 0,
        subject: None,
        issuer: None,
        credential_kind: None,
        connection: Some(connection.clone()),
        client_addr: peer.to_string(),
        result: AuthResult::Denied,
        reason: String::new(),
        session_id: None,
    };
    // Bounded by the handshake deadline: a slow IdP must not hold the client forever.
    let checked = timeout_at(deadline, rt.auth.authenticate(password.password.expose()))
        .await
        .unwrap_or_else(|_| {
            Err(AuthError::IdpUnavailable(
                "timed out verifying the credential".into(),
            ))
        });
    let identity = match checked {
        Ok(id) => id,
        Err(e) => {
            audit.reason = format!("authentication: {}", e.label());
            record(rt, &audit).await;
            return Err(SessionError::Auth(e));
        }
    };
    drop(password);
    audit.subject = Some(identity.subject.to_string());
    audit.issuer = Some(identity.issuer.clone());
    audit.credential_kind = Some(identity.kind.as_str().to_owned());

    let outcome = open_session(
        stream,
        &mut buf,
        &startup,
        &connection,
        &identity,
        rt,
        started,
        peer,
    )
    .await;
    match outcome {
        Err(e) => {
            audit.reason = match &e {
                SessionError::Denied(d) => format!("policy: {d}"),
                other => format!("{}: {other}", other.label()),
            };
            record(rt, &audit).await;
            Err(e)
        }
        Ok(ready) => {
            audit.result = AuthResult::Allowed;
            audit.reason = format!("role {}", ready.ctx.role);
            audit.session_id = Some(ready.ctx.session_id.to_string());
            record(rt, &audit).await;
            tracing::info!(
                session = %ready.ctx.session_id, subject = %identity.subject,
                connection = %connection, role = %ready.ctx.role, %peer,
                setup_ms = started.elapsed().as_secs_f64() * 1e3,
                "session started"
            );
            let client = slot
                .take()
                .ok_or(SessionError::ClientGone("no stream".into()))?;
            let ctx = ready.ctx;
            let id = ctx.session_id.clone();
            let res = proxy::run(client, buf, ready.backend, ready.backend_buf, &ctx).await;
            drop(ready.registered);
            drop(ready.cancel_guard);
            finish_recording(rt, &ctx, &res).await;
            // Ends the session role: backends terminated, role dropped, in the background.
            drop(ready.lease);
            tracing::info!(session = %id, outcome = ?res.as_ref().err().map(|e| e.label()), "session ended");
            match res {
                Ok(()) | Err(SessionError::ClientGone(_)) | Err(SessionError::Ended(_)) => Ok(()),
                Err(e) => Err(e),
            }
        }
    }
}

struct Ready {
    ctx: SessionCtx,
    backend: tokio::net::TcpStream,
    backend_buf: BytesMut,
    cancel_guard: crate::cancel::CancelGuard,
    /// The session role, dropped (and so torn down) when the session ends.
    lease: Option<JitLease>,
    /// Membership of the live-session registry, for as long as the session lives.
    registered: crate::registry::Registered,
}

/// Policy, credentials, target login, and the client's AuthenticationOk.
#[allow(clippy::too_many_arguments)]
async fn open_session(
    stream: &mut ClientStream,
    _buf: &mut BytesMut,
    startup: &StartupMessage,
    connection: &str,
    identity: &Identity,
    rt: &Arc<Runtime>,
    started: Instant,
    peer: SocketAddr,
) -> Result<Ready, SessionError> {
    // Outside the connection's groups, an approved access request may still let the
    // identity in, until it runs out. A store that cannot answer denies (fail closed).
    let (grant, access_until) = match rt.policy.decide(identity, connection) {
        Ok(g) => (g, None),
        Err(denied @ AccessDenied::MissingGroup { .. }) => {
            match rt.hub.access_grant(&identity.subject.0, connection).await {
                Ok(Some(until)) => match rt.policy.decide_granted(identity, connection) {
                    Ok(g) => (g, Some(until)),
                    Err(e) => return Err(SessionError::Denied(e)),
                },
                Ok(None) => return Err(SessionError::Denied(denied)),
                Err(e) => {
                    tracing::error!(error = %e, "could not look up access grants");
                    return Err(SessionError::Denied(denied));
                }
            }
        }
        Err(e) => return Err(SessionError::Denied(e)),
    };
    let target = rt
        .targets
        .get(connection)
        .ok_or_else(|| SessionError::Credential("connection has no target".into()))?;
    let session_id = SessionId(uuid::Uuid::new_v4().to_string());
    // Masking needs the target's catalog: a session that cannot be masked does not start.
    let mask = match rt.masking.get(connection) {
        Some(m) => m
            .for_session(identity)
            .await
            .map_err(SessionError::Masking)?,
        None => None,
    };

    // Just-in-time: a fresh role for this session; its lease drops it when the session
    // ends, whichever way (including an error right here).
    let mut lease = None;
    let (user, password) = match &target.jit {
        Some(jit) => {
            let grant_roles: Vec<String> = grant
                .rule
                .and_then(|i| target.jit_rule_roles.get(i).cloned())
                .into_iter()
                .collect();
            let info = SessionInfo {
                session_id: &session_id.0,
                subject: &identity.subject.0,
                max_session: target.max_session,
            };
            let l = jit
                .create(&info, &grant_roles)
                .await
                .map_err(SessionError::Jit)?;
            let user = l.role.clone();
            lease = Some(l);
            (user, None)
        }
        None => {
            let cred = target.credential(grant.rule).ok_or_else(|| {
                SessionError::Credential(format!("no credential for role {}", grant.role))
            })?;
            (cred.user.clone(), cred.password.as_ref())
        }
    };

    let mut params: Vec<(String, String)> = startup
        .params
        .iter()
        .filter(|(k, _)| {
            !RESERVED_PARAMS.contains(&k.as_str())
                && !k.starts_with("_pq_.")
                && k != "application_name"
        })
        .cloned()
        .collect();
    params.push((
        "application_name".into(),
        application_name(
            &session_id,
            &identity.subject.0,
            startup.get("application_name"),
        ),
    ));
    let scram_key = lease.as_mut().and_then(|l| l.key.take());
    let backend = backend::connect(
        BackendLogin {
            host: &target.host,
            port: target.port,
            database: &target.database,
            user: &user,
            password,
            scram_key: scram_key.as_ref(),
            params,
            max_message: rt.max_message,
        },
        rt.connect_timeout,
    )
    .await;
    // The key is needed for this one login only: zeroed now.
    drop(scram_key);
    let backend = backend?;

    // The earliest of: the JIT role's hard end, max_session, the token's expiry + grace.
    let deadline = {
        let now = std::time::SystemTime::now();
        let candidates = [
            lease.as_ref().map(|l| (l.hard_end, Ended::MaxLength)),
            target.max_session.map(|m| (now + m, Ended::MaxLength)),
            identity
                .expires_at
                .map(|e| (e + rt.token_grace, Ended::TokenExpired)),
            access_until.map(|ms| {
                (
                    std::time::UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64),
                    Ended::GrantExpired,
                )
            }),
        ];
        candidates
            .into_iter()
            .flatten()
            .min_by_key(|(t, _)| *t)
            .map(|(end, why)| {
                (
                    tokio::time::Instant::now() + end.duration_since(now).unwrap_or_default(),
                    why,
                )
            })
    };
    let hold = Arc::new(crate::hold::HoldSignal::default());
    let cancel_guard = match &backend.key {
        Some(k) => rt.cancels.register(CancelTarget {
            host: target.host.clone(),
            port: target.port,
            process_id: k.process_id,
            secret_key: k.secret_key.clone(),
            hold: hold.clone(),
        }),
        None => rt.cancels.register(CancelTarget {
            host: target.host.clone(),
            port: target.port,
            process_id: 0,
            secret_key: Vec::new(),
            hold: hold.clone(),
        }),
    };

    let role = lease
        .as_ref()
        .map_or(grant.role.clone(), |l| l.role.clone());
    let (stop, registered) = rt
        .sessions
        .register(&session_id.0, identity.token_id.clone());
    // Fail closed: a session that cannot be recorded or indexed does not start.
    let recorder = match &rt.recordings {
        Some(dir) => {
            let mut w = SessionWriter::create(dir, &session_id.0)
                .map_err(|e| SessionError::Recording(e.to_string()))?;
            w.push(
                crate::record::now_us(),
                EventBody::SessionStart(SessionStart {
                    session_id: session_id.0.clone(),
                    connection: connection.to_owned(),
                    subject: identity.subject.0.clone(),
                    display_name: identity.display_name.clone(),
                    issuer: identity.issuer.clone(),
                    credential_kind: identity.kind.as_str().to_owned(),
                    actor: identity.actor.clone(),
                    groups: identity.groups.clone(),
                    client_addr: peer.to_string(),
                    target_role: role.clone(),
                    jit: lease.is_some(),
                    application_name: startup.get("application_name").map(str::to_owned),
                }),
            );
            w.flush()
                .map_err(|e| SessionError::Recording(e.to_string()))?;
            Some(std::sync::Mutex::new(Recorder::new(w, rt.record_limits)))
        }
        None => None,
    };
    rt.store
        .insert_session(&SessionRow {
            id: session_id.0.clone(),
            connection: connection.to_owned(),
            subject: identity.subject.0.clone(),
            actor: identity.actor.clone(),
            credential_kind: identity.kind.as_str().to_owned(),
            token_id: identity.token_id.clone(),
            client_addr: peer.to_string(),
            target_role: role.clone(),
            started_at: warden_store::now_ms(),
            ended_at: None,
            status: "live".into(),
            end_reason: None,
            statements: 0,
            final_hash: None,
        })
        .await
        .map_err(|e| SessionError::Recording(format!("session index: {e}")))?;

    let mut hello = BytesMut::with_capacity(512);
    hello.put_slice(&Authentication::Ok.encode());
    for ps in &backend.parameter_status {
        hello.put_slice(ps);
    }
    hello.put_slice(
        &BackendKeyData::new(
            cancel_guard.key.process_id,
            cancel_guard.key.secret_key.to_vec(),
        )
        .encode(),
    );
    hello.put_slice(&backend.ready.encode());
    write_client(stream, &hello).await?;
    let mode = if lease.is_some() { "jit" } else { "static" };
    metrics::histogram!("warden_pg_session_setup_seconds", "credentials" => mode)
        .record(started.elapsed().as_secs_f64());

    Ok(Ready {
        ctx: SessionCtx {
            session_id,
            connection: connection.to_owned(),
            role,
            subject: identity.subject.to_string(),
            deadline,
            idle_timeout: rt.idle_timeouts.get(connection).copied(),
            recorder,
            stop,
            activity: Default::default(),
            rules: rt.rules.get(connection).cloned(),
            identity: identity.clone(),
            analyzer: rt.analyzer.clone(),
            max_message: rt.max_message,
            counters: proxy::StatementCounters::new(),
            reviews: rt.reviews.get(connection).cloned(),
            hold,
            mask,
            catalog: rt.masking.get(connection).map(|m| m.handle.clone()),
            ddl_pending: Default::default(),
            guard: rt
                .guardrails
                .get(connection)
                .and_then(|g| g.for_identity(identity)),
        },
        backend: backend.stream,
        backend_buf: backend.leftover,
        cancel_guard,
        lease,
        registered,
    })
}

/// `application_name` on the target: Warden's session id (first 12 hex digits, as in a
/// session role's name) and the identity, then the client's own name, within PostgreSQL's
/// 63 bytes, so `pg_stat_activity` shows whom each backend serves. Only printable ASCII
/// (what PostgreSQL keeps anyway): a subject from a token must not smuggle a NUL into the
/// startup packet, where it would start another parameter.
fn application_name(session: &SessionId, subject: &str, client: Option<&str>) -> String {
    let sid: String = session
        .0
        .chars()
        .filter(char::is_ascii_hexdigit)
        .take(12)
        .collect();
    let mut name = format!("warden:{sid}:{subject}");
    if let Some(c) = client.filter(|c| !c.is_empty()) {
        name.push(':');
        name.push_str(c);
    }
    name.chars()
        .map(|c| if (' '..='~').contains(&c) { c } else { '?' })
        .take(63)
        .collect()
}

/// Writes the recording's last event and marks the session complete in the index, with
/// its final hash chained.
async fn finish_recording(rt: &Runtime, ctx: &SessionCtx, res: &Result<(), SessionError>) {
    let (reason, error) = match res {
        Ok(()) => ("client_quit".to_owned(), None),
        Err(SessionError::ClientGone(_)) => ("client_gone".to_owned(), None),
        Err(SessionError::Ended(why)) => (why.label().to_owned(), Some(why.to_string())),
        Err(e) => ("error".to_owned(), Some(e.to_string())),
    };
    let (finishing, statements) = match &ctx.recorder {
        Some(r) => {
            let mut r = r.lock().unwrap_or_else(|p| p.into_inner());
            if let Err(SessionError::Ended(why)) = res {
                r.notice(why.label(), &why.to_string());
            }
            let n = r.statements();
            (r.finishing(&reason, error), n)
        }
        None => (None, 0),
    };
    // The fsync waits on the disk: not on the session thread, where other sessions run.
    let hash = match finishing {
        Some(f) => tokio::task::spawn_blocking(move || f.run())
            .await
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, "finishing the session recording failed");
                None
            }),
        None => None,
    };
    if let Err(e) = rt
        .store
        .end_session(
            &ctx.session_id.0,
            &reason,
            statements as i64,
            hash.as_deref(),
        )
        .await
    {
        tracing::error!(session = %ctx.session_id, error = %e, "could not mark the session ended");
    }
}

async fn record(rt: &Runtime, ev: &AuthEvent) {
    if let Err(e) = rt.store.record_auth(ev).await {
        tracing::error!(error = %e, "could not write the authentication audit");
    }
}

/// Statement analysis assumes `standard_conforming_strings = on` (the default since
/// PostgreSQL 9.1); a session that turns it off at startup could make the target read a
/// string literal differently from the analyser, so it is refused.
fn refuse_unsafe_settings(startup: &StartupMessage) -> Result<(), SessionError> {
    let scs_off = startup
        .get("standard_conforming_strings")
        .is_some_and(|v| !v.eq_ignore_ascii_case("on"));
    let in_options = startup.get("options").is_some_and(|o| {
        o.to_ascii_lowercase()
            .contains("standard_conforming_strings")
    });
    if scs_off || in_options {
        return Err(SessionError::Unsupported(
            "changing standard_conforming_strings at startup",
        ));
    }
    Ok(())
}

fn proto(what: &'static str) -> SessionError {
    SessionError::ClientProtocol(warden_wire::WireError::Malformed { what })
}

fn tls_required(mode: RequireTls, peer: SocketAddr) -> bool {
    match mode {
        RequireTls::Always => true,
        RequireTls::Never => false,
        RequireTls::NonLoopback => !peer.ip().is_loopback(),
    }
}

async fn write_client(stream: &mut ClientStream, bytes: &[u8]) -> Result<(), SessionError> {
    stream
        .write_all(bytes)
        .await
        .map_err(|e| SessionError::ClientGone(e.to_string()))?;
    stream
        .flush()
        .await
        .map_err(|e| SessionError::ClientGone(e.to_string()))
}

async fn tls_accept(
    stream: ClientStream,
    rt: &Runtime,
    deadline: tokio::time::Instant,
) -> Result<ClientStream, SessionError> {
    let ClientStream::Plain(tcp) = stream else {
        return Err(proto("TLS requested twice"));
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(rt.tls.clone());
    let tls = timeout_at(deadline, acceptor.accept(tcp))
        .await
        .map_err(|_| SessionError::HandshakeTimeout)?
        .map_err(|e| SessionError::Tls(e.to_string()))?;
    Ok(ClientStream::Tls(Box::new(tls)))
}

async fn read_startup(
    stream: &mut ClientStream,
    buf: &mut BytesMut,
    deadline: tokio::time::Instant,
) -> Result<StartupFrame, SessionError> {
    let mut codec = StartupCodec::new();
    loop {
        if let Some(frame) = codec.decode(buf).map_err(SessionError::ClientProtocol)? {
            return Ok(frame);
        }
        buf.reserve(1024);
        let n = timeout_at(deadline, stream.read_buf(buf))
            .await
            .map_err(|_| SessionError::HandshakeTimeout)?
            .map_err(|e| SessionError::ClientGone(e.to_string()))?;
        if n == 0 {
            return Err(SessionError::ClientGone("closed during startup".into()));
        }
    }
}

/// Protocol 3.2 clients and `_pq_.` options get a NegotiateProtocolVersion for 3.0, which is
/// what the target connection speaks.
async fn negotiate_version(
    stream: &mut ClientStream,
    startup: &StartupMessage,
) -> Result<(), SessionError> {
    if startup.protocol >> 16 != 3 {
        return Err(SessionError::Unsupported("a protocol version other than 3"));
    }
    let unsupported: Vec<String> = startup
        .params
        .iter()
        .filter(|(k, _)| k.starts_with("_pq_."))
        .map(|(k, _)| k.clone())
        .collect();
    if startup.protocol != PROTOCOL_3_0 || !unsupported.is_empty() {
        let msg = NegotiateProtocolVersion::new(0, unsupported);
        write_client(stream, &msg.encode()).await?;
    }
    Ok(())
}

async fn forward_cancel(rt: &Runtime, req: &CancelRequest) {
    match rt.cancels.lookup(req.process_id, &req.secret_key) {
        // A held statement is not running on the target: the cancel withdraws its review.
        Some(t) if t.hold.cancel() => {
            metrics::counter!("warden_pg_cancels_total", "result" => "review_withdrawn")
                .increment(1);
        }
        Some(t) if t.process_id != 0 => {
            if let Err(e) = backend::cancel(&t.host, t.port, t.process_id, &t.secret_key).await {
                tracing::warn!(error = %e, "could not forward a cancel request");
            }
            metrics::counter!("warden_pg_cancels_total", "result" => "forwarded").increment(1);
        }
        _ => {
            // Like PostgreSQL: say nothing, so keys cannot be probed.
            metrics::counter!("warden_pg_cancels_total", "result" => "unknown_key").increment(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_is_required_off_loopback_by_default() {
        let lo: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let lo6: SocketAddr = "[::1]:5000".parse().unwrap();
        let remote: SocketAddr = "192.0.2.10:5000".parse().unwrap();
        assert!(!tls_required(RequireTls::NonLoopback, lo));
        assert!(!tls_required(RequireTls::NonLoopback, lo6));
        assert!(tls_required(RequireTls::NonLoopback, remote));
        assert!(tls_required(RequireTls::Always, lo));
        assert!(!tls_required(RequireTls::Never, remote));
    }

    #[test]
    fn standard_conforming_strings_cannot_be_turned_off() {
        let msg = |k: &str, v: &str| StartupMessage::new(vec![(k.into(), v.into())]);
        assert!(refuse_unsafe_settings(&msg("standard_conforming_strings", "off")).is_err());
        assert!(
            refuse_unsafe_settings(&msg("options", "-c Standard_Conforming_Strings=off")).is_err()
        );
        assert!(refuse_unsafe_settings(&msg("standard_conforming_strings", "on")).is_ok());
        assert!(refuse_unsafe_settings(&msg("application_name", "psql")).is_ok());
    }

    #[test]
    fn application_name_names_session_and_identity_within_63_bytes() {
        let sid = SessionId("9f3a2c1b-7d4e-4000-8000-000000000000".into());
        assert_eq!(
            application_name(&sid, "alice", Some("psql")),
            "warden:9f3a2c1b7d4e:alice:psql"
        );
        assert_eq!(
            application_name(&sid, "bob", None),
            "warden:9f3a2c1b7d4e:bob"
        );
        let long = application_name(&sid, &"é".repeat(80), Some("x"));
        assert_eq!(long.len(), 63);
        assert!(long.starts_with("warden:9f3a2c1b7d4e:??"), "{long}");
        let hostile = application_name(&sid, "x\0options\0-c role=postgres", None);
        assert_eq!(hostile, "warden:9f3a2c1b7d4e:x?options?-c role=postgres");
    }
}
