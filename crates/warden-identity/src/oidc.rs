//! OIDC issuers: settings, discovery and the JWKS cache.
//!
//! Nothing is fetched at startup, so the gateway starts while the IdP is down; the first
//! token triggers discovery and the JWKS fetch. Fetches are single-flight per issuer (one
//! `tokio::sync::Mutex` held across the fetch; callers that waited reuse its result), a
//! JWKS refetch for an unknown `kid` happens at most once per `jwks_min_refresh`, and keys
//! older than `jwks_max_age` are refreshed. While no keys were ever fetched, every new
//! attempt retries, and authentication fails closed with `IdpUnavailable`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::error::AuthError;
use crate::jwt::{loggable, parse_allow_list, Alg};
use crate::keyset::{KeySet, Selection, VerifyKey};

/// Largest discovery document read.
const MAX_DISCOVERY_BYTES: usize = 256 * 1024;
/// Largest JWKS document read.
const MAX_JWKS_BYTES: usize = 1024 * 1024;

/// Settings of one trusted OIDC issuer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcSettings {
    /// The issuer URL; a token's `iss` must equal it exactly.
    pub issuer: String,
    /// Accepted audiences; a token's `aud` must contain one of them. Must not be empty.
    pub audiences: Vec<String>,
    /// Claim holding the groups; a dotted path (`realm_access.roles`) walks nested objects.
    pub groups_claim: String,
    /// Allowed JWS algorithms. HMAC (`HS*`) and `none` are refused at construction.
    pub algorithms: Vec<String>,
    /// Clock-skew tolerance for `exp`, `nbf` and `iat`.
    pub leeway: Duration,
    /// Minimum time between two JWKS fetches triggered by unknown `kid`s or staleness.
    pub jwks_min_refresh: Duration,
    /// Keys older than this are refetched before use.
    pub jwks_max_age: Duration,
    /// Discovery document URL; default `{issuer}/.well-known/openid-configuration`.
    pub discovery_url: Option<String>,
    /// Timeout of each discovery or JWKS request.
    pub http_timeout: Duration,
}

/// Every field at its default; `issuer` and `audiences` are empty and must be set.
impl Default for OidcSettings {
    fn default() -> Self {
        OidcSettings::new(String::new(), Vec::new())
    }
}

impl OidcSettings {
    /// The algorithms allowed by default: every asymmetric one Warden supports.
    pub const DEFAULT_ALGORITHMS: [&'static str; 9] = [
        "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
    ];

    /// Settings for `issuer` and `audiences` with every other field at its default:
    /// groups from `groups`, the default algorithms, 30 s leeway, JWKS refetch at most every
    /// 10 s and at least every hour, discovery at the well-known URL, 10 s HTTP timeout.
    pub fn new(issuer: impl Into<String>, audiences: Vec<String>) -> Self {
        OidcSettings {
            issuer: issuer.into(),
            audiences,
            groups_claim: "groups".to_owned(),
            algorithms: Self::DEFAULT_ALGORITHMS
                .iter()
                .map(|a| (*a).to_owned())
                .collect(),
            leeway: Duration::from_secs(30),
            jwks_min_refresh: Duration::from_secs(10),
            jwks_max_age: Duration::from_secs(3600),
            discovery_url: None,
            http_timeout: Duration::from_secs(10),
        }
    }

    /// The discovery document's URL.
    pub fn discovery_url(&self) -> String {
        match &self.discovery_url {
            Some(url) => url.clone(),
            None => format!(
                "{}/.well-known/openid-configuration",
                self.issuer.trim_end_matches('/')
            ),
        }
    }
}

fn is_http_url(url: &str) -> bool {
    (url.starts_with("https://") || url.starts_with("http://"))
        && !url.contains(char::is_whitespace)
}

/// Keys as last fetched, readable without waiting for a fetch in progress.
struct Snapshot {
    keys: Arc<KeySet>,
    fetched_at: Instant,
}

/// Fetch state, guarded by the single-flight mutex.
#[derive(Default)]
struct FetchState {
    jwks_uri: Option<String>,
    keys: Option<Arc<KeySet>>,
    fetched_at: Option<Instant>,
    attempted_at: Option<Instant>,
    last_error: Option<String>,
}

/// One trusted OIDC issuer with its key cache.
pub(crate) struct OidcProvider {
    pub(crate) settings: OidcSettings,
    pub(crate) algorithms: Vec<Alg>,
    http: reqwest::Client,
    discovery_url: String,
    state: tokio::sync::Mutex<FetchState>,
    snapshot: RwLock<Option<Snapshot>>,
    /// Completed fetch attempts; lets a caller that waited for the mutex see that another
    /// caller fetched meanwhile.
    attempts: AtomicU64,
}

impl OidcProvider {
    pub(crate) fn new(settings: OidcSettings, http: reqwest::Client) -> Result<Self, String> {
        let issuer = &settings.issuer;
        if issuer.is_empty() {
            return Err("an OIDC issuer is empty".to_owned());
        }
        if !is_http_url(issuer) {
            return Err(format!("issuer {issuer}: must be an http(s) URL"));
        }
        if settings.audiences.is_empty() || settings.audiences.iter().any(String::is_empty) {
            return Err(format!(
                "issuer {issuer}: at least one non-empty audience is required"
            ));
        }
        if settings.groups_claim.is_empty() {
            return Err(format!("issuer {issuer}: `groups_claim` must not be empty"));
        }
        if settings.http_timeout.is_zero() {
            return Err(format!("issuer {issuer}: `http_timeout` must be positive"));
        }
        if settings.jwks_max_age.is_zero() {
            return Err(format!("issuer {issuer}: `jwks_max_age` must be positive"));
        }
        let discovery_url = settings.discovery_url();
        if !is_http_url(&discovery_url) {
            return Err(format!(
                "issuer {issuer}: discovery URL {discovery_url} is not an http(s) URL"
            ));
        }
        let algorithms = parse_allow_list(&settings.algorithms, issuer)?;
        Ok(OidcProvider {
            settings,
            algorithms,
            http,
            discovery_url,
            state: tokio::sync::Mutex::new(FetchState::default()),
            snapshot: RwLock::new(None),
            attempts: AtomicU64::new(0),
        })
    }

    fn issuer(&self) -> &str {
        &self.settings.issuer
    }

    /// The key for a token's `kid` and algorithm, fetching discovery and JWKS as needed.
    pub(crate) async fn key_for(
        &self,
        kid: Option<&str>,
        alg: Alg,
    ) -> Result<Arc<VerifyKey>, AuthError> {
        let seen_attempts = self.attempts.load(Ordering::Acquire);
        // Fast path: fresh keys that contain the kid; never waits for a running fetch.
        if let Some((keys, fetched_at)) = self.read_snapshot() {
            if fetched_at.elapsed() < self.settings.jwks_max_age {
                match keys.select(kid, alg) {
                    Selection::Found(key) => return Ok(key),
                    Selection::NotFound => {}
                    other => return Err(self.selection_error(other, kid)),
                }
            }
        }

        let mut state = self.state.lock().await;
        let fetched_meanwhile = self.attempts.load(Ordering::Acquire) != seen_attempts;
        let fresh = state
            .fetched_at
            .is_some_and(|t| t.elapsed() < self.settings.jwks_max_age);
        let may_refetch = state
            .attempted_at
            .is_none_or(|t| t.elapsed() >= self.settings.jwks_min_refresh);

        if let Some(keys) = state.keys.clone() {
            let selection = keys.select(kid, alg);
            let found = matches!(selection, Selection::Found(_));
            if (fresh && found) || fetched_meanwhile || !may_refetch {
                if !fresh && found {
                    tracing::debug!(issuer = %self.issuer(), "using stale JWKS; refetch is rate-limited");
                }
                return self.selected(selection, kid);
            }
            if !matches!(selection, Selection::NotFound | Selection::Found(_)) {
                return Err(self.selection_error(selection, kid));
            }
        } else if fetched_meanwhile {
            // Another caller just tried and failed; share its outcome instead of queueing
            // one more request behind a down IdP.
            let detail = state
                .last_error
                .clone()
                .unwrap_or_else(|| "JWKS not available".to_owned());
            return Err(AuthError::IdpUnavailable(detail));
        }

        match self.refresh(&mut state).await {
            Ok(keys) => self.selected(keys.select(kid, alg), kid),
            Err(detail) => match state.keys.as_ref().map(|k| k.select(kid, alg)) {
                // Keep serving a cached key while the IdP is briefly unreachable; tokens
                // signed with it were valid a moment ago and its removal cannot be seen.
                Some(Selection::Found(key)) => {
                    tracing::warn!(issuer = %self.issuer(), error = %detail, "JWKS refresh failed; using cached keys");
                    Ok(key)
                }
                _ => Err(AuthError::IdpUnavailable(detail)),
            },
        }
    }

    fn selected(
        &self,
        selection: Selection,
        kid: Option<&str>,
    ) -> Result<Arc<VerifyKey>, AuthError> {
        match selection {
            Selection::Found(key) => Ok(key),
            other => Err(self.selection_error(other, kid)),
        }
    }

    fn selection_error(&self, selection: Selection, kid: Option<&str>) -> AuthError {
        let why = match selection {
            Selection::NotFound => "no published key has this kid",
            Selection::Mismatch => "the key with this kid does not fit the token's algorithm",
            Selection::Ambiguous => "token has no kid and several published keys fit",
            Selection::Found(_) => "key found",
        };
        tracing::debug!(
            issuer = %self.issuer(),
            kid = %loggable(kid.unwrap_or(""), 64),
            why,
            "no usable signing key"
        );
        AuthError::UnknownKey
    }

    fn read_snapshot(&self) -> Option<(Arc<KeySet>, Instant)> {
        let guard = self
            .snapshot
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        guard.as_ref().map(|s| (Arc::clone(&s.keys), s.fetched_at))
    }

    /// Fetches discovery (if not yet known) and the JWKS. Called with the mutex held.
    async fn refresh(&self, state: &mut FetchState) -> Result<Arc<KeySet>, String> {
        let outcome = self.fetch(state).await;
        let now = Instant::now();
        state.attempted_at = Some(now);
        let result = match outcome {
            Ok(keys) => {
                let keys = Arc::new(keys);
                tracing::info!(issuer = %self.issuer(), keys = keys.len(), "fetched JWKS");
                state.keys = Some(Arc::clone(&keys));
                state.fetched_at = Some(now);
                state.last_error = None;
                let mut snapshot = self
                    .snapshot
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                *snapshot = Some(Snapshot {
                    keys: Arc::clone(&keys),
                    fetched_at: now,
                });
                Ok(keys)
            }
            Err(detail) => {
                tracing::warn!(issuer = %self.issuer(), error = %detail, "could not fetch signing keys");
                // Rediscover next time: the JWKS may have moved.
                state.jwks_uri = None;
                state.last_error = Some(detail.clone());
                Err(detail)
            }
        };
        self.attempts.fetch_add(1, Ordering::AcqRel);
        result
    }

    async fn fetch(&self, state: &mut FetchState) -> Result<KeySet, String> {
        let jwks_uri = match &state.jwks_uri {
            Some(uri) => uri.clone(),
            None => {
                let uri = self.discover().await?;
                state.jwks_uri = Some(uri.clone());
                uri
            }
        };
        let body = self.get(&jwks_uri, MAX_JWKS_BYTES).await?;
        KeySet::from_jwks(&body, self.issuer()).map_err(|e| format!("{jwks_uri}: {e}"))
    }

    async fn discover(&self) -> Result<String, String> {
        let url = &self.discovery_url;
        let body = self.get(url, MAX_DISCOVERY_BYTES).await?;
        let doc: Value =
            serde_json::from_slice(&body).map_err(|e| format!("{url}: not JSON: {e}"))?;
        // OIDC Discovery §4.3: the document's issuer must be identical to the configured
        // one, or a different party could hand out keys for it.
        match doc.get("issuer").and_then(Value::as_str) {
            Some(iss) if iss == self.issuer() => {}
            Some(iss) => {
                return Err(format!(
                    "{url}: discovery names issuer {:?}, expected {:?}",
                    loggable(iss, 200),
                    self.issuer()
                ))
            }
            None => return Err(format!("{url}: discovery document has no issuer")),
        }
        match doc.get("jwks_uri").and_then(Value::as_str) {
            Some(uri) if is_http_url(uri) => Ok(uri.to_owned()),
            Some(uri) => Err(format!(
                "{url}: jwks_uri {:?} is not an http(s) URL",
                loggable(uri, 200)
            )),
            None => Err(format!("{url}: discovery document has no jwks_uri")),
        }
    }

    /// GET `url`, reading at most `limit` bytes of a 2xx response.
    async fn get(&self, url: &str, limit: usize) -> Result<Vec<u8>, String> {
        let mut response = self
            .http
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .timeout(self.settings.http_timeout)
            .send()
            .await
            .map_err(|e| format!("{url}: {}", describe(&e)))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("{url}: HTTP {status}"));
        }
        if response
            .content_length()
            .is_some_and(|len| len > limit as u64)
        {
            return Err(format!("{url}: response larger than {limit} bytes"));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| format!("{url}: {}", describe(&e)))?
        {
            if body.len() + chunk.len() > limit {
                return Err(format!("{url}: response larger than {limit} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

/// An error with its chain of causes, so that logs say "connection refused", not only
/// "error sending request".
fn describe(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> reqwest::Client {
        reqwest::Client::new()
    }

    #[test]
    fn defaults() {
        let s = OidcSettings::new("https://idp.example/", vec!["urn:warden".into()]);
        assert_eq!(s.groups_claim, "groups");
        assert_eq!(s.leeway, Duration::from_secs(30));
        assert_eq!(s.jwks_min_refresh, Duration::from_secs(10));
        assert_eq!(s.jwks_max_age, Duration::from_secs(3600));
        assert_eq!(s.algorithms.len(), 9);
        assert_eq!(
            s.discovery_url(),
            "https://idp.example/.well-known/openid-configuration"
        );
    }

    #[test]
    fn construction_refuses_unsafe_settings() {
        let ok = OidcSettings::new("https://idp", vec!["aud".into()]);
        assert!(OidcProvider::new(ok.clone(), client()).is_ok());
        let mut cases = Vec::new();
        for algs in [vec!["HS256"], vec!["RS256", "none"], vec!["XX1"], vec![]] {
            let mut s = ok.clone();
            s.algorithms = algs.into_iter().map(str::to_owned).collect();
            cases.push(s);
        }
        let mut s = ok.clone();
        s.audiences.clear();
        cases.push(s);
        let mut s = ok.clone();
        s.audiences = vec![String::new()];
        cases.push(s);
        let mut s = ok.clone();
        s.issuer = "idp.example".into();
        cases.push(s);
        let mut s = ok.clone();
        s.discovery_url = Some("file:///etc/passwd".into());
        cases.push(s);
        let mut s = ok.clone();
        s.http_timeout = Duration::ZERO;
        cases.push(s);
        for case in cases {
            assert!(
                OidcProvider::new(case.clone(), client()).is_err(),
                "{case:?}"
            );
        }
    }
}
