//! Writing a recording: [`SessionWriter`], one per session, on the proxy's hot path.
//!
//! [`SessionWriter::push`] serialises the event straight into an in-memory buffer and
//! advances the hash chain; it never touches the file. [`SessionWriter::flush`] writes
//! the buffer with one write (no fsync), typically at each ReadyForQuery.
//! [`SessionWriter::finish`] appends the `SessionEnd`, flushes and fsyncs.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::event::{Event, EventBody, Notice, SessionEnd};
use crate::line::{chain_hash, genesis, PREFIX_LEN};
use crate::reader::path_for;

/// After a flush, a buffer that grew beyond this (a large result) is given back.
const KEEP_CAPACITY: usize = 1024 * 1024;
/// Initial buffer capacity.
const INITIAL_CAPACITY: usize = 16 * 1024;

/// Appends one session's events to its `.wrec` file.
///
/// Dropping a writer without [`finish`](Self::finish) flushes what is buffered (best
/// effort, errors ignored) and leaves the recording without a `SessionEnd`.
#[derive(Debug)]
pub struct SessionWriter {
    path: PathBuf,
    file: File,
    /// Serialised lines not yet written.
    buf: Vec<u8>,
    next_seq: u64,
    /// Hash of the last pushed line (the genesis before the first).
    head: [u8; 32],
}

impl SessionWriter {
    /// Creates `dir/<first two chars of session_id>/<session_id>.wrec` (mode 0600,
    /// directories 0700) and refuses an existing file. `session_id` must match
    /// `[A-Za-z0-9-]{1,64}` (`InvalidInput` otherwise).
    ///
    /// The first event pushed should be a `SessionStart`.
    pub fn create(dir: &Path, session_id: &str) -> io::Result<SessionWriter> {
        let path = path_for(dir, session_id)?;
        if let Some(parent) = path.parent() {
            let mut b = std::fs::DirBuilder::new();
            b.recursive(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::DirBuilderExt;
                b.mode(0o700);
            }
            b.create(parent)?;
        }
        let mut o = OpenOptions::new();
        o.append(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            o.mode(0o600);
        }
        let file = o.open(&path)?;
        Ok(SessionWriter {
            path,
            file,
            buf: Vec::with_capacity(INITIAL_CAPACITY),
            next_seq: 0,
            head: genesis(session_id),
        })
    }

    /// The recording's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends an event to the buffer and returns its `seq`. No I/O.
    pub fn push(&mut self, at_us: i64, body: EventBody) -> u64 {
        let seq = self.next_seq;
        let event = Event { seq, at_us, body };
        let start = self.buf.len();
        self.buf.extend_from_slice(&[0u8; PREFIX_LEN]);
        if let Err(e) = serde_json::to_writer(&mut self.buf, &event) {
            // Not reachable for these types (string keys only), but a recording must
            // never lose its chain: record the failure instead of the event.
            self.buf.truncate(start + PREFIX_LEN);
            let fallback = Event {
                seq,
                at_us,
                body: EventBody::Notice(Notice {
                    kind: "recording_error".into(),
                    message: format!("event could not be serialised: {e}"),
                }),
            };
            if serde_json::to_writer(&mut self.buf, &fallback).is_err() {
                self.buf.truncate(start);
                return seq;
            }
        }
        let hash = chain_hash(&self.head, &self.buf[start + PREFIX_LEN..]);
        // The slice is exactly 64 bytes, so this cannot fail.
        let _ = hex::encode_to_slice(hash, &mut self.buf[start..start + 64]);
        self.buf[start + 64] = b' ';
        self.buf.push(b'\n');
        self.head = hash;
        self.next_seq += 1;
        seq
    }

    /// Writes everything buffered (one `write_all`-style loop, no fsync). On error, the
    /// bytes not yet written stay buffered and the next flush retries them, so a
    /// partial write never duplicates or loses a byte.
    pub fn flush(&mut self) -> io::Result<()> {
        let mut written = 0;
        let mut result = Ok(());
        while written < self.buf.len() {
            match self.file.write(&self.buf[written..]) {
                Ok(0) => {
                    result = Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "recording write returned 0",
                    ));
                    break;
                }
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        if written == self.buf.len() {
            self.buf.clear();
            if self.buf.capacity() > KEEP_CAPACITY {
                self.buf = Vec::with_capacity(INITIAL_CAPACITY);
            }
        } else {
            self.buf.drain(..written);
        }
        result
    }

    /// Bytes pushed but not yet written.
    pub fn pending_bytes(&self) -> usize {
        self.buf.len()
    }

    /// The next `seq` and the hex hash of the last pushed line (the chain head).
    pub fn head(&self) -> (u64, String) {
        (self.next_seq, hex::encode(self.head))
    }

    /// Pushes the `SessionEnd`, flushes and fsyncs (the file, then its directory, best
    /// effort); returns the final hash (hex), which the caller anchors in the store.
    pub fn finish(mut self, at_us: i64, end: SessionEnd) -> io::Result<String> {
        self.push(at_us, EventBody::SessionEnd(end));
        self.flush()?;
        self.file.sync_all()?;
        // Make the file's directory entry durable too (best effort: not every
        // filesystem can fsync a directory).
        if let Some(dir) = self.path.parent() {
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(hex::encode(self.head))
    }
}

impl Drop for SessionWriter {
    fn drop(&mut self) {
        if !self.buf.is_empty() {
            let _ = self.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{SessionStart, Statement};
    use crate::reader::read_file;
    use crate::testutil::*;

    #[test]
    fn creates_file_with_private_modes_and_refuses_existing() {
        let dir = tempfile::tempdir().unwrap();
        let w = SessionWriter::create(dir.path(), SID).unwrap();
        assert_eq!(w.path(), dir.path().join("s1").join(format!("{SID}.wrec")));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let m = std::fs::metadata(w.path()).unwrap().permissions().mode();
            assert_eq!(m & 0o777, 0o600);
            let d = std::fs::metadata(w.path().parent().unwrap())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(d & 0o777, 0o700);
        }
        let e = SessionWriter::create(dir.path(), SID).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
    }

    #[test]
    fn refuses_path_unsafe_session_ids() {
        let dir = tempfile::tempdir().unwrap();
        let long = "a".repeat(65);
        for bad in [
            "",
            "..",
            "../etc",
            "a/b",
            "a\\b",
            ".hidden",
            "a b",
            "a\0b",
            "é",
            "abc.wrec",
            long.as_str(),
        ] {
            let e = SessionWriter::create(dir.path(), bad).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{bad:?}");
        }
        // Nothing was created.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        // Edge cases that are fine.
        SessionWriter::create(dir.path(), "x").unwrap();
        SessionWriter::create(dir.path(), &"b".repeat(64)).unwrap();
    }

    #[test]
    fn push_buffers_and_flush_writes() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SessionWriter::create(dir.path(), SID).unwrap();
        let (seq, h0) = w.head();
        assert_eq!(seq, 0);
        assert_eq!(h0, hex::encode(genesis(SID)));
        assert_eq!(
            w.push(
                1,
                EventBody::SessionStart(SessionStart {
                    session_id: SID.into(),
                    ..Default::default()
                })
            ),
            0
        );
        assert_eq!(w.push(2, EventBody::Statement(Statement::default())), 1);
        assert!(w.pending_bytes() > 0);
        assert_eq!(std::fs::metadata(w.path()).unwrap().len(), 0);
        let pending = w.pending_bytes() as u64;
        w.flush().unwrap();
        assert_eq!(w.pending_bytes(), 0);
        assert_eq!(std::fs::metadata(w.path()).unwrap().len(), pending);
        assert_eq!(w.head().0, 2);
        // Flushing nothing is fine.
        w.flush().unwrap();
        let path = w.path().to_owned();
        let fin = w.finish(3, SessionEnd::default()).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let last = text.lines().last().unwrap();
        assert_eq!(&last[..64], fin);
        assert_eq!(read_file(&path).unwrap().events.len(), 3);
    }

    #[test]
    fn drop_flushes_buffered_events() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SessionWriter::create(dir.path(), SID).unwrap();
        w.push(1, EventBody::SessionStart(SessionStart::default()));
        let path = w.path().to_owned();
        drop(w);
        let r = read_file(&path).unwrap();
        assert_eq!(r.events.len(), 1);
        assert!(!r.torn_tail);
    }

    #[test]
    fn big_buffer_is_given_back_after_flush() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SessionWriter::create(dir.path(), SID).unwrap();
        w.push(
            1,
            EventBody::Statement(Statement {
                sql: "x".repeat(2 * KEEP_CAPACITY),
                ..Default::default()
            }),
        );
        w.flush().unwrap();
        assert!(w.buf.capacity() <= KEEP_CAPACITY);
    }

    /// Micro-benchmark of the hot path. Run with
    /// `cargo test -p warden-recording --release -- --ignored --nocapture bench_`.
    #[test]
    #[ignore = "micro-benchmark; run in release with --ignored --nocapture"]
    fn bench_push_and_flush_per_event() {
        use std::time::Instant;
        const N: usize = 200_000;
        let stmt = Statement {
            id: 17,
            protocol: "simple".into(),
            sql: "SELECT id, name, email FROM users WHERE id = 42".into(),
            params: vec![],
            redacted: false,
            class: "read".into(),
            decision: "allowed".into(),
            reason: None,
        };
        let dir = tempfile::tempdir().unwrap();
        let mut results = Vec::new();
        for (name, flush_every) in [
            ("push, flush/1024", 1024usize),
            ("push+flush", 1),
            ("push, flush/8", 8),
        ] {
            let mut w = SessionWriter::create(dir.path(), &format!("b{flush_every}")).unwrap();
            // Bodies are built before timing: the caller owns that cost.
            let bodies: Vec<EventBody> = (0..N + 10_000)
                .map(|_| EventBody::Statement(stmt.clone()))
                .collect();
            let mut it = bodies.into_iter();
            for (i, b) in it.by_ref().take(10_000).enumerate() {
                w.push(i as i64, b);
                w.flush().unwrap();
            }
            let t = Instant::now();
            for (i, b) in it.enumerate() {
                w.push(i as i64, b);
                if i % flush_every == 0 {
                    w.flush().unwrap();
                }
            }
            let push_ns = t.elapsed().as_nanos() as f64 / N as f64;
            w.flush().unwrap();
            let bytes = std::fs::metadata(w.path()).unwrap().len() as f64 / (N + 10_000) as f64;
            results.push(format!(
                "{name}: {push_ns:.0} ns/event ({bytes:.0} bytes/line)"
            ));
        }
        for r in results {
            println!("{r}");
        }
    }
}
