//! A connection's `[[connections.masking]]` rules, compiled once at start-up.

use warden_config::MaskingRuleConfig;
use warden_masking::lineage::{Clause, RuleId};
use warden_masking::{CustomDetector, Detector, JsonPath, MaskKey, Scanner, Strategy};
use warden_types::Identity;

/// One compiled rule.
pub struct MaskRule {
    /// Name in recordings and messages.
    pub name: String,
    /// `(schema, table, column)` glob patterns.
    pub columns: Vec<[String; 3]>,
    /// `(schema, table, column, path)`.
    pub json: Vec<([String; 3], JsonPath)>,
    /// Content detectors: when set, only matches inside `columns` are masked.
    pub scanner: Option<Scanner>,
    /// How values are replaced.
    pub strategy: Strategy,
    /// Groups the rule does not apply to.
    pub exempt_groups: Vec<String>,
    /// Deny expressions computed from the rule's columns.
    pub strict: bool,
    /// Clauses in which the rule's columns make a statement refused.
    pub refuse_in: Vec<Clause>,
}

impl MaskRule {
    /// Whether the rule masks whole columns (as opposed to detector matches).
    pub fn is_column_rule(&self) -> bool {
        self.scanner.is_none() && !self.columns.is_empty()
    }

    /// Whether the rule scans every column of every relation (`*.*.*`).
    pub fn scans_everything(&self) -> bool {
        self.scanner.is_some() && self.columns.iter().any(|c| c.iter().all(|p| p == "*"))
    }
}

/// All rules of a connection and the key of its keyed strategies.
pub struct MaskRules {
    /// In configuration order; a [`RuleId`] indexes this.
    pub rules: Vec<MaskRule>,
    /// Key of `hash` and `format_preserving`.
    pub key: MaskKey,
}

impl MaskRules {
    /// Compiles validated configuration.
    pub fn compile(cfg: &[MaskingRuleConfig], key: MaskKey) -> Result<MaskRules, String> {
        let mut rules = Vec::new();
        for (i, m) in cfg.iter().enumerate() {
            let name = m.name.clone().unwrap_or_else(|| format!("masking[{i}]"));
            let strategy = match m.strategy.as_str() {
                "redact" => Strategy::Redact {
                    placeholder: m.placeholder.clone(),
                },
                "partial" => Strategy::Partial {
                    keep_last: m.keep_last.unwrap_or(4),
                },
                "keep_domain" => Strategy::KeepDomain,
                "hash" => Strategy::Hash,
                "format_preserving" => Strategy::FormatPreserving,
                "null" => Strategy::Null,
                other => return Err(format!("{name}: unknown strategy {other:?}")),
            };
            let columns = m.columns.iter().map(|c| split3(c)).collect();
            let mut json = Vec::new();
            for jp in &m.json_paths {
                let (col, path) = jp
                    .split_once(':')
                    .ok_or_else(|| format!("{name}: bad json path {jp:?}"))?;
                let path = JsonPath::parse(path).map_err(|e| format!("{name}: {e}"))?;
                json.push((split3(col), path));
            }
            let scanner = if m.detectors.is_empty() {
                None
            } else {
                let mut triples = Vec::new();
                for d in &m.detectors {
                    let det =
                        match d.as_str() {
                            "email" => Detector::Email,
                            "payment_card" => Detector::PaymentCard,
                            "us_ssn" => Detector::UsSsn,
                            "phone" => Detector::Phone,
                            "iban" => Detector::Iban,
                            "ipv4" => Detector::Ipv4,
                            "ipv6" => Detector::Ipv6,
                            "jwt" => Detector::Jwt,
                            "api_key" => Detector::ApiKey,
                            custom => {
                                let p = m.patterns.iter().find(|p| p.name == custom).ok_or_else(
                                    || format!("{name}: unknown detector {custom:?}"),
                                )?;
                                Detector::Custom(
                                    CustomDetector::new(p.name.clone(), &p.regex)
                                        .map_err(|e| format!("{name}: {e}"))?,
                                )
                            }
                        };
                    triples.push((det, strategy.clone(), format!("{name}:{d}")));
                }
                Some(Scanner::new(triples))
            };
            let refuse_in = m
                .refuse_in
                .iter()
                .filter_map(|c| match c.as_str() {
                    "where" => Some(Clause::Where),
                    "join" => Some(Clause::Join),
                    "group_by" => Some(Clause::GroupBy),
                    "order_by" => Some(Clause::OrderBy),
                    _ => None,
                })
                .collect();
            rules.push(MaskRule {
                name,
                columns,
                json,
                scanner,
                strategy,
                exempt_groups: m.exempt_groups.clone(),
                strict: m.strict,
                refuse_in,
            });
        }
        if rules.len() > usize::from(RuleId::MAX) {
            return Err("too many masking rules".into());
        }
        Ok(MaskRules { rules, key })
    }

    /// Every rule that masks whole columns.
    pub fn column_rules(&self) -> impl Iterator<Item = RuleId> + '_ {
        self.rules
            .iter()
            .enumerate()
            .filter(|(_, r)| r.is_column_rule())
            .map(|(i, _)| i as RuleId)
    }

    /// Which rules apply to `identity` (not exempt by group).
    pub fn active_for(&self, identity: &Identity) -> Vec<bool> {
        self.rules
            .iter()
            .map(|r| {
                !r.exempt_groups
                    .iter()
                    .any(|g| identity.groups.iter().any(|h| h == g))
            })
            .collect()
    }

    /// Rules whose columns (or JSON paths) match `schema.table.column`.
    pub fn column_taint(&self, schema: &str, table: &str, column: &str) -> Vec<RuleId> {
        let mut out = Vec::new();
        for (i, r) in self.rules.iter().enumerate() {
            let hit = (r.is_column_rule()
                && r.columns.iter().any(|p| matches3(p, schema, table, column)))
                || r.json
                    .iter()
                    .any(|(p, _)| matches3(p, schema, table, column));
            if hit {
                out.push(i as RuleId);
            }
        }
        out
    }

    /// Detector rules scoped to `schema.table.column`.
    pub fn scan_scope(&self, schema: &str, table: &str, column: &str) -> Vec<RuleId> {
        let mut out = Vec::new();
        for (i, r) in self.rules.iter().enumerate() {
            if r.scanner.is_some() && r.columns.iter().any(|p| matches3(p, schema, table, column)) {
                out.push(i as RuleId);
            }
        }
        out
    }
}

fn split3(s: &str) -> [String; 3] {
    let mut it = s.splitn(3, '.');
    [
        it.next().unwrap_or("").to_owned(),
        it.next().unwrap_or("").to_owned(),
        it.next().unwrap_or("").to_owned(),
    ]
}

fn matches3(p: &[String; 3], schema: &str, table: &str, column: &str) -> bool {
    glob(&p[0], schema) && glob(&p[1], table) && glob(&p[2], column)
}

/// `*` matches any run of characters; everything else matches itself.
pub fn glob(pattern: &str, s: &str) -> bool {
    let (p, s) = (pattern.as_bytes(), s.as_bytes());
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, si));
            pi += 1;
        } else if pi < p.len() && p[pi] == s[si] {
            pi += 1;
            si += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob("*", "anything"));
        assert!(glob("cust*", "customers"));
        assert!(glob("*ers", "customers"));
        assert!(glob("c*o*s", "customers"));
        assert!(!glob("cust", "customers"));
        assert!(!glob("orders", "customers"));
        assert!(glob("", ""));
        assert!(!glob("", "x"));
    }
}
