//! The startup phase: untagged packets a client sends before the first tagged message.
//!
//! A client may send an SSLRequest or GSSENCRequest first, then (after the answer byte and
//! possibly a TLS handshake) a StartupMessage; a CancelRequest arrives on a connection of
//! its own. [`StartupCodec`] is stateless, so it decodes any of these in any order and the
//! session engine decides which are legal when.

use bytes::{Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::buf::Reader;
use crate::{
    CancelRequest, StartupMessage, WireError, CANCEL_REQUEST_CODE, GSSENC_REQUEST_CODE,
    MAX_STARTUP_LEN, SSL_REQUEST_CODE,
};

/// Smallest startup packet: length plus code.
const MIN_STARTUP_LEN: u32 = 8;

/// One decoded startup-phase packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StartupFrame {
    /// A StartupMessage with protocol 3.x and its parameters.
    Startup(StartupMessage),
    /// The client asks for TLS; answer with one byte (`'S'` or `'N'`).
    SslRequest,
    /// The client asks for GSSAPI encryption; Warden answers `'N'`.
    GssEncRequest,
    /// The client asks to cancel the query running on another session.
    Cancel(CancelRequest),
}

impl StartupFrame {
    /// Parses a packet given without its length field (code first).
    pub fn parse(packet: &[u8]) -> Result<StartupFrame, WireError> {
        let mut r = Reader::new(packet);
        let code = r.u32("startup packet code")?;
        match code {
            SSL_REQUEST_CODE => {
                r.finish("SSLRequest has trailing bytes")?;
                Ok(StartupFrame::SslRequest)
            }
            GSSENC_REQUEST_CODE => {
                r.finish("GSSENCRequest has trailing bytes")?;
                Ok(StartupFrame::GssEncRequest)
            }
            CANCEL_REQUEST_CODE => Ok(StartupFrame::Cancel(CancelRequest::parse(r.rest())?)),
            // Any 3.x is accepted here: a minor version newer than the session supports is
            // answered with NegotiateProtocolVersion, which needs the parsed parameters.
            protocol if protocol >> 16 == 3 => Ok(StartupFrame::Startup(StartupMessage::parse(
                protocol,
                r.rest(),
            )?)),
            other => Err(WireError::UnsupportedProtocol(other)),
        }
    }

    /// The packet on the wire, length included.
    pub fn encode(&self) -> Bytes {
        match self {
            StartupFrame::Startup(m) => m.encode(),
            StartupFrame::Cancel(c) => c.encode(),
            StartupFrame::SslRequest => Bytes::copy_from_slice(&code_only(SSL_REQUEST_CODE)),
            StartupFrame::GssEncRequest => Bytes::copy_from_slice(&code_only(GSSENC_REQUEST_CODE)),
        }
    }
}

/// An 8-byte packet made of its length and a code.
fn code_only(code: u32) -> [u8; 8] {
    let mut out = [0u8; 8];
    let (len, rest) = out.split_at_mut(4);
    len.copy_from_slice(&8u32.to_be_bytes());
    rest.copy_from_slice(&code.to_be_bytes());
    out
}

/// Decodes startup-phase packets (length at most [`MAX_STARTUP_LEN`]) and encodes them.
#[derive(Clone, Copy, Debug, Default)]
pub struct StartupCodec;

impl StartupCodec {
    /// A startup codec.
    pub fn new() -> Self {
        StartupCodec
    }
}

impl Decoder for StartupCodec {
    type Item = StartupFrame;
    type Error = WireError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<StartupFrame>, WireError> {
        let Some(len) = src.get(..4) else {
            return Ok(None);
        };
        let len = u32::from_be_bytes(len.try_into().map_err(|_| WireError::malformed("length"))?);
        if len < MIN_STARTUP_LEN {
            return Err(WireError::LengthTooSmall {
                tag: 0,
                len,
                min: MIN_STARTUP_LEN,
            });
        }
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        if len > MAX_STARTUP_LEN {
            return Err(WireError::TooLarge {
                tag: 0,
                len,
                max: MAX_STARTUP_LEN,
            });
        }
        if src.len() < len {
            src.reserve(len - src.len());
            return Ok(None);
        }
        let packet = src.split_to(len);
        StartupFrame::parse(packet.get(4..).unwrap_or_default()).map(Some)
    }
}

impl Encoder<StartupFrame> for StartupCodec {
    type Error = WireError;

    fn encode(&mut self, frame: StartupFrame, dst: &mut BytesMut) -> Result<(), WireError> {
        dst.extend_from_slice(&frame.encode());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::XorShift;
    use crate::{PROTOCOL_3_0, PROTOCOL_3_2};

    fn decode(input: &[u8]) -> Result<Option<StartupFrame>, WireError> {
        StartupCodec.decode(&mut BytesMut::from(input))
    }

    fn startup_bytes_for(protocol: u32, pairs: &[(&str, &str)]) -> Vec<u8> {
        let mut body = protocol.to_be_bytes().to_vec();
        for (k, v) in pairs {
            body.extend_from_slice(k.as_bytes());
            body.push(0);
            body.extend_from_slice(v.as_bytes());
            body.push(0);
        }
        body.push(0);
        let mut out = ((body.len() + 4) as u32).to_be_bytes().to_vec();
        out.extend_from_slice(&body);
        out
    }

    #[test]
    fn decodes_a_psql_startup_message() {
        let bytes = startup_bytes_for(
            PROTOCOL_3_0,
            &[
                ("user", "alice"),
                ("database", "app"),
                ("application_name", "psql"),
            ],
        );
        let Some(StartupFrame::Startup(m)) = decode(&bytes).unwrap() else {
            panic!("not a startup message");
        };
        assert_eq!(m.protocol, PROTOCOL_3_0);
        assert_eq!(m.user(), Some("alice"));
        assert_eq!(m.database(), Some("app"));
        assert_eq!(m.get("application_name"), Some("psql"));
        assert_eq!(&m.encode()[..], &bytes[..]);
    }

    #[test]
    fn accepts_protocol_3_2_and_rejects_other_majors() {
        let bytes = startup_bytes_for(PROTOCOL_3_2, &[("user", "u")]);
        assert!(matches!(
            decode(&bytes).unwrap(),
            Some(StartupFrame::Startup(StartupMessage {
                protocol: PROTOCOL_3_2,
                ..
            }))
        ));
        for protocol in [2 << 16, 4 << 16, 0, 1234 << 16] {
            let bytes = startup_bytes_for(protocol, &[("user", "u")]);
            assert!(
                matches!(decode(&bytes), Err(WireError::UnsupportedProtocol(p)) if p == protocol),
                "{protocol}"
            );
        }
    }

    #[test]
    fn decodes_ssl_gssenc_and_cancel_requests() {
        assert_eq!(
            decode(&code_only(SSL_REQUEST_CODE)).unwrap(),
            Some(StartupFrame::SslRequest)
        );
        assert_eq!(
            decode(&code_only(GSSENC_REQUEST_CODE)).unwrap(),
            Some(StartupFrame::GssEncRequest)
        );
        let cancel = b"\0\0\0\x10\x04\xd2\x16\x2e\0\0\x30\x39\xde\xad\xbe\xef";
        assert_eq!(
            decode(cancel).unwrap(),
            Some(StartupFrame::Cancel(CancelRequest {
                process_id: 12345,
                secret_key: vec![0xde, 0xad, 0xbe, 0xef],
            }))
        );
        for frame in [
            StartupFrame::SslRequest,
            StartupFrame::GssEncRequest,
            StartupFrame::Cancel(CancelRequest {
                process_id: 7,
                secret_key: vec![9; 32],
            }),
        ] {
            assert_eq!(decode(&frame.encode()).unwrap(), Some(frame));
        }
    }

    #[test]
    fn ssl_request_with_trailing_bytes_is_malformed() {
        let mut bytes = b"\0\0\0\x0c".to_vec();
        bytes.extend_from_slice(&SSL_REQUEST_CODE.to_be_bytes());
        bytes.extend_from_slice(b"junk");
        assert!(matches!(decode(&bytes), Err(WireError::Malformed { .. })));
    }

    #[test]
    fn rejects_bad_lengths_before_reserving() {
        for len in [0u32, 3, 4, 7] {
            let mut buf = BytesMut::from(&len.to_be_bytes()[..]);
            assert!(matches!(
                StartupCodec.decode(&mut buf),
                Err(WireError::LengthTooSmall { tag: 0, min: 8, len: l }) if l == len
            ));
        }
        for len in [10_001u32, 1 << 31, u32::MAX] {
            let mut buf = BytesMut::from(&len.to_be_bytes()[..]);
            let cap = buf.capacity();
            assert!(matches!(
                StartupCodec.decode(&mut buf),
                Err(WireError::TooLarge {
                    tag: 0,
                    max: MAX_STARTUP_LEN,
                    ..
                })
            ));
            assert_eq!(buf.capacity(), cap);
        }
    }

    #[test]
    fn waits_for_the_whole_packet() {
        let bytes = startup_bytes_for(PROTOCOL_3_0, &[("user", "bob")]);
        let mut buf = BytesMut::new();
        for (i, b) in bytes.iter().enumerate() {
            buf.extend_from_slice(&[*b]);
            let out = StartupCodec.decode(&mut buf).unwrap();
            assert_eq!(out.is_some(), i == bytes.len() - 1);
        }
        assert!(buf.is_empty());
    }

    #[test]
    fn random_packets_never_panic() {
        let mut rng = XorShift::new(0xc0de);
        let valid = [
            startup_bytes_for(PROTOCOL_3_0, &[("user", "u"), ("database", "d")]),
            code_only(SSL_REQUEST_CODE).to_vec(),
            StartupFrame::Cancel(CancelRequest {
                process_id: 1,
                secret_key: vec![1, 2, 3, 4],
            })
            .encode()
            .to_vec(),
        ];
        let mut decoded = 0;
        for i in 0..4000 {
            let input = if i % 3 == 0 {
                rng.bytes_biased(40)
            } else {
                let sample = &valid[rng.below(valid.len())];
                // Keep the length field honest half the time so bodies get exercised.
                let mut m = rng.mutate(sample.get(4..).unwrap_or_default());
                if rng.below(2) == 0 {
                    let mut with_len = ((m.len() + 4) as u32).to_be_bytes().to_vec();
                    with_len.append(&mut m);
                    with_len
                } else {
                    rng.mutate(sample)
                }
            };
            if let Ok(Some(frame)) = decode(&input) {
                decoded += 1;
                assert_eq!(decode(&frame.encode()).unwrap().as_ref(), Some(&frame));
            }
        }
        assert!(decoded > 100, "only {decoded} decoded");
    }
}
