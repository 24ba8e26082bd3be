//! ParameterStatus: the server reports a run-time parameter (server_version, TimeZone, …).

use bytes::Bytes;

use crate::buf::{frame_bytes, put_cstr, Reader};
use crate::messages::{Message, Side};
use crate::{tags, Frame, WireError};

/// A run-time parameter's current value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParameterStatus {
    /// Parameter name, e.g. `server_version`.
    pub name: String,
    /// Its value.
    pub value: String,
}

impl ParameterStatus {
    /// A ParameterStatus for `name` = `value`.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        ParameterStatus {
            name: name.into(),
            value: value.into(),
        }
    }
}

impl Message for ParameterStatus {
    const TAG: u8 = tags::backend::PARAMETER_STATUS;
    const NAME: &'static str = "ParameterStatus";
    const SENT_BY: &'static [Side] = &[Side::Backend];

    fn parse(frame: &Frame) -> Result<Self, WireError> {
        let mut r = Reader::new(frame.body());
        let name = r.lossy("parameter name")?;
        let value = r.lossy("parameter value")?;
        r.finish("bytes after the parameter value")?;
        Ok(ParameterStatus { name, value })
    }

    fn encode(&self) -> Bytes {
        frame_bytes(Self::TAG, self.name.len() + self.value.len() + 2, |b| {
            put_cstr(b, self.name.as_bytes());
            put_cstr(b, self.value.as_bytes());
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
        let p = ParameterStatus::new("server_version", "15.8");
        assert_eq!(ParameterStatus::from_frame(&p.to_frame()).unwrap(), p);
        let mut buf = bytes::BytesMut::from(&p.encode()[..]);
        let Some(PgMessage::ParameterStatus(m)) = PgMessage::parse(&mut buf).unwrap() else {
            panic!("not a ParameterStatus");
        };
        assert_eq!(
            (m.name().unwrap(), m.value().unwrap()),
            ("server_version", "15.8")
        );
    }

    #[test]
    fn rejects_malformed_bodies() {
        for body in [&b""[..], b"a", b"a\0", b"a\0b", b"a\0b\0c"] {
            assert!(
                matches!(
                    ParameterStatus::from_frame(&Frame::new(b'S', body)),
                    Err(WireError::Malformed { .. })
                ),
                "{body:?}"
            );
        }
        let latin1 = ParameterStatus::from_frame(&Frame::new(b'S', b"x\0caf\xe9\0")).unwrap();
        assert_eq!(latin1.value, "caf\u{fffd}");
    }

    #[test]
    fn encoder_cannot_be_tricked_into_extra_fields() {
        let p = ParameterStatus::new("TimeZone", "UTC\0injected\0");
        assert_eq!(&p.encode()[5..], b"TimeZone\0UTC\0");
    }

    #[test]
    fn random_bodies_never_panic() {
        assert!(check_parser::<ParameterStatus>(&[b"TimeZone\0UTC\0"], false) > 50);
    }
}
