//! Verification keys: parsing a JWK Set (RFC 7517) into the keys Warden can use, and
//! choosing the key for a token's `kid` and algorithm.
//!
//! Keys are read one by one, so one key of an unsupported type does not hide the rest.
//! Symmetric (`oct`) keys, encryption keys (`use` other than `sig`) and keys whose `alg`
//! or curve disagree with their type are skipped.

use std::sync::Arc;

use base64::alphabet::URL_SAFE;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use jsonwebtoken::DecodingKey;
use serde::Deserialize;
use serde_json::Value;

use crate::jwt::{loggable, Alg, KeyKind};

/// Most keys read from one JWKS; IdPs publish a handful, so more is a broken document.
const MAX_KEYS: usize = 64;

/// RSA moduli shorter than this (2048 bits) are refused.
const MIN_RSA_MODULUS_BYTES: usize = 256;

/// JWK members are base64url; some publishers pad them, which RFC 7515 does not allow
/// but which is harmless, so padding is accepted here (not in tokens).
const JWK_B64: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A public key that verifies JWS signatures.
pub(crate) struct VerifyKey {
    kid: Option<String>,
    kind: KeyKind,
    /// The JWK's `alg`, when it pins one.
    alg: Option<Alg>,
    key: DecodingKey,
}

impl VerifyKey {
    /// An Ed25519 key from its 32 raw public-key bytes.
    pub(crate) fn ed25519(kid: String, public: &[u8]) -> VerifyKey {
        VerifyKey {
            kid: Some(kid),
            kind: KeyKind::Ed25519,
            alg: Some(Alg::EdDsa),
            key: DecodingKey::from_ed_der(public),
        }
    }

    /// True when this key may verify a signature made with `alg`: same key type and
    /// curve, and the key's own `alg`, if pinned, is the same.
    pub(crate) fn accepts(&self, alg: Alg) -> bool {
        self.kind == alg.key_kind() && self.alg.is_none_or(|pinned| pinned == alg)
    }

    pub(crate) fn decoding_key(&self) -> &DecodingKey {
        &self.key
    }
}

/// The result of looking up a key for a token.
pub(crate) enum Selection {
    /// The key to verify with.
    Found(Arc<VerifyKey>),
    /// No key has this `kid` (or, without a `kid`, no key fits the algorithm); a refetch
    /// of the JWKS may help.
    NotFound,
    /// Keys with this `kid` exist but none fits the algorithm; a refetch will not help.
    Mismatch,
    /// The token has no `kid` and several keys fit.
    Ambiguous,
}

/// The usable keys of one issuer.
#[derive(Default)]
pub(crate) struct KeySet {
    keys: Vec<Arc<VerifyKey>>,
}

#[derive(Deserialize)]
struct RawJwk {
    kty: String,
    #[serde(rename = "use")]
    use_: Option<String>,
    key_ops: Option<Vec<String>>,
    alg: Option<String>,
    kid: Option<String>,
    crv: Option<String>,
    n: Option<String>,
    e: Option<String>,
    x: Option<String>,
    y: Option<String>,
}

fn decode_member(value: Option<&String>, name: &str) -> Result<Vec<u8>, String> {
    let value = value.ok_or_else(|| format!("missing {name:?}"))?;
    JWK_B64
        .decode(value)
        .map_err(|_| format!("{name:?} is not base64url"))
}

impl RawJwk {
    fn into_key(self) -> Result<VerifyKey, String> {
        if let Some(use_) = &self.use_ {
            if use_ != "sig" {
                return Err(format!("use is {:?}, not \"sig\"", loggable(use_, 16)));
            }
        }
        if let Some(ops) = &self.key_ops {
            if !ops.iter().any(|op| op == "verify") {
                return Err("key_ops does not include \"verify\"".to_owned());
            }
        }
        let (kind, key) = match (self.kty.as_str(), self.crv.as_deref()) {
            ("RSA", _) => {
                let n = decode_member(self.n.as_ref(), "n")?;
                let e = decode_member(self.e.as_ref(), "e")?;
                let significant = n.iter().skip_while(|b| **b == 0).count();
                if significant < MIN_RSA_MODULUS_BYTES {
                    return Err(format!(
                        "RSA modulus of {} bits is too short",
                        significant * 8
                    ));
                }
                (KeyKind::Rsa, DecodingKey::from_rsa_raw_components(&n, &e))
            }
            ("EC", Some(crv @ ("P-256" | "P-384"))) => {
                let (kind, len) = if crv == "P-256" {
                    (KeyKind::EcP256, 32)
                } else {
                    (KeyKind::EcP384, 48)
                };
                let x = decode_member(self.x.as_ref(), "x")?;
                let y = decode_member(self.y.as_ref(), "y")?;
                if x.len() != len || y.len() != len {
                    return Err(format!("{crv} coordinates have the wrong length"));
                }
                // The uncompressed SEC1 point, as aws-lc-rs expects it.
                let mut point = Vec::with_capacity(1 + 2 * len);
                point.push(0x04);
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                (kind, DecodingKey::from_ec_der(&point))
            }
            ("OKP", Some("Ed25519")) => {
                let x = decode_member(self.x.as_ref(), "x")?;
                if x.len() != 32 {
                    return Err("Ed25519 key is not 32 bytes".to_owned());
                }
                (KeyKind::Ed25519, DecodingKey::from_ed_der(&x))
            }
            (kty, crv) => {
                return Err(format!(
                    "unsupported key type {:?} (curve {:?})",
                    loggable(kty, 16),
                    crv.map(|c| loggable(c, 16))
                ))
            }
        };
        let alg = match &self.alg {
            None => None,
            Some(name) => match Alg::from_name(name) {
                Some(alg) if alg.key_kind() == kind => Some(alg),
                _ => {
                    return Err(format!(
                        "alg {:?} does not fit the key type",
                        loggable(name, 16)
                    ))
                }
            },
        };
        Ok(VerifyKey {
            kid: self.kid,
            kind,
            alg,
            key,
        })
    }
}

impl KeySet {
    /// A set holding exactly `key`.
    pub(crate) fn single(key: VerifyKey) -> KeySet {
        KeySet {
            keys: vec![Arc::new(key)],
        }
    }

    /// Parses a JWKS document. Fails only when the document is not a JWKS at all;
    /// individual unusable keys are skipped (and logged at debug level).
    pub(crate) fn from_jwks(document: &[u8], issuer: &str) -> Result<KeySet, String> {
        let doc: Value =
            serde_json::from_slice(document).map_err(|e| format!("JWKS is not JSON: {e}"))?;
        let entries = doc
            .get("keys")
            .and_then(Value::as_array)
            .ok_or("JWKS has no \"keys\" array")?;
        let mut keys = Vec::new();
        for entry in entries.iter().take(MAX_KEYS) {
            let parsed = RawJwk::deserialize(entry)
                .map_err(|e| format!("not a JWK: {e}"))
                .and_then(RawJwk::into_key);
            match parsed {
                Ok(key) => keys.push(Arc::new(key)),
                Err(why) => {
                    let kid = entry.get("kid").and_then(Value::as_str).unwrap_or("");
                    tracing::debug!(issuer, kid = %loggable(kid, 64), why, "skipping JWK");
                }
            }
        }
        if entries.len() > MAX_KEYS {
            tracing::warn!(
                issuer,
                published = entries.len(),
                "JWKS has too many keys; only the first {MAX_KEYS} are used"
            );
        }
        Ok(KeySet { keys })
    }

    /// Number of usable keys.
    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    /// The key for a token with this `kid` and algorithm.
    pub(crate) fn select(&self, kid: Option<&str>, alg: Alg) -> Selection {
        match kid {
            Some(kid) => {
                let mut named = self
                    .keys
                    .iter()
                    .filter(|k| k.kid.as_deref() == Some(kid))
                    .peekable();
                if named.peek().is_none() {
                    return Selection::NotFound;
                }
                match named.find(|k| k.accepts(alg)) {
                    Some(key) => Selection::Found(Arc::clone(key)),
                    None => Selection::Mismatch,
                }
            }
            // Without a `kid`, a key is only chosen when it is the only one that fits:
            // trying keys in turn would make any key of the set acceptable silently.
            None => {
                let mut fitting = self.keys.iter().filter(|k| k.accepts(alg));
                match (fitting.next(), fitting.next()) {
                    (Some(key), None) => Selection::Found(Arc::clone(key)),
                    (None, _) => Selection::NotFound,
                    (Some(_), Some(_)) => Selection::Ambiguous,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn b64(bytes: &[u8]) -> String {
        JWK_B64.encode(bytes)
    }

    fn rsa_jwk(kid: &str) -> Value {
        let mut n = vec![0xc5u8; 256];
        n[255] = 0x01;
        json!({"kty": "RSA", "kid": kid, "n": b64(&n), "e": "AQAB"})
    }

    fn set(keys: Vec<Value>) -> KeySet {
        let doc = serde_json::to_vec(&json!({ "keys": keys })).expect("json");
        KeySet::from_jwks(&doc, "test").expect("a JWKS")
    }

    #[test]
    fn reads_supported_keys_and_skips_the_rest() {
        let ks = set(vec![
            rsa_jwk("rsa"),
            json!({"kty": "EC", "crv": "P-256", "kid": "ec", "x": b64(&[1; 32]), "y": b64(&[2; 32])}),
            json!({"kty": "EC", "crv": "P-384", "kid": "ec384", "x": b64(&[1; 48]), "y": b64(&[2; 48])}),
            json!({"kty": "OKP", "crv": "Ed25519", "kid": "ed", "x": b64(&[3; 32])}),
            // skipped:
            json!({"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"}),
            json!({"kty": "RSA", "kid": "enc", "use": "enc", "n": rsa_jwk("x")["n"], "e": "AQAB"}),
            json!({"kty": "RSA", "kid": "ops", "key_ops": ["encrypt"], "n": rsa_jwk("x")["n"], "e": "AQAB"}),
            json!({"kty": "RSA", "kid": "short", "n": b64(&[0xff; 128]), "e": "AQAB"}),
            json!({"kty": "RSA", "kid": "noe", "n": rsa_jwk("x")["n"]}),
            json!({"kty": "RSA", "kid": "oaep", "alg": "RSA-OAEP", "n": rsa_jwk("x")["n"], "e": "AQAB"}),
            json!({"kty": "RSA", "kid": "hs", "alg": "HS256", "n": rsa_jwk("x")["n"], "e": "AQAB"}),
            json!({"kty": "EC", "crv": "P-521", "kid": "p521", "x": b64(&[1; 66]), "y": b64(&[2; 66])}),
            json!({"kty": "EC", "crv": "P-256", "kid": "short-ec", "x": b64(&[1; 31]), "y": b64(&[2; 32])}),
            json!({"kty": "EC", "crv": "P-256", "kid": "es384-on-p256", "alg": "ES384", "x": b64(&[1; 32]), "y": b64(&[2; 32])}),
            json!({"kty": "OKP", "crv": "X25519", "kid": "x", "x": b64(&[3; 32])}),
            json!({"kty": "OKP", "crv": "Ed25519", "kid": "bad-b64", "x": "!!!"}),
            json!({"kid": "no-kty"}),
            json!("not an object"),
            json!({"kty": 7}),
        ]);
        assert_eq!(ks.len(), 4);
        assert!(matches!(
            ks.select(Some("rsa"), Alg::Rs256),
            Selection::Found(_)
        ));
        assert!(matches!(
            ks.select(Some("rsa"), Alg::Ps512),
            Selection::Found(_)
        ));
        assert!(matches!(
            ks.select(Some("ec"), Alg::Es256),
            Selection::Found(_)
        ));
        assert!(matches!(
            ks.select(Some("ec384"), Alg::Es384),
            Selection::Found(_)
        ));
        assert!(matches!(
            ks.select(Some("ed"), Alg::EdDsa),
            Selection::Found(_)
        ));
        assert!(matches!(
            ks.select(Some("ec"), Alg::Es384),
            Selection::Mismatch
        ));
        assert!(matches!(
            ks.select(Some("rsa"), Alg::EdDsa),
            Selection::Mismatch
        ));
        assert!(matches!(
            ks.select(Some("enc"), Alg::Rs256),
            Selection::NotFound
        ));
        assert!(matches!(
            ks.select(Some("hmac"), Alg::Rs256),
            Selection::NotFound
        ));
        assert!(matches!(ks.select(None, Alg::EdDsa), Selection::Found(_)));
        assert!(matches!(ks.select(None, Alg::Es256), Selection::Found(_)));
    }

    #[test]
    fn pinned_alg_is_respected_and_kidless_lookup_is_unambiguous() {
        let mut pinned = rsa_jwk("a");
        pinned["alg"] = json!("RS256");
        let ks = set(vec![pinned, rsa_jwk("b")]);
        assert!(matches!(
            ks.select(Some("a"), Alg::Rs256),
            Selection::Found(_)
        ));
        assert!(matches!(
            ks.select(Some("a"), Alg::Ps256),
            Selection::Mismatch
        ));
        assert!(matches!(ks.select(None, Alg::Rs256), Selection::Ambiguous));
        assert!(matches!(ks.select(None, Alg::EdDsa), Selection::NotFound));
    }

    #[test]
    fn padded_members_are_accepted() {
        let x = base64::engine::general_purpose::URL_SAFE.encode([3u8; 32]);
        assert!(x.ends_with('='));
        let ks = set(vec![
            json!({"kty": "OKP", "crv": "Ed25519", "kid": "ed", "x": x}),
        ]);
        assert_eq!(ks.len(), 1);
    }

    #[test]
    fn hostile_documents() {
        for doc in [
            &b""[..],
            b"null",
            b"[]",
            b"{}",
            b"{\"keys\": {}}",
            b"{\"keys\": \"x\"}",
            b"\xff\xfe",
            b"{\"keys\": [",
        ] {
            assert!(KeySet::from_jwks(doc, "t").is_err(), "{doc:?}");
        }
        let deep = format!("{{\"keys\": {}{}}}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(KeySet::from_jwks(deep.as_bytes(), "t").is_err());
        let many: Vec<Value> = (0..500).map(|i| rsa_jwk(&format!("k{i}"))).collect();
        assert_eq!(set(many).len(), MAX_KEYS);
        assert_eq!(set(vec![]).len(), 0);
    }
}
