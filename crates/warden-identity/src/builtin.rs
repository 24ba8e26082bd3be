//! Warden's built-in token issuer, for machine identities (`warden tokens issue`, `warden
//! up`): an Ed25519 key kept in a PKCS#8 file (mode 0600, created on first start and
//! reused after), EdDSA-signed JWTs, and the public JWK set.
//!
//! Its tokens are verified by the same code as OIDC tokens (see `authenticator`), with
//! EdDSA as the only allowed algorithm, plus a revocation check of their `jti`.

use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use warden_types::Secret;

use crate::error::IdentityError;
use crate::jwt::{now_secs, MAX_DATE};
use crate::keyset::VerifyKey;

const PEM_BEGIN: &str = "-----BEGIN PRIVATE KEY-----";
const PEM_END: &str = "-----END PRIVATE KEY-----";
/// A key file larger than this is not an Ed25519 key.
const MAX_KEY_FILE: u64 = 16 * 1024;
/// Longest subject name a token may be issued for.
const MAX_NAME_LEN: usize = 256;

/// Settings of the built-in issuer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltinSettings {
    /// The `iss` of issued tokens, e.g. `warden`.
    pub issuer: String,
    /// The `aud` of issued tokens, e.g. `urn:warden`.
    pub audience: String,
    /// Ed25519 PKCS#8 private key file (PEM or DER); created with mode 0600 if absent.
    pub key_path: PathBuf,
}

/// The default issuer and audience; `key_path` is empty and must be set.
impl Default for BuiltinSettings {
    fn default() -> Self {
        BuiltinSettings::new(PathBuf::new())
    }
}

impl BuiltinSettings {
    /// The default issuer name.
    pub const DEFAULT_ISSUER: &'static str = "warden";
    /// The default audience.
    pub const DEFAULT_AUDIENCE: &'static str = "urn:warden";

    /// Settings with the default issuer and audience and the given key file.
    pub fn new(key_path: impl Into<PathBuf>) -> Self {
        BuiltinSettings {
            issuer: Self::DEFAULT_ISSUER.to_owned(),
            audience: Self::DEFAULT_AUDIENCE.to_owned(),
            key_path: key_path.into(),
        }
    }
}

/// A token from the built-in issuer.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    /// The signed JWT.
    pub token: Secret,
    /// Its `jti`, for revocation.
    pub jti: String,
    /// Its `exp`.
    pub expires_at: SystemTime,
}

struct Inner {
    settings: BuiltinSettings,
    key: Ed25519KeyPair,
    kid: String,
}

/// The built-in issuer. Cheap to clone; clones share the key.
#[derive(Clone)]
pub struct BuiltinIssuer {
    inner: Arc<Inner>,
}

impl fmt::Debug for BuiltinIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BuiltinIssuer")
            .field("issuer", &self.inner.settings.issuer)
            .field("audience", &self.inner.settings.audience)
            .field("key_path", &self.inner.settings.key_path)
            .field("kid", &self.inner.kid)
            .finish_non_exhaustive()
    }
}

fn key_file_err(path: &Path, source: std::io::Error) -> IdentityError {
    IdentityError::KeyFile {
        path: path.to_owned(),
        source,
    }
}

fn bad_key(path: &Path, message: impl Into<String>) -> IdentityError {
    IdentityError::BadKey {
        path: path.to_owned(),
        message: message.into(),
    }
}

/// The key id: base64url of the first 8 bytes of SHA-256 of the public key.
fn kid_of(public: &[u8]) -> String {
    let digest = Sha256::digest(public);
    URL_SAFE_NO_PAD.encode(digest.get(..8).unwrap_or_default())
}

fn to_pem(der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut pem = String::with_capacity(b64.len() + 80);
    pem.push_str(PEM_BEGIN);
    pem.push('\n');
    // 64-character lines, as RFC 7468 asks; base64 output is ASCII so byte chunks are safe.
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str(PEM_END);
    pem.push('\n');
    pem
}

/// The DER inside a PEM `PRIVATE KEY` block, or the bytes themselves when they are DER.
fn pkcs8_der(bytes: &[u8], path: &Path) -> Result<Vec<u8>, IdentityError> {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Ok(bytes.to_vec());
    };
    let Some(start) = text.find(PEM_BEGIN) else {
        return Ok(bytes.to_vec());
    };
    let body = text
        .get(start + PEM_BEGIN.len()..)
        .and_then(|rest| rest.find(PEM_END).and_then(|end| rest.get(..end)))
        .ok_or_else(|| bad_key(path, "PEM block is not terminated"))?;
    let joined: String = body.split_whitespace().collect();
    STANDARD
        .decode(joined)
        .map_err(|_| bad_key(path, "PEM body is not base64"))
}

#[cfg(unix)]
fn check_permissions(path: &Path, meta: &std::fs::Metadata) -> Result<(), IdentityError> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(bad_key(
            path,
            format!(
                "mode {mode:o} lets other users read the signing key; run `chmod 600 {}`",
                path.display()
            ),
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_permissions(_path: &Path, _meta: &std::fs::Metadata) -> Result<(), IdentityError> {
    Ok(())
}

fn load(path: &Path) -> Result<Ed25519KeyPair, IdentityError> {
    let meta = std::fs::metadata(path).map_err(|e| key_file_err(path, e))?;
    if !meta.is_file() {
        return Err(bad_key(path, "not a regular file"));
    }
    if meta.len() > MAX_KEY_FILE {
        return Err(bad_key(path, "file is too large to be an Ed25519 key"));
    }
    check_permissions(path, &meta)?;
    let bytes = std::fs::read(path).map_err(|e| key_file_err(path, e))?;
    let der = zeroize::Zeroizing::new(pkcs8_der(&bytes, path)?);
    Ed25519KeyPair::from_pkcs8(&der).map_err(|e| {
        bad_key(
            path,
            format!("not an Ed25519 PKCS#8 private key ({e}); move it away to generate a new one"),
        )
    })
}

/// Creates a new key file. `create_new` makes a concurrent start that lost the race load
/// the winner's key instead of overwriting it.
fn create(path: &Path) -> Result<Option<Ed25519KeyPair>, IdentityError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt as _;
            builder.mode(0o700);
        }
        builder.create(parent).map_err(|e| key_file_err(path, e))?;
    }
    let key = Ed25519KeyPair::generate()
        .map_err(|_| IdentityError::Crypto("Ed25519 key generation failed".to_owned()))?;
    let der = key
        .to_pkcs8v1()
        .map_err(|_| IdentityError::Crypto("Ed25519 key encoding failed".to_owned()))?;
    let pem = zeroize::Zeroizing::new(to_pem(der.as_ref()));

    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = match options.open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(None),
        Err(e) => return Err(key_file_err(path, e)),
    };
    file.write_all(pem.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| key_file_err(path, e))?;
    Ok(Some(key))
}

impl BuiltinIssuer {
    /// Loads the key from `settings.key_path`, or creates it (and its parent directories)
    /// when the file does not exist.
    pub fn load_or_create(settings: BuiltinSettings) -> Result<Self, IdentityError> {
        if settings.issuer.is_empty() || settings.audience.is_empty() {
            return Err(IdentityError::Config(
                "the built-in issuer needs a non-empty issuer and audience".to_owned(),
            ));
        }
        let path = settings.key_path.as_path();
        if path.as_os_str().is_empty() {
            return Err(IdentityError::Config(
                "the built-in issuer needs a key file path".to_owned(),
            ));
        }
        let key = match std::fs::symlink_metadata(path) {
            Ok(_) => load(path)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => match create(path)? {
                Some(key) => {
                    tracing::info!(path = %path.display(), "created built-in issuer key");
                    key
                }
                None => load(path)?,
            },
            Err(e) => return Err(key_file_err(path, e)),
        };
        let kid = kid_of(key.public_key().as_ref());
        tracing::info!(issuer = %settings.issuer, kid = %kid, "built-in issuer ready");
        Ok(BuiltinIssuer {
            inner: Arc::new(Inner { settings, key, kid }),
        })
    }

    /// The `iss` of issued tokens.
    pub fn issuer(&self) -> &str {
        &self.inner.settings.issuer
    }

    /// The `aud` of issued tokens.
    pub fn audience(&self) -> &str {
        &self.inner.settings.audience
    }

    /// The key id in issued tokens' headers.
    pub fn kid(&self) -> &str {
        &self.inner.kid
    }

    /// Issues a token for `name` with `groups`, valid for `ttl` (at least one second).
    /// `actor` names who acts through the identity (recorded as `act.sub`).
    pub fn issue(
        &self,
        name: &str,
        groups: &[String],
        ttl: Duration,
        actor: Option<&str>,
    ) -> Result<IssuedToken, IdentityError> {
        if name.is_empty() || name.len() > MAX_NAME_LEN || name.contains(char::is_control) {
            return Err(IdentityError::InvalidRequest(format!(
                "the name must be 1 to {MAX_NAME_LEN} printable characters"
            )));
        }
        if groups
            .iter()
            .any(|g| g.is_empty() || g.contains(char::is_control))
        {
            return Err(IdentityError::InvalidRequest(
                "group names must be non-empty printable strings".to_owned(),
            ));
        }
        if ttl.as_secs() == 0 {
            return Err(IdentityError::InvalidRequest(
                "the lifetime must be at least one second".to_owned(),
            ));
        }
        if actor.is_some_and(|a| a.is_empty() || a.contains(char::is_control)) {
            return Err(IdentityError::InvalidRequest(
                "the actor must be a non-empty printable string".to_owned(),
            ));
        }
        let now = now_secs();
        let exp = now.saturating_add(ttl.as_secs());
        if exp > MAX_DATE {
            return Err(IdentityError::InvalidRequest(
                "the lifetime reaches beyond the year 9999".to_owned(),
            ));
        }
        let jti = uuid::Uuid::new_v4().to_string();
        let mut claims = json!({
            "iss": self.issuer(),
            "aud": self.audience(),
            "sub": name,
            "groups": groups,
            "iat": now,
            "nbf": now,
            "exp": exp,
            "jti": jti,
        });
        if let (Some(actor), Value::Object(map)) = (actor, &mut claims) {
            map.insert("act".to_owned(), json!({ "sub": actor }));
        }
        let header = json!({"alg": "EdDSA", "typ": "JWT", "kid": self.kid()});
        let encode = |v: &Value| {
            serde_json::to_vec(v)
                .map(|bytes| URL_SAFE_NO_PAD.encode(bytes))
                .map_err(|e| IdentityError::Crypto(format!("claims encoding failed: {e}")))
        };
        let signing_input = format!("{}.{}", encode(&header)?, encode(&claims)?);
        let signature = self.inner.key.sign(signing_input.as_bytes());
        let token = format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.as_ref())
        );
        Ok(IssuedToken {
            token: Secret::new(token),
            jti,
            expires_at: UNIX_EPOCH + Duration::from_secs(exp),
        })
    }

    /// The public JWK set, to publish for other verifiers.
    pub fn jwks(&self) -> Value {
        json!({
            "keys": [{
                "kty": "OKP",
                "crv": "Ed25519",
                "use": "sig",
                "alg": "EdDSA",
                "kid": self.kid(),
                "x": URL_SAFE_NO_PAD.encode(self.inner.key.public_key().as_ref()),
            }]
        })
    }

    /// The verification key, for the shared verification path.
    pub(crate) fn verify_key(&self) -> VerifyKey {
        VerifyKey::ed25519(self.inner.kid.clone(), self.inner.key.public_key().as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_round_trip_and_hostile_pem() {
        let der = vec![1u8, 2, 3, 250, 251, 252];
        let path = Path::new("k");
        let pem = to_pem(&der);
        assert_eq!(pkcs8_der(pem.as_bytes(), path).ok(), Some(der.clone()));
        assert_eq!(pkcs8_der(&der, path).ok(), Some(der));
        assert!(pkcs8_der(PEM_BEGIN.as_bytes(), path).is_err());
        let bad = format!("{PEM_BEGIN}\n!!!!\n{PEM_END}\n");
        assert!(pkcs8_der(bad.as_bytes(), path).is_err());
    }

    #[test]
    fn kid_is_short_and_stable() {
        let kid = kid_of(&[7u8; 32]);
        assert_eq!(kid.len(), 11);
        assert_eq!(kid, kid_of(&[7u8; 32]));
        assert_ne!(kid, kid_of(&[8u8; 32]));
    }
}
