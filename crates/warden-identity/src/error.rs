//! Errors of this crate: [`AuthError`] for a rejected credential (mapped to SQLSTATE and a
//! client message in exactly one place, here) and [`IdentityError`] for setup problems.

use std::path::PathBuf;

/// Why a credential was rejected.
///
/// `Display` is for logs; [`AuthError::reason`] is the message for the client and
/// [`AuthError::sqlstate`] its SQLSTATE. Neither ever contains the credential itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Neither a well-formed JWT nor a well-formed API key.
    #[error("credential is malformed")]
    Malformed,
    /// The token's `iss` names no configured issuer.
    #[error("token issuer is not configured")]
    UnknownIssuer,
    /// The token header's `alg` is not in the issuer's allow-list.
    #[error("token algorithm {0:?} is not allowed")]
    AlgorithmNotAllowed(String),
    /// No published key matches the token's `kid` and algorithm.
    #[error("no signing key matches the token")]
    UnknownKey,
    /// The signature does not verify.
    #[error("token signature is invalid")]
    BadSignature,
    /// `exp` lies in the past (beyond the leeway).
    #[error("token has expired")]
    Expired,
    /// `nbf` or `iat` lies in the future (beyond the leeway).
    #[error("token is not valid yet")]
    NotYetValid,
    /// `iss` does not exactly match the issuer the token was routed to.
    #[error("token issuer does not match exactly")]
    WrongIssuer,
    /// `aud` contains none of the configured audiences.
    #[error("token audience is not accepted")]
    WrongAudience,
    /// A required claim is absent.
    #[error("token lacks the {0:?} claim")]
    MissingClaim(&'static str),
    /// The token or API key was revoked.
    #[error("credential was revoked")]
    Revoked,
    /// Unknown API key id or wrong secret (deliberately not told apart).
    #[error("API key is invalid")]
    ApiKeyInvalid,
    /// The API key is past its expiry.
    #[error("API key has expired")]
    ApiKeyExpired,
    /// API keys are switched off (`identity.api_keys.enabled = false`).
    #[error("API keys are disabled")]
    ApiKeysDisabled,
    /// Discovery or JWKS could not be fetched; the detail is for logs only.
    #[error("identity provider unavailable: {0}")]
    IdpUnavailable(String),
    /// The credential store could not be asked; the detail is for logs only.
    #[error("credential store unavailable: {0}")]
    StoreUnavailable(String),
}

impl AuthError {
    /// SQLSTATE for the client: `28P01` (invalid_password) when the credential is bad,
    /// `28000` (invalid_authorization_specification) when it could not be checked.
    pub fn sqlstate(&self) -> &'static str {
        match self {
            AuthError::IdpUnavailable(_) | AuthError::StoreUnavailable(_) => "28000",
            _ => "28P01",
        }
    }

    /// A message for the client: what is wrong and what to do. Never echoes the credential
    /// and never exposes internal details (URLs, store errors).
    pub fn reason(&self) -> String {
        match self {
            AuthError::Malformed => "the password is neither an access token (JWT) nor a Warden API key (wdk_...); \
                 pass a current access token or API key as the password"
                .to_owned(),
            AuthError::UnknownIssuer => "the access token comes from an issuer this gateway does not trust; \
                 use a token from a configured identity provider (for example via `warden login`)"
                .to_owned(),
            AuthError::AlgorithmNotAllowed(alg) => format!(
                "the access token is signed with algorithm {alg:?}, which this gateway does not accept \
                 for its issuer; ask your administrator which algorithms are allowed"
            ),
            AuthError::UnknownKey => "the access token is signed with a key its issuer does not publish; \
                 obtain a fresh token and try again"
                .to_owned(),
            AuthError::BadSignature => "the access token's signature is invalid; obtain a fresh token, \
                 unaltered, and try again"
                .to_owned(),
            AuthError::Expired => "the access token has expired; obtain a fresh token \
                 (for example `warden login`) and reconnect"
                .to_owned(),
            AuthError::NotYetValid => "the access token is not valid yet; check the clock of the machine \
                 that issued it, or wait and try again"
                .to_owned(),
            AuthError::WrongIssuer => "the access token's issuer does not exactly match the configured issuer; \
                 use a token from the configured identity provider"
                .to_owned(),
            AuthError::WrongAudience => "the access token was not issued for this gateway (audience mismatch); \
                 request a token for the gateway's audience"
                .to_owned(),
            AuthError::MissingClaim(claim) => format!(
                "the access token lacks the required {claim:?} claim; request a token that carries it"
            ),
            AuthError::Revoked => "this credential was revoked; ask for a new one".to_owned(),
            AuthError::ApiKeyInvalid => "the API key is not valid; check that it was copied completely, \
                 or create a new one with `warden tokens issue`"
                .to_owned(),
            AuthError::ApiKeyExpired => "the API key has expired; create a new one with `warden tokens issue`"
                .to_owned(),
            AuthError::ApiKeysDisabled => "this gateway does not accept API keys; use an access token".to_owned(),
            AuthError::IdpUnavailable(_) => "the identity provider could not be reached to verify the token; \
                 try again shortly, and tell your administrator if it persists"
                .to_owned(),
            AuthError::StoreUnavailable(_) => "the gateway could not check the credential right now; \
                 try again shortly, and tell your administrator if it persists"
                .to_owned(),
        }
    }

    /// A short stable label for metrics and audit rows.
    pub fn label(&self) -> &'static str {
        match self {
            AuthError::Malformed => "malformed",
            AuthError::UnknownIssuer => "unknown_issuer",
            AuthError::AlgorithmNotAllowed(_) => "algorithm_not_allowed",
            AuthError::UnknownKey => "unknown_key",
            AuthError::BadSignature => "bad_signature",
            AuthError::Expired => "expired",
            AuthError::NotYetValid => "not_yet_valid",
            AuthError::WrongIssuer => "wrong_issuer",
            AuthError::WrongAudience => "wrong_audience",
            AuthError::MissingClaim(_) => "missing_claim",
            AuthError::Revoked => "revoked",
            AuthError::ApiKeyInvalid => "api_key_invalid",
            AuthError::ApiKeyExpired => "api_key_expired",
            AuthError::ApiKeysDisabled => "api_keys_disabled",
            AuthError::IdpUnavailable(_) => "idp_unavailable",
            AuthError::StoreUnavailable(_) => "store_unavailable",
        }
    }
}

/// The credential store could not answer (database down, timeout, ...).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("credential store unavailable: {0}")]
pub struct StoreUnavailable(pub String);

impl From<StoreUnavailable> for AuthError {
    fn from(e: StoreUnavailable) -> Self {
        AuthError::StoreUnavailable(e.0)
    }
}

/// A problem setting up identity: bad settings, an unusable key file, an HTTP client that
/// cannot be built, or an invalid request to the built-in issuer.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// A setting is invalid; the message names it.
    #[error("invalid identity settings: {0}")]
    Config(String),
    /// The built-in issuer's key file could not be read or written.
    #[error("built-in issuer key file {path}: {source}")]
    KeyFile {
        /// The key file.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The key file exists but holds no usable Ed25519 key, or has unsafe permissions.
    #[error("built-in issuer key file {path}: {message}")]
    BadKey {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it and what to do.
        message: String,
    },
    /// A cryptographic operation failed unexpectedly.
    #[error("cryptographic failure: {0}")]
    Crypto(String),
    /// The HTTP client for discovery and JWKS could not be built.
    #[error("HTTP client: {0}")]
    Http(String),
    /// A token request was invalid (empty name, zero lifetime, ...).
    #[error("invalid token request: {0}")]
    InvalidRequest(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<AuthError> {
        vec![
            AuthError::Malformed,
            AuthError::UnknownIssuer,
            AuthError::AlgorithmNotAllowed("HS256".into()),
            AuthError::UnknownKey,
            AuthError::BadSignature,
            AuthError::Expired,
            AuthError::NotYetValid,
            AuthError::WrongIssuer,
            AuthError::WrongAudience,
            AuthError::MissingClaim("sub"),
            AuthError::Revoked,
            AuthError::ApiKeyInvalid,
            AuthError::ApiKeyExpired,
            AuthError::ApiKeysDisabled,
            AuthError::IdpUnavailable("connect to http://10.0.0.1/jwks refused".into()),
            AuthError::StoreUnavailable("database is locked".into()),
        ]
    }

    #[test]
    fn sqlstates_split_bad_credentials_from_outages() {
        for e in all() {
            let expected = match e {
                AuthError::IdpUnavailable(_) | AuthError::StoreUnavailable(_) => "28000",
                _ => "28P01",
            };
            assert_eq!(e.sqlstate(), expected, "{e:?}");
        }
    }

    #[test]
    fn labels_are_unique_and_reasons_hide_internals() {
        let errors = all();
        let mut labels: Vec<_> = errors.iter().map(AuthError::label).collect();
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), errors.len());
        for e in &errors {
            let reason = e.reason();
            assert!(!reason.contains("10.0.0.1"), "{reason}");
            assert!(!reason.contains("database is locked"), "{reason}");
            assert!(reason.len() > 20);
        }
    }
}
