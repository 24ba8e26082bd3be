//! SASLResponse: a later message of a SASL exchange (SCRAM's client-final message).

use std::fmt;

use bytes::Bytes;

use crate::buf::frame_bytes;
use crate::messages::{Message, Side};
use crate::{tags, Frame, WireError};

/// A SASL continuation (`'p'`, answer to AuthenticationSASLContinue). The body is the
/// mechanism's data, unframed. `Debug` shows its size only (it holds the client proof).
#[derive(Clone, PartialEq, Eq)]
pub struct SaslResponse {
    /// Mechanism data, a zero-copy slice of the frame.
    pub data: Bytes,
}

impl SaslResponse {
    /// A SASLResponse carrying `data`.
    pub fn new(data: &[u8]) -> Self {
        SaslResponse {
            data: Bytes::copy_from_slice(data),
        }
    }
}

impl Message for SaslResponse {
    const TAG: u8 = tags::frontend::PASSWORD;
    const NAME: &'static str = "SASLResponse";
    const SENT_BY: &'static [Side] = &[Side::Frontend];

    fn parse(frame: &Frame) -> Result<Self, WireError> {
        Ok(SaslResponse {
            data: frame.body_bytes(),
        })
    }

    fn encode(&self) -> Bytes {
        frame_bytes(Self::TAG, self.data.len(), |b| {
            b.extend_from_slice(&self.data)
        })
    }
}

impl fmt::Debug for SaslResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaslResponse")
            .field("data_len", &self.data.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::check_parser;

    #[test]
    fn round_trips_and_matches_postgres_protocol() {
        let m = SaslResponse {
            data: Bytes::from_static(b"c=biws,r=abc,p=proof"),
        };
        let mut expected = bytes::BytesMut::new();
        postgres_protocol::message::frontend::sasl_response(b"c=biws,r=abc,p=proof", &mut expected)
            .unwrap();
        assert_eq!(&m.encode()[..], &expected[..]);
        assert_eq!(SaslResponse::from_frame(&m.to_frame()).unwrap(), m);
        assert!(!format!("{m:?}").contains("proof"));
    }

    #[test]
    fn wrong_tag_is_unexpected() {
        assert!(matches!(
            SaslResponse::from_frame(&Frame::new(b'Q', b"x")),
            Err(WireError::UnexpectedMessage { got: b'Q', .. })
        ));
    }

    #[test]
    fn random_bodies_never_panic() {
        assert!(check_parser::<SaslResponse>(&[b"c=biws", b""], true) > 1000);
    }
}
