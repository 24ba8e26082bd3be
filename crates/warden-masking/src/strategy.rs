//! Masking strategies: how one sensitive value is replaced, and the per-connection key that
//! keyed strategies (hash, format-preserving) depend on.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Placeholder used by [`Strategy::Redact`] when none is configured.
pub const DEFAULT_PLACEHOLDER: &str = "****";

/// Shortest key accepted, in bytes: a short key would make tokens guessable offline.
pub const MIN_KEY_LEN: usize = 16;

/// Domain-separation labels so a hash token never reveals the format-preserving stream.
const HASH_LABEL: &[u8] = b"warden-mask-hash\0";
const FPE_LABEL: &[u8] = b"warden-mask-fpe\0";

/// Why a [`MaskKey`] was refused.
#[derive(Debug, thiserror::Error)]
pub enum MaskKeyError {
    /// The key is shorter than [`MIN_KEY_LEN`].
    #[error("masking key must be at least {MIN_KEY_LEN} bytes, got {0}")]
    TooShort(usize),
}

/// The per-connection secret for keyed strategies; zeroized on drop, never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct MaskKey {
    bytes: Vec<u8>,
    /// HMAC states already keyed and fed their label: each value then costs two SHA-256
    /// compressions instead of four (masking hashes every value of a masked column). They
    /// hold key-derived state that cannot be zeroized; the key itself is.
    #[zeroize(skip)]
    fpe: Hmac<Sha256>,
    /// SipHash keys of [`Strategy::Hash`].
    sip: [u64; 2],
}

impl MaskKey {
    /// Wraps `bytes` (at least [`MIN_KEY_LEN`] of them). The caller should zeroize its own
    /// copy.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<Self, MaskKeyError> {
        let bytes = bytes.into();
        if bytes.len() < MIN_KEY_LEN {
            return Err(MaskKeyError::TooShort(bytes.len()));
        }
        let keyed = |label: &[u8]| {
            // HMAC accepts keys of any length, so this cannot fail.
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&bytes).expect("any key length");
            mac.update(label);
            mac
        };
        let mut derived: [u8; 32] = keyed(HASH_LABEL).finalize().into_bytes().into();
        let sip = [
            u64::from_le_bytes(derived[..8].try_into().expect("8 bytes")),
            u64::from_le_bytes(derived[8..16].try_into().expect("8 bytes")),
        ];
        derived.zeroize();
        Ok(Self {
            fpe: keyed(FPE_LABEL),
            sip,
            bytes,
        })
    }

    /// HMAC-SHA256 of the format-preserving stream's seed.
    fn fpe_mac(&self, value: &[u8]) -> [u8; 32] {
        let mut mac = self.fpe.clone();
        mac.update(value);
        mac.finalize().into_bytes().into()
    }

    /// The keyed 64-bit token of `value`.
    fn token(&self, value: &[u8]) -> u64 {
        use std::hash::Hasher;
        let mut h = siphasher::sip::SipHasher24::new_with_keys(self.sip[0], self.sip[1]);
        h.write(value);
        h.finish()
    }
}

impl std::fmt::Debug for MaskKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MaskKey(***)")
    }
}

/// The result of masking one value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Masked {
    /// The replacement text.
    Text(String),
    /// The value becomes SQL/JSON NULL.
    Null,
}

/// How a sensitive value is replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Strategy {
    /// The whole value becomes the placeholder ([`DEFAULT_PLACEHOLDER`] if `None`).
    Redact {
        /// Replacement text.
        placeholder: Option<String>,
    },
    /// Every letter and digit but the last `keep_last` becomes `*`; other characters
    /// (separators such as `-`, ` `, `(`) are kept. At most half of the letters and digits
    /// are ever shown, so a short value is never revealed whole.
    Partial {
        /// How many trailing letters/digits to show.
        keep_last: usize,
    },
    /// Emails become `****@domain`; values without `@` are redacted whole.
    KeepDomain,
    /// `tok_` and 16 hex digits of SipHash-2-4(value) under a 128-bit key derived from the
    /// masking key with HMAC-SHA256: equal inputs give equal tokens under one key, so joins
    /// and counts still work; other keys give other tokens. SipHash is a keyed PRF with a
    /// 64-bit output, as long as the token, and costs a tenth of an HMAC per value (every
    /// value of a masked column is hashed).
    Hash,
    /// Same number of characters, digits stay digits, ASCII letters keep their case, other
    /// letters become ASCII lowercase, everything else is kept; derived from the keyed HMAC,
    /// so equal inputs map equal. This is NOT cryptographic format-preserving encryption:
    /// it is one-way (not reversible, even with the key), it leaks the value's length and
    /// layout, and a short value can map to itself by chance.
    FormatPreserving,
    /// The value becomes NULL.
    Null,
}

impl Strategy {
    /// Redaction with the default placeholder.
    pub fn redact() -> Self {
        Self::Redact { placeholder: None }
    }

    /// Masks `value`.
    pub fn apply(&self, value: &str, key: &MaskKey) -> Masked {
        let mut out = String::new();
        if self.apply_into(value, key, &mut out) {
            Masked::Text(out)
        } else {
            Masked::Null
        }
    }

    /// Like [`Strategy::apply_into`] for raw bytes, without checking they are UTF-8 when
    /// the strategy does not need it (redaction, keyed hash, NULL, partial over ASCII):
    /// `None` otherwise, and the caller must decode the value first. The proxy's hot path.
    pub fn apply_bytes_into(&self, value: &[u8], key: &MaskKey, out: &mut String) -> Option<bool> {
        match self {
            Self::Redact { placeholder } => {
                out.push_str(placeholder.as_deref().unwrap_or(DEFAULT_PLACEHOLDER));
                Some(true)
            }
            Self::Hash => {
                push_token(key.token(value), out);
                Some(true)
            }
            Self::Null => Some(false),
            // ASCII is UTF-8 already, and `partial` reads it byte by byte.
            Self::Partial { keep_last } if value.is_ascii() => {
                partial_ascii(value, *keep_last, out);
                Some(true)
            }
            _ => None,
        }
    }

    /// Appends the masked form of `value` to `out`; returns false (appending nothing) for
    /// [`Strategy::Null`]. Lets the scanner build one output string without a temporary per
    /// match.
    pub fn apply_into(&self, value: &str, key: &MaskKey, out: &mut String) -> bool {
        match self {
            Self::Redact { placeholder } => {
                out.push_str(placeholder.as_deref().unwrap_or(DEFAULT_PLACEHOLDER));
            }
            Self::Partial { keep_last } => partial(value, *keep_last, out),
            Self::KeepDomain => {
                out.push_str(DEFAULT_PLACEHOLDER);
                if let Some(at) = value.rfind('@') {
                    let domain = &value[at + 1..];
                    if !domain.is_empty() {
                        out.push('@');
                        out.push_str(domain);
                    }
                }
            }
            Self::Hash => {
                push_token(key.token(value.as_bytes()), out);
            }
            Self::FormatPreserving => format_preserving(value, key, out),
            Self::Null => return false,
        }
        true
    }
}

/// [`Strategy::Partial`] of an ASCII value (the caller checked), byte by byte: the same
/// result as the general path.
fn partial_ascii(value: &[u8], keep_last: usize, out: &mut String) {
    let maskable = value.iter().filter(|b| b.is_ascii_alphanumeric()).count();
    let hide = maskable - keep_last.min(maskable / 2);
    let mut seen = 0;
    out.reserve(value.len());
    for &b in value {
        if b.is_ascii_alphanumeric() && seen < hide {
            out.push('*');
            seen += 1;
        } else {
            out.push(char::from(b));
        }
    }
}

fn partial(value: &str, keep_last: usize, out: &mut String) {
    if value.is_ascii() {
        partial_ascii(value.as_bytes(), keep_last, out);
        return;
    }
    let maskable = value.chars().filter(|c| c.is_alphanumeric()).count();
    let shown = keep_last.min(maskable / 2);
    let hide = maskable - shown;
    let mut seen = 0;
    out.reserve(value.len());
    for c in value.chars() {
        if c.is_alphanumeric() {
            out.push(if seen < hide { '*' } else { c });
            seen += 1;
        } else {
            out.push(c);
        }
    }
}

/// `tok_` and the token in 16 lowercase hex digits, built on the stack.
fn push_token(token: u64, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut buf = *b"tok_0000000000000000";
    for (i, b) in token.to_be_bytes().iter().enumerate() {
        buf[4 + 2 * i] = HEX[usize::from(b >> 4)];
        buf[5 + 2 * i] = HEX[usize::from(b & 0x0f)];
    }
    // Always ASCII.
    out.push_str(std::str::from_utf8(&buf).unwrap_or("tok_"));
}

fn format_preserving(value: &str, key: &MaskKey, out: &mut String) {
    // One HMAC over the value seeds a SHA-256 counter stream, so long values cost linear
    // time rather than one HMAC over the whole value per 32 bytes of output.
    let seed = key.fpe_mac(value.as_bytes());
    let mut block = [0u8; 32];
    let mut counter = 0u64;
    let mut used = block.len();
    let mut next = || {
        if used == block.len() {
            let mut h = Sha256::new();
            h.update(seed);
            h.update(counter.to_be_bytes());
            block = h.finalize().into();
            counter += 1;
            used = 0;
        }
        used += 1;
        block[used - 1]
    };
    out.reserve(value.len());
    for c in value.chars() {
        let mapped = if c.is_ascii_digit() {
            char::from(b'0' + next() % 10)
        } else if c.is_ascii_uppercase() {
            char::from(b'A' + next() % 26)
        } else if c.is_alphabetic() {
            char::from(b'a' + next() % 26)
        } else {
            c
        };
        out.push(mapped);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> MaskKey {
        MaskKey::new([b; 32]).unwrap()
    }

    fn text(s: &Strategy, v: &str) -> String {
        match s.apply(v, &key(1)) {
            Masked::Text(t) => t,
            Masked::Null => panic!("unexpected NULL"),
        }
    }

    #[test]
    fn redact_default_and_configured() {
        assert_eq!(text(&Strategy::redact(), "secret"), "****");
        let s = Strategy::Redact {
            placeholder: Some("[hidden]".into()),
        };
        assert_eq!(text(&s, "secret"), "[hidden]");
        assert_eq!(text(&Strategy::redact(), ""), "****");
    }

    #[test]
    fn partial_keeps_last_and_separators() {
        let s = Strategy::Partial { keep_last: 4 };
        assert_eq!(text(&s, "4111-1111-1111-1234"), "****-****-****-1234");
        assert_eq!(text(&s, "123-45-6789"), "***-**-6789");
        assert_eq!(text(&s, "+1 (415) 555-2671"), "+* (***) ***-2671");
        assert_eq!(text(&s, "ab"), "*b");
    }

    #[test]
    fn partial_never_reveals_short_values_whole() {
        let s = Strategy::Partial { keep_last: 4 };
        assert_eq!(text(&s, "1234"), "**34");
        assert_eq!(text(&s, "7"), "*");
        let s = Strategy::Partial { keep_last: 0 };
        assert_eq!(text(&s, "héllo wörld"), "***** *****");
    }

    #[test]
    fn keep_domain() {
        assert_eq!(
            text(&Strategy::KeepDomain, "alice@example.com"),
            "****@example.com"
        );
        assert_eq!(text(&Strategy::KeepDomain, "a@b@c.org"), "****@c.org");
        assert_eq!(text(&Strategy::KeepDomain, "no-at-sign"), "****");
        assert_eq!(text(&Strategy::KeepDomain, "trailing@"), "****");
    }

    #[test]
    fn hash_is_deterministic_per_key() {
        let a = Strategy::Hash.apply("alice@example.com", &key(1));
        let b = Strategy::Hash.apply("alice@example.com", &key(1));
        let c = Strategy::Hash.apply("alice@example.com", &key(2));
        let d = Strategy::Hash.apply("bob@example.com", &key(1));
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, d);
        let Masked::Text(t) = a else { panic!() };
        assert_eq!(t.len(), 20);
        assert!(t.starts_with("tok_"));
        assert!(t[4..].bytes().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn hash_matches_reference_siphash() {
        // The key: HMAC-SHA256(masking key, label), first 16 bytes as two little-endian u64.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&[1u8; 32]).unwrap();
        mac.update(HASH_LABEL);
        let k = mac.finalize().into_bytes();
        let k0 = u64::from_le_bytes(k[..8].try_into().unwrap());
        let k1 = u64::from_le_bytes(k[8..16].try_into().unwrap());
        let mut h = siphasher::sip::SipHasher24::new_with_keys(k0, k1);
        std::hash::Hasher::write(&mut h, b"x");
        let expected = format!("tok_{:016x}", std::hash::Hasher::finish(&h));
        assert_eq!(text(&Strategy::Hash, "x"), expected);
        // Another key, another token.
        let other = MaskKey::new([2u8; 32]).unwrap();
        assert_ne!(Strategy::Hash.apply("x", &other), Masked::Text(expected));
    }

    #[test]
    fn format_preserving_keeps_shape() {
        let s = Strategy::FormatPreserving;
        let input = "AB-1234 cd/é€";
        let out = text(&s, input);
        assert_eq!(out.chars().count(), input.chars().count());
        for (i, o) in input.chars().zip(out.chars()) {
            if i.is_ascii_digit() {
                assert!(o.is_ascii_digit());
            } else if i.is_ascii_uppercase() {
                assert!(o.is_ascii_uppercase());
            } else if i.is_alphabetic() {
                assert!(o.is_ascii_lowercase());
            } else {
                assert_eq!(i, o);
            }
        }
        assert_eq!(out, text(&s, input));
        assert_ne!(
            s.apply("4111111111111111", &key(1)),
            s.apply("4111111111111111", &key(2))
        );
        assert_ne!(text(&s, "4111111111111111"), "4111111111111111");
    }

    #[test]
    fn format_preserving_long_value_uses_whole_stream() {
        let input = "0".repeat(10_000);
        let out = text(&Strategy::FormatPreserving, &input);
        assert_eq!(out.len(), input.len());
        // Blocks past the first must differ from the first, or the stream repeats.
        assert_ne!(&out[..32], &out[32..64]);
        assert_ne!(&out[..32], &out[9_000..9_032]);
    }

    #[test]
    fn null_strategy() {
        assert_eq!(Strategy::Null.apply("x", &key(1)), Masked::Null);
        let mut out = String::from("keep");
        assert!(!Strategy::Null.apply_into("x", &key(1), &mut out));
        assert_eq!(out, "keep");
    }

    #[test]
    fn key_rules() {
        assert!(matches!(
            MaskKey::new(vec![0u8; 15]),
            Err(MaskKeyError::TooShort(15))
        ));
        let k = key(9);
        assert_eq!(format!("{k:?}"), "MaskKey(***)");
        assert!(!format!("{k:?}").contains('9'));
    }

    #[test]
    fn hostile_values() {
        let k = key(3);
        let nul = "a\0b\0c";
        for s in [
            Strategy::redact(),
            Strategy::Partial { keep_last: 4 },
            Strategy::KeepDomain,
            Strategy::Hash,
            Strategy::FormatPreserving,
        ] {
            let Masked::Text(t) = s.apply(nul, &k) else {
                panic!()
            };
            assert!(!t.contains("a\0b"), "{s:?}");
            let Masked::Text(_) = s.apply(&"🎉".repeat(100_000), &k) else {
                panic!()
            };
        }
    }
}

#[cfg(test)]
mod bytes_tests {
    use super::*;

    #[test]
    fn apply_bytes_into_agrees_with_apply_into() {
        let key = MaskKey::new([3u8; 32]).unwrap();
        for s in [
            Strategy::redact(),
            Strategy::Hash,
            Strategy::Null,
            Strategy::Partial { keep_last: 4 },
            Strategy::Partial { keep_last: 0 },
        ] {
            for v in ["4111 1111 1111 1111", "ab", "", "a-b-c", "x@y.z", "1"] {
                let (mut a, mut b) = (String::new(), String::new());
                let kept = s.apply_bytes_into(v.as_bytes(), &key, &mut a);
                assert_eq!(kept, Some(s.apply_into(v, &key, &mut b)), "{s:?} {v:?}");
                assert_eq!(a, b, "{s:?} {v:?}");
            }
        }
        // Strategies that read the text, and non-ASCII partial, defer to the caller.
        let mut out = String::new();
        assert_eq!(
            Strategy::KeepDomain.apply_bytes_into(b"a@b", &key, &mut out),
            None
        );
        let partial = Strategy::Partial { keep_last: 2 };
        assert_eq!(
            partial.apply_bytes_into("é1234".as_bytes(), &key, &mut out),
            None
        );
        assert!(out.is_empty());
    }
}
