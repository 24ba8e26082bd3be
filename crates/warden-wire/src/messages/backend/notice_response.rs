//! NoticeResponse: a warning or notice sent alongside normal results.

use std::ops::Deref;

use bytes::Bytes;

use crate::buf::frame_bytes;
use crate::messages::{Message, Side};
use crate::{tags, Fields, Frame, Severity, WireError};

/// A notice (same fields as an [`ErrorResponse`](crate::ErrorResponse), but nothing
/// failed). Dereferences to its [`Fields`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoticeResponse {
    /// The fields in wire order.
    pub fields: Fields,
}

impl NoticeResponse {
    /// A notice with severity (sent as both `'S'` and `'V'`), SQLSTATE and message.
    pub fn new(severity: Severity, sqlstate: &str, message: impl Into<String>) -> Self {
        let mut fields = Fields::new();
        fields.push(Fields::SEVERITY_LOCALIZED, severity.as_str());
        fields.push(Fields::SEVERITY, severity.as_str());
        fields.push(Fields::CODE, sqlstate);
        fields.push(Fields::MESSAGE, message);
        NoticeResponse { fields }
    }

    /// Adds a detail line.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.fields.push(Fields::DETAIL, detail);
        self
    }

    /// Adds a hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.fields.push(Fields::HINT, hint);
        self
    }
}

impl Deref for NoticeResponse {
    type Target = Fields;

    fn deref(&self) -> &Fields {
        &self.fields
    }
}

impl Message for NoticeResponse {
    const TAG: u8 = tags::backend::NOTICE_RESPONSE;
    const NAME: &'static str = "NoticeResponse";
    const SENT_BY: &'static [Side] = &[Side::Backend];

    fn parse(frame: &Frame) -> Result<Self, WireError> {
        Ok(NoticeResponse {
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
    fn round_trips_and_postgres_protocol_agrees() {
        let n = NoticeResponse::new(Severity::Warning, "01000", "column ssn is masked")
            .with_detail("strategy: partial")
            .with_hint("ask for access");
        let parsed = NoticeResponse::from_frame(&n.to_frame()).unwrap();
        assert_eq!(parsed, n);
        assert_eq!(parsed.severity(), Some("WARNING"));
        assert_eq!(parsed.message(), Some("column ssn is masked"));
        let mut buf = bytes::BytesMut::from(&n.encode()[..]);
        assert!(matches!(
            PgMessage::parse(&mut buf).unwrap(),
            Some(PgMessage::NoticeResponse(_))
        ));
    }

    #[test]
    fn rejects_malformed_bodies() {
        for body in [&b""[..], b"SNOTICE\0", b"SNOTICE", b"\0\0"] {
            assert!(
                matches!(
                    NoticeResponse::from_frame(&Frame::new(b'N', body)),
                    Err(WireError::Malformed { .. })
                ),
                "{body:?}"
            );
        }
        assert!(matches!(
            NoticeResponse::from_frame(&Frame::new(b'E', b"\0")),
            Err(WireError::UnexpectedMessage {
                expected: "NoticeResponse",
                got: b'E'
            })
        ));
    }

    #[test]
    fn random_bodies_never_panic() {
        assert!(check_parser::<NoticeResponse>(&[b"SNOTICE\0Mhello\0\0"], false) > 50);
    }
}
