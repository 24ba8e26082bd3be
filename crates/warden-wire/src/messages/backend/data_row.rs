//! DataRow: one result row. The hot path of masking, so reading it allocates nothing.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

use crate::buf::Reader;
use crate::messages::{Message, Side};
use crate::{tags, Frame, WireError};

/// One row, kept as its frame. [`DataRow::columns`] walks the values in place; a masked row
/// is written with [`DataRow::encode_into`] straight into the output buffer. `Debug` shows
/// the shape only: rows are exactly the data masking protects.
#[derive(Clone, PartialEq, Eq)]
pub struct DataRow {
    frame: Frame,
    columns: u16,
}

impl DataRow {
    /// A row of `columns` (`None` is SQL NULL).
    pub fn new<'a>(columns: impl IntoIterator<Item = Option<&'a [u8]>>) -> Result<Self, WireError> {
        let mut buf = BytesMut::new();
        let count = write_row(&mut buf, columns)?;
        Ok(DataRow {
            frame: Frame::from_encoded(tags::backend::DATA_ROW, buf.freeze()),
            columns: count,
        })
    }

    /// Appends a DataRow of `columns` to `dst` without building a `DataRow`. On error (more
    /// than 65535 columns, a value over `i32::MAX` bytes) `dst` is left as it was.
    pub fn encode_into<'a>(
        dst: &mut BytesMut,
        columns: impl IntoIterator<Item = Option<&'a [u8]>>,
    ) -> Result<(), WireError> {
        write_row(dst, columns).map(|_| ())
    }

    /// Number of columns.
    pub fn len(&self) -> usize {
        usize::from(self.columns)
    }

    /// True for a row without columns.
    pub fn is_empty(&self) -> bool {
        self.columns == 0
    }

    /// The column values in order, borrowed from the frame (`None` is SQL NULL).
    pub fn columns(&self) -> DataRowColumns<'_> {
        let mut r = Reader::new(self.frame.body());
        // The count was validated by `parse`; skip it.
        let left = r.u16("column count").map_or(0, |_| self.columns);
        DataRowColumns { r, left }
    }

    /// Validates a DataRow body and iterates its values borrowed from it, without the
    /// copy into a [`Frame`] that [`Message::from_frame`] needs (for hot paths that only
    /// read the row once).
    pub fn values_of(body: &[u8]) -> Result<DataRowColumns<'_>, WireError> {
        let columns = validate(body)?;
        let mut r = Reader::new(body);
        let left = r.u16("column count").map_or(0, |_| columns);
        Ok(DataRowColumns { r, left })
    }

    /// The value of column `index`: `None` when out of range, `Some(None)` for NULL.
    pub fn column(&self, index: usize) -> Option<Option<&[u8]>> {
        self.columns().nth(index)
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

/// Writes one DataRow frame to `dst`, restoring `dst` on error.
fn write_row<'a>(
    dst: &mut BytesMut,
    columns: impl IntoIterator<Item = Option<&'a [u8]>>,
) -> Result<u16, WireError> {
    let start = dst.len();
    let result = write_row_unguarded(dst, start, columns);
    if result.is_err() {
        dst.truncate(start);
    }
    result
}

fn write_row_unguarded<'a>(
    dst: &mut BytesMut,
    start: usize,
    columns: impl IntoIterator<Item = Option<&'a [u8]>>,
) -> Result<u16, WireError> {
    dst.put_u8(tags::backend::DATA_ROW);
    dst.put_u32(0);
    dst.put_u16(0);
    let mut count: u16 = 0;
    for (i, column) in columns.into_iter().enumerate() {
        count = u16::try_from(i + 1).map_err(|_| WireError::TooMany {
            what: "columns",
            count: i + 1,
            max: usize::from(u16::MAX),
        })?;
        match column {
            None => dst.put_i32(-1),
            Some(v) => {
                let len = i32::try_from(v.len()).map_err(|_| WireError::TooMany {
                    what: "bytes in a column value",
                    count: v.len(),
                    max: i32::MAX as usize,
                })?;
                dst.put_i32(len);
                dst.extend_from_slice(v);
            }
        }
    }
    let len = u32::try_from(dst.len() - start - 1).map_err(|_| WireError::TooMany {
        what: "bytes in a row",
        count: dst.len() - start - 1,
        max: u32::MAX as usize,
    })?;
    if let Some(slot) = dst.get_mut(start + 1..start + 5) {
        slot.copy_from_slice(&len.to_be_bytes());
    }
    if let Some(slot) = dst.get_mut(start + 5..start + 7) {
        slot.copy_from_slice(&count.to_be_bytes());
    }
    Ok(count)
}

impl Message for DataRow {
    const TAG: u8 = tags::backend::DATA_ROW;
    const NAME: &'static str = "DataRow";
    const SENT_BY: &'static [Side] = &[Side::Backend];

    fn parse(frame: &Frame) -> Result<Self, WireError> {
        let columns = validate(frame.body())?;
        Ok(DataRow {
            frame: frame.clone(),
            columns,
        })
    }

    fn encode(&self) -> Bytes {
        self.frame.raw().clone()
    }
}

/// Checks every length of a DataRow body once, so iteration can trust the layout; returns
/// the column count.
fn validate(body: &[u8]) -> Result<u16, WireError> {
    let mut r = Reader::new(body);
    let columns = r.u16("column count")?;
    for _ in 0..columns {
        let len = r.i32("column length")?;
        if len == -1 {
            continue;
        }
        let len =
            usize::try_from(len).map_err(|_| WireError::malformed("negative column length"))?;
        r.range(len, "column value shorter than its length")?;
    }
    r.finish("bytes after the last column")?;
    Ok(columns)
}

impl fmt::Debug for DataRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataRow")
            .field("columns", &self.columns)
            .field("wire_len", &self.frame.wire_len())
            .finish()
    }
}

/// Iterator over a [`DataRow`]'s values, borrowed from its frame.
pub struct DataRowColumns<'a> {
    r: Reader<'a>,
    left: u16,
}

impl<'a> Iterator for DataRowColumns<'a> {
    type Item = Option<&'a [u8]>;

    fn next(&mut self) -> Option<Self::Item> {
        self.left = self.left.checked_sub(1)?;
        // The layout was validated when the row was parsed; should it somehow not hold,
        // end the iteration rather than panic.
        let len = self.r.i32("column length").ok()?;
        if len == -1 {
            return Some(None);
        }
        let len = usize::try_from(len).ok()?;
        self.r.bytes(len, "column value").ok().map(Some)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        // Exact: `parse` checked that every announced column is present.
        (usize::from(self.left), Some(usize::from(self.left)))
    }
}

impl ExactSizeIterator for DataRowColumns<'_> {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::check_parser;
    use postgres_protocol::message::backend::Message as PgMessage;

    #[test]
    fn round_trips_with_nulls_and_empty_values() {
        let cols: [Option<&[u8]>; 4] = [Some(b"1"), None, Some(b""), Some(b"alice@example.com")];
        let row = DataRow::new(cols).unwrap();
        assert_eq!(row.len(), 4);
        let parsed = DataRow::from_frame(&Frame::from_raw(row.encode(), 1 << 20).unwrap()).unwrap();
        assert_eq!(parsed, row);
        assert_eq!(parsed.columns().len(), 4);
        assert_eq!(parsed.columns().collect::<Vec<_>>(), cols.to_vec());
        assert_eq!(parsed.column(1), Some(None));
        assert_eq!(parsed.column(3), Some(Some(&b"alice@example.com"[..])));
        assert_eq!(parsed.column(4), None);
    }

    #[test]
    fn postgres_protocol_reads_our_encoding() {
        let row = DataRow::new([Some(&b"x"[..]), None]).unwrap();
        assert_eq!(
            &row.encode()[..],
            b"D\0\0\0\x0f\0\x02\0\0\0\x01x\xff\xff\xff\xff"
        );
        let mut buf = BytesMut::from(&row.encode()[..]);
        let Some(PgMessage::DataRow(m)) = PgMessage::parse(&mut buf).unwrap() else {
            panic!("not DataRow");
        };
        assert_eq!(m.buffer(), b"\0\0\0\x01x\xff\xff\xff\xff");
    }

    #[test]
    fn values_of_reads_a_body_as_parse_does() {
        let cols: [Option<&[u8]>; 3] = [Some(b"1"), None, Some(b"")];
        let raw = DataRow::new(cols).unwrap().encode();
        let body = &raw[5..];
        assert_eq!(
            DataRow::values_of(body).unwrap().collect::<Vec<_>>(),
            cols.to_vec()
        );
        // Truncated, oversized, negative or trailing: refused like `parse`.
        for bad in [
            &body[..body.len() - 1],
            &b"\0\x01\0\0\0\x09abc"[..],
            &b"\0\x01\xff\xff\xff\xfe"[..],
            &b"\0\x00x"[..],
            &b"\0"[..],
        ] {
            assert!(DataRow::values_of(bad).is_err(), "{bad:?}");
            assert!(DataRow::from_frame(&Frame::new(b'D', bad)).is_err());
        }
    }

    #[test]
    fn columns_borrow_from_the_frame() {
        let frame = Frame::new(b'D', b"\0\x01\0\0\0\x03abc");
        let row = DataRow::from_frame(&frame).unwrap();
        let value = row.column(0).flatten().unwrap();
        assert_eq!(value.as_ptr(), frame.raw()[11..].as_ptr());
    }

    #[test]
    fn encode_into_appends_and_masks_in_place() {
        let row = DataRow::new([Some(&b"alice@example.com"[..]), Some(b"42")]).unwrap();
        let mut out = BytesMut::from(&b"prefix"[..]);
        DataRow::encode_into(
            &mut out,
            row.columns()
                .enumerate()
                .map(|(i, v)| if i == 0 { Some(&b"***"[..]) } else { v }),
        )
        .unwrap();
        assert_eq!(&out[..6], b"prefix");
        let masked =
            DataRow::from_frame(&Frame::from_raw(out.freeze().slice(6..), 1 << 20).unwrap())
                .unwrap();
        assert_eq!(
            masked.columns().collect::<Vec<_>>(),
            vec![Some(&b"***"[..]), Some(&b"42"[..])]
        );
    }

    #[test]
    fn encode_into_leaves_the_buffer_intact_on_error() {
        let mut out = BytesMut::from(&b"keep"[..]);
        let too_many = std::iter::repeat_n(None, 65_536);
        assert!(matches!(
            DataRow::encode_into(&mut out, too_many),
            Err(WireError::TooMany {
                what: "columns",
                ..
            })
        ));
        assert_eq!(&out[..], b"keep");
        assert_eq!(
            DataRow::new(std::iter::repeat_n(None, 65_535))
                .unwrap()
                .len(),
            65_535
        );
    }

    #[test]
    fn rejects_malformed_bodies() {
        for (body, why) in [
            (&b""[..], "empty"),
            (b"\0", "half a count"),
            (b"\0\x01", "count without columns"),
            (b"\0\x01\0\0\0\x05abc", "value shorter than its length"),
            (b"\0\x01\0\0\0\x01ab", "trailing bytes"),
            (b"\0\x01\xff\xff\xff\xfe", "length -2"),
            (b"\0\x01\x80\0\0\0", "length -2^31"),
            (b"\0\x01\x7f\xff\xff\xff", "length 2^31-1 with no data"),
            (b"\xff\xff\xff\xff\xff\xff", "65535 columns announced"),
        ] {
            assert!(
                matches!(
                    DataRow::from_frame(&Frame::new(b'D', body)),
                    Err(WireError::Malformed { .. })
                ),
                "{why}"
            );
        }
    }

    #[test]
    fn debug_hides_values() {
        let row = DataRow::new([Some(&b"123-45-6789"[..])]).unwrap();
        assert!(!format!("{row:?}").contains("6789"));
    }

    #[test]
    fn random_bodies_never_panic() {
        let samples: [&[u8]; 2] = [b"\0\x03\0\0\0\x01x\xff\xff\xff\xff\0\0\0\0", b"\0\0"];
        assert!(check_parser::<DataRow>(&samples, true) > 50);
        // Iterating any parsed row yields exactly its column count.
        let mut rng = crate::testutil::XorShift::new(11);
        for _ in 0..3000 {
            let body = rng.mutate(samples[0]);
            if let Ok(row) = DataRow::from_frame(&Frame::new(b'D', &body)) {
                assert_eq!(row.columns().count(), row.len());
            }
        }
    }
}
