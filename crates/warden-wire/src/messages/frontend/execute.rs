//! Execute: run a bound portal, optionally stopping after a number of rows.

use bytes::{BufMut, Bytes};

use crate::buf::{frame_bytes, put_cstr, Reader};
use crate::messages::{Message, Side};
use crate::{tags, Frame, WireError};

/// Runs `portal`, returning at most `max_rows` rows (0 or less: no limit).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Execute {
    /// The portal name (empty for the unnamed portal).
    pub portal: String,
    /// Row limit; 0 means unlimited.
    pub max_rows: i32,
}

impl Message for Execute {
    const TAG: u8 = tags::frontend::EXECUTE;
    const NAME: &'static str = "Execute";
    const SENT_BY: &'static [Side] = &[Side::Frontend];

    fn parse(frame: &Frame) -> Result<Self, WireError> {
        let mut r = Reader::new(frame.body());
        let portal = r.str("portal name")?.to_owned();
        let max_rows = r.i32("row limit")?;
        r.finish("bytes after the row limit")?;
        Ok(Execute { portal, max_rows })
    }

    fn encode(&self) -> Bytes {
        frame_bytes(Self::TAG, self.portal.len() + 5, |b| {
            put_cstr(b, self.portal.as_bytes());
            b.put_i32(self.max_rows);
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::check_parser;

    #[test]
    fn round_trips_and_matches_postgres_protocol() {
        let e = Execute {
            portal: "p1".into(),
            max_rows: 100,
        };
        let mut expected = bytes::BytesMut::new();
        postgres_protocol::message::frontend::execute("p1", 100, &mut expected).unwrap();
        assert_eq!(&e.encode()[..], &expected[..]);
        assert_eq!(Execute::from_frame(&e.to_frame()).unwrap(), e);
    }

    #[test]
    fn rejects_malformed_bodies() {
        for body in [&b""[..], b"p", b"p\0", b"p\0\0\0\0", b"p\0\0\0\0\0\0"] {
            assert!(
                matches!(
                    Execute::from_frame(&Frame::new(b'E', body)),
                    Err(WireError::Malformed { .. })
                ),
                "{body:?}"
            );
        }
        assert!(matches!(
            Execute::from_frame(&Frame::new(b'E', b"\xc0\0\0\0\0\0")),
            Err(WireError::InvalidUtf8 { .. })
        ));
    }

    #[test]
    fn random_bodies_never_panic() {
        assert!(check_parser::<Execute>(&[b"p\0\0\0\0\x05", b"\0\xff\xff\xff\xff"], true) > 50);
    }
}
