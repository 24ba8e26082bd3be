//! Authentication (`'R'`): the server's authentication requests and results.

use bytes::{BufMut, Bytes};

use crate::buf::{frame_bytes, put_cstr, Reader};
use crate::messages::{Message, Side};
use crate::{tags, Frame, WireError};

const OK: i32 = 0;
const CLEARTEXT_PASSWORD: i32 = 3;
const MD5_PASSWORD: i32 = 5;
const SASL: i32 = 10;
const SASL_CONTINUE: i32 = 11;
const SASL_FINAL: i32 = 12;

/// The authentication messages Warden speaks. Kerberos, GSSAPI and SSPI requests are
/// rejected with [`WireError::UnsupportedAuthentication`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Authentication {
    /// Authentication succeeded.
    Ok,
    /// Send the password in clear (over TLS, as Warden asks its clients for their token).
    CleartextPassword,
    /// Send `md5(md5(password + user) + salt)`.
    Md5Password {
        /// The per-connection salt.
        salt: [u8; 4],
    },
    /// Start a SASL exchange with one of these mechanisms (e.g. `SCRAM-SHA-256`).
    Sasl {
        /// Mechanisms in the server's order of preference; never empty.
        mechanisms: Vec<String>,
    },
    /// A SASL challenge (SCRAM's server-first message).
    SaslContinue(Bytes),
    /// The SASL outcome (SCRAM's server-final message with the server signature).
    SaslFinal(Bytes),
}

impl Message for Authentication {
    const TAG: u8 = tags::backend::AUTHENTICATION;
    const NAME: &'static str = "Authentication";
    const SENT_BY: &'static [Side] = &[Side::Backend];

    fn parse(frame: &Frame) -> Result<Self, WireError> {
        let body = frame.body_bytes();
        let mut r = Reader::new(&body);
        let message = match r.i32("authentication code")? {
            OK => Authentication::Ok,
            CLEARTEXT_PASSWORD => Authentication::CleartextPassword,
            MD5_PASSWORD => {
                let salt = r.bytes(4, "MD5 salt")?;
                let salt = salt
                    .try_into()
                    .map_err(|_| WireError::malformed("MD5 salt"))?;
                Authentication::Md5Password { salt }
            }
            SASL => {
                let mut mechanisms = Vec::new();
                loop {
                    let name = r.str("SASL mechanism")?;
                    if name.is_empty() {
                        break;
                    }
                    mechanisms.push(name.to_owned());
                }
                if mechanisms.is_empty() {
                    return Err(WireError::malformed(
                        "AuthenticationSASL lists no mechanism",
                    ));
                }
                Authentication::Sasl { mechanisms }
            }
            SASL_CONTINUE => {
                Authentication::SaslContinue(body.slice(r.range(r.remaining(), "SASL data")?))
            }
            SASL_FINAL => {
                Authentication::SaslFinal(body.slice(r.range(r.remaining(), "SASL data")?))
            }
            other => return Err(WireError::UnsupportedAuthentication(other)),
        };
        r.finish("bytes after the authentication request")?;
        Ok(message)
    }

    fn encode(&self) -> Bytes {
        let hint = match self {
            Authentication::Sasl { mechanisms } => {
                mechanisms.iter().map(|m| m.len() + 1).sum::<usize>() + 5
            }
            Authentication::SaslContinue(d) | Authentication::SaslFinal(d) => d.len() + 4,
            _ => 8,
        };
        frame_bytes(Self::TAG, hint, |b| match self {
            Authentication::Ok => b.put_i32(OK),
            Authentication::CleartextPassword => b.put_i32(CLEARTEXT_PASSWORD),
            Authentication::Md5Password { salt } => {
                b.put_i32(MD5_PASSWORD);
                b.extend_from_slice(salt);
            }
            Authentication::Sasl { mechanisms } => {
                b.put_i32(SASL);
                for m in mechanisms {
                    put_cstr(b, m.as_bytes());
                }
                b.put_u8(0);
            }
            Authentication::SaslContinue(data) => {
                b.put_i32(SASL_CONTINUE);
                b.extend_from_slice(data);
            }
            Authentication::SaslFinal(data) => {
                b.put_i32(SASL_FINAL);
                b.extend_from_slice(data);
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::check_parser;
    use postgres_protocol::message::backend::Message as PgMessage;

    fn all() -> Vec<Authentication> {
        vec![
            Authentication::Ok,
            Authentication::CleartextPassword,
            Authentication::Md5Password { salt: [1, 2, 3, 4] },
            Authentication::Sasl {
                mechanisms: vec!["SCRAM-SHA-256-PLUS".into(), "SCRAM-SHA-256".into()],
            },
            Authentication::SaslContinue(Bytes::from_static(b"r=abc,s=c2FsdA==,i=4096")),
            Authentication::SaslFinal(Bytes::from_static(b"v=sig")),
        ]
    }

    #[test]
    fn round_trips() {
        for a in all() {
            assert_eq!(Authentication::from_frame(&a.to_frame()).unwrap(), a);
        }
        assert_eq!(&Authentication::Ok.encode()[..], b"R\0\0\0\x08\0\0\0\0");
    }

    #[test]
    fn postgres_protocol_reads_our_encoding() {
        for a in all() {
            let mut buf = bytes::BytesMut::from(&a.encode()[..]);
            let parsed = PgMessage::parse(&mut buf).unwrap().unwrap();
            match (&a, parsed) {
                (Authentication::Ok, PgMessage::AuthenticationOk) => {}
                (Authentication::CleartextPassword, PgMessage::AuthenticationCleartextPassword) => {
                }
                (Authentication::Md5Password { salt }, PgMessage::AuthenticationMd5Password(m)) => {
                    assert_eq!(&m.salt(), salt)
                }
                // Its mechanism iterator needs the `fallible-iterator` crate; the variant
                // match plus our own round trip cover this one.
                (Authentication::Sasl { .. }, PgMessage::AuthenticationSasl(_)) => {}
                (Authentication::SaslContinue(d), PgMessage::AuthenticationSaslContinue(m)) => {
                    assert_eq!(m.data(), &d[..])
                }
                (Authentication::SaslFinal(d), PgMessage::AuthenticationSaslFinal(m)) => {
                    assert_eq!(m.data(), &d[..])
                }
                (ours, _) => panic!("postgres-protocol disagrees on {ours:?}"),
            }
        }
    }

    #[test]
    fn rejects_unsupported_methods_with_a_typed_error() {
        for code in [2i32, 6, 7, 8, 9, 13, -1] {
            let err =
                Authentication::from_frame(&Frame::new(b'R', &code.to_be_bytes())).unwrap_err();
            assert!(
                matches!(err, WireError::UnsupportedAuthentication(c) if c == code),
                "{code}"
            );
        }
    }

    #[test]
    fn rejects_malformed_bodies() {
        for body in [
            &b""[..],
            b"\0\0",
            b"\0\0\0\0\0",                     // Ok with trailing byte
            b"\0\0\0\x05\x01\x02\x03",         // short salt
            b"\0\0\0\x05\x01\x02\x03\x04\x05", // long salt
            b"\0\0\0\x0a\0",                   // SASL with no mechanisms
            b"\0\0\0\x0aSCRAM\0",              // SASL list without terminator
            b"\0\0\0\x0aSCRAM",                // SASL name without NUL
            b"\0\0\0\x0aSCRAM\0\0x",           // trailing byte
        ] {
            assert!(
                matches!(
                    Authentication::from_frame(&Frame::new(b'R', body)),
                    Err(WireError::Malformed { .. })
                ),
                "{body:?}"
            );
        }
        assert!(matches!(
            Authentication::from_frame(&Frame::new(b'R', b"\0\0\0\x0a\xff\0\0")),
            Err(WireError::InvalidUtf8 { .. })
        ));
    }

    #[test]
    fn random_bodies_never_panic() {
        let samples: Vec<Bytes> = all().iter().map(|a| a.encode().slice(5..)).collect();
        let samples: Vec<&[u8]> = samples.iter().map(|b| &b[..]).collect();
        assert!(check_parser::<Authentication>(&samples, true) > 50);
    }
}
