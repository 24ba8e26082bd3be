//! PostgreSQL v3 wire protocol: framing and the messages Warden inspects. No I/O here.
//!
//! Two phases, two codecs:
//! - [`StartupCodec`] reads the untagged startup packets ([`StartupFrame`]: StartupMessage,
//!   SSLRequest, GSSENCRequest, CancelRequest).
//! - [`FrameCodec`] reads tagged messages as [`Frame`]s: the whole message as raw [`Bytes`],
//!   forwarded untouched unless a stage needs to look inside. [`scan_frame`] is the
//!   allocation-free check the proxy loop uses to forward a batch of complete frames at once.
//!
//! Messages live one per file under [`messages`]; each implements [`Message`], is validated
//! once when parsed from a [`Frame`], and encodes back to the wire format. Lengths are
//! checked against a maximum before any buffer is reserved, so a hostile length field cannot
//! make the gateway allocate.
#![forbid(unsafe_code)]

mod buf;
mod error;
mod frame;
pub mod messages;
mod startup;
pub mod tags;
#[cfg(test)]
mod testutil;

pub use bytes::Bytes;
pub use error::WireError;
pub use frame::{frame_header, scan_frame, Frame, FrameCodec};
pub use messages::backend::{
    Authentication, BackendKeyData, BindComplete, CloseComplete, CommandComplete, CopyBothResponse,
    CopyInResponse, CopyOutResponse, DataRow, DataRowColumns, EmptyQueryResponse, ErrorResponse,
    FieldDescription, Fields, NegotiateProtocolVersion, NoData, NoticeResponse,
    NotificationResponse, ParameterStatus, ParseComplete, PortalSuspended, ReadyForQuery,
    RowDescription, Severity, TransactionStatus,
};
pub use messages::frontend::{
    parse_text, query_text, Bind, BindRef, CancelRequest, Close, Describe, Execute, Flush, Parse,
    PasswordMessage, Query, SaslInitialResponse, SaslResponse, StartupMessage, Sync, Terminate,
};
pub use messages::{CopyData, CopyDone, CopyFail, Message, ObjectKind, Side};
pub use startup::{StartupCodec, StartupFrame};

/// Default upper bound for one regular message's length field (64 MiB).
///
/// PostgreSQL itself accepts up to 1 GiB for a few message types; Warden bounds memory per
/// connection lower, since every frame it inspects is held whole.
pub const DEFAULT_MAX_MESSAGE_LEN: usize = 64 * 1024 * 1024;

/// Upper bound for a message's length field before the client has authenticated.
///
/// Matches PostgreSQL's limit for authentication tokens (`PG_MAX_AUTH_TOKEN_LENGTH`) and is
/// ample for an OIDC access token, so an unauthenticated peer cannot make the gateway reserve
/// [`DEFAULT_MAX_MESSAGE_LEN`] bytes.
pub const MAX_AUTH_MESSAGE_LEN: usize = 65_535;

/// Upper bound for a startup packet's length field, as in PostgreSQL (`MAX_STARTUP_PACKET_LENGTH`).
pub const MAX_STARTUP_LEN: usize = 10_000;

/// Protocol version 3.0 (`196608`), spoken by every current client and server.
pub const PROTOCOL_3_0: u32 = 3 << 16;

/// Protocol version 3.2 (`196610`, PostgreSQL 18). The only change from 3.0 is that
/// cancel keys ([`BackendKeyData`], [`CancelRequest`]) may be 4 to 256 bytes long instead of
/// exactly 4. There is no 3.1.
pub const PROTOCOL_3_2: u32 = (3 << 16) | 2;

/// The "protocol version" of an SSLRequest.
pub const SSL_REQUEST_CODE: u32 = (1234 << 16) | 5679;

/// The "protocol version" of a GSSENCRequest.
pub const GSSENC_REQUEST_CODE: u32 = (1234 << 16) | 5680;

/// The "protocol version" of a CancelRequest.
pub const CANCEL_REQUEST_CODE: u32 = (1234 << 16) | 5678;

/// The single byte a server answers an SSLRequest or GSSENCRequest with to accept it.
pub const ENCRYPTION_ACCEPTED: u8 = b'S';

/// The single byte a server answers an SSLRequest or GSSENCRequest with to decline it.
pub const ENCRYPTION_DECLINED: u8 = b'N';

/// Shortest legal cancel key (protocol 3.0 keys are exactly this long).
pub const MIN_CANCEL_KEY_LEN: usize = 4;

/// Longest legal cancel key (protocol 3.2).
pub const MAX_CANCEL_KEY_LEN: usize = 256;
