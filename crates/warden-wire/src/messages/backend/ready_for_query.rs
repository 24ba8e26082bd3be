//! ReadyForQuery: the server is idle and reports the transaction status.

use bytes::Bytes;

use crate::buf::Reader;
use crate::messages::{Message, Side};
use crate::{tags, Frame, WireError};

/// Transaction status carried by ReadyForQuery.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TransactionStatus {
    /// Not in a transaction block (`'I'`).
    Idle,
    /// In a transaction block (`'T'`).
    InBlock,
    /// In a failed transaction block; queries are rejected until it ends (`'E'`).
    Failed,
}

impl TransactionStatus {
    /// The wire byte.
    pub fn as_byte(self) -> u8 {
        match self {
            TransactionStatus::Idle => b'I',
            TransactionStatus::InBlock => b'T',
            TransactionStatus::Failed => b'E',
        }
    }
}

/// The server finished the previous request and waits for the next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadyForQuery {
    /// Where the session stands transaction-wise.
    pub status: TransactionStatus,
}

impl Message for ReadyForQuery {
    const TAG: u8 = tags::backend::READY_FOR_QUERY;
    const NAME: &'static str = "ReadyForQuery";
    const SENT_BY: &'static [Side] = &[Side::Backend];

    fn parse(frame: &Frame) -> Result<Self, WireError> {
        let mut r = Reader::new(frame.body());
        let status = match r.u8("transaction status")? {
            b'I' => TransactionStatus::Idle,
            b'T' => TransactionStatus::InBlock,
            b'E' => TransactionStatus::Failed,
            _ => return Err(WireError::malformed("unknown transaction status")),
        };
        r.finish("bytes after the transaction status")?;
        Ok(ReadyForQuery { status })
    }

    fn encode(&self) -> Bytes {
        Bytes::copy_from_slice(&[Self::TAG, 0, 0, 0, 5, self.status.as_byte()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::check_parser;

    #[test]
    fn round_trips() {
        for (status, byte) in [
            (TransactionStatus::Idle, b'I'),
            (TransactionStatus::InBlock, b'T'),
            (TransactionStatus::Failed, b'E'),
        ] {
            let m = ReadyForQuery { status };
            assert_eq!(&m.encode()[..], &[b'Z', 0, 0, 0, 5, byte]);
            assert_eq!(ReadyForQuery::from_frame(&m.to_frame()).unwrap(), m);
        }
    }

    #[test]
    fn rejects_malformed_bodies() {
        for body in [&b""[..], b"X", b"i", b"II"] {
            assert!(
                matches!(
                    ReadyForQuery::from_frame(&Frame::new(b'Z', body)),
                    Err(WireError::Malformed { .. })
                ),
                "{body:?}"
            );
        }
    }

    #[test]
    fn random_bodies_never_panic() {
        assert!(check_parser::<ReadyForQuery>(&[b"I", b"T", b"E"], true) > 50);
    }
}
