//! What identity needs from the store: API key records and token revocations. The store
//! crate implements [`CredentialStore`]; tests use an in-memory one.

use std::time::SystemTime;

use async_trait::async_trait;

pub use crate::error::StoreUnavailable;

/// A stored API key. Only the hash of its secret is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    /// The key id (the part between `wdk_` and the second `_`).
    pub id: String,
    /// The identity's name; becomes the subject.
    pub name: String,
    /// The identity's groups.
    pub groups: Vec<String>,
    /// Hex SHA-256 of the secret part.
    pub secret_hash: String,
    /// When the key stops working, if ever.
    pub expires_at: Option<SystemTime>,
    /// True once revoked.
    pub revoked: bool,
}

/// Lookups identity needs from the credential store.
#[async_trait]
pub trait CredentialStore: Send + Sync {
    /// The API key with this id, if any.
    async fn api_key(&self, key_id: &str) -> Result<Option<ApiKeyRecord>, StoreUnavailable>;
    /// True when the built-in token with this `jti` was revoked.
    async fn token_revoked(&self, jti: &str) -> Result<bool, StoreUnavailable>;
}
