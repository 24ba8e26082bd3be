//! CopyFail: the client aborts COPY FROM STDIN.

use bytes::Bytes;

use crate::buf::{frame_bytes, put_cstr, Reader};
use crate::messages::{Message, Side};
use crate::{tags, Frame, WireError};

/// Aborts a COPY FROM STDIN with an error message for the server to report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CopyFail {
    /// Why the client gave up (decoded leniently: it is only displayed).
    pub message: String,
}

impl Message for CopyFail {
    const TAG: u8 = tags::frontend::COPY_FAIL;
    const NAME: &'static str = "CopyFail";
    const SENT_BY: &'static [Side] = &[Side::Frontend];

    fn parse(frame: &Frame) -> Result<Self, WireError> {
        let mut r = Reader::new(frame.body());
        let message = r.lossy("CopyFail message")?;
        r.finish("bytes after the CopyFail message")?;
        Ok(CopyFail { message })
    }

    fn encode(&self) -> Bytes {
        frame_bytes(Self::TAG, self.message.len() + 1, |b| {
            put_cstr(b, self.message.as_bytes())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::check_parser;

    #[test]
    fn round_trips_and_matches_postgres_protocol() {
        let m = CopyFail {
            message: "aborted by user".into(),
        };
        let mut expected = bytes::BytesMut::new();
        postgres_protocol::message::frontend::copy_fail("aborted by user", &mut expected).unwrap();
        assert_eq!(&m.encode()[..], &expected[..]);
        assert_eq!(CopyFail::from_frame(&m.to_frame()).unwrap(), m);
    }

    #[test]
    fn rejects_malformed_and_tolerates_other_encodings() {
        for body in [&b""[..], b"oops", b"oops\0x"] {
            assert!(matches!(
                CopyFail::from_frame(&Frame::new(b'f', body)),
                Err(WireError::Malformed { .. })
            ));
        }
        let m = CopyFail::from_frame(&Frame::new(b'f', b"caf\xe9\0")).unwrap();
        assert_eq!(m.message, "caf\u{fffd}");
    }

    #[test]
    fn random_bodies_never_panic() {
        assert!(check_parser::<CopyFail>(&[b"oops\0"], false) > 50);
    }
}
