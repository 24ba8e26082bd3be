//! Quoting for the DDL Warden builds: role names cannot be bind parameters in
//! `CREATE ROLE`/`DROP ROLE`, so they are quoted here, once, and tested against hostile
//! names.

/// Quotes an identifier: `"` doubled, wrapped in `"`. NUL cannot occur in a PostgreSQL
/// identifier, so it is removed rather than passed on.
pub fn ident(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push('"');
    for ch in name.chars() {
        match ch {
            '"' => out.push_str("\"\""),
            '\0' => {}
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Quotes a string literal for a server with `standard_conforming_strings = on` (Warden's
/// admin connections set it): `'` doubled. Control characters and NUL are replaced by
/// spaces, since literal values here are labels (role comments), not data.
pub fn literal(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for ch in value.chars() {
        match ch {
            '\'' => out.push_str("''"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_cannot_break_out() {
        assert_eq!(ident("app_readonly"), "\"app_readonly\"");
        assert_eq!(ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(
            ident("x\"; DROP ROLE postgres; --"),
            "\"x\"\"; DROP ROLE postgres; --\""
        );
        assert_eq!(ident("a\0b"), "\"ab\"");
        assert_eq!(ident("Ünï"), "\"Ünï\"");
    }

    #[test]
    fn literals_cannot_break_out() {
        assert_eq!(literal("o'brien"), "'o''brien'");
        assert_eq!(literal("a\\'; DROP ROLE x; --"), "'a\\''; DROP ROLE x; --'");
        assert_eq!(literal("line\nbreak\0"), "'line break '");
    }
}
