//! Tagged message framing after startup: [`Frame`], [`FrameCodec`] and [`scan_frame`].
//!
//! A frame is a complete message kept as raw bytes (tag, length, body). Nothing here looks
//! inside the body; the [`messages`](crate::messages) parse it on demand.

use std::fmt;

use bytes::{Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::{WireError, DEFAULT_MAX_MESSAGE_LEN};

/// Bytes of tag plus length field in front of every body.
const HEADER_LEN: usize = 5;

/// The most a decoder reserves ahead of data that has actually arrived. A peer that
/// announces a 64 MiB message and then stalls should not pin 64 MiB; the buffer still grows
/// geometrically as the bytes come in.
const MAX_RESERVE_AHEAD: usize = 256 * 1024;

/// Reads the header of the frame starting at `buf[0]`: `Ok(None)` until 5 bytes are there,
/// then the tag and the frame's total size (tag included), whether or not the rest has
/// arrived. Fails like [`scan_frame`] on a length below 4 or above `max_len`.
pub fn frame_header(buf: &[u8], max_len: usize) -> Result<Option<(u8, usize)>, WireError> {
    let (Some(&tag), Some(len)) = (buf.first(), buf.get(1..HEADER_LEN)) else {
        return Ok(None);
    };
    let len = u32::from_be_bytes(len.try_into().map_err(|_| WireError::malformed("header"))?);
    if len < 4 {
        return Err(WireError::LengthTooSmall { tag, len, min: 4 });
    }
    // Lengths come from a signed Int32; treating them as u32 turns negative ones into huge
    // ones, which the maximum rejects.
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    if len > max_len {
        return Err(WireError::TooLarge {
            tag,
            len,
            max: max_len,
        });
    }
    Ok(Some((tag, len.saturating_add(1))))
}

/// Checks whether a complete, well-sized frame starts at `buf[0]`.
///
/// Returns `Ok(Some((tag, total_len)))` where `total_len` counts the tag byte, `Ok(None)` when
/// more bytes are needed, and an error when the length field is below 4 or above `max_len`
/// (the length field's value: it counts itself but not the tag). Allocates nothing, so the
/// proxy loop can walk a read buffer with it and forward every complete frame in one write.
pub fn scan_frame(buf: &[u8], max_len: usize) -> Result<Option<(u8, usize)>, WireError> {
    Ok(frame_header(buf, max_len)?.filter(|(_, total)| buf.len() >= *total))
}

/// One complete tagged message: tag, length and body as the raw bytes that travel on the wire.
///
/// `Debug` shows the tag and size only, because bodies carry passwords and tokens.
#[derive(Clone, PartialEq, Eq)]
pub struct Frame {
    tag: u8,
    raw: Bytes,
}

impl Frame {
    /// Builds a frame from a tag and a body.
    pub fn new(tag: u8, body: &[u8]) -> Frame {
        let raw = crate::buf::frame_bytes(tag, body.len(), |b| b.extend_from_slice(body));
        Frame { tag, raw }
    }

    /// Wraps raw bytes that must hold exactly one frame whose length field is within
    /// `max_len`.
    pub fn from_raw(raw: Bytes, max_len: usize) -> Result<Frame, WireError> {
        match frame_header(&raw, max_len)? {
            Some((tag, total)) if total == raw.len() => Ok(Frame { tag, raw }),
            Some(_) => Err(WireError::malformed(
                "frame length does not match the bytes given",
            )),
            None => Err(WireError::malformed("frame shorter than its header")),
        }
    }

    /// Wraps bytes produced by one of this crate's encoders.
    pub(crate) fn from_encoded(tag: u8, raw: Bytes) -> Frame {
        Frame { tag, raw }
    }

    /// The message tag.
    pub fn tag(&self) -> u8 {
        self.tag
    }

    /// The whole message: tag, length and body.
    pub fn raw(&self) -> &Bytes {
        &self.raw
    }

    /// The whole message, consuming the frame.
    pub fn into_raw(self) -> Bytes {
        self.raw
    }

    /// The body after tag and length.
    pub fn body(&self) -> &[u8] {
        self.raw.get(HEADER_LEN..).unwrap_or_default()
    }

    /// The body as a zero-copy slice of the frame.
    pub fn body_bytes(&self) -> Bytes {
        if self.raw.len() >= HEADER_LEN {
            self.raw.slice(HEADER_LEN..)
        } else {
            Bytes::new()
        }
    }

    /// Size on the wire, tag included.
    pub fn wire_len(&self) -> usize {
        self.raw.len()
    }
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Frame")
            .field("tag", &char::from(self.tag))
            .field("wire_len", &self.raw.len())
            .finish()
    }
}

/// Decodes tagged messages into [`Frame`]s and writes frames or pre-encoded bytes.
#[derive(Clone, Copy, Debug)]
pub struct FrameCodec {
    max_len: usize,
}

impl FrameCodec {
    /// A codec accepting length fields up to [`DEFAULT_MAX_MESSAGE_LEN`].
    pub fn new() -> Self {
        FrameCodec {
            max_len: DEFAULT_MAX_MESSAGE_LEN,
        }
    }

    /// A codec accepting length fields up to `max_len` (see
    /// [`MAX_AUTH_MESSAGE_LEN`](crate::MAX_AUTH_MESSAGE_LEN) before authentication).
    pub fn with_max_len(max_len: usize) -> Self {
        FrameCodec { max_len }
    }

    /// The largest accepted length field.
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// Changes the limit, e.g. raising it once the client has authenticated.
    pub fn set_max_len(&mut self, max_len: usize) {
        self.max_len = max_len;
    }
}

impl Default for FrameCodec {
    fn default() -> Self {
        FrameCodec::new()
    }
}

impl Decoder for FrameCodec {
    type Item = Frame;
    type Error = WireError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, WireError> {
        let Some((tag, total)) = frame_header(src, self.max_len)? else {
            return Ok(None);
        };
        if src.len() < total {
            // Bounded: `total` passed the maximum check in `frame_header`.
            src.reserve((total - src.len()).min(MAX_RESERVE_AHEAD));
            return Ok(None);
        }
        let raw = src.split_to(total).freeze();
        Ok(Some(Frame { tag, raw }))
    }
}

impl Encoder<Frame> for FrameCodec {
    type Error = WireError;

    fn encode(&mut self, frame: Frame, dst: &mut BytesMut) -> Result<(), WireError> {
        dst.extend_from_slice(&frame.raw);
        Ok(())
    }
}

impl Encoder<&Frame> for FrameCodec {
    type Error = WireError;

    fn encode(&mut self, frame: &Frame, dst: &mut BytesMut) -> Result<(), WireError> {
        dst.extend_from_slice(&frame.raw);
        Ok(())
    }
}

/// Writes bytes that already hold one or more encoded messages (a batch, a `Message::encode`).
impl Encoder<Bytes> for FrameCodec {
    type Error = WireError;

    fn encode(&mut self, bytes: Bytes, dst: &mut BytesMut) -> Result<(), WireError> {
        dst.extend_from_slice(&bytes);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::XorShift;

    fn decode_all(codec: &mut FrameCodec, input: &[u8]) -> Result<Vec<Frame>, WireError> {
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        while let Some(f) = codec.decode(&mut buf)? {
            out.push(f);
        }
        Ok(out)
    }

    #[test]
    fn decodes_back_to_back_frames_and_keeps_the_remainder() {
        let mut input = Vec::new();
        input.extend_from_slice(b"Q\0\0\0\x0dselect 1\0");
        input.extend_from_slice(b"S\0\0\0\x04");
        input.extend_from_slice(b"X\0\0"); // incomplete header
        let mut buf = BytesMut::from(&input[..]);
        let mut codec = FrameCodec::new();
        let q = codec.decode(&mut buf).unwrap().unwrap();
        assert_eq!(q.tag(), b'Q');
        assert_eq!(q.body(), b"select 1\0");
        assert_eq!(q.wire_len(), 14);
        let s = codec.decode(&mut buf).unwrap().unwrap();
        assert_eq!((s.tag(), s.body()), (b'S', &b""[..]));
        assert!(codec.decode(&mut buf).unwrap().is_none());
        assert_eq!(&buf[..], b"X\0\0");
        buf.extend_from_slice(b"\0\x04");
        assert_eq!(codec.decode(&mut buf).unwrap().unwrap().tag(), b'X');
        assert!(buf.is_empty());
    }

    #[test]
    fn waits_for_a_split_body() {
        let mut codec = FrameCodec::new();
        let mut buf = BytesMut::from(&b"Q\0\0\0\x0dsel"[..]);
        assert!(codec.decode(&mut buf).unwrap().is_none());
        assert!(buf.capacity() >= 14);
        buf.extend_from_slice(b"ect 1\0");
        assert_eq!(
            codec.decode(&mut buf).unwrap().unwrap().body(),
            b"select 1\0"
        );
    }

    #[test]
    fn rejects_lengths_below_four() {
        for len in [0u8, 1, 3] {
            let err = decode_all(&mut FrameCodec::new(), &[b'Q', 0, 0, 0, len]).unwrap_err();
            assert!(
                matches!(err, WireError::LengthTooSmall { tag: b'Q', len: l, min: 4 } if l == u32::from(len)),
                "{err:?}"
            );
        }
        let ok = decode_all(&mut FrameCodec::new(), &[b'S', 0, 0, 0, 4]).unwrap();
        assert_eq!(ok.len(), 1);
    }

    #[test]
    fn rejects_huge_lengths_before_reserving() {
        let mut codec = FrameCodec::with_max_len(1024);
        for header in [
            [b'Q', 0x80, 0, 0, 0],          // 2^31
            [b'Q', 0xff, 0xff, 0xff, 0xff], // -1 as Int32
            [b'D', 0, 0, 0x04, 0x01],       // 1025
        ] {
            let mut buf = BytesMut::from(&header[..]);
            let cap = buf.capacity();
            assert!(matches!(
                codec.decode(&mut buf),
                Err(WireError::TooLarge { max: 1024, .. })
            ));
            assert_eq!(buf.capacity(), cap, "no reservation for a rejected length");
        }
        // Exactly the maximum is fine.
        let f = Frame::new(b'd', &[b'x'; 1020]);
        assert_eq!(decode_all(&mut codec, f.raw()).unwrap(), vec![f]);
    }

    #[test]
    fn reservation_for_an_announced_frame_is_capped() {
        let mut codec = FrameCodec::new();
        let mut buf = BytesMut::from(&[b'd', 0x03, 0xff, 0xff, 0xff][..]); // ~64 MiB
        assert!(codec.decode(&mut buf).unwrap().is_none());
        assert!(buf.capacity() <= 2 * MAX_RESERVE_AHEAD);
    }

    #[test]
    fn scan_frame_walks_a_buffer_without_copying() {
        let mut buf = Vec::new();
        buf.extend_from_slice(Frame::new(b'P', b"\0select $1\0\0\0").raw());
        buf.extend_from_slice(Frame::new(b'S', b"").raw());
        buf.extend_from_slice(&Frame::new(b'Q', b"select 2\0").raw()[..7]);
        let mut at = 0;
        let mut seen = Vec::new();
        while let Some((tag, len)) = scan_frame(&buf[at..], DEFAULT_MAX_MESSAGE_LEN).unwrap() {
            seen.push(tag);
            at += len;
        }
        assert_eq!(seen, b"PS");
        assert_eq!(buf.len() - at, 7);
        assert_eq!(scan_frame(&[], 100).unwrap(), None);
        assert_eq!(scan_frame(b"Q\0\0", 100).unwrap(), None);
        assert!(scan_frame(b"Q\0\0\0\x02", 100).is_err());
        assert!(scan_frame(b"Q\0\0\x01\0", 100).is_err());
    }

    #[test]
    fn from_raw_requires_exactly_one_frame() {
        let f = Frame::new(b'Z', b"I");
        assert_eq!(Frame::from_raw(f.raw().clone(), 100).unwrap(), f);
        let mut two = f.raw().to_vec();
        two.extend_from_slice(f.raw());
        assert!(Frame::from_raw(Bytes::from(two), 100).is_err());
        assert!(Frame::from_raw(f.raw().slice(..5), 100).is_err());
        assert!(Frame::from_raw(Bytes::from_static(b"Z\0"), 100).is_err());
    }

    #[test]
    fn debug_hides_the_body() {
        let f = Frame::new(b'p', b"hunter2\0");
        let dbg = format!("{f:?}");
        assert!(!dbg.contains("hunter2"), "{dbg}");
        assert!(dbg.contains("'p'"));
    }

    #[test]
    fn encoders_write_the_raw_bytes() {
        let f = Frame::new(b'Z', b"T");
        let mut dst = BytesMut::new();
        let mut codec = FrameCodec::new();
        codec.encode(&f, &mut dst).unwrap();
        codec.encode(f.clone(), &mut dst).unwrap();
        codec.encode(f.raw().clone(), &mut dst).unwrap();
        assert_eq!(dst.len(), 3 * 6);
        assert_eq!(
            decode_all(&mut codec, &dst).unwrap(),
            vec![f.clone(), f.clone(), f]
        );
    }

    /// Decodes `chunks` fed one after the other; returns the frames and whether it failed.
    fn decode_chunks(chunks: &[&[u8]]) -> (Vec<Frame>, bool) {
        let mut codec = FrameCodec::with_max_len(4096);
        let mut buf = BytesMut::new();
        let mut frames = Vec::new();
        for chunk in chunks {
            buf.extend_from_slice(chunk);
            loop {
                match codec.decode(&mut buf) {
                    Ok(Some(f)) => frames.push(f),
                    Ok(None) => break,
                    Err(_) => return (frames, true),
                }
            }
        }
        (frames, false)
    }

    #[test]
    fn random_streams_never_panic_and_split_reads_agree() {
        let mut rng = XorShift::new(0x5eed_f4a3);
        let mut decoded = 0;
        for _ in 0..4000 {
            // A few honest frames, then random edits that break lengths and tags.
            let mut input = Vec::new();
            for _ in 0..rng.below(4) {
                let body = rng.bytes_biased(16);
                input.extend_from_slice(Frame::new(rng.byte(), &body).raw());
            }
            let input = if rng.below(2) == 0 {
                rng.mutate(&input)
            } else {
                input
            };
            let cut = rng.below(input.len() + 1);
            let whole = decode_chunks(&[&input]);
            let split = decode_chunks(&[&input[..cut], &input[cut..]]);
            assert_eq!(whole, split, "input {input:?} cut at {cut}");
            for f in &whole.0 {
                assert_eq!(
                    Frame::from_raw(f.raw().clone(), 4096).ok().as_ref(),
                    Some(f)
                );
            }
            decoded += whole.0.len();
        }
        assert!(
            decoded > 100,
            "the generator should produce valid frames too"
        );
    }
}
