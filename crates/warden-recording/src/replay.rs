//! Replaying a recording for a human: [`render_timeline`], and [`delays`] for a
//! real-pace replay.
//!
//! Recorded text (SQL, parameters, values, messages) comes from clients and databases,
//! so it is escaped before it reaches a terminal: control characters and bidirectional
//! overrides are shown as `\x1b`, `\u{202e}` and the like.

use std::fmt::Write as _;
use std::io::{self, BufWriter, Write};
use std::time::Duration;

use crate::event::{Completion, Event, EventBody, ResultSet, SessionStart, Statement};

/// Widest a result cell is shown, in characters.
pub const CELL_WIDTH: usize = 40;
/// Longest a parameter is shown, in characters.
const PARAM_WIDTH: usize = 200;

/// Writes a human-readable timeline of `events` to `out`: a header (who, connection,
/// role, client, start), then per statement `[+12.345s] #3 read allowed`, the SQL
/// (indented), its parameters, the rows received as an aligned table (cells capped at
/// [`CELL_WIDTH`] characters) and the completion (tag or error, duration); notices and
/// the end. Offsets are from the first event.
///
/// For a real-pace replay (one event at a time, sleeping [`delays`] in between) use
/// [`Timeline`], which keeps the header, offsets and statement context across calls.
pub fn render_timeline(events: &[Event], out: impl Write) -> io::Result<()> {
    let mut t = Timeline::new(BufWriter::new(out));
    for e in events {
        t.event(e)?;
    }
    if events.is_empty() {
        t.out.write_all(NO_START.as_bytes())?;
    }
    t.flush()
}

const NO_START: &str = "Session (no session_start recorded)\n";

/// An incremental [`render_timeline`]: feed events one by one (the header comes with
/// the first), e.g. for a real-pace replay.
#[derive(Debug)]
pub struct Timeline<W: Write> {
    out: W,
    t0: Option<i64>,
    current: Option<u64>,
    s: String,
}

impl<W: Write> Timeline<W> {
    /// A timeline writing to `out`.
    pub fn new(out: W) -> Self {
        Timeline {
            out,
            t0: None,
            current: None,
            s: String::new(),
        }
    }

    /// Renders one event (and the header before the first). Does not flush.
    pub fn event(&mut self, e: &Event) -> io::Result<()> {
        let s = &mut self.s;
        s.clear();
        let first = self.t0.is_none();
        let t0 = match self.t0 {
            Some(t) => t,
            None => {
                self.t0 = Some(e.at_us);
                match &e.body {
                    EventBody::SessionStart(st) => header(s, st, e.at_us),
                    _ => s.push_str(NO_START),
                }
                e.at_us
            }
        };
        let off = offset(e.at_us, t0);
        match &e.body {
            EventBody::SessionStart(st) => {
                if !first {
                    let _ = writeln!(s, "{off} session start again: {}", esc(&st.session_id));
                }
            }
            EventBody::Statement(st) => {
                statement(s, &off, st);
                self.current = Some(st.id);
                if let Some(c) = &st.completion {
                    outcome(s, c, self.current);
                }
            }
            EventBody::Result(r) => {
                if self.current != Some(r.statement) {
                    let _ = writeln!(s, "  rows of #{}:", r.statement);
                }
                table(s, &r.to_set());
            }
            EventBody::Completion(c) => outcome(s, c, self.current),
            EventBody::Notice(n) => {
                let _ = writeln!(s, "{off} notice {}: {}", esc(&n.kind), esc(&n.message));
            }
            EventBody::SessionEnd(end) => {
                let _ = write!(
                    s,
                    "{off} end: {}, {} statement{}",
                    esc(&end.reason),
                    end.statements,
                    if end.statements == 1 { "" } else { "s" }
                );
                if let Some(err) = &end.error {
                    let _ = write!(s, " ({})", esc(err));
                }
                s.push('\n');
            }
        }
        self.out.write_all(self.s.as_bytes())
    }

    /// Flushes the output.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// The output.
    pub fn into_inner(self) -> W {
        self.out
    }
}

/// The gap before each event (zero for the first, and wherever the clock went back),
/// for replaying at the recorded pace.
pub fn delays(events: &[Event]) -> Vec<Duration> {
    let mut prev: Option<i64> = None;
    events
        .iter()
        .map(|e| {
            let d = match prev {
                Some(p) => {
                    let gap = i128::from(e.at_us) - i128::from(p);
                    Duration::from_micros(u64::try_from(gap.max(0)).unwrap_or(u64::MAX))
                }
                None => Duration::ZERO,
            };
            prev = Some(e.at_us);
            d
        })
        .collect()
}

fn header(s: &mut String, st: &SessionStart, t0: i64) {
    let _ = writeln!(s, "Session {}", esc(&st.session_id));
    let who = if st.display_name.is_empty() {
        esc(&st.subject)
    } else {
        format!("{} <{}>", esc(&st.display_name), esc(&st.subject))
    };
    let _ = writeln!(
        s,
        "  who:        {who} via {} ({})",
        esc(&st.credential_kind),
        esc(&st.issuer)
    );
    if let Some(a) = &st.actor {
        let _ = writeln!(s, "  actor:      {}", esc(a));
    }
    if !st.groups.is_empty() {
        let g: Vec<String> = st.groups.iter().map(|g| esc(g)).collect();
        let _ = writeln!(s, "  groups:     {}", g.join(", "));
    }
    let _ = writeln!(
        s,
        "  connection: {} as role {}{}",
        esc(&st.connection),
        esc(&st.target_role),
        if st.jit { " (just-in-time)" } else { "" }
    );
    let _ = write!(s, "  client:     {}", esc(&st.client_addr));
    if let Some(app) = &st.application_name {
        let _ = write!(s, " ({})", esc(app));
    }
    s.push('\n');
    let _ = writeln!(s, "  start:      {}", crate::rfc3339(t0));
    s.push('\n');
}

fn statement(s: &mut String, off: &str, st: &Statement) {
    let _ = write!(
        s,
        "{off} #{} {} {}",
        st.id,
        esc(&st.class),
        esc(&st.decision)
    );
    if let Some(r) = &st.reason {
        let _ = write!(s, ": {}", esc(r));
    }
    if st.protocol != "simple" && !st.protocol.is_empty() {
        let _ = write!(s, " ({})", esc(&st.protocol));
    }
    if st.redacted {
        s.push_str(" [redacted]");
    }
    s.push('\n');
    for line in st.sql.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        let _ = writeln!(s, "    {}", escape(line, true));
    }
    if !st.params.is_empty() {
        let p: Vec<String> = st
            .params
            .iter()
            .enumerate()
            .map(|(i, v)| match v {
                Some(v) => format!(
                    "${} = '{}'",
                    i + 1,
                    cap(&esc(v), PARAM_WIDTH).replace('\'', "''")
                ),
                None => format!("${} = NULL", i + 1),
            })
            .collect();
        let _ = writeln!(s, "    params: {}", p.join(", "));
    }
}

fn table(s: &mut String, r: &ResultSet) {
    let header: Vec<String> = r.columns.iter().map(|c| cap(&esc(c), CELL_WIDTH)).collect();
    let rows: Vec<Vec<String>> = r
        .rows
        .iter()
        .map(|row| {
            row.iter()
                .map(|v| match v {
                    Some(v) => cap(&esc(v), CELL_WIDTH),
                    None => "NULL".to_owned(),
                })
                .collect()
        })
        .collect();
    let ncols = rows
        .iter()
        .map(Vec::len)
        .chain(std::iter::once(header.len()))
        .max()
        .unwrap_or(0);
    let mut widths = vec![0usize; ncols];
    for row in rows.iter().chain(std::iter::once(&header)) {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |s: &mut String, cells: &[String]| {
        let mut l = String::from("    ");
        for (i, w) in widths.iter().enumerate() {
            if i > 0 {
                l.push_str(" | ");
            }
            let c = cells.get(i).map_or("", String::as_str);
            l.push_str(c);
            l.extend(std::iter::repeat_n(' ', w - c.chars().count()));
        }
        s.push_str(l.trim_end());
        s.push('\n');
    };
    if ncols > 0 {
        line(s, &header);
        let sep: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
        let _ = writeln!(s, "    {}", sep.join("-+-"));
    }
    for row in &rows {
        line(s, row);
    }
    let n = r.rows.len();
    let _ = writeln!(
        s,
        "    ({n} row{} recorded){}",
        if n == 1 { "" } else { "s" },
        if r.truncated { " (truncated)" } else { "" }
    );
}

/// A completion with the rows it carries, if any.
fn outcome(s: &mut String, c: &Completion, current: Option<u64>) {
    if let Some(r) = &c.result {
        if current != Some(c.statement) {
            let _ = writeln!(s, "  rows of #{}:", c.statement);
        }
        table(s, r);
    }
    completion(s, c, current)
}

fn completion(s: &mut String, c: &Completion, current: Option<u64>) {
    s.push_str("  -> ");
    if current != Some(c.statement) {
        let _ = write!(s, "#{} ", c.statement);
    }
    match (&c.error, &c.tag) {
        (Some(e), _) => {
            let _ = write!(s, "ERROR {}: {}", esc(&e.code), esc(&e.message));
        }
        (None, Some(tag)) => s.push_str(&esc(tag)),
        (None, None) => s.push_str("done"),
    }
    let _ = writeln!(
        s,
        ", {} row{}, {}.{:03} ms",
        c.rows,
        if c.rows == 1 { "" } else { "s" },
        c.duration_us / 1000,
        c.duration_us % 1000
    );
}

/// `[+12.345s]` from `t0`.
fn offset(at_us: i64, t0: i64) -> String {
    let d = i128::from(at_us) - i128::from(t0);
    let sign = if d < 0 { '-' } else { '+' };
    let d = d.unsigned_abs();
    format!("[{sign}{}.{:03}s]", d / 1_000_000, (d % 1_000_000) / 1000)
}

/// Escapes everything a terminal could act on (tab included).
fn esc(s: &str) -> String {
    escape(s, false)
}

fn escape(s: &str, keep_tab: bool) -> String {
    let dangerous = |c: char| {
        (c.is_control() && !(keep_tab && c == '\t'))
            || matches!(c, '\u{200e}' | '\u{200f}' | '\u{061c}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if !s.chars().any(dangerous) {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if !dangerous(c) {
            out.push(c);
            continue;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x80 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
        }
    }
    out
}

/// At most `max` characters, the last one `…` when cut.
fn cap(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::*;

    fn render(events: &[Event]) -> String {
        let mut out = Vec::new();
        render_timeline(events, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn timeline_of_sample_session() {
        let t = render(&sample_events());
        println!("{t}");
        for want in [
            "Session s1-0123abcd\n",
            "  who:        Alice Example <alice@example.com> via oidc (https://idp.example.com)\n",
            "  groups:     dba, eng\n",
            "  connection: prod as role app_ro\n",
            "  client:     10.0.0.7:51234 (psql)\n",
            "  start:      2024-05-01T12:00:00Z\n",
            "[+1.234s] #1 read allowed (extended)\n    SELECT id, name FROM users WHERE id = $1\n    params: $1 = '42'\n",
            "    id | name\n    ---+-------\n    42 | Zaphod\n    43 | NULL\n    (2 rows recorded)\n",
            "  -> SELECT 2, 2 rows, 6.433 ms\n",
            "[+2.000s] #2 destructive denied: destructive statements need approval\n    DROP TABLE users\n",
            "  -> ERROR 42501: denied by Warden: \"destructive\", 0 rows, 0.100 ms\n",
            "    SELECT 'a,b', \"Col\"\n    FROM t -- comment\n    ;\n",
            "params: $1 = 'x\"y,z\\nw', $2 = NULL, $3 = ''\n",
            "(1 row recorded) (truncated)\n",
            "a very long value that goes well past f…\n",
            "[+9.000s] notice idle_timeout: idle for 5s\n",
            "[+9.000s] end: client_quit, 3 statements\n",
        ] {
            assert!(t.contains(want), "missing {want:?} in\n{t}");
        }
        // Cells are capped at 40 characters.
        for l in t.lines().filter(|l| l.contains(" | ")) {
            for cell in l.split(" | ") {
                assert!(cell.trim().chars().count() <= CELL_WIDTH, "{l}");
            }
        }
    }

    /// A statement carrying its completion and rows (what the recorder writes) and the
    /// three as events of their own (older recordings) read as the same timeline.
    #[test]
    fn folded_and_separate_results_render_alike() {
        let folded = folded_events();
        assert_eq!(folded.len(), sample_events().len() - 5);
        assert!(!folded
            .iter()
            .any(|e| matches!(e.body, EventBody::Result(_) | EventBody::Completion(_))));
        assert_eq!(render(&folded), render(&sample_events()));
        // A completion whose rows belong to a statement other than the current one says so.
        let EventBody::Statement(first) = &folded[1].body else {
            panic!("{folded:?}")
        };
        let alone = Event {
            body: EventBody::Completion(*first.completion.clone().unwrap()),
            ..folded[1].clone()
        };
        let t = render(&[folded[0].clone(), alone]);
        assert!(t.contains("  rows of #1:\n    id | name\n"), "{t}");
    }

    #[test]
    fn terminal_escapes_are_neutralised() {
        let mut events = sample_events();
        if let EventBody::Statement(s) = &mut events[1].body {
            s.sql = "SELECT 1 \x1b[2J\x1b]0;pwned\x07 \u{202e}txet".into();
            s.params = vec![Some("\x1b[31mred".into())].into();
        }
        if let EventBody::Result(r) = &mut events[2].body {
            r.rows[0][1] = Some("a\nb\x1bc\u{9b}".into());
        }
        let mut folded = folded_events();
        if let EventBody::Statement(s) = &mut folded[1].body {
            let c = s.completion.as_mut().unwrap();
            c.result.as_mut().unwrap().columns = vec!["\x1b[31mcol".to_owned()].into();
            c.tag = Some("\x1b]0;x\x07".into());
        }
        assert!(!render(&folded).contains('\x1b'));
        let t = render(&events);
        assert!(!t.contains('\x1b'));
        assert!(!t.contains('\x07'));
        assert!(!t.contains('\u{202e}'));
        assert!(!t.contains('\u{9b}'));
        assert!(t.contains("\\x1b[2J"));
        assert!(t.contains("\\u{202e}"));
        assert!(t.contains("a\\nb\\x1bc\\u{9b}"));
    }

    #[test]
    fn odd_inputs_render() {
        assert_eq!(render(&[]), "Session (no session_start recorded)\n");
        let events = vec![
            Event {
                seq: 0,
                at_us: i64::MAX,
                body: EventBody::Result(crate::event::ResultRows {
                    statement: 5,
                    columns: vec![].into(),
                    rows: vec![vec![Some("x".into())], vec![]],
                    truncated: false,
                }),
            },
            Event {
                seq: 1,
                at_us: i64::MIN,
                body: EventBody::Completion(Completion::default()),
            },
        ];
        let t = render(&events);
        assert!(t.contains("rows of #5"));
        assert!(t.contains("  -> #0 done, 0 rows, 0.000 ms"));
    }

    #[test]
    fn incremental_timeline_matches_whole() {
        let events = sample_events();
        let mut t = Timeline::new(Vec::new());
        for e in &events {
            t.event(e).unwrap();
            t.flush().unwrap();
        }
        assert_eq!(String::from_utf8(t.into_inner()).unwrap(), render(&events));
        // A start that is not first is shown as such.
        let mut twice = events.clone();
        twice.insert(3, events[0].clone());
        assert!(render(&twice).contains("[+0.000s] session start again: s1-0123abcd\n"));
    }

    #[test]
    fn delays_between_events() {
        let events = sample_events();
        let d = delays(&events);
        assert_eq!(d.len(), events.len());
        assert_eq!(d[0], Duration::ZERO);
        assert_eq!(d[1], Duration::from_micros(1_234_567));
        assert_eq!(d[2], Duration::from_micros(1_240_000 - 1_234_567));
        let back = vec![
            Event {
                seq: 0,
                at_us: i64::MAX,
                body: EventBody::Notice(Default::default()),
            },
            Event {
                seq: 1,
                at_us: i64::MIN,
                body: EventBody::Notice(Default::default()),
            },
            Event {
                seq: 2,
                at_us: i64::MAX,
                body: EventBody::Notice(Default::default()),
            },
        ];
        let d = delays(&back);
        assert_eq!(d[1], Duration::ZERO);
        assert_eq!(d[2], Duration::from_micros(u64::MAX));
        assert!(delays(&[]).is_empty());
    }

    #[test]
    fn cap_and_offset() {
        assert_eq!(cap("abc", 3), "abc");
        assert_eq!(cap("abcd", 3), "ab…");
        assert_eq!(cap("ééééé", 4), "ééé…");
        assert_eq!(offset(1_500, 0), "[+0.001s]");
        assert_eq!(offset(0, 12_345_678), "[-12.345s]");
    }
}
