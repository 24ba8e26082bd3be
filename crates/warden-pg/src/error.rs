//! Session errors, and the one place that turns them into what the client sees: an
//! ErrorResponse with a fitting SQLSTATE and a message that says what to do next.

use bytes::Bytes;
use warden_identity::AuthError;
use warden_policy::access::AccessDenied;
use warden_wire::{ErrorResponse, Message, Severity, WireError};

use crate::io::ReadError;

/// Everything that can end a session.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The client went away or its socket failed; nothing can be sent.
    #[error("client connection lost: {0}")]
    ClientGone(String),
    /// The client broke the protocol.
    #[error("protocol violation by the client: {0}")]
    ClientProtocol(WireError),
    /// The client did not finish startup in time.
    #[error("startup did not complete in time")]
    HandshakeTimeout,
    /// A non-loopback client did not use TLS.
    #[error("TLS required")]
    TlsRequired,
    /// TLS negotiation failed.
    #[error("TLS handshake failed: {0}")]
    Tls(String),
    /// Too many clients at once.
    #[error("too many connections")]
    TooManyConnections,
    /// The startup packet named no connection.
    #[error("no connection named")]
    NoConnectionNamed,
    /// The client asked for something Warden does not offer.
    #[error("unsupported: {0}")]
    Unsupported(&'static str),
    /// The client's credential was refused.
    #[error("authentication failed: {}", .0.label())]
    Auth(AuthError),
    /// Policy refused the session.
    #[error("access denied: {0}")]
    Denied(AccessDenied),
    /// Warden has no usable credential for the mapped role.
    #[error("no usable target credential: {0}")]
    Credential(String),
    /// The target could not be reached.
    #[error("target unavailable: {0}")]
    TargetUnavailable(String),
    /// Warden could not authenticate to the target.
    #[error("target authentication failed: {0}")]
    TargetAuth(String),
    /// The target refused the session with an error.
    #[error("target refused the session: {sqlstate} {message}")]
    TargetRefused {
        /// The target's SQLSTATE.
        sqlstate: String,
        /// The target's message.
        message: String,
    },
    /// The target broke the protocol.
    #[error("protocol violation by the target: {0}")]
    TargetProtocol(String),
    /// The target connection failed mid-session.
    #[error("target connection lost: {0}")]
    TargetGone(String),
    /// The session role could not be created.
    #[error("just-in-time credential failed: {0}")]
    Jit(warden_credentials::JitError),
    /// A bound or an operator ended the session.
    #[error("session ended: {0}")]
    Ended(Ended),
    /// A rule denied a statement inside an extended-protocol batch that had already
    /// partly reached the target; the session ends rather than answer out of order.
    #[error("statement denied inside a pipeline: {0}")]
    DeniedInPipeline(String),
    /// The session could not be recorded, so it does not start (fail closed).
    #[error("cannot record the session: {0}")]
    Recording(String),
    /// The connection masks columns and the catalog needed to mask them cannot be read,
    /// so the session does not start (fail closed).
    #[error("masking unavailable: {0}")]
    Masking(String),
}

/// Why Warden ended a healthy session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ended {
    /// `max_session`, or the just-in-time role's `max_ttl`.
    MaxLength,
    /// The token that opened the session expired (plus the configured grace).
    TokenExpired,
    /// No statement ran for this long.
    Idle(std::time::Duration),
    /// An operator ended it (`warden sessions kill`); names who.
    Killed(String),
    /// The API key or token that opened it was revoked.
    Revoked,
    /// The gateway is shutting down.
    Shutdown,
    /// The approved access request that allowed the session has run out.
    GrantExpired,
}

impl Ended {
    /// A short label for recordings, metrics and the session index.
    pub fn label(&self) -> &'static str {
        match self {
            Ended::MaxLength => "max_session",
            Ended::TokenExpired => "token_expired",
            Ended::Idle(_) => "idle_timeout",
            Ended::Killed(_) => "killed",
            Ended::Revoked => "revoked",
            Ended::Shutdown => "shutdown",
            Ended::GrantExpired => "grant_expired",
        }
    }
}

impl std::fmt::Display for Ended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ended::MaxLength => f.write_str(
                "the session reached its maximum length (max_session, or the just-in-time \
                 credential's max_ttl)",
            ),
            Ended::TokenExpired => f.write_str("the token that opened this session has expired"),
            Ended::GrantExpired => f.write_str(
                "the access request that allowed this session has expired; ask for access again",
            ),
            Ended::Idle(d) => write!(
                f,
                "no statement ran for {} (idle_timeout)",
                humantime_secs(*d)
            ),
            Ended::Killed(by) => write!(f, "an operator ended this session ({by})"),
            Ended::Revoked => {
                f.write_str("the API key or token that opened this session was revoked")
            }
            Ended::Shutdown => f.write_str("the gateway is shutting down"),
        }
    }
}

fn humantime_secs(d: std::time::Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

impl SessionError {
    pub(crate) fn client_read(e: ReadError) -> Self {
        match e {
            ReadError::Eof => SessionError::ClientGone("closed".into()),
            ReadError::Io(e) => SessionError::ClientGone(e.to_string()),
            ReadError::Wire(e) => SessionError::ClientProtocol(e),
        }
    }

    pub(crate) fn target_wire(e: ReadError) -> Self {
        match e {
            ReadError::Eof => SessionError::TargetGone("the target closed the connection".into()),
            ReadError::Io(e) => SessionError::TargetGone(e.to_string()),
            ReadError::Wire(e) => SessionError::TargetProtocol(e.to_string()),
        }
    }

    pub(crate) fn target_msg(e: WireError) -> Self {
        SessionError::TargetProtocol(e.to_string())
    }

    pub(crate) fn target_io(e: std::io::Error) -> Self {
        SessionError::TargetGone(e.to_string())
    }

    /// A short label for metrics and the audit trail.
    pub fn label(&self) -> &'static str {
        match self {
            SessionError::ClientGone(_) => "client_gone",
            SessionError::ClientProtocol(_) => "client_protocol",
            SessionError::HandshakeTimeout => "handshake_timeout",
            SessionError::TlsRequired => "tls_required",
            SessionError::Tls(_) => "tls",
            SessionError::TooManyConnections => "too_many_connections",
            SessionError::NoConnectionNamed => "no_connection_named",
            SessionError::Unsupported(_) => "unsupported",
            SessionError::Auth(e) => e.label(),
            SessionError::Denied(_) => "denied",
            SessionError::Credential(_) => "credential",
            SessionError::TargetUnavailable(_) => "target_unavailable",
            SessionError::TargetAuth(_) => "target_auth",
            SessionError::TargetRefused { .. } => "target_refused",
            SessionError::TargetProtocol(_) => "target_protocol",
            SessionError::TargetGone(_) => "target_gone",
            SessionError::Jit(_) => "jit_credential",
            SessionError::Ended(e) => e.label(),
            SessionError::Recording(_) => "recording",
            SessionError::Masking(_) => "masking",
            SessionError::DeniedInPipeline(_) => "denied_in_pipeline",
        }
    }

    /// The SQLSTATE, message and hint the client receives; `None` when the client is gone.
    pub fn client_view(&self) -> Option<(String, String, Option<String>)> {
        let v = |code: &str, msg: String, hint: Option<&str>| {
            Some((code.to_owned(), msg, hint.map(str::to_owned)))
        };
        match self {
            SessionError::ClientGone(_) => None,
            SessionError::ClientProtocol(e) => v("08P01", format!("invalid message: {e}"), None),
            SessionError::HandshakeTimeout => v(
                "57014",
                "canceling authentication due to timeout".into(),
                Some("send the startup packet and password promptly"),
            ),
            SessionError::TlsRequired => v(
                "28000",
                "this gateway requires TLS for connections from non-loopback addresses".into(),
                Some("connect with sslmode=require (or verify-full)"),
            ),
            SessionError::Tls(_) => None,
            SessionError::TooManyConnections => v(
                "53300",
                "sorry, too many clients already".into(),
                Some("retry later, or ask the operator to raise gateway.max_connections"),
            ),
            SessionError::NoConnectionNamed => v(
                "3D000",
                "no connection name given".into(),
                Some("set the database name (dbname) to the Warden connection you want"),
            ),
            SessionError::Unsupported(what) => {
                v("0A000", format!("{what} is not supported by Warden"), None)
            }
            SessionError::Auth(e) => v(
                e.sqlstate(),
                e.reason(),
                Some("put a valid OIDC access token or Warden API key in the password field"),
            ),
            SessionError::Denied(d) => v(d.sqlstate(), d.to_string(), None),
            SessionError::Credential(m) => v(
                "08004",
                format!("Warden has no usable credential for this connection: {m}"),
                Some("ask the Warden administrator to check the connection's credentials"),
            ),
            SessionError::TargetUnavailable(m) => v(
                "08001",
                format!("the target database is unavailable: {m}"),
                Some("retry later; if it persists, tell the Warden administrator"),
            ),
            SessionError::TargetAuth(m) => v(
                "08004",
                format!("Warden could not log in to the target: {m}"),
                Some("ask the Warden administrator to check the connection's credentials"),
            ),
            SessionError::TargetRefused { sqlstate, message } => {
                // An authentication failure at the target is Warden's credential problem, not
                // the client's: do not let it look like a bad token.
                let code = if sqlstate.starts_with("28") {
                    "08004"
                } else {
                    sqlstate.as_str()
                };
                v(
                    code,
                    format!("the target refused the session: {message}"),
                    None,
                )
            }
            SessionError::TargetProtocol(m) => v(
                "08P01",
                format!("the target sent an invalid message: {m}"),
                None,
            ),
            SessionError::TargetGone(m) => v(
                "08006",
                format!("lost the connection to the target: {m}"),
                None,
            ),
            SessionError::Jit(e) => Some((
                "08004".to_owned(),
                format!("Warden could not make a session credential: {}", e.message),
                Some(format!(
                    "ask the Warden administrator to fix [connections.jit]{}",
                    e.hint
                        .as_deref()
                        .map(|h| format!(": {h}"))
                        .unwrap_or_default()
                )),
            )),
            SessionError::DeniedInPipeline(m) => v(
                "42501",
                format!("{m} (inside a pipelined batch, so the session ends)"),
                Some("send the statement on its own, or ask for the rule to be changed"),
            ),
            SessionError::Recording(_) => v(
                "58030",
                "Warden cannot record this session, and sessions do not run unrecorded".into(),
                Some("tell the Warden administrator: the recordings directory or the store is failing"),
            ),
            SessionError::Masking(m) => v(
                "58030",
                format!("Warden cannot mask this connection's results, so the session does not start: {m}"),
                Some("tell the Warden administrator: the gateway could not read the target's catalog"),
            ),
            SessionError::Ended(e) => v(
                "57P01",
                format!("terminating connection: {e}"),
                Some("reconnect to start a new session"),
            ),
        }
    }

    /// The FATAL ErrorResponse for the client, if one can be sent.
    pub fn to_error_response(&self) -> Option<Bytes> {
        let (code, message, hint) = self.client_view()?;
        let mut e = ErrorResponse::new(Severity::Fatal, &code, message);
        if let Some(h) = hint {
            e = e.with_hint(h);
        }
        Some(e.encode())
    }
}
