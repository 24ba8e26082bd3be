//! What the people-facing commands share: which gateway, what it says about signing in
//! (`GET /api/v1/auth/config`), OIDC discovery and token requests, and the login cache.
//!
//! The cache holds one file per gateway under `$XDG_CONFIG_HOME/warden/tokens/` (or
//! `~/.config/warden/tokens/`): directory 0700, files created 0600 in one `open(2)` and
//! renamed into place, so a token is never readable by others, not even for a moment.
//! Tokens live in [`Secret`]s and are never printed.
//!
//! The OIDC client is written by hand over the workspace `reqwest` rather than with
//! `openidconnect`: that crate's HTTP integration is reqwest 0.12 (a second copy next to
//! our 0.13), and it brings a dozen crates
//! for ID-token verification the CLI has no use for (the gateway verifies access tokens).
//! Discovery, the device grant (RFC 8628), refresh and revocation are a few form POSTs.

use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use warden_types::Secret;

/// The default gateway when neither `--gateway` nor `$WARDEN_GATEWAY` says.
pub const DEFAULT_GATEWAY: &str = "http://127.0.0.1:8080";

/// Largest JSON document accepted from a gateway or an IdP.
const MAX_BODY: usize = 1 << 20;

/// Longest access or refresh token accepted: it must fit the gateway's password message.
const MAX_TOKEN_LEN: usize = 60_000;

/// Refresh an access token this long before it expires (at most half its lifetime).
const REFRESH_MARGIN: Duration = Duration::from_secs(60);

/// How long another process's refresh may hold the lock before it is considered dead.
const LOCK_STALE: Duration = Duration::from_secs(30);

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The gateway URL without a trailing slash: the flag, else `$WARDEN_GATEWAY` (clap fills
/// it in), else [`DEFAULT_GATEWAY`]. Only http(s) URLs are accepted.
pub fn gateway_url(flag: Option<&str>) -> anyhow::Result<String> {
    let raw = flag.unwrap_or(DEFAULT_GATEWAY).trim();
    let url = url::Url::parse(raw).with_context(|| format!("--gateway {raw:?} is not a URL"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        bail!("--gateway must be an http:// or https:// URL, not {raw:?}");
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// An HTTP client for the gateway and the IdP: bounded time, no redirects (an IdP that
/// redirects a token request is misconfigured or hostile).
pub fn http_client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .redirect(reqwest::redirect::Policy::none())
        .build()?)
}

/// A POST of `form` as `application/x-www-form-urlencoded` (written here rather than with
/// reqwest's optional `form` feature, which the workspace does not enable).
pub fn post_form(
    http: &reqwest::Client,
    url: &str,
    form: &[(&str, &str)],
) -> reqwest::RequestBuilder {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    http.post(url)
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .header(reqwest::header::ACCEPT, "application/json")
        .body(body)
}

/// Reads a JSON body of at most [`MAX_BODY`] bytes: (status, JSON or `Null` if not JSON).
pub async fn read_json(mut resp: reqwest::Response) -> anyhow::Result<(u16, Value)> {
    let status = resp.status().as_u16();
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.context("reading the response")? {
        if body.len() + chunk.len() > MAX_BODY {
            bail!("the response is larger than {MAX_BODY} bytes");
        }
        body.extend_from_slice(&chunk);
    }
    Ok((status, serde_json::from_slice(&body).unwrap_or(Value::Null)))
}

/// A string that is safe to print on a terminal: no control characters (a hostile server
/// must not be able to send escape sequences to the user's terminal), bounded length.
pub fn printable(what: &str, v: &str, max: usize) -> anyhow::Result<String> {
    if v.is_empty() || v.len() > max || v.chars().any(char::is_control) {
        bail!("the server sent an unusable {what} (empty, too long or with control characters)");
    }
    Ok(v.to_owned())
}

/// Text from a server for an error message: control characters dropped, cut short.
pub fn sanitize(v: &str) -> String {
    v.chars().filter(|c| !c.is_control()).take(300).collect()
}

/// Checks that `raw` is an https URL, or http on a loopback host (tests, local IdPs): a
/// token must not cross a network in clear.
pub fn endpoint_url(what: &str, raw: &str) -> anyhow::Result<String> {
    let url =
        url::Url::parse(raw).map_err(|_| anyhow!("the {what} {:?} is not a URL", sanitize(raw)))?;
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => bail!("the {what} {:?} has no host", sanitize(raw)),
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => bail!(
            "the {what} {:?} must use https (plain http only on loopback)",
            sanitize(raw)
        ),
    }
    Ok(raw.to_owned())
}

/// What the gateway's public `GET /api/v1/auth/config` says, validated.
#[derive(Debug, Clone, Default)]
pub struct AuthConfig {
    /// The OIDC issuer people sign in with, if any.
    pub issuer: Option<String>,
    /// The access tokens' audience (sent as the `resource` indicator).
    pub audience: Option<String>,
    /// The public client for the device flow.
    pub cli_client_id: Option<String>,
    /// The discovery document's URL when it is not the issuer's well-known one.
    pub discovery_url: Option<String>,
    /// The gateway's PostgreSQL listener, if it said (port 0 means it did not).
    pub postgres_listen: Option<String>,
}

/// Fetches and validates the gateway's auth configuration.
pub async fn fetch_auth_config(
    http: &reqwest::Client,
    gateway: &str,
) -> anyhow::Result<AuthConfig> {
    let url = format!("{gateway}/api/v1/auth/config");
    let resp = http.get(&url).send().await.with_context(|| {
        format!("cannot reach the gateway at {gateway} (is it running? see --gateway)")
    })?;
    let (status, body) = read_json(resp)
        .await
        .with_context(|| format!("GET {url}"))?;
    if status != 200 {
        bail!("GET {url} answered HTTP {status}");
    }
    let mut config =
        parse_auth_config(&body).with_context(|| format!("GET {url} gave an unusable answer"))?;
    // A gateway listening on every interface reports 0.0.0.0: reach it where its API is.
    if let Some(addr) = config
        .postgres_listen
        .as_deref()
        .and_then(|a| a.parse::<std::net::SocketAddr>().ok())
        .filter(|a| a.ip().is_unspecified())
    {
        let host = url::Url::parse(gateway)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_else(|| "127.0.0.1".into());
        config.postgres_listen = Some(format!("{host}:{}", addr.port()));
    }
    Ok(config)
}

fn opt_str<'a>(v: &'a Value, key: &str) -> anyhow::Result<Option<&'a str>> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.is_empty() => Ok(Some(s)),
        Some(_) => bail!("`{key}` must be a non-empty string or null"),
    }
}

/// Validates an auth-config document (exposed for unit tests).
pub fn parse_auth_config(body: &Value) -> anyhow::Result<AuthConfig> {
    if !body.is_object() {
        bail!("expected a JSON object");
    }
    let mut out = AuthConfig::default();
    match body.get("oidc") {
        None | Some(Value::Null) => {}
        Some(o) if o.is_object() => {
            if let Some(i) = opt_str(o, "issuer")? {
                out.issuer = Some(endpoint_url("issuer", i)?);
            }
            out.audience = opt_str(o, "audience")?
                .map(|a| printable("audience", a, 1000))
                .transpose()?;
            if let Some(d) = opt_str(o, "discovery_url")? {
                out.discovery_url = Some(endpoint_url("discovery_url", d)?);
            }
            out.cli_client_id = opt_str(o, "cli_client_id")?
                .map(|c| printable("cli_client_id", c, 200))
                .transpose()?;
        }
        Some(_) => bail!("`oidc` must be an object or null"),
    }
    if let Some(p) = opt_str(body, "postgres_listen")? {
        let addr: std::net::SocketAddr = p
            .parse()
            .map_err(|_| anyhow!("`postgres_listen` {:?} is not HOST:PORT", sanitize(p)))?;
        if addr.port() != 0 {
            out.postgres_listen = Some(addr.to_string());
        }
    }
    Ok(out)
}

/// The endpoints discovery gives for the flows the CLI uses.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// RFC 8628 device authorization endpoint.
    pub device_authorization: String,
    /// The token endpoint.
    pub token: String,
    /// RFC 7009 revocation endpoint, if advertised.
    pub revocation: Option<String>,
}

/// OpenID Connect discovery for `issuer` (at `discovery_url` if given, else the issuer's
/// well-known URL); checks the document names the same issuer.
pub async fn discover(
    http: &reqwest::Client,
    issuer: &str,
    discovery_url: Option<&str>,
) -> anyhow::Result<Endpoints> {
    let issuer = issuer.trim_end_matches('/');
    let url = match discovery_url {
        Some(u) => u.to_owned(),
        None => format!("{issuer}/.well-known/openid-configuration"),
    };
    let resp = http
        .get(&url)
        .send()
        .await
        .with_context(|| format!("cannot reach the identity provider at {issuer}"))?;
    let (status, doc) = read_json(resp).await?;
    if status != 200 || !doc.is_object() {
        bail!("discovery at {url} failed (HTTP {status}, or not a JSON object)");
    }
    // Mix-up protection: the document must be about the issuer we asked.
    let named = doc.get("issuer").and_then(Value::as_str).unwrap_or("");
    if named.trim_end_matches('/') != issuer {
        bail!(
            "discovery at {url} names issuer {:?}, not {issuer:?}",
            sanitize(named)
        );
    }
    let endpoint = |key: &str| -> anyhow::Result<Option<String>> {
        opt_str(&doc, key)
            .map_err(|e| anyhow!("discovery at {url}: {e}"))?
            .map(|u| endpoint_url(key, u))
            .transpose()
    };
    Ok(Endpoints {
        device_authorization: endpoint("device_authorization_endpoint")?.ok_or_else(|| {
            anyhow!("the identity provider at {issuer} does not offer the device flow (no device_authorization_endpoint)")
        })?,
        token: endpoint("token_endpoint")?
            .ok_or_else(|| anyhow!("discovery at {url} has no token_endpoint"))?,
        revocation: endpoint("revocation_endpoint")?,
    })
}

/// A successful token response, validated.
pub struct Tokens {
    /// The bearer access token.
    pub access: Secret,
    /// The refresh token, if the IdP issued one.
    pub refresh: Option<Secret>,
    /// When the access token expires (Unix seconds).
    pub expires_at: u64,
    /// Its lifetime in seconds as issued.
    pub lifetime: u64,
}

/// An OAuth error answer (`error`, `error_description`).
#[derive(Debug)]
pub struct OAuthError {
    /// The error code (sanitized).
    pub code: String,
    /// The description, if any (sanitized).
    pub description: Option<String>,
}

impl std::fmt::Display for OAuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.description {
            Some(d) => write!(f, "{} ({d})", self.code),
            None => f.write_str(&self.code),
        }
    }
}

/// The outcome of a token request.
pub enum TokenAnswer {
    /// Tokens were issued.
    Issued(Tokens),
    /// The IdP answered with an OAuth error.
    Error(OAuthError),
}

/// POSTs a form to a token endpoint and validates the answer.
pub async fn token_request(
    http: &reqwest::Client,
    endpoint: &str,
    form: &[(&str, &str)],
) -> anyhow::Result<TokenAnswer> {
    let resp = post_form(http, endpoint, form)
        .send()
        .await
        .with_context(|| format!("cannot reach the token endpoint {endpoint}"))?;
    let (status, body) = read_json(resp).await?;
    if let Some(code) = body.get("error").and_then(Value::as_str) {
        return Ok(TokenAnswer::Error(OAuthError {
            code: sanitize(code),
            description: body
                .get("error_description")
                .and_then(Value::as_str)
                .map(sanitize),
        }));
    }
    if status != 200 {
        bail!("the token endpoint answered HTTP {status} without an OAuth error");
    }
    parse_tokens(&body).map(TokenAnswer::Issued)
}

/// Validates a token response (exposed for unit tests).
pub fn parse_tokens(body: &Value) -> anyhow::Result<Tokens> {
    let token = |key: &str| -> anyhow::Result<Option<Secret>> {
        match body.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s))
                if !s.is_empty()
                    && s.len() <= MAX_TOKEN_LEN
                    && s.bytes().all(|b| b.is_ascii_graphic()) =>
            {
                Ok(Some(Secret::new(s.as_str())))
            }
            Some(_) => bail!("the token response has an unusable `{key}`"),
        }
    };
    let access =
        token("access_token")?.ok_or_else(|| anyhow!("the token response has no access_token"))?;
    let refresh = token("refresh_token")?;
    match body.get("token_type").and_then(Value::as_str) {
        Some(t) if t.eq_ignore_ascii_case("bearer") => {}
        _ => bail!("the token response is not a Bearer token"),
    }
    let now = now();
    // `expires_in` is RECOMMENDED; without it, the JWT's own `exp` (if any), else 5 minutes.
    let lifetime = match body.get("expires_in") {
        Some(v) => v
            .as_u64()
            .filter(|s| (1..=366 * 86_400).contains(s))
            .ok_or_else(|| anyhow!("the token response has an unusable `expires_in`"))?,
        None => jwt_claims(access.expose())
            .and_then(|c| c.get("exp").and_then(Value::as_u64))
            .map(|exp| exp.saturating_sub(now).max(1))
            .unwrap_or(300),
    };
    Ok(Tokens {
        access,
        refresh,
        expires_at: now + lifetime,
        lifetime,
    })
}

/// The claims of a JWT, decoded without checking anything (display only: the subject).
pub fn jwt_claims(token: &str) -> Option<Value> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

// ---------------------------------------------------------------------------------------
// The login cache.

/// One gateway's cached login. Serialized to the cache file; never printed.
#[derive(Serialize, Deserialize)]
pub struct CachedLogin {
    /// The gateway this login is for (the cache key).
    pub gateway: String,
    /// The issuer the tokens come from.
    pub issuer: String,
    /// The public client the tokens were issued to.
    pub client_id: String,
    /// The resource indicator asked for, if any.
    #[serde(default)]
    pub audience: Option<String>,
    /// Where to refresh.
    pub token_endpoint: String,
    /// Where to revoke on logout, if advertised.
    #[serde(default)]
    pub revocation_endpoint: Option<String>,
    /// The signed-in subject (from the token, for messages).
    #[serde(default)]
    pub subject: Option<String>,
    /// The gateway's PostgreSQL listener as it reported it at login, if it did.
    #[serde(default)]
    pub postgres_listen: Option<String>,
    /// The access token.
    pub access_token: String,
    /// The refresh token, if any.
    #[serde(default)]
    pub refresh_token: Option<String>,
    /// When the access token expires (Unix seconds).
    pub expires_at: u64,
    /// Its lifetime as issued, seconds.
    pub lifetime: u64,
}

impl std::fmt::Debug for CachedLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedLogin")
            .field("gateway", &self.gateway)
            .field("issuer", &self.issuer)
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

impl CachedLogin {
    /// True when the access token should be refreshed before use.
    fn needs_refresh(&self) -> bool {
        let margin = REFRESH_MARGIN.as_secs().min(self.lifetime / 2);
        now() + margin >= self.expires_at
    }

    /// Stores freshly issued tokens (a refresh token not rotated by the IdP is kept).
    pub fn set_tokens(&mut self, t: Tokens) {
        self.access_token = t.access.expose().to_owned();
        if let Some(r) = t.refresh {
            self.refresh_token = Some(r.expose().to_owned());
        }
        self.expires_at = t.expires_at;
        self.lifetime = t.lifetime;
        if let Some(sub) = jwt_claims(&self.access_token)
            .and_then(|c| c.get("sub").and_then(Value::as_str).map(sanitize))
        {
            self.subject = Some(sub);
        }
    }
}

/// `$XDG_CONFIG_HOME/warden`, else `$HOME/.config/warden`.
pub fn config_dir() -> anyhow::Result<PathBuf> {
    let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(x) => PathBuf::from(x),
        None => PathBuf::from(
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .ok_or_else(|| {
                    anyhow!("neither XDG_CONFIG_HOME nor HOME is set: nowhere to keep the login")
                })?,
        )
        .join(".config"),
    };
    Ok(base.join("warden"))
}

/// The cache file for `gateway`: its URL with every other character than `[A-Za-z0-9.-]`
/// replaced (the file also records the URL, which is checked on load).
pub fn cache_path(gateway: &str) -> anyhow::Result<PathBuf> {
    let name: String = gateway
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    Ok(config_dir()?.join("tokens").join(format!("{name}.json")))
}

/// Creates `dir` (and parents) with mode 0700, tightening it if it exists looser.
fn private_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    for d in [dir, dir.parent().unwrap_or(dir)] {
        let meta = std::fs::metadata(d)?;
        if meta.permissions().mode() & 0o077 != 0 {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o700))
                .with_context(|| format!("cannot make {} private", d.display()))?;
        }
    }
    Ok(())
}

/// Writes `login` to its cache file atomically: a new file opened with mode 0600 (so it is
/// never readable by others), synced, then renamed over the old one.
pub fn save(login: &CachedLogin) -> anyhow::Result<PathBuf> {
    let path = cache_path(&login.gateway)?;
    let dir = path.parent().ok_or_else(|| anyhow!("bad cache path"))?;
    private_dir(dir)?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    let write = || -> anyhow::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&serde_json::to_vec_pretty(login)?)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        Ok(())
    };
    if let Err(e) = write() {
        std::fs::remove_file(&tmp).ok();
        return Err(e.context(format!("cannot write the login cache {}", path.display())));
    }
    Ok(path)
}

/// The cached login for `gateway`, if any. A file that is unreadable by format, for another
/// gateway, or readable by others is refused.
pub fn load(gateway: &str) -> anyhow::Result<Option<CachedLogin>> {
    // Without a HOME there is no cache, so no login (not an error: `--token` may follow).
    let Ok(path) = cache_path(gateway) else {
        return Ok(None);
    };
    let text = match std::fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(anyhow!("cannot read {}: {e}", path.display())),
    };
    let mode = std::fs::metadata(&path)?.permissions().mode();
    if mode & 0o077 != 0 {
        bail!(
            "{} is readable by others (mode {:o}); delete it and run `warden login`",
            path.display(),
            mode & 0o777
        );
    }
    let login: CachedLogin = serde_json::from_slice(&text).map_err(|_| {
        anyhow!(
            "the login cache {} is damaged; run `warden login`",
            path.display()
        )
    })?;
    Ok((login.gateway == gateway).then_some(login))
}

/// Deletes the cached login for `gateway`; returns it if there was one.
pub fn remove(gateway: &str) -> anyhow::Result<Option<CachedLogin>> {
    let login = load(gateway).ok().flatten();
    let path = cache_path(gateway)?;
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(login),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(anyhow!("cannot delete {}: {e}", path.display())),
    }
}

/// Why no token could be had from the cache: each says what the person should do.
#[derive(Debug, thiserror::Error)]
pub enum LoginNeeded {
    /// Nothing cached for this gateway.
    #[error("you are not logged in to {0}: run `warden login --gateway {0}`")]
    NotLoggedIn(String),
    /// The access token expired and there is no refresh token, or the IdP refused it.
    #[error("your login to {gateway} has expired ({why}): run `warden login --gateway {gateway}`")]
    Expired {
        /// The gateway.
        gateway: String,
        /// What happened.
        why: String,
    },
    /// Anything else (cache unreadable, IdP unreachable).
    #[error("{0:#}")]
    Other(anyhow::Error),
}

/// A valid access token for `gateway` from the login cache, refreshed first when it is
/// close to expiry. Refreshes from several processes are serialized by a lock file, so a
/// rotated refresh token is never used twice.
pub async fn cached_token(gateway: &str) -> Result<(Secret, CachedLogin), LoginNeeded> {
    let load = || match load(gateway) {
        Ok(Some(l)) => Ok(l),
        Ok(None) => Err(LoginNeeded::NotLoggedIn(gateway.to_owned())),
        Err(e) => Err(LoginNeeded::Other(e)),
    };
    let login = load()?;
    if !login.needs_refresh() {
        return Ok((Secret::new(login.access_token.as_str()), login));
    }
    let lock = cache_path(gateway)
        .map_err(LoginNeeded::Other)?
        .with_extension("lock");
    let started = std::time::Instant::now();
    let _guard = loop {
        match LockFile::acquire(&lock) {
            Ok(Some(g)) => break g,
            Ok(None) if started.elapsed() < LOCK_STALE => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Ok(None) => {
                // A refresher died holding the lock: take it over.
                std::fs::remove_file(&lock).ok();
            }
            Err(e) => return Err(LoginNeeded::Other(e)),
        }
    };
    // Another process may have refreshed while we waited.
    let mut login = load()?;
    if !login.needs_refresh() {
        return Ok((Secret::new(login.access_token.as_str()), login));
    }
    let expired = |why: String| LoginNeeded::Expired {
        gateway: gateway.to_owned(),
        why,
    };
    let Some(refresh) = login.refresh_token.clone().map(Secret::new) else {
        return Err(expired("no refresh token".into()));
    };
    let http = http_client().map_err(LoginNeeded::Other)?;
    let mut form = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh.expose()),
        ("client_id", login.client_id.as_str()),
    ];
    if let Some(a) = &login.audience {
        form.push(("resource", a.as_str()));
    }
    match token_request(&http, &login.token_endpoint, &form).await {
        Ok(TokenAnswer::Issued(t)) => {
            login.set_tokens(t);
            save(&login).map_err(LoginNeeded::Other)?;
            Ok((Secret::new(login.access_token.as_str()), login))
        }
        Ok(TokenAnswer::Error(e)) => Err(expired(format!("the identity provider said {e}"))),
        Err(e) => Err(LoginNeeded::Other(e.context("cannot refresh the login"))),
    }
}

/// A lock file created with `O_EXCL`; removed on drop.
struct LockFile(PathBuf);

impl LockFile {
    /// `Ok(None)` when someone else holds it.
    fn acquire(path: &Path) -> anyhow::Result<Option<LockFile>> {
        if let Some(dir) = path.parent() {
            private_dir(dir)?;
        }
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(_) => Ok(Some(LockFile(path.to_owned()))),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(None),
            Err(e) => Err(anyhow!("cannot create {}: {e}", path.display())),
        }
    }
}

impl Drop for LockFile {
    fn drop(&mut self) {
        std::fs::remove_file(&self.0).ok();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn auth_config_is_validated() {
        let ok = parse_auth_config(&json!({
            "oidc": {"issuer": "http://127.0.0.1:4444", "audience": "urn:warden",
                     "cli_client_id": "warden-cli", "console_client_id": null, "scopes": []},
            "builtin": true, "postgres_listen": "127.0.0.1:15432"
        }))
        .unwrap();
        assert_eq!(ok.issuer.as_deref(), Some("http://127.0.0.1:4444"));
        assert_eq!(ok.cli_client_id.as_deref(), Some("warden-cli"));
        assert_eq!(ok.postgres_listen.as_deref(), Some("127.0.0.1:15432"));
        for bad in [
            json!([]),
            json!({"oidc": "x"}),
            json!({"oidc": {"issuer": 7}}),
            json!({"oidc": {"issuer": "http://idp.example.com"}}),
            json!({"oidc": {"issuer": "javascript:alert(1)"}}),
            json!({"oidc": {"cli_client_id": "a\u{1b}[2J"}}),
            json!({"postgres_listen": "nowhere"}),
        ] {
            assert!(parse_auth_config(&bad).is_err(), "{bad} accepted");
        }
        let zero = parse_auth_config(&json!({"postgres_listen": "127.0.0.1:0"})).unwrap();
        assert_eq!(zero.postgres_listen, None);
    }

    #[test]
    fn token_responses_are_validated() {
        let t = parse_tokens(&json!({"access_token": "abc", "token_type": "Bearer",
                                      "expires_in": 60, "refresh_token": "r"}))
        .unwrap();
        assert_eq!(t.access.expose(), "abc");
        assert_eq!(t.lifetime, 60);
        for bad in [
            json!({}),
            json!({"access_token": "", "token_type": "Bearer"}),
            json!({"access_token": "a b", "token_type": "Bearer"}),
            json!({"access_token": "abc", "token_type": "mac"}),
            json!({"access_token": "abc"}),
            json!({"access_token": 5, "token_type": "Bearer"}),
            json!({"access_token": "abc", "token_type": "Bearer", "expires_in": -5}),
            json!({"access_token": "abc", "token_type": "Bearer", "expires_in": "soon"}),
            json!({"access_token": "x".repeat(70_000), "token_type": "Bearer"}),
        ] {
            assert!(parse_tokens(&bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn endpoints_need_https_off_loopback() {
        assert!(endpoint_url("x", "https://idp.example.com/token").is_ok());
        assert!(endpoint_url("x", "http://127.0.0.1:9/token").is_ok());
        assert!(endpoint_url("x", "http://localhost:9/token").is_ok());
        assert!(endpoint_url("x", "http://idp.example.com/token").is_err());
        assert!(endpoint_url("x", "file:///etc/passwd").is_err());
    }

    #[test]
    fn debug_never_shows_tokens() {
        let login = CachedLogin {
            gateway: "g".into(),
            issuer: "i".into(),
            client_id: "c".into(),
            audience: None,
            token_endpoint: "t".into(),
            revocation_endpoint: None,
            subject: None,
            postgres_listen: None,
            access_token: "SECRET-ACCESS".into(),
            refresh_token: Some("SECRET-REFRESH".into()),
            expires_at: 0,
            lifetime: 0,
        };
        let d = format!("{login:?}");
        assert!(!d.contains("SECRET"), "{d}");
    }
}
