//! Hand-written JSON for the statement events written on the proxy's hot path.
//!
//! The recorder renders a statement's event piece by piece as the frames arrive (the
//! statement at Execute, each row at its DataRow, the outcome at CommandComplete) into
//! buffers it reuses, instead of building a [`Statement`](crate::Statement) with a
//! `String` per value and serialising it through serde at the end: with the unnamed
//! portal kept out of the portal map, that took recording one `pgbench -S -M prepared`
//! transaction from about 1.5 µs to 1.1 µs (`bench_prepared_transaction` in `warden-pg`);
//! what it saved was allocations and serde's per-field work.
//!
//! The output is byte for byte what `serde_json` writes for the same [`Statement`]
//! (tested below), so readers deserialise it with the ordinary derive.

use std::collections::BTreeMap;

use crate::event::ErrorInfo;

/// Writes `s` as a JSON string, escaped exactly as `serde_json` escapes it.
pub fn str(buf: &mut Vec<u8>, s: &str) {
    buf.push(b'"');
    escaped(buf, s.as_bytes());
    buf.push(b'"');
}

/// Escapes UTF-8 `bytes` (no quotes) as `serde_json` does: `"`, `\` and the control
/// characters below 0x20 only.
fn escaped(buf: &mut Vec<u8>, bytes: &[u8]) {
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        // Most text needs no escaping: step over it eight bytes at a time.
        if let Some(chunk) = bytes.get(i..i + 8) {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            if !needs_escape(u64::from_le_bytes(word)) {
                i += 8;
                continue;
            }
        }
        let b = bytes[i];
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            0x08 => b"\\b",
            0x0c => b"\\f",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => {
                buf.extend_from_slice(&bytes[start..i]);
                const HEX: &[u8; 16] = b"0123456789abcdef";
                buf.extend_from_slice(b"\\u00");
                buf.push(HEX[(b >> 4) as usize]);
                buf.push(HEX[(b & 0xf) as usize]);
                i += 1;
                start = i;
                continue;
            }
            _ => {
                i += 1;
                continue;
            }
        };
        buf.extend_from_slice(&bytes[start..i]);
        buf.extend_from_slice(esc);
        i += 1;
        start = i;
    }
    buf.extend_from_slice(&bytes[start..]);
}

/// Whether any of the eight bytes in `x` is below 0x20, `"` or `\` (exact: the
/// classic "has a byte less than n" and "has a zero byte" bit tricks).
fn needs_escape(x: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let below = x.wrapping_sub(ONES * 0x20) & !x;
    let q = x ^ (ONES * u64::from(b'"'));
    let quote = q.wrapping_sub(ONES) & !q;
    let s = x ^ (ONES * u64::from(b'\\'));
    let slash = s.wrapping_sub(ONES) & !s;
    (below | quote | slash) & HIGH != 0
}

/// Writes a wire value as the JSON string a recording holds for it: UTF-8 text as is,
/// anything else (or any binary-format value) as `\x` and hex.
pub fn value(buf: &mut Vec<u8>, v: &[u8], binary: bool) {
    match (binary, std::str::from_utf8(v)) {
        (false, Ok(s)) => str(buf, s),
        _ => {
            // `\x` in JSON is `\\x`; hex digits need no escaping.
            buf.extend_from_slice(b"\"\\\\x");
            let start = buf.len();
            buf.resize(start + v.len() * 2, 0);
            // The slice is exactly twice the input, so this cannot fail.
            let _ = hex::encode_to_slice(v, &mut buf[start..]);
            buf.push(b'"');
        }
    }
}

/// Writes a JSON array of optional wire values (bind parameters, a row's columns): `null`
/// for `None`, `each(buf, index, value)` writes the others.
pub fn values<'a>(
    buf: &mut Vec<u8>,
    items: impl Iterator<Item = Option<&'a [u8]>>,
    mut each: impl FnMut(&mut Vec<u8>, usize, &'a [u8]),
) {
    buf.push(b'[');
    for (i, v) in items.enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        match v {
            None => buf.extend_from_slice(b"null"),
            Some(v) => each(buf, i, v),
        }
    }
    buf.push(b']');
}

/// Writes a JSON array of strings.
pub fn str_array<S: AsRef<str>>(buf: &mut Vec<u8>, items: &[S]) {
    buf.push(b'[');
    for (i, s) in items.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        str(buf, s.as_ref());
    }
    buf.push(b']');
}

fn num(buf: &mut Vec<u8>, n: u64) {
    buf.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// A statement's SQL text for [`statement_head`]: as is, or already written by [`str`]
/// (a prepared statement's, written once at Parse rather than at every execution).
#[derive(Clone, Copy, Debug)]
pub enum Sql<'a> {
    /// The text, escaped as it is written.
    Text(&'a str),
    /// The text as a JSON string, quotes included.
    Json(&'a [u8]),
}

/// The fields of a statement event that are known when it is sent.
#[derive(Clone, Copy, Debug)]
pub struct StatementHead<'a> {
    /// Statement number in the session.
    pub id: u64,
    /// `simple` or `extended`.
    pub protocol: &'a str,
    /// Recordable SQL text.
    pub sql: Sql<'a>,
    /// The Bind parameters as a JSON array (`["1",null]`), or empty when there are none.
    pub params: &'a [u8],
    /// Whether secrets were removed.
    pub redacted: bool,
    /// Statement class.
    pub class: &'a str,
    /// Decision.
    pub decision: &'a str,
    /// Who approved or why denied.
    pub reason: Option<&'a str>,
}

/// Writes `{"type":"statement",…` up to (not including) the completion and the closing
/// brace: [`close_statement`] or [`embed_completion`] ends it.
pub fn statement_head(buf: &mut Vec<u8>, h: &StatementHead<'_>) {
    buf.extend_from_slice(b"{\"type\":\"statement\",\"id\":");
    num(buf, h.id);
    buf.extend_from_slice(b",\"protocol\":");
    str(buf, h.protocol);
    buf.extend_from_slice(b",\"sql\":");
    match h.sql {
        Sql::Text(s) => str(buf, s),
        Sql::Json(j) => buf.extend_from_slice(j),
    }
    if !h.params.is_empty() {
        buf.extend_from_slice(b",\"params\":");
        buf.extend_from_slice(h.params);
    }
    if h.redacted {
        buf.extend_from_slice(b",\"redacted\":true");
    }
    buf.extend_from_slice(b",\"class\":");
    str(buf, h.class);
    buf.extend_from_slice(b",\"decision\":");
    str(buf, h.decision);
    if let Some(r) = h.reason {
        buf.extend_from_slice(b",\"reason\":");
        str(buf, r);
    }
}

/// Ends a statement event written without its completion.
pub fn close_statement(buf: &mut Vec<u8>) {
    buf.push(b'}');
}

/// The rows a statement returned, already rendered.
#[derive(Clone, Copy, Debug)]
pub struct ResultRef<'a> {
    /// Column names as a JSON array, or empty for none.
    pub columns: &'a [u8],
    /// The recorded rows, each a JSON array, separated by commas (no brackets).
    pub rows: &'a [u8],
    /// Whether rows were left out by the caps.
    pub truncated: bool,
}

/// How a statement ended.
#[derive(Clone, Copy, Debug)]
pub struct CompletionRef<'a> {
    /// The statement.
    pub statement: u64,
    /// Command tag.
    pub tag: Option<&'a str>,
    /// Rows returned to the client.
    pub rows: u64,
    /// The error, when it failed.
    pub error: Option<&'a ErrorInfo>,
    /// Microseconds from forwarding to completion.
    pub duration_us: u64,
    /// Values masked, per rule.
    pub masked: &'a BTreeMap<String, u64>,
    /// The rows, when the statement described or sent any.
    pub result: Option<ResultRef<'a>>,
}

fn completion_fields(buf: &mut Vec<u8>, c: &CompletionRef<'_>) {
    buf.extend_from_slice(b"\"statement\":");
    num(buf, c.statement);
    if let Some(tag) = c.tag {
        buf.extend_from_slice(b",\"tag\":");
        str(buf, tag);
    }
    buf.extend_from_slice(b",\"rows\":");
    num(buf, c.rows);
    if let Some(e) = c.error {
        buf.extend_from_slice(b",\"error\":{\"code\":");
        str(buf, &e.code);
        buf.extend_from_slice(b",\"message\":");
        str(buf, &e.message);
        buf.push(b'}');
    }
    buf.extend_from_slice(b",\"duration_us\":");
    num(buf, c.duration_us);
    if !c.masked.is_empty() {
        buf.extend_from_slice(b",\"masked\":{");
        for (i, (rule, n)) in c.masked.iter().enumerate() {
            if i > 0 {
                buf.push(b',');
            }
            str(buf, rule);
            buf.push(b':');
            num(buf, *n);
        }
        buf.push(b'}');
    }
    if let Some(r) = &c.result {
        buf.extend_from_slice(b",\"result\":{\"columns\":");
        if r.columns.is_empty() {
            buf.extend_from_slice(b"[]");
        } else {
            buf.extend_from_slice(r.columns);
        }
        buf.extend_from_slice(b",\"rows\":[");
        buf.extend_from_slice(r.rows);
        buf.push(b']');
        if r.truncated {
            buf.extend_from_slice(b",\"truncated\":true");
        }
        buf.push(b'}');
    }
}

/// Ends a statement event (from [`statement_head`]) with its completion.
pub fn embed_completion(buf: &mut Vec<u8>, c: &CompletionRef<'_>) {
    buf.extend_from_slice(b",\"completion\":{");
    completion_fields(buf, c);
    buf.extend_from_slice(b"}}");
}

/// Writes a completion event of its own (`{"type":"completion",…}`), for a statement
/// whose event was written before it finished.
pub fn completion_event(buf: &mut Vec<u8>, c: &CompletionRef<'_>) {
    buf.extend_from_slice(b"{\"type\":\"completion\",");
    completion_fields(buf, c);
    buf.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Completion, EventBody, ResultSet, Statement};
    use std::sync::Arc;

    /// Renders `st` through this module, as the recorder does.
    fn render(st: &Statement) -> Vec<u8> {
        let mut params = Vec::new();
        if !st.params.is_empty() {
            params.push(b'[');
            for (i, p) in st.params.iter().enumerate() {
                if i > 0 {
                    params.push(b',');
                }
                match p {
                    Some(s) => str(&mut params, s),
                    None => params.extend_from_slice(b"null"),
                }
            }
            params.push(b']');
        }
        let mut sql = Vec::new();
        str(&mut sql, &st.sql);
        let mut buf = Vec::new();
        let mut head = StatementHead {
            id: st.id,
            protocol: &st.protocol,
            sql: Sql::Text(&st.sql),
            params: &params,
            redacted: st.redacted,
            class: &st.class,
            decision: &st.decision,
            reason: st.reason.as_deref(),
        };
        statement_head(&mut buf, &head);
        // Pre-written text gives the same bytes.
        let mut pre = Vec::new();
        head.sql = Sql::Json(&sql);
        statement_head(&mut pre, &head);
        assert_eq!(pre, buf);
        match &st.completion {
            None => close_statement(&mut buf),
            Some(c) => embed_completion(&mut buf, &completion_ref(c, &mut Vec::new())),
        }
        buf
    }

    fn completion_ref<'a>(c: &'a Completion, scratch: &'a mut Vec<u8>) -> CompletionRef<'a> {
        let result = c.result.as_ref().map(|r| {
            let mut columns = Vec::new();
            str_array(&mut columns, &r.columns);
            let at = scratch.len();
            scratch.extend_from_slice(&columns);
            let cols_end = scratch.len();
            for (i, row) in r.rows.iter().enumerate() {
                if i > 0 {
                    scratch.push(b',');
                }
                scratch.push(b'[');
                for (j, v) in row.iter().enumerate() {
                    if j > 0 {
                        scratch.push(b',');
                    }
                    match v {
                        Some(s) => str(scratch, s),
                        None => scratch.extend_from_slice(b"null"),
                    }
                }
                scratch.push(b']');
            }
            (at, cols_end, r.truncated)
        });
        let scratch: &'a [u8] = scratch;
        CompletionRef {
            statement: c.statement,
            tag: c.tag.as_deref(),
            rows: c.rows,
            error: c.error.as_ref(),
            duration_us: c.duration_us,
            masked: &c.masked,
            result: result.map(|(at, cols_end, truncated)| ResultRef {
                columns: &scratch[at..cols_end],
                rows: &scratch[cols_end..],
                truncated,
            }),
        }
    }

    fn serde(body: &EventBody) -> Vec<u8> {
        serde_json::to_vec(body).unwrap()
    }

    fn awkward() -> String {
        let mut s: String = (0u8..0x80).map(char::from).collect();
        s.push_str("é ☃ 𝄞 \u{2028} \u{fffd}");
        s
    }

    fn statements() -> Vec<Statement> {
        let base = Statement {
            id: 7,
            protocol: "extended".into(),
            sql: "SELECT abalance FROM pgbench_accounts WHERE aid = $1;".into(),
            params: Arc::from(vec![Some("4242".to_owned()), None]),
            redacted: false,
            class: "read".into(),
            decision: "allowed".into(),
            reason: None,
            completion: None,
        };
        let completion = Completion {
            statement: 7,
            tag: Some("SELECT 1".into()),
            rows: 1,
            error: None,
            duration_us: 12,
            masked: Default::default(),
            result: Some(ResultSet {
                columns: Arc::from(vec!["abalance".to_owned()]),
                rows: vec![vec![Some("0".into())]],
                truncated: false,
            }),
        };
        let mut all = vec![base.clone()];
        all.push(Statement {
            completion: Some(Box::new(completion.clone())),
            ..base.clone()
        });
        all.push(Statement {
            id: u64::MAX,
            protocol: "simple".into(),
            sql: awkward().into(),
            params: Arc::from([]),
            redacted: true,
            class: "ddl".into(),
            decision: "approved".into(),
            reason: Some(format!("by alice {}", awkward())),
            completion: Some(Box::new(Completion {
                statement: u64::MAX,
                tag: None,
                rows: u64::MAX,
                error: Some(ErrorInfo {
                    code: "42P01".into(),
                    message: awkward(),
                }),
                duration_us: 0,
                masked: [("email".to_owned(), 3), (awkward(), 1)].into(),
                result: Some(ResultSet {
                    columns: Arc::from(vec![awkward(), String::new()]),
                    rows: vec![vec![Some(awkward()), None], vec![None, Some(String::new())]],
                    truncated: true,
                }),
            })),
        });
        // A description without columns, and no result at all.
        all.push(Statement {
            completion: Some(Box::new(Completion {
                result: Some(ResultSet::default()),
                ..completion.clone()
            })),
            ..base.clone()
        });
        all.push(Statement {
            completion: Some(Box::new(Completion {
                result: None,
                tag: Some(String::new()),
                ..completion
            })),
            ..base
        });
        all
    }

    #[test]
    fn statements_match_serde_byte_for_byte() {
        for st in statements() {
            let ours = render(&st);
            assert_eq!(
                String::from_utf8(ours.clone()).unwrap(),
                String::from_utf8(serde(&EventBody::Statement(st.clone()))).unwrap()
            );
            let back: EventBody = serde_json::from_slice(&ours).unwrap();
            assert_eq!(back, EventBody::Statement(st));
        }
    }

    #[test]
    fn completions_match_serde_byte_for_byte() {
        for st in statements() {
            let Some(c) = st.completion else { continue };
            let mut ours = Vec::new();
            completion_event(&mut ours, &completion_ref(&c, &mut Vec::new()));
            assert_eq!(
                String::from_utf8(ours).unwrap(),
                String::from_utf8(serde(&EventBody::Completion(*c))).unwrap()
            );
        }
    }

    #[test]
    fn strings_escape_as_serde_does_wherever_the_escape_falls() {
        let specials = [
            '"', '\\', '\n', '\u{1}', '\u{1f}', ' ', '\u{7f}', 'é', '☃', '𝄞',
        ];
        for len in 0..40 {
            for at in 0..len.max(1) {
                for c in specials {
                    let s: String = (0..len)
                        .map(|i| {
                            if i == at {
                                c
                            } else {
                                char::from(b'a' + (i % 26) as u8)
                            }
                        })
                        .collect();
                    let mut ours = Vec::new();
                    str(&mut ours, &s);
                    assert_eq!(ours, serde_json::to_vec(&s).unwrap(), "{s:?}");
                }
            }
        }
        for b in 0u8..=0x7f {
            let s = String::from(char::from(b)).repeat(9);
            let mut ours = Vec::new();
            str(&mut ours, &s);
            assert_eq!(ours, serde_json::to_vec(&s).unwrap(), "{s:?}");
        }
    }

    #[test]
    fn values_are_text_or_hex() {
        let cases: [(&[u8], bool, &str); 5] = [
            (b"plain", false, "plain"),
            (b"tab\there \"q\"", false, "tab\there \"q\""),
            (b"\xff\x00", false, "\\xff00"),
            (b"text", true, "\\x74657874"),
            (b"", true, "\\x"),
        ];
        for (v, binary, want) in cases {
            let mut buf = Vec::new();
            value(&mut buf, v, binary);
            assert_eq!(serde_json::from_slice::<String>(&buf).unwrap(), want);
            assert_eq!(buf, serde_json::to_vec(want).unwrap());
        }
    }
}
