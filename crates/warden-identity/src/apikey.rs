//! Warden API keys: `wdk_<id>_<secret>`. The id names the key in the store; only the
//! SHA-256 of the secret is stored, and it is compared in constant time.

use std::time::SystemTime;

use rand::Rng as _;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq as _;
use warden_types::{CredentialKind, Identity, Secret, Subject};

use crate::error::AuthError;
use crate::store::{ApiKeyRecord, CredentialStore};

/// Prefix of every API key.
pub const API_KEY_PREFIX: &str = "wdk_";
/// The `issuer` of identities authenticated by API key.
pub const API_KEY_ISSUER: &str = "warden";
/// Length of the key id.
const ID_LEN: usize = 12;
/// Length of the secret: 32 random bytes in hex.
const SECRET_LEN: usize = 64;
const ID_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// A newly generated API key. Show `plaintext` once; store `id` and `secret_hash`.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    /// The full key, `wdk_<id>_<secret>`.
    pub plaintext: Secret,
    /// The key id: 12 lowercase letters and digits.
    pub id: String,
    /// Hex SHA-256 of the secret part.
    pub secret_hash: String,
}

/// Generates an API key: a 12-character id and a 256-bit random secret (hex).
pub fn generate_api_key() -> NewApiKey {
    let mut rng = rand::thread_rng();
    let id: String = (0..ID_LEN)
        .map(|_| {
            let i = rng.gen_range(0..ID_ALPHABET.len());
            char::from(ID_ALPHABET.get(i).copied().unwrap_or(b'a'))
        })
        .collect();
    let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
    rng.fill(&mut bytes[..]);
    let secret = zeroize::Zeroizing::new(hex::encode(&bytes[..]));
    NewApiKey {
        plaintext: Secret::new(format!("{API_KEY_PREFIX}{id}_{}", secret.as_str())),
        secret_hash: hash_secret(&secret),
        id,
    }
}

/// Hex SHA-256 of an API key's secret part, as stored in [`ApiKeyRecord::secret_hash`].
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Splits `wdk_<id>_<secret>`; `None` when the shape is wrong.
fn split(credential: &str) -> Option<(&str, &str)> {
    let rest = credential.strip_prefix(API_KEY_PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let id_ok = id.len() == ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let secret_ok = secret.len() == SECRET_LEN && secret.bytes().all(|b| b.is_ascii_hexdigit());
    (id_ok && secret_ok).then_some((id, secret))
}

/// True when `secret` hashes to `stored_hash`, compared in constant time.
fn secret_matches(secret: &str, stored_hash: &str) -> bool {
    let computed = Sha256::digest(secret.as_bytes());
    match hex::decode(stored_hash.trim()) {
        Ok(stored) if stored.len() == computed.len() => {
            bool::from(computed.as_slice().ct_eq(stored.as_slice()))
        }
        _ => false,
    }
}

/// Authenticates an API key against the store. Unknown id and wrong secret give the same
/// error; revocation and expiry are told only to a caller who holds the right secret.
pub(crate) async fn authenticate(
    credential: &str,
    store: &dyn CredentialStore,
) -> Result<Identity, AuthError> {
    // A truncated or mistyped key is the usual cause of a bad shape; say so.
    let (id, secret) = split(credential).ok_or(AuthError::ApiKeyInvalid)?;
    let record = store.api_key(id).await?;
    let Some(record) = record.filter(|r| r.id == id) else {
        // Hash anyway so that an unknown id costs about as much as a wrong secret.
        let _ = secret_matches(secret, "");
        return Err(AuthError::ApiKeyInvalid);
    };
    if !secret_matches(secret, &record.secret_hash) {
        return Err(AuthError::ApiKeyInvalid);
    }
    check_record(&record, SystemTime::now())?;
    Ok(Identity {
        subject: Subject(record.name.clone()),
        display_name: record.name,
        issuer: API_KEY_ISSUER.to_owned(),
        groups: record.groups,
        kind: CredentialKind::ApiKey,
        actor: None,
        token_id: Some(record.id),
        expires_at: record.expires_at,
    })
}

fn check_record(record: &ApiKeyRecord, now: SystemTime) -> Result<(), AuthError> {
    if record.revoked {
        return Err(AuthError::Revoked);
    }
    if record.expires_at.is_some_and(|exp| exp <= now) {
        return Err(AuthError::ApiKeyExpired);
    }
    Ok(())
}

/// The key id of an API key, for logs; `None` when it is not shaped like one.
pub(crate) fn key_id(credential: &str) -> Option<&str> {
    split(credential).map(|(id, _)| id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_have_the_documented_shape() {
        let a = generate_api_key();
        let b = generate_api_key();
        assert_ne!(a.id, b.id);
        assert_ne!(a.plaintext, b.plaintext);
        let (id, secret) = split(a.plaintext.expose()).expect("well-formed");
        assert_eq!(id, a.id);
        assert_eq!(id.len(), 12);
        assert!(id
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()));
        assert_eq!(secret.len(), 64);
        assert_eq!(hash_secret(secret), a.secret_hash);
        assert!(secret_matches(secret, &a.secret_hash));
        assert!(!format!("{a:?}").contains(secret));
    }

    #[test]
    fn malformed_keys_are_refused() {
        let good = generate_api_key();
        let text = good.plaintext.expose();
        let cases = [
            "wdk_".to_owned(),
            "wdk__".to_owned(),
            "wdk_abc_def".to_owned(),
            text.replacen("wdk_", "WDK_", 1),
            format!("{text}0"),
            text.get(..text.len() - 1).unwrap_or_default().to_owned(),
            text.replacen('_', "-", 2),
            format!("wdk_ABCDEFGHIJKL_{}", "0".repeat(64)),
            format!("wdk_abcdefghijk!_{}", "0".repeat(64)),
            format!("wdk_abcdefghijkl_{}", "g".repeat(64)),
            format!("wdk_abcdefghijkl_{}", "0".repeat(1024 * 1024)),
            "wdk_é".to_owned(),
        ];
        for case in &cases {
            assert!(split(case).is_none(), "{case:.40}");
        }
    }

    #[test]
    fn hash_comparison_rejects_bad_stored_hashes() {
        let s = "0".repeat(64);
        assert!(secret_matches(&s, &hash_secret(&s)));
        assert!(secret_matches(&s, &hash_secret(&s).to_uppercase()));
        assert!(!secret_matches(&s, &hash_secret("other")));
        assert!(!secret_matches(&s, ""));
        assert!(!secret_matches(&s, "zz"));
        assert!(!secret_matches(&s, &hash_secret(&s)[..62]));
    }
}
