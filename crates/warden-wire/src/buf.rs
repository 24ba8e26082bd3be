//! Bounds-checked reading and length-patching writing shared by every parser and encoder.
//!
//! Parsers only ever read through [`Reader`], whose methods return [`WireError::Malformed`]
//! instead of panicking when the input runs short.

use std::ops::Range;

use bytes::{BufMut, Bytes, BytesMut};

use crate::WireError;

/// A cursor over a message body.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Bytes not yet read.
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// The range of the next `n` bytes, consumed.
    pub(crate) fn range(
        &mut self,
        n: usize,
        what: &'static str,
    ) -> Result<Range<usize>, WireError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|end| *end <= self.buf.len())
            .ok_or(WireError::Malformed { what })?;
        let range = self.pos..end;
        self.pos = end;
        Ok(range)
    }

    /// The next `n` bytes, consumed.
    pub(crate) fn bytes(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], WireError> {
        let range = self.range(n, what)?;
        self.buf.get(range).ok_or(WireError::Malformed { what })
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], WireError> {
        self.bytes(N, what)?
            .try_into()
            .map_err(|_| WireError::Malformed { what })
    }

    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, WireError> {
        Ok(u8::from_be_bytes(self.array(what)?))
    }

    pub(crate) fn i8(&mut self, what: &'static str) -> Result<i8, WireError> {
        Ok(i8::from_be_bytes(self.array(what)?))
    }

    pub(crate) fn i16(&mut self, what: &'static str) -> Result<i16, WireError> {
        Ok(i16::from_be_bytes(self.array(what)?))
    }

    /// A 16-bit count. PostgreSQL reads counts with `pq_getmsgint(msg, 2)`, which is
    /// unsigned, so 65535 parameters are legal even though the protocol calls it Int16.
    pub(crate) fn u16(&mut self, what: &'static str) -> Result<u16, WireError> {
        Ok(u16::from_be_bytes(self.array(what)?))
    }

    pub(crate) fn i32(&mut self, what: &'static str) -> Result<i32, WireError> {
        Ok(i32::from_be_bytes(self.array(what)?))
    }

    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32, WireError> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }

    /// The range of a NUL-terminated string (without the NUL); the NUL is consumed too.
    pub(crate) fn cstr_range(&mut self, what: &'static str) -> Result<Range<usize>, WireError> {
        let rest = self.buf.get(self.pos..).unwrap_or_default();
        let len = memchr::memchr(0, rest).ok_or(WireError::Malformed { what })?;
        let range = self.range(len, what)?;
        self.pos = self.pos.saturating_add(1);
        Ok(range)
    }

    /// A NUL-terminated string's bytes (without the NUL).
    pub(crate) fn cstr(&mut self, what: &'static str) -> Result<&'a [u8], WireError> {
        let range = self.cstr_range(what)?;
        self.buf.get(range).ok_or(WireError::Malformed { what })
    }

    /// A NUL-terminated string that must be UTF-8: used for everything a policy decision
    /// reads, where guessing at an encoding would let text slip past inspection.
    pub(crate) fn str(&mut self, what: &'static str) -> Result<&'a str, WireError> {
        std::str::from_utf8(self.cstr(what)?).map_err(|_| WireError::InvalidUtf8 { what })
    }

    /// A NUL-terminated string decoded leniently: used for server text (errors, column
    /// names), which arrives in the session's `client_encoding` and is only displayed.
    pub(crate) fn lossy(&mut self, what: &'static str) -> Result<String, WireError> {
        Ok(String::from_utf8_lossy(self.cstr(what)?).into_owned())
    }

    /// Everything not yet read.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let rest = self.buf.get(self.pos..).unwrap_or_default();
        self.pos = self.buf.len();
        rest
    }

    /// Fails unless the whole body was consumed; PostgreSQL rejects trailing bytes too.
    pub(crate) fn finish(&self, what: &'static str) -> Result<(), WireError> {
        if self.remaining() == 0 {
            Ok(())
        } else {
            Err(WireError::Malformed { what })
        }
    }
}

/// Writes `s` as a NUL-terminated string, cut at its first NUL byte.
///
/// An interior NUL would end the string early on the wire and let the remainder be read as
/// further fields (a message text could forge a SQLSTATE field, say), so encoders never emit
/// one. Constructors whose content matters (SQL text) reject NULs instead of cutting.
pub(crate) fn put_cstr(buf: &mut BytesMut, s: &[u8]) {
    let end = memchr::memchr(0, s).unwrap_or(s.len());
    buf.extend_from_slice(s.get(..end).unwrap_or_default());
    buf.put_u8(0);
}

/// Fails when `s` contains a NUL byte.
pub(crate) fn reject_nul(s: &str, what: &'static str) -> Result<(), WireError> {
    match memchr::memchr(0, s.as_bytes()) {
        Some(_) => Err(WireError::ContainsNul { what }),
        None => Ok(()),
    }
}

/// Converts a count to the unsigned 16-bit field PostgreSQL reads it from.
pub(crate) fn count_u16(count: usize, what: &'static str) -> Result<u16, WireError> {
    u16::try_from(count).map_err(|_| WireError::TooMany {
        what,
        count,
        max: usize::from(u16::MAX),
    })
}

/// Appends one tagged message to `dst`: tag, length placeholder, body from `body`, then the
/// length patched in.
pub(crate) fn write_frame(dst: &mut BytesMut, tag: u8, body: impl FnOnce(&mut BytesMut)) {
    let start = dst.len();
    dst.put_u8(tag);
    dst.put_u32(0);
    body(dst);
    patch_len(dst, start.saturating_add(1));
}

/// One tagged message as frozen bytes; `hint` is the expected body size.
pub(crate) fn frame_bytes(tag: u8, hint: usize, body: impl FnOnce(&mut BytesMut)) -> Bytes {
    let mut buf = BytesMut::with_capacity(hint.saturating_add(5));
    write_frame(&mut buf, tag, body);
    buf.freeze()
}

/// One untagged startup packet as frozen bytes.
pub(crate) fn startup_bytes(hint: usize, body: impl FnOnce(&mut BytesMut)) -> Bytes {
    let mut buf = BytesMut::with_capacity(hint.saturating_add(4));
    buf.put_u32(0);
    body(&mut buf);
    patch_len(&mut buf, 0);
    buf.freeze()
}

/// Writes the big-endian length of `buf[at..]` at `buf[at..at + 4]`.
fn patch_len(buf: &mut BytesMut, at: usize) {
    // A message over 4 GiB cannot be described; saturating yields a length the peer rejects
    // rather than a wrapped one it would misframe.
    let len = u32::try_from(buf.len().saturating_sub(at)).unwrap_or(u32::MAX);
    if let Some(slot) = buf.get_mut(at..at.saturating_add(4)) {
        slot.copy_from_slice(&len.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_reports_short_input_instead_of_panicking() {
        let mut r = Reader::new(&[0, 1, 2]);
        assert!(matches!(
            r.i32("x"),
            Err(WireError::Malformed { what: "x" })
        ));
        assert_eq!(r.i16("x").ok(), Some(1));
        assert!(r.u16("y").is_err());
        assert_eq!(r.u8("z").ok(), Some(2));
        assert!(r.finish("end").is_ok());
        assert!(r.u8("z").is_err());
    }

    #[test]
    fn cstr_needs_a_terminator() {
        let mut r = Reader::new(b"abc\0def");
        assert_eq!(r.cstr("s").ok(), Some(&b"abc"[..]));
        assert!(r.cstr("s").is_err());
        assert!(matches!(
            r.finish("trailing"),
            Err(WireError::Malformed { what: "trailing" })
        ));
    }

    #[test]
    fn str_rejects_invalid_utf8_and_lossy_replaces_it() {
        assert!(matches!(
            Reader::new(b"a\xff\0").str("name"),
            Err(WireError::InvalidUtf8 { what: "name" })
        ));
        assert_eq!(
            Reader::new(b"a\xff\0").lossy("n").ok().as_deref(),
            Some("a\u{fffd}")
        );
    }

    #[test]
    fn put_cstr_cuts_at_interior_nul() {
        let mut b = BytesMut::new();
        put_cstr(&mut b, b"ok\0CXXXXX");
        assert_eq!(&b[..], b"ok\0");
    }

    #[test]
    fn frames_get_their_length_patched() {
        let b = frame_bytes(b'Q', 0, |b| b.extend_from_slice(b"x\0"));
        assert_eq!(&b[..], b"Q\0\0\0\x06x\0");
        let s = startup_bytes(0, |b| b.put_u32(7));
        assert_eq!(&s[..], b"\0\0\0\x08\0\0\0\x07");
        assert!(count_u16(65_535, "n").is_ok());
        assert!(matches!(
            count_u16(65_536, "n"),
            Err(WireError::TooMany { count: 65_536, .. })
        ));
    }
}
