//! Exporting a recording: [`export`] as JSON, NDJSON or CSV.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, BufWriter, Write};
use std::str::FromStr;

use crate::event::{Completion, Event, EventBody};

/// Export formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ExportFormat {
    /// One pretty-printed JSON array of events.
    Json,
    /// One event per line (the event JSON only, no hash prefix).
    Ndjson,
    /// One row per statement, with its completion (RFC 4180 quoting, header row).
    Csv,
}

impl ExportFormat {
    /// `json`, `ndjson` or `csv`.
    pub fn as_str(self) -> &'static str {
        match self {
            ExportFormat::Json => "json",
            ExportFormat::Ndjson => "ndjson",
            ExportFormat::Csv => "csv",
        }
    }
}

impl fmt::Display for ExportFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown export format name.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown export format {0:?} (expected json, ndjson or csv)")]
pub struct ParseExportFormatError(pub String);

impl FromStr for ExportFormat {
    type Err = ParseExportFormatError;

    /// `json`, `ndjson` or `csv`, in any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "json" => Ok(ExportFormat::Json),
            "ndjson" => Ok(ExportFormat::Ndjson),
            "csv" => Ok(ExportFormat::Csv),
            _ => Err(ParseExportFormatError(s.to_owned())),
        }
    }
}

/// The CSV header, in column order.
pub const CSV_HEADER: [&str; 14] = [
    "session_id",
    "statement",
    "started_at",
    "protocol",
    "sql",
    "params",
    "class",
    "decision",
    "reason",
    "tag",
    "rows",
    "error_code",
    "error_message",
    "duration_us",
];

/// Writes `events` to `out` in `format` (buffered internally, flushed at the end).
///
/// CSV has one row per statement: `session_id` (from the session start), statement id,
/// `started_at` (the statement event's time, RFC 3339 UTC), protocol, SQL, params as a
/// JSON array (`null` for NULL), class, decision, reason, then from the statement's
/// completion: tag, rows, error code, error message, duration in µs (empty when the
/// statement has no completion). Fields with quotes, commas, CR or LF are quoted with
/// `"` doubled; nothing else is altered, so fields round-trip exactly. Spreadsheet
/// formula prefixes (`=`, `+`, `-`, `@`) are *not* neutralised.
pub fn export(events: &[Event], format: ExportFormat, out: impl Write) -> io::Result<()> {
    let mut out = BufWriter::with_capacity(64 * 1024, out);
    match format {
        ExportFormat::Json => {
            serde_json::to_writer_pretty(&mut out, events)?;
            out.write_all(b"\n")?;
        }
        ExportFormat::Ndjson => {
            for e in events {
                serde_json::to_writer(&mut out, e)?;
                out.write_all(b"\n")?;
            }
        }
        ExportFormat::Csv => csv(events, &mut out)?,
    }
    out.flush()
}

fn csv(events: &[Event], out: &mut impl Write) -> io::Result<()> {
    let session_id = events
        .iter()
        .find_map(|e| match &e.body {
            EventBody::SessionStart(s) => Some(s.session_id.as_str()),
            _ => None,
        })
        .unwrap_or("");
    let mut completions: HashMap<u64, &Completion> = HashMap::new();
    for e in events {
        if let EventBody::Completion(c) = &e.body {
            completions.entry(c.statement).or_insert(c);
        }
    }
    csv_row(out, CSV_HEADER.iter().copied())?;
    for e in events {
        let EventBody::Statement(s) = &e.body else {
            continue;
        };
        let c = s
            .completion
            .as_deref()
            .or_else(|| completions.get(&s.id).copied());
        let params = serde_json::to_string(&s.params).map_err(io::Error::from)?;
        let id = s.id.to_string();
        let started = crate::rfc3339(e.at_us);
        let rows = c.map(|c| c.rows.to_string()).unwrap_or_default();
        let duration = c.map(|c| c.duration_us.to_string()).unwrap_or_default();
        let err = c.and_then(|c| c.error.as_ref());
        csv_row(
            out,
            [
                session_id,
                &id,
                &started,
                &s.protocol,
                &s.sql,
                &params,
                &s.class,
                &s.decision,
                s.reason.as_deref().unwrap_or(""),
                c.and_then(|c| c.tag.as_deref()).unwrap_or(""),
                &rows,
                err.map(|e| e.code.as_str()).unwrap_or(""),
                err.map(|e| e.message.as_str()).unwrap_or(""),
                &duration,
            ],
        )?;
    }
    Ok(())
}

fn csv_row<'a>(out: &mut impl Write, fields: impl IntoIterator<Item = &'a str>) -> io::Result<()> {
    for (i, f) in fields.into_iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        csv_field(out, f)?;
    }
    out.write_all(b"\r\n")
}

fn csv_field(out: &mut impl Write, f: &str) -> io::Result<()> {
    if !f.bytes().any(|b| matches!(b, b'"' | b',' | b'\n' | b'\r')) {
        return out.write_all(f.as_bytes());
    }
    out.write_all(b"\"")?;
    for (i, part) in f.split('"').enumerate() {
        if i > 0 {
            out.write_all(b"\"\"")?;
        }
        out.write_all(part.as_bytes())?;
    }
    out.write_all(b"\"")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::*;

    /// A strict RFC 4180 parser (CRLF or LF record ends).
    fn parse_csv(s: &str) -> Vec<Vec<String>> {
        let mut rows = Vec::new();
        let mut row = Vec::new();
        let mut field = String::new();
        let mut chars = s.chars().peekable();
        let mut quoted = false;
        let mut at_start = true;
        while let Some(c) = chars.next() {
            if quoted {
                if c == '"' {
                    if chars.peek() == Some(&'"') {
                        chars.next();
                        field.push('"');
                    } else {
                        quoted = false;
                    }
                } else {
                    field.push(c);
                }
                continue;
            }
            match c {
                '"' if at_start => {
                    quoted = true;
                    at_start = false;
                }
                '"' => panic!("stray quote in unquoted field"),
                ',' => {
                    row.push(std::mem::take(&mut field));
                    at_start = true;
                }
                '\r' if chars.peek() == Some(&'\n') => {}
                '\n' => {
                    row.push(std::mem::take(&mut field));
                    rows.push(std::mem::take(&mut row));
                    at_start = true;
                }
                _ => {
                    field.push(c);
                    at_start = false;
                }
            }
        }
        assert!(!quoted, "unterminated quote");
        assert!(field.is_empty() && row.is_empty(), "no final newline");
        rows
    }

    #[test]
    fn format_from_str() {
        assert_eq!("json".parse::<ExportFormat>().unwrap(), ExportFormat::Json);
        assert_eq!("CSV".parse::<ExportFormat>().unwrap(), ExportFormat::Csv);
        assert_eq!(
            "ndjson".parse::<ExportFormat>().unwrap(),
            ExportFormat::Ndjson
        );
        let e = "xml".parse::<ExportFormat>().unwrap_err();
        assert!(e.to_string().contains("xml"));
        for f in [ExportFormat::Json, ExportFormat::Ndjson, ExportFormat::Csv] {
            assert_eq!(f.to_string().parse::<ExportFormat>().unwrap(), f);
        }
    }

    #[test]
    fn json_array_roundtrip() {
        let events = sample_events();
        let mut out = Vec::new();
        export(&events, ExportFormat::Json, &mut out).unwrap();
        let back: Vec<Event> = serde_json::from_slice(&out).unwrap();
        assert_eq!(back, events);
        assert!(String::from_utf8(out).unwrap().contains("\n  {"));
    }

    #[test]
    fn ndjson_lines_parse_back() {
        let events = sample_events();
        let mut out = Vec::new();
        export(&events, ExportFormat::Ndjson, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let back: Vec<Event> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(back, events);
        assert_eq!(text.lines().count(), events.len());
    }

    #[test]
    fn csv_rows_roundtrip_awkward_text() {
        let events = sample_events();
        let mut out = Vec::new();
        export(&events, ExportFormat::Csv, &mut out).unwrap();
        let rows = parse_csv(std::str::from_utf8(&out).unwrap());
        assert_eq!(rows[0], CSV_HEADER);
        assert_eq!(rows.len(), 4, "{rows:?}");
        assert!(rows.iter().all(|r| r.len() == CSV_HEADER.len()));

        let r1 = &rows[1];
        assert_eq!(r1[0], SID);
        assert_eq!(r1[1], "1");
        assert_eq!(r1[2], "2024-05-01T12:00:01.234567Z");
        assert_eq!(r1[5], r#"["42"]"#);
        assert_eq!(r1[9], "SELECT 2");
        assert_eq!(r1[10], "2");
        assert_eq!(r1[13], "6433");

        let r2 = &rows[2];
        assert_eq!(r2[7], "denied");
        assert_eq!(r2[8], "destructive statements need approval");
        assert_eq!(r2[9], "");
        assert_eq!(r2[11], "42501");
        assert_eq!(r2[12], "denied by Warden: \"destructive\"");
        assert_eq!(r2[5], "[]");

        // Quotes, commas, CR and LF survive exactly.
        let EventBody::Statement(s3) = &events[6].body else {
            unreachable!()
        };
        let r3 = &rows[3];
        assert_eq!(r3[4], &*s3.sql);
        assert_eq!(r3[8], s3.reason.clone().unwrap());
        let params: Vec<Option<String>> = serde_json::from_str(&r3[5]).unwrap();
        assert_eq!(params, &*s3.params);
    }

    /// A statement carrying its completion (what the recorder writes) exports as the
    /// statement and completion events of older recordings do.
    #[test]
    fn csv_of_folded_and_separate_events_match() {
        let csv = |events: &[Event]| {
            let mut out = Vec::new();
            export(events, ExportFormat::Csv, &mut out).unwrap();
            String::from_utf8(out).unwrap()
        };
        let folded = folded_events();
        assert_eq!(csv(&folded), csv(&sample_events()));
        assert!(csv(&folded).contains(",SELECT 2,2,,,6433"));
    }

    #[test]
    fn csv_statement_without_completion_and_no_start() {
        let events = vec![Event {
            seq: 0,
            at_us: 0,
            body: EventBody::Statement(crate::event::Statement {
                id: 9,
                sql: "=HYPERLINK(\"x\")".into(),
                ..Default::default()
            }),
        }];
        let mut out = Vec::new();
        export(&events, ExportFormat::Csv, &mut out).unwrap();
        let rows = parse_csv(std::str::from_utf8(&out).unwrap());
        assert_eq!(rows[1][0], "");
        assert_eq!(rows[1][1], "9");
        assert_eq!(rows[1][2], "1970-01-01T00:00:00Z");
        assert_eq!(rows[1][4], "=HYPERLINK(\"x\")");
        assert_eq!(rows[1][13], "");
    }

    #[test]
    fn empty_exports() {
        for f in [ExportFormat::Json, ExportFormat::Ndjson, ExportFormat::Csv] {
            let mut out = Vec::new();
            export(&[], f, &mut out).unwrap();
            let s = String::from_utf8(out).unwrap();
            match f {
                ExportFormat::Json => assert_eq!(s.trim(), "[]"),
                ExportFormat::Ndjson => assert_eq!(s, ""),
                ExportFormat::Csv => assert_eq!(parse_csv(&s).len(), 1),
            }
        }
    }
}
