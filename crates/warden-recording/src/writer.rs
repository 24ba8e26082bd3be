//! Writing a recording: [`SessionWriter`], one per session, on the proxy's hot path.
//!
//! [`SessionWriter::push`] serialises the event straight into an in-memory buffer and
//! advances the hash chain; it never touches the file. [`SessionWriter::flush`] moves the
//! buffer into the file's page cache, typically at each ReadyForQuery, so a killed
//! gateway loses nothing the client was told had finished. [`SessionWriter::finish`]
//! appends the `SessionEnd`, trims the file and fsyncs.
//!
//! On Linux the file is written through a shared memory mapping of a window of it,
//! extended with zeros a little ahead of the writes: a flush is then a copy into the page
//! cache, where a `write` per flush cost about twice as much on ext4 and was the largest
//! single cost of recording (see `bench/pgbench.sh`). Until
//! [`finish`](SessionWriter::finish) (or drop) trims it, the file ends in zeros, which
//! readers take as the end of the recording. Where mapping is not available the writer
//! appends with `write`.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::event::{EventBody, Notice, SessionEnd};
use crate::line::{chain_hash, genesis, PREFIX_LEN};
use crate::reader::path_for;

/// After a flush, a buffer that grew beyond this (a large result) is given back.
const KEEP_CAPACITY: usize = 1024 * 1024;
/// Initial buffer capacity.
const INITIAL_CAPACITY: usize = 16 * 1024;
/// The first mapped window; each next one doubles, up to [`MAX_WINDOW`], so a
/// short session reserves little disk and a long one remaps rarely.
const FIRST_WINDOW: u64 = 64 * 1024;
/// The largest window (a flush larger than this gets a window of its own size).
const MAX_WINDOW: u64 = 4 * 1024 * 1024;
/// [`SessionWriter::prepare`] maps the next window when the current one has less room.
const PREPARE_ROOM: u64 = 16 * 1024;

/// Appends one session's events to its `.wrec` file.
///
/// Dropping a writer without [`finish`](Self::finish) flushes what is buffered (best
/// effort, errors ignored), trims the file and leaves the recording without a
/// `SessionEnd`.
#[derive(Debug)]
pub struct SessionWriter {
    path: PathBuf,
    file: File,
    /// Serialised lines not yet written.
    buf: Vec<u8>,
    next_seq: u64,
    /// Hash of the last pushed line (the genesis before the first).
    head: [u8; 32],
    /// Bytes of recording in the file (its size, less any preallocated tail).
    len: u64,
    /// The preallocated window being written, when mapped writing is in use.
    window: Option<mapped::Window>,
    /// Whether mapped writing is in use (false: plain appends).
    mapped: bool,
}

impl SessionWriter {
    /// Creates `dir/<first two chars of session_id>/<session_id>.wrec` (mode 0600,
    /// directories 0700) and refuses an existing file. `session_id` must match
    /// `[A-Za-z0-9-]{1,64}` (`InvalidInput` otherwise).
    ///
    /// The first event pushed should be a `SessionStart`.
    pub fn create(dir: &Path, session_id: &str) -> io::Result<SessionWriter> {
        Self::create_with(dir, session_id, mapped::SUPPORTED)
    }

    /// [`create`](Self::create), choosing whether to try mapped writing.
    fn create_with(dir: &Path, session_id: &str, try_mapped: bool) -> io::Result<SessionWriter> {
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
        // Read access is what a shared writable mapping needs; nothing is read back.
        o.read(true).write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            o.mode(0o600);
        }
        let file = o.open(&path)?;
        let mut w = SessionWriter {
            path,
            file,
            buf: Vec::with_capacity(INITIAL_CAPACITY),
            next_seq: 0,
            head: genesis(session_id),
            len: 0,
            window: None,
            mapped: false,
        };
        if try_mapped {
            // A filesystem that cannot map gets plain appends for the whole file (it
            // never holds a tail of zeros).
            match mapped::Window::new(&w.file, 0, FIRST_WINDOW) {
                Ok(win) => {
                    w.window = Some(win);
                    w.mapped = true;
                }
                Err(e) => {
                    tracing::debug!(error = %e, "recording without a mapped file");
                }
            }
        }
        Ok(w)
    }

    /// The recording's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends an event to the buffer and returns its `seq`. No I/O.
    pub fn push(&mut self, at_us: i64, body: EventBody) -> u64 {
        self.push_line(at_us, |buf, seq| write_event(buf, seq, at_us, &body))
    }

    /// Appends an event whose body is already JSON: an object whose first field is
    /// `"type"`, as [`crate::encode`] writes them. Returns its `seq`. No I/O.
    ///
    /// Anything else is not written as given: a `recording_error` notice takes its place,
    /// so the chain stays whole and the gap is on record.
    pub fn push_object(&mut self, at_us: i64, body: &[u8]) -> u64 {
        self.push_line(at_us, |buf, seq| {
            if !(body.starts_with(b"{\"type\":") && body.ends_with(b"}")) {
                return Err(serde::ser::Error::custom(
                    "an event body is not an object starting with its type",
                ));
            }
            let mut num = itoa::Buffer::new();
            buf.extend_from_slice(b"{\"seq\":");
            buf.extend_from_slice(num.format(seq).as_bytes());
            buf.extend_from_slice(b",\"at_us\":");
            buf.extend_from_slice(num.format(at_us).as_bytes());
            buf.push(b',');
            buf.extend_from_slice(&body[1..]);
            Ok(())
        })
    }

    /// Writes one line: the hash prefix, the JSON `write` appends, the newline; advances
    /// the chain.
    fn push_line(
        &mut self,
        at_us: i64,
        write: impl FnOnce(&mut Vec<u8>, u64) -> serde_json::Result<()>,
    ) -> u64 {
        let seq = self.next_seq;
        let start = self.buf.len();
        self.buf.extend_from_slice(&[0u8; PREFIX_LEN]);
        if let Err(e) = write(&mut self.buf, seq) {
            // A recording must never lose its chain: record the failure instead of the
            // event.
            self.buf.truncate(start + PREFIX_LEN);
            let fallback = EventBody::Notice(Notice {
                kind: "recording_error".into(),
                message: format!("event could not be serialised: {e}"),
            });
            if write_event(&mut self.buf, seq, at_us, &fallback).is_err() {
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

    /// Moves everything buffered into the file (no fsync). On error, the bytes not yet
    /// written stay buffered and the next flush retries them, so a partial write never
    /// duplicates or loses a byte.
    pub fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let result = if self.mapped {
            self.flush_mapped()
        } else {
            self.flush_appending()
        };
        if self.buf.is_empty() && self.buf.capacity() > KEEP_CAPACITY {
            self.buf = Vec::with_capacity(INITIAL_CAPACITY);
        }
        result
    }

    fn flush_mapped(&mut self) -> io::Result<()> {
        let need = self.buf.len() as u64;
        let room = self.window.as_ref().map_or(0, |w| w.room(self.len));
        if room < need {
            self.next_window(need)?;
        }
        let Some(w) = self.window.as_mut() else {
            return Err(io::Error::other("recording window missing"));
        };
        w.write_lines(&self.file, self.len, &self.buf)?;
        self.len += need;
        self.buf.clear();
        Ok(())
    }

    /// Maps a window starting at the end of the recording, with room for at least
    /// `need` bytes: twice the last window's size, up to [`MAX_WINDOW`].
    fn next_window(&mut self, need: u64) -> io::Result<()> {
        // The old window is unmapped first: its pages stay in the page cache.
        let size = self.window.as_ref().map_or(FIRST_WINDOW, |w| w.len() * 2);
        self.window = None;
        let size = size.clamp(FIRST_WINDOW, MAX_WINDOW).max(need);
        self.window = Some(mapped::Window::new(&self.file, self.len, size)?);
        Ok(())
    }

    /// Readies the file for the next flushes, off the path a client waits on: maps the
    /// next window when this one is nearly full, and makes the pages ahead of the end
    /// writable. Call it after forwarding what the last flush made durable.
    ///
    /// That work is most of what writing a recording costs the kernel (a page-cache page
    /// per 4 KiB, and its filesystem bookkeeping); done here, a flush is mostly a copy.
    /// A failure is left for the next flush, which retries the same work and reports it.
    pub fn prepare(&mut self) {
        if !self.mapped {
            return;
        }
        let room = self.window.as_ref().map_or(0, |w| w.room(self.len));
        if room < PREPARE_ROOM && self.next_window(PREPARE_ROOM).is_err() {
            self.window = None;
            return;
        }
        if let Some(w) = self.window.as_mut() {
            w.prefault_at(&self.file, self.len);
        }
    }

    fn flush_appending(&mut self) -> io::Result<()> {
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
        self.len += written as u64;
        self.buf.drain(..written);
        result
    }

    /// Unmaps the window and cuts the file to the recording's length.
    fn trim(&mut self) -> io::Result<()> {
        if self.mapped {
            self.window = None;
            self.file.set_len(self.len)?;
        }
        Ok(())
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
        self.trim()?;
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

/// Writes `{"seq":…,"at_us":…,"type":…,…}`: the fields an [`Event`] reads, in the order
/// its `#[serde(flatten)]` would write them, without flatten's map serializer (the
/// slowest part of serialising an event on the hot path).
fn write_event(
    buf: &mut Vec<u8>,
    seq: u64,
    at_us: i64,
    body: &EventBody,
) -> serde_json::Result<()> {
    let start = buf.len();
    let mut num = itoa::Buffer::new();
    buf.extend_from_slice(b"{\"seq\":");
    buf.extend_from_slice(num.format(seq).as_bytes());
    buf.extend_from_slice(b",\"at_us\":");
    buf.extend_from_slice(num.format(at_us).as_bytes());
    let body_start = buf.len();
    // An internally tagged body is an object that starts with its "type" field, so it
    // is never `{}`: its opening brace becomes the comma after `at_us`.
    serde_json::to_writer(&mut *buf, body)?;
    if buf.get(body_start) != Some(&b'{') || buf.get(body_start + 1) == Some(&b'}') {
        buf.truncate(start);
        return Err(serde::ser::Error::custom(
            "an event body is not a non-empty object",
        ));
    }
    buf[body_start] = b',';
    Ok(())
}

impl Drop for SessionWriter {
    fn drop(&mut self) {
        if !self.buf.is_empty() {
            let _ = self.flush();
        }
        let _ = self.trim();
    }
}

/// Cuts the zeros a killed gateway's writer left preallocated at the end of a recording
/// (see the module docs), so the file holds only what was written. Returns the bytes
/// removed. Only for recordings no writer has open.
pub fn trim_preallocated(dir: &Path, session_id: &str) -> io::Result<u64> {
    use std::io::{Read, Seek, SeekFrom};
    let path = path_for(dir, session_id)?;
    let mut f = OpenOptions::new().read(true).write(true).open(path)?;
    let size = f.metadata()?.len();
    // Walk back over trailing zero bytes, a block at a time.
    let mut end = size;
    let mut block = vec![0u8; 64 * 1024];
    while end > 0 {
        let n = block.len().min(end as usize);
        f.seek(SeekFrom::Start(end - n as u64))?;
        f.read_exact(&mut block[..n])?;
        match block[..n].iter().rposition(|&b| b != 0) {
            Some(i) => {
                end = end - n as u64 + i as u64 + 1;
                break;
            }
            None => end -= n as u64,
        }
    }
    if end < size {
        f.set_len(end)?;
        f.sync_all()?;
    }
    Ok(size - end)
}

/// Writing through a shared mapping of a window of the file: the only `unsafe` in the
/// crate.
#[allow(unsafe_code)]
mod mapped {
    use std::fs::File;
    use std::io;
    use std::sync::atomic::{compiler_fence, Ordering};

    /// Whether this platform can map the file for writing (else: plain appends).
    pub(super) const SUPPORTED: bool = cfg!(target_os = "linux");

    /// A mapped range of the file, extended with written zeros just ahead of use.
    #[derive(Debug)]
    pub(super) struct Window {
        map: memmap2::MmapMut,
        /// File offset of `map[0]`.
        pub(super) base: u64,
        /// Bytes from `map[0]` the file already holds (data or written zeros): only
        /// these may be touched through the mapping (beyond the file's end is SIGBUS).
        pub(super) allocated: usize,
        /// Bytes from `map[0]` whose pages are already writable (see [`prefault`]).
        pub(super) prefaulted: usize,
    }

    /// How far ahead of the last write pages are made writable.
    pub(super) const PREFAULT_AHEAD: usize = 64 * 1024;

    impl Window {
        /// Maps `[base, base + len)` of `file`, which may end before `base + len`: the
        /// file is extended by [`allocate`](Self::allocate) as the window fills.
        pub(super) fn new(file: &File, base: u64, len: u64) -> io::Result<Window> {
            let map_len = usize::try_from(len).map_err(io::Error::other)?;
            let size = file.metadata()?.len();
            // SAFETY: the file is this writer's own: created here with create_new, mode
            // 0600 in a 0700 directory, and neither read through the mapping nor
            // truncated while the window is mapped (`trim` drops the window before
            // `set_len`). Only `allocated` bytes are ever touched, and the file holds
            // them. Another process with the gateway's uid truncating the file under
            // the mapping could raise SIGBUS, as it could kill the gateway.
            let map = unsafe {
                memmap2::MmapOptions::new()
                    .offset(base)
                    .len(map_len)
                    .map_mut(file)?
            };
            Ok(Window {
                map,
                base,
                allocated: (size.saturating_sub(base) as usize).min(map_len),
                prefaulted: 0,
            })
        }

        /// Extends the file with zeros to cover the window up to `end` (rounded up to a
        /// page of the file), unless it does already.
        ///
        /// Written zeros rather than `fallocate`: an unwritten extent made every later
        /// page of the recording cost the kernel about 2.5 times as much to make
        /// writable and write (ext4, measured: 5.1 against 2.0 us per page); a full disk
        /// is still this error, at `write`, and never a SIGBUS later (ext4 reserves the
        /// blocks of delayed allocation when the write is accepted).
        fn allocate(&mut self, file: &File, end: usize) -> io::Result<()> {
            if end <= self.allocated {
                return Ok(());
            }
            let to = ((self.base + end as u64).next_multiple_of(4096) - self.base) as usize;
            let to = to.min(self.map.len());
            zero_fill(
                file,
                self.base + self.allocated as u64,
                self.base + to as u64,
            )?;
            self.allocated = to;
            Ok(())
        }

        /// Makes the pages up to `end` (and [`PREFAULT_AHEAD`] beyond) writable in one
        /// call, where a copy into them would otherwise take a page fault (and the
        /// filesystem's `page_mkwrite`) per new page. Best effort: a failure to extend
        /// the file is left for the next copy to meet and report; before Linux 5.14 the
        /// copy faults.
        fn prefault(&mut self, file: &File, end: usize) {
            if end <= self.prefaulted {
                return;
            }
            let to = end.saturating_add(PREFAULT_AHEAD).min(self.map.len());
            if self.allocate(file, to).is_err() {
                return;
            }
            let to = to.min(self.allocated);
            if to <= self.prefaulted {
                return;
            }
            #[cfg(target_os = "linux")]
            let done = self
                .map
                .advise_range(
                    memmap2::Advice::PopulateWrite,
                    self.prefaulted,
                    to - self.prefaulted,
                )
                .is_ok();
            #[cfg(not(target_os = "linux"))]
            let done = false;
            // When the kernel cannot, stop asking: the copies fault pages in as they go.
            self.prefaulted = if done { to } else { self.map.len() };
        }

        /// Keeps at least half of [`PREFAULT_AHEAD`] beyond file offset `at` in the file
        /// and writable, so the next copies need no work of the kernel's.
        pub(super) fn prefault_at(&mut self, file: &File, at: u64) {
            let end = at.saturating_sub(self.base) as usize + PREFAULT_AHEAD / 2;
            self.prefault(file, end.min(self.map.len()));
        }

        pub(super) fn len(&self) -> u64 {
            self.map.len() as u64
        }

        /// Bytes left in the window after file offset `at`.
        pub(super) fn room(&self, at: u64) -> u64 {
            (self.base + self.len()).saturating_sub(at)
        }

        /// Copies whole lines to file offset `at` (the caller checked [`room`]), first
        /// extending the file over them if [`prefault_at`](Self::prefault_at) has not.
        ///
        /// Each line's newline is stored only after the rest of the line, so a gateway
        /// killed mid-copy leaves a line without a newline (a torn tail) and never a
        /// newline-terminated line with holes in it.
        pub(super) fn write_lines(&mut self, file: &File, at: u64, lines: &[u8]) -> io::Result<()> {
            let base = (at - self.base) as usize;
            let end = base + lines.len();
            self.allocate(file, end)?;
            if end > self.allocated {
                return Err(io::Error::other("recording window overrun"));
            }
            self.prefault(file, end);
            let mut start = 0;
            for nl in memchr::memchr_iter(b'\n', lines) {
                self.map[base + start..base + nl].copy_from_slice(&lines[start..nl]);
                compiler_fence(Ordering::Release);
                self.map[base + nl] = b'\n';
                start = nl + 1;
            }
            // Lines always end in a newline; anything after the last one goes as is.
            self.map[base + start..end].copy_from_slice(&lines[start..]);
            Ok(())
        }
    }

    /// Writes zeros over `[from, to)` of `file`.
    #[cfg(unix)]
    fn zero_fill(file: &File, from: u64, to: u64) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];
        let mut at = from;
        while at < to {
            let n = ((to - at) as usize).min(ZEROS.len());
            file.write_all_at(&ZEROS[..n], at)?;
            at += n as u64;
        }
        Ok(())
    }

    #[cfg(not(unix))]
    fn zero_fill(_: &File, _: u64, _: u64) -> io::Result<()> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "no mapped recording on this platform",
        ))
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
        // Nothing in the file yet (only preallocated zeros, when mapped).
        assert!(!std::fs::read(w.path()).unwrap().iter().any(|&b| b != 0));
        let pending = w.pending_bytes() as u64;
        w.flush().unwrap();
        assert_eq!(w.pending_bytes(), 0);
        assert_eq!(w.len, pending);
        let file = std::fs::read(w.path()).unwrap();
        assert_eq!(
            file.iter().rposition(|&b| b != 0),
            Some(pending as usize - 1)
        );
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

    /// The live file, the trimmed file and the read-back events are the same whichever
    /// way the bytes reach the file.
    #[test]
    fn mapped_and_appending_writers_write_the_same_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let mut files = Vec::new();
        for (id, try_mapped) in [("m1", true), ("a1", false)] {
            let mut w = SessionWriter::create_with(dir.path(), id, try_mapped).unwrap();
            assert_eq!(w.mapped, try_mapped && mapped::SUPPORTED);
            w.push(1, EventBody::SessionStart(SessionStart::default()));
            // Enough to cross several windows, with a flush larger than MAX_WINDOW.
            for i in 0..3000 {
                w.push(
                    i,
                    EventBody::Statement(Statement {
                        id: i as u64,
                        sql: format!("SELECT {i}").repeat(10).into(),
                        ..Default::default()
                    }),
                );
                if i % 7 == 0 {
                    w.flush().unwrap();
                    if i % 14 == 0 {
                        w.prepare();
                    }
                }
            }
            w.flush().unwrap();
            let live = std::fs::read(w.path()).unwrap();
            if w.mapped {
                // Live, the file ends in preallocated zeros.
                assert!(live.len() as u64 > w.len, "{} {}", live.len(), w.len);
                assert!(live[w.len as usize..].iter().all(|&b| b == 0));
            }
            assert_eq!(read_file(w.path()).unwrap().events.len(), 3001);
            w.push(
                5,
                EventBody::Statement(Statement {
                    sql: "x".repeat(MAX_WINDOW as usize + 10).into(),
                    ..Default::default()
                }),
            );
            w.flush().unwrap();
            let path = w.path().to_owned();
            let r = read_file(&path).unwrap();
            assert_eq!(r.events.len(), 3002);
            assert!(!r.torn_tail);
            w.finish(9, SessionEnd::default()).unwrap();
            files.push(std::fs::read(&path).unwrap());
        }
        assert_eq!(files[0].len(), files[1].len());
        // Same events bar the session id in the genesis: the same bytes after each hash.
        let strip = |f: &[u8]| -> Vec<Vec<u8>> {
            f.split(|&b| b == b'\n')
                .map(|l| l.get(65..).unwrap_or(&[]).to_vec())
                .collect()
        };
        assert_eq!(strip(&files[0]), strip(&files[1]));
        assert!(!files[0].contains(&0));
    }

    /// A killed gateway leaves the window's zeros: the recording reads to its last
    /// flushed event, and trimming cuts exactly the zeros.
    /// After `prepare`, the next flush has a mapped window with room and writable pages
    /// ahead: it only copies.
    #[test]
    fn prepare_keeps_room_and_writable_pages_ahead() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SessionWriter::create(dir.path(), SID).unwrap();
        if !w.mapped {
            return;
        }
        w.push(
            1,
            EventBody::SessionStart(SessionStart {
                session_id: SID.into(),
                ..Default::default()
            }),
        );
        let mut windows = std::collections::BTreeSet::new();
        for i in 0..5000 {
            w.push(
                i,
                EventBody::Statement(Statement {
                    id: i as u64,
                    sql: "SELECT abalance FROM pgbench_accounts WHERE aid = $1;".into(),
                    ..Default::default()
                }),
            );
            w.flush().unwrap();
            w.prepare();
            let win = w.window.as_ref().unwrap();
            assert!(win.room(w.len) >= PREPARE_ROOM, "{i}");
            let at = (w.len - win.base) as usize;
            assert!(
                win.prefaulted >= (at + mapped::PREFAULT_AHEAD / 2).min(win.len() as usize),
                "{i}: {} {at}",
                win.prefaulted
            );
            // Only what the file holds is touched through the mapping.
            assert!(win.prefaulted == win.len() as usize || win.allocated >= win.prefaulted);
            let size = std::fs::metadata(w.path()).unwrap().len();
            assert_eq!(size, win.base + win.allocated as u64, "{i}");
            windows.insert(win.base);
        }
        // Windows were mapped ahead of need, more than one.
        assert!(windows.len() > 2, "{windows:?}");
        let path = w.path().to_owned();
        w.finish(9, SessionEnd::default()).unwrap();
        let r = read_file(&path).unwrap();
        assert_eq!(r.events.len(), 5002);
        assert!(crate::verify::verify_file(&path, SID)
            .unwrap()
            .problems
            .is_empty());
    }

    #[test]
    fn killed_writer_leaves_a_readable_file_that_trims_to_its_events() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SessionWriter::create(dir.path(), SID).unwrap();
        w.push(1, EventBody::SessionStart(SessionStart::default()));
        w.push(2, EventBody::Statement(Statement::default()));
        w.flush().unwrap();
        let flushed = w.len;
        // Buffered, not flushed: lost with the process.
        w.push(3, EventBody::Statement(Statement::default()));
        let path = w.path().to_owned();
        // What SIGKILL does: no destructor runs.
        std::mem::forget(w);
        let r = read_file(&path).unwrap();
        assert_eq!(r.events.len(), 2);
        assert!(!r.torn_tail);
        let size = std::fs::metadata(&path).unwrap().len();
        let cut = trim_preallocated(dir.path(), SID).unwrap();
        assert_eq!(size - cut, flushed);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), flushed);
        assert_eq!(trim_preallocated(dir.path(), SID).unwrap(), 0);
        assert_eq!(read_file(&path).unwrap().events.len(), 2);
        // A line cut mid-copy is a torn tail, zeros or not.
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.truncate(bytes.len() - 10);
        bytes.extend_from_slice(&[0u8; 4096]);
        std::fs::write(&path, &bytes).unwrap();
        let r = read_file(&path).unwrap();
        assert_eq!(r.events.len(), 1);
        assert!(r.torn_tail);
        assert!(trim_preallocated(dir.path(), "../x").is_err());
    }

    #[test]
    fn drop_without_finish_trims() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SessionWriter::create(dir.path(), SID).unwrap();
        w.push(1, EventBody::SessionStart(SessionStart::default()));
        w.flush().unwrap();
        w.push(2, EventBody::Statement(Statement::default()));
        let path = w.path().to_owned();
        drop(w);
        let bytes = std::fs::read(&path).unwrap();
        assert!(!bytes.contains(&0));
        assert_eq!(read_file(&path).unwrap().events.len(), 2);
    }

    fn sample_statement() -> Statement {
        Statement {
            id: 3,
            protocol: "extended".into(),
            sql: "SELECT $1".into(),
            params: vec![Some("4".to_owned()), None].into(),
            class: "read".into(),
            decision: "allowed".into(),
            ..Default::default()
        }
    }

    /// The hot-path serialisation writes what `Event` reads, in a fixed field order.
    #[test]
    fn line_json_layout() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SessionWriter::create(dir.path(), SID).unwrap();
        w.push(-7, EventBody::Statement(sample_statement()));
        let json = String::from_utf8(w.buf[PREFIX_LEN..w.buf.len() - 1].to_vec()).unwrap();
        assert_eq!(
            json,
            r#"{"seq":0,"at_us":-7,"type":"statement","id":3,"protocol":"extended","sql":"SELECT $1","params":["4",null],"class":"read","decision":"allowed"}"#
        );
        let e: crate::event::Event = serde_json::from_str(&json).unwrap();
        assert_eq!((e.seq, e.at_us), (0, -7));
    }

    #[test]
    fn push_object_writes_what_push_writes() {
        let st = sample_statement();
        let dir = tempfile::tempdir().unwrap();
        let mut a = SessionWriter::create(dir.path(), "a-1").unwrap();
        let mut b = SessionWriter::create(dir.path(), "a-1x").unwrap();
        // Same genesis, so the same lines must hash the same.
        b.head = a.head;
        a.push(5, EventBody::Statement(st.clone()));
        let body = serde_json::to_vec(&EventBody::Statement(st)).unwrap();
        b.push_object(5, &body);
        assert_eq!(
            String::from_utf8_lossy(&a.buf),
            String::from_utf8_lossy(&b.buf)
        );
    }

    #[test]
    fn push_object_refuses_what_is_not_an_event_body_and_keeps_the_chain() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SessionWriter::create(dir.path(), SID).unwrap();
        w.push(
            1,
            EventBody::SessionStart(crate::event::SessionStart {
                session_id: SID.into(),
                ..Default::default()
            }),
        );
        let hostile: [&[u8]; 6] = [
            b"",
            b"{}",
            b"[1]",
            b"{\"type\":\"statement\"",
            b"{\"seq\":9,\"type\":\"notice\"}",
            b"\"type\":1}",
        ];
        for body in hostile {
            w.push_object(2, body);
        }
        w.push_object(3, br#"{"type":"notice","kind":"k","message":"m"}"#);
        let path = w.path().to_owned();
        w.flush().unwrap();
        drop(w);
        let rec = crate::reader::read_file(&path).unwrap();
        let kinds: Vec<String> = rec
            .events
            .iter()
            .filter_map(|e| match &e.body {
                EventBody::Notice(n) => Some(n.kind.clone()),
                _ => None,
            })
            .collect();
        let mut want = vec!["recording_error".to_owned(); hostile.len()];
        want.push("k".into());
        assert_eq!(kinds, want);
        let report = crate::verify::verify_file(&path, SID).unwrap();
        assert!(report.problems.is_empty(), "{:?}", report.problems);
    }

    #[test]
    fn big_buffer_is_given_back_after_flush() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SessionWriter::create(dir.path(), SID).unwrap();
        w.push(
            1,
            EventBody::Statement(Statement {
                sql: "x".repeat(2 * KEEP_CAPACITY).into(),
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
            params: vec![].into(),
            redacted: false,
            class: "read".into(),
            decision: "allowed".into(),
            reason: None,
            completion: None,
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
