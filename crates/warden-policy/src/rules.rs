//! Statement rules: per connection, per group, `allow`, `deny` or `review`, matched on
//! what [`crate::statement`] found in a SQL text (class, statement kind, tables,
//! functions). Pure: the proxy asks, this answers.
//!
//! A text with several statements gets the strictest decision of any of them (deny over
//! review over allow). Within a statement the first matching rule wins; no match allows.
//! A statement that could not be analysed (`unknown`) matches every `deny` and `review`
//! rule whatever it lists, and no `allow` rule: failing to understand a statement never
//! makes it safer.

use warden_types::Identity;

use crate::statement::{Analysis, StatementClass, StatementInfo};

/// What a rule does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Let it through.
    Allow,
    /// Refuse it (ErrorResponse 42501 with `message`).
    Deny,
    /// Hold it until approved.
    Review,
}

/// One rule. Empty match lists match anything; all non-empty lists must match.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// What to do on a match.
    pub action: Action,
    /// Classes.
    pub classes: Vec<StatementClass>,
    /// Statement kinds, as [`StatementInfo::kind`] (`"DROP TABLE"`), case-insensitive.
    pub kinds: Vec<String>,
    /// Tables: `schema.table`, `table`, or with `*` as a whole part (`public.*`).
    pub tables: Vec<String>,
    /// Functions, matched like tables.
    pub functions: Vec<String>,
    /// Only for members of these groups (empty: everyone).
    pub groups: Vec<String>,
    /// Members of these groups are exempt.
    pub except_groups: Vec<String>,
    /// Shown to the client on deny, and to approvers on review.
    pub message: Option<String>,
}

/// The decision on a whole SQL text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Forward it.
    Allow,
    /// Refuse it; `rule` is the index of the deciding rule.
    Deny {
        /// Deciding rule.
        rule: usize,
        /// Why, for the client.
        message: String,
    },
    /// Hold it for review under rule `rule`.
    Review {
        /// Deciding rule.
        rule: usize,
        /// Why, for approvers.
        message: String,
    },
}

impl Decision {
    fn strictness(&self) -> u8 {
        match self {
            Decision::Allow => 0,
            Decision::Review { .. } => 1,
            Decision::Deny { .. } => 2,
        }
    }
}

/// A connection's rules in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatementRules {
    rules: Vec<Rule>,
}

/// `pattern` against a possibly qualified name: parts compared case-insensitively, `*`
/// matches one whole part, a trailing `*` a prefix (`dblink*`), an unqualified pattern
/// matches the last part of the name.
fn name_matches(pattern: &str, name: &str) -> bool {
    let p: Vec<&str> = pattern.split('.').collect();
    let n: Vec<&str> = name.split('.').collect();
    // Compare the trailing parts both have: `orders` matches `public.orders`, and an
    // unqualified `orders` in SQL matches a `public.orders` rule, since which schema it
    // resolves to depends on search_path, which the gateway does not pin.
    let k = p.len().min(n.len());
    let (p, n) = (&p[p.len() - k..], &n[n.len() - k..]);
    p.iter().zip(n).all(|(p, n)| {
        let (p, n) = (p.trim_matches('"'), n.trim_matches('"'));
        match p.strip_suffix('*') {
            Some(prefix) => n
                .get(..prefix.len())
                .is_some_and(|h| h.eq_ignore_ascii_case(prefix)),
            None => p.eq_ignore_ascii_case(n),
        }
    })
}

impl Rule {
    fn applies_to(&self, who: &Identity) -> bool {
        (self.groups.is_empty() || self.groups.iter().any(|g| who.in_group(g)))
            && !self.except_groups.iter().any(|g| who.in_group(g))
    }

    fn matches(&self, s: &StatementInfo) -> bool {
        if s.class == StatementClass::Unknown {
            return self.action != Action::Allow;
        }
        let class = self.classes.is_empty() || self.classes.contains(&s.class);
        let kind =
            self.kinds.is_empty() || self.kinds.iter().any(|k| k.eq_ignore_ascii_case(&s.kind));
        let table = self.tables.is_empty()
            || s.tables
                .iter()
                .any(|t| self.tables.iter().any(|p| name_matches(p, t)));
        let function = self.functions.is_empty()
            || s.functions
                .iter()
                .any(|f| self.functions.iter().any(|p| name_matches(p, f)));
        class && kind && table && function
    }
}

impl StatementRules {
    /// Rules in evaluation order.
    pub fn new(rules: Vec<Rule>) -> Self {
        StatementRules { rules }
    }

    /// Whether there are no rules (everything is allowed).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The rule at `index`.
    pub fn rule(&self, index: usize) -> Option<&Rule> {
        self.rules.get(index)
    }

    /// The decision for `who` running the analysed text.
    pub fn decide(&self, who: &Identity, analysis: &Analysis) -> Decision {
        let mut worst = Decision::Allow;
        for s in &analysis.statements {
            let d = self
                .rules
                .iter()
                .enumerate()
                .find(|(_, r)| r.applies_to(who) && r.matches(s))
                .map(|(i, r)| {
                    let message = r.message.clone().unwrap_or_else(|| {
                        let why = if s.reasons.is_empty() {
                            String::new()
                        } else {
                            format!(" ({})", s.reasons.join(", "))
                        };
                        format!("{} is a {} statement{why}", s.kind, s.class.as_str())
                    });
                    match r.action {
                        Action::Allow => Decision::Allow,
                        Action::Deny => Decision::Deny { rule: i, message },
                        Action::Review => Decision::Review { rule: i, message },
                    }
                })
                .unwrap_or(Decision::Allow);
            if d.strictness() > worst.strictness() {
                worst = d;
            }
        }
        worst
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::statement::analyze_uncached;
    use warden_types::{CredentialKind, Subject};

    fn who(groups: &[&str]) -> Identity {
        Identity {
            subject: Subject("agent".into()),
            display_name: "agent".into(),
            issuer: "i".into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            kind: CredentialKind::Builtin,
            actor: None,
            token_id: None,
            expires_at: None,
        }
    }

    fn rule(action: Action) -> Rule {
        Rule {
            action,
            classes: vec![],
            kinds: vec![],
            tables: vec![],
            functions: vec![],
            groups: vec![],
            except_groups: vec![],
            message: None,
        }
    }

    fn decide(rules: &StatementRules, groups: &[&str], sql: &str) -> Decision {
        rules.decide(&who(groups), &analyze_uncached(sql))
    }

    fn is(d: &Decision) -> &'static str {
        match d {
            Decision::Allow => "allow",
            Decision::Deny { .. } => "deny",
            Decision::Review { .. } => "review",
        }
    }

    #[test]
    fn destructive_statements_are_caught_however_written() {
        let rules = StatementRules::new(vec![Rule {
            classes: vec![StatementClass::Destructive],
            except_groups: vec!["dba".into()],
            ..rule(Action::Review)
        }]);
        for sql in [
            "DROP TABLE t",
            "WITH d AS (DELETE FROM t RETURNING *) SELECT count(*) FROM d",
            "SELECT 1; DROP TABLE t",
            "DeLeTe   FROM t",
            "/* harmless */ delete\n\t from -- really\n t",
            "TRUNCATE t",
            "UPDATE t SET x = 1",
            "ALTER TABLE t ADD COLUMN y int",
            "GRANT ALL ON t TO public",
            "COPY t TO PROGRAM 'sh'",
            "ALTER SYSTEM SET work_mem = '1GB'",
            "SELECT pg_read_file('/etc/passwd')",
            "DO $$ BEGIN EXECUTE 'drop table t'; END $$",
            "this is not sql at all",
        ] {
            assert_eq!(is(&decide(&rules, &["agents"], sql)), "review", "{sql}");
        }
        for sql in [
            "DELETE FROM t WHERE id = 1",
            "SELECT * FROM t",
            "INSERT INTO t VALUES (1)",
        ] {
            assert_eq!(is(&decide(&rules, &["agents"], sql)), "allow", "{sql}");
        }
        assert_eq!(
            is(&decide(&rules, &["agents", "dba"], "DROP TABLE t")),
            "allow"
        );
    }

    #[test]
    fn first_match_wins_and_the_strictest_statement_decides() {
        let rules = StatementRules::new(vec![
            Rule {
                tables: vec!["public.audit_log".into()],
                message: Some("the audit log is append-only".into()),
                kinds: vec!["DELETE".into(), "UPDATE".into()],
                ..rule(Action::Deny)
            },
            Rule {
                functions: vec!["dblink*".into(), "pg_catalog.lo_export".into()],
                ..rule(Action::Deny)
            },
            Rule {
                classes: vec![StatementClass::Write],
                groups: vec!["interns".into()],
                ..rule(Action::Review)
            },
        ]);
        match decide(&rules, &["agents"], "delete from audit_log where id = 3") {
            Decision::Deny { rule, message } => {
                assert_eq!(rule, 0);
                assert_eq!(message, "the audit log is append-only");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            is(&decide(
                &rules,
                &["agents"],
                "select lo_export(1, '/tmp/x')"
            )),
            "deny"
        );
        assert_eq!(
            is(&decide(&rules, &["agents"], "insert into t values (1)")),
            "allow"
        );
        assert_eq!(
            is(&decide(&rules, &["interns"], "insert into t values (1)")),
            "review"
        );
        // One denied statement in a multi-statement text denies the text.
        assert_eq!(
            is(&decide(
                &rules,
                &["interns"],
                "insert into t values (1); update audit_log set x = 1 where id = 1"
            )),
            "deny"
        );
        match decide(&rules, &["interns"], "update t set x = 1 where id = 2") {
            Decision::Review { message, .. } => assert!(message.contains("UPDATE"), "{message}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unknown_statements_never_match_an_allow_rule() {
        let rules = StatementRules::new(vec![
            Rule {
                classes: vec![StatementClass::Read],
                ..rule(Action::Allow)
            },
            Rule {
                tables: vec!["secrets".into()],
                ..rule(Action::Deny)
            },
        ]);
        assert_eq!(is(&decide(&rules, &[], "select 1")), "allow");
        assert_eq!(is(&decide(&rules, &[], "selec 1 from")), "deny");
    }

    #[test]
    fn names_match_by_part() {
        assert!(name_matches("dblink*", "dblink_connect"));
        assert!(name_matches("dblink*", "public.dblink"));
        assert!(!name_matches("dblink*", "db"));
        assert!(name_matches("public.*", "public.orders"));
        assert!(name_matches("orders", "public.orders"));
        assert!(name_matches("ORDERS", "orders"));
        assert!(!name_matches("public.*", "private.orders"));
        assert!(!name_matches("public.orders", "orders_archive"));
        assert!(name_matches("*.*", "a.b"));
        assert!(
            name_matches("public.orders", "orders"),
            "search_path decides: match"
        );
        assert!(!name_matches("public.orders", "other.orders"));
    }
}
