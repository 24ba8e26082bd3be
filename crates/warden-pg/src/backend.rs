//! Connecting to the target: TCP, startup, and Warden's own authentication as the mapped
//! target role (trust, cleartext, MD5, SCRAM-SHA-256). The client never sees this exchange.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256, SCRAM_SHA_256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use warden_credentials::scram::{ScramClient, MECHANISM as KEY_MECHANISM};
use warden_credentials::ScramKey;
use warden_types::Secret;
use warden_wire::{
    Authentication, BackendKeyData, ErrorResponse, Frame, Message, ParameterStatus,
    PasswordMessage, ReadyForQuery, SaslInitialResponse, SaslResponse, StartupMessage,
};

use crate::error::SessionError;
use crate::io::read_frame;

/// Where and as whom to log in.
pub struct BackendLogin<'a> {
    /// Target host.
    pub host: &'a str,
    /// Target port.
    pub port: u16,
    /// Target database.
    pub database: &'a str,
    /// Target role.
    pub user: &'a str,
    /// The role's password, if the target asks for one.
    pub password: Option<&'a Secret>,
    /// A session role's SCRAM key (just-in-time credentials); used instead of `password`.
    pub scram_key: Option<&'a ScramKey>,
    /// Extra startup parameters passed through from the client (application_name, …).
    pub params: Vec<(String, String)>,
    /// Largest message accepted from the target.
    pub max_message: usize,
}

/// A logged-in target connection, ready for queries.
pub struct Backend {
    /// The socket.
    pub stream: TcpStream,
    /// Bytes read past ReadyForQuery (normally none).
    pub leftover: BytesMut,
    /// ParameterStatus messages as received, to replay to the client.
    pub parameter_status: Vec<Bytes>,
    /// The backend's cancel key.
    pub key: Option<BackendKeyData>,
    /// Transaction status at ReadyForQuery.
    pub ready: ReadyForQuery,
}

/// Connects and authenticates within `timeout`.
pub async fn connect(login: BackendLogin<'_>, timeout: Duration) -> Result<Backend, SessionError> {
    tokio::time::timeout(timeout, connect_inner(login))
        .await
        .map_err(|_| SessionError::TargetUnavailable("timed out connecting to the target".into()))?
}

async fn connect_inner(login: BackendLogin<'_>) -> Result<Backend, SessionError> {
    let mut stream = TcpStream::connect((login.host, login.port))
        .await
        .map_err(|e| {
            SessionError::TargetUnavailable(format!("cannot connect to the target: {e}"))
        })?;
    stream.set_nodelay(true).ok();

    let mut params = vec![
        ("user".to_owned(), login.user.to_owned()),
        ("database".to_owned(), login.database.to_owned()),
    ];
    params.extend(login.params);
    stream
        .write_all(&StartupMessage::new(params).encode())
        .await
        .map_err(SessionError::target_io)?;

    let mut buf = BytesMut::with_capacity(8192);
    let mut scram: Option<ScramSha256> = None;
    let mut keyed: Option<ScramClient<'_>> = None;
    loop {
        let frame = read_frame(&mut stream, &mut buf, login.max_message)
            .await
            .map_err(SessionError::target_wire)?;
        match frame.tag() {
            b'R' => {
                let auth = Authentication::from_frame(&frame).map_err(SessionError::target_msg)?;
                match auth {
                    Authentication::Ok => break,
                    Authentication::CleartextPassword | Authentication::Md5Password { .. }
                        if login.scram_key.is_some() =>
                    {
                        return Err(SessionError::TargetAuth(
                            "the target asks a session role for a cleartext or MD5 password; \
                             just-in-time roles log in only with SCRAM-SHA-256: set the \
                             target's pg_hba.conf method to scram-sha-256"
                                .into(),
                        ));
                    }
                    Authentication::Sasl { mechanisms } if login.scram_key.is_some() => {
                        if !mechanisms.iter().any(|m| m == KEY_MECHANISM) {
                            return Err(SessionError::TargetAuth(format!(
                                "the target offers no SCRAM-SHA-256 ({})",
                                mechanisms.join(", ")
                            )));
                        }
                        let key = login
                            .scram_key
                            .ok_or_else(|| SessionError::TargetProtocol("no key".into()))?;
                        let (client, first) = key.start();
                        send(
                            &mut stream,
                            SaslInitialResponse::new(KEY_MECHANISM, &first).encode(),
                        )
                        .await?;
                        keyed = Some(client);
                    }
                    Authentication::SaslContinue(data) if keyed.is_some() => {
                        let c = keyed.as_mut().ok_or_else(|| {
                            SessionError::TargetProtocol("SASL continue without SASL start".into())
                        })?;
                        let msg = c
                            .server_first(&data)
                            .map_err(|e| SessionError::TargetAuth(e.to_string()))?;
                        send(&mut stream, SaslResponse::new(&msg).encode()).await?;
                    }
                    Authentication::SaslFinal(data) if keyed.is_some() => {
                        let c = keyed.take().ok_or_else(|| {
                            SessionError::TargetProtocol("SASL final without SASL start".into())
                        })?;
                        c.server_final(&data)
                            .map_err(|e| SessionError::TargetAuth(e.to_string()))?;
                    }
                    Authentication::CleartextPassword => {
                        let pw = need_password(login.password)?;
                        send(&mut stream, PasswordMessage::new(pw.expose()).encode()).await?;
                    }
                    Authentication::Md5Password { salt } => {
                        let pw = need_password(login.password)?;
                        let hashed = postgres_protocol::authentication::md5_hash(
                            login.user.as_bytes(),
                            pw.expose().as_bytes(),
                            salt,
                        );
                        send(&mut stream, PasswordMessage::new(&hashed).encode()).await?;
                    }
                    Authentication::Sasl { mechanisms } => {
                        if !mechanisms.iter().any(|m| m == SCRAM_SHA_256) {
                            return Err(SessionError::TargetAuth(format!(
                                "the target offers no supported SASL mechanism ({})",
                                mechanisms.join(", ")
                            )));
                        }
                        let pw = need_password(login.password)?;
                        let s =
                            ScramSha256::new(pw.expose().as_bytes(), ChannelBinding::unsupported());
                        let first = SaslInitialResponse::new(SCRAM_SHA_256, s.message());
                        send(&mut stream, first.encode()).await?;
                        scram = Some(s);
                    }
                    Authentication::SaslContinue(data) => {
                        let s = scram.as_mut().ok_or_else(|| {
                            SessionError::TargetProtocol("SASL continue without SASL start".into())
                        })?;
                        s.update(&data).map_err(|e| {
                            SessionError::TargetAuth(format!("SCRAM exchange failed: {e}"))
                        })?;
                        send(&mut stream, SaslResponse::new(s.message()).encode()).await?;
                    }
                    Authentication::SaslFinal(data) => {
                        let mut s = scram.take().ok_or_else(|| {
                            SessionError::TargetProtocol("SASL final without SASL start".into())
                        })?;
                        s.finish(&data).map_err(|_| {
                            SessionError::TargetAuth(
                                "the target's SCRAM signature did not verify".into(),
                            )
                        })?;
                    }
                }
            }
            b'E' => return Err(target_error(&frame)),
            b'v' => {
                // NegotiateProtocolVersion: we asked for 3.0 with no _pq_ options; continue.
            }
            other => {
                return Err(SessionError::TargetProtocol(format!(
                    "unexpected message {:?} during authentication",
                    other as char
                )))
            }
        }
    }

    let mut parameter_status = Vec::new();
    let mut key = None;
    loop {
        let frame = read_frame(&mut stream, &mut buf, login.max_message)
            .await
            .map_err(SessionError::target_wire)?;
        match frame.tag() {
            b'S' => {
                ParameterStatus::from_frame(&frame).map_err(SessionError::target_msg)?;
                parameter_status.push(frame.into_raw());
            }
            b'K' => {
                key = Some(BackendKeyData::from_frame(&frame).map_err(SessionError::target_msg)?)
            }
            b'Z' => {
                let ready = ReadyForQuery::from_frame(&frame).map_err(SessionError::target_msg)?;
                return Ok(Backend {
                    stream,
                    leftover: buf,
                    parameter_status,
                    key,
                    ready,
                });
            }
            b'E' => return Err(target_error(&frame)),
            b'N' => {}
            other => {
                return Err(SessionError::TargetProtocol(format!(
                    "unexpected message {:?} after authentication",
                    other as char
                )))
            }
        }
    }
}

fn need_password(pw: Option<&Secret>) -> Result<&Secret, SessionError> {
    pw.ok_or_else(|| {
        SessionError::TargetAuth(
            "the target asks for a password but the connection has none configured \
             (set password_env or password_file)"
                .into(),
        )
    })
}

async fn send(stream: &mut TcpStream, msg: Bytes) -> Result<(), SessionError> {
    stream
        .write_all(&msg)
        .await
        .map_err(SessionError::target_io)
}

fn target_error(frame: &Frame) -> SessionError {
    match ErrorResponse::from_frame(frame) {
        Ok(e) => SessionError::TargetRefused {
            sqlstate: e.fields.code().unwrap_or("08004").to_owned(),
            message: e.fields.message().unwrap_or("").to_owned(),
        },
        Err(e) => SessionError::target_msg(e),
    }
}

/// Sends a CancelRequest for `process_id`/`secret_key` to the target.
pub async fn cancel(
    host: &str,
    port: u16,
    process_id: i32,
    secret_key: &[u8],
) -> std::io::Result<()> {
    let mut stream = TcpStream::connect((host, port)).await?;
    let req = warden_wire::CancelRequest::new(process_id, secret_key.to_vec());
    stream.write_all(&req.encode()).await?;
    // The server closes the connection once it has read the request.
    let mut sink = [0u8; 16];
    let _ = tokio::time::timeout(Duration::from_secs(2), stream.read(&mut sink)).await;
    Ok(())
}
