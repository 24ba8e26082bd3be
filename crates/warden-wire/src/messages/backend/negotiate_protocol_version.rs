//! NegotiateProtocolVersion: the server speaks an older minor version or does not know some
//! `_pq_.` protocol options the client asked for.

use bytes::{BufMut, Bytes};

use crate::buf::{frame_bytes, put_cstr, Reader};
use crate::messages::{Message, Side};
use crate::{tags, Frame, WireError};

/// Sent right after a StartupMessage whose minor version or `_pq_.` options the server
/// does not support; the session continues with `newest_minor`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NegotiateProtocolVersion {
    /// Newest minor protocol version the server supports for the requested major.
    pub newest_minor: u32,
    /// Protocol options (`_pq_.…`) the server did not recognise.
    pub unrecognized_options: Vec<String>,
}

impl NegotiateProtocolVersion {
    /// Tells the client to use minor version `newest_minor` and that `unrecognized_options`
    /// are not supported.
    pub fn new(newest_minor: u32, unrecognized_options: Vec<String>) -> Self {
        NegotiateProtocolVersion {
            newest_minor,
            unrecognized_options,
        }
    }
}

impl Message for NegotiateProtocolVersion {
    const TAG: u8 = tags::backend::NEGOTIATE_PROTOCOL_VERSION;
    const NAME: &'static str = "NegotiateProtocolVersion";
    const SENT_BY: &'static [Side] = &[Side::Backend];

    fn parse(frame: &Frame) -> Result<Self, WireError> {
        let mut r = Reader::new(frame.body());
        let newest_minor = r.u32("newest minor version")?;
        let count = r.u32("unrecognized option count")?;
        // Each option takes at least its NUL, so a count above the bytes left is a lie;
        // checking first keeps a hostile count from sizing an allocation.
        let count = usize::try_from(count)
            .ok()
            .filter(|c| *c <= r.remaining())
            .ok_or(WireError::malformed(
                "option count exceeds the message length",
            ))?;
        let mut unrecognized_options = Vec::with_capacity(count);
        for _ in 0..count {
            unrecognized_options.push(r.lossy("option name")?);
        }
        r.finish("bytes after the option names")?;
        Ok(NegotiateProtocolVersion {
            newest_minor,
            unrecognized_options,
        })
    }

    fn encode(&self) -> Bytes {
        let hint = 8 + self
            .unrecognized_options
            .iter()
            .map(|o| o.len() + 1)
            .sum::<usize>();
        frame_bytes(Self::TAG, hint, |b| {
            b.put_u32(self.newest_minor);
            // Bounded by the startup packet that carried the options (10 000 bytes).
            b.put_u32(u32::try_from(self.unrecognized_options.len()).unwrap_or(u32::MAX));
            for o in &self.unrecognized_options {
                put_cstr(b, o.as_bytes());
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::check_parser;

    #[test]
    fn round_trips() {
        let n = NegotiateProtocolVersion {
            newest_minor: 0,
            unrecognized_options: vec!["_pq_.compression".into()],
        };
        assert_eq!(&n.encode()[5..], b"\0\0\0\0\0\0\0\x01_pq_.compression\0");
        assert_eq!(
            NegotiateProtocolVersion::from_frame(&n.to_frame()).unwrap(),
            n
        );
    }

    #[test]
    fn rejects_malformed_bodies_and_hostile_counts() {
        for body in [
            &b""[..],
            b"\0\0\0\0",
            b"\0\0\0\0\0\0\0\x01",       // one option announced, none present
            b"\0\0\0\0\xff\xff\xff\xff", // 4 billion options announced
            b"\0\0\0\0\0\0\0\x01opt",    // option without NUL
            b"\0\0\0\0\0\0\0\0x",        // trailing byte
        ] {
            assert!(
                matches!(
                    NegotiateProtocolVersion::from_frame(&Frame::new(b'v', body)),
                    Err(WireError::Malformed { .. })
                ),
                "{body:?}"
            );
        }
    }

    #[test]
    fn random_bodies_never_panic() {
        let samples: [&[u8]; 2] = [b"\0\0\0\0\0\0\0\x02a\0b\0", b"\0\0\0\x02\0\0\0\0"];
        assert!(check_parser::<NegotiateProtocolVersion>(&samples, false) > 50);
    }
}
