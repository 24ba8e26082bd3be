//! Warden's configuration: the TOML types, their defaults, and validation that reports
//! every problem with the file and the key it concerns.
//!
//! Loading is two steps: [`Config::from_toml`] (syntax and types, via serde with
//! `deny_unknown_fields`) and [`Config::validate`] (meaning: references, ranges, secrets that
//! must come from the environment or a file). [`Config::load`] does both.
#![forbid(unsafe_code)]

mod error;
mod target;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use warden_types::Secret;

pub use error::{ConfigError, ConfigErrors};
pub use target::TargetUrl;

/// The whole configuration file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Listeners, TLS and limits.
    #[serde(default)]
    pub gateway: GatewayConfig,
    /// Where identities, API keys and the audit trail are kept.
    #[serde(default)]
    pub store: StoreConfig,
    /// Who may call: OIDC issuers, the built-in issuer, API keys.
    #[serde(default)]
    pub identity: IdentityConfig,
    /// The targets clients may reach, by name.
    #[serde(default)]
    pub connections: Vec<ConnectionConfig>,
}

/// `[gateway]`: listeners, TLS and protocol limits.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// Directory for the SQLite store, the issuer key and the self-signed certificate.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// Address of the PostgreSQL listener.
    #[serde(default = "default_pg_listen")]
    pub postgres_listen: SocketAddr,
    /// Address of the HTTP listener (health, metrics; API and console later).
    #[serde(default = "default_http_listen")]
    pub http_listen: SocketAddr,
    /// PEM certificate chain for the PostgreSQL listener; self-signed when absent.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key matching `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// When clients must use TLS: `non_loopback` (default), `always` or `never`.
    #[serde(default)]
    pub require_tls: RequireTls,
    /// Largest protocol message accepted from a client or target, in bytes.
    #[serde(default = "default_max_message")]
    pub max_message_bytes: usize,
    /// Time a client has to finish the startup and authentication exchange.
    #[serde(default = "default_handshake_timeout", with = "humantime_serde")]
    pub handshake_timeout: Duration,
    /// Time allowed to connect and authenticate to a target.
    #[serde(default = "default_connect_timeout", with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Most client connections open at once; further clients get an error.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Entries in the statement-analysis cache.
    #[serde(default = "default_statement_cache")]
    pub statement_cache: usize,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            data_dir: default_data_dir(),
            postgres_listen: default_pg_listen(),
            http_listen: default_http_listen(),
            tls_cert: None,
            tls_key: None,
            require_tls: RequireTls::default(),
            max_message_bytes: default_max_message(),
            handshake_timeout: default_handshake_timeout(),
            connect_timeout: default_connect_timeout(),
            max_connections: default_max_connections(),
            statement_cache: default_statement_cache(),
        }
    }
}

/// When a PostgreSQL client must use TLS.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequireTls {
    /// Loopback clients may use plain TCP; all others must use TLS.
    #[default]
    NonLoopback,
    /// Every client must use TLS.
    Always,
    /// TLS is offered but never required (not for production).
    Never,
}

/// `[store]`: where Warden keeps its state.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// `sqlite://PATH` (default: `sqlite://<data_dir>/warden.db`).
    pub url: Option<String>,
}

/// `[identity]`: the ways a caller can prove who they are.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityConfig {
    /// OIDC issuers whose access tokens are accepted; several may be configured.
    #[serde(default)]
    pub oidc: Vec<OidcConfig>,
    /// Warden's own token issuer for machine identities.
    #[serde(default)]
    pub builtin: BuiltinConfig,
    /// Warden API keys (`wdk_…`).
    #[serde(default)]
    pub api_keys: ApiKeysConfig,
}

/// `[[identity.oidc]]`: one OIDC issuer.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// Issuer URL; must equal the `iss` claim and the discovery document's `issuer`.
    pub issuer: String,
    /// Accepted audience(s): a string or a list.
    pub audience: OneOrMany,
    /// Claim holding the caller's groups (dotted path allowed, e.g. `realm_access.roles`).
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
    /// Allowed signing algorithms; `none` and HS* are refused.
    #[serde(default)]
    pub algorithms: Option<Vec<String>>,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`.
    #[serde(default = "default_leeway", with = "humantime_serde")]
    pub leeway: Duration,
    /// Shortest interval between two JWKS refetches triggered by an unknown `kid`.
    #[serde(default = "default_jwks_min_refresh", with = "humantime_serde")]
    pub jwks_min_refresh: Duration,
    /// Age after which the JWKS is refetched anyway.
    #[serde(default = "default_jwks_max_age", with = "humantime_serde")]
    pub jwks_max_age: Duration,
    /// Discovery document URL, when not `<issuer>/.well-known/openid-configuration`.
    pub discovery_url: Option<String>,
}

/// A string or a list of strings.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum OneOrMany {
    /// A single value.
    One(String),
    /// Several values.
    Many(Vec<String>),
}

impl OneOrMany {
    /// The values as a list.
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

/// `[identity.builtin]`: Warden's own issuer (`warden tokens issue`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuiltinConfig {
    /// Whether tokens from the built-in issuer are accepted.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// The `iss` value of built-in tokens.
    #[serde(default = "default_builtin_issuer")]
    pub issuer: String,
    /// The `aud` value of built-in tokens.
    #[serde(default = "default_builtin_audience")]
    pub audience: String,
    /// Longest lifetime `warden tokens issue` will grant.
    #[serde(default = "default_builtin_max_ttl", with = "humantime_serde")]
    pub max_ttl: Duration,
}

impl Default for BuiltinConfig {
    fn default() -> Self {
        BuiltinConfig {
            enabled: true,
            issuer: default_builtin_issuer(),
            audience: default_builtin_audience(),
            max_ttl: default_builtin_max_ttl(),
        }
    }
}

/// `[identity.api_keys]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeysConfig {
    /// Whether API keys are accepted.
    #[serde(default = "yes")]
    pub enabled: bool,
}

impl Default for ApiKeysConfig {
    fn default() -> Self {
        ApiKeysConfig { enabled: true }
    }
}

/// `[[connections]]`: a target clients reach with `dbname=<name>`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionConfig {
    /// The name clients use as `dbname`.
    pub name: String,
    /// The target's protocol; only `postgres` for now.
    #[serde(default)]
    pub kind: ConnectionKind,
    /// `postgres://host:port/dbname`; must not contain a password.
    pub target: String,
    /// Groups allowed to open this connection.
    #[serde(default)]
    pub allow_groups: Vec<String>,
    /// How Warden logs in to the target: `static` (this issue) or `jit` (later).
    #[serde(default)]
    pub credentials: CredentialsMode,
    /// Target role used when no `[[connections.roles]]` rule matches.
    pub username: Option<String>,
    /// Environment variable holding the target password.
    pub password_env: Option<String>,
    /// File holding the target password.
    pub password_file: Option<PathBuf>,
    /// Group → target-role rules, first match wins.
    #[serde(default)]
    pub roles: Vec<RoleRule>,
    /// End a session idle this long (not yet enforced).
    #[serde(default, with = "humantime_serde")]
    pub idle_timeout: Option<Duration>,
    /// End a session open this long (not yet enforced).
    #[serde(default, with = "humantime_serde")]
    pub max_session: Option<Duration>,
}

/// `[[connections.roles]]`: members of `groups` log in to the target as `username`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleRule {
    /// Groups this rule applies to (any of them).
    pub groups: Vec<String>,
    /// Target role.
    pub username: String,
    /// Environment variable holding this role's password.
    pub password_env: Option<String>,
    /// File holding this role's password.
    pub password_file: Option<PathBuf>,
}

/// A connection's protocol.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionKind {
    /// PostgreSQL.
    #[default]
    Postgres,
}

/// How Warden authenticates to a target.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialsMode {
    /// A standing credential from an environment variable or a file.
    #[default]
    Static,
    /// A role created per session (not implemented yet).
    Jit,
}

/// Where a secret comes from: never the config text itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretSource {
    /// No password (trust authentication on the target).
    None,
    /// An environment variable.
    Env(String),
    /// A file (trailing newline stripped).
    File(PathBuf),
}

impl SecretSource {
    fn from_parts(env: &Option<String>, file: &Option<PathBuf>) -> Option<SecretSource> {
        match (env, file) {
            (Some(_), Some(_)) => None,
            (Some(e), None) => Some(SecretSource::Env(e.clone())),
            (None, Some(f)) => Some(SecretSource::File(f.clone())),
            (None, None) => Some(SecretSource::None),
        }
    }

    /// Reads the secret. The error names the source, never the value.
    pub fn load(&self) -> Result<Option<Secret>, String> {
        match self {
            SecretSource::None => Ok(None),
            SecretSource::Env(name) => match std::env::var(name) {
                Ok(v) => Ok(Some(Secret::new(v))),
                Err(std::env::VarError::NotPresent) => {
                    Err(format!("environment variable {name} is not set"))
                }
                Err(std::env::VarError::NotUnicode(_)) => {
                    Err(format!("environment variable {name} is not valid UTF-8"))
                }
            },
            SecretSource::File(path) => match std::fs::read_to_string(path) {
                Ok(v) => Ok(Some(Secret::new(
                    v.trim_end_matches(['\r', '\n']).to_owned(),
                ))),
                Err(e) => Err(format!("cannot read password file {}: {e}", path.display())),
            },
        }
    }
}

impl ConnectionConfig {
    /// The default credential's source.
    pub fn password_source(&self) -> SecretSource {
        SecretSource::from_parts(&self.password_env, &self.password_file)
            .unwrap_or(SecretSource::None)
    }

    /// The parsed target URL (valid after [`Config::validate`]).
    pub fn target_url(&self) -> Result<TargetUrl, String> {
        TargetUrl::parse(&self.target)
    }
}

impl RoleRule {
    /// This rule's credential source.
    pub fn password_source(&self) -> SecretSource {
        SecretSource::from_parts(&self.password_env, &self.password_file)
            .unwrap_or(SecretSource::None)
    }
}

impl Config {
    /// Reads, parses and validates `path`, including that every secret can be read.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        Self::load_checked(path, true)
    }

    /// Like [`Config::load`] but does not read secrets: for CLI commands that work on the
    /// data directory only (`warden tokens`), which must not need the targets' passwords.
    pub fn load_without_secrets(path: &Path) -> Result<Config, ConfigErrors> {
        Self::load_checked(path, false)
    }

    fn load_checked(path: &Path, secrets: bool) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors::single(ConfigError::new(path, "", format!("cannot read file: {e}")))
        })?;
        let config = Config::from_toml(path, &text)?;
        config.check(path, secrets)?;
        Ok(config)
    }

    /// Parses TOML text; `path` is used only in error messages.
    pub fn from_toml(path: &Path, text: &str) -> Result<Config, ConfigErrors> {
        let de = toml::Deserializer::new(text);
        serde_path_to_error::deserialize(de)
            .map_err(|e| ConfigErrors::single(error::from_toml(path, text, e)))
    }

    /// The SQLite (or other) store URL, defaulting under the data directory.
    pub fn store_url(&self) -> String {
        self.store.url.clone().unwrap_or_else(|| {
            format!(
                "sqlite://{}",
                self.gateway.data_dir.join("warden.db").display()
            )
        })
    }

    /// Looks up a connection by name.
    pub fn connection(&self, name: &str) -> Option<&ConnectionConfig> {
        self.connections.iter().find(|c| c.name == name)
    }

    /// Checks meaning, reporting every problem (not just the first), and that every
    /// secret can be read.
    pub fn validate(&self, path: &Path) -> Result<(), ConfigErrors> {
        self.check(path, true)
    }

    fn check(&self, path: &Path, secrets: bool) -> Result<(), ConfigErrors> {
        let mut errs = Vec::new();
        let mut err = |key: String, msg: String| errs.push(ConfigError::new(path, &key, msg));

        let g = &self.gateway;
        if g.tls_cert.is_some() != g.tls_key.is_some() {
            err(
                "gateway.tls_cert".into(),
                "tls_cert and tls_key must be set together".into(),
            );
        }
        if g.max_message_bytes < 1024 || g.max_message_bytes > 1 << 30 {
            err(
                "gateway.max_message_bytes".into(),
                "must be between 1024 and 1073741824".into(),
            );
        }
        if g.max_connections == 0 {
            err(
                "gateway.max_connections".into(),
                "must be at least 1".into(),
            );
        }
        if g.handshake_timeout.is_zero() {
            err(
                "gateway.handshake_timeout".into(),
                "must be greater than zero".into(),
            );
        }
        if g.connect_timeout.is_zero() {
            err(
                "gateway.connect_timeout".into(),
                "must be greater than zero".into(),
            );
        }
        if let Some(url) = &self.store.url {
            if !url.starts_with("sqlite:") {
                err(
                    "store.url".into(),
                    "only sqlite:// stores are supported so far".into(),
                );
            }
        }

        let mut issuers = HashSet::new();
        for (i, o) in self.identity.oidc.iter().enumerate() {
            let key = |k: &str| format!("identity.oidc[{i}].{k}");
            if !(o.issuer.starts_with("https://") || o.issuer.starts_with("http://")) {
                err(key("issuer"), "must be an http(s) URL".into());
            }
            if !issuers.insert(o.issuer.clone()) {
                err(
                    key("issuer"),
                    format!("issuer {} is listed twice", o.issuer),
                );
            }
            if o.audience.to_vec().iter().all(|a| a.is_empty()) {
                err(key("audience"), "at least one audience is required".into());
            }
            if o.groups_claim.is_empty() {
                err(key("groups_claim"), "must not be empty".into());
            }
            if let Some(algs) = &o.algorithms {
                if algs.is_empty() {
                    err(key("algorithms"), "must list at least one algorithm".into());
                }
                for a in algs {
                    if !ASYMMETRIC_ALGS.contains(&a.as_str()) {
                        err(
                            key("algorithms"),
                            format!(
                                "algorithm {a:?} is not allowed (use one of {})",
                                ASYMMETRIC_ALGS.join(", ")
                            ),
                        );
                    }
                }
            }
        }
        if self.identity.builtin.enabled && issuers.contains(&self.identity.builtin.issuer) {
            err(
                "identity.builtin.issuer".into(),
                "must differ from every OIDC issuer".into(),
            );
        }
        if self.identity.builtin.max_ttl.is_zero() {
            err(
                "identity.builtin.max_ttl".into(),
                "must be greater than zero".into(),
            );
        }

        let mut names = HashSet::new();
        for (i, c) in self.connections.iter().enumerate() {
            let key = |k: &str| format!("connections[{i}].{k}");
            if c.name.is_empty()
                || c.name.len() > 63
                || !c
                    .name
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-')
            {
                err(
                    key("name"),
                    "must be 1-63 characters of letters, digits, '_' or '-'".into(),
                );
            }
            if !names.insert(c.name.clone()) {
                err(
                    key("name"),
                    format!("connection {:?} is defined twice", c.name),
                );
            }
            if let Err(e) = TargetUrl::parse(&c.target) {
                err(key("target"), e);
            }
            if c.allow_groups.is_empty() {
                err(
                    key("allow_groups"),
                    "list at least one group; a connection nobody may open is a mistake".into(),
                );
            }
            if c.credentials == CredentialsMode::Jit {
                err(
                    key("credentials"),
                    "\"jit\" credentials are not supported yet; use \"static\"".into(),
                );
            }
            if c.password_env.is_some() && c.password_file.is_some() {
                err(
                    key("password_env"),
                    "set password_env or password_file, not both".into(),
                );
            } else if let Err(e) =
                c.password_source()
                    .load()
                    .map(drop)
                    .or_else(|e| if secrets { Err(e) } else { Ok(()) })
            {
                err(key("password_env"), e);
            }
            let default_user = c
                .username
                .clone()
                .or_else(|| c.target_url().ok().and_then(|u| u.user));
            if default_user.is_none() && c.roles.is_empty() {
                err(
                    key("username"),
                    "a target username is required (here or in the target URL)".into(),
                );
            }
            for (j, r) in c.roles.iter().enumerate() {
                let rkey = |k: &str| format!("connections[{i}].roles[{j}].{k}");
                if r.groups.is_empty() {
                    err(rkey("groups"), "list at least one group".into());
                }
                if r.username.is_empty() {
                    err(rkey("username"), "must not be empty".into());
                }
                if r.password_env.is_some() && r.password_file.is_some() {
                    err(
                        rkey("password_env"),
                        "set password_env or password_file, not both".into(),
                    );
                } else if let Err(e) = r.password_source().load().map(drop).or_else(|e| {
                    if secrets {
                        Err(e)
                    } else {
                        Ok(())
                    }
                }) {
                    err(rkey("password_env"), e);
                }
            }
            for (k, d) in [
                ("idle_timeout", c.idle_timeout),
                ("max_session", c.max_session),
            ] {
                if d.is_some_and(|d| d.is_zero()) {
                    err(key(k), "must be greater than zero".into());
                }
            }
        }

        if errs.is_empty() {
            Ok(())
        } else {
            Err(ConfigErrors(errs))
        }
    }
}

/// Signature algorithms an OIDC issuer may be configured to use.
pub const ASYMMETRIC_ALGS: &[&str] = &[
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
];

fn yes() -> bool {
    true
}
fn default_data_dir() -> PathBuf {
    PathBuf::from("./.warden")
}
fn default_pg_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 15432))
}
fn default_http_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}
fn default_max_message() -> usize {
    64 * 1024 * 1024
}
fn default_handshake_timeout() -> Duration {
    Duration::from_secs(15)
}
fn default_connect_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_max_connections() -> usize {
    2000
}
fn default_statement_cache() -> usize {
    10_000
}
fn default_groups_claim() -> String {
    "groups".into()
}
fn default_leeway() -> Duration {
    Duration::from_secs(30)
}
fn default_jwks_min_refresh() -> Duration {
    Duration::from_secs(10)
}
fn default_jwks_max_age() -> Duration {
    Duration::from_secs(3600)
}
fn default_builtin_issuer() -> String {
    "warden".into()
}
fn default_builtin_audience() -> String {
    "urn:warden".into()
}
fn default_builtin_max_ttl() -> Duration {
    Duration::from_secs(24 * 3600)
}

#[cfg(test)]
mod tests;
