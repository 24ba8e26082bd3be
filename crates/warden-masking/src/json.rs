//! Masking inside json/jsonb values: the leaves at configured JSON paths are replaced by a
//! strategy's result and the document is re-serialised.
//!
//! Paths support `$`, `.name`, `['name']`/`["name"]`, `[n]`, `[*]`/`.*` and recursive
//! descent `..name`/`..*`. A path that ends on an object or array masks every leaf beneath
//! it. Malformed JSON is an error so the caller can fail closed by masking the whole value.
//! Re-serialisation is compact and orders object keys (serde_json's default map); numbers
//! outside `f64`/`i64`/`u64` lose precision.

use std::collections::HashSet;

use serde_json::Value;

use crate::strategy::{MaskKey, Masked, Strategy};

/// Longest path source accepted, in bytes.
pub const MAX_PATH_LEN: usize = 1024;

/// Most recursive-descent (`..`) segments in one path: each one multiplies the walk by the
/// document's depth.
pub const MAX_DESCENTS: usize = 4;

/// Why a path could not be parsed or a document could not be masked.
#[derive(Debug, thiserror::Error)]
pub enum JsonMaskError {
    /// The path is not one this module understands.
    #[error("invalid JSON path {path:?}: {reason}")]
    InvalidPath {
        /// The path source.
        path: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The value is not valid JSON (or nests deeper than serde_json's limit of 128).
    #[error("value is not valid JSON: {0}")]
    Malformed(#[from] serde_json::Error),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Key(String),
    Index(usize),
    Wildcard,
    /// `..name`: the key at any depth below.
    Descend(String),
    /// `..*`: every value at any depth below.
    DescendAll,
}

/// A parsed JSON path such as `$.items[*].email` or `$..ssn`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPath {
    source: String,
    segments: Vec<Segment>,
}

impl JsonPath {
    /// Parses `path`, which must start with `$`.
    pub fn parse(path: &str) -> Result<Self, JsonMaskError> {
        let err = |reason| JsonMaskError::InvalidPath {
            path: path.to_owned(),
            reason,
        };
        if path.len() > MAX_PATH_LEN {
            return Err(err("path is too long"));
        }
        let rest = path
            .strip_prefix('$')
            .ok_or_else(|| err("must start with '$'"))?;
        let b = rest.as_bytes();
        let mut segments = Vec::new();
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'.' if b.get(i + 1) == Some(&b'.') => {
                    i += 2;
                    let name = take_name(rest, &mut i);
                    match name {
                        "" => return Err(err("'..' needs a name or '*'")),
                        "*" => segments.push(Segment::DescendAll),
                        n => segments.push(Segment::Descend(n.to_owned())),
                    }
                }
                b'.' => {
                    i += 1;
                    match take_name(rest, &mut i) {
                        "" => return Err(err("'.' needs a name or '*'")),
                        "*" => segments.push(Segment::Wildcard),
                        n => segments.push(Segment::Key(n.to_owned())),
                    }
                }
                b'[' => {
                    let close = rest[i..].find(']').ok_or_else(|| err("unclosed '['"))? + i;
                    let inner = rest[i + 1..close].trim();
                    let seg = if inner == "*" {
                        Segment::Wildcard
                    } else if let Some(q) = quoted(inner) {
                        Segment::Key(q.to_owned())
                    } else {
                        Segment::Index(
                            inner
                                .parse()
                                .map_err(|_| err("'[...]' needs '*', a quoted key or an index"))?,
                        )
                    };
                    segments.push(seg);
                    i = close + 1;
                }
                _ => return Err(err("expected '.' or '['")),
            }
        }
        let descents = segments
            .iter()
            .filter(|s| matches!(s, Segment::Descend(_) | Segment::DescendAll))
            .count();
        if descents > MAX_DESCENTS {
            return Err(err("too many '..' segments"));
        }
        Ok(Self {
            source: path.to_owned(),
            segments,
        })
    }

    /// The path as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }
}

fn take_name<'a>(s: &'a str, i: &mut usize) -> &'a str {
    let start = *i;
    let end = s[start..]
        .find(['.', '['])
        .map_or(s.len(), |off| start + off);
    *i = end;
    &s[start..end]
}

fn quoted(s: &str) -> Option<&str> {
    let q = s.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    s.strip_prefix(q)?.strip_suffix(q).filter(|_| s.len() >= 2)
}

/// A connection's JSON masking rules for one column, applied in order.
#[derive(Debug, Clone, Default)]
pub struct JsonMasker {
    rules: Vec<(JsonPath, Strategy)>,
}

impl JsonMasker {
    /// Builds a masker from `(path, strategy)` pairs. A leaf reached by several rules (or
    /// several times by one recursive path) is masked once, by the first rule.
    pub fn new(rules: impl IntoIterator<Item = (JsonPath, Strategy)>) -> Self {
        Self {
            rules: rules.into_iter().collect(),
        }
    }

    /// Masks the document in `text`. `Ok(None)` means no path matched and the original can
    /// be forwarded unchanged; an error means the value must be masked whole.
    pub fn mask(&self, text: &str, key: &MaskKey) -> Result<Option<String>, JsonMaskError> {
        let mut doc: Value = serde_json::from_str(text)?;
        // Leaves already masked, by address: the tree's shape never changes while masking,
        // so an address names one leaf. Overlapping paths and rules then mask a leaf once,
        // the first rule winning.
        let mut masked: HashSet<*const Value> = HashSet::new();
        for (path, strategy) in &self.rules {
            walk(&mut doc, &path.segments, &mut |v| {
                mask_subtree(v, strategy, key, &mut masked);
            });
        }
        if masked.is_empty() {
            return Ok(None);
        }
        Ok(Some(serde_json::to_string(&doc)?))
    }
}

/// Calls `f` on every value the path segments select.
fn walk(v: &mut Value, segs: &[Segment], f: &mut impl FnMut(&mut Value)) {
    let Some((seg, rest)) = segs.split_first() else {
        f(v);
        return;
    };
    match seg {
        Segment::Key(k) => {
            if let Some(child) = v.as_object_mut().and_then(|o| o.get_mut(k)) {
                walk(child, rest, f);
            }
        }
        Segment::Index(n) => {
            if let Some(child) = v.as_array_mut().and_then(|a| a.get_mut(*n)) {
                walk(child, rest, f);
            }
        }
        Segment::Wildcard => for_each_child(v, |c| walk(c, rest, f)),
        Segment::Descend(k) => {
            if let Some(child) = v.as_object_mut().and_then(|o| o.get_mut(k)) {
                walk(child, rest, f);
            }
            for_each_child(v, |c| walk(c, segs, f));
        }
        Segment::DescendAll => {
            for_each_child(v, |c| {
                walk(c, rest, f);
                walk(c, segs, f);
            });
        }
    }
}

fn for_each_child(v: &mut Value, mut f: impl FnMut(&mut Value)) {
    match v {
        Value::Object(o) => o.values_mut().for_each(&mut f),
        Value::Array(a) => a.iter_mut().for_each(&mut f),
        _ => {}
    }
}

/// Masks every string, number and boolean leaf under `v` not already in `masked`, and
/// records it there. JSON nulls stay null.
fn mask_subtree(
    v: &mut Value,
    strategy: &Strategy,
    key: &MaskKey,
    masked: &mut HashSet<*const Value>,
) {
    let text = match v {
        Value::Null => return,
        Value::Array(a) => {
            return a
                .iter_mut()
                .for_each(|c| mask_subtree(c, strategy, key, masked))
        }
        Value::Object(o) => {
            return o
                .values_mut()
                .for_each(|c| mask_subtree(c, strategy, key, masked))
        }
        _ if !masked.insert(std::ptr::from_ref::<Value>(v)) => return,
        Value::String(s) => std::mem::take(s),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
    };
    *v = match strategy.apply(&text, key) {
        Masked::Text(t) => Value::String(t),
        Masked::Null => Value::Null,
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key() -> MaskKey {
        MaskKey::new([8u8; 32]).unwrap()
    }

    fn mask(path: &str, strategy: Strategy, doc: &str) -> Option<Value> {
        let m = JsonMasker::new([(JsonPath::parse(path).unwrap(), strategy)]);
        m.mask(doc, &key())
            .unwrap()
            .map(|s| serde_json::from_str(&s).unwrap())
    }

    #[test]
    fn path_parsing() {
        let p = JsonPath::parse("$.a['b c'][2][*].d..e..*").unwrap();
        assert_eq!(
            p.segments,
            [
                Segment::Key("a".into()),
                Segment::Key("b c".into()),
                Segment::Index(2),
                Segment::Wildcard,
                Segment::Key("d".into()),
                Segment::Descend("e".into()),
                Segment::DescendAll,
            ]
        );
        assert_eq!(p.as_str(), "$.a['b c'][2][*].d..e..*");
        assert!(JsonPath::parse("$").unwrap().segments.is_empty());
        for bad in ["a.b", "$.", "$..", "$[", "$[x]", "$a", "$['a]", "$[-1]"] {
            assert!(
                matches!(JsonPath::parse(bad), Err(JsonMaskError::InvalidPath { .. })),
                "{bad}"
            );
        }
        assert!(JsonPath::parse(&format!("${}", ".a".repeat(MAX_PATH_LEN))).is_err());
    }

    #[test]
    fn masks_nested_key() {
        let out = mask(
            "$.user.email",
            Strategy::KeepDomain,
            r#"{"user":{"email":"a@x.io","name":"A"},"email":"top@x.io"}"#,
        );
        assert_eq!(
            out.unwrap(),
            json!({"user":{"email":"****@x.io","name":"A"},"email":"top@x.io"})
        );
    }

    #[test]
    fn masks_array_wildcard_and_index() {
        let doc = r#"{"items":[{"email":"a@x.io"},{"email":"b@x.io"},{"other":1}]}"#;
        let out = mask("$.items[*].email", Strategy::redact(), doc).unwrap();
        assert_eq!(
            out,
            json!({"items":[{"email":"****"},{"email":"****"},{"other":1}]})
        );
        let out = mask("$.items[1].email", Strategy::redact(), doc).unwrap();
        assert_eq!(
            out,
            json!({"items":[{"email":"a@x.io"},{"email":"****"},{"other":1}]})
        );
    }

    #[test]
    fn recursive_descent() {
        let doc = r#"{"email":"a@x.io","x":[{"email":"b@x.io","y":{"email":"c@x.io"}}]}"#;
        let out = mask("$..email", Strategy::redact(), doc).unwrap();
        assert_eq!(
            out,
            json!({"email":"****","x":[{"email":"****","y":{"email":"****"}}]})
        );
    }

    #[test]
    fn recursive_descent_masks_nested_same_key_once() {
        let doc = r#"{"a":{"a":"v"}}"#;
        let m = JsonMasker::new([(JsonPath::parse("$..a").unwrap(), Strategy::Hash)]);
        let out: Value = serde_json::from_str(&m.mask(doc, &key()).unwrap().unwrap()).unwrap();
        let Masked::Text(once) = Strategy::Hash.apply("v", &key()) else {
            panic!()
        };
        assert_eq!(out, json!({"a":{"a": once}}));
    }

    #[test]
    fn overlapping_rules_first_wins() {
        let doc = r#"{"a":{"b":"v","a":{"b":"w"}}}"#;
        let m = JsonMasker::new([
            (JsonPath::parse("$..a.b").unwrap(), Strategy::redact()),
            (JsonPath::parse("$.a").unwrap(), Strategy::Hash),
            (JsonPath::parse("$..*").unwrap(), Strategy::Null),
        ]);
        let out: Value = serde_json::from_str(&m.mask(doc, &key()).unwrap().unwrap()).unwrap();
        assert_eq!(out, json!({"a":{"b":"****","a":{"b":"****"}}}));
    }

    #[test]
    fn descent_count_limited() {
        assert!(JsonPath::parse(&format!("${}", "..*".repeat(MAX_DESCENTS))).is_ok());
        assert!(matches!(
            JsonPath::parse(&format!("${}", "..*".repeat(MAX_DESCENTS + 1))),
            Err(JsonMaskError::InvalidPath { .. })
        ));
    }

    #[test]
    fn numbers_bools_and_null_strategy() {
        let doc = r#"{"card":4111111111111111,"ok":true,"n":null,"ssn":"123-45-6789"}"#;
        let out = mask("$.card", Strategy::Partial { keep_last: 4 }, doc).unwrap();
        assert_eq!(out["card"], json!("************1111"));
        let out = mask("$.ok", Strategy::redact(), doc).unwrap();
        assert_eq!(out["ok"], json!("****"));
        let out = mask("$.ssn", Strategy::Null, doc).unwrap();
        assert_eq!(out["ssn"], Value::Null);
        assert!(mask("$.n", Strategy::redact(), doc).is_none());
    }

    #[test]
    fn path_to_object_masks_every_leaf() {
        let doc = r#"{"secret":{"k":"v","arr":[1,"two",null]},"keep":"me"}"#;
        let out = mask("$.secret", Strategy::redact(), doc).unwrap();
        assert_eq!(
            out,
            json!({"secret":{"k":"****","arr":["****","****",null]},"keep":"me"})
        );
        let out = mask("$", Strategy::redact(), r#"["a",{"b":"c"}]"#).unwrap();
        assert_eq!(out, json!(["****", {"b": "****"}]));
    }

    #[test]
    fn hash_tokens_equal_across_documents() {
        let a = mask("$.e", Strategy::Hash, r#"{"e":"x@y.io"}"#).unwrap();
        let b = mask("$..e", Strategy::Hash, r#"[{"e":"x@y.io","f":1}]"#).unwrap();
        assert_eq!(a["e"], b[0]["e"]);
        assert!(a["e"].as_str().unwrap().starts_with("tok_"));
    }

    #[test]
    fn no_match_is_none() {
        assert!(mask("$.missing", Strategy::redact(), r#"{"a":1}"#).is_none());
        assert!(mask("$.a.b", Strategy::redact(), r#"{"a":"str"}"#).is_none());
        assert!(mask("$[0]", Strategy::redact(), r#"{"a":1}"#).is_none());
    }

    #[test]
    fn malformed_json_fails_closed() {
        let m = JsonMasker::new([(JsonPath::parse("$.a").unwrap(), Strategy::redact())]);
        for bad in [
            "",
            "{",
            r#"{"a":"x"} trailing"#,
            "{\"a\":\"\0\"}",
            "{'a':1}",
            "\u{FEFF}{}",
        ] {
            assert!(
                matches!(m.mask(bad, &key()), Err(JsonMaskError::Malformed(_))),
                "{bad:?}"
            );
        }
        let deep = "[".repeat(100_000) + &"]".repeat(100_000);
        assert!(matches!(
            m.mask(&deep, &key()),
            Err(JsonMaskError::Malformed(_))
        ));
    }

    #[test]
    fn unicode_keys_and_values() {
        let doc = r#"{"ключ":"значение","🎉":"x"}"#;
        let out = mask("$['ключ']", Strategy::Partial { keep_last: 2 }, doc).unwrap();
        assert_eq!(out, json!({"ключ":"******ие","🎉":"x"}));
        let out = mask("$.🎉", Strategy::redact(), doc).unwrap();
        assert_eq!(out["🎉"], json!("****"));
    }
}
