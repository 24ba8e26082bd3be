//! Rewriting result rows, COPY rows and error texts by a plan.

use bytes::{BufMut, Bytes, BytesMut};
use warden_masking::lineage::RuleId;
use warden_masking::JsonMasker;
use warden_wire::{Fields, Frame, Message, Severity};

use super::rules::MaskRules;
use super::{Action, ColPlan, Plan};

const TEXT: u32 = 25;
const VARCHAR: u32 = 1043;
const BPCHAR: u32 = 1042;
const NAME: u32 = 19;
const UNKNOWN: u32 = 705;
const JSON: u32 = 114;
const JSONB: u32 = 3802;
const CHAR: u32 = 18;

/// Types whose value is text in both formats (jsonb's binary form adds a version byte).
fn is_textual(oid: u32) -> bool {
    matches!(
        oid,
        TEXT | VARCHAR | BPCHAR | NAME | UNKNOWN | JSON | JSONB | CHAR
    )
}

/// A DataRow that does not match its layout or its plan: nothing of it can be forwarded.
#[derive(Debug)]
pub struct Malformed(pub &'static str);

/// Masked values per rule, indexed by [`RuleId`].
pub(super) type Counts = Vec<u64>;

fn count(counts: &mut Counts, r: RuleId, n: u64) {
    if let Some(c) = counts.get_mut(usize::from(r)) {
        *c += n;
    }
}

/// Writes the masked form of one DataRow body, as a whole frame, to the end of `out`;
/// `Ok(false)` (and `out` as it was) when nothing changed. A row that does not parse, or
/// whose width is not the plan's, is an error (failing closed: a column the plan does not
/// cover could be anything). Hand-written rather than through `DataRow` because it runs
/// for every row of a masked result: one pass, values written straight into a buffer the
/// caller reuses, no allocation per row.
pub(super) fn data_row(
    body: &[u8],
    plan: &Plan,
    rules: &MaskRules,
    counts: &mut Counts,
    out: &mut BytesMut,
    scratch: &mut String,
) -> Result<bool, Malformed> {
    let start = out.len();
    let res = write_row(body, plan, rules, counts, out, scratch);
    if !matches!(res, Ok(true)) {
        out.truncate(start);
    }
    res
}

fn write_row(
    body: &[u8],
    plan: &Plan,
    rules: &MaskRules,
    counts: &mut Counts,
    out: &mut BytesMut,
    scratch: &mut String,
) -> Result<bool, Malformed> {
    let n = match body {
        [a, b, ..] => u16::from_be_bytes([*a, *b]) as usize,
        _ => return Err(Malformed("a DataRow that does not match its layout")),
    };
    if n != plan.cols.len() {
        return Err(Malformed(
            "a DataRow wider or narrower than its RowDescription",
        ));
    }
    let start = out.len();
    out.reserve(body.len() + 64);
    out.put_u8(b'D');
    out.put_i32(0);
    out.put_u16(n as u16);
    let mut pos = 2usize;
    let mut changed = false;
    for col in &plan.cols {
        let len = body
            .get(pos..pos + 4)
            .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or(Malformed("a truncated DataRow"))?;
        pos += 4;
        if len < 0 {
            out.put_i32(-1);
            continue;
        }
        let len = len as usize;
        let v = body
            .get(pos..pos + len)
            .ok_or(Malformed("a truncated DataRow"))?;
        pos += len;
        match mask_value_into(v, col, rules, counts, scratch) {
            Out::Unchanged => {
                out.put_i32(len as i32);
                out.put_slice(v);
            }
            Out::Null => {
                changed = true;
                out.put_i32(-1);
            }
            Out::Text { jsonb_version } => {
                changed = true;
                let extra = usize::from(jsonb_version);
                out.put_i32((scratch.len() + extra) as i32);
                if jsonb_version {
                    out.put_u8(1);
                }
                out.put_slice(scratch.as_bytes());
            }
        }
    }
    if pos != body.len() {
        return Err(Malformed("a DataRow with trailing bytes"));
    }
    if changed {
        let len = (out.len() - start - 1) as i32;
        out[start + 1..start + 5].copy_from_slice(&len.to_be_bytes());
    }
    Ok(changed)
}

/// What became of one value.
enum Out {
    Unchanged,
    Null,
    /// The masked text is in the scratch string (jsonb in binary format: after a version
    /// byte).
    Text {
        jsonb_version: bool,
    },
}

/// The masked form of one non-NULL value: `None` when unchanged, `Some(None)` for NULL.
fn mask_value(
    v: &[u8],
    col: &ColPlan,
    rules: &MaskRules,
    counts: &mut Counts,
) -> Option<Option<Vec<u8>>> {
    let mut scratch = String::new();
    match mask_value_into(v, col, rules, counts, &mut scratch) {
        Out::Unchanged => None,
        Out::Null => Some(None),
        Out::Text { jsonb_version } => {
            let mut b = Vec::with_capacity(scratch.len() + 1);
            if jsonb_version {
                b.push(1);
            }
            b.extend_from_slice(scratch.as_bytes());
            Some(Some(b))
        }
    }
}

/// Masks one non-NULL value into `scratch`.
fn mask_value_into(
    v: &[u8],
    col: &ColPlan,
    rules: &MaskRules,
    counts: &mut Counts,
    scratch: &mut String,
) -> Out {
    if matches!(col.action, Action::Keep) && col.scans.is_empty() {
        return Out::Unchanged;
    }
    let textual = is_textual(col.type_oid);
    let jsonb_binary = col.binary && col.type_oid == JSONB;
    // Hot path: a text column masked by a strategy that does not read the text.
    if let (Action::Mask(r), true, false) =
        (&col.action, textual, matches!(col.type_oid, JSON | JSONB))
    {
        let rule = &rules.rules[usize::from(*r)];
        scratch.clear();
        if let Some(kept) = rule.strategy.apply_bytes_into(v, &rules.key, scratch) {
            count(counts, *r, 1);
            return if kept {
                Out::Text {
                    jsonb_version: false,
                }
            } else {
                Out::Null
            };
        }
    }
    // The value as text, when it can be read as text.
    let text: Option<&str> = if col.binary && !textual {
        None
    } else if jsonb_binary {
        v.split_first()
            .filter(|(ver, _)| **ver == 1)
            .and_then(|(_, rest)| std::str::from_utf8(rest).ok())
    } else {
        std::str::from_utf8(v).ok()
    };
    let text_out = |scratch: &mut String, s: String| {
        *scratch = s;
        Out::Text {
            jsonb_version: jsonb_binary,
        }
    };
    match &col.action {
        Action::Mask(r) => {
            count(counts, *r, 1);
            let rule = &rules.rules[usize::from(*r)];
            // Only text can carry a masked string; other types become NULL so the client
            // still decodes the row.
            let (Some(text), true) = (text, textual) else {
                return Out::Null;
            };
            scratch.clear();
            if !rule.strategy.apply_into(text, &rules.key, scratch) {
                return Out::Null;
            }
            if matches!(col.type_oid, JSON | JSONB) {
                // A JSON column still holds JSON: the masked text as a JSON string.
                let quoted = serde_json::Value::String(std::mem::take(scratch)).to_string();
                return text_out(scratch, quoted);
            }
            return Out::Text {
                jsonb_version: jsonb_binary,
            };
        }
        Action::Json(paths) => {
            let Some(text) = text else {
                count(counts, paths[0].0, 1);
                return Out::Null;
            };
            let masker = JsonMasker::new(
                paths
                    .iter()
                    .map(|(r, p)| (p.clone(), rules.rules[usize::from(*r)].strategy.clone())),
            );
            let masked = match masker.mask(text, &rules.key) {
                Ok(None) => None,
                Ok(Some(s)) => {
                    count(counts, paths[0].0, 1);
                    Some(s)
                }
                // Not JSON after all: masked whole (failing closed).
                Err(_) => {
                    count(counts, paths[0].0, 1);
                    return Out::Null;
                }
            };
            let base = masked.as_deref().unwrap_or(text);
            return match scan(base, col, rules, counts) {
                Some(s) => text_out(scratch, s),
                None => match masked {
                    Some(s) => text_out(scratch, s),
                    None => Out::Unchanged,
                },
            };
        }
        Action::Keep => {}
    }
    let Some(text) = text else {
        return Out::Unchanged;
    };
    match scan(text, col, rules, counts) {
        None => Out::Unchanged,
        Some(s) if textual => text_out(scratch, s),
        // A number that held a card number, say: its masked form is not a number.
        Some(_) => Out::Null,
    }
}

/// Runs the column's detector rules over `text`.
fn scan(text: &str, col: &ColPlan, rules: &MaskRules, counts: &mut Counts) -> Option<String> {
    let mut current: Option<String> = None;
    for &r in &col.scans {
        let Some(scanner) = rules.rules[usize::from(r)].scanner.as_ref() else {
            continue;
        };
        let input = current.as_deref().unwrap_or(text);
        if let Some((masked, hits)) = scanner.mask_text(input, &rules.key) {
            count(counts, r, hits.iter().map(|(_, n)| *n as u64).sum::<u64>());
            current = Some(masked);
        }
    }
    current
}

/// Rewrites one COPY text-format row (`a\tb\n`, `\N` for NULL, backslash escapes).
pub(super) fn copy_text_row(
    body: &[u8],
    plan: &Plan,
    rules: &MaskRules,
    counts: &mut Counts,
) -> Option<Bytes> {
    let line = body.strip_suffix(b"\n").unwrap_or(body);
    let fields: Vec<&[u8]> = line.split(|&b| b == b'\t').collect();
    if fields.len() != plan.cols.len() {
        // Not the shape the plan expects (a custom delimiter, say): withhold the row whole.
        let mut out = BytesMut::new();
        out.put_u8(b'd');
        let masked = vec![&b"\\N"[..]; plan.cols.len().max(1)].join(&b'\t');
        out.put_i32((masked.len() + 5) as i32);
        out.put_slice(&masked);
        out.put_u8(b'\n');
        return Some(out.freeze());
    }
    let mut changed = false;
    let mut parts: Vec<Vec<u8>> = Vec::with_capacity(fields.len());
    for (f, col) in fields.iter().zip(&plan.cols) {
        if *f == b"\\N" {
            parts.push(f.to_vec());
            continue;
        }
        let raw = unescape_copy(f);
        match mask_value(&raw, col, rules, counts) {
            Some(Some(v)) => {
                changed = true;
                parts.push(escape_copy(&v));
            }
            Some(None) => {
                changed = true;
                parts.push(b"\\N".to_vec());
            }
            None => parts.push(f.to_vec()),
        }
    }
    if !changed {
        return None;
    }
    let joined = parts.join(&b'\t');
    let mut out = BytesMut::with_capacity(joined.len() + 6);
    out.put_u8(b'd');
    out.put_i32((joined.len() + 5) as i32);
    out.put_slice(&joined);
    out.put_u8(b'\n');
    Some(out.freeze())
}

fn unescape_copy(f: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(f.len());
    let mut i = 0;
    while i < f.len() {
        if f[i] == b'\\' && i + 1 < f.len() {
            i += 1;
            out.push(match f[i] {
                b'n' => b'\n',
                b't' => b'\t',
                b'r' => b'\r',
                b'b' => 8,
                b'f' => 12,
                b'v' => 11,
                other => other,
            });
        } else {
            out.push(f[i]);
        }
        i += 1;
    }
    out
}

fn escape_copy(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len());
    for &b in v {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\r' => out.extend_from_slice(b"\\r"),
            other => out.push(other),
        }
    }
    out
}

/// An ErrorResponse or NoticeResponse with its texts withheld: the statement read masked
/// columns, and a message such as `invalid input syntax for type integer: "alice@…"`
/// would carry a value. Severity, SQLSTATE and position stay, each only in the shape
/// PostgreSQL gives it: a garbled or hostile field (a lost NUL joins the next field's text
/// to it) could carry anything.
pub fn scrub_error(tag: u8, body: &[u8]) -> Option<Bytes> {
    let frame = Frame::new(tag, body);
    let fields = if tag == b'E' {
        warden_wire::ErrorResponse::from_frame(&frame).ok()?.fields
    } else {
        warden_wire::NoticeResponse::from_frame(&frame).ok()?.fields
    };
    let severity = fields.severity_level().unwrap_or(if tag == b'E' {
        Severity::Error
    } else {
        Severity::Notice
    });
    let sqlstate = fields.code().map(|c| {
        if c.len() == 5 && c.bytes().all(|b| b.is_ascii_alphanumeric()) {
            c
        } else {
            "XX000"
        }
    });
    let mut out = Fields::new();
    for (code, value) in fields.iter() {
        match code {
            b'S' | b'V' => out.push(code, severity.as_str()),
            b'C' => out.push(code, sqlstate.unwrap_or("XX000")),
            b'P' if (1..=10).contains(&value.len())
                && value.bytes().all(|b| b.is_ascii_digit()) =>
            {
                out.push(code, value)
            }
            b'M' => out.push(
                code,
                format!(
                    "Warden withheld this {} text because the statement reads masked columns (SQLSTATE {})",
                    if tag == b'E' { "error's" } else { "notice's" },
                    sqlstate.unwrap_or("?")
                ),
            ),
            _ => {}
        }
    }
    Some(if tag == b'E' {
        warden_wire::ErrorResponse { fields: out }.encode()
    } else {
        warden_wire::NoticeResponse { fields: out }.encode()
    })
}
