//! The text scanner: runs a connection's detector rules over one text value and masks every
//! match exactly once.
//!
//! This is the per-value hot path. One pass gathers [`TextHints`] so detectors whose
//! trigger bytes are absent never run; when nothing matches, [`Scanner::mask_text`] returns
//! `None` without allocating, and the caller forwards the original bytes.

use std::ops::Range;

use crate::detect::{Detector, TextHints};
use crate::strategy::{MaskKey, Strategy};

/// One masking rule: what to look for, how to mask it, and the name reported for hits.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Name reported in hit counts (and audit records).
    pub name: String,
    /// What to look for.
    pub detector: Detector,
    /// How to mask what is found.
    pub strategy: Strategy,
}

/// A fixed list of rules, built once per connection and reused for every value.
#[derive(Debug, Clone, Default)]
pub struct Scanner {
    rules: Vec<Rule>,
}

impl Scanner {
    /// Builds a scanner from `(detector, strategy, rule name)` triples; earlier rules win
    /// ties between equally long overlapping matches.
    pub fn new<N: Into<String>>(rules: impl IntoIterator<Item = (Detector, Strategy, N)>) -> Self {
        Self {
            rules: rules
                .into_iter()
                .map(|(detector, strategy, name)| Rule {
                    name: name.into(),
                    detector,
                    strategy,
                })
                .collect(),
        }
    }

    /// The rules, in priority order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Masks every match in `text`. Returns `None` (allocating nothing) when no rule
    /// matched; otherwise the masked text and, per rule that matched, its name and count.
    ///
    /// Overlapping matches are resolved before masking: the earliest start wins, then the
    /// longest, then the earlier rule, so no byte is masked twice. A [`Strategy::Null`] match
    /// inside text is removed, since part of a string cannot be NULL.
    pub fn mask_text<'s>(
        &'s self,
        text: &str,
        key: &MaskKey,
    ) -> Option<(String, Vec<(&'s str, usize)>)> {
        let hints = TextHints::of(text);
        let mut found: Vec<(Range<usize>, usize)> = Vec::new();
        for (idx, rule) in self.rules.iter().enumerate() {
            if rule.detector.could_match(&hints) {
                rule.detector.for_each_match(text, |r| found.push((r, idx)));
            }
        }
        if found.is_empty() {
            return None;
        }
        // `sort_by` is stable and matches were pushed in rule order, so equal spans keep the
        // earlier rule first.
        found.sort_by(|(a, _), (b, _)| {
            a.start
                .cmp(&b.start)
                .then((b.end - b.start).cmp(&(a.end - a.start)))
        });

        let mut out = String::with_capacity(text.len());
        let mut counts: Vec<(&'s str, usize)> = Vec::new();
        let mut pos = 0;
        for (r, idx) in found {
            if r.start < pos {
                continue;
            }
            let rule = &self.rules[idx];
            out.push_str(&text[pos..r.start]);
            rule.strategy.apply_into(&text[r.clone()], key, &mut out);
            pos = r.end;
            match counts.iter_mut().find(|(n, _)| *n == rule.name) {
                Some((_, c)) => *c += 1,
                None => counts.push((&rule.name, 1)),
            }
        }
        out.push_str(&text[pos..]);
        Some((out, counts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::CustomDetector;

    fn key() -> MaskKey {
        MaskKey::new([5u8; 32]).unwrap()
    }

    fn all_rules() -> Scanner {
        Scanner::new([
            (Detector::Email, Strategy::KeepDomain, "email"),
            (
                Detector::PaymentCard,
                Strategy::Partial { keep_last: 4 },
                "card",
            ),
            (Detector::UsSsn, Strategy::redact(), "ssn"),
            (Detector::Phone, Strategy::redact(), "phone"),
            (Detector::Iban, Strategy::redact(), "iban"),
            (Detector::Ipv4, Strategy::Hash, "ipv4"),
            (Detector::Ipv6, Strategy::Hash, "ipv6"),
            (Detector::Jwt, Strategy::redact(), "jwt"),
            (Detector::ApiKey, Strategy::redact(), "key"),
        ])
    }

    #[test]
    fn no_match_returns_none() {
        let s = all_rules();
        assert!(s.mask_text("", &key()).is_none());
        assert!(s
            .mask_text("just some words, 42 of them.", &key())
            .is_none());
        assert!(s.mask_text("order 1234567812345678", &key()).is_none());
        assert!(s.mask_text("10.0.0.256 and 000-12-3456", &key()).is_none());
    }

    #[test]
    fn masks_each_kind_and_counts() {
        let s = all_rules();
        let text = "alice@example.com paid with 4111 1111 1111 1111, ssn 123-45-6789, \
                    bob@example.org from 192.168.0.1";
        let (out, counts) = s.mask_text(text, &key()).unwrap();
        assert!(out.starts_with("****@example.com paid with **** **** **** 1111, ssn ****, "));
        assert!(out.contains("****@example.org from tok_"));
        assert!(!out.contains("192.168"));
        assert_eq!(counts, [("email", 2), ("card", 1), ("ssn", 1), ("ipv4", 1)]);
    }

    #[test]
    fn overlapping_matches_masked_once_longest_wins() {
        // The custom rule matches inside the email; the email is longer and starts first.
        let s = Scanner::new([
            (
                Detector::Custom(CustomDetector::new("dom", "example").unwrap()),
                Strategy::Redact {
                    placeholder: Some("[dom]".into()),
                },
                "dom",
            ),
            (Detector::Email, Strategy::redact(), "email"),
        ]);
        let (out, counts) = s.mask_text("x alice@example.com y", &key()).unwrap();
        assert_eq!(out, "x **** y");
        assert_eq!(counts, [("email", 1)]);
    }

    #[test]
    fn equal_spans_first_rule_wins() {
        let s = Scanner::new([
            (
                Detector::Phone,
                Strategy::Redact {
                    placeholder: Some("[p]".into()),
                },
                "p1",
            ),
            (Detector::Phone, Strategy::redact(), "p2"),
        ]);
        let (out, counts) = s.mask_text("+14155552671", &key()).unwrap();
        assert_eq!(out, "[p]");
        assert_eq!(counts, [("p1", 1)]);
    }

    #[test]
    fn hash_tokens_equal_for_equal_values() {
        let s = Scanner::new([(Detector::Email, Strategy::Hash, "email")]);
        let (a, _) = s.mask_text("a@x.io", &key()).unwrap();
        let (b, _) = s.mask_text("to a@x.io and a@x.io", &key()).unwrap();
        assert_eq!(b, format!("to {a} and {a}"));
    }

    #[test]
    fn null_strategy_removes_span() {
        let s = Scanner::new([(Detector::UsSsn, Strategy::Null, "ssn")]);
        let (out, _) = s.mask_text("ssn=123-45-6789;", &key()).unwrap();
        assert_eq!(out, "ssn=;");
    }

    #[test]
    fn unicode_around_matches_is_preserved() {
        let s = all_rules();
        let (out, _) = s.mask_text("ünï 🎉 alice@example.com ñ\0", &key()).unwrap();
        assert_eq!(out, "ünï 🎉 ****@example.com ñ\0");
    }

    #[test]
    fn huge_input_masks_all_matches() {
        let s = all_rules();
        let text = "call 415-555-2671 ".repeat(20_000);
        let (out, counts) = s.mask_text(&text, &key()).unwrap();
        assert_eq!(counts, [("phone", 20_000)]);
        assert!(!out.contains("2671"));
        let plain = "x".repeat(1 << 20);
        assert!(s.mask_text(&plain, &key()).is_none());
    }
}
