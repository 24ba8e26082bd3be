//! BackendKeyData: the process id and secret key a client needs to cancel its queries.

use std::fmt;

use bytes::{BufMut, Bytes};

use crate::buf::{frame_bytes, Reader};
use crate::messages::{Message, Side};
use crate::{tags, Frame, WireError, MAX_CANCEL_KEY_LEN, MIN_CANCEL_KEY_LEN};

/// Cancellation key of a session. The key is 4 bytes in protocol 3.0 and 4 to 256 bytes in
/// 3.2. `Debug` hides the key.
#[derive(Clone, PartialEq, Eq)]
pub struct BackendKeyData {
    /// The backend's process id (or the id Warden shows its client).
    pub process_id: i32,
    /// The secret that authorises a CancelRequest.
    pub secret_key: Vec<u8>,
}

impl BackendKeyData {
    /// Key data for `process_id` with `secret_key` (4 bytes for protocol 3.0 clients).
    pub fn new(process_id: i32, secret_key: Vec<u8>) -> Self {
        BackendKeyData {
            process_id,
            secret_key,
        }
    }
}

impl Message for BackendKeyData {
    const TAG: u8 = tags::backend::BACKEND_KEY_DATA;
    const NAME: &'static str = "BackendKeyData";
    const SENT_BY: &'static [Side] = &[Side::Backend];

    fn parse(frame: &Frame) -> Result<Self, WireError> {
        let mut r = Reader::new(frame.body());
        let process_id = r.i32("process id")?;
        let secret_key = r.rest();
        if !(MIN_CANCEL_KEY_LEN..=MAX_CANCEL_KEY_LEN).contains(&secret_key.len()) {
            return Err(WireError::malformed(
                "BackendKeyData secret key must be 4 to 256 bytes",
            ));
        }
        Ok(BackendKeyData {
            process_id,
            secret_key: secret_key.to_vec(),
        })
    }

    fn encode(&self) -> Bytes {
        frame_bytes(Self::TAG, 4 + self.secret_key.len(), |b| {
            b.put_i32(self.process_id);
            b.extend_from_slice(&self.secret_key);
        })
    }
}

impl fmt::Debug for BackendKeyData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackendKeyData")
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
    use crate::testutil::check_parser;
    use postgres_protocol::message::backend::Message as PgMessage;

    #[test]
    fn round_trips_and_postgres_protocol_agrees() {
        let k = BackendKeyData {
            process_id: 4242,
            secret_key: vec![0, 0, 1, 2],
        };
        assert_eq!(BackendKeyData::from_frame(&k.to_frame()).unwrap(), k);
        let mut buf = bytes::BytesMut::from(&k.encode()[..]);
        let Some(PgMessage::BackendKeyData(m)) = PgMessage::parse(&mut buf).unwrap() else {
            panic!("not BackendKeyData");
        };
        assert_eq!((m.process_id(), m.secret_key()), (4242, 0x0102));
    }

    #[test]
    fn accepts_protocol_3_2_keys() {
        let k = BackendKeyData {
            process_id: 1,
            secret_key: vec![7; 256],
        };
        assert_eq!(BackendKeyData::from_frame(&k.to_frame()).unwrap(), k);
    }

    #[test]
    fn rejects_bad_key_lengths() {
        for len in [0usize, 3, 4, 7, 4 + 257] {
            assert!(
                matches!(
                    BackendKeyData::from_frame(&Frame::new(b'K', &vec![0; len])),
                    Err(WireError::Malformed { .. })
                ),
                "{len}"
            );
        }
    }

    #[test]
    fn debug_hides_the_key() {
        let k = BackendKeyData {
            process_id: 9,
            secret_key: vec![0x5a, 0x5a, 0x5a, 0x5a],
        };
        let dbg = format!("{k:?}");
        assert!(!dbg.contains("90"), "{dbg}");
    }

    #[test]
    fn random_bodies_never_panic() {
        assert!(check_parser::<BackendKeyData>(&[b"\0\0\0\x01abcd"], true) > 50);
    }
}
