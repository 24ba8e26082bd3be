//! JWT parsing and verification, shared by OIDC issuers and the built-in issuer: split and
//! decode a compact JWS, check the header's algorithm against an allow-list, verify the
//! signature with a [`VerifyKey`], validate the registered claims, and map claims to an
//! [`Identity`].
//!
//! Nothing here does I/O; the caller supplies the key.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{Map, Value};
use warden_types::{CredentialKind, Identity, Subject};

use crate::error::AuthError;
use crate::keyset::VerifyKey;

/// Longest credential accepted, in bytes. Real access tokens with many groups stay well
/// below this; anything longer is refused before it is parsed.
pub const MAX_CREDENTIAL_LEN: usize = 32 * 1024;

/// The longest `alg` value repeated back in an error.
const MAX_ECHOED_ALG: usize = 16;

/// Asymmetric JWS algorithms Warden can verify. HMAC and `none` are deliberately absent:
/// a gateway that verifies with a public key must never accept a shared-secret algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Alg {
    Rs256,
    Rs384,
    Rs512,
    Ps256,
    Ps384,
    Ps512,
    Es256,
    Es384,
    EdDsa,
}

/// The family of key an algorithm needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyKind {
    Rsa,
    EcP256,
    EcP384,
    Ed25519,
}

impl Alg {
    /// Parses a JOSE algorithm name (case-sensitive, as RFC 7518 requires).
    pub(crate) fn from_name(name: &str) -> Option<Alg> {
        Some(match name {
            "RS256" => Alg::Rs256,
            "RS384" => Alg::Rs384,
            "RS512" => Alg::Rs512,
            "PS256" => Alg::Ps256,
            "PS384" => Alg::Ps384,
            "PS512" => Alg::Ps512,
            "ES256" => Alg::Es256,
            "ES384" => Alg::Es384,
            "EdDSA" => Alg::EdDsa,
            _ => return None,
        })
    }

    /// The key type this algorithm verifies with.
    pub(crate) fn key_kind(self) -> KeyKind {
        match self {
            Alg::Rs256 | Alg::Rs384 | Alg::Rs512 | Alg::Ps256 | Alg::Ps384 | Alg::Ps512 => {
                KeyKind::Rsa
            }
            Alg::Es256 => KeyKind::EcP256,
            Alg::Es384 => KeyKind::EcP384,
            Alg::EdDsa => KeyKind::Ed25519,
        }
    }

    fn to_jsonwebtoken(self) -> jsonwebtoken::Algorithm {
        use jsonwebtoken::Algorithm as J;
        match self {
            Alg::Rs256 => J::RS256,
            Alg::Rs384 => J::RS384,
            Alg::Rs512 => J::RS512,
            Alg::Ps256 => J::PS256,
            Alg::Ps384 => J::PS384,
            Alg::Ps512 => J::PS512,
            Alg::Es256 => J::ES256,
            Alg::Es384 => J::ES384,
            Alg::EdDsa => J::EdDSA,
        }
    }
}

/// Parses an allow-list of algorithm names, refusing HMAC, `none` and unknown names.
pub(crate) fn parse_allow_list(names: &[String], issuer: &str) -> Result<Vec<Alg>, String> {
    if names.is_empty() {
        return Err(format!("issuer {issuer}: `algorithms` must not be empty"));
    }
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        if name.starts_with("HS") || name.eq_ignore_ascii_case("none") {
            return Err(format!(
                "issuer {issuer}: algorithm {name:?} is refused (shared-secret and unsigned \
                 tokens cannot be verified safely); use asymmetric algorithms only"
            ));
        }
        let alg = Alg::from_name(name).ok_or_else(|| {
            format!(
                "issuer {issuer}: unknown algorithm {name:?}; supported: RS256, RS384, RS512, \
                 PS256, PS384, PS512, ES256, ES384, EdDSA"
            )
        })?;
        if !out.contains(&alg) {
            out.push(alg);
        }
    }
    Ok(out)
}

/// A compact JWS split into its parts, with header and payload decoded but nothing verified.
pub(crate) struct UnverifiedToken<'a> {
    /// The header's `alg`, exactly as written.
    pub alg: String,
    /// The header's `kid`, if any.
    pub kid: Option<String>,
    /// The decoded payload. Only `iss` may be read before verification, to route.
    pub claims: Map<String, Value>,
    /// `base64url(header) "." base64url(payload)`: the signed bytes.
    signing_input: &'a str,
    /// The base64url signature (may be empty, as in `alg: none` tokens).
    signature: &'a str,
}

fn is_b64url(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn decode_json_object(segment: &str) -> Result<Map<String, Value>, AuthError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| AuthError::Malformed)?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(AuthError::Malformed),
    }
}

impl<'a> UnverifiedToken<'a> {
    /// Splits and decodes a compact JWS. Rejects anything that is not exactly three
    /// base64url segments with JSON-object header and payload.
    pub(crate) fn parse(token: &'a str) -> Result<Self, AuthError> {
        if token.is_empty() || token.len() > MAX_CREDENTIAL_LEN {
            return Err(AuthError::Malformed);
        }
        let mut parts = token.split('.');
        let (header, payload, signature) = match (parts.next(), parts.next(), parts.next()) {
            (Some(h), Some(p), Some(s)) if parts.next().is_none() => (h, p, s),
            _ => return Err(AuthError::Malformed),
        };
        if header.is_empty()
            || payload.is_empty()
            || !is_b64url(header)
            || !is_b64url(payload)
            || !is_b64url(signature)
        {
            return Err(AuthError::Malformed);
        }
        let head = decode_json_object(header)?;
        let alg = match head.get("alg") {
            Some(Value::String(alg)) => alg.clone(),
            _ => return Err(AuthError::Malformed),
        };
        // RFC 7515 §4.1.11: a recipient must reject a token whose `crit` names extensions
        // it does not understand; Warden understands none.
        if head.contains_key("crit") {
            return Err(AuthError::Malformed);
        }
        let kid = match head.get("kid") {
            None | Some(Value::Null) => None,
            Some(Value::String(kid)) => Some(kid.clone()),
            Some(_) => return Err(AuthError::Malformed),
        };
        // `jku`, `x5u`, `jwk` and `x5c` are ignored on purpose: keys come only from the
        // issuer's configured JWKS, never from the token itself.
        let claims = decode_json_object(payload)?;
        let signing_input = token
            .get(..header.len() + 1 + payload.len())
            .ok_or(AuthError::Malformed)?;
        Ok(UnverifiedToken {
            alg,
            kid,
            claims,
            signing_input,
            signature,
        })
    }

    /// The unverified `iss`, for routing only.
    pub(crate) fn issuer(&self) -> Result<&str, AuthError> {
        match self.claims.get("iss") {
            Some(Value::String(iss)) => Ok(iss),
            None | Some(Value::Null) => Err(AuthError::MissingClaim("iss")),
            Some(_) => Err(AuthError::Malformed),
        }
    }

    /// The header's algorithm if it is in `allowed`; otherwise `AlgorithmNotAllowed`.
    /// Called before any key is looked up, so `none` and HMAC tokens never reach a key.
    pub(crate) fn allowed_alg(&self, allowed: &[Alg]) -> Result<Alg, AuthError> {
        match Alg::from_name(&self.alg) {
            Some(alg) if allowed.contains(&alg) => Ok(alg),
            _ => Err(AuthError::AlgorithmNotAllowed(loggable(
                &self.alg,
                MAX_ECHOED_ALG,
            ))),
        }
    }

    /// Verifies the signature with `key` under `alg` (already checked against the
    /// allow-list and against the key's type).
    pub(crate) fn verify_signature(&self, alg: Alg, key: &VerifyKey) -> Result<(), AuthError> {
        if self.signature.is_empty() || !key.accepts(alg) {
            return Err(AuthError::BadSignature);
        }
        match jsonwebtoken::crypto::verify(
            self.signature,
            self.signing_input.as_bytes(),
            key.decoding_key(),
            alg.to_jsonwebtoken(),
        ) {
            Ok(true) => Ok(()),
            Ok(false) => Err(AuthError::BadSignature),
            Err(e) => {
                tracing::debug!(error = %e, "signature could not be checked");
                Err(AuthError::BadSignature)
            }
        }
    }
}

/// What the registered claims must satisfy.
pub(crate) struct ClaimRules<'a> {
    pub issuer: &'a str,
    pub audiences: &'a [String],
    pub leeway: Duration,
}

/// Registered-claim values that survived validation.
pub(crate) struct ValidClaims {
    pub subject: String,
    pub expires_at: SystemTime,
}

/// Seconds since the Unix epoch; a clock before 1970 counts as 0 rather than panicking.
pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The latest date Warden represents (9999-12-31T23:59:59Z). Later dates are clamped to
/// it, so that converting to `SystemTime` can never overflow.
pub(crate) const MAX_DATE: u64 = 253_402_300_799;

/// A NumericDate claim (RFC 7519 §2): a non-negative number, fractions allowed; clamped
/// to [`MAX_DATE`].
fn numeric_date(claims: &Map<String, Value>, name: &'static str) -> Result<Option<u64>, AuthError> {
    Ok(numeric_date_raw(claims, name)?.map(|d| d.min(MAX_DATE)))
}

fn numeric_date_raw(
    claims: &Map<String, Value>,
    name: &'static str,
) -> Result<Option<u64>, AuthError> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => {
            if let Some(v) = n.as_u64() {
                Ok(Some(v))
            } else {
                match n.as_f64() {
                    Some(f) if f.is_finite() && f >= 0.0 && f < u64::MAX as f64 => {
                        Ok(Some(f.floor() as u64))
                    }
                    _ => Err(AuthError::Malformed),
                }
            }
        }
        Some(_) => Err(AuthError::Malformed),
    }
}

/// Checks `iss` (exact), `aud`, `exp` (required), `nbf`, `iat` and `sub` (required).
pub(crate) fn validate_claims(
    claims: &Map<String, Value>,
    rules: &ClaimRules<'_>,
    now: u64,
) -> Result<ValidClaims, AuthError> {
    match claims.get("iss") {
        Some(Value::String(iss)) if iss == rules.issuer => {}
        None => return Err(AuthError::MissingClaim("iss")),
        Some(_) => return Err(AuthError::WrongIssuer),
    }
    let aud_ok = match claims.get("aud") {
        None | Some(Value::Null) => return Err(AuthError::MissingClaim("aud")),
        Some(Value::String(aud)) => rules.audiences.iter().any(|a| a == aud),
        Some(Value::Array(auds)) => auds.iter().any(|v| {
            v.as_str()
                .is_some_and(|aud| rules.audiences.iter().any(|a| a == aud))
        }),
        Some(_) => return Err(AuthError::Malformed),
    };
    if !aud_ok {
        return Err(AuthError::WrongAudience);
    }
    let leeway = rules.leeway.as_secs();
    let exp = numeric_date(claims, "exp")?.ok_or(AuthError::MissingClaim("exp"))?;
    if now > exp.saturating_add(leeway) {
        return Err(AuthError::Expired);
    }
    let later = now.saturating_add(leeway);
    if numeric_date(claims, "nbf")?.is_some_and(|nbf| nbf > later) {
        return Err(AuthError::NotYetValid);
    }
    if numeric_date(claims, "iat")?.is_some_and(|iat| iat > later) {
        return Err(AuthError::NotYetValid);
    }
    let subject = match claims.get("sub") {
        Some(Value::String(sub)) if !sub.is_empty() => sub.clone(),
        None | Some(Value::Null) | Some(Value::String(_)) => {
            return Err(AuthError::MissingClaim("sub"))
        }
        Some(_) => return Err(AuthError::Malformed),
    };
    Ok(ValidClaims {
        subject,
        expires_at: UNIX_EPOCH + Duration::from_secs(exp),
    })
}

fn non_empty_str<'v>(claims: &'v Map<String, Value>, name: &str) -> Option<&'v str> {
    claims
        .get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// Finds a claim by name; when no claim has that exact name, walks it as a dotted path
/// (`realm_access.roles`). The exact name wins so that namespaced claims such as
/// `https://example.com/groups` keep working.
fn claim_at<'v>(claims: &'v Map<String, Value>, path: &str) -> Option<&'v Value> {
    if let Some(v) = claims.get(path) {
        return Some(v);
    }
    let mut segments = path.split('.');
    let mut current = claims.get(segments.next()?)?;
    for segment in segments {
        current = current.as_object()?.get(segment)?;
    }
    Some(current)
}

/// Groups from `groups_claim`: an array of strings or a single string. Missing, or of any
/// other shape, means no groups, which grants the least.
pub(crate) fn groups(claims: &Map<String, Value>, groups_claim: &str) -> Vec<String> {
    match claim_at(claims, groups_claim) {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .filter(|g| !g.is_empty())
            .map(str::to_owned)
            .collect(),
        Some(Value::String(g)) if !g.is_empty() => vec![g.clone()],
        Some(Value::Null) | None => Vec::new(),
        Some(_) => {
            tracing::warn!(
                claim = %loggable(groups_claim, 128),
                "groups claim is neither a string nor an array; treating as no groups"
            );
            Vec::new()
        }
    }
}

/// Builds the identity from validated claims.
pub(crate) fn identity(
    claims: &Map<String, Value>,
    valid: ValidClaims,
    issuer: &str,
    groups_claim: &str,
    kind: CredentialKind,
) -> Identity {
    let display_name = ["preferred_username", "name", "email"]
        .iter()
        .find_map(|c| non_empty_str(claims, c))
        .unwrap_or(&valid.subject)
        .to_owned();
    let actor = claims
        .get("act")
        .and_then(Value::as_object)
        .and_then(|act| non_empty_str(act, "sub"))
        .or_else(|| {
            ["azp", "client_id"]
                .iter()
                .filter_map(|c| non_empty_str(claims, c))
                .find(|party| *party != valid.subject)
        })
        .map(str::to_owned);
    Identity {
        subject: Subject(valid.subject),
        display_name,
        issuer: issuer.to_owned(),
        groups: groups(claims, groups_claim),
        kind,
        actor,
        token_id: non_empty_str(claims, "jti").map(str::to_owned),
        expires_at: Some(valid.expires_at),
    }
}

/// A token-supplied string made safe for a log line or an error: control characters
/// replaced and length capped.
pub(crate) fn loggable(s: &str, max_chars: usize) -> String {
    let mut out: String = s
        .chars()
        .take(max_chars)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if s.chars().nth(max_chars).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn b64(v: &Value) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).expect("json"))
    }

    fn token(header: &Value, payload: &Value, sig: &str) -> String {
        format!("{}.{}.{sig}", b64(header), b64(payload))
    }

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn parses_a_well_formed_token() {
        let t = token(
            &json!({"alg": "RS256", "kid": "k1"}),
            &json!({"iss": "https://idp"}),
            "c2ln",
        );
        let parsed = UnverifiedToken::parse(&t).expect("parses");
        assert_eq!(parsed.alg, "RS256");
        assert_eq!(parsed.kid.as_deref(), Some("k1"));
        assert_eq!(parsed.issuer(), Ok("https://idp"));
        assert_eq!(
            Some(parsed.signing_input),
            t.rsplit_once('.').map(|(i, _)| i)
        );
        assert_eq!(parsed.signature, "c2ln");
    }

    #[test]
    fn malformed_inputs_are_refused_without_panic() {
        let good_header = b64(&json!({"alg": "RS256"}));
        let good_payload = b64(&json!({"iss": "x"}));
        let huge = "a".repeat(1024 * 1024);
        let huge_dots = format!("{huge}.{huge}.{huge}");
        let cases: Vec<String> = vec![
            String::new(),
            "garbage".into(),
            "....".into(),
            "a.b".into(),
            format!("{good_header}.{good_payload}"),
            format!("{good_header}.{good_payload}.sig.extra"),
            format!(".{good_payload}.sig"),
            format!("{good_header}..sig"),
            format!("{good_header}.{good_payload}.si+g"),
            format!("{good_header}=.{good_payload}.sig"),
            format!("!!!.{good_payload}.sig"),
            format!("{}.{good_payload}.sig", URL_SAFE_NO_PAD.encode("not json")),
            format!("{}.{good_payload}.sig", URL_SAFE_NO_PAD.encode("[1,2]")),
            format!("{}.{good_payload}.sig", URL_SAFE_NO_PAD.encode("{\"alg\":")),
            format!("{}.{good_payload}.sig", b64(&json!({"kid": "k"}))),
            format!("{}.{good_payload}.sig", b64(&json!({"alg": 5}))),
            format!(
                "{}.{good_payload}.sig",
                b64(&json!({"alg": "RS256", "kid": 1}))
            ),
            format!(
                "{}.{good_payload}.sig",
                b64(&json!({"alg": "RS256", "crit": ["exp"]}))
            ),
            format!("{good_header}.{}.sig", URL_SAFE_NO_PAD.encode("\"str\"")),
            format!("{good_header}.{}.sig", URL_SAFE_NO_PAD.encode([0xff, 0xfe])),
            format!(
                "{good_header}.{}.sig",
                URL_SAFE_NO_PAD.encode("[".repeat(5000))
            ),
            format!("{good_header}.A.sig"),
            huge.clone(),
            huge_dots,
            "é.é.é".into(),
        ];
        for case in &cases {
            assert!(
                matches!(UnverifiedToken::parse(case), Err(AuthError::Malformed)),
                "accepted: {}",
                loggable(case, 80)
            );
        }
    }

    #[test]
    fn alg_none_and_hmac_are_not_allowed() {
        let allowed = parse_allow_list(&["RS256".into(), "EdDSA".into()], "i").expect("valid");
        for alg in [
            "none",
            "HS256",
            "RS512",
            "rs256",
            "\u{7}evil-and-very-long-algorithm",
        ] {
            let t = token(&json!({"alg": alg}), &json!({}), "");
            let parsed = UnverifiedToken::parse(&t);
            let err = parsed.and_then(|p| p.allowed_alg(&allowed).map(|_| ()));
            match err {
                Err(AuthError::AlgorithmNotAllowed(echo)) => {
                    assert!(echo.chars().count() <= MAX_ECHOED_ALG + 1);
                    assert!(!echo.contains('\u{7}'));
                }
                other => panic!("{alg}: {other:?}"),
            }
        }
    }

    #[test]
    fn allow_list_refuses_hmac_none_and_unknown() {
        for bad in ["HS256", "HS512", "none", "None", "RS1", ""] {
            assert!(parse_allow_list(&[bad.to_owned()], "i").is_err(), "{bad}");
        }
        assert!(parse_allow_list(&[], "i").is_err());
        assert_eq!(
            parse_allow_list(&["ES256".into(), "ES256".into()], "i").map(|v| v.len()),
            Ok(1)
        );
    }

    fn rules() -> (String, Vec<String>) {
        (
            "https://idp".to_owned(),
            vec!["urn:warden".to_owned(), "other".to_owned()],
        )
    }

    fn check(claims: Value, now: u64) -> Result<ValidClaims, AuthError> {
        let (issuer, audiences) = rules();
        let rules = ClaimRules {
            issuer: &issuer,
            audiences: &audiences,
            leeway: Duration::from_secs(30),
        };
        validate_claims(&obj(claims), &rules, now)
    }

    #[test]
    fn claims_validation() {
        let now = 1_700_000_000u64;
        let base =
            json!({"iss": "https://idp", "aud": "urn:warden", "sub": "alice", "exp": now + 60});
        assert!(check(base.clone(), now).is_ok());
        let with = |k: &str, v: Value| {
            let mut c = base.clone();
            c[k] = v;
            c
        };
        let without = |k: &str| {
            let mut m = obj(base.clone());
            m.remove(k);
            Value::Object(m)
        };
        let err = |c: Value| check(c, now).err();
        assert_eq!(
            err(with("iss", json!("https://idp/"))),
            Some(AuthError::WrongIssuer)
        );
        assert_eq!(
            err(with("iss", json!(["https://idp"]))),
            Some(AuthError::WrongIssuer)
        );
        assert_eq!(err(without("iss")), Some(AuthError::MissingClaim("iss")));
        assert_eq!(
            err(with("aud", json!("nope"))),
            Some(AuthError::WrongAudience)
        );
        assert_eq!(err(with("aud", json!(["a", "other"]))), None);
        assert_eq!(err(with("aud", json!([]))), Some(AuthError::WrongAudience));
        assert_eq!(err(with("aud", json!(5))), Some(AuthError::Malformed));
        assert_eq!(err(without("aud")), Some(AuthError::MissingClaim("aud")));
        assert_eq!(err(without("exp")), Some(AuthError::MissingClaim("exp")));
        assert_eq!(err(with("exp", json!("soon"))), Some(AuthError::Malformed));
        assert_eq!(err(with("exp", json!(-5))), Some(AuthError::Malformed));
        assert_eq!(err(with("exp", json!(now - 31))), Some(AuthError::Expired));
        assert_eq!(err(with("exp", json!(now - 29))), None);
        assert_eq!(err(with("exp", json!(u64::MAX))), None);
        assert_eq!(err(with("exp", json!(1e300))), Some(AuthError::Malformed));
        let far = check(with("exp", json!(u64::MAX)), now).map(|v| v.expires_at);
        assert_eq!(far, Ok(UNIX_EPOCH + Duration::from_secs(MAX_DATE)));
        assert_eq!(err(with("exp", json!((now + 10) as f64 + 0.5))), None);
        assert_eq!(
            err(with("nbf", json!(now + 31))),
            Some(AuthError::NotYetValid)
        );
        assert_eq!(err(with("nbf", json!(now + 29))), None);
        assert_eq!(
            err(with("iat", json!(now + 31))),
            Some(AuthError::NotYetValid)
        );
        assert_eq!(err(with("iat", json!(now - 3600))), None);
        assert_eq!(err(without("sub")), Some(AuthError::MissingClaim("sub")));
        assert_eq!(
            err(with("sub", json!(""))),
            Some(AuthError::MissingClaim("sub"))
        );
        assert_eq!(
            err(with("sub", json!({"a": 1}))),
            Some(AuthError::Malformed)
        );
    }

    #[test]
    fn groups_from_arrays_strings_and_paths() {
        let claims = obj(json!({
            "groups": ["a", "", 5, "b"],
            "role": "dba",
            "realm_access": {"roles": ["x", "y"]},
            "https://example.com/groups": ["ns"],
            "weird": {"not": "a list"},
        }));
        assert_eq!(groups(&claims, "groups"), vec!["a", "b"]);
        assert_eq!(groups(&claims, "role"), vec!["dba"]);
        assert_eq!(groups(&claims, "realm_access.roles"), vec!["x", "y"]);
        assert_eq!(groups(&claims, "https://example.com/groups"), vec!["ns"]);
        assert!(groups(&claims, "missing").is_empty());
        assert!(groups(&claims, "realm_access.missing.deeper").is_empty());
        assert!(groups(&claims, "role.sub").is_empty());
        assert!(groups(&claims, "weird").is_empty());
        assert!(groups(&claims, "").is_empty());
    }

    #[test]
    fn identity_mapping() {
        let exp = UNIX_EPOCH + Duration::from_secs(100);
        let valid = |sub: &str| ValidClaims {
            subject: sub.to_owned(),
            expires_at: exp,
        };
        let claims = obj(json!({
            "sub": "u1", "name": "Alice A", "email": "a@x", "azp": "agent-7",
            "jti": "j1", "groups": ["g"],
        }));
        let id = identity(
            &claims,
            valid("u1"),
            "https://idp",
            "groups",
            CredentialKind::Oidc,
        );
        assert_eq!(id.subject.as_str(), "u1");
        assert_eq!(id.display_name, "Alice A");
        assert_eq!(id.actor.as_deref(), Some("agent-7"));
        assert_eq!(id.token_id.as_deref(), Some("j1"));
        assert_eq!(id.expires_at, Some(exp));
        assert_eq!(id.groups, vec!["g"]);

        let claims = obj(json!({"sub": "svc", "azp": "svc", "client_id": "svc"}));
        let id = identity(&claims, valid("svc"), "i", "groups", CredentialKind::Oidc);
        assert_eq!(id.display_name, "svc");
        assert_eq!(id.actor, None);
        assert_eq!(id.token_id, None);

        let claims = obj(
            json!({"sub": "u", "act": {"sub": "bot"}, "azp": "cli", "preferred_username": "al"}),
        );
        let id = identity(&claims, valid("u"), "i", "groups", CredentialKind::Oidc);
        assert_eq!(id.actor.as_deref(), Some("bot"));
        assert_eq!(id.display_name, "al");

        let claims = obj(json!({"sub": "u", "client_id": "ci"}));
        let id = identity(&claims, valid("u"), "i", "groups", CredentialKind::Oidc);
        assert_eq!(id.actor.as_deref(), Some("ci"));
    }

    #[test]
    fn loggable_caps_and_cleans() {
        assert_eq!(loggable("abc", 5), "abc");
        assert_eq!(loggable("abcdef", 3), "abc…");
        assert_eq!(loggable("a\nb", 5), "a?b");
    }
}
