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
    /// Session recordings.
    #[serde(default)]
    pub recording: RecordingConfig,
    /// Who may use the HTTP API.
    #[serde(default)]
    pub api: ApiConfig,
    /// The targets clients may reach, by name.
    #[serde(default)]
    pub connections: Vec<ConnectionConfig>,
}

/// `[api]`: which groups may use the HTTP API under `/api/v1`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// May do everything, including ending sessions.
    #[serde(default = "default_admin_groups")]
    pub admin_groups: Vec<String>,
    /// May read sessions, recordings and the audit.
    #[serde(default = "default_auditor_groups")]
    pub auditor_groups: Vec<String>,
    /// Have the approver role (the console shows them the reviews inbox). Deciding a
    /// request still needs one of its own approver groups, or admin.
    #[serde(default = "default_approver_groups")]
    pub approver_groups: Vec<String>,
    /// OAuth client id the web console signs in with (authorization code with PKCE),
    /// published at `/api/v1/auth/config`; unset, the console offers no OIDC sign-in.
    pub console_client_id: Option<String>,
    /// OAuth client id `warden login` uses (device authorization), published at
    /// `/api/v1/auth/config`.
    pub cli_client_id: Option<String>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            admin_groups: default_admin_groups(),
            auditor_groups: default_auditor_groups(),
            approver_groups: default_approver_groups(),
            console_client_id: None,
            cli_client_id: None,
        }
    }
}

fn default_approver_groups() -> Vec<String> {
    vec!["warden-approvers".into()]
}

fn default_admin_groups() -> Vec<String> {
    vec!["warden-admins".into()]
}
fn default_auditor_groups() -> Vec<String> {
    vec!["warden-auditors".into()]
}

/// `[recording]`: every session's statements, results and outcomes, hash-chained.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordingConfig {
    /// Whether sessions are recorded.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Where recordings go (default `<data_dir>/recordings`).
    pub dir: Option<PathBuf>,
    /// Result rows recorded per statement; the rest are counted and marked truncated.
    #[serde(default = "default_rec_rows")]
    pub max_rows_per_statement: usize,
    /// Bytes of result rows recorded per statement.
    #[serde(default = "default_rec_bytes")]
    pub max_bytes_per_statement: usize,
    /// Recordings older than this are purged (the purge is chained); unset keeps them.
    #[serde(default, with = "humantime_serde")]
    pub retention: Option<Duration>,
    /// How often the purge runs.
    #[serde(default = "default_purge_interval", with = "humantime_serde")]
    pub purge_interval: Duration,
}

impl Default for RecordingConfig {
    fn default() -> Self {
        RecordingConfig {
            enabled: true,
            dir: None,
            max_rows_per_statement: default_rec_rows(),
            max_bytes_per_statement: default_rec_bytes(),
            retention: None,
            purge_interval: default_purge_interval(),
        }
    }
}

impl Config {
    /// The recordings directory.
    pub fn recordings_dir(&self) -> PathBuf {
        self.recording
            .dir
            .clone()
            .unwrap_or_else(|| self.gateway.data_dir.join("recordings"))
    }
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
    /// How long a session may outlive the token that opened it.
    #[serde(default, with = "humantime_serde")]
    pub token_grace: Duration,
    /// Threads that run PostgreSQL sessions, each session staying on one; `None` means
    /// one per CPU, `Some(0)` runs sessions on the shared work-stealing runtime.
    #[serde(default)]
    pub session_threads: Option<usize>,
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
            token_grace: Duration::ZERO,
            session_threads: None,
        }
    }
}

/// Most session threads a configuration may ask for.
pub const MAX_SESSION_THREADS: usize = 1024;

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
    /// How Warden logs in to the target: `static` (a standing role) or `jit` (a role
    /// created for each session, see [`JitConfig`]).
    #[serde(default)]
    pub credentials: CredentialsMode,
    /// `[connections.jit]`: required when `credentials = "jit"`.
    pub jit: Option<JitConfig>,
    /// Target role used when no `[[connections.roles]]` rule matches.
    pub username: Option<String>,
    /// Environment variable holding the target password.
    pub password_env: Option<String>,
    /// File holding the target password.
    pub password_file: Option<PathBuf>,
    /// Group → target-role rules, first match wins.
    #[serde(default)]
    pub roles: Vec<RoleRule>,
    /// End a session after this long with no statement running (FATAL 57P01).
    #[serde(default, with = "humantime_serde")]
    pub idle_timeout: Option<Duration>,
    /// End a session open this long (FATAL 57P01).
    #[serde(default, with = "humantime_serde")]
    pub max_session: Option<Duration>,
    /// Statement rules, first match wins per statement (`[[connections.rules]]`).
    #[serde(default)]
    pub rules: Vec<StatementRuleConfig>,
    /// `[connections.webhook]`: told at once when a review or access request opens and
    /// closes.
    pub webhook: Option<WebhookConfig>,
    /// `[connections.access_requests]`: identities outside `allow_groups` may ask for a
    /// time-bound grant; absent, nobody can.
    pub access_requests: Option<AccessRequestsConfig>,
    /// `[[connections.masking]]`: what is masked in results, in order.
    #[serde(default)]
    pub masking: Vec<MaskingRuleConfig>,
    /// Environment variable holding the key of the `hash` and `format_preserving`
    /// strategies (at least 16 bytes). Unset: a random key per gateway start, so tokens
    /// are stable for the gateway's lifetime only.
    pub masking_key_env: Option<String>,
    /// File holding that key.
    pub masking_key_file: Option<PathBuf>,
    /// `[connections.guardrails]`: result and rate bounds.
    pub guardrails: Option<GuardrailsConfig>,
}

/// `[connections.guardrails]`: bounds on what one identity may pull and how fast.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuardrailsConfig {
    /// Rows of one result forwarded before it is cut off, with a notice.
    pub max_rows: Option<u64>,
    /// Statements one identity may run per minute, across its sessions on this
    /// connection; more are refused (53400) until the minute has room again.
    pub max_statements_per_minute: Option<u32>,
    /// Groups the guardrails do not apply to.
    #[serde(default)]
    pub exempt_groups: Vec<String>,
}

/// `[[connections.masking]]`: one masking rule.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaskingRuleConfig {
    /// A name for audit records (default `masking[N]`).
    pub name: Option<String>,
    /// Columns as `schema.table.column`; each part may be `*` or contain `*` wildcards.
    /// With `detectors`, the columns whose values are scanned.
    #[serde(default)]
    pub columns: Vec<String>,
    /// Paths inside json/jsonb columns: `schema.table.column:$.a.b`.
    #[serde(default)]
    pub json_paths: Vec<String>,
    /// Content detectors (`email`, `payment_card`, `us_ssn`, `phone`, `iban`, `ipv4`,
    /// `ipv6`, `jwt`, `api_key`, or the name of one of `patterns`): only matches are masked.
    #[serde(default)]
    pub detectors: Vec<String>,
    /// Named custom regexes usable in `detectors`.
    #[serde(default)]
    pub patterns: Vec<MaskingPatternConfig>,
    /// `redact` (default), `partial`, `keep_domain`, `hash`, `format_preserving`, `null`.
    #[serde(default = "default_mask_strategy")]
    pub strategy: String,
    /// For `partial`: trailing letters/digits shown (default 4).
    pub keep_last: Option<usize>,
    /// For `redact`: the replacement text.
    pub placeholder: Option<String>,
    /// Groups this rule does not apply to.
    #[serde(default)]
    pub exempt_groups: Vec<String>,
    /// Deny (rather than mask) an expression computed from these columns.
    #[serde(default)]
    pub strict: bool,
    /// Refuse statements that use these columns in `where`, `join`, `group_by` or
    /// `order_by` (inference attacks).
    #[serde(default)]
    pub refuse_in: Vec<String>,
}

/// A named regex for `detectors`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaskingPatternConfig {
    /// The name used in `detectors`.
    pub name: String,
    /// The regex (Rust `regex` syntax).
    pub regex: String,
}

/// Masking strategies accepted in `strategy`.
pub const MASK_STRATEGIES: &[&str] = &[
    "redact",
    "partial",
    "keep_domain",
    "hash",
    "format_preserving",
    "null",
];
/// Built-in detector names.
pub const MASK_DETECTORS: &[&str] = &[
    "email",
    "payment_card",
    "us_ssn",
    "phone",
    "iban",
    "ipv4",
    "ipv6",
    "jwt",
    "api_key",
];
/// Clauses accepted in `refuse_in`.
pub const MASK_CLAUSES: &[&str] = &["where", "join", "group_by", "order_by"];

fn default_mask_strategy() -> String {
    "redact".into()
}

impl ConnectionConfig {
    /// Where the masking key comes from.
    pub fn masking_key_source(&self) -> SecretSource {
        SecretSource::from_parts(&self.masking_key_env, &self.masking_key_file)
            .unwrap_or(SecretSource::None)
    }
}

/// Whether `p` is a `schema.table.column` pattern: three non-empty dot-separated parts of
/// identifier characters or `*`.
pub fn valid_column_pattern(p: &str) -> bool {
    let parts: Vec<&str> = p.split('.').collect();
    parts.len() == 3
        && parts.iter().all(|s| {
            !s.is_empty()
                && s.len() <= 63
                && s.chars()
                    .all(|c| c.is_alphanumeric() || c == '_' || c == '$' || c == '*')
        })
}

/// `[connections.webhook]`: a JSON POST signed with HMAC-SHA256 (see the README).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// `http://` or `https://` URL (Slack incoming webhooks work as they are).
    pub url: String,
    /// Environment variable holding the signing secret.
    pub secret_env: Option<String>,
    /// File holding the signing secret.
    pub secret_file: Option<PathBuf>,
    /// Per-attempt timeout.
    #[serde(default = "default_webhook_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Attempts per notification, with exponential back-off between them.
    #[serde(default = "default_webhook_attempts")]
    pub max_attempts: u32,
}

impl WebhookConfig {
    /// Where the signing secret comes from.
    pub fn secret_source(&self) -> SecretSource {
        SecretSource::from_parts(&self.secret_env, &self.secret_file).unwrap_or(SecretSource::None)
    }
}

fn default_webhook_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_webhook_attempts() -> u32 {
    5
}

/// `[connections.access_requests]`: who may approve time-bound access, and for how long.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessRequestsConfig {
    /// Groups whose members approve requests.
    pub approver_groups: Vec<String>,
    /// Distinct approvals needed.
    #[serde(default = "default_approvals")]
    pub approvals: u32,
    /// Longest grant that may be asked for.
    #[serde(default = "default_max_grant", with = "humantime_serde")]
    pub max_duration: Duration,
    /// A request nobody decides within this long expires.
    #[serde(default = "default_review_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

fn default_approvals() -> u32 {
    1
}
fn default_max_grant() -> Duration {
    Duration::from_secs(8 * 3600)
}
fn default_review_timeout() -> Duration {
    Duration::from_secs(300)
}

/// `[[connections.rules]]`: what happens to statements that match. Empty lists match
/// anything; every non-empty list must match.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatementRuleConfig {
    /// `allow`, `deny` or `review`.
    pub action: RuleAction,
    /// Statement classes: read, write, ddl, destructive, utility, unknown.
    #[serde(default)]
    pub classes: Vec<String>,
    /// Statement kinds as Warden names them (`DROP TABLE`, `DELETE`, `COPY TO PROGRAM`).
    #[serde(default)]
    pub kinds: Vec<String>,
    /// Tables (`schema.table`, `table`, `public.*`).
    #[serde(default)]
    pub tables: Vec<String>,
    /// Functions (`pg_read_file`, `dblink*`).
    #[serde(default)]
    pub functions: Vec<String>,
    /// Applies only to these groups (default: everyone).
    #[serde(default)]
    pub groups: Vec<String>,
    /// Members of these groups are exempt.
    #[serde(default)]
    pub except_groups: Vec<String>,
    /// The message a denied client sees, and approvers of a review.
    pub message: Option<String>,
    /// `review`: groups whose members may approve (required).
    #[serde(default)]
    pub approver_groups: Vec<String>,
    /// `review`: distinct approvals needed.
    #[serde(default = "default_approvals")]
    pub approvals: u32,
    /// `review`: how long a statement is held before it is rejected.
    #[serde(default = "default_review_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

/// A statement rule's action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleAction {
    /// Let matching statements through.
    Allow,
    /// Refuse them with ErrorResponse 42501.
    Deny,
    /// Hold them until approved.
    Review,
}

/// Class names a rule may use.
pub const STATEMENT_CLASSES: &[&str] =
    &["read", "write", "ddl", "destructive", "utility", "unknown"];

/// `[connections.jit]`: how per-session roles are made and removed.
///
/// Each session gets a fresh `LOGIN` role named `role_prefix` + 12 hex digits, valid for
/// `ttl` and renewed while the session lives, up to `max_ttl`, when the session ends.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JitConfig {
    /// Role Warden uses only to create and drop session roles (needs CREATEROLE).
    pub admin_username: String,
    /// Environment variable holding the admin password.
    pub admin_password_env: Option<String>,
    /// File holding the admin password.
    pub admin_password_file: Option<PathBuf>,
    /// Roles each session role is made a member of (unless a `[[connections.roles]]`
    /// rule matches, whose `username` is then granted instead).
    #[serde(default)]
    pub grant_roles: Vec<String>,
    /// Extra statements run as the admin after the role is created; `{role}` is replaced
    /// by the quoted role name, e.g. `GRANT SELECT ON public.orders TO {role}`.
    #[serde(default)]
    pub grants: Vec<String>,
    /// How long a role stays valid (`VALID UNTIL`) without renewal; Warden renews it
    /// while the session is alive, so an orphan expires within this time.
    #[serde(default = "default_jit_ttl", with = "humantime_serde")]
    pub ttl: Duration,
    /// Longest a session role may live: the session is ended at this point.
    #[serde(default = "default_jit_max_ttl", with = "humantime_serde")]
    pub max_ttl: Duration,
    /// Prefix of every role Warden creates; the sweeper touches only these.
    #[serde(default = "default_jit_prefix")]
    pub role_prefix: String,
    /// `CONNECTION LIMIT` of each session role.
    #[serde(default = "default_jit_connection_limit")]
    pub connection_limit: u32,
    /// What happens to objects a session role owns when it is dropped.
    #[serde(default)]
    pub owned_objects: OwnedObjects,
    /// Role that receives reassigned objects (default: the admin role).
    pub reassign_to: Option<String>,
    /// Admin connections kept open for role management.
    #[serde(default = "default_jit_pool")]
    pub admin_pool_size: u32,
    /// How often the sweeper looks for expired or orphaned roles.
    #[serde(default = "default_jit_sweep", with = "humantime_serde")]
    pub sweep_interval: Duration,
}

/// What to do with objects owned by a session role when it is dropped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OwnedObjects {
    /// `REASSIGN OWNED` to `reassign_to` (objects survive the session).
    #[default]
    Reassign,
    /// `DROP OWNED` (objects are removed with the role).
    Drop,
}

impl JitConfig {
    /// The admin credential's source.
    pub fn admin_password_source(&self) -> SecretSource {
        SecretSource::from_parts(&self.admin_password_env, &self.admin_password_file)
            .unwrap_or(SecretSource::None)
    }

    /// The role that receives reassigned objects.
    pub fn reassign_target(&self) -> &str {
        self.reassign_to.as_deref().unwrap_or(&self.admin_username)
    }
}

/// Length of the random part of a session role's name (hex digits).
pub const JIT_ROLE_SUFFIX_LEN: usize = 12;

/// A role name a config may name: 1-63 bytes, no NUL (quoted when used in SQL).
fn valid_role_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 63 && !name.contains('\0')
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
    /// A role created per session (`[connections.jit]`).
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
        if g.session_threads.is_some_and(|n| n > MAX_SESSION_THREADS) {
            err(
                "gateway.session_threads".into(),
                format!(
                    "must be at most {MAX_SESSION_THREADS} (0 runs sessions on the shared runtime)"
                ),
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

        for (k, id) in [
            ("api.console_client_id", &self.api.console_client_id),
            ("api.cli_client_id", &self.api.cli_client_id),
        ] {
            if id
                .as_deref()
                .is_some_and(|id| id.trim().is_empty() || id.chars().any(char::is_control))
            {
                err(k.into(), "must be a non-empty client id".into());
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

        if self.recording.max_bytes_per_statement > 1 << 30 {
            err(
                "recording.max_bytes_per_statement".into(),
                "must be at most 1073741824".into(),
            );
        }
        if self
            .recording
            .retention
            .is_some_and(|r| r < Duration::from_secs(1))
        {
            err(
                "recording.retention".into(),
                "must be at least 1s (or unset to keep recordings)".into(),
            );
        }
        if self.recording.purge_interval < Duration::from_secs(1) {
            err(
                "recording.purge_interval".into(),
                "must be at least 1s".into(),
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
            let jit = c.credentials == CredentialsMode::Jit;
            match (&c.jit, jit) {
                (None, true) => err(
                    key("jit"),
                    "credentials = \"jit\" needs a [connections.jit] section".into(),
                ),
                (Some(_), false) => err(
                    key("jit"),
                    "[connections.jit] is only used with credentials = \"jit\"".into(),
                ),
                (Some(j), true) => {
                    for (k, e) in check_jit(j, c, secrets) {
                        err(key(&format!("jit.{k}")), e);
                    }
                }
                (None, false) => {}
            }
            if jit {
                if c.username.is_some() || c.password_env.is_some() || c.password_file.is_some() {
                    err(
                        key("username"),
                        "with credentials = \"jit\" Warden makes the login role itself; \
                         remove username/password_env/password_file"
                            .into(),
                    );
                }
                if c.target_url().is_ok_and(|u| u.user.is_some()) {
                    err(
                        key("target"),
                        "with credentials = \"jit\" the target URL must not name a user".into(),
                    );
                }
            } else if c.password_env.is_some() && c.password_file.is_some() {
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
            if !jit && default_user.is_none() && c.roles.is_empty() {
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
                if jit && (r.password_env.is_some() || r.password_file.is_some()) {
                    err(
                        rkey("password_env"),
                        "with credentials = \"jit\" a role rule names a role to grant; \
                         it has no password"
                            .into(),
                    );
                } else if r.password_env.is_some() && r.password_file.is_some() {
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
            for (j, r) in c.rules.iter().enumerate() {
                let rkey = |k: &str| format!("connections[{i}].rules[{j}].{k}");
                if r.action == RuleAction::Review {
                    if r.approver_groups.iter().all(|g| g.trim().is_empty()) {
                        err(
                            rkey("approver_groups"),
                            "a review rule needs at least one approver group".into(),
                        );
                    }
                    if !(1..=10).contains(&r.approvals) {
                        err(rkey("approvals"), "must be between 1 and 10".into());
                    }
                    if r.timeout < Duration::from_secs(1) || r.timeout > Duration::from_secs(86400)
                    {
                        err(rkey("timeout"), "must be between 1s and 24h".into());
                    }
                } else if !r.approver_groups.is_empty() {
                    err(
                        rkey("approver_groups"),
                        "only a review rule has approvers".into(),
                    );
                }
                if let Some(bad) = r
                    .classes
                    .iter()
                    .find(|c| !STATEMENT_CLASSES.contains(&c.as_str()))
                {
                    err(
                        rkey("classes"),
                        format!("{bad:?} is not one of {}", STATEMENT_CLASSES.join(", ")),
                    );
                }
                if r.message
                    .as_ref()
                    .is_some_and(|m| m.len() > 1000 || m.contains('\0'))
                {
                    err(
                        rkey("message"),
                        "must be under 1000 bytes, without NUL".into(),
                    );
                }
            }
            if let Some(w) = &c.webhook {
                let wkey = |k: &str| format!("connections[{i}].webhook.{k}");
                let scheme_ok = w.url.starts_with("https://") || w.url.starts_with("http://");
                if !scheme_ok || w.url.len() > 2048 || w.url.chars().any(char::is_whitespace) {
                    err(wkey("url"), "must be an http(s) URL".into());
                }
                match SecretSource::from_parts(&w.secret_env, &w.secret_file) {
                    None => err(
                        wkey("secret_env"),
                        "set secret_env or secret_file, not both".into(),
                    ),
                    Some(SecretSource::None) => err(
                        wkey("secret_env"),
                        "a webhook needs a signing secret (secret_env or secret_file)".into(),
                    ),
                    Some(src) if secrets => match src.load() {
                        Ok(Some(v)) if v.expose().len() < 16 => err(
                            wkey("secret_env"),
                            "the signing secret must be at least 16 bytes".into(),
                        ),
                        Ok(_) => {}
                        Err(e) => err(wkey("secret_env"), e),
                    },
                    Some(_) => {}
                }
                if w.timeout.is_zero() || w.timeout > Duration::from_secs(60) {
                    err(wkey("timeout"), "must be between 1ms and 60s".into());
                }
                if !(1..=20).contains(&w.max_attempts) {
                    err(wkey("max_attempts"), "must be between 1 and 20".into());
                }
            }
            if let Some(a) = &c.access_requests {
                let akey = |k: &str| format!("connections[{i}].access_requests.{k}");
                if a.approver_groups.iter().all(|g| g.trim().is_empty()) {
                    err(akey("approver_groups"), "list at least one group".into());
                }
                if !(1..=10).contains(&a.approvals) {
                    err(akey("approvals"), "must be between 1 and 10".into());
                }
                if a.max_duration < Duration::from_secs(1) {
                    err(akey("max_duration"), "must be at least 1s".into());
                }
                if a.timeout < Duration::from_secs(1) || a.timeout > Duration::from_secs(7 * 86400)
                {
                    err(akey("timeout"), "must be between 1s and 7 days".into());
                }
            }
            for (j, m) in c.masking.iter().enumerate() {
                for (k, msg) in check_masking(m) {
                    err(format!("connections[{i}].masking[{j}].{k}"), msg);
                }
            }
            if let Some(g) = &c.guardrails {
                if g.max_rows == Some(0) {
                    err(key("guardrails.max_rows"), "must be at least 1".into());
                }
                if g.max_statements_per_minute == Some(0) {
                    err(
                        key("guardrails.max_statements_per_minute"),
                        "must be at least 1".into(),
                    );
                }
                if g.max_rows.is_none() && g.max_statements_per_minute.is_none() {
                    err(
                        key("guardrails"),
                        "set max_rows or max_statements_per_minute".into(),
                    );
                }
            }
            match SecretSource::from_parts(&c.masking_key_env, &c.masking_key_file) {
                None => err(
                    key("masking_key_env"),
                    "set masking_key_env or masking_key_file, not both".into(),
                ),
                Some(src) if secrets => match src.load() {
                    Ok(Some(v)) if v.expose().len() < 16 => err(
                        key("masking_key_env"),
                        "the masking key must be at least 16 bytes".into(),
                    ),
                    Ok(_) => {}
                    Err(e) => err(key("masking_key_env"), e),
                },
                Some(_) => {}
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

/// Problems with a `[[connections.masking]]` rule, as (key, message).
fn check_masking(m: &MaskingRuleConfig) -> Vec<(&'static str, String)> {
    let mut errs = Vec::new();
    if m.columns.is_empty() && m.json_paths.is_empty() {
        errs.push((
            "columns",
            "a masking rule needs columns or json_paths".into(),
        ));
    }
    if let Some(bad) = m.columns.iter().find(|c| !valid_column_pattern(c)) {
        errs.push((
            "columns",
            format!("{bad:?} is not schema.table.column (parts may use * wildcards)"),
        ));
    }
    for jp in &m.json_paths {
        match jp.split_once(':') {
            Some((col, path)) if valid_column_pattern(col) && !col.contains('*') => {
                if let Err(e) = warden_masking::JsonPath::parse(path) {
                    errs.push(("json_paths", format!("{jp:?}: {e}")));
                }
            }
            _ => errs.push((
                "json_paths",
                format!("{jp:?} is not schema.table.column:$.path (no wildcards in the column)"),
            )),
        }
    }
    if !m.json_paths.is_empty() && !m.detectors.is_empty() {
        errs.push((
            "detectors",
            "a rule masks either json_paths or detector matches; use two rules".into(),
        ));
    }
    let mut names: Vec<&str> = Vec::new();
    for p in &m.patterns {
        if MASK_DETECTORS.contains(&p.name.as_str()) || names.contains(&p.name.as_str()) {
            errs.push((
                "patterns",
                format!("{:?} is already a detector name", p.name),
            ));
        }
        names.push(&p.name);
        if let Err(e) = warden_masking::CustomDetector::new(p.name.clone(), &p.regex) {
            errs.push(("patterns", e.to_string()));
        }
    }
    if let Some(bad) = m
        .detectors
        .iter()
        .find(|d| !MASK_DETECTORS.contains(&d.as_str()) && !names.contains(&d.as_str()))
    {
        errs.push((
            "detectors",
            format!(
                "{bad:?} is not one of {} or a name from patterns",
                MASK_DETECTORS.join(", ")
            ),
        ));
    }
    if !m.patterns.is_empty() && m.detectors.is_empty() {
        errs.push(("detectors", "list the patterns to use in detectors".into()));
    }
    if !MASK_STRATEGIES.contains(&m.strategy.as_str()) {
        errs.push((
            "strategy",
            format!(
                "{:?} is not one of {}",
                m.strategy,
                MASK_STRATEGIES.join(", ")
            ),
        ));
    }
    if m.keep_last.is_some() && m.strategy != "partial" {
        errs.push((
            "keep_last",
            "only the partial strategy keeps characters".into(),
        ));
    }
    if m.keep_last.is_some_and(|k| k > 64) {
        errs.push(("keep_last", "must be at most 64".into()));
    }
    if m.placeholder.is_some() && m.strategy != "redact" {
        errs.push((
            "placeholder",
            "only the redact strategy has a placeholder".into(),
        ));
    }
    if m.placeholder
        .as_ref()
        .is_some_and(|p| p.len() > 256 || p.contains('\0'))
    {
        errs.push(("placeholder", "must be under 256 bytes, without NUL".into()));
    }
    if let Some(bad) = m
        .refuse_in
        .iter()
        .find(|c| !MASK_CLAUSES.contains(&c.as_str()))
    {
        errs.push((
            "refuse_in",
            format!("{bad:?} is not one of {}", MASK_CLAUSES.join(", ")),
        ));
    }
    if m.name
        .as_ref()
        .is_some_and(|n| n.is_empty() || n.len() > 63)
    {
        errs.push(("name", "must be 1-63 bytes".into()));
    }
    errs
}

/// Problems with a `[connections.jit]` section, as (key, message).
fn check_jit(j: &JitConfig, c: &ConnectionConfig, secrets: bool) -> Vec<(&'static str, String)> {
    let mut errs = Vec::new();
    if !valid_role_name(&j.admin_username) {
        errs.push(("admin_username", "must be 1-63 bytes".into()));
    }
    if j.admin_password_env.is_some() && j.admin_password_file.is_some() {
        errs.push((
            "admin_password_env",
            "set admin_password_env or admin_password_file, not both".into(),
        ));
    } else if let Err(e) = j.admin_password_source().load() {
        if secrets {
            errs.push(("admin_password_env", e));
        }
    }
    if j.grant_roles.is_empty() && c.roles.is_empty() && j.grants.is_empty() {
        errs.push((
            "grant_roles",
            "list at least one role to grant (or grants); a role with no privileges is a mistake"
                .into(),
        ));
    }
    if let Some(r) = j.grant_roles.iter().find(|r| !valid_role_name(r)) {
        errs.push(("grant_roles", format!("{r:?} is not a valid role name")));
    }
    if let Some(r) = &j.reassign_to {
        if !valid_role_name(r) {
            errs.push(("reassign_to", "must be 1-63 bytes".into()));
        }
    }
    for g in &j.grants {
        if !g.contains("{role}") {
            errs.push((
                "grants",
                format!("{g:?} must mention {{role}}, the session role it grants to"),
            ));
        }
    }
    // Lower case letters, digits and '_' so names never need case folding, and never the
    // reserved pg_ prefix; the prefix is how the sweeper recognises Warden's roles, so a
    // short one could match roles Warden did not make.
    let p = &j.role_prefix;
    if p.len() < 3
        || p.len() > 63 - JIT_ROLE_SUFFIX_LEN
        || p.starts_with("pg_")
        || !p.starts_with(|ch: char| ch.is_ascii_lowercase())
        || !p
            .chars()
            .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_')
    {
        errs.push((
            "role_prefix",
            format!(
                "must be 3-{} characters of a-z, 0-9 or '_', start with a letter and not with pg_",
                63 - JIT_ROLE_SUFFIX_LEN
            ),
        ));
    }
    if j.connection_limit == 0 {
        errs.push(("connection_limit", "must be at least 1".into()));
    }
    if j.admin_pool_size == 0 || j.admin_pool_size > 100 {
        errs.push(("admin_pool_size", "must be between 1 and 100".into()));
    }
    if j.ttl < Duration::from_secs(10) {
        errs.push(("ttl", "must be at least 10s".into()));
    }
    if j.max_ttl < j.ttl {
        errs.push(("max_ttl", "must not be shorter than ttl".into()));
    }
    if j.sweep_interval < Duration::from_secs(1) {
        errs.push(("sweep_interval", "must be at least 1s".into()));
    }
    errs
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
fn default_rec_rows() -> usize {
    100
}
fn default_rec_bytes() -> usize {
    64 * 1024
}
fn default_purge_interval() -> Duration {
    Duration::from_secs(3600)
}
fn default_jit_ttl() -> Duration {
    Duration::from_secs(15 * 60)
}
fn default_jit_max_ttl() -> Duration {
    Duration::from_secs(12 * 3600)
}
fn default_jit_prefix() -> String {
    "warden_".into()
}
fn default_jit_connection_limit() -> u32 {
    1
}
fn default_jit_pool() -> u32 {
    4
}
fn default_jit_sweep() -> Duration {
    Duration::from_secs(60)
}
fn default_builtin_max_ttl() -> Duration {
    Duration::from_secs(24 * 3600)
}

#[cfg(test)]
mod tests;
