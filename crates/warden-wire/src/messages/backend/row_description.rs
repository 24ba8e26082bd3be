//! RowDescription: names, origins and types of the columns of the rows that follow.
//!
//! Masking reads each column's origin (`table_oid`, `column_attr`) from here.

use bytes::{BufMut, Bytes};

use crate::buf::{count_u16, frame_bytes, put_cstr, reject_nul, Reader};
use crate::messages::{Message, Side};
use crate::{tags, Frame, WireError};

/// Bytes of fixed-size fields after each column name.
const FIXED_FIELD_LEN: usize = 18;

/// One column of a RowDescription.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldDescription {
    /// Column label (decoded leniently).
    pub name: String,
    /// OID of the table the column comes from, or 0 for an expression.
    pub table_oid: u32,
    /// Attribute number of the column in that table, or 0 for an expression.
    pub column_attr: i16,
    /// OID of the column's data type.
    pub type_oid: u32,
    /// Type size (`pg_type.typlen`); negative for variable-width types.
    pub type_len: i16,
    /// Type modifier (`pg_attribute.atttypmod`), e.g. a varchar's length.
    pub type_modifier: i32,
    /// Format code: 0 text, 1 binary (0 in a Describe of a statement).
    pub format: i16,
}

impl FieldDescription {
    /// True when the column comes straight from a table column, so masking can match it
    /// by name; false for expressions, whose origin must come from the parse tree.
    pub fn has_origin(&self) -> bool {
        self.table_oid != 0 && self.column_attr > 0
    }
}

/// Column descriptions. Keeps its frame for forwarding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowDescription {
    frame: Frame,
    fields: Vec<FieldDescription>,
}

impl RowDescription {
    /// A RowDescription for `fields`; fails on NUL bytes in a name or more than 65535
    /// fields.
    pub fn new(fields: Vec<FieldDescription>) -> Result<Self, WireError> {
        let count = count_u16(fields.len(), "row description fields")?;
        for f in &fields {
            reject_nul(&f.name, "column name")?;
        }
        let hint = 2 + fields
            .iter()
            .map(|f| f.name.len() + 1 + FIXED_FIELD_LEN)
            .sum::<usize>();
        let raw = frame_bytes(tags::backend::ROW_DESCRIPTION, hint, |b| {
            b.put_u16(count);
            for f in &fields {
                put_cstr(b, f.name.as_bytes());
                b.put_u32(f.table_oid);
                b.put_i16(f.column_attr);
                b.put_u32(f.type_oid);
                b.put_i16(f.type_len);
                b.put_i32(f.type_modifier);
                b.put_i16(f.format);
            }
        });
        Ok(RowDescription {
            frame: Frame::from_encoded(tags::backend::ROW_DESCRIPTION, raw),
            fields,
        })
    }

    /// The columns in order.
    pub fn fields(&self) -> &[FieldDescription] {
        &self.fields
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

impl Message for RowDescription {
    const TAG: u8 = tags::backend::ROW_DESCRIPTION;
    const NAME: &'static str = "RowDescription";
    const SENT_BY: &'static [Side] = &[Side::Backend];

    fn parse(frame: &Frame) -> Result<Self, WireError> {
        let mut r = Reader::new(frame.body());
        let count = usize::from(r.u16("field count")?);
        // Each field takes at least a NUL and the fixed part: check before allocating.
        if count.saturating_mul(FIXED_FIELD_LEN + 1) > r.remaining() {
            return Err(WireError::malformed(
                "field count exceeds the message length",
            ));
        }
        let mut fields = Vec::with_capacity(count);
        for _ in 0..count {
            fields.push(FieldDescription {
                name: r.lossy("column name")?,
                table_oid: r.u32("table OID")?,
                column_attr: r.i16("column attribute number")?,
                type_oid: r.u32("type OID")?,
                type_len: r.i16("type length")?,
                type_modifier: r.i32("type modifier")?,
                format: r.i16("format code")?,
            });
        }
        r.finish("bytes after the last field")?;
        Ok(RowDescription {
            frame: frame.clone(),
            fields,
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
    use postgres_protocol::message::backend::Message as PgMessage;

    fn email() -> FieldDescription {
        FieldDescription {
            name: "email".into(),
            table_oid: 16_384,
            column_attr: 3,
            type_oid: 25,
            type_len: -1,
            type_modifier: -1,
            format: 0,
        }
    }

    fn expression() -> FieldDescription {
        FieldDescription {
            name: "?column?".into(),
            table_oid: 0,
            column_attr: 0,
            type_oid: 23,
            type_len: 4,
            type_modifier: -1,
            format: 1,
        }
    }

    #[test]
    fn round_trips_and_postgres_protocol_agrees() {
        let rd = RowDescription::new(vec![email(), expression()]).unwrap();
        let parsed =
            RowDescription::from_frame(&Frame::from_raw(rd.encode(), 1 << 20).unwrap()).unwrap();
        assert_eq!(parsed, rd);
        assert!(parsed.fields()[0].has_origin());
        assert!(!parsed.fields()[1].has_origin());

        let mut buf = bytes::BytesMut::from(&rd.encode()[..]);
        let Some(PgMessage::RowDescription(m)) = PgMessage::parse(&mut buf).unwrap() else {
            panic!("not RowDescription");
        };
        // Reading its fields needs the `fallible-iterator` crate; the layout is pinned
        // byte for byte below instead.
        drop(m);
        assert!(buf.is_empty());
        let one = RowDescription::new(vec![email()]).unwrap().encode();
        let mut want = b"T\0\0\0\x1e\0\x01email\0".to_vec();
        want.extend_from_slice(&16_384u32.to_be_bytes());
        want.extend_from_slice(&3i16.to_be_bytes());
        want.extend_from_slice(&25u32.to_be_bytes());
        want.extend_from_slice(&(-1i16).to_be_bytes());
        want.extend_from_slice(&(-1i32).to_be_bytes());
        want.extend_from_slice(&0i16.to_be_bytes());
        assert_eq!(&one[..], &want[..]);
    }

    #[test]
    fn empty_description_is_valid() {
        let rd = RowDescription::from_frame(&Frame::new(b'T', b"\0\0")).unwrap();
        assert!(rd.fields().is_empty());
    }

    #[test]
    fn rejects_malformed_bodies_and_hostile_counts() {
        let one = RowDescription::new(vec![email()]).unwrap().encode();
        let body = &one[5..];
        for (bad, why) in [
            (&b""[..], "empty"),
            (&b"\0"[..], "half a count"),
            (&body[..body.len() - 1], "truncated last field"),
            (&body[..8], "name without NUL"),
            (&b"\xff\xff\0"[..], "65535 fields announced"),
        ] {
            assert!(
                matches!(
                    RowDescription::from_frame(&Frame::new(b'T', bad)),
                    Err(WireError::Malformed { .. })
                ),
                "{why}"
            );
        }
        let mut trailing = body.to_vec();
        trailing.push(0);
        assert!(RowDescription::from_frame(&Frame::new(b'T', &trailing)).is_err());
        let mut name = email();
        name.name = "a\0b".into();
        assert!(matches!(
            RowDescription::new(vec![name]),
            Err(WireError::ContainsNul { .. })
        ));
    }

    #[test]
    fn random_bodies_never_panic() {
        let two = RowDescription::new(vec![email(), expression()])
            .unwrap()
            .encode();
        let samples: [&[u8]; 2] = [&two[5..], b"\0\0"];
        assert!(check_parser::<RowDescription>(&samples, true) > 50);
    }
}
