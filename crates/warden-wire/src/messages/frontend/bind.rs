//! Bind: bind parameter values to a prepared statement, creating a portal.

use std::fmt;

use bytes::{BufMut, Bytes};

use crate::buf::{count_u16, frame_bytes, put_cstr, reject_nul, Reader};
use crate::messages::{Message, Side, FORMAT_TEXT};
use crate::{tags, Frame, WireError};

/// A Bind message. Keeps its frame for forwarding; parameter values are zero-copy slices of
/// it. `Debug` shows value sizes, not values, since parameters can carry secrets.
#[derive(Clone, PartialEq, Eq)]
pub struct Bind {
    frame: Frame,
    portal: String,
    statement: String,
    param_formats: Vec<i16>,
    params: Vec<Option<Bytes>>,
    result_formats: Vec<i16>,
}

impl Bind {
    /// A Bind message. Fails on NUL bytes in the names, more than 65535 entries in a list,
    /// a value longer than `i32::MAX`, or a parameter format count other than 0, 1 or the
    /// number of parameters.
    pub fn new(
        portal: &str,
        statement: &str,
        param_formats: &[i16],
        params: &[Option<&[u8]>],
        result_formats: &[i16],
    ) -> Result<Self, WireError> {
        reject_nul(portal, "portal name")?;
        reject_nul(statement, "statement name")?;
        check_format_count(param_formats.len(), params.len())?;
        let n_formats = count_u16(param_formats.len(), "parameter formats")?;
        let n_params = count_u16(params.len(), "parameters")?;
        let n_results = count_u16(result_formats.len(), "result formats")?;
        let mut lens = Vec::with_capacity(params.len());
        for p in params {
            lens.push(match p {
                None => -1,
                Some(v) => i32::try_from(v.len()).map_err(|_| WireError::TooMany {
                    what: "bytes in a parameter value",
                    count: v.len(),
                    max: i32::MAX as usize,
                })?,
            });
        }
        let hint = portal.len()
            + statement.len()
            + 8
            + 2 * (param_formats.len() + result_formats.len())
            + params
                .iter()
                .map(|p| 4 + p.map_or(0, <[u8]>::len))
                .sum::<usize>();
        let raw = frame_bytes(tags::frontend::BIND, hint, |b| {
            put_cstr(b, portal.as_bytes());
            put_cstr(b, statement.as_bytes());
            b.put_u16(n_formats);
            for f in param_formats {
                b.put_i16(*f);
            }
            b.put_u16(n_params);
            for (p, len) in params.iter().zip(&lens) {
                b.put_i32(*len);
                if let Some(v) = p {
                    b.extend_from_slice(v);
                }
            }
            b.put_u16(n_results);
            for f in result_formats {
                b.put_i16(*f);
            }
        });
        Self::parse(&Frame::from_encoded(tags::frontend::BIND, raw))
    }

    /// The destination portal (empty for the unnamed portal).
    pub fn portal(&self) -> &str {
        &self.portal
    }

    /// The source prepared statement (empty for the unnamed statement).
    pub fn statement(&self) -> &str {
        &self.statement
    }

    /// Parameter format codes as sent: none (all text), one (applies to all), or one each.
    pub fn param_formats(&self) -> &[i16] {
        &self.param_formats
    }

    /// The format code that applies to parameter `index`.
    pub fn param_format(&self, index: usize) -> i16 {
        match self.param_formats.as_slice() {
            [] => FORMAT_TEXT,
            [one] => *one,
            each => each.get(index).copied().unwrap_or(FORMAT_TEXT),
        }
    }

    /// Parameter values; `None` is SQL NULL.
    pub fn params(&self) -> &[Option<Bytes>] {
        &self.params
    }

    /// Result column format codes as sent.
    pub fn result_formats(&self) -> &[i16] {
        &self.result_formats
    }

    /// The frame as received (or encoded).
    pub fn frame(&self) -> &Frame {
        &self.frame
    }

    /// The frame, consuming the message.
    pub fn into_frame(self) -> Frame {
        self.frame
    }
}

/// PostgreSQL accepts 0 format codes (all text), 1 (for all), or exactly one per parameter.
fn check_format_count(formats: usize, params: usize) -> Result<(), WireError> {
    if formats > 1 && formats != params {
        return Err(WireError::malformed(
            "parameter format count matches neither 0, 1 nor the parameter count",
        ));
    }
    Ok(())
}

/// Reads a u16 count followed by that many i16 format codes; returns their raw bytes.
fn read_formats<'a>(r: &mut Reader<'a>, what: &'static str) -> Result<&'a [u8], WireError> {
    let count = usize::from(r.u16(what)?);
    if count.saturating_mul(2) > r.remaining() {
        return Err(WireError::malformed(what));
    }
    r.bytes(count * 2, what)
}

/// Format codes from their raw big-endian bytes.
fn codes(raw: &[u8]) -> impl Iterator<Item = i16> + '_ {
    raw.chunks_exact(2)
        .map(|c| i16::from_be_bytes([c[0], c[1]]))
}

/// A Bind body read in place: names, formats and values borrowed from it, nothing
/// copied or allocated. For hot paths that read each Bind once (the session recorder);
/// [`Bind`] is the owned message. Parsing validates the whole body exactly as
/// [`Bind`]'s does (it is the same code), so the accessors cannot fail.
#[derive(Clone, Copy, Debug)]
pub struct BindRef<'a> {
    /// The destination portal (empty for the unnamed portal).
    pub portal: &'a str,
    /// The source prepared statement (empty for the unnamed statement).
    pub statement: &'a str,
    param_formats: &'a [u8],
    n_params: usize,
    /// The parameter values, each after its int32 length (validated).
    values: &'a [u8],
    result_formats: &'a [u8],
}

impl<'a> BindRef<'a> {
    /// Reads and validates a Bind body (the frame without its 5-byte header).
    pub fn parse(body: &'a [u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(body);
        let portal = r.str("portal name")?;
        let statement = r.str("statement name")?;
        let param_formats = read_formats(&mut r, "parameter format codes")?;
        let n_params = usize::from(r.u16("parameter count")?);
        // Every value needs at least its 4-byte length.
        if n_params.saturating_mul(4) > r.remaining() {
            return Err(WireError::malformed(
                "parameter count exceeds the message length",
            ));
        }
        check_format_count(param_formats.len() / 2, n_params)?;
        let start = body.len() - r.remaining();
        for _ in 0..n_params {
            let len = r.i32("parameter length")?;
            if len != -1 {
                let len = usize::try_from(len)
                    .map_err(|_| WireError::malformed("negative parameter length"))?;
                r.bytes(len, "parameter value")?;
            }
        }
        let values = &body[start..body.len() - r.remaining()];
        let result_formats = read_formats(&mut r, "result format codes")?;
        r.finish("bytes after the result format codes")?;
        Ok(BindRef {
            portal,
            statement,
            param_formats,
            n_params,
            values,
            result_formats,
        })
    }

    /// The number of parameters.
    pub fn param_count(&self) -> usize {
        self.n_params
    }

    /// The format code that applies to parameter `index`.
    pub fn param_format(&self, index: usize) -> i16 {
        let mut all = codes(self.param_formats);
        match self.param_formats.len() / 2 {
            0 => FORMAT_TEXT,
            1 => all.next().unwrap_or(FORMAT_TEXT),
            _ => all.nth(index).unwrap_or(FORMAT_TEXT),
        }
    }

    /// Parameter values in order; `None` is SQL NULL.
    pub fn params(&self) -> impl Iterator<Item = Option<&'a [u8]>> + 'a {
        let mut rest = self.values;
        (0..self.n_params).map(move |_| {
            // Validated by `parse`: each length is -1 or fits in what follows.
            let (len, tail) = rest.split_at_checked(4)?;
            let len = i32::from_be_bytes([len[0], len[1], len[2], len[3]]);
            let Ok(len) = usize::try_from(len) else {
                rest = tail;
                return None;
            };
            let (value, tail) = tail.split_at_checked(len)?;
            rest = tail;
            Some(value)
        })
    }
}

impl Message for Bind {
    const TAG: u8 = tags::frontend::BIND;
    const NAME: &'static str = "Bind";
    const SENT_BY: &'static [Side] = &[Side::Frontend];

    fn parse(frame: &Frame) -> Result<Self, WireError> {
        let body = frame.body_bytes();
        let b = BindRef::parse(&body)?;
        Ok(Bind {
            frame: frame.clone(),
            portal: b.portal.to_owned(),
            statement: b.statement.to_owned(),
            param_formats: codes(b.param_formats).collect(),
            params: b.params().map(|p| p.map(|v| body.slice_ref(v))).collect(),
            result_formats: codes(b.result_formats).collect(),
        })
    }

    fn encode(&self) -> Bytes {
        self.frame.raw().clone()
    }
}

impl fmt::Debug for Bind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Sizes<'a>(&'a [Option<Bytes>]);
        impl fmt::Debug for Sizes<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_list()
                    .entries(self.0.iter().map(|p| match p {
                        None => "NULL".to_owned(),
                        Some(v) => format!("{} bytes", v.len()),
                    }))
                    .finish()
            }
        }
        f.debug_struct("Bind")
            .field("portal", &self.portal)
            .field("statement", &self.statement)
            .field("param_formats", &self.param_formats)
            .field("params", &Sizes(&self.params))
            .field("result_formats", &self.result_formats)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::check_parser;

    #[test]
    fn round_trips_with_nulls_and_binary() {
        let params: [Option<&[u8]>; 2] = [Some(b"42"), None];
        let b = Bind::new("p1", "s1", &[0, 1], &params, &[1]).unwrap();
        let parsed = Bind::from_frame(&Frame::from_raw(b.encode(), 1 << 20).unwrap()).unwrap();
        assert_eq!(parsed.portal(), "p1");
        assert_eq!(parsed.statement(), "s1");
        assert_eq!(parsed.params(), &[Some(Bytes::from_static(b"42")), None]);
        assert_eq!(parsed.param_format(1), 1);
        assert_eq!(parsed.result_formats(), &[1]);
        assert_eq!(parsed, b);
    }

    #[test]
    fn empty_value_is_not_null() {
        let b = Bind::new("", "", &[], &[Some(&b""[..]), None], &[]).unwrap();
        assert_eq!(b.params(), &[Some(Bytes::new()), None]);
        assert_eq!(b.param_format(0), FORMAT_TEXT);
    }

    #[test]
    fn values_are_slices_of_the_frame() {
        let b = Bind::new("", "", &[], &[Some(&b"abcdef"[..])], &[]).unwrap();
        let value = b.params()[0].as_ref().unwrap();
        let raw = b.frame().raw();
        let start = value.as_ptr() as usize - raw.as_ptr() as usize;
        assert_eq!(&raw[start..start + 6], b"abcdef");
    }

    #[test]
    fn matches_postgres_protocol_encoding() {
        use postgres_protocol::message::frontend;
        use postgres_protocol::IsNull;
        let mut expected = bytes::BytesMut::new();
        let values: [Option<&[u8]>; 2] = [Some(b"7"), None];
        frontend::bind(
            "p",
            "s",
            [1i16],
            values,
            |v, buf| match v {
                Some(v) => {
                    buf.extend_from_slice(v);
                    Ok(IsNull::No)
                }
                None => Ok(IsNull::Yes),
            },
            [0i16],
            &mut expected,
        )
        .map_err(|_| "bind")
        .unwrap();
        let ours = Bind::new("p", "s", &[1], &values, &[0]).unwrap();
        assert_eq!(&ours.encode()[..], &expected[..]);
    }

    #[test]
    fn rejects_malformed_bodies() {
        for (body, why) in [
            (&b""[..], "empty"),
            (b"p\0", "no statement"),
            (b"p\0s\0", "no format count"),
            (b"p\0s\0\0\x01", "format count without formats"),
            (b"p\0s\0\0\0\0\x01", "param count without params"),
            (
                b"p\0s\0\0\0\0\x01\0\0\0\x05ab\0\0",
                "value shorter than length",
            ),
            (b"p\0s\0\0\0\0\x01\xff\xff\xff\xfe\0\0", "length -2"),
            (b"p\0s\0\0\0\0\x01\x80\0\0\0\0\0", "length -2^31"),
            (b"p\0s\0\0\0\0\0", "no result count"),
            (b"p\0s\0\0\0\0\0\0\0\0", "trailing byte"),
            (
                b"p\0s\0\0\x02\0\0\0\0\0\x01\xff\xff\xff\xff\0\0",
                "2 formats, 1 param",
            ),
            (b"p\0s\0\0\0\xff\xff\0\0", "65535 params announced"),
        ] {
            assert!(
                matches!(
                    Bind::from_frame(&Frame::new(b'B', body)),
                    Err(WireError::Malformed { .. })
                ),
                "{why}"
            );
            assert!(
                matches!(BindRef::parse(body), Err(WireError::Malformed { .. })),
                "{why}"
            );
        }
        assert!(matches!(
            Bind::from_frame(&Frame::new(b'B', b"\xff\0s\0\0\0\0\0\0\0")),
            Err(WireError::InvalidUtf8 { .. })
        ));
        assert!(Bind::new("", "", &[0, 0, 0], &[None], &[]).is_err());
    }

    /// The borrowed reading gives what the owned one does, for every body either accepts.
    #[test]
    fn borrowed_reading_matches_owned() {
        type Case<'a> = (
            &'a str,
            &'a str,
            &'a [i16],
            &'a [Option<&'a [u8]>],
            &'a [i16],
        );
        let cases: [Case; 5] = [
            ("", "", &[], &[], &[]),
            ("p1", "s1", &[0, 1], &[Some(b"42"), None], &[1]),
            (
                "",
                "P0_1",
                &[1],
                &[Some(b"\0\0\0\x07"), Some(b""), None],
                &[],
            ),
            ("x", "", &[], &[None, None, Some(b"abc")], &[0, 1, 0]),
            (
                "",
                "",
                &[0, 0, 0],
                &[Some(b"a"), Some(b"b"), Some(b"c")],
                &[],
            ),
        ];
        for (portal, statement, formats, params, results) in cases {
            let owned = Bind::new(portal, statement, formats, params, results).unwrap();
            let frame = owned.encode();
            let b = BindRef::parse(&frame[5..]).unwrap();
            assert_eq!(b.portal, portal);
            assert_eq!(b.statement, statement);
            assert_eq!(b.param_count(), params.len());
            assert_eq!(b.params().collect::<Vec<_>>(), params);
            for i in 0..params.len() + 2 {
                assert_eq!(b.param_format(i), owned.param_format(i), "{i}");
            }
        }
    }

    #[test]
    fn debug_hides_values() {
        let b = Bind::new("", "", &[], &[Some(&b"s3cr3t"[..]), None], &[]).unwrap();
        let dbg = format!("{b:?}");
        assert!(!dbg.contains("s3cr3t"), "{dbg}");
        assert!(dbg.contains("6 bytes") && dbg.contains("NULL"), "{dbg}");
    }

    #[test]
    fn random_bodies_never_panic() {
        let samples: [&[u8]; 2] = [
            b"p\0s\0\0\x01\0\x01\0\x02\0\0\0\x02hi\xff\xff\xff\xff\0\x01\0\0",
            b"\0\0\0\0\0\0\0\0",
        ];
        assert!(check_parser::<Bind>(&samples, true) > 50);
    }
}
