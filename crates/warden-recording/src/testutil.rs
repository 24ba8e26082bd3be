//! Shared test fixtures.

use std::path::{Path, PathBuf};

use crate::event::*;
use crate::writer::SessionWriter;

/// A session id used across tests (shard `s1`).
pub const SID: &str = "s1-0123abcd";

/// Base time of the sample session: 2024-05-01T12:00:00Z.
pub const T0: i64 = 1_714_564_800_000_000;

/// A sample session: start, three statements (one denied, one failing, one with
/// awkward text), results, completions, a notice and the end. `(at_us, body)` pairs.
pub fn sample_bodies(sid: &str) -> Vec<(i64, EventBody)> {
    vec![
        (
            T0,
            EventBody::SessionStart(SessionStart {
                session_id: sid.into(),
                connection: "prod".into(),
                subject: "alice@example.com".into(),
                display_name: "Alice Example".into(),
                issuer: "https://idp.example.com".into(),
                credential_kind: "oidc".into(),
                actor: None,
                groups: vec!["dba".into(), "eng".into()],
                client_addr: "10.0.0.7:51234".into(),
                target_role: "app_ro".into(),
                jit: false,
                application_name: Some("psql".into()),
            }),
        ),
        (
            T0 + 1_234_567,
            EventBody::Statement(Statement {
                id: 1,
                protocol: "extended".into(),
                sql: "SELECT id, name FROM users WHERE id = $1".into(),
                params: vec![Some("42".into())].into(),
                redacted: false,
                class: "read".into(),
                decision: "allowed".into(),
                reason: None,
                completion: None,
            }),
        ),
        (
            T0 + 1_240_000,
            EventBody::Result(ResultRows {
                statement: 1,
                columns: vec!["id".into(), "name".into()].into(),
                rows: vec![
                    vec![Some("42".into()), Some("Zaphod".into())],
                    vec![Some("43".into()), None],
                ],
                truncated: false,
            }),
        ),
        (
            T0 + 1_241_000,
            EventBody::Completion(Completion {
                statement: 1,
                tag: Some("SELECT 2".into()),
                rows: 2,
                error: None,
                duration_us: 6_433,
                masked: Default::default(),
                result: None,
            }),
        ),
        (
            T0 + 2_000_000,
            EventBody::Statement(Statement {
                id: 2,
                protocol: "simple".into(),
                sql: "DROP TABLE users".into(),
                params: vec![].into(),
                redacted: false,
                class: "destructive".into(),
                decision: "denied".into(),
                reason: Some("destructive statements need approval".into()),
                completion: None,
            }),
        ),
        (
            T0 + 2_000_100,
            EventBody::Completion(Completion {
                statement: 2,
                tag: None,
                rows: 0,
                error: Some(ErrorInfo {
                    code: "42501".into(),
                    message: "denied by Warden: \"destructive\"".into(),
                }),
                duration_us: 100,
                masked: Default::default(),
                result: None,
            }),
        ),
        (
            T0 + 3_000_000,
            EventBody::Statement(Statement {
                id: 3,
                protocol: "extended".into(),
                sql: "SELECT 'a,b', \"Col\"\nFROM t -- comment\r\n;".into(),
                params: vec![Some("x\"y,z\nw".into()), None, Some(String::new())].into(),
                redacted: true,
                class: "read".into(),
                decision: "approved".into(),
                reason: Some("approved by bob, \"ok\"".into()),
                completion: None,
            }),
        ),
        (
            T0 + 3_100_000,
            EventBody::Result(ResultRows {
                statement: 3,
                columns: vec!["?column?".into(), "Col".into()].into(),
                rows: vec![vec![
                    Some("a,b".into()),
                    Some("a very long value that goes well past forty characters of width".into()),
                ]],
                truncated: true,
            }),
        ),
        (
            T0 + 3_200_000,
            EventBody::Completion(Completion {
                statement: 3,
                tag: Some("SELECT 100".into()),
                rows: 100,
                error: None,
                duration_us: 200_000,
                masked: Default::default(),
                result: None,
            }),
        ),
        (
            T0 + 9_000_000,
            EventBody::Notice(Notice {
                kind: "idle_timeout".into(),
                message: "idle for 5s".into(),
            }),
        ),
        (
            T0 + 9_000_001,
            EventBody::SessionEnd(SessionEnd {
                reason: "client_quit".into(),
                error: None,
                statements: 3,
            }),
        ),
    ]
}

/// Writes the sample session under `dir`; returns its path, the events as they should
/// read back, and the final hash.
pub fn write_sample(dir: &Path, sid: &str) -> (PathBuf, Vec<Event>, String) {
    let mut w = SessionWriter::create(dir, sid).unwrap();
    let mut bodies = sample_bodies(sid);
    let (end_at, end) = match bodies.pop() {
        Some((at, EventBody::SessionEnd(e))) => (at, e),
        _ => unreachable!(),
    };
    let mut events = Vec::new();
    for (i, (at, body)) in bodies.into_iter().enumerate() {
        let seq = w.push(at, body.clone());
        assert_eq!(seq, i as u64);
        events.push(Event {
            seq,
            at_us: at,
            body,
        });
        if i % 3 == 0 {
            w.flush().unwrap();
        }
    }
    events.push(Event {
        seq: events.len() as u64,
        at_us: end_at,
        body: EventBody::SessionEnd(end.clone()),
    });
    let path = w.path().to_owned();
    let fin = w.finish(end_at, end).unwrap();
    (path, events, fin)
}

/// The sample session's lines, each with its newline.
pub fn sample_lines(sid: &str) -> Vec<Vec<u8>> {
    let dir = tempfile::tempdir().unwrap();
    let (path, _, _) = write_sample(dir.path(), sid);
    let bytes = std::fs::read(path).unwrap();
    bytes
        .split_inclusive(|&b| b == b'\n')
        .map(<[u8]>::to_vec)
        .collect()
}

/// [`sample_bodies`] numbered as a recording would number them.
pub fn sample_events() -> Vec<Event> {
    sample_bodies(SID)
        .into_iter()
        .enumerate()
        .map(|(i, (at_us, body))| Event {
            seq: i as u64,
            at_us,
            body,
        })
        .collect()
}

/// [`sample_events`] as the current recorder writes them: each statement's completion
/// in its statement event, and its rows in the completion, instead of a `Result` and a
/// `Completion` event of their own.
pub fn folded_events() -> Vec<Event> {
    let mut out: Vec<Event> = Vec::new();
    let mut pending: Option<ResultRows> = None;
    for e in sample_events() {
        match e.body {
            EventBody::Result(r) => pending = Some(r),
            EventBody::Completion(mut c) => {
                if let Some(r) = pending.take().filter(|r| r.statement == c.statement) {
                    c.result = Some(r.to_set());
                }
                let owner = out.iter_mut().rev().find_map(|o| match &mut o.body {
                    EventBody::Statement(s) if s.id == c.statement && s.completion.is_none() => {
                        Some(s)
                    }
                    _ => None,
                });
                match owner {
                    Some(s) => s.completion = Some(Box::new(c)),
                    None => out.push(Event {
                        body: EventBody::Completion(c),
                        ..e
                    }),
                }
            }
            body => out.push(Event { body, ..e }),
        }
    }
    for (i, e) in out.iter_mut().enumerate() {
        e.seq = i as u64;
    }
    out
}
