//! StartupMessage: protocol version and connection parameters (`user`, `database`, …).

use bytes::{BufMut, Bytes};

use crate::buf::{put_cstr, reject_nul, startup_bytes, Reader};
use crate::{WireError, PROTOCOL_3_0};

/// The first packet of a session: the protocol version and `name=value` parameters.
///
/// For Warden, `database` names the connection and `user` is informational.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StartupMessage {
    /// Protocol version: major in the high 16 bits ([`PROTOCOL_3_0`](crate::PROTOCOL_3_0),
    /// [`PROTOCOL_3_2`](crate::PROTOCOL_3_2)).
    pub protocol: u32,
    /// Parameters in the order sent. Names are unique (duplicates are rejected when parsing).
    pub params: Vec<(String, String)>,
}

impl StartupMessage {
    /// A protocol 3.0 startup message with `params`.
    pub fn new(params: Vec<(String, String)>) -> Self {
        StartupMessage {
            protocol: PROTOCOL_3_0,
            params,
        }
    }

    /// Parses the parameters following the protocol version of a startup packet.
    pub fn parse(protocol: u32, params: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(params);
        let mut out: Vec<(String, String)> = Vec::new();
        loop {
            let name = r.str("startup parameter name")?;
            if name.is_empty() {
                break;
            }
            let value = r.str("startup parameter value")?;
            // Two values for one name would let Warden and the target read different ones.
            if out.iter().any(|(n, _)| n == name) {
                return Err(WireError::malformed("duplicate startup parameter"));
            }
            out.push((name.to_owned(), value.to_owned()));
        }
        r.finish("bytes after the startup parameter list terminator")?;
        Ok(StartupMessage {
            protocol,
            params: out,
        })
    }

    /// The value of parameter `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The `user` parameter.
    pub fn user(&self) -> Option<&str> {
        self.get("user")
    }

    /// The `database` parameter (Warden's connection name); PostgreSQL defaults it to the
    /// user name when absent, which the session engine decides whether to follow.
    pub fn database(&self) -> Option<&str> {
        self.get("database")
    }

    /// Fails if a parameter name or value contains a NUL byte (which would shift every
    /// following parameter) or a name is empty (which would end the list early).
    pub fn validate(&self) -> Result<(), WireError> {
        for (name, value) in &self.params {
            if name.is_empty() {
                return Err(WireError::malformed("empty startup parameter name"));
            }
            reject_nul(name, "startup parameter name")?;
            reject_nul(value, "startup parameter value")?;
        }
        Ok(())
    }

    /// The packet on the wire, length included. Call [`StartupMessage::validate`] first for
    /// parameters that did not come from [`StartupMessage::parse`].
    pub fn encode(&self) -> Bytes {
        let hint = self
            .params
            .iter()
            .map(|(n, v)| n.len() + v.len() + 2)
            .sum::<usize>()
            + 5;
        startup_bytes(hint, |b| {
            b.put_u32(self.protocol);
            for (name, value) in &self.params {
                put_cstr(b, name.as_bytes());
                put_cstr(b, value.as_bytes());
            }
            b.put_u8(0);
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::XorShift;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn round_trips() {
        let m = StartupMessage::new(pairs(&[("user", "agent-7"), ("database", "app")]));
        let raw = m.encode();
        assert_eq!(&raw[..4], &(raw.len() as u32).to_be_bytes());
        assert_eq!(&raw[4..8], &PROTOCOL_3_0.to_be_bytes());
        assert_eq!(StartupMessage::parse(PROTOCOL_3_0, &raw[8..]).unwrap(), m);
    }

    #[test]
    fn matches_postgres_protocol_encoding() {
        let mut expected = bytes::BytesMut::new();
        postgres_protocol::message::frontend::startup_message(
            [("user", "u"), ("database", "d")],
            &mut expected,
        )
        .unwrap();
        let ours = StartupMessage::new(pairs(&[("user", "u"), ("database", "d")])).encode();
        assert_eq!(&ours[..], &expected[..]);
    }

    #[test]
    fn empty_parameter_list_is_fine() {
        let m = StartupMessage::parse(PROTOCOL_3_0, b"\0").unwrap();
        assert!(m.params.is_empty());
        assert_eq!(m.user(), None);
    }

    #[test]
    fn rejects_malformed_lists() {
        for (body, why) in [
            (&b""[..], "no terminator at all"),
            (b"user\0alice\0", "missing list terminator"),
            (b"user\0alice", "value missing NUL"),
            (b"user", "name missing NUL"),
            (b"user\0alice\0\0x", "trailing bytes"),
            (b"user\0a\0user\0b\0\0", "duplicate name"),
        ] {
            assert!(
                matches!(
                    StartupMessage::parse(PROTOCOL_3_0, body),
                    Err(WireError::Malformed { .. })
                ),
                "{why}"
            );
        }
        assert!(matches!(
            StartupMessage::parse(PROTOCOL_3_0, b"user\0\xff\xfe\0\0"),
            Err(WireError::InvalidUtf8 { .. })
        ));
    }

    #[test]
    fn validate_catches_values_that_would_shift_fields() {
        let m = StartupMessage::new(pairs(&[("user", "a\0database"), ("database", "x")]));
        assert!(matches!(m.validate(), Err(WireError::ContainsNul { .. })));
        assert!(StartupMessage::new(pairs(&[("", "x")])).validate().is_err());
        assert!(StartupMessage::new(pairs(&[("user", "x")]))
            .validate()
            .is_ok());
    }

    #[test]
    fn random_bodies_never_panic() {
        let mut rng = XorShift::new(77);
        let sample = b"user\0alice\0database\0app\0\0";
        let mut parsed = 0;
        for i in 0..3000 {
            let body = if i % 4 == 0 {
                rng.bytes_biased(40)
            } else {
                rng.mutate(sample)
            };
            if let Ok(m) = StartupMessage::parse(PROTOCOL_3_0, &body) {
                parsed += 1;
                assert!(m.validate().is_ok());
                assert_eq!(&m.encode()[8..], &body[..], "byte-exact round trip");
            }
        }
        assert!(parsed > 50, "{parsed}");
    }
}
