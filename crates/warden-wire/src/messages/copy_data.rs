//! CopyData: a chunk of COPY payload, sent by either side.

use std::fmt;

use bytes::Bytes;

use crate::buf::frame_bytes;
use crate::messages::{Message, Side};
use crate::{tags, Frame, WireError};

/// A chunk of COPY data. Usually forwarded as its frame without parsing; parse it only to
/// record or mask. `Debug` shows the size only.
#[derive(Clone, PartialEq, Eq)]
pub struct CopyData {
    /// The payload, a zero-copy slice of the frame.
    pub data: Bytes,
}

impl Message for CopyData {
    const TAG: u8 = tags::frontend::COPY_DATA;
    const NAME: &'static str = "CopyData";
    const SENT_BY: &'static [Side] = &[Side::Frontend, Side::Backend];

    fn parse(frame: &Frame) -> Result<Self, WireError> {
        Ok(CopyData {
            data: frame.body_bytes(),
        })
    }

    fn encode(&self) -> Bytes {
        frame_bytes(Self::TAG, self.data.len(), |b| {
            b.extend_from_slice(&self.data)
        })
    }
}

impl fmt::Debug for CopyData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CopyData")
            .field("len", &self.data.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::check_parser;

    #[test]
    fn round_trips_and_matches_postgres_protocol() {
        let m = CopyData {
            data: Bytes::from_static(b"1\talice\n"),
        };
        let mut expected = bytes::BytesMut::new();
        postgres_protocol::message::frontend::CopyData::new(&b"1\talice\n"[..])
            .unwrap()
            .write(&mut expected);
        assert_eq!(&m.encode()[..], &expected[..]);
        assert_eq!(CopyData::from_frame(&m.to_frame()).unwrap(), m);
        assert_eq!(tags::backend::COPY_DATA, CopyData::TAG);
    }

    #[test]
    fn payload_is_a_slice_of_the_frame() {
        let frame = Frame::new(b'd', b"abc");
        let m = CopyData::from_frame(&frame).unwrap();
        assert_eq!(m.data.as_ptr(), frame.raw()[5..].as_ptr());
    }

    #[test]
    fn random_bodies_never_panic() {
        assert!(check_parser::<CopyData>(&[b"x", b""], true) > 1000);
    }
}
