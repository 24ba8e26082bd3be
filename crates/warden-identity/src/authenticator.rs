//! The one entry point: turn the credential from the PostgreSQL password field into an
//! [`Identity`], or an [`AuthError`].
//!
//! Routing: `wdk_…` is an API key; anything else is a JWT, routed by its unverified `iss`
//! to the built-in issuer or one of the OIDC issuers. From there every JWT takes the same
//! path: algorithm allow-list, key by `kid`, signature, registered claims, identity.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use warden_types::{CredentialKind, Identity};

use crate::apikey::{self, API_KEY_PREFIX};
use crate::builtin::BuiltinIssuer;
use crate::error::{AuthError, IdentityError};
use crate::jwt::{self, loggable, now_secs, Alg, ClaimRules, UnverifiedToken, MAX_CREDENTIAL_LEN};
use crate::keyset::{KeySet, Selection, VerifyKey};
use crate::oidc::{OidcProvider, OidcSettings};
use crate::store::CredentialStore;

/// Clock-skew tolerance for built-in tokens.
const BUILTIN_LEEWAY: Duration = Duration::from_secs(30);
/// The built-in issuer's groups claim.
const BUILTIN_GROUPS_CLAIM: &str = "groups";
/// The built-in issuer signs with EdDSA and nothing else.
const BUILTIN_ALGORITHMS: &[Alg] = &[Alg::EdDsa];

#[derive(Debug, Clone, Copy)]
enum Route {
    Builtin,
    Oidc(usize),
}

struct Builtin {
    issuer: BuiltinIssuer,
    keys: KeySet,
    audiences: Vec<String>,
}

/// Authenticates credentials against the configured issuers and the credential store.
pub struct Authenticator {
    /// Exact issuer → route.
    exact: HashMap<String, Route>,
    /// Issuer without trailing slashes → route, so that a near-miss `iss` is verified and
    /// then reported as `WrongIssuer` rather than as an unknown issuer.
    loose: HashMap<String, Route>,
    builtin: Option<Builtin>,
    oidc: Vec<OidcProvider>,
    store: Arc<dyn CredentialStore>,
    /// Whether `wdk_` API keys are accepted.
    api_keys: bool,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("builtin", &self.builtin.as_ref().map(|b| b.issuer.issuer()))
            .field(
                "oidc",
                &self
                    .oidc
                    .iter()
                    .map(|p| p.settings.issuer.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// What to log about an attempt; filled in as the credential is understood.
#[derive(Default)]
struct Attempt {
    kind: Option<CredentialKind>,
    issuer: Option<String>,
    kid: Option<String>,
    key_id: Option<String>,
}

fn loose_key(issuer: &str) -> &str {
    issuer.trim_end_matches('/')
}

impl Authenticator {
    /// Builds an authenticator. Fails on invalid settings (HMAC or `none` algorithms, no
    /// audience, duplicate issuers, ...). Performs no network I/O: discovery and JWKS are
    /// fetched on first use.
    pub fn new(
        oidc: Vec<OidcSettings>,
        builtin: Option<BuiltinIssuer>,
        store: Arc<dyn CredentialStore>,
    ) -> Result<Self, IdentityError> {
        // Select the aws-lc-rs backend explicitly so that verification never depends on
        // which jsonwebtoken features other crates happen to enable. Fails harmlessly when
        // a provider is already installed.
        let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();

        let mut exact = HashMap::new();
        let mut loose = HashMap::new();
        let mut add = |issuer: &str, route: Route| -> Result<(), IdentityError> {
            if exact.insert(issuer.to_owned(), route).is_some()
                || loose.insert(loose_key(issuer).to_owned(), route).is_some()
            {
                return Err(IdentityError::Config(format!(
                    "issuer {issuer} is configured more than once"
                )));
            }
            Ok(())
        };

        let builtin = match builtin {
            Some(issuer) => {
                add(issuer.issuer(), Route::Builtin)?;
                Some(Builtin {
                    keys: KeySet::single(issuer.verify_key()),
                    audiences: vec![issuer.audience().to_owned()],
                    issuer,
                })
            }
            None => None,
        };

        let mut providers = Vec::with_capacity(oidc.len());
        if !oidc.is_empty() {
            let http = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::limited(3))
                .user_agent(concat!("warden/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| IdentityError::Http(e.to_string()))?;
            for (index, settings) in oidc.into_iter().enumerate() {
                add(&settings.issuer, Route::Oidc(index))?;
                providers.push(
                    OidcProvider::new(settings, http.clone()).map_err(IdentityError::Config)?,
                );
            }
        }

        Ok(Authenticator {
            exact,
            loose,
            builtin,
            oidc: providers,
            store,
            api_keys: true,
        })
    }

    /// Refuses API keys (`identity.api_keys.enabled = false`).
    pub fn without_api_keys(mut self) -> Self {
        self.api_keys = false;
        self
    }

    /// The built-in issuer, when configured (to issue tokens and publish its JWKS).
    pub fn builtin(&self) -> Option<&BuiltinIssuer> {
        self.builtin.as_ref().map(|b| &b.issuer)
    }

    /// Authenticates the credential from the password field. Logs the outcome with issuer,
    /// kid and reason, never the credential.
    pub async fn authenticate(&self, credential: &str) -> Result<Identity, AuthError> {
        let mut attempt = Attempt::default();
        let result = self.check(credential.trim(), &mut attempt).await;
        let kind = attempt
            .kind
            .map(CredentialKind::as_str)
            .unwrap_or("unknown");
        let issuer = attempt.issuer.as_deref().unwrap_or("");
        let kid = attempt.kid.as_deref().unwrap_or("");
        let key_id = attempt.key_id.as_deref().unwrap_or("");
        match &result {
            Ok(identity) => tracing::debug!(
                kind,
                issuer,
                kid,
                key_id,
                subject = %identity.subject,
                "credential accepted"
            ),
            Err(e @ (AuthError::IdpUnavailable(_) | AuthError::StoreUnavailable(_))) => {
                tracing::warn!(kind, issuer, kid, key_id, reason = e.label(), error = %e, "credential could not be checked")
            }
            Err(e) => {
                tracing::info!(kind, issuer, kid, key_id, reason = e.label(), error = %e, "credential rejected")
            }
        }
        result
    }

    async fn check(&self, credential: &str, attempt: &mut Attempt) -> Result<Identity, AuthError> {
        if credential.is_empty() || credential.len() > MAX_CREDENTIAL_LEN {
            return Err(AuthError::Malformed);
        }
        if credential.starts_with(API_KEY_PREFIX) {
            attempt.kind = Some(CredentialKind::ApiKey);
            if !self.api_keys {
                return Err(AuthError::ApiKeysDisabled);
            }
            attempt.key_id = apikey::key_id(credential).map(str::to_owned);
            return apikey::authenticate(credential, self.store.as_ref()).await;
        }

        let token = UnverifiedToken::parse(credential)?;
        attempt.kid = token.kid.as_deref().map(|k| loggable(k, 64));
        let iss = token.issuer()?;
        attempt.issuer = Some(loggable(iss, 200));
        let route = self
            .exact
            .get(iss)
            .or_else(|| self.loose.get(loose_key(iss)))
            .copied()
            .ok_or(AuthError::UnknownIssuer)?;

        match route {
            Route::Builtin => {
                attempt.kind = Some(CredentialKind::Builtin);
                let builtin = self.builtin.as_ref().ok_or(AuthError::UnknownIssuer)?;
                let alg = token.allowed_alg(BUILTIN_ALGORITHMS)?;
                let key = match builtin.keys.select(token.kid.as_deref(), alg) {
                    Selection::Found(key) => key,
                    _ => return Err(AuthError::UnknownKey),
                };
                let rules = ClaimRules {
                    issuer: builtin.issuer.issuer(),
                    audiences: &builtin.audiences,
                    leeway: BUILTIN_LEEWAY,
                };
                let identity = verify(
                    &token,
                    alg,
                    &key,
                    &rules,
                    BUILTIN_GROUPS_CLAIM,
                    CredentialKind::Builtin,
                )?;
                let jti = identity
                    .token_id
                    .as_deref()
                    .ok_or(AuthError::MissingClaim("jti"))?;
                if self.store.token_revoked(jti).await? {
                    return Err(AuthError::Revoked);
                }
                Ok(identity)
            }
            Route::Oidc(index) => {
                attempt.kind = Some(CredentialKind::Oidc);
                let provider = self.oidc.get(index).ok_or(AuthError::UnknownIssuer)?;
                let alg = token.allowed_alg(&provider.algorithms)?;
                let key = provider.key_for(token.kid.as_deref(), alg).await?;
                let settings = &provider.settings;
                let rules = ClaimRules {
                    issuer: &settings.issuer,
                    audiences: &settings.audiences,
                    leeway: settings.leeway,
                };
                verify(
                    &token,
                    alg,
                    &key,
                    &rules,
                    &settings.groups_claim,
                    CredentialKind::Oidc,
                )
            }
        }
    }
}

/// Signature, then registered claims, then identity: the path every JWT takes.
fn verify(
    token: &UnverifiedToken<'_>,
    alg: Alg,
    key: &VerifyKey,
    rules: &ClaimRules<'_>,
    groups_claim: &str,
    kind: CredentialKind,
) -> Result<Identity, AuthError> {
    token.verify_signature(alg, key)?;
    let valid = jwt::validate_claims(&token.claims, rules, now_secs())?;
    Ok(jwt::identity(
        &token.claims,
        valid,
        rules.issuer,
        groups_claim,
        kind,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct NoStore;

    #[async_trait::async_trait]
    impl CredentialStore for NoStore {
        async fn api_key(
            &self,
            _: &str,
        ) -> Result<Option<crate::ApiKeyRecord>, crate::StoreUnavailable> {
            Ok(None)
        }
        async fn token_revoked(&self, _: &str) -> Result<bool, crate::StoreUnavailable> {
            Ok(false)
        }
    }

    fn assert_send<T: Send>(_: &T) {}
    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn shareable_across_tasks() {
        assert_send_sync::<Authenticator>();
        assert_send_sync::<BuiltinIssuer>();
        let auth = Authenticator::new(vec![], None, Arc::new(NoStore)).expect("valid");
        // The session engine awaits this inside spawned tasks.
        assert_send(&auth.authenticate("x"));
    }
}
