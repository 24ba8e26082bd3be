//! A real OpenID Provider for tests: `tests/oidc/server.mjs` (npm `oidc-provider`) run
//! under Node, plus its test-only `/__admin/` endpoints (key rotation, token minting,
//! device-flow approval). See `tests/oidc/README.md` for the server side.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, ensure, Context, Result};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{json, Value};
use tempfile::TempDir;
use tokio::process::Command;

use crate::process::LoggedProcess;
use crate::workspace_root;

/// How long Node may take to print `READY` (first start after `npm ci` is the slow one).
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// Launch attempts before giving up.
const READY_ATTEMPTS: u32 = 3;

/// Options for [`OidcProvider::start_with`].
#[derive(Debug, Clone, Default)]
pub struct OidcOptions {
    /// Port to listen on; `0` lets the server pick one (no race with other tests).
    pub port: u16,
    /// Private JWKS file to load (or create) and keep rotations in. Default: a file in a
    /// temporary directory owned by the provider, so [`OidcProvider::restart`] keeps keys.
    pub keys_file: Option<PathBuf>,
    /// Lifetime of issued access tokens in seconds (server default: 600).
    pub token_ttl_secs: Option<u64>,
}

/// Which keys the provider signs with and publishes.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct KeyInfo {
    /// The kid of the key that signs tokens now (first in the JWKS).
    pub signing_kid: String,
    /// The kids published in the JWKS, newest first.
    pub published_kids: Vec<String>,
    /// The kid of the key behind [`OidcProvider::sign_unpublished`]; never in the JWKS.
    pub unpublished_kid: String,
}

/// A running test OIDC provider on 127.0.0.1; the Node process is killed on drop.
pub struct OidcProvider {
    process: Option<LoggedProcess>,
    issuer: String,
    port: u16,
    keys_file: PathBuf,
    options: OidcOptions,
    http: reqwest::Client,
    /// Holds the default keys file; removed on drop.
    _dir: TempDir,
}

impl std::fmt::Debug for OidcProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcProvider")
            .field("issuer", &self.issuer)
            .field("running", &self.process.is_some())
            .finish_non_exhaustive()
    }
}

impl OidcProvider {
    /// The `aud` of access tokens (the resource indicator the provider serves).
    pub const AUDIENCE: &'static str = "urn:warden";
    /// The confidential client allowed the `client_credentials` grant.
    pub const CLIENT_ID: &'static str = "warden-test";
    /// Secret of [`Self::CLIENT_ID`] (a test fixture, not a secret worth protecting).
    pub const CLIENT_SECRET: &'static str = "warden-test-secret";
    /// The public client allowed the device authorization grant (and refresh tokens).
    pub const CLI_CLIENT_ID: &'static str = "warden-cli";

    /// Starts the provider on a port of its choosing with default options.
    pub async fn start() -> Result<Self> {
        Self::start_with(OidcOptions::default()).await
    }

    /// Starts the provider with `options`, installing its npm dependencies first if needed.
    pub async fn start_with(options: OidcOptions) -> Result<Self> {
        let dir = oidc_dir();
        ensure_node_modules(&dir).await?;
        let tmp = tempfile::Builder::new().prefix("warden-oidc-").tempdir()?;
        let keys_file = options
            .keys_file
            .clone()
            .unwrap_or_else(|| tmp.path().join("keys.json"));
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()?;
        let mut provider = Self {
            process: None,
            issuer: String::new(),
            port: options.port,
            keys_file,
            options,
            http,
            _dir: tmp,
        };
        provider.launch().await?;
        Ok(provider)
    }

    async fn launch(&mut self) -> Result<()> {
        let dir = oidc_dir();
        let command = || {
            let mut cmd = Command::new(node_binary());
            cmd.current_dir(&dir)
                .arg("server.mjs")
                .arg("--port")
                .arg(self.port.to_string())
                .arg("--keys")
                .arg(&self.keys_file);
            if let Some(ttl) = self.options.token_ttl_secs {
                cmd.env("WARDEN_OIDC_TOKEN_TTL", ttl.to_string());
            }
            cmd
        };
        // Node has been seen, rarely and only on a loaded machine, to start and never reach
        // `listen`; a fresh process then starts at once. So: a bounded wait, then a retry.
        let mut attempt = 1;
        let (process, line) = loop {
            let mut process = LoggedProcess::spawn(command())?;
            match process.wait_for_line("READY ", READY_TIMEOUT).await {
                Ok(line) => break (process, line),
                Err(e) if attempt < READY_ATTEMPTS => {
                    eprintln!("oidc provider not ready (attempt {attempt}), restarting: {e:#}");
                    process.kill().await.ok();
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        };
        let issuer = line
            .split_once("READY ")
            .map(|(_, issuer)| issuer.trim().to_owned())
            .context("READY line without issuer")?;
        let port = issuer
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse::<u16>().ok())
            .with_context(|| format!("no port in issuer {issuer:?}"))?;
        self.issuer = issuer;
        self.port = port;
        self.process = Some(process);
        Ok(())
    }

    /// Stops the provider (to simulate an outage); [`Self::restart`] brings it back.
    pub async fn stop(&mut self) -> Result<()> {
        if let Some(mut p) = self.process.take() {
            p.kill().await?;
        }
        Ok(())
    }

    /// Restarts the provider on the same port with the same keys (the same issuer).
    /// In-memory state (device codes, sessions, user groups) does not survive.
    pub async fn restart(&mut self) -> Result<()> {
        self.stop().await?;
        self.launch().await
    }

    /// The issuer URL, `http://127.0.0.1:PORT` (no trailing slash).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The port the provider listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The JWKS URL.
    pub fn jwks_uri(&self) -> String {
        format!("{}/jwks", self.issuer)
    }

    /// The token endpoint URL.
    pub fn token_endpoint(&self) -> String {
        format!("{}/token", self.issuer)
    }

    /// The device authorization endpoint URL.
    pub fn device_authorization_endpoint(&self) -> String {
        format!("{}/device/auth", self.issuer)
    }

    /// The private JWKS file the provider loads its keys from and writes rotations to.
    pub fn keys_file(&self) -> &Path {
        &self.keys_file
    }

    /// Everything the provider printed so far.
    pub fn output(&self) -> String {
        self.process
            .as_ref()
            .map(LoggedProcess::output)
            .unwrap_or_default()
    }

    /// Fetches the published JWKS.
    pub async fn jwks(&self) -> Result<Value> {
        let resp = self.http.get(self.jwks_uri()).send().await?;
        ensure!(resp.status().is_success(), "GET jwks: {}", resp.status());
        Ok(resp.json().await?)
    }

    /// Gets a real `client_credentials` access token (RS256 JWT, `aud` = [`Self::AUDIENCE`],
    /// `sub` = [`Self::CLIENT_ID`]) whose `groups` claim is `groups`.
    pub async fn client_credentials_token(&self, groups: &[&str]) -> Result<String> {
        self.token_with_scope(groups.iter().map(|g| format!("groups:{g}")))
            .await
    }

    /// Like [`Self::client_credentials_token`] with the subject set to `sub`, so tests can
    /// have several machine identities.
    pub async fn client_credentials_token_for(&self, sub: &str, groups: &[&str]) -> Result<String> {
        let scopes = std::iter::once(format!("sub:{sub}"))
            .chain(groups.iter().map(|g| format!("groups:{g}")));
        self.token_with_scope(scopes).await
    }

    async fn token_with_scope(&self, scopes: impl Iterator<Item = String>) -> Result<String> {
        let scope = scopes.collect::<Vec<_>>().join(" ");
        let mut form = vec![
            ("grant_type", "client_credentials".to_owned()),
            ("resource", Self::AUDIENCE.to_owned()),
        ];
        if !scope.is_empty() {
            form.push(("scope", scope));
        }
        let resp = self
            .http
            .post(self.token_endpoint())
            .basic_auth(Self::CLIENT_ID, Some(Self::CLIENT_SECRET))
            .form(&form)
            .send()
            .await?;
        let status = resp.status();
        let body: Value = resp.json().await?;
        ensure!(
            status.is_success(),
            "token endpoint answered {status}: {body}"
        );
        body.get("access_token")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("token response without access_token"))
    }

    /// Claims that the gateway should accept: this issuer, the audience, `sub`, `groups`,
    /// `iat` now and `exp` in five minutes. Modify them to craft invalid tokens.
    pub fn valid_claims(&self, sub: &str, groups: &[&str]) -> Value {
        let now = unix_now();
        json!({
            "iss": self.issuer,
            "aud": Self::AUDIENCE,
            "sub": sub,
            "groups": groups,
            "iat": now,
            "exp": now + 300,
            "jti": format!("testkit-{now}-{}", std::process::id()),
        })
    }

    /// Signs `claims` verbatim with the current signing key. `header` is merged over the
    /// default `{"alg":"RS256","typ":"JWT","kid":<current>}`; a `null` value removes a
    /// header. `alg` may be `RS256/384/512`, `PS256/384/512`, `HS256/384/512` (keyed with
    /// the public key's PEM: algorithm confusion) or `none`.
    pub async fn sign(&self, header: Value, claims: Value) -> Result<String> {
        self.signed("/sign", header, claims).await
    }

    /// Like [`Self::sign`] but with a key whose kid is not (and never will be) in the JWKS.
    pub async fn sign_unpublished(&self, header: Value, claims: Value) -> Result<String> {
        self.signed("/sign-unpublished", header, claims).await
    }

    async fn signed(&self, route: &str, header: Value, claims: Value) -> Result<String> {
        let header = if header.is_null() { json!({}) } else { header };
        let out = self
            .admin(route, json!({ "header": header, "claims": claims }))
            .await?;
        out.get("token")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("{route}: no token in answer"))
    }

    /// Rotates keys: a new RS256 key signs from now on; the JWKS publishes [new, previous].
    pub async fn rotate(&self) -> Result<KeyInfo> {
        Ok(serde_json::from_value(
            self.admin("/rotate", json!({})).await?,
        )?)
    }

    /// The current key state.
    pub async fn keys(&self) -> Result<KeyInfo> {
        let resp = self
            .http
            .get(format!("{}/__admin/keys", self.issuer))
            .send()
            .await?;
        ensure!(
            resp.status().is_success(),
            "GET /__admin/keys: {}",
            resp.status()
        );
        Ok(resp.json().await?)
    }

    /// Sets the `groups` claim of tokens issued to end-user `user` (device flow).
    pub async fn set_user_groups(&self, user: &str, groups: &[&str]) -> Result<()> {
        self.admin("/users", json!({ user: groups }))
            .await
            .map(drop)
    }

    /// Completes a pending device authorization as end-user `login`, by driving the
    /// provider's own verification, login and consent pages.
    pub async fn approve_device(&self, user_code: &str, login: &str) -> Result<()> {
        self.admin(
            "/device/approve",
            json!({ "user_code": user_code, "login": login }),
        )
        .await
        .map(drop)
    }

    /// Aborts a pending device authorization as end-user `login` (the CLI then gets
    /// `access_denied`).
    pub async fn deny_device(&self, user_code: &str, login: &str) -> Result<()> {
        self.admin(
            "/device/deny",
            json!({ "user_code": user_code, "login": login }),
        )
        .await
        .map(drop)
    }

    async fn admin(&self, route: &str, body: Value) -> Result<Value> {
        let resp = self
            .http
            .post(format!("{}/__admin{route}", self.issuer))
            .json(&body)
            .send()
            .await
            .with_context(|| format!("POST /__admin{route}"))?;
        let status = resp.status();
        let body: Value = resp.json().await?;
        if !status.is_success() {
            bail!("POST /__admin{route} answered {status}: {body}");
        }
        Ok(body)
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        // LoggedProcess kills on drop; take it explicitly so the order is clear: the
        // process goes before its keys directory.
        drop(self.process.take());
    }
}

/// Splits a compact JWS and decodes its header and payload, without verifying anything.
pub fn decode_jwt_unverified(token: &str) -> Result<(Value, Value)> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(_sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        bail!("not a compact JWS (expected three dot-separated parts)");
    };
    let decode = |part: &str, what: &str| -> Result<Value> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .with_context(|| format!("JWT {what} is not base64url"))?;
        serde_json::from_slice(&bytes).with_context(|| format!("JWT {what} is not JSON"))
    };
    Ok((decode(header, "header")?, decode(payload, "payload")?))
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn oidc_dir() -> PathBuf {
    workspace_root().join("tests").join("oidc")
}

fn node_binary() -> String {
    std::env::var("WARDEN_TEST_NODE").unwrap_or_else(|_| "node".to_owned())
}

/// Runs `npm ci` once if `node_modules` is missing. Parallel tests (threads or processes)
/// serialise on a `flock(1)` lock and re-check inside it, so only the first one installs.
async fn ensure_node_modules(dir: &Path) -> Result<()> {
    let marker = dir.join("node_modules/oidc-provider/package.json");
    if marker.is_file() {
        return Ok(());
    }
    let lock = std::env::temp_dir().join("warden-testkit-npm-ci.lock");
    let out = Command::new("flock")
        .arg(&lock)
        .arg("sh")
        .arg("-c")
        .arg("test -f node_modules/oidc-provider/package.json || npm ci --no-audit --no-fund")
        .current_dir(dir)
        .output()
        .await
        .context("running flock + npm ci (are util-linux and npm installed?)")?;
    ensure!(
        out.status.success() && marker.is_file(),
        "npm ci in {} failed ({}):\n{}{}",
        dir.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_rejects_malformed_tokens() {
        for bad in [
            "",
            "abc",
            "a.b",
            "a.b.c.d",
            "!!!.e30.sig",
            "e30.!!!.sig",
            "bm90IGpzb24.e30.sig",
        ] {
            assert!(decode_jwt_unverified(bad).is_err(), "{bad:?} decoded");
        }
    }

    #[test]
    fn decode_reads_header_and_payload() -> Result<()> {
        // {"alg":"none"} . {"sub":"x"} .
        let (h, p) = decode_jwt_unverified("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.")?;
        assert_eq!(h, json!({"alg": "none"}));
        assert_eq!(p, json!({"sub": "x"}));
        Ok(())
    }
}
