//! PasswordMessage: the client's cleartext password, which carries the caller's OIDC token
//! or Warden API key.

use bytes::Bytes;
use warden_types::Secret;

use crate::buf::{frame_bytes, put_cstr, Reader};
use crate::messages::{Message, Side};
use crate::{tags, Frame, WireError};

/// A cleartext password reply (answer to AuthenticationCleartextPassword).
///
/// Also encodes an MD5 reply (`"md5" + hex`) when Warden authenticates to a target. The
/// value is a [`Secret`], so `Debug` prints `***`. The [`Frame`] it was parsed from still
/// holds the bytes: drop it once parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasswordMessage {
    /// The password or token.
    pub password: Secret,
}

impl PasswordMessage {
    /// A password reply carrying `password`.
    pub fn new(password: impl Into<String>) -> Self {
        PasswordMessage {
            password: Secret::new(password),
        }
    }
}

impl Message for PasswordMessage {
    const TAG: u8 = tags::frontend::PASSWORD;
    const NAME: &'static str = "PasswordMessage";
    const SENT_BY: &'static [Side] = &[Side::Frontend];

    fn parse(frame: &Frame) -> Result<Self, WireError> {
        let mut r = Reader::new(frame.body());
        let password = r.str("password")?;
        r.finish("bytes after the password")?;
        Ok(PasswordMessage {
            password: Secret::new(password),
        })
    }

    fn encode(&self) -> Bytes {
        let value = self.password.expose().as_bytes();
        frame_bytes(Self::TAG, value.len() + 1, |b| put_cstr(b, value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::check_parser;

    #[test]
    fn round_trips_and_matches_postgres_protocol() {
        let p = PasswordMessage {
            password: Secret::new("eyJhbGciOiJSUzI1NiJ9.e30.sig"),
        };
        let mut expected = bytes::BytesMut::new();
        postgres_protocol::message::frontend::password_message(
            b"eyJhbGciOiJSUzI1NiJ9.e30.sig",
            &mut expected,
        )
        .unwrap();
        assert_eq!(&p.encode()[..], &expected[..]);
        assert_eq!(PasswordMessage::from_frame(&p.to_frame()).unwrap(), p);
    }

    #[test]
    fn rejects_malformed_bodies_without_echoing_them() {
        for body in [&b""[..], b"hunter2", b"hunter2\0x"] {
            let err = PasswordMessage::from_frame(&Frame::new(b'p', body)).unwrap_err();
            assert!(matches!(err, WireError::Malformed { .. }), "{body:?}");
            assert!(!err.to_string().contains("hunter2"));
        }
        let err = PasswordMessage::from_frame(&Frame::new(b'p', b"hunter\xff\0")).unwrap_err();
        assert!(matches!(err, WireError::InvalidUtf8 { .. }));
        assert!(!format!("{err:?}").contains("hunter"));
    }

    #[test]
    fn debug_hides_the_password() {
        let p = PasswordMessage::from_frame(&Frame::new(b'p', b"hunter2\0")).unwrap();
        assert_eq!(p.password.expose(), "hunter2");
        assert!(!format!("{p:?}").contains("hunter2"));
    }

    #[test]
    fn random_bodies_never_panic() {
        assert!(check_parser::<PasswordMessage>(&[b"token\0", b"\0"], true) > 50);
    }
}
