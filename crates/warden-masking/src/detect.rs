//! Detectors: find sensitive values (emails, payment cards, SSNs, phone numbers, IBANs, IP
//! addresses, JWTs, API keys, custom patterns) inside free text.
//!
//! Built-in regexes are compiled once per process and only propose candidates; each
//! candidate is then checked (Luhn, mod-97, octet ranges, the JWT header) so near-misses such
//! as 16-digit numbers that fail Luhn are left alone. Built-in detectors match ASCII only, so
//! every span they report starts and ends on a `char` boundary and can slice the `&str`.
//! Finding nothing allocates nothing.

use std::ops::Range;
use std::sync::OnceLock;

use base64::Engine as _;
use regex::bytes::Regex as BytesRegex;

/// Longest custom pattern accepted, in bytes.
pub const MAX_CUSTOM_PATTERN_LEN: usize = 4096;

/// Compiled-size limit for custom patterns; the regex crate refuses larger programs, which
/// bounds memory, while its automata keep matching linear in the input.
const CUSTOM_SIZE_LIMIT: usize = 1 << 20;

/// Why a custom detector could not be built.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    /// The detector has no name, so its hits could not be reported.
    #[error("a custom detector needs a name")]
    EmptyName,
    /// The pattern source is longer than [`MAX_CUSTOM_PATTERN_LEN`].
    #[error(
        "custom detector {name:?}: pattern is {len} bytes, the limit is {MAX_CUSTOM_PATTERN_LEN}"
    )]
    PatternTooLong {
        /// Detector name.
        name: String,
        /// Pattern length in bytes.
        len: usize,
    },
    /// The pattern does not compile or compiles too large.
    #[error("custom detector {name:?}: invalid pattern: {reason}")]
    InvalidPattern {
        /// Detector name.
        name: String,
        /// What the regex compiler said.
        reason: String,
    },
    /// The pattern matches the empty string, which would mask nothing and hide mistakes.
    #[error("custom detector {name:?}: pattern matches the empty string")]
    MatchesEmpty {
        /// Detector name.
        name: String,
    },
}

/// A named, user-supplied regex, compiled once with a size limit.
#[derive(Debug, Clone)]
pub struct CustomDetector {
    name: String,
    regex: regex::Regex,
}

impl CustomDetector {
    /// Compiles `pattern`; rejects empty names, over-long or over-large patterns, and
    /// patterns that match the empty string.
    pub fn new(name: impl Into<String>, pattern: &str) -> Result<Self, DetectError> {
        let name = name.into();
        if name.is_empty() {
            return Err(DetectError::EmptyName);
        }
        if pattern.len() > MAX_CUSTOM_PATTERN_LEN {
            return Err(DetectError::PatternTooLong {
                name,
                len: pattern.len(),
            });
        }
        let regex = regex::RegexBuilder::new(pattern)
            .size_limit(CUSTOM_SIZE_LIMIT)
            .dfa_size_limit(CUSTOM_SIZE_LIMIT)
            .build()
            .map_err(|e| DetectError::InvalidPattern {
                name: name.clone(),
                reason: e.to_string(),
            })?;
        if regex.is_match("") {
            return Err(DetectError::MatchesEmpty { name });
        }
        Ok(Self { name, regex })
    }

    /// The detector's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// What kind of sensitive value to look for.
#[derive(Debug, Clone)]
pub enum Detector {
    /// `local@domain.tld`, ASCII only.
    Email,
    /// 13–19 digits, optionally grouped by single spaces or dashes, with a known IIN prefix
    /// and a valid Luhn check digit.
    PaymentCard,
    /// `AAA-GG-SSSS`, excluding areas 000, 666 and 900–999, group 00 and serial 0000.
    UsSsn,
    /// E.164 (`+` and 8–15 digits, optional separators) and US `(555) 123-4567` shapes.
    Phone,
    /// Country code, two check digits and up to 30 alphanumerics (spaces allowed between
    /// groups) whose mod-97 check holds.
    Iban,
    /// Dotted quad with every octet at most 255.
    Ipv4,
    /// Any token that `std::net::Ipv6Addr` parses, at least six characters long.
    Ipv6,
    /// Three base64url segments whose header decodes to a JSON object with `"alg"`.
    Jwt,
    /// AWS, GitHub, Slack, Stripe, Google and OpenAI key shapes, and PEM private keys.
    ApiKey,
    /// A named user pattern.
    Custom(CustomDetector),
}

/// Cheap facts about a text, gathered in one pass, that let detectors be skipped without
/// running a regex.
#[derive(Debug, Clone, Copy, Default)]
pub struct TextHints {
    digits: usize,
    colons: usize,
    dots: usize,
    at: bool,
    dash: bool,
    upper: bool,
}

impl TextHints {
    /// Gathers the hints for `text`.
    pub fn of(text: &str) -> Self {
        let mut h = Self::default();
        for &b in text.as_bytes() {
            match b {
                b'0'..=b'9' => h.digits += 1,
                b':' => h.colons += 1,
                b'.' => h.dots += 1,
                b'@' => h.at = true,
                b'-' => h.dash = true,
                b'A'..=b'Z' => h.upper = true,
                _ => {}
            }
        }
        h
    }
}

impl Detector {
    /// A stable name for the detector, used in reports.
    pub fn name(&self) -> &str {
        match self {
            Self::Email => "email",
            Self::PaymentCard => "payment_card",
            Self::UsSsn => "us_ssn",
            Self::Phone => "phone",
            Self::Iban => "iban",
            Self::Ipv4 => "ipv4",
            Self::Ipv6 => "ipv6",
            Self::Jwt => "jwt",
            Self::ApiKey => "api_key",
            Self::Custom(c) => c.name(),
        }
    }

    /// False when the text certainly holds no match; true means "run the detector".
    pub fn could_match(&self, h: &TextHints) -> bool {
        match self {
            Self::Email => h.at && h.dots > 0,
            Self::PaymentCard => h.digits >= 13,
            Self::UsSsn => h.digits >= 9 && h.dash,
            Self::Phone => h.digits >= 8,
            Self::Iban => h.digits >= 2 && h.upper,
            Self::Ipv4 => h.digits >= 4 && h.dots >= 3,
            Self::Ipv6 => h.colons >= 2,
            Self::Jwt => h.dots >= 2,
            // The regex's own literal prefilter (memchr/Teddy on the key prefixes) is the
            // cheap check here.
            Self::ApiKey | Self::Custom(_) => true,
        }
    }

    /// Every match in `text`, left to right, non-overlapping.
    pub fn find(&self, text: &str) -> Vec<Range<usize>> {
        let mut out = Vec::new();
        self.for_each_match(text, |r| out.push(r));
        out
    }

    /// Calls `f` for every match in `text`, left to right, without allocating unless a
    /// candidate needs checking (card groups, JWT headers).
    pub fn for_each_match(&self, text: &str, mut f: impl FnMut(Range<usize>)) {
        let b = text.as_bytes();
        match self {
            Self::Email => {
                for m in email_re().find_iter(b) {
                    f(m.range());
                }
            }
            Self::PaymentCard => find_cards(b, f),
            Self::UsSsn => {
                for m in ssn_re().find_iter(b) {
                    if !digit_at(b, m.start().wrapping_sub(1))
                        && !digit_at(b, m.end())
                        && valid_ssn(m.as_bytes())
                    {
                        f(m.range());
                    }
                }
            }
            Self::Phone => {
                for m in phone_re().find_iter(b) {
                    let before = m.start().checked_sub(1).map(|i| b[i]);
                    if !matches!(before, Some(b'0'..=b'9' | b'+')) && !digit_at(b, m.end()) {
                        f(m.range());
                    }
                }
            }
            Self::Iban => {
                for m in iban_re().find_iter(b) {
                    if word_at(b, m.start().wrapping_sub(1)) {
                        continue;
                    }
                    if let Some(end) = longest_valid_iban(b, m.start(), m.end()) {
                        f(m.start()..end);
                    }
                }
            }
            Self::Ipv4 => {
                for m in ipv4_re().find_iter(b) {
                    let before = m.start().checked_sub(1).map(|i| b[i]);
                    let dotted_on = b.get(m.end()) == Some(&b'.') && digit_at(b, m.end() + 1);
                    if !matches!(before, Some(b'0'..=b'9' | b'.'))
                        && !digit_at(b, m.end())
                        && !dotted_on
                        && valid_ipv4(m.as_bytes())
                    {
                        f(m.range());
                    }
                }
            }
            Self::Ipv6 => find_ipv6(b, f),
            Self::Jwt => {
                for m in jwt_re().find_iter(b) {
                    if !b64url_at(b, m.start().wrapping_sub(1)) && jwt_header_ok(m.as_bytes()) {
                        f(m.range());
                    }
                }
            }
            Self::ApiKey => {
                for m in api_key_re().find_iter(b) {
                    let pem = m.as_bytes().starts_with(b"-----");
                    if pem || (!word_at(b, m.start().wrapping_sub(1)) && !word_at(b, m.end())) {
                        f(m.range());
                    }
                }
            }
            Self::Custom(c) => {
                for m in c.regex.find_iter(text) {
                    if !m.is_empty() {
                        f(m.range());
                    }
                }
            }
        }
    }
}

// --- regexes, compiled once -------------------------------------------------------------

fn compile(cell: &'static OnceLock<BytesRegex>, pattern: &str) -> &'static BytesRegex {
    // The patterns are constants covered by tests, so failing to compile is a build bug.
    cell.get_or_init(|| BytesRegex::new(pattern).expect("built-in pattern compiles"))
}

fn email_re() -> &'static BytesRegex {
    static RE: OnceLock<BytesRegex> = OnceLock::new();
    compile(
        &RE,
        r"(?-u)[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,63}",
    )
}

fn ssn_re() -> &'static BytesRegex {
    static RE: OnceLock<BytesRegex> = OnceLock::new();
    compile(&RE, r"(?-u)[0-9]{3}-[0-9]{2}-[0-9]{4}")
}

fn phone_re() -> &'static BytesRegex {
    static RE: OnceLock<BytesRegex> = OnceLock::new();
    // Every alternative needs a '+' or separators in fixed places, so plain integers are
    // never phone-shaped.
    compile(
        &RE,
        r"(?-u)\+[1-9](?:[ .\-]?[0-9]){7,14}|(?:\+?1[ .\-]?)?(?:\([0-9]{3}\)[ .\-]?|[0-9]{3}[ .\-])[0-9]{3}[ .\-][0-9]{4}",
    )
}

fn iban_re() -> &'static BytesRegex {
    static RE: OnceLock<BytesRegex> = OnceLock::new();
    compile(&RE, r"(?-u)[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,30}")
}

fn ipv4_re() -> &'static BytesRegex {
    static RE: OnceLock<BytesRegex> = OnceLock::new();
    compile(&RE, r"(?-u)[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}")
}

fn jwt_re() -> &'static BytesRegex {
    static RE: OnceLock<BytesRegex> = OnceLock::new();
    // A JSON header `{"` always base64url-encodes to "eyJ".
    compile(
        &RE,
        r"(?-u)eyJ[A-Za-z0-9_\-]*\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*",
    )
}

fn api_key_re() -> &'static BytesRegex {
    static RE: OnceLock<BytesRegex> = OnceLock::new();
    // A PEM block without its END line is masked to the end of the text: failing closed
    // beats leaking the key body.
    compile(
        &RE,
        concat!(
            r"(?-u)(?:AKIA|ASIA)[0-9A-Z]{16}",
            r"|gh[pousr]_[A-Za-z0-9]{36,}",
            r"|github_pat_[A-Za-z0-9_]{22,}",
            r"|xox[abprs]-[A-Za-z0-9\-]{10,}",
            r"|[sr]k_live_[A-Za-z0-9]{16,}",
            r"|AIza[0-9A-Za-z_\-]{35}",
            r"|sk-[A-Za-z0-9_\-]{20,}",
            r"|-----BEGIN[A-Z0-9 ]*PRIVATE KEY-----(?s:.*?)(?:-----END[A-Z0-9 ]*PRIVATE KEY-----|\z)",
        ),
    )
}

// --- byte helpers -------------------------------------------------------------------------

/// True when `i` is in bounds and `b[i]` is an ASCII digit (an out-of-range `i`, including
/// `usize::MAX` from `wrapping_sub`, is false).
fn digit_at(b: &[u8], i: usize) -> bool {
    b.get(i).is_some_and(u8::is_ascii_digit)
}

fn word_at(b: &[u8], i: usize) -> bool {
    b.get(i)
        .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

fn b64url_at(b: &[u8], i: usize) -> bool {
    b.get(i)
        .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'-')
}

// --- payment cards --------------------------------------------------------------------------

/// Scans runs of digits joined by single spaces or dashes. A run without separators must be
/// a card as a whole (so a long account number is never cut into a "card"); in a grouped run
/// any whole-group sub-span of 13–19 digits may be one, longest first.
fn find_cards(b: &[u8], mut f: impl FnMut(Range<usize>)) {
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        let mut digits = 0usize;
        let mut end = i;
        while end < b.len() {
            if b[end].is_ascii_digit() {
                digits += 1;
                end += 1;
            } else if matches!(b[end], b' ' | b'-') && digit_at(b, end + 1) {
                end += 1;
            } else {
                break;
            }
        }
        if digits >= 13 {
            check_card_run(b, start, end, &mut f);
        }
        i = end;
    }
}

fn check_card_run(b: &[u8], start: usize, end: usize, f: &mut impl FnMut(Range<usize>)) {
    // Digit groups as byte ranges; only built for runs long enough to hold a card.
    let mut groups: Vec<(usize, usize)> = Vec::new();
    let mut g = start;
    for (i, c) in b[start..end].iter().enumerate() {
        if !c.is_ascii_digit() {
            groups.push((g, start + i));
            g = start + i + 1;
        }
    }
    groups.push((g, end));
    let mut s = 0;
    while s < groups.len() {
        // Longest first: a later (longer) valid span replaces an earlier one.
        let mut found = None;
        let mut total = 0;
        for (e, grp) in groups.iter().enumerate().skip(s) {
            total += grp.1 - grp.0;
            if total > 19 {
                break;
            }
            if total >= 13 && is_card(&b[groups[s].0..grp.1]) {
                found = Some(e);
            }
        }
        match found {
            Some(e) => {
                f(groups[s].0..groups[e].1);
                s = e + 1;
            }
            None => s += 1,
        }
    }
}

fn is_card(span: &[u8]) -> bool {
    let digits = || {
        span.iter()
            .filter(|c| c.is_ascii_digit())
            .map(|c| u32::from(c - b'0'))
    };
    let mut lead = 0u32;
    for d in digits().take(4) {
        lead = lead * 10 + d;
    }
    plausible_iin(lead) && luhn(digits().collect::<ArrayDigits>().as_slice())
}

/// Up to 19 digits on the stack, so the Luhn check does not allocate.
struct ArrayDigits {
    buf: [u8; 19],
    len: usize,
}

impl ArrayDigits {
    fn as_slice(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl FromIterator<u32> for ArrayDigits {
    fn from_iter<T: IntoIterator<Item = u32>>(iter: T) -> Self {
        let mut a = ArrayDigits {
            buf: [0; 19],
            len: 0,
        };
        for d in iter.into_iter().take(19) {
            a.buf[a.len] = d as u8;
            a.len += 1;
        }
        a
    }
}

/// Known issuer ranges by the first four digits: Visa 4, Mastercard 51–55 and 2221–2720,
/// Mir 2200–2204, Amex 34/37, Diners 30/36/38/39, JCB 35, Discover/UnionPay/Maestro 5 and 6.
fn plausible_iin(lead4: u32) -> bool {
    match lead4 / 1000 {
        4..=6 => true,
        3 => matches!(lead4 / 100, 30 | 34..=39),
        2 => (2200..=2204).contains(&lead4) || (2221..=2720).contains(&lead4),
        _ => false,
    }
}

fn luhn(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, &d) in digits.iter().rev().enumerate() {
        let mut d = u32::from(d);
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    !digits.is_empty() && sum.is_multiple_of(10)
}

// --- SSN, IPv4, IPv6 --------------------------------------------------------------------

fn valid_ssn(m: &[u8]) -> bool {
    let area = &m[0..3];
    let group = &m[4..6];
    let serial = &m[7..11];
    area != b"000" && area != b"666" && area[0] != b'9' && group != b"00" && serial != b"0000"
}

fn valid_ipv4(m: &[u8]) -> bool {
    m.split(|&c| c == b'.').all(|oct| {
        oct.iter()
            .fold(0u32, |acc, &c| acc * 10 + u32::from(c - b'0'))
            <= 255
    })
}

fn find_ipv6(b: &[u8], mut f: impl FnMut(Range<usize>)) {
    let is_v6 = |c: u8| c.is_ascii_hexdigit() || c == b':' || c == b'.';
    let mut i = 0;
    while i < b.len() {
        if !is_v6(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        let mut colons = 0;
        while i < b.len() && is_v6(b[i]) {
            colons += usize::from(b[i] == b':');
            i += 1;
        }
        let mut end = i;
        // A sentence may end right after an address.
        while end > start && b[end - 1] == b'.' {
            end -= 1;
        }
        if colons < 2 || end - start < 6 || word_at(b, start.wrapping_sub(1)) || word_at(b, i) {
            continue;
        }
        let parsed = std::str::from_utf8(&b[start..end])
            .ok()
            .and_then(|s| s.parse::<std::net::Ipv6Addr>().ok());
        if parsed.is_some() {
            f(start..end);
        }
    }
}

// --- IBAN -----------------------------------------------------------------------------------

/// The longest prefix of the candidate, cut at a space, that passes mod-97; the regex is
/// greedy and may have swallowed a following word.
fn longest_valid_iban(b: &[u8], start: usize, mut end: usize) -> Option<usize> {
    loop {
        if !word_at(b, end) && iban_checksum_ok(&b[start..end]) {
            return Some(end);
        }
        let cut = b[start..end].iter().rposition(|&c| c == b' ')?;
        end = start + cut;
    }
}

fn iban_checksum_ok(s: &[u8]) -> bool {
    let len = s.iter().filter(|&&c| c != b' ').count();
    if !(15..=34).contains(&len) {
        return false;
    }
    let compact = s.iter().copied().filter(|&c| c != b' ');
    // Move the country code and check digits to the end, letters count as 10..=35.
    let rotated = compact.clone().skip(4).chain(compact.take(4));
    let mut rem = 0u32;
    for c in rotated {
        rem = match c {
            b'0'..=b'9' => (rem * 10 + u32::from(c - b'0')) % 97,
            b'A'..=b'Z' => (rem * 100 + u32::from(c - b'A') + 10) % 97,
            _ => return false,
        };
    }
    rem == 1
}

// --- JWT --------------------------------------------------------------------------------

fn jwt_header_ok(token: &[u8]) -> bool {
    let header = token.split(|&c| c == b'.').next().unwrap_or_default();
    let Ok(raw) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header) else {
        return false;
    };
    serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&raw)
        .is_ok_and(|m| m.contains_key("alg"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hits<'t>(d: &Detector, text: &'t str) -> Vec<&'t str> {
        d.find(text).into_iter().map(|r| &text[r]).collect()
    }

    #[test]
    fn email_found_in_text() {
        let d = Detector::Email;
        assert_eq!(
            hits(&d, "mail alice.smith+x@mail.example.co.uk now"),
            ["alice.smith+x@mail.example.co.uk"]
        );
        assert_eq!(hits(&d, "a@b.io,c@d.org"), ["a@b.io", "c@d.org"]);
    }

    #[test]
    fn email_near_misses_are_left_alone() {
        let d = Detector::Email;
        assert!(hits(&d, "user@localhost and @handle and a@b.c").is_empty());
        assert!(hits(&d, "no at sign.example.com").is_empty());
    }

    #[test]
    fn card_luhn_valid_numbers_found_with_separators() {
        let d = Detector::PaymentCard;
        assert_eq!(hits(&d, "card 4111111111111111."), ["4111111111111111"]);
        assert_eq!(hits(&d, "4111 1111 1111 1111"), ["4111 1111 1111 1111"]);
        assert_eq!(hits(&d, "5500-0000-0000-0004"), ["5500-0000-0000-0004"]);
        assert_eq!(hits(&d, "amex 378282246310005"), ["378282246310005"]);
        assert_eq!(hits(&d, "x4111111111111111y"), ["4111111111111111"]);
    }

    #[test]
    fn card_non_luhn_and_long_numbers_are_left_alone() {
        let d = Detector::PaymentCard;
        assert!(hits(&d, "4111111111111112").is_empty());
        assert!(hits(&d, "order 1234567812345678").is_empty());
        // Luhn holds but the IIN is not a card issuer's.
        assert!(hits(&d, "0000000000000000").is_empty());
        // A 20-digit number is not cut into a card.
        assert!(hits(&d, "94111111111111111110").is_empty());
        assert!(hits(&d, "4111  1111 1111 1111").is_empty());
    }

    #[test]
    fn card_found_inside_longer_grouped_run() {
        let d = Detector::PaymentCard;
        assert_eq!(
            hits(&d, "ref 12 4111 1111 1111 1111 done"),
            ["4111 1111 1111 1111"]
        );
    }

    #[test]
    fn ssn_valid_and_invalid_ranges() {
        let d = Detector::UsSsn;
        assert_eq!(hits(&d, "ssn: 123-45-6789;"), ["123-45-6789"]);
        for bad in [
            "000-12-3456",
            "666-12-3456",
            "900-12-3456",
            "123-00-4567",
            "123-45-0000",
            "1123-45-6789",
            "123-45-67890",
        ] {
            assert!(hits(&d, bad).is_empty(), "{bad}");
        }
    }

    #[test]
    fn phone_shapes_found_and_plain_integers_left_alone() {
        let d = Detector::Phone;
        assert_eq!(hits(&d, "call +14155552671 now"), ["+14155552671"]);
        assert_eq!(hits(&d, "+44 20 7946 0958"), ["+44 20 7946 0958"]);
        assert_eq!(hits(&d, "(415) 555-2671"), ["(415) 555-2671"]);
        assert_eq!(hits(&d, "415.555.2671"), ["415.555.2671"]);
        assert_eq!(hits(&d, "1-415-555-2671"), ["1-415-555-2671"]);
        assert!(hits(&d, "id 4155552671 and 123456789012").is_empty());
        assert!(hits(&d, "+1234567890123456789").is_empty());
        assert!(hits(&d, "+123").is_empty());
    }

    #[test]
    fn iban_checksum_decides() {
        let d = Detector::Iban;
        assert_eq!(
            hits(&d, "pay DE89 3704 0044 0532 0130 00 today"),
            ["DE89 3704 0044 0532 0130 00"]
        );
        assert_eq!(
            hits(&d, "GB82WEST12345698765432"),
            ["GB82WEST12345698765432"]
        );
        assert!(hits(&d, "GB83WEST12345698765432").is_empty());
        // The greedy candidate swallows the next word; the checksum finds the real end.
        assert_eq!(
            hits(&d, "DE89 3704 0044 0532 0130 00 FOO1"),
            ["DE89 3704 0044 0532 0130 00"]
        );
        assert!(hits(&d, "DE89370400440532013000X").is_empty());
        assert!(hits(&d, "DE89 3704 0044 0532 0130 01").is_empty());
        assert!(hits(&d, "XGB82WEST12345698765432").is_empty());
    }

    #[test]
    fn ipv4_octets_checked() {
        let d = Detector::Ipv4;
        assert_eq!(hits(&d, "from 192.168.1.20:5432"), ["192.168.1.20"]);
        assert_eq!(hits(&d, "255.255.255.255"), ["255.255.255.255"]);
        for bad in [
            "10.0.0.256",
            "1.2.3.4.5",
            "300.1.1.1",
            "1.2.3",
            "10.0.0.2555",
        ] {
            assert!(hits(&d, bad).is_empty(), "{bad}");
        }
    }

    #[test]
    fn ipv6_parsed_by_std() {
        let d = Detector::Ipv6;
        assert_eq!(hits(&d, "peer 2001:db8::1."), ["2001:db8::1"]);
        assert_eq!(
            hits(&d, "[fe80::1ff:fe23:4567:890a]:80"),
            ["fe80::1ff:fe23:4567:890a"]
        );
        assert_eq!(hits(&d, "::ffff:192.0.2.128"), ["::ffff:192.0.2.128"]);
        for bad in [
            "12:30:45",
            "std::fs",
            "::1",
            "00:1a:2b:3c:4d:5e",
            "gfe80::1",
        ] {
            assert!(hits(&d, bad).is_empty(), "{bad}");
        }
    }

    const JWT: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";

    #[test]
    fn jwt_needs_alg_header() {
        let d = Detector::Jwt;
        let text = format!("Bearer {JWT} end");
        assert_eq!(hits(&d, &text), [JWT]);
        // {"typ":"JWT"} has no alg.
        assert!(hits(&d, "eyJ0eXAiOiJKV1QifQ.eyJzdWIiOiIxIn0.sig").is_empty());
        // Not base64 JSON at all.
        assert!(hits(&d, "eyJnotjson.abc.def").is_empty());
        assert!(hits(&d, "xeyJhbGciOiJIUzI1NiJ9.e30.sig").is_empty());
    }

    #[test]
    fn api_key_shapes() {
        let d = Detector::ApiKey;
        let gh = format!("ghp_{}", "a1B2".repeat(9));
        let google = format!("AIza{}", "x".repeat(35));
        for key in [
            "AKIAIOSFODNN7EXAMPLE",
            gh.as_str(),
            "github_pat_11ABCDEFG0123456789abcdef",
            "xoxb-1234567890-abcdef",
            "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
            "rk_live_4eC39HqLyjWDarjtT1zdp7dc",
            google.as_str(),
            "sk-proj-abcdefghijklmnopqrstuvwxyz",
        ] {
            let text = format!("key={key} ");
            assert_eq!(hits(&d, &text), [key], "{key}");
        }
        assert!(hits(&d, "task-abcdefghijklmnopqrstuvwxyz AKIAshort ghp_short").is_empty());
        assert!(hits(&d, "AKIAIOSFODNN7EXAMPLEXX").is_empty());
    }

    #[test]
    fn pem_private_key_masked_whole_or_to_end() {
        let d = Detector::ApiKey;
        let pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIB\nabc\n-----END RSA PRIVATE KEY-----";
        let text = format!("x {pem} y");
        assert_eq!(hits(&d, &text), [pem]);
        let cut = "a -----BEGIN PRIVATE KEY-----\nMIIBsecret";
        assert_eq!(hits(&d, cut), [&cut[2..]]);
    }

    #[test]
    fn custom_detector_validated() {
        let c = CustomDetector::new("emp_id", r"EMP-\d{6}").unwrap();
        let d = Detector::Custom(c);
        assert_eq!(d.name(), "emp_id");
        assert_eq!(
            hits(&d, "EMP-123456 é EMP-654321"),
            ["EMP-123456", "EMP-654321"]
        );
        assert!(matches!(
            CustomDetector::new("", "x"),
            Err(DetectError::EmptyName)
        ));
        assert!(matches!(
            CustomDetector::new("x", "("),
            Err(DetectError::InvalidPattern { .. })
        ));
        assert!(matches!(
            CustomDetector::new("x", "a*"),
            Err(DetectError::MatchesEmpty { .. })
        ));
        let long = "a".repeat(MAX_CUSTOM_PATTERN_LEN + 1);
        assert!(matches!(
            CustomDetector::new("x", &long),
            Err(DetectError::PatternTooLong { .. })
        ));
        // Small source, huge compiled program.
        assert!(matches!(
            CustomDetector::new("x", r"\w{1000}{1000}"),
            Err(DetectError::InvalidPattern { .. })
        ));
    }

    #[test]
    fn hostile_inputs_do_not_panic_or_match() {
        let huge_digits = "9".repeat(1 << 20);
        let nul = "\0".repeat(1000) + "4111111111111111\0";
        let unicode = "ünïcödé 🎉 ١٢٣٤٥٦٧٨٩٠١٢٣٤٥٦ ４１１１１１１１１１１１１１１１";
        let groups = "1 ".repeat(100_000);
        let all = [
            Detector::Email,
            Detector::PaymentCard,
            Detector::UsSsn,
            Detector::Phone,
            Detector::Iban,
            Detector::Ipv4,
            Detector::Ipv6,
            Detector::Jwt,
            Detector::ApiKey,
        ];
        for d in &all {
            assert!(d.find(&huge_digits).is_empty(), "{}", d.name());
            assert!(d.find(unicode).is_empty(), "{}", d.name());
        }
        assert_eq!(hits(&Detector::PaymentCard, &nul), ["4111111111111111"]);
        assert!(Detector::PaymentCard.find(&groups).is_empty());
        let colons = ":".repeat(1 << 16);
        assert!(Detector::Ipv6.find(&colons).is_empty());
    }

    #[test]
    fn hints_skip_detectors() {
        let h = TextHints::of("plain words only");
        assert!(!Detector::Email.could_match(&h));
        assert!(!Detector::PaymentCard.could_match(&h));
        assert!(!Detector::Ipv6.could_match(&h));
        let h = TextHints::of("a@b.io 4111111111111111");
        assert!(Detector::Email.could_match(&h));
        assert!(Detector::PaymentCard.could_match(&h));
    }
}
