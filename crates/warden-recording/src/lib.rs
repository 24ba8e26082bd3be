//! Warden's session recordings.
//!
//! Every PostgreSQL session going through Warden gets one append-only file,
//! `<dir>/<first two chars of the session id>/<session id>.wrec`, holding one
//! [`Event`] per line in the order things happened: the session start (who, where,
//! as whom), each statement with its decision, the rows the client received, how each
//! statement completed, session-level notices, and the session end.
//!
//! # Line format
//!
//! ```text
//! <64 lowercase hex digits> <event JSON>\n
//! ```
//!
//! The hex is `SHA-256(prev || json)`, where `json` is the exact bytes after the space
//! and `prev` is the 32-byte hash of the previous line; the first line's `prev` is
//! `SHA-256("warden-recording v1\n" || session id)`. Every line therefore commits to
//! everything before it, and the last line's hash (the *final hash*, which the store
//! anchors in its own chain) commits to the whole recording. Verification works on the
//! raw bytes and never re-serialises.
//!
//! A line is committed once its newline is on disk: a last line without one (a gateway
//! killed mid-write) is a *torn tail*, reported but not an error. Zero bytes after the
//! last line are the writer's preallocated space (a live session, or one whose gateway
//! was killed before trimming it): readers stop there.
//!
//! # Modules
//!
//! * [`writer`]: [`SessionWriter`], used on the proxy's hot path (buffered, copied into a
//!   mapped window of the file at each flush, no fsync until [`SessionWriter::finish`]).
//! * [`encode`]: hand-written JSON for statement events, which the proxy renders as
//!   frames arrive and hands to [`SessionWriter::push_object`].
//! * [`reader`]: [`read_file`] into a [`Recording`].
//! * [`verify`]: [`verify_file`], naming edits, dropped, reordered and duplicated lines.
//! * [`mod@export`]: JSON, NDJSON and CSV exports ([`export()`]).
//! * [`replay`]: a human-readable timeline and real-pace delays.
//! * [`purge`]: retention ([`purge_older_than`]).
//! * [`chain`]: the generic hash chain used by the store's session-end chain and audit
//!   table.
// `deny`, not `forbid`: the writer's mapped file window (writer.rs, `mod mapped`) is the
// one place that needs `unsafe`.
#![deny(unsafe_code)]

pub mod chain;
pub mod encode;
pub mod event;
pub mod export;
mod line;
pub mod purge;
pub mod reader;
pub mod replay;
pub mod verify;
pub mod writer;

#[cfg(test)]
mod testutil;

pub use event::{
    Completion, ErrorInfo, Event, EventBody, Notice, ResultRows, ResultSet, SessionEnd,
    SessionStart, Statement,
};
pub use export::{export, ExportFormat, ParseExportFormatError};
pub use line::MAX_LINE_BYTES;
pub use purge::{purge_older_than, Purged};
pub use reader::{path_for, read_file, valid_session_id, Recording, RecordingError};
pub use replay::{delays, render_timeline, Timeline};
pub use verify::{
    verify_file, verify_file_with, Problem, ProblemKind, VerifyOptions, VerifyReport,
};
pub use writer::SessionWriter;

/// Formats unix microseconds as RFC 3339 UTC (`2024-05-01T12:00:00.123456Z`); times
/// `time` cannot represent fall back to `@<µs>`.
pub(crate) fn rfc3339(at_us: i64) -> String {
    use time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(at_us) * 1000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| format!("@{at_us}us"))
}
