//! Reading a recording back: [`read_file`].
//!
//! The reader checks the line structure and parses every event; it does not check the
//! hash chain (that is [`crate::verify`]). It never panics, whatever the file holds.

use std::fs::File;
use std::io::{self, BufReader};
use std::path::{Path, PathBuf};

use crate::event::{Event, EventBody, SessionEnd, SessionStart};
use crate::line::{
    read_line, split_line, LineRead, Split, BAD_SEPARATOR, MAX_LINE_BYTES, NOT_HEX, NO_PREFIX,
};

/// A recording as read from disk.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Recording {
    /// Every committed (newline-terminated) event, in file order.
    pub events: Vec<Event>,
    /// True when the file ended with a partial line (the gateway stopped mid-write).
    /// That line is not in `events`.
    pub torn_tail: bool,
}

impl Recording {
    /// The session start, when the first event is one.
    pub fn start(&self) -> Option<&SessionStart> {
        match self.events.first().map(|e| &e.body) {
            Some(EventBody::SessionStart(s)) => Some(s),
            _ => None,
        }
    }

    /// The session end, when the last event is one.
    pub fn end(&self) -> Option<&SessionEnd> {
        match self.events.last().map(|e| &e.body) {
            Some(EventBody::SessionEnd(e)) => Some(e),
            _ => None,
        }
    }
}

/// Why a recording could not be read. Line numbers count from 1.
#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    /// Opening or reading the file failed (or the session id was refused).
    #[error(transparent)]
    Io(#[from] io::Error),
    /// A line longer than [`MAX_LINE_BYTES`].
    #[error("line {line}: longer than {MAX_LINE_BYTES} bytes")]
    LineTooLong {
        /// The line.
        line: usize,
    },
    /// A line that is not UTF-8.
    #[error("line {line}: not valid UTF-8")]
    InvalidUtf8 {
        /// The line.
        line: usize,
    },
    /// A line without a proper `<64 hex> ` prefix.
    #[error("line {line}: {detail}")]
    BadPrefix {
        /// The line.
        line: usize,
        /// What is wrong.
        detail: &'static str,
    },
    /// A line whose JSON is not an event.
    #[error("line {line}: not a recording event: {source}")]
    BadJson {
        /// The line.
        line: usize,
        /// The parser's complaint.
        source: serde_json::Error,
    },
}

/// Whether `id` is a session id recordings accept: `[A-Za-z0-9-]{1,64}`.
pub fn valid_session_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// `dir/<first two chars of session_id>/<session_id>.wrec`; `InvalidInput` when the
/// id is not [`valid_session_id`] (so no id can lead outside `dir`).
pub fn path_for(dir: &Path, session_id: &str) -> io::Result<PathBuf> {
    if !valid_session_id(session_id) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "session id must be 1 to 64 characters of A-Z, a-z, 0-9 and -",
        ));
    }
    let shard = &session_id[..session_id.len().min(2)];
    Ok(dir.join(shard).join(format!("{session_id}.wrec")))
}

/// Reads and parses a whole recording. A last line without a newline is reported as
/// [`Recording::torn_tail`], not as an error; any other damage is an error naming the
/// line.
pub fn read_file(path: &Path) -> Result<Recording, RecordingError> {
    let mut r = BufReader::with_capacity(64 * 1024, File::open(path)?);
    let mut buf = Vec::new();
    let mut rec = Recording::default();
    let mut line = 0usize;
    loop {
        line += 1;
        match read_line(&mut r, &mut buf)? {
            LineRead::Eof => break,
            LineRead::Torn => {
                rec.torn_tail = true;
                break;
            }
            LineRead::TooLong => return Err(RecordingError::LineTooLong { line }),
            LineRead::Line => rec.events.push(parse_line(&buf, line)?),
        }
    }
    Ok(rec)
}

/// Parses one committed line (without its newline) into its event.
pub(crate) fn parse_line(buf: &[u8], line: usize) -> Result<Event, RecordingError> {
    if std::str::from_utf8(buf).is_err() {
        return Err(RecordingError::InvalidUtf8 { line });
    }
    let json = match split_line(buf) {
        Split::Ok(_, json) => json,
        Split::NotHex(_) => {
            return Err(RecordingError::BadPrefix {
                line,
                detail: NOT_HEX,
            })
        }
        Split::BadSeparator(..) => {
            return Err(RecordingError::BadPrefix {
                line,
                detail: BAD_SEPARATOR,
            })
        }
        Split::NoPrefix => {
            return Err(RecordingError::BadPrefix {
                line,
                detail: NO_PREFIX,
            })
        }
    };
    serde_json::from_slice(json).map_err(|source| RecordingError::BadJson { line, source })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::*;
    use std::io::Write;

    #[test]
    fn roundtrip_equal() {
        let dir = tempfile::tempdir().unwrap();
        let (path, events, _) = write_sample(dir.path(), SID);
        let r = read_file(&path).unwrap();
        assert!(!r.torn_tail);
        assert_eq!(r.events, events);
        assert_eq!(r.start().unwrap().session_id, SID);
        assert_eq!(r.end().unwrap().reason, "client_quit");
    }

    #[test]
    fn path_for_shards_and_refuses() {
        let d = Path::new("/rec");
        assert_eq!(
            path_for(d, "ab12-x").unwrap(),
            PathBuf::from("/rec/ab/ab12-x.wrec")
        );
        assert_eq!(path_for(d, "a").unwrap(), PathBuf::from("/rec/a/a.wrec"));
        for bad in ["", "../x", "a/b", "..", "a.b", "a\nb"] {
            assert_eq!(
                path_for(d, bad).unwrap_err().kind(),
                io::ErrorKind::InvalidInput
            );
        }
        assert!(valid_session_id(&"Z9-".repeat(21)));
        assert!(!valid_session_id(&"a".repeat(65)));
    }

    #[test]
    fn torn_tail_after_kill_mid_line() {
        let dir = tempfile::tempdir().unwrap();
        let (path, events, _) = write_sample(dir.path(), SID);
        let bytes = std::fs::read(&path).unwrap();
        // Cut in the middle of the last line (as a kill mid-write would).
        let last_start = bytes[..bytes.len() - 1]
            .iter()
            .rposition(|&b| b == b'\n')
            .unwrap()
            + 1;
        let cut = last_start + (bytes.len() - last_start) / 2;
        std::fs::write(&path, &bytes[..cut]).unwrap();
        let r = read_file(&path).unwrap();
        assert!(r.torn_tail);
        assert_eq!(r.events, events[..events.len() - 1]);
        // Cut exactly before the final newline: still torn.
        std::fs::write(&path, &bytes[..bytes.len() - 1]).unwrap();
        let r = read_file(&path).unwrap();
        assert!(r.torn_tail);
        assert_eq!(r.events.len(), events.len() - 1);
    }

    fn read_bytes(bytes: &[u8]) -> Result<Recording, RecordingError> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.wrec");
        std::fs::write(&p, bytes).unwrap();
        read_file(&p)
    }

    #[test]
    fn hostile_inputs_are_errors_naming_the_line() {
        // Empty: no events, not an error.
        let r = read_bytes(b"").unwrap();
        assert!(r.events.is_empty() && !r.torn_tail);
        // A lone newline: an empty line.
        let e = read_bytes(b"\n").unwrap_err();
        assert!(
            matches!(e, RecordingError::BadPrefix { line: 1, .. }),
            "{e}"
        );
        // Garbage.
        let e = read_bytes(b"hello world\n").unwrap_err();
        assert!(
            matches!(e, RecordingError::BadPrefix { line: 1, .. }),
            "{e}"
        );
        // Binary garbage only as a tail: torn, not an error.
        assert!(read_bytes(b"\xff\xfe\x00").unwrap().torn_tail);

        let good = sample_lines(SID);
        let h = "a".repeat(64);
        // Invalid UTF-8 on line 2.
        let mut b = good[0].clone();
        b.extend_from_slice(format!("{h} {{\"seq\":1,").as_bytes());
        b.extend_from_slice(b"\xff}\n");
        let e = read_bytes(&b).unwrap_err();
        assert!(matches!(e, RecordingError::InvalidUtf8 { line: 2 }), "{e}");
        assert!(e.to_string().starts_with("line 2:"));
        // JSON with wrong types.
        for json in [
            r#"{"seq":"1","at_us":0,"type":"notice","kind":"k","message":"m"}"#,
            r#"{"seq":1,"at_us":0,"type":"notice","kind":5,"message":"m"}"#,
            r#"{"seq":-1,"at_us":0,"type":"notice","kind":"k","message":"m"}"#,
            r#"{"seq":1,"at_us":0,"type":"nope"}"#,
            r#"{"seq":1,"at_us":0}"#,
            r#"[1,2,3]"#,
            r#"{"seq":1"#,
            "",
        ] {
            let mut b = good[0].clone();
            b.extend_from_slice(format!("{h} {json}\n").as_bytes());
            let e = read_bytes(&b).unwrap_err();
            assert!(
                matches!(e, RecordingError::BadJson { line: 2, .. }),
                "{json}: {e}"
            );
        }
        // Hash not hex / wrong length / missing space.
        for prefix in [
            format!("{} ", "g".repeat(64)),
            format!("{} ", "A".repeat(64)),
            format!("{} ", "a".repeat(63)),
            format!("{}x", "a".repeat(64)),
        ] {
            let mut b = good[0].clone();
            b.extend_from_slice(prefix.as_bytes());
            b.extend_from_slice(b"{}\n");
            let e = read_bytes(&b).unwrap_err();
            assert!(
                matches!(e, RecordingError::BadPrefix { line: 2, .. }),
                "{prefix}: {e}"
            );
        }
        // Deeply nested JSON: an error, not a stack overflow.
        let mut b = good[0].clone();
        b.extend_from_slice(format!("{h} ").as_bytes());
        b.extend(std::iter::repeat_n(b'[', 100_000));
        b.push(b'\n');
        assert!(matches!(
            read_bytes(&b).unwrap_err(),
            RecordingError::BadJson { line: 2, .. }
        ));
    }

    #[test]
    fn line_over_64_mib_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        // Sparse: one 70 MiB line of NULs without a newline.
        let p = dir.path().join("sparse.wrec");
        let f = File::create(&p).unwrap();
        f.set_len(70 * 1024 * 1024).unwrap();
        drop(f);
        let e = read_file(&p).unwrap_err();
        assert!(matches!(e, RecordingError::LineTooLong { line: 1 }), "{e}");

        // A good line, then a 70 MiB line of repeated bytes with a newline.
        let p = dir.path().join("long.wrec");
        let mut f = File::create(&p).unwrap();
        f.write_all(&sample_lines(SID)[0]).unwrap();
        let chunk = vec![b'a'; 1024 * 1024];
        for _ in 0..70 {
            f.write_all(&chunk).unwrap();
        }
        f.write_all(b"\n").unwrap();
        drop(f);
        let e = read_file(&p).unwrap_err();
        assert!(matches!(e, RecordingError::LineTooLong { line: 2 }), "{e}");
    }

    #[test]
    fn missing_file_is_io_error() {
        let dir = tempfile::tempdir().unwrap();
        let e = read_file(&dir.path().join("nope.wrec")).unwrap_err();
        assert!(matches!(e, RecordingError::Io(ref io) if io.kind() == io::ErrorKind::NotFound));
    }
}
