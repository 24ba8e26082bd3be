//! The cache key: SQL text with its literals replaced by markers, computed by a hand-written
//! lexer in one pass.
//!
//! Hand-written, not `pg_query::normalize` or `pg_query::fingerprint`: both run the full
//! PostgreSQL parser (and fingerprint also walks the tree), costing ~10-50 µs per statement,
//! which is the very cost the cache exists to avoid. This lexer does one O(n) pass over the
//! bytes, pushes into one `String` allocated up front, and costs well under a microsecond
//! for typical statements.
//!
//! # Why a literal-free key is sound
//!
//! The cache maps a key to the analysis of the first text that produced it, so two texts
//! with the same key must get the same analysis. The key keeps every token but literals
//! byte for byte (whitespace and comments become one space, which only separates tokens,
//! as in PostgreSQL), so texts with equal keys have the same tokens apart from the values
//! of number and plain string literals, and each replaced literal keeps its token class:
//! an integer that PostgreSQL's lexer makes `ICONST` (fits in int32), any other number
//! (`FCONST`), and a non-empty standard string (`SCONST`) get three different markers.
//! The parser then builds the same tree shape, and the classifier never reads a literal's
//! value:
//! - it reads node types, keyword-derived fields (`is_program`, `remove_type`, whether a
//!   WHERE clause exists, option *names* such as EXPLAIN's `analyze`), and identifiers
//!   (table and function names, SET variable names);
//! - it deliberately ignores option values: `EXPLAIN (ANALYZE 'off') DELETE …` counts as
//!   executed, because `'off'` and `'on'` share a key;
//! - protobuf cannot tell an empty string from an absent one (`COPY t TO ''` would look like
//!   `COPY t TO STDOUT`), so the empty literal `''` is kept verbatim, never replaced.
//!
//! The one way a literal's value reaches the result is a parse error whose message quotes
//! it (or a value-dependent grammar check such as `float(0)`); the analyzer therefore does
//! not cache failed parses under a normalized key.
//!
//! Whenever the lexer meets something whose tokenization it is not certain matches
//! PostgreSQL's, it gives up and the key is the exact text: unterminated strings, quoted
//! identifiers, comments or dollar quotes; `U&'…'` / `U&"…"` (their `UESCAPE` literal changes
//! what the token means); a backslash in a plain string (its meaning depends on
//! `standard_conforming_strings`); a string directly followed by another string (PostgreSQL
//! may join them, depending on newlines); malformed numbers (`1abc`, `0x`, `1..2`, `1e`);
//! `$` not starting a parameter or dollar quote; and any byte that is not ordinary SQL
//! (control characters, NUL, backslash outside strings).

/// First byte of a key built by normalization.
const NORMALIZED: char = 'n';
/// First byte of a key that is the exact text. The tag keeps the two kinds of key apart,
/// so no exact text can ever equal a normalized key.
const EXACT: char = 'x';

/// Replaces a number PostgreSQL lexes as `ICONST`.
pub(super) const MARK_INT: char = '\u{1}';
/// Replaces any other number (`FCONST`: decimals, exponents, integers beyond int32).
pub(super) const MARK_FLOAT: char = '\u{2}';
/// Replaces a non-empty, standard-conforming `'…'` string.
pub(super) const MARK_STRING: char = '\u{3}';

/// The lexer could not be sure of the tokenization: use the exact text.
struct GiveUp;

/// Computes the cache key for `sql`.
pub(super) fn cache_key(sql: &str) -> String {
    // Markers are one byte and replace at least one byte, so the normalized key never
    // exceeds the text plus its tag: this is the only allocation.
    let mut out = String::with_capacity(sql.len() + 1);
    out.push(NORMALIZED);
    if normalize_into(sql.as_bytes(), &mut out).is_err() {
        out.clear();
        out.push(EXACT);
        out.push_str(sql);
    }
    out
}

/// True when `key` was built by normalization (not the exact-text fallback).
pub(super) fn is_normalized(key: &str) -> bool {
    key.starts_with(NORMALIZED)
}

fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}

/// PostgreSQL's `ident_cont`: letters, digits, `_`, `$` and any non-ASCII byte.
fn is_ident_cont(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

/// `dolq_cont`: like `ident_cont` without `$`.
fn is_dolq_cont(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80
}

/// Single-byte tokens copied as they are: operator characters and punctuation.
fn is_plain_punct(b: u8) -> bool {
    matches!(
        b,
        b'~' | b'!'
            | b'@'
            | b'#'
            | b'^'
            | b'&'
            | b'|'
            | b'`'
            | b'?'
            | b'+'
            | b'-'
            | b'*'
            | b'/'
            | b'%'
            | b'<'
            | b'>'
            | b'='
            | b','
            | b'('
            | b')'
            | b'['
            | b']'
            | b';'
            | b':'
            | b'.'
    )
}

/// Output helper: copies verbatim slices and inserts the single collapsed space.
struct Out<'a> {
    src: &'a [u8],
    out: &'a mut String,
    /// Whitespace or a comment was skipped since the last token.
    pending_space: bool,
    /// The last token was a quoted string (for the continuation rule).
    after_string: bool,
}

impl Out<'_> {
    fn sep(&mut self) {
        // The tag is the first char; never start or end the body with a space.
        if self.pending_space && self.out.len() > 1 {
            self.out.push(' ');
        }
        self.pending_space = false;
    }

    /// Copies `src[start..end]`, which the lexer has checked ends on a token boundary.
    fn copy(&mut self, start: usize, end: usize) -> Result<(), GiveUp> {
        self.sep();
        // Token boundaries are at ASCII bytes or the end, so the slice is valid UTF-8;
        // if that reasoning were ever wrong, fall back rather than panic.
        let text = self.src.get(start..end).ok_or(GiveUp)?;
        let text = std::str::from_utf8(text).map_err(|_| GiveUp)?;
        self.out.push_str(text);
        Ok(())
    }

    fn mark(&mut self, marker: char) {
        self.sep();
        self.out.push(marker);
    }
}

fn normalize_into(b: &[u8], out: &mut String) -> Result<(), GiveUp> {
    let mut o = Out {
        src: b,
        out,
        pending_space: false,
        after_string: false,
    };
    let at = |i: usize| b.get(i).copied().unwrap_or(0);
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        match c {
            // Whitespace and comments separate tokens but do not end the "after a string"
            // state: PostgreSQL joins `'a'` newline `'b'` into one literal.
            b' ' | b'\t' | b'\n' | b'\r' | 0x0c => {
                o.pending_space = true;
                i += 1;
                continue;
            }
            b'-' if at(i + 1) == b'-' => {
                // A line comment runs to the end of the line (or of the text).
                while i < b.len() && !matches!(at(i), b'\n' | b'\r') {
                    i += 1;
                }
                o.pending_space = true;
                continue;
            }
            b'/' if at(i + 1) == b'*' => {
                i = skip_block_comment(b, i)?;
                o.pending_space = true;
                continue;
            }
            b'\'' => {
                if o.after_string {
                    return Err(GiveUp);
                }
                let end = scan_standard_string(b, i + 1)?;
                if end - i == 2 {
                    // `''`: kept, see the module docs.
                    o.copy(i, end)?;
                } else {
                    o.mark(MARK_STRING);
                }
                o.after_string = true;
                i = end;
                continue;
            }
            b'"' => {
                let end = scan_quoted(b, i + 1, b'"')?;
                o.copy(i, end)?;
                i = end;
            }
            b'$' => {
                let end = if at(i + 1).is_ascii_digit() {
                    // A parameter `$n`; `$1abc` is an error in PostgreSQL.
                    let mut j = i + 1;
                    while at(j).is_ascii_digit() {
                        j += 1;
                    }
                    if is_ident_cont(at(j)) {
                        return Err(GiveUp);
                    }
                    j
                } else {
                    scan_dollar_quote(b, i)?
                };
                o.copy(i, end)?;
                i = end;
            }
            b'0'..=b'9' => {
                let (end, marker) = scan_number(b, i)?;
                o.mark(marker);
                i = end;
            }
            b'.' if at(i + 1).is_ascii_digit() => {
                let (end, marker) = scan_number(b, i)?;
                o.mark(marker);
                i = end;
            }
            c if is_ident_start(c) => {
                let next = at(i + 1);
                let end = match (c, next) {
                    (b'u' | b'U', b'&') if matches!(at(i + 2), b'\'' | b'"') => {
                        return Err(GiveUp);
                    }
                    (b'e' | b'E', b'\'') => {
                        if o.after_string {
                            return Err(GiveUp);
                        }
                        let end = scan_escape_string(b, i + 2)?;
                        o.copy(i, end)?;
                        o.after_string = true;
                        i = end;
                        continue;
                    }
                    (b'n' | b'N', b'\'') => {
                        if o.after_string {
                            return Err(GiveUp);
                        }
                        let end = scan_standard_string(b, i + 2)?;
                        o.copy(i, end)?;
                        o.after_string = true;
                        i = end;
                        continue;
                    }
                    (b'b' | b'B' | b'x' | b'X', b'\'') => {
                        if o.after_string {
                            return Err(GiveUp);
                        }
                        // Bit strings end at the next quote; their digits are kept.
                        let end = scan_quoted(b, i + 2, b'\'')?;
                        o.copy(i, end)?;
                        o.after_string = true;
                        i = end;
                        continue;
                    }
                    _ => {
                        let mut j = i + 1;
                        while is_ident_cont(at(j)) {
                            j += 1;
                        }
                        j
                    }
                };
                o.copy(i, end)?;
                i = end;
            }
            c if is_plain_punct(c) => {
                o.copy(i, i + 1)?;
                i += 1;
            }
            _ => return Err(GiveUp),
        }
        o.after_string = false;
    }
    Ok(())
}

/// Skips a (nested) block comment starting at `start` (`/*`); returns the index after it.
fn skip_block_comment(b: &[u8], start: usize) -> Result<usize, GiveUp> {
    let mut depth = 0usize;
    let mut i = start;
    loop {
        match (b.get(i), b.get(i + 1)) {
            (Some(b'/'), Some(b'*')) => {
                depth += 1;
                i += 2;
            }
            (Some(b'*'), Some(b'/')) => {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    return Ok(i);
                }
            }
            (Some(_), _) => i += 1,
            (None, _) => return Err(GiveUp),
        }
    }
}

/// Scans the body of a standard-conforming string (after its opening quote): `''` is a
/// quote, a backslash makes the lexer give up. Returns the index after the closing quote.
fn scan_standard_string(b: &[u8], mut i: usize) -> Result<usize, GiveUp> {
    loop {
        match b.get(i) {
            Some(b'\'') if b.get(i + 1) == Some(&b'\'') => i += 2,
            Some(b'\'') => return Ok(i + 1),
            Some(b'\\') | None => return Err(GiveUp),
            Some(_) => i += 1,
        }
    }
}

/// Scans to the closing `quote`, where a doubled quote is an escaped one (quoted
/// identifiers; bit strings never contain quotes, so doubling just stops them too).
fn scan_quoted(b: &[u8], mut i: usize, quote: u8) -> Result<usize, GiveUp> {
    loop {
        match b.get(i) {
            Some(&q) if q == quote && b.get(i + 1) == Some(&quote) && quote == b'"' => i += 2,
            Some(&q) if q == quote => return Ok(i + 1),
            None => return Err(GiveUp),
            Some(_) => i += 1,
        }
    }
}

/// Scans the body of an `E'…'` string: backslash escapes the next byte, `''` is a quote.
fn scan_escape_string(b: &[u8], mut i: usize) -> Result<usize, GiveUp> {
    loop {
        match b.get(i) {
            Some(b'\\') => {
                if i + 1 >= b.len() {
                    return Err(GiveUp);
                }
                i += 2;
            }
            Some(b'\'') if b.get(i + 1) == Some(&b'\'') => i += 2,
            Some(b'\'') => return Ok(i + 1),
            None => return Err(GiveUp),
            Some(_) => i += 1,
        }
    }
}

/// Scans a dollar-quoted string `$tag$…$tag$` starting at `start`; returns the index after
/// the closing delimiter.
fn scan_dollar_quote(b: &[u8], start: usize) -> Result<usize, GiveUp> {
    let mut i = start + 1;
    if b.get(i).copied().is_some_and(is_ident_start) {
        while b.get(i).copied().is_some_and(is_dolq_cont) {
            i += 1;
        }
    }
    if b.get(i) != Some(&b'$') {
        // PostgreSQL would return a lone `$` here: not worth modelling.
        return Err(GiveUp);
    }
    let delim = b.get(start..=i).ok_or(GiveUp)?;
    let body_start = i + 1;
    let body = b.get(body_start..).ok_or(GiveUp)?;
    let pos = find(body, delim).ok_or(GiveUp)?;
    Ok(body_start + pos + delim.len())
}

/// Index of the first occurrence of `needle` in `hay` (the needle is a short delimiter).
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let first = *needle.first()?;
    let mut from = 0;
    while let Some(off) = hay.get(from..)?.iter().position(|&c| c == first) {
        let at = from + off;
        if hay.get(at..at + needle.len()) == Some(needle) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// Scans digits of `radix` where a single `_` may precede each digit (PostgreSQL 16+);
/// `allow_leading_underscore` is for the `0x_1` form. Returns the end index and the value,
/// saturating at `u64::MAX`. Errors when no digit was read or an underscore dangles.
fn scan_digits(
    b: &[u8],
    mut i: usize,
    radix: u32,
    allow_leading_underscore: bool,
) -> Result<(usize, u64), GiveUp> {
    let mut value: u64 = 0;
    let mut digits = 0usize;
    loop {
        let mut j = i;
        if b.get(j) == Some(&b'_') && (digits > 0 || allow_leading_underscore) {
            j += 1;
        }
        match b.get(j).and_then(|&c| char::from(c).to_digit(radix)) {
            Some(d) => {
                value = value
                    .saturating_mul(u64::from(radix))
                    .saturating_add(u64::from(d));
                digits += 1;
                i = j + 1;
            }
            None if j != i => return Err(GiveUp), // `_` not followed by a digit
            None => break,
        }
    }
    if digits == 0 {
        return Err(GiveUp);
    }
    Ok((i, value))
}

/// Scans a numeric literal at `start` (a digit, or `.` followed by a digit) and says which
/// token PostgreSQL's lexer makes of it. Anything PostgreSQL would reject or split
/// differently (`1abc`, `0x`, `1_`, `1..2`, `1e`, `1.5.5`) makes the lexer give up.
fn scan_number(b: &[u8], start: usize) -> Result<(usize, char), GiveUp> {
    let at = |i: usize| b.get(i).copied().unwrap_or(0);
    let radix = match (at(start), at(start + 1)) {
        (b'0', b'x' | b'X') => 16,
        (b'0', b'o' | b'O') => 8,
        (b'0', b'b' | b'B') => 2,
        _ => 10,
    };
    let (end, marker) = if radix != 10 {
        let (end, value) = scan_digits(b, start + 2, radix, true)?;
        (end, int_marker(value))
    } else {
        let mut i = start;
        let mut is_float = false;
        let mut value = 0;
        if at(i) != b'.' {
            (i, value) = scan_digits(b, i, 10, false)?;
        }
        if at(i) == b'.' {
            if at(i + 1) == b'.' {
                return Err(GiveUp);
            }
            is_float = true;
            i += 1;
            if at(i).is_ascii_digit() {
                (i, _) = scan_digits(b, i, 10, false)?;
            }
        }
        if matches!(at(i), b'e' | b'E') {
            let mut j = i + 1;
            if matches!(at(j), b'+' | b'-') {
                j += 1;
            }
            (i, _) = scan_digits(b, j, 10, false)?;
            is_float = true;
        }
        let marker = if is_float {
            MARK_FLOAT
        } else {
            int_marker(value)
        };
        (i, marker)
    };
    // Trailing junk (`123abc`, `0x1g`, `1.5.5`) is an error in PostgreSQL 15+ and was a
    // separate token before: do not guess.
    if is_ident_cont(at(end)) || at(end) == b'.' {
        return Err(GiveUp);
    }
    Ok((end, marker))
}

/// PostgreSQL makes an integer `ICONST` only if it fits in int32 (the sign is a separate
/// token), else `FCONST`, and the grammar accepts the two in different places.
fn int_marker(value: u64) -> char {
    if value <= i32::MAX as u64 {
        MARK_INT
    } else {
        MARK_FLOAT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The normalized body (without tag), or None when the lexer fell back.
    fn norm(sql: &str) -> Option<String> {
        let key = cache_key(sql);
        if is_normalized(&key) {
            Some(
                key[1..]
                    .replace(MARK_INT, "<i>")
                    .replace(MARK_FLOAT, "<f>")
                    .replace(MARK_STRING, "<s>"),
            )
        } else {
            assert_eq!(&key[1..], sql, "fallback key is the exact text");
            None
        }
    }

    fn n(sql: &str) -> String {
        norm(sql).unwrap_or_else(|| panic!("expected normalization of {sql:?}"))
    }

    #[test]
    fn replaces_numbers_and_plain_strings() {
        assert_eq!(
            n("SELECT abalance FROM pgbench_accounts WHERE aid = 12345;"),
            "SELECT abalance FROM pgbench_accounts WHERE aid = <i>;"
        );
        assert_eq!(
            n("select * from t where a='x' and b=1.5"),
            "select * from t where a=<s> and b=<f>"
        );
        assert_eq!(
            n("SELECT 1e10, 1.5E-3, .5, 5."),
            "SELECT <f>, <f>, <f>, <f>"
        );
        assert_eq!(
            n("SELECT 0x1F, 0o17, 0b101, 1_000_000, 0x_ff"),
            "SELECT <i>, <i>, <i>, <i>, <i>"
        );
        // Beyond int32 PostgreSQL lexes an FCONST, which the grammar treats differently.
        assert_eq!(n("SELECT 2147483647, 2147483648"), "SELECT <i>, <f>");
        assert_eq!(n("SELECT 0xFFFFFFFF"), "SELECT <f>");
        assert_eq!(n("SELECT 99999999999999999999999999"), "SELECT <f>");
        assert_eq!(n("SELECT -1"), "SELECT -<i>");
    }

    #[test]
    fn keeps_identifiers_parameters_and_other_literals() {
        assert_eq!(n("SELECT t1.c2 FROM t1"), "SELECT t1.c2 FROM t1");
        assert_eq!(n("SELECT $1, $23 FROM t"), "SELECT $1, $23 FROM t");
        assert_eq!(n("SELECT a$1 FROM x$y$"), "SELECT a$1 FROM x$y$");
        assert_eq!(
            n(r#"SELECT "Weird ""Name""" FROM "T""#),
            r#"SELECT "Weird ""Name""" FROM "T""#
        );
        assert_eq!(n(r"SELECT E'it\'s', e'\\'"), r"SELECT E'it\'s', e'\\'");
        assert_eq!(
            n("SELECT B'0101', X'1F', N'abc'"),
            "SELECT B'0101', X'1F', N'abc'"
        );
        assert_eq!(n("SELECT ''"), "SELECT ''");
        assert_eq!(
            n("SELECT $$a'b$$, $fn$ 1 $$ 2 $fn$"),
            "SELECT $$a'b$$, $fn$ 1 $$ 2 $fn$"
        );
        assert_eq!(
            n("SELECT x::int[] @> ARRAY[$1]"),
            "SELECT x::int[] @> ARRAY[$1]"
        );
        assert_eq!(n("SELECT café FROM naïve"), "SELECT café FROM naïve");
        // A typed literal: the type name is kept, the string replaced.
        assert_eq!(n("SELECT date '2024-01-01'"), "SELECT date <s>");
    }

    #[test]
    fn strings_hide_their_contents() {
        assert_eq!(n("SELECT 'a;b'"), "SELECT <s>");
        assert_eq!(n("SELECT '-- not a comment'"), "SELECT <s>");
        assert_eq!(n("SELECT '/* nor this */'"), "SELECT <s>");
        assert_eq!(n("SELECT ''';DROP TABLE t;--'"), "SELECT <s>");
        assert_eq!(n("SELECT 'it''s'"), "SELECT <s>");
        assert_eq!(
            n("SELECT $q$ '; DROP TABLE t; $q$"),
            "SELECT $q$ '; DROP TABLE t; $q$"
        );
        assert_eq!(
            n(r"SELECT E'\';DROP TABLE t;--'"),
            r"SELECT E'\';DROP TABLE t;--'"
        );
    }

    #[test]
    fn whitespace_and_comments_collapse() {
        assert_eq!(n("  SELECT\t\n 1  -- trailing\n ; "), "SELECT <i> ;");
        assert_eq!(n("SELECT/* a /* nested */ comment */1"), "SELECT <i>");
        assert_eq!(n("SELECT 1 -- no newline at end"), "SELECT <i>");
        assert_eq!(n("SELECT 2 --x\r\nFROM t"), "SELECT <i> FROM t");
        // A comment inside an operator run still separates tokens.
        assert_eq!(n("SELECT 1*/**/-2"), "SELECT <i>* -<i>");
        assert_eq!(n("SELECT 1 <--2"), "SELECT <i> <");
    }

    #[test]
    fn literal_only_differences_share_a_key() {
        let pairs = [
            (
                "SELECT * FROM t WHERE id = 1",
                "SELECT * FROM t WHERE id = 987654",
            ),
            ("SELECT 'a' || 'b'", "SELECT 'xyz' || 'it''s'"),
            (
                "UPDATE t SET v = 1.5 WHERE k = 'x'",
                "UPDATE t SET v = 2e9 WHERE k = 'yy'",
            ),
            ("SELECT 1   /* c */ , 2", "SELECT 3 , 4"),
            (
                "INSERT INTO t VALUES (1, 'a'), (2, 'b')",
                "INSERT INTO t VALUES (10, 'z'), (20, 'y')",
            ),
        ];
        for (a, b) in pairs {
            assert_eq!(cache_key(a), cache_key(b), "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn non_literal_differences_never_share_a_key() {
        let pairs = [
            (
                "SELECT a FROM t WHERE id = 1",
                "SELECT b FROM t WHERE id = 1",
            ),
            (
                "SELECT * FROM t WHERE id = 1",
                "SELECT * FROM t WHERE id = $1",
            ),
            ("SELECT 1", "SELECT 1.0"),
            ("SELECT 1", "SELECT 3000000000"),
            ("SELECT 1", "SELECT '1'"),
            ("SELECT 'a'", "SELECT ''"),
            ("COPY t TO 'f'", "COPY t TO STDOUT"),
            ("SELECT 'a'", "SELECT E'a'"),
            ("SELECT 'a'", "SELECT $$a$$"),
            ("SELECT \"a\"", "SELECT a"),
            ("SELECT a FROM t", "select a from t"),
            ("SELECT a<=b", "SELECT a< =b"),
            ("SELECT 1; DELETE FROM t", "SELECT 1; DELETE FROM u"),
            ("SELECT t1", "SELECT t2"),
            ("DELETE FROM t WHERE a = 1", "DELETE FROM t"),
            (
                "EXPLAIN (ANALYZE off) DELETE FROM t",
                "EXPLAIN (ANALYZE on) DELETE FROM t",
            ),
        ];
        for (a, b) in pairs {
            assert_ne!(cache_key(a), cache_key(b), "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn exact_text_never_collides_with_a_normalized_key() {
        // An exact-text key that happens to contain marker bytes still differs by its tag.
        let tricky = format!("SELECT {MARK_INT}\\");
        assert!(!is_normalized(&cache_key(&tricky)));
        assert_ne!(cache_key(&tricky), cache_key("SELECT 1\\"));
        assert_ne!(
            cache_key(&tricky[..tricky.len() - 1]),
            cache_key("SELECT 1")
        );
    }

    #[test]
    fn gives_up_on_anything_uncertain() {
        let uncertain = [
            "SELECT 'unterminated",
            "SELECT \"unterminated",
            "SELECT /* unterminated",
            "SELECT /* /* nested */ still open",
            "SELECT $$ unterminated",
            "SELECT $tag$ x $other$",
            "SELECT E'unterminated\\'",
            "SELECT E'ends in backslash\\",
            "SELECT U&'d\\0061t'",
            "SELECT U&\"d!0061t\" UESCAPE '!'",
            "SELECT 'a\\b'",
            "SELECT 'a'\n'b'",
            "SELECT 'a' 'b'",
            "SELECT E'a'\n'b'",
            "SELECT B'01''10'",
            "SELECT 1abc",
            "SELECT 0x",
            "SELECT 0xZ",
            "SELECT 0b102",
            "SELECT 1_",
            "SELECT 1__0",
            "SELECT 1..2",
            "SELECT 1e",
            "SELECT 1e+",
            "SELECT 1.5.5",
            "SELECT $1abc",
            "SELECT $",
            "SELECT $a",
            "SELECT 1\0",
            "SELECT \u{b}1",
            "SELECT \\x",
            "SELECT {1}",
        ];
        for sql in uncertain {
            assert_eq!(
                norm(sql),
                None,
                "{sql:?} should fall back to the exact text"
            );
        }
    }

    #[test]
    fn hostile_input_is_linear_and_never_panics() {
        let cases = [
            "(".repeat(1 << 20),
            "/*".repeat(100_000),
            "'".repeat(100_001),
            "$".repeat(100_000),
            "$a$".repeat(33_333),
            "SELECT 1;".repeat(100_000),
            "9".repeat(100_000),
            "\"".repeat(99_999),
            "é".repeat(50_000),
            "-".repeat(100_001),
        ];
        for sql in &cases {
            let start = std::time::Instant::now();
            let key = cache_key(sql);
            assert!(key.len() <= sql.len() + 1);
            assert!(start.elapsed() < std::time::Duration::from_secs(2));
        }
        assert_eq!(norm(&"(".repeat(10)), Some("(".repeat(10)));
    }

    #[test]
    fn every_prefix_of_tricky_text_is_handled() {
        let sql =
            "SELECT E'a\\'b', $t$ x $t$, \"q\"\"i\", 0x_1F, 1.5e-3, /* c /* d */ */ 'z' -- end\n;";
        for end in 0..=sql.len() {
            if let Some(prefix) = sql.get(..end) {
                let key = cache_key(prefix);
                assert!(key.len() <= prefix.len() + 1);
            }
        }
    }
}
