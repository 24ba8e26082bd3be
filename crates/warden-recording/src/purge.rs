//! Retention: [`purge_older_than`].

use std::fs::{self, File};
use std::io::{self, BufReader};
use std::path::Path;
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};

use crate::line::{read_line, skip_line, split_line, LineRead, Split};
use crate::reader::{path_for, valid_session_id};

/// A recording that was deleted, for the caller to record in its own chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Purged {
    /// The session.
    pub session_id: String,
    /// Committed lines with a well-formed hash prefix.
    pub events: u64,
    /// File size.
    pub bytes: u64,
    /// The recorded hash of the last committed line, when it has one.
    pub final_hash: Option<String>,
    /// The last event's time, when it could be read (otherwise the file's mtime decided).
    pub last_at_us: Option<i64>,
}

/// Deletes every recording under `dir` whose last event is before `cutoff_us` (unix
/// µs), except sessions for which `keep` returns true (live sessions, legal holds).
/// A recording whose last event cannot be read is judged by its modification time.
///
/// Only `dir/<shard>/<session id>.wrec` regular files with a valid session id in their
/// own shard are considered; symlinks and other files are left alone. A file that
/// cannot be read or deleted is logged and skipped, so the returned list is exactly
/// what was deleted. Errors only when `dir` itself cannot be listed (a missing `dir`
/// is an empty result).
pub fn purge_older_than(
    dir: &Path,
    cutoff_us: i64,
    keep: &dyn Fn(&str) -> bool,
) -> io::Result<Vec<Purged>> {
    let shards = match fs::read_dir(dir) {
        Ok(s) => s,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut candidates = Vec::new();
    for shard in shards {
        let shard = shard?;
        let is_dir = shard.file_type().is_ok_and(|t| t.is_dir());
        let name = shard.file_name();
        let Some(name) = name.to_str() else { continue };
        if !is_dir || name.len() > 2 || !valid_session_id(name) {
            continue;
        }
        let entries = match fs::read_dir(shard.path()) {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(dir = %shard.path().display(), error = %e, "purge: cannot list");
                continue;
            }
        };
        for entry in entries.flatten() {
            if !entry.file_type().is_ok_and(|t| t.is_file()) {
                continue;
            }
            let file_name = entry.file_name();
            let Some(id) = file_name.to_str().and_then(|n| n.strip_suffix(".wrec")) else {
                continue;
            };
            if path_for(dir, id).ok().as_deref() != Some(entry.path().as_path()) {
                continue;
            }
            candidates.push(id.to_owned());
        }
    }
    candidates.sort();

    let mut purged = Vec::new();
    for id in candidates {
        if keep(&id) {
            continue;
        }
        let Ok(path) = path_for(dir, &id) else {
            continue;
        };
        let summary = match summarize(&path) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "purge: cannot read recording");
                continue;
            }
        };
        let last = summary.last_at_us.or(summary.mtime_us);
        if last.is_none_or(|t| t >= cutoff_us) {
            continue;
        }
        if let Err(e) = fs::remove_file(&path) {
            tracing::warn!(path = %path.display(), error = %e, "purge: cannot delete recording");
            continue;
        }
        if let Some(parent) = path.parent() {
            // Only succeeds when the shard is now empty.
            let _ = fs::remove_dir(parent);
        }
        purged.push(Purged {
            session_id: id,
            events: summary.events,
            bytes: summary.bytes,
            final_hash: summary.final_hash,
            last_at_us: summary.last_at_us,
        });
    }
    Ok(purged)
}

struct Summary {
    events: u64,
    bytes: u64,
    final_hash: Option<String>,
    last_at_us: Option<i64>,
    mtime_us: Option<i64>,
}

/// Counts committed lines and reads the last one's hash and time without parsing the
/// others.
fn summarize(path: &Path) -> io::Result<Summary> {
    let file = File::open(path)?;
    let meta = file.metadata()?;
    let mtime_us = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .and_then(|d| i64::try_from(d.as_micros()).ok());
    let mut r = BufReader::with_capacity(64 * 1024, file);
    let mut buf = Vec::new();
    let mut last = Vec::new();
    let mut events = 0u64;
    loop {
        match read_line(&mut r, &mut buf)? {
            LineRead::Eof | LineRead::Torn => break,
            LineRead::TooLong => {
                if !skip_line(&mut r)? {
                    break;
                }
            }
            LineRead::Line => {
                if matches!(split_line(&buf), Split::Ok(..)) {
                    events += 1;
                    std::mem::swap(&mut buf, &mut last);
                }
            }
        }
    }
    #[derive(Deserialize)]
    struct Head {
        at_us: i64,
    }
    let (final_hash, last_at_us) = match split_line(&last) {
        Split::Ok(h, json) => (
            Some(hex::encode(h)),
            serde_json::from_slice::<Head>(json).ok().map(|h| h.at_us),
        ),
        _ => (None, None),
    };
    Ok(Summary {
        events,
        bytes: meta.len(),
        final_hash,
        last_at_us,
        mtime_us,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{EventBody, SessionStart};
    use crate::testutil::*;
    use crate::writer::SessionWriter;

    #[test]
    fn purges_old_keeps_live_and_new() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let (old_path, old_events, old_hash) = write_sample(d, "aa-old");
        let (live_path, _, _) = write_sample(d, "aa-live");
        // New: last event after the cutoff.
        let mut w = SessionWriter::create(d, "bb-new").unwrap();
        w.push(
            T0 + 1_000_000_000,
            EventBody::SessionStart(SessionStart::default()),
        );
        let new_path = w.path().to_owned();
        w.flush().unwrap();
        // Torn and old: judged by its last committed line.
        let (torn_path, _, _) = write_sample(d, "cc-torn");
        let bytes = fs::read(&torn_path).unwrap();
        fs::write(&torn_path, &bytes[..bytes.len() - 10]).unwrap();
        // Empty (created just now): judged by mtime, which is after the cutoff.
        let empty = SessionWriter::create(d, "dd-empty").unwrap();
        let empty_path = empty.path().to_owned();
        drop(empty);
        // Things purge must not touch.
        fs::write(d.join("aa").join("notes.txt"), b"x").unwrap();
        fs::create_dir_all(d.join("zz")).unwrap();
        fs::write(d.join("zz").join("aa-misplaced.wrec"), b"").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(&old_path, d.join("aa").join("aa-link.wrec")).unwrap();
        drop(w);

        let cutoff = T0 + 100_000_000;
        let purged = purge_older_than(d, cutoff, &|id| id == "aa-live").unwrap();
        let ids: Vec<&str> = purged.iter().map(|p| p.session_id.as_str()).collect();
        assert_eq!(ids, vec!["aa-old", "cc-torn"]);

        let p = &purged[0];
        assert_eq!(p.events, old_events.len() as u64);
        assert_eq!(p.final_hash.as_deref(), Some(old_hash.as_str()));
        assert_eq!(p.last_at_us, Some(old_events.last().unwrap().at_us));
        assert!(p.bytes > 0);
        assert_eq!(purged[1].events, old_events.len() as u64 - 1);

        assert!(!old_path.exists());
        assert!(!torn_path.exists());
        assert!(!d.join("cc").exists(), "empty shard removed");
        assert!(live_path.exists());
        assert!(new_path.exists());
        assert!(empty_path.exists());
        assert!(d.join("aa").join("notes.txt").exists());
        assert!(d.join("zz").join("aa-misplaced.wrec").exists());

        // Nothing left to purge; a missing dir is an empty result.
        assert!(purge_older_than(d, cutoff, &|id| id == "aa-live")
            .unwrap()
            .is_empty());
        assert!(purge_older_than(&d.join("nope"), cutoff, &|_| false)
            .unwrap()
            .is_empty());
        // Once no longer live, it goes.
        let purged = purge_older_than(d, cutoff, &|_| false).unwrap();
        assert_eq!(purged.len(), 1);
        assert_eq!(purged[0].session_id, "aa-live");
    }

    #[test]
    fn garbage_recording_is_judged_by_mtime() {
        let dir = tempfile::tempdir().unwrap();
        let p = path_for(dir.path(), "ee-junk").unwrap();
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, b"junk\nmore junk").unwrap();
        // Cutoff in the past: kept.
        assert!(purge_older_than(dir.path(), T0, &|_| false)
            .unwrap()
            .is_empty());
        // Cutoff in the far future: purged, with nothing known about it.
        let purged = purge_older_than(dir.path(), i64::MAX, &|_| false).unwrap();
        assert_eq!(
            purged,
            vec![Purged {
                session_id: "ee-junk".into(),
                events: 0,
                bytes: 14,
                final_hash: None,
                last_at_us: None,
            }]
        );
    }
}
