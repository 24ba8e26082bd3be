//! Parse: prepare a named or unnamed statement (extended query protocol).

use bytes::{BufMut, Bytes};

use crate::buf::{count_u16, frame_bytes, put_cstr, reject_nul, Reader};
use crate::messages::{Message, Side};
use crate::{tags, Frame, WireError};

/// A statement to prepare. Keeps its frame for forwarding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parse {
    frame: Frame,
    name: String,
    sql: String,
    param_types: Vec<u32>,
}

impl Parse {
    /// A Parse message; fails on NUL bytes in `name` or `sql` and on more than 65535
    /// parameter types.
    pub fn new(name: &str, sql: &str, param_types: &[u32]) -> Result<Self, WireError> {
        reject_nul(name, "statement name")?;
        reject_nul(sql, "query string")?;
        let count = count_u16(param_types.len(), "parameter types")?;
        let hint = name.len() + sql.len() + 4 + 4 * param_types.len();
        let raw = frame_bytes(tags::frontend::PARSE, hint, |b| {
            put_cstr(b, name.as_bytes());
            put_cstr(b, sql.as_bytes());
            b.put_u16(count);
            for oid in param_types {
                b.put_u32(*oid);
            }
        });
        Ok(Parse {
            frame: Frame::from_encoded(tags::frontend::PARSE, raw),
            name: name.to_owned(),
            sql: sql.to_owned(),
            param_types: param_types.to_vec(),
        })
    }

    /// The statement name (empty for the unnamed statement).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The SQL text.
    pub fn sql(&self) -> &str {
        &self.sql
    }

    /// Parameter type OIDs the client specified (0 means "let the server infer").
    pub fn param_types(&self) -> &[u32] {
        &self.param_types
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

/// The statement name and SQL text of a Parse body, borrowed, after validating the whole
/// body without allocating: the proxy loop's inspection path.
pub fn parse_text(body: &[u8]) -> Result<(&str, &str), WireError> {
    // `read_head` checked that exactly the announced parameter types follow.
    read_head(&mut Reader::new(body))
}

/// Reads name, SQL and the parameter count, and checks the count against the bytes left,
/// leaving the reader at the first parameter type.
fn read_head<'a>(r: &mut Reader<'a>) -> Result<(&'a str, &'a str), WireError> {
    let name = r.str("statement name")?;
    let sql = r.str("query string")?;
    let count = usize::from(r.u16("parameter type count")?);
    // Check the declared count against the bytes present before anyone allocates for it.
    if count.saturating_mul(4) != r.remaining() {
        return Err(WireError::malformed(
            "parameter type count does not match the message length",
        ));
    }
    Ok((name, sql))
}

impl Message for Parse {
    const TAG: u8 = tags::frontend::PARSE;
    const NAME: &'static str = "Parse";
    const SENT_BY: &'static [Side] = &[Side::Frontend];

    fn parse(frame: &Frame) -> Result<Self, WireError> {
        let mut r = Reader::new(frame.body());
        let (name, sql) = read_head(&mut r)?;
        let mut param_types = Vec::with_capacity(r.remaining() / 4);
        while r.remaining() > 0 {
            param_types.push(r.u32("parameter type")?);
        }
        r.finish("bytes after the parameter types")?;
        Ok(Parse {
            frame: frame.clone(),
            name: name.to_owned(),
            sql: sql.to_owned(),
            param_types,
        })
    }

    fn encode(&self) -> Bytes {
        self.frame.raw().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::check_parser;

    #[test]
    fn round_trips() {
        let p = Parse::new("s1", "select $1::int, $2", &[23, 0]).unwrap();
        let parsed = Parse::from_frame(&Frame::from_raw(p.encode(), 1 << 20).unwrap()).unwrap();
        assert_eq!(parsed.name(), "s1");
        assert_eq!(parsed.sql(), "select $1::int, $2");
        assert_eq!(parsed.param_types(), &[23, 0]);
        assert_eq!(parsed, p);
    }

    #[test]
    fn matches_postgres_protocol_encoding() {
        let mut expected = bytes::BytesMut::new();
        postgres_protocol::message::frontend::parse("", "select $1", [25u32], &mut expected)
            .unwrap();
        assert_eq!(
            &Parse::new("", "select $1", &[25]).unwrap().encode()[..],
            &expected[..]
        );
    }

    #[test]
    fn counts_are_unsigned_like_postgres_reads_them() {
        let types = vec![0u32; 40_000];
        let p = Parse::new("", "select 1", &types).unwrap();
        assert_eq!(
            Parse::from_frame(p.frame()).unwrap().param_types().len(),
            40_000
        );
        assert!(matches!(
            Parse::new("", "x", &vec![0; 65_536]),
            Err(WireError::TooMany { .. })
        ));
    }

    #[test]
    fn rejects_malformed_bodies() {
        for body in [
            &b""[..],
            b"s1\0",                       // no SQL
            b"s1\0select 1",               // SQL without NUL
            b"s1\0select 1\0",             // no count
            b"s1\0select 1\0\0",           // half a count
            b"s1\0select 1\0\0\x01",       // count 1, no type
            b"s1\0select 1\0\0\x01\0\0\0", // truncated type
            b"s1\0select 1\0\0\0\0",       // trailing bytes
            b"s1\0select 1\0\xff\xff",     // 65535 types announced, none present
        ] {
            assert!(
                matches!(
                    Parse::from_frame(&Frame::new(b'P', body)),
                    Err(WireError::Malformed { .. })
                ),
                "{body:?}"
            );
        }
        assert!(matches!(
            Parse::from_frame(&Frame::new(b'P', b"\0select '\xff'\0\0\0")),
            Err(WireError::InvalidUtf8 {
                what: "query string"
            })
        ));
        assert!(Parse::new("a\0b", "select 1", &[]).is_err());
        assert!(Parse::new("", "select 1\0", &[]).is_err());
    }

    #[test]
    fn parse_text_borrows_and_validates_the_whole_body() {
        let body = b"s1\0select $1\0\0\x01\0\0\0\x17";
        assert_eq!(parse_text(body).unwrap(), ("s1", "select $1"));
        assert!(parse_text(&body[..body.len() - 1]).is_err());
        assert!(parse_text(b"s1\0select\0").is_err());
    }

    #[test]
    fn random_bodies_never_panic() {
        let samples: [&[u8]; 2] = [b"s1\0select $1\0\0\x01\0\0\0\x17", b"\0\0\0\0"];
        assert!(check_parser::<Parse>(&samples, true) > 50);
    }
}
