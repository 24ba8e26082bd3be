//! ErrorResponse: a failed statement or session, with SQLSTATE and message fields.

use std::ops::Deref;

use bytes::Bytes;

use crate::buf::frame_bytes;
use crate::messages::{Message, Side};
use crate::{tags, Fields, Frame, Severity, WireError};

/// An error. Parsed from the target, or built by Warden to tell a client what went wrong:
///
/// ```
/// use warden_wire::{ErrorResponse, Message, Severity};
/// let bytes = ErrorResponse::new(Severity::Fatal, "28P01", "token expired")
///     .with_hint("run `warden login` and reconnect")
///     .encode();
/// assert_eq!(bytes[0], b'E');
/// ```
///
/// Dereferences to its [`Fields`] for `sqlstate()`, `message()` and friends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorResponse {
    /// The fields in wire order.
    pub fields: Fields,
}

impl ErrorResponse {
    /// An error with severity (sent as both `'S'` and `'V'`), SQLSTATE and message.
    pub fn new(severity: Severity, sqlstate: &str, message: impl Into<String>) -> Self {
        let mut fields = Fields::new();
        fields.push(Fields::SEVERITY_LOCALIZED, severity.as_str());
        fields.push(Fields::SEVERITY, severity.as_str());
        fields.push(Fields::CODE, sqlstate);
        fields.push(Fields::MESSAGE, message);
        ErrorResponse { fields }
    }

    /// Adds a detail line.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.fields.push(Fields::DETAIL, detail);
        self
    }

    /// Adds a hint: what the person should do next.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.fields.push(Fields::HINT, hint);
        self
    }

    /// Adds any other field.
    pub fn with_field(mut self, code: u8, value: impl Into<String>) -> Self {
        self.fields.push(code, value);
        self
    }
}

impl Deref for ErrorResponse {
    type Target = Fields;

    fn deref(&self) -> &Fields {
        &self.fields
    }
}

impl Message for ErrorResponse {
    const TAG: u8 = tags::backend::ERROR_RESPONSE;
    const NAME: &'static str = "ErrorResponse";
    const SENT_BY: &'static [Side] = &[Side::Backend];

    fn parse(frame: &Frame) -> Result<Self, WireError> {
        Ok(ErrorResponse {
            fields: Fields::parse(frame.body())?,
        })
    }

    fn encode(&self) -> Bytes {
        frame_bytes(Self::TAG, self.fields.encoded_len(), |b| {
            self.fields.encode_into(b)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::check_parser;
    use postgres_protocol::message::backend::Message as PgMessage;

    #[test]
    fn builder_emits_both_severities_and_round_trips() {
        let e = ErrorResponse::new(Severity::Error, "42501", "statement denied by policy")
            .with_detail("rule: no DROP on app")
            .with_hint("ask a dba to approve it");
        let raw = e.encode();
        assert_eq!(
            &raw[5..],
            &b"SERROR\0VERROR\0C42501\0Mstatement denied by policy\0Drule: no DROP on app\0Hask a dba to approve it\0\0"[..]
        );
        let parsed = ErrorResponse::from_frame(&e.to_frame()).unwrap();
        assert_eq!(parsed, e);
        assert_eq!(parsed.sqlstate(), Some("42501"));
        assert_eq!(parsed.severity_level(), Some(Severity::Error));
        assert_eq!(parsed.detail(), Some("rule: no DROP on app"));
        assert_eq!(parsed.hint(), Some("ask a dba to approve it"));
    }

    #[test]
    fn postgres_protocol_reads_our_encoding() {
        let e = ErrorResponse::new(Severity::Fatal, "28P01", "bad token");
        let mut buf = bytes::BytesMut::from(&e.encode()[..]);
        assert!(matches!(
            PgMessage::parse(&mut buf).unwrap(),
            Some(PgMessage::ErrorResponse(_))
        ));
        assert!(buf.is_empty());
    }

    #[test]
    fn text_with_nul_cannot_forge_fields() {
        let e = ErrorResponse::new(Severity::Error, "42501", "unknown connection x\0C00000");
        let parsed = ErrorResponse::from_frame(&e.to_frame()).unwrap();
        assert_eq!(parsed.sqlstate(), Some("42501"));
        assert_eq!(parsed.message(), Some("unknown connection x"));
        assert_eq!(parsed.len(), 4);
    }

    #[test]
    fn rejects_malformed_bodies() {
        for body in [&b""[..], b"SERROR", b"SERROR\0", b"SERROR\0\0junk"] {
            assert!(
                matches!(
                    ErrorResponse::from_frame(&Frame::new(b'E', body)),
                    Err(WireError::Malformed { .. })
                ),
                "{body:?}"
            );
        }
        let latin1 = ErrorResponse::from_frame(&Frame::new(b'E', b"Mr\xe9sum\xe9\0\0")).unwrap();
        assert_eq!(latin1.message(), Some("r\u{fffd}sum\u{fffd}"));
    }

    #[test]
    fn random_bodies_never_panic() {
        let samples: [&[u8]; 2] = [b"SERROR\0VERROR\0C42P01\0Mno such table\0\0", b"\0"];
        assert!(check_parser::<ErrorResponse>(&samples, false) > 50);
    }
}
