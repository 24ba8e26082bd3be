//! The on-disk line format shared by the writer, reader, verifier and purge.

use std::io::{self, BufRead, Read};

use sha2::{Digest, Sha256};

/// Domain separation for a recording's first `prev`.
const MAGIC: &[u8] = b"warden-recording v1\n";

/// The longest line (hash prefix and JSON, without the newline) a reader accepts.
pub const MAX_LINE_BYTES: usize = 64 * 1024 * 1024;

/// `<64 hex> ` before the JSON.
pub(crate) const PREFIX_LEN: usize = 65;

/// The `prev` of a recording's first line: `SHA-256("warden-recording v1\n" || id)`.
pub(crate) fn genesis(session_id: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(MAGIC);
    h.update(session_id.as_bytes());
    h.finalize().into()
}

/// `SHA-256(prev || json)`.
pub(crate) fn chain_hash(prev: &[u8; 32], json: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(json);
    h.finalize().into()
}

/// Decodes exactly 64 lowercase hex digits.
pub(crate) fn decode_hex32(s: &[u8]) -> Option<[u8; 32]> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        }
    }
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in s.chunks_exact(2).enumerate() {
        out[i] = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(out)
}

/// Why a line's `<hash> ` prefix is unusable.
pub(crate) const NO_PREFIX: &str = "line does not start with `<64 hex digits> `";
/// The prefix is shaped right but is not hex.
pub(crate) const NOT_HEX: &str = "hash is not 64 lowercase hex digits";
/// No space after the hash.
pub(crate) const BAD_SEPARATOR: &str = "no space after the 64 hex digits of the hash";

/// A committed line split at its prefix.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Split<'a> {
    /// The recorded hash and the JSON bytes.
    Ok([u8; 32], &'a [u8]),
    /// The prefix is shaped right but is not lowercase hex; the JSON bytes.
    NotHex(&'a [u8]),
    /// 64 hex digits, but the character after them is not a space; hash and JSON.
    BadSeparator([u8; 32], &'a [u8]),
    /// No `<64 chars> ` prefix at all.
    NoPrefix,
}

/// Splits a committed line (no newline) into its recorded hash and its JSON bytes.
pub(crate) fn split_line(line: &[u8]) -> Split<'_> {
    if line.len() < PREFIX_LEN {
        return Split::NoPrefix;
    }
    let json = &line[PREFIX_LEN..];
    match (decode_hex32(&line[..64]), line[64] == b' ') {
        (Some(h), true) => Split::Ok(h, json),
        (Some(h), false) => Split::BadSeparator(h, json),
        (None, true) => Split::NotHex(json),
        (None, false) => Split::NoPrefix,
    }
}

/// One read from [`read_line`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum LineRead {
    /// End of file, nothing read.
    Eof,
    /// A committed line is in the buffer (newline removed).
    Line,
    /// The file ended without a newline; the partial line is in the buffer.
    Torn,
    /// The line exceeds [`MAX_LINE_BYTES`]; the buffer holds its first bytes and the
    /// rest has not been consumed (see [`skip_line`]).
    TooLong,
}

/// Reads one line into `buf` (cleared first), never buffering more than
/// [`MAX_LINE_BYTES`] + 1 bytes.
pub(crate) fn read_line<R: BufRead>(r: &mut R, buf: &mut Vec<u8>) -> io::Result<LineRead> {
    buf.clear();
    let n = r
        .by_ref()
        .take(MAX_LINE_BYTES as u64 + 1)
        .read_until(b'\n', buf)?;
    if n == 0 {
        return Ok(LineRead::Eof);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
        return Ok(LineRead::Line);
    }
    if buf.len() > MAX_LINE_BYTES {
        return Ok(LineRead::TooLong);
    }
    // Zeros after the last line are the writer's preallocated space (a live session, or
    // one whose gateway was killed): not part of the recording.
    let kept = buf.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    buf.truncate(kept);
    if buf.is_empty() {
        return Ok(LineRead::Eof);
    }
    Ok(LineRead::Torn)
}

/// Consumes input up to and including the next newline. Returns whether a newline was
/// found (false: the file ended first).
pub(crate) fn skip_line<R: BufRead>(r: &mut R) -> io::Result<bool> {
    loop {
        let (found, used) = {
            let avail = match r.fill_buf() {
                Ok(a) => a,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if avail.is_empty() {
                return Ok(false);
            }
            match avail.iter().position(|&b| b == b'\n') {
                Some(i) => (true, i + 1),
                None => (false, avail.len()),
            }
        };
        r.consume(used);
        if found {
            return Ok(true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_roundtrip_and_rejects() {
        let h = chain_hash(&genesis("abc"), b"{}");
        let s = hex::encode(h);
        assert_eq!(decode_hex32(s.as_bytes()), Some(h));
        assert_eq!(decode_hex32(s.to_uppercase().as_bytes()), None);
        assert_eq!(decode_hex32(&s.as_bytes()[..63]), None);
        assert_eq!(decode_hex32(b""), None);
        let mut bad = s.into_bytes();
        bad[10] = b'g';
        assert_eq!(decode_hex32(&bad), None);
    }

    #[test]
    fn split_line_cases() {
        let h = hex::encode([7u8; 32]);
        let line = format!("{h} {{\"a\":1}}");
        assert_eq!(
            split_line(line.as_bytes()),
            Split::Ok([7u8; 32], &b"{\"a\":1}"[..])
        );
        assert_eq!(split_line(b"short"), Split::NoPrefix);
        let no_space = format!("{h}x{{}}");
        assert_eq!(
            split_line(no_space.as_bytes()),
            Split::BadSeparator([7u8; 32], &b"{}"[..])
        );
        let neither = format!("{}x{{}}", "z".repeat(64));
        assert_eq!(split_line(neither.as_bytes()), Split::NoPrefix);
        let not_hex = format!("{} {{}}", "z".repeat(64));
        assert_eq!(split_line(not_hex.as_bytes()), Split::NotHex(&b"{}"[..]));
    }

    #[test]
    fn read_line_variants() {
        let data = b"one\ntwo\nthr";
        let mut r = io::BufReader::new(&data[..]);
        let mut buf = Vec::new();
        assert_eq!(read_line(&mut r, &mut buf).unwrap(), LineRead::Line);
        assert_eq!(buf, b"one");
        assert_eq!(read_line(&mut r, &mut buf).unwrap(), LineRead::Line);
        assert_eq!(buf, b"two");
        assert_eq!(read_line(&mut r, &mut buf).unwrap(), LineRead::Torn);
        assert_eq!(buf, b"thr");
        assert_eq!(read_line(&mut r, &mut buf).unwrap(), LineRead::Eof);
    }

    #[test]
    fn zero_tail_is_not_part_of_the_recording() {
        let mut buf = Vec::new();
        // Only zeros after the last line: the end.
        let data = [&b"one\n"[..], &[0u8; 5000][..]].concat();
        let mut r = io::BufReader::new(&data[..]);
        assert_eq!(read_line(&mut r, &mut buf).unwrap(), LineRead::Line);
        assert_eq!(read_line(&mut r, &mut buf).unwrap(), LineRead::Eof);
        // A partial line then zeros: torn, without the zeros.
        let data = [&b"one\ntw"[..], &[0u8; 100][..]].concat();
        let mut r = io::BufReader::new(&data[..]);
        assert_eq!(read_line(&mut r, &mut buf).unwrap(), LineRead::Line);
        assert_eq!(read_line(&mut r, &mut buf).unwrap(), LineRead::Torn);
        assert_eq!(buf, b"tw");
        // Zeros inside a committed line are the line's (and damage for the parser).
        let data = b"o\0e\n";
        let mut r = io::BufReader::new(&data[..]);
        assert_eq!(read_line(&mut r, &mut buf).unwrap(), LineRead::Line);
        assert_eq!(buf, b"o\0e");
    }

    #[test]
    fn skip_line_stops_after_newline() {
        let data = b"aaaa\nbb";
        let mut r = io::BufReader::with_capacity(2, &data[..]);
        assert!(skip_line(&mut r).unwrap());
        let mut buf = Vec::new();
        assert_eq!(read_line(&mut r, &mut buf).unwrap(), LineRead::Torn);
        assert_eq!(buf, b"bb");
        assert!(!skip_line(&mut r).unwrap());
    }
}
