//! Close: release a prepared statement or portal.

use bytes::{BufMut, Bytes};

use crate::buf::{frame_bytes, put_cstr, Reader};
use crate::messages::{Message, ObjectKind, Side};
use crate::{tags, Frame, WireError};

/// Closes the statement or portal `name`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Close {
    /// Statement or portal.
    pub kind: ObjectKind,
    /// Its name (empty for the unnamed one).
    pub name: String,
}

impl Message for Close {
    const TAG: u8 = tags::frontend::CLOSE;
    const NAME: &'static str = "Close";
    const SENT_BY: &'static [Side] = &[Side::Frontend];

    fn parse(frame: &Frame) -> Result<Self, WireError> {
        let mut r = Reader::new(frame.body());
        let kind = ObjectKind::from_byte(r.u8("Close kind")?)?;
        let name = r.str("Close name")?.to_owned();
        r.finish("bytes after the Close name")?;
        Ok(Close { kind, name })
    }

    fn encode(&self) -> Bytes {
        frame_bytes(Self::TAG, self.name.len() + 2, |b| {
            b.put_u8(self.kind.as_byte());
            put_cstr(b, self.name.as_bytes());
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::check_parser;

    #[test]
    fn round_trips_and_matches_postgres_protocol() {
        for (kind, byte) in [(ObjectKind::Statement, b'S'), (ObjectKind::Portal, b'P')] {
            let c = Close {
                kind,
                name: "x".into(),
            };
            let mut expected = bytes::BytesMut::new();
            postgres_protocol::message::frontend::close(byte, "x", &mut expected).unwrap();
            assert_eq!(&c.encode()[..], &expected[..]);
            assert_eq!(Close::from_frame(&c.to_frame()).unwrap(), c);
        }
    }

    #[test]
    fn rejects_malformed_bodies() {
        for body in [&b""[..], b"P", b"sx\0", b"Px", b"Px\0x"] {
            assert!(
                matches!(
                    Close::from_frame(&Frame::new(b'C', body)),
                    Err(WireError::Malformed { .. })
                ),
                "{body:?}"
            );
        }
        assert!(matches!(
            Close::from_frame(&Frame::new(b'C', b"S\xe2\x82\0")),
            Err(WireError::InvalidUtf8 { .. })
        ));
    }

    #[test]
    fn random_bodies_never_panic() {
        assert!(check_parser::<Close>(&[b"Sx\0", b"P\0"], true) > 50);
    }
}
