//! Rewriting result rows, COPY rows and error texts by a plan.

use std::borrow::Cow;
use std::collections::BTreeMap;

use bytes::{BufMut, Bytes, BytesMut};
use warden_masking::lineage::RuleId;
use warden_masking::{JsonMasker, Masked};
use warden_wire::{Fields, Frame, Message};

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

/// Rewrites one DataRow body; `None` when nothing changed.
pub(super) fn data_row(
    body: &[u8],
    plan: &Plan,
    rules: &MaskRules,
    counts: &mut BTreeMap<RuleId, u64>,
) -> Option<Bytes> {
    let n = u16::from_be_bytes([*body.first()?, *body.get(1)?]) as usize;
    let mut values: Vec<Option<Cow<'_, [u8]>>> = Vec::with_capacity(n);
    let mut pos = 2usize;
    let mut changed = false;
    for i in 0..n {
        let len = i32::from_be_bytes(body.get(pos..pos + 4)?.try_into().ok()?);
        pos += 4;
        let value = if len < 0 {
            None
        } else {
            let len = len as usize;
            let v = body.get(pos..pos + len)?;
            pos += len;
            Some(v)
        };
        let out = match (plan.cols.get(i), value) {
            (Some(col), Some(v)) => match mask_value(v, col, rules, counts) {
                Some(m) => {
                    changed = true;
                    m.map(Cow::Owned)
                }
                None => Some(Cow::Borrowed(v)),
            },
            (_, v) => v.map(Cow::Borrowed),
        };
        values.push(out);
    }
    if !changed {
        return None;
    }
    let mut out = BytesMut::with_capacity(body.len() + 64);
    out.put_u8(b'D');
    let at = out.len();
    out.put_i32(0);
    out.put_u16(n as u16);
    for v in &values {
        match v {
            None => out.put_i32(-1),
            Some(v) => {
                out.put_i32(v.len() as i32);
                out.put_slice(v);
            }
        }
    }
    let len = (out.len() - at) as i32;
    out[at..at + 4].copy_from_slice(&len.to_be_bytes());
    Some(out.freeze())
}

/// The masked form of one non-NULL value: `None` when unchanged, `Some(None)` for NULL.
fn mask_value(
    v: &[u8],
    col: &ColPlan,
    rules: &MaskRules,
    counts: &mut BTreeMap<RuleId, u64>,
) -> Option<Option<Vec<u8>>> {
    let textual = is_textual(col.type_oid);
    // The value as text, when it can be read as text.
    let text: Option<&str> = if col.binary && !textual {
        None
    } else if col.binary && col.type_oid == JSONB {
        v.split_first()
            .filter(|(ver, _)| **ver == 1)
            .and_then(|(_, rest)| std::str::from_utf8(rest).ok())
    } else {
        std::str::from_utf8(v).ok()
    };
    let encode = |s: String| -> Vec<u8> {
        if col.binary && col.type_oid == JSONB {
            let mut b = Vec::with_capacity(s.len() + 1);
            b.push(1);
            b.extend_from_slice(s.as_bytes());
            b
        } else {
            s.into_bytes()
        }
    };
    match &col.action {
        Action::Mask(r) => {
            *counts.entry(*r).or_default() += 1;
            let rule = &rules.rules[usize::from(*r)];
            // Only text can carry a masked string; other types become NULL so the client
            // still decodes the row.
            let (Some(text), true) = (text, textual) else {
                return Some(None);
            };
            return Some(match rule.strategy.apply(text, &rules.key) {
                Masked::Null => None,
                Masked::Text(s) if matches!(col.type_oid, JSON | JSONB) => {
                    Some(encode(serde_json::Value::String(s).to_string()))
                }
                Masked::Text(s) => Some(encode(s)),
            });
        }
        Action::Json(paths) => {
            let Some(text) = text else {
                *counts.entry(paths[0].0).or_default() += 1;
                return Some(None);
            };
            let masker = JsonMasker::new(
                paths
                    .iter()
                    .map(|(r, p)| (p.clone(), rules.rules[usize::from(*r)].strategy.clone())),
            );
            let masked = match masker.mask(text, &rules.key) {
                Ok(None) => None,
                Ok(Some(s)) => {
                    *counts.entry(paths[0].0).or_default() += 1;
                    Some(s)
                }
                // Not JSON after all: masked whole (failing closed).
                Err(_) => {
                    *counts.entry(paths[0].0).or_default() += 1;
                    return Some(None);
                }
            };
            let base = masked.as_deref().unwrap_or(text);
            return match scan(base, col, rules, counts) {
                Some(s) => Some(Some(encode(s))),
                None => masked.map(|s| Some(encode(s))),
            };
        }
        Action::Keep => {}
    }
    if col.scans.is_empty() {
        return None;
    }
    let text = text?;
    let scanned = scan(text, col, rules, counts)?;
    if textual {
        Some(Some(encode(scanned)))
    } else {
        // A number that held a card number, say: its masked form is not a number.
        Some(None)
    }
}

/// Runs the column's detector rules over `text`.
fn scan(
    text: &str,
    col: &ColPlan,
    rules: &MaskRules,
    counts: &mut BTreeMap<RuleId, u64>,
) -> Option<String> {
    let mut current: Option<String> = None;
    for &r in &col.scans {
        let Some(scanner) = rules.rules[usize::from(r)].scanner.as_ref() else {
            continue;
        };
        let input = current.as_deref().unwrap_or(text);
        if let Some((masked, hits)) = scanner.mask_text(input, &rules.key) {
            *counts.entry(r).or_default() += hits.iter().map(|(_, n)| *n as u64).sum::<u64>();
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
    counts: &mut BTreeMap<RuleId, u64>,
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
/// would carry a value. Severity, SQLSTATE and position stay.
pub fn scrub_error(tag: u8, body: &[u8]) -> Option<Bytes> {
    let frame = Frame::new(tag, body);
    let fields = if tag == b'E' {
        warden_wire::ErrorResponse::from_frame(&frame).ok()?.fields
    } else {
        warden_wire::NoticeResponse::from_frame(&frame).ok()?.fields
    };
    let mut out = Fields::new();
    for (code, value) in fields.iter() {
        match code {
            b'S' | b'V' | b'C' | b'P' => out.push(code, value),
            b'M' => out.push(
                code,
                format!(
                    "Warden withheld this {} text because the statement reads masked columns (SQLSTATE {})",
                    if tag == b'E' { "error's" } else { "notice's" },
                    fields.code().unwrap_or("?")
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
