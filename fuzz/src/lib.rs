//! Shared checks for the fuzz targets: parsing never panics, and whatever parses
//! re-encodes to a frame that parses to the same message.
#![forbid(unsafe_code)]

use std::fmt::Debug;

use bytes::BytesMut;
use tokio_util::codec::Decoder;
use warden_wire::{Frame, FrameCodec, Message, StartupCodec};

/// Parses `body` as an `M`; when it parses, checks decode -> encode -> decode is stable and,
/// with `exact`, that encoding reproduces the input bytes (true for every message whose
/// text fields are validated rather than decoded leniently). Returns whether `body` parsed.
pub fn round_trip<M: Message + PartialEq + Debug>(body: &[u8], exact: bool) -> bool {
    let frame = Frame::new(M::TAG, body);
    let Ok(message) = M::from_frame(&frame) else {
        return false;
    };
    let encoded = message.encode();
    let again = match Frame::from_raw(encoded.clone(), usize::MAX) {
        Ok(f) => f,
        Err(e) => panic!("{} encoded an invalid frame: {e}", M::NAME),
    };
    match M::from_frame(&again) {
        Ok(reparsed) => assert_eq!(reparsed, message, "{} round trip", M::NAME),
        Err(e) => panic!("{} re-encoding of {message:?} does not parse: {e}", M::NAME),
    }
    if exact {
        assert_eq!(
            &encoded[..],
            &frame.raw()[..],
            "{} exact round trip",
            M::NAME
        );
    }
    true
}

/// Feeds `data` to a [`FrameCodec`] (limit from the first byte, so small limits get hit)
/// and checks every frame against [`warden_wire::scan_frame`] and [`Frame::from_raw`].
/// Returns how many frames decoded.
pub fn frame_codec(data: &[u8]) -> usize {
    let Some((&limit, data)) = data.split_first() else {
        return 0;
    };
    let max_len = usize::from(limit) * 64 + 4;
    let mut codec = FrameCodec::with_max_len(max_len);
    let mut buf = BytesMut::from(data);
    let mut offset = 0;
    let mut frames = 0;
    loop {
        let scanned = warden_wire::scan_frame(data.get(offset..).unwrap_or_default(), max_len);
        match codec.decode(&mut buf) {
            Ok(Some(frame)) => {
                assert_eq!(
                    scanned.ok().flatten(),
                    Some((frame.tag(), frame.wire_len()))
                );
                let again = Frame::from_raw(frame.raw().clone(), max_len);
                assert_eq!(again.ok().as_ref(), Some(&frame));
                offset += frame.wire_len();
                frames += 1;
            }
            Ok(None) => {
                assert!(matches!(scanned, Ok(None)));
                return frames;
            }
            Err(_) => {
                assert!(scanned.is_err());
                return frames;
            }
        }
    }
}

/// Feeds `data` to a [`StartupCodec`] and checks each decoded packet re-encodes to itself.
/// Returns how many packets decoded.
pub fn startup_codec(data: &[u8]) -> usize {
    let mut codec = StartupCodec::new();
    let mut buf = BytesMut::from(data);
    let mut packets = 0;
    while let Ok(Some(frame)) = codec.decode(&mut buf) {
        let mut again = BytesMut::from(&frame.encode()[..]);
        match StartupCodec::new().decode(&mut again) {
            Ok(Some(reparsed)) => assert_eq!(reparsed, frame),
            other => panic!("re-encoding of {frame:?} did not decode: {other:?}"),
        }
        assert!(again.is_empty());
        packets += 1;
    }
    packets
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The harness itself must accept valid input (a target that rejects everything fuzzes
    /// nothing). `cargo test` here runs without libFuzzer.
    #[test]
    fn helpers_accept_valid_input() {
        assert!(round_trip::<warden_wire::Query>(b"select 1\0", true));
        assert!(!round_trip::<warden_wire::Query>(b"select 1", true));
        assert!(round_trip::<warden_wire::DataRow>(
            b"\0\x01\0\0\0\x01x",
            true
        ));
        assert!(round_trip::<warden_wire::ErrorResponse>(
            b"Mx\xff\0\0",
            false
        ));
        let mut stream = vec![0xff];
        stream.extend_from_slice(b"Q\0\0\0\x0dselect 1\0S\0\0\0\x04Z\0");
        assert_eq!(frame_codec(&stream), 2);
        let packets = b"\0\0\0\x08\x04\xd2\x16\x2f\0\0\0\x10\0\x03\0\0user\0u\0\0";
        assert_eq!(startup_codec(packets), 2);
    }
}
