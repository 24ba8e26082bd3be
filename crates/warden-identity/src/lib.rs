//! Who is calling: OIDC access tokens, Warden's built-in issuer and API keys.
//!
//! [`Authenticator::authenticate`] takes the credential a client put in the PostgreSQL
//! password field and returns a [`warden_types::Identity`], or an [`AuthError`] that
//! carries its SQLSTATE and a message for the client.
//!
//! Modules: `authenticator` routes a credential; `jwt` parses and verifies tokens
//! (shared by every issuer); `keyset` reads JWKs; `oidc` does discovery and the JWKS
//! cache; `builtin` is the built-in issuer; `apikey` handles `wdk_…` keys; `store` is the
//! interface to the credential store.
#![forbid(unsafe_code)]

mod apikey;
mod authenticator;
mod builtin;
mod error;
mod jwt;
mod keyset;
mod oidc;
mod store;

pub use apikey::{generate_api_key, hash_secret, NewApiKey, API_KEY_ISSUER, API_KEY_PREFIX};
pub use authenticator::Authenticator;
pub use builtin::{BuiltinIssuer, BuiltinSettings, IssuedToken};
pub use error::{AuthError, IdentityError, StoreUnavailable};
pub use jwt::MAX_CREDENTIAL_LEN;
pub use oidc::OidcSettings;
pub use store::{ApiKeyRecord, CredentialStore};
