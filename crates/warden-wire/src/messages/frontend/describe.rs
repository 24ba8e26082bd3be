//! Describe: ask for the parameter and row description of a statement or portal.

use bytes::{BufMut, Bytes};

use crate::buf::{frame_bytes, put_cstr, Reader};
use crate::messages::{Message, ObjectKind, Side};
use crate::{tags, Frame, WireError};

/// Describes the statement or portal `name`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Describe {
    /// Statement or portal.
    pub kind: ObjectKind,
    /// Its name (empty for the unnamed one).
    pub name: String,
}

impl Message for Describe {
    const TAG: u8 = tags::frontend::DESCRIBE;
    const NAME: &'static str = "Describe";
    const SENT_BY: &'static [Side] = &[Side::Frontend];

    fn parse(frame: &Frame) -> Result<Self, WireError> {
        let mut r = Reader::new(frame.body());
        let kind = ObjectKind::from_byte(r.u8("Describe kind")?)?;
        let name = r.str("Describe name")?.to_owned();
        r.finish("bytes after the Describe name")?;
        Ok(Describe { kind, name })
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
            let d = Describe {
                kind,
                name: "s1".into(),
            };
            let mut expected = bytes::BytesMut::new();
            postgres_protocol::message::frontend::describe(byte, "s1", &mut expected).unwrap();
            assert_eq!(&d.encode()[..], &expected[..]);
            assert_eq!(Describe::from_frame(&d.to_frame()).unwrap(), d);
        }
    }

    #[test]
    fn rejects_malformed_bodies() {
        for body in [&b""[..], b"S", b"Xs1\0", b"Ss1", b"Ss1\0\0"] {
            assert!(
                matches!(
                    Describe::from_frame(&Frame::new(b'D', body)),
                    Err(WireError::Malformed { .. })
                ),
                "{body:?}"
            );
        }
        assert!(matches!(
            Describe::from_frame(&Frame::new(b'D', b"P\xff\0")),
            Err(WireError::InvalidUtf8 { .. })
        ));
    }

    #[test]
    fn random_bodies_never_panic() {
        assert!(check_parser::<Describe>(&[b"Ss1\0", b"P\0"], true) > 50);
    }
}
