//! CommandComplete: a statement finished; the command tag says what it did.

use bytes::Bytes;

use crate::buf::{frame_bytes, put_cstr, Reader};
use crate::messages::{Message, Side};
use crate::{tags, Frame, WireError};

/// Commands whose tag ends in a row count.
const COUNTED: [&str; 8] = [
    "SELECT", "INSERT", "UPDATE", "DELETE", "MERGE", "FETCH", "MOVE", "COPY",
];

/// The command tag of a finished statement, e.g. `SELECT 3`, `INSERT 0 1`, `CREATE TABLE`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandComplete {
    /// The tag.
    pub tag: String,
}

impl CommandComplete {
    /// A CommandComplete with `tag`.
    pub fn new(tag: impl Into<String>) -> Self {
        CommandComplete { tag: tag.into() }
    }

    /// Rows the command returned or affected, for commands whose tag carries a count.
    pub fn rows(&self) -> Option<u64> {
        let mut words = self.tag.split(' ');
        let command = words.next()?;
        if !COUNTED.contains(&command) {
            return None;
        }
        words.next_back()?.parse().ok()
    }
}

impl Message for CommandComplete {
    const TAG: u8 = tags::backend::COMMAND_COMPLETE;
    const NAME: &'static str = "CommandComplete";
    const SENT_BY: &'static [Side] = &[Side::Backend];

    fn parse(frame: &Frame) -> Result<Self, WireError> {
        let mut r = Reader::new(frame.body());
        let tag = r.lossy("command tag")?;
        r.finish("bytes after the command tag")?;
        Ok(CommandComplete { tag })
    }

    fn encode(&self) -> Bytes {
        frame_bytes(Self::TAG, self.tag.len() + 1, |b| {
            put_cstr(b, self.tag.as_bytes())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::check_parser;
    use postgres_protocol::message::backend::Message as PgMessage;

    #[test]
    fn round_trips_and_postgres_protocol_agrees() {
        let c = CommandComplete::new("INSERT 0 3");
        assert_eq!(CommandComplete::from_frame(&c.to_frame()).unwrap(), c);
        let mut buf = bytes::BytesMut::from(&c.encode()[..]);
        let Some(PgMessage::CommandComplete(m)) = PgMessage::parse(&mut buf).unwrap() else {
            panic!("not CommandComplete");
        };
        assert_eq!(m.tag().unwrap(), "INSERT 0 3");
    }

    #[test]
    fn reads_row_counts() {
        for (tag, rows) in [
            ("SELECT 12", Some(12)),
            ("INSERT 0 3", Some(3)),
            ("UPDATE 0", Some(0)),
            ("COPY 100000", Some(100_000)),
            ("CREATE TABLE", None),
            ("SELECT", None),
            ("DROP TABLE 5", None),
            ("", None),
        ] {
            assert_eq!(CommandComplete::new(tag).rows(), rows, "{tag}");
        }
    }

    #[test]
    fn rejects_malformed_bodies() {
        for body in [&b""[..], b"SELECT 1", b"SELECT 1\0\0"] {
            assert!(
                matches!(
                    CommandComplete::from_frame(&Frame::new(b'C', body)),
                    Err(WireError::Malformed { .. })
                ),
                "{body:?}"
            );
        }
    }

    #[test]
    fn random_bodies_never_panic() {
        assert!(check_parser::<CommandComplete>(&[b"SELECT 1\0"], false) > 50);
    }
}
