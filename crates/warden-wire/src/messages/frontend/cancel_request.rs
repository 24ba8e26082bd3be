//! CancelRequest: sent on a fresh connection to cancel the query of another session.

use std::fmt;

use bytes::{BufMut, Bytes};

use crate::buf::{startup_bytes, Reader};
use crate::{WireError, CANCEL_REQUEST_CODE, MAX_CANCEL_KEY_LEN, MIN_CANCEL_KEY_LEN};

/// A request to cancel the query running in the session identified by the process id and
/// secret key that session's [`BackendKeyData`](crate::BackendKeyData) announced.
///
/// The key is 4 bytes in protocol 3.0 and 4 to 256 bytes in 3.2. The packet does not say
/// which protocol the session uses, so any length in that range is accepted. `Debug` hides
/// the key: it is what authorises the cancel.
#[derive(Clone, PartialEq, Eq)]
pub struct CancelRequest {
    /// The target session's process id (as Warden announced it).
    pub process_id: i32,
    /// The target session's secret key.
    pub secret_key: Vec<u8>,
}

impl CancelRequest {
    /// A cancel request for session `process_id` with `secret_key`.
    pub fn new(process_id: i32, secret_key: Vec<u8>) -> Self {
        CancelRequest {
            process_id,
            secret_key,
        }
    }

    /// Parses the fields after the cancel request code.
    pub fn parse(body: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(body);
        let process_id = r.i32("CancelRequest process id")?;
        let secret_key = r.rest();
        if !(MIN_CANCEL_KEY_LEN..=MAX_CANCEL_KEY_LEN).contains(&secret_key.len()) {
            return Err(WireError::malformed(
                "CancelRequest secret key must be 4 to 256 bytes",
            ));
        }
        Ok(CancelRequest {
            process_id,
            secret_key: secret_key.to_vec(),
        })
    }

    /// The packet on the wire, length and code included.
    pub fn encode(&self) -> Bytes {
        startup_bytes(8 + self.secret_key.len(), |b| {
            b.put_u32(CANCEL_REQUEST_CODE);
            b.put_i32(self.process_id);
            b.extend_from_slice(&self.secret_key);
        })
    }
}

impl fmt::Debug for CancelRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelRequest")
            .field("process_id", &self.process_id)
            .field(
                "secret_key",
                &format_args!("*** ({} bytes)", self.secret_key.len()),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::XorShift;

    #[test]
    fn round_trips_3_0_and_3_2_keys() {
        for key_len in [4, 32, 256] {
            let c = CancelRequest {
                process_id: -5,
                secret_key: (0..key_len).map(|i| i as u8).collect(),
            };
            let raw = c.encode();
            assert_eq!(raw.len(), 12 + key_len);
            assert_eq!(&raw[4..8], &CANCEL_REQUEST_CODE.to_be_bytes());
            assert_eq!(CancelRequest::parse(&raw[8..]).unwrap(), c);
        }
    }

    #[test]
    fn matches_postgres_protocol_encoding() {
        let mut expected = bytes::BytesMut::new();
        postgres_protocol::message::frontend::cancel_request(42, 0x0102_0304, &mut expected);
        let ours = CancelRequest {
            process_id: 42,
            secret_key: vec![1, 2, 3, 4],
        };
        assert_eq!(&ours.encode()[..], &expected[..]);
    }

    #[test]
    fn rejects_bad_key_lengths() {
        for body_len in [0, 3, 4, 7, 4 + 257] {
            assert!(
                matches!(
                    CancelRequest::parse(&vec![1; body_len]),
                    Err(WireError::Malformed { .. })
                ),
                "{body_len}"
            );
        }
    }

    #[test]
    fn debug_hides_the_key() {
        let c = CancelRequest {
            process_id: 1,
            secret_key: vec![0xab; 4],
        };
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("171") && !dbg.contains("ab"), "{dbg}");
    }

    #[test]
    fn random_bodies_never_panic() {
        let mut rng = XorShift::new(3);
        let mut parsed = 0;
        for _ in 0..3000 {
            let body = rng.bytes_biased(300);
            if let Ok(c) = CancelRequest::parse(&body) {
                parsed += 1;
                assert_eq!(&c.encode()[8..], &body[..]);
            }
        }
        assert!(parsed > 100);
    }
}
