//! SASLInitialResponse: the client picks a SASL mechanism and sends its first message.

use std::fmt;

use bytes::{BufMut, Bytes};

use crate::buf::{frame_bytes, put_cstr, Reader};
use crate::messages::{Message, Side};
use crate::{tags, Frame, WireError};

/// The first SASL message (`'p'`, answer to AuthenticationSASL). `Debug` shows the data's
/// size only.
#[derive(Clone, PartialEq, Eq)]
pub struct SaslInitialResponse {
    /// The chosen mechanism, e.g. `SCRAM-SHA-256`.
    pub mechanism: String,
    /// The client-first message; `None` when the mechanism has no initial response.
    pub data: Option<Bytes>,
}

impl SaslInitialResponse {
    /// A SASLInitialResponse choosing `mechanism` with the client-first message `data`.
    pub fn new(mechanism: impl Into<String>, data: &[u8]) -> Self {
        SaslInitialResponse {
            mechanism: mechanism.into(),
            data: Some(Bytes::copy_from_slice(data)),
        }
    }
}

impl Message for SaslInitialResponse {
    const TAG: u8 = tags::frontend::PASSWORD;
    const NAME: &'static str = "SASLInitialResponse";
    const SENT_BY: &'static [Side] = &[Side::Frontend];

    fn parse(frame: &Frame) -> Result<Self, WireError> {
        let body = frame.body_bytes();
        let mut r = Reader::new(&body);
        let mechanism = r.str("SASL mechanism")?.to_owned();
        let len = r.i32("SASL initial response length")?;
        let data = match len {
            -1 => None,
            len => {
                let len = usize::try_from(len)
                    .map_err(|_| WireError::malformed("negative SASL initial response length"))?;
                Some(body.slice(r.range(len, "SASL initial response data")?))
            }
        };
        r.finish("bytes after the SASL initial response")?;
        Ok(SaslInitialResponse { mechanism, data })
    }

    fn encode(&self) -> Bytes {
        let data_len = self.data.as_ref().map_or(0, Bytes::len);
        frame_bytes(Self::TAG, self.mechanism.len() + 5 + data_len, |b| {
            put_cstr(b, self.mechanism.as_bytes());
            match &self.data {
                None => b.put_i32(-1),
                Some(d) => {
                    // SASL messages are bounded by the frame limit, far below i32::MAX.
                    b.put_i32(i32::try_from(d.len()).unwrap_or(i32::MAX));
                    b.extend_from_slice(d);
                }
            }
        })
    }
}

impl fmt::Debug for SaslInitialResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaslInitialResponse")
            .field("mechanism", &self.mechanism)
            .field("data_len", &self.data.as_ref().map(Bytes::len))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::check_parser;

    #[test]
    fn round_trips_and_matches_postgres_protocol() {
        let m = SaslInitialResponse {
            mechanism: "SCRAM-SHA-256".into(),
            data: Some(Bytes::from_static(b"n,,n=,r=abc")),
        };
        let mut expected = bytes::BytesMut::new();
        postgres_protocol::message::frontend::sasl_initial_response(
            "SCRAM-SHA-256",
            b"n,,n=,r=abc",
            &mut expected,
        )
        .unwrap();
        assert_eq!(&m.encode()[..], &expected[..]);
        assert_eq!(SaslInitialResponse::from_frame(&m.to_frame()).unwrap(), m);
        let none = SaslInitialResponse {
            mechanism: "X".into(),
            data: None,
        };
        assert_eq!(&none.encode()[5..], b"X\0\xff\xff\xff\xff");
        assert_eq!(
            SaslInitialResponse::from_frame(&none.to_frame()).unwrap(),
            none
        );
    }

    #[test]
    fn rejects_malformed_bodies() {
        for body in [
            &b""[..],
            b"SCRAM",
            b"SCRAM\0",
            b"SCRAM\0\0\0\0\x05abc",     // shorter than declared
            b"SCRAM\0\0\0\0\x01ab",      // longer than declared
            b"SCRAM\0\xff\xff\xff\xfe",  // -2
            b"SCRAM\0\xff\xff\xff\xffx", // NULL then junk
        ] {
            assert!(
                matches!(
                    SaslInitialResponse::from_frame(&Frame::new(b'p', body)),
                    Err(WireError::Malformed { .. })
                ),
                "{body:?}"
            );
        }
    }

    #[test]
    fn debug_hides_the_data() {
        let m = SaslInitialResponse {
            mechanism: "SCRAM-SHA-256".into(),
            data: Some(Bytes::from_static(b"n,,n=,r=nonce")),
        };
        assert!(!format!("{m:?}").contains("nonce"));
    }

    #[test]
    fn random_bodies_never_panic() {
        let samples: [&[u8]; 2] = [b"SCRAM-SHA-256\0\0\0\0\x03abc", b"X\0\xff\xff\xff\xff"];
        assert!(check_parser::<SaslInitialResponse>(&samples, true) > 50);
    }
}
