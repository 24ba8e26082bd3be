//! CopyInResponse, CopyOutResponse and CopyBothResponse: the server starts a COPY.
//!
//! The three share one layout and differ only in tag, so they are defined together here
//! (the one exception to "one message per file").

use bytes::{BufMut, Bytes};

use crate::buf::{frame_bytes, Reader};
use crate::messages::{Message, Side};
use crate::{tags, Frame, WireError};

macro_rules! copy_response {
    ($(#[$doc:meta])* $name:ident, $tag:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub struct $name {
            /// 0 for textual COPY, 1 for binary.
            pub overall_format: i8,
            /// Format code of each column (all equal to `overall_format` in text mode).
            pub column_formats: Vec<i16>,
        }

        impl Message for $name {
            const TAG: u8 = $tag;
            const NAME: &'static str = stringify!($name);
            const SENT_BY: &'static [Side] = &[Side::Backend];

            fn parse(frame: &Frame) -> Result<Self, WireError> {
                let (overall_format, column_formats) = parse_formats(frame)?;
                Ok($name {
                    overall_format,
                    column_formats,
                })
            }

            fn encode(&self) -> Bytes {
                encode_formats($tag, self.overall_format, &self.column_formats)
            }
        }
    };
}

copy_response!(
    /// COPY FROM STDIN started: the client may now send CopyData.
    CopyInResponse,
    tags::backend::COPY_IN_RESPONSE
);
copy_response!(
    /// COPY TO STDOUT started: CopyData follows from the server.
    CopyOutResponse,
    tags::backend::COPY_OUT_RESPONSE
);
copy_response!(
    /// Bidirectional COPY started (streaming replication only).
    CopyBothResponse,
    tags::backend::COPY_BOTH_RESPONSE
);

fn parse_formats(frame: &Frame) -> Result<(i8, Vec<i16>), WireError> {
    let mut r = Reader::new(frame.body());
    let overall = r.i8("COPY format")?;
    let count = usize::from(r.u16("COPY column count")?);
    if count.saturating_mul(2) != r.remaining() {
        return Err(WireError::malformed(
            "COPY column count does not match the message length",
        ));
    }
    let mut formats = Vec::with_capacity(count);
    for _ in 0..count {
        formats.push(r.i16("COPY column format")?);
    }
    Ok((overall, formats))
}

fn encode_formats(tag: u8, overall: i8, formats: &[i16]) -> Bytes {
    frame_bytes(tag, 3 + 2 * formats.len(), |b| {
        b.put_i8(overall);
        // COPY column counts are bounded by PostgreSQL's 1600-column limit.
        b.put_u16(u16::try_from(formats.len()).unwrap_or(u16::MAX));
        for f in formats {
            b.put_i16(*f);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::check_parser;
    use postgres_protocol::message::backend::Message as PgMessage;

    #[test]
    fn round_trips_and_postgres_protocol_agrees() {
        let i = CopyInResponse {
            overall_format: 0,
            column_formats: vec![0, 0],
        };
        assert_eq!(&i.encode()[..], b"G\0\0\0\x0b\0\0\x02\0\0\0\0");
        assert_eq!(CopyInResponse::from_frame(&i.to_frame()).unwrap(), i);
        let o = CopyOutResponse {
            overall_format: 1,
            column_formats: vec![1],
        };
        assert_eq!(CopyOutResponse::from_frame(&o.to_frame()).unwrap(), o);
        let mut buf = bytes::BytesMut::from(&o.encode()[..]);
        let Some(PgMessage::CopyOutResponse(m)) = PgMessage::parse(&mut buf).unwrap() else {
            panic!("not CopyOutResponse");
        };
        assert_eq!(m.format(), 1);
        let b = CopyBothResponse {
            overall_format: 0,
            column_formats: vec![],
        };
        assert_eq!(CopyBothResponse::from_frame(&b.to_frame()).unwrap(), b);
        assert!(CopyInResponse::from_frame(&o.to_frame()).is_err());
    }

    #[test]
    fn rejects_malformed_bodies() {
        for body in [
            &b""[..],
            b"\0",
            b"\0\0",
            b"\0\0\x01",
            b"\0\0\x01\0\0\0",
            b"\0\xff\xff",
        ] {
            assert!(
                matches!(
                    CopyOutResponse::from_frame(&Frame::new(b'H', body)),
                    Err(WireError::Malformed { .. })
                ),
                "{body:?}"
            );
        }
    }

    #[test]
    fn random_bodies_never_panic() {
        let samples: [&[u8]; 1] = [b"\0\0\x02\0\0\0\0"];
        assert!(check_parser::<CopyInResponse>(&samples, true) > 50);
        assert!(check_parser::<CopyOutResponse>(&samples, true) > 50);
        assert!(check_parser::<CopyBothResponse>(&samples, true) > 50);
    }
}
