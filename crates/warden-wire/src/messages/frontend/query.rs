//! Query: a simple-protocol SQL string, possibly holding several statements.

use bytes::Bytes;

use crate::buf::{frame_bytes, put_cstr, reject_nul, Reader};
use crate::messages::{Message, Side};
use crate::{tags, Frame, WireError};

/// A simple query. Keeps its frame, so a statement that passes policy is forwarded as the
/// exact bytes the client sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Query {
    frame: Frame,
    sql: String,
}

impl Query {
    /// A query for `sql`; fails when `sql` contains a NUL byte, since the server would run
    /// only the part before it while policy would have judged the whole text.
    pub fn new(sql: &str) -> Result<Self, WireError> {
        reject_nul(sql, "query string")?;
        let raw = frame_bytes(tags::frontend::QUERY, sql.len() + 1, |b| {
            put_cstr(b, sql.as_bytes())
        });
        Ok(Query {
            frame: Frame::from_encoded(tags::frontend::QUERY, raw),
            sql: sql.to_owned(),
        })
    }

    /// The SQL text.
    pub fn sql(&self) -> &str {
        &self.sql
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

/// The SQL text of a Query body, borrowed and validated (NUL-terminated, nothing after it,
/// UTF-8) without allocating: the proxy loop's inspection path.
pub fn query_text(body: &[u8]) -> Result<&str, WireError> {
    let mut r = Reader::new(body);
    let sql = r.cstr("query string is missing its NUL terminator")?;
    let sql = std::str::from_utf8(sql).map_err(|_| WireError::InvalidUtf8 {
        what: "query string",
    })?;
    r.finish("bytes after the query string's NUL terminator")?;
    Ok(sql)
}

impl Message for Query {
    const TAG: u8 = tags::frontend::QUERY;
    const NAME: &'static str = "Query";
    const SENT_BY: &'static [Side] = &[Side::Frontend];

    fn parse(frame: &Frame) -> Result<Self, WireError> {
        Ok(Query {
            frame: frame.clone(),
            sql: query_text(frame.body())?.to_owned(),
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
        let q = Query::new("select 1; select 2").unwrap();
        assert_eq!(&q.encode()[..], b"Q\0\0\0\x17select 1; select 2\0");
        let parsed = Query::from_frame(q.frame()).unwrap();
        assert_eq!(parsed.sql(), "select 1; select 2");
        assert_eq!(parsed, q);
    }

    #[test]
    fn matches_postgres_protocol_encoding() {
        let mut expected = bytes::BytesMut::new();
        postgres_protocol::message::frontend::query("select 'ü'", &mut expected).unwrap();
        assert_eq!(
            &Query::new("select 'ü'").unwrap().encode()[..],
            &expected[..]
        );
    }

    #[test]
    fn keeps_the_received_frame() {
        let frame = Frame::new(b'Q', b"select now()\0");
        let q = Query::from_frame(&frame).unwrap();
        assert_eq!(q.frame().raw(), frame.raw());
        assert_eq!(q.into_frame(), frame);
    }

    #[test]
    fn rejects_missing_terminator_and_trailing_bytes() {
        let err = Query::from_frame(&Frame::new(b'Q', b"select 1")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "malformed message: query string is missing its NUL terminator"
        );
        assert!(Query::from_frame(&Frame::new(b'Q', b"")).is_err());
        // A NUL in the middle: the server would run "select 1" only.
        assert!(matches!(
            Query::from_frame(&Frame::new(b'Q', b"select 1\0; drop table t\0")),
            Err(WireError::Malformed { .. })
        ));
    }

    #[test]
    fn rejects_invalid_utf8() {
        let err = Query::from_frame(&Frame::new(b'Q', b"select '\xc3\x28'\0")).unwrap_err();
        assert_eq!(err.to_string(), "query string is not valid UTF-8");
    }

    #[test]
    fn constructor_rejects_nul() {
        assert!(matches!(
            Query::new("select 1\0drop table t"),
            Err(WireError::ContainsNul { .. })
        ));
    }

    #[test]
    fn wrong_tag_is_unexpected() {
        assert!(matches!(
            Query::from_frame(&Frame::new(b'P', b"x\0")),
            Err(WireError::UnexpectedMessage {
                expected: "Query",
                got: b'P'
            })
        ));
    }

    #[test]
    fn query_text_borrows_and_agrees_with_parse() {
        let body = b"select 1\0";
        let sql = query_text(body).unwrap();
        assert_eq!(sql, "select 1");
        assert_eq!(sql.as_ptr(), body.as_ptr());
        for bad in [&b"x"[..], b"x\0y", b"\xff\0", b""] {
            assert!(query_text(bad).is_err());
        }
    }

    #[test]
    fn random_bodies_never_panic() {
        assert!(check_parser::<Query>(&[b"select 1\0", b"\0"], true) > 50);
    }
}
