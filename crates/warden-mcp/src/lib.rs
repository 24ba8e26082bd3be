//! Warden's MCP server: a second front door for AI agents to the same pipeline.
//!
//! The server reimplements no control. `query` and `describe` open a session on the
//! gateway's own PostgreSQL listener (loopback) with `dbname` = the connection and the
//! caller's bearer token as the password, so identity, groups, policy, JIT credentials,
//! masking, guardrails, approvals and recording apply unchanged; `list_connections`,
//! `request_access` and part of `review_status` call the gateway's REST API with the same
//! token. A statement the gateway holds for review comes back at once as a
//! `pending_review` result; its connection waits in a background task (bounded per caller,
//! dropped at the review timeout) and the outcome is kept for `review_status`.
//!
//! Transports: streamable HTTP ([`http`], `/mcp` on the gateway, bearer token on every
//! request), where the tools run; and stdio ([`serve_stdio`], `warden mcp`), a relay to the
//! gateway's `/mcp` (see [`relay`]), so tool calls from either are audited alike.

#![forbid(unsafe_code)]

pub mod http;
pub mod pg;
pub mod relay;
mod tools;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_lite::BoxFuture;
use warden_pg::mask::rules::MaskRules;
use warden_types::{Identity, Secret};

pub use relay::{serve_stdio, TokenProvider};
pub use tools::WardenMcp;

/// `futures::future::BoxFuture` without the dependency.
mod futures_lite {
    /// A boxed, sendable future.
    pub type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;
}

/// Who is calling: the bearer token to present to the gateway and the identity behind it,
/// verified by `/mcp` before any tool runs.
#[derive(Clone)]
pub struct Caller {
    /// The caller's token (never logged, never returned).
    pub token: Secret,
    /// The verified identity.
    pub identity: Identity,
}

impl Caller {
    /// Key for per-caller state (held reviews): the same for every session of the caller,
    /// whichever transport it came in on.
    fn key(&self) -> String {
        format!("{}\u{0}{}", self.identity.issuer, self.identity.subject.0)
    }
}

/// One MCP tool call, for the audit.
#[derive(Clone, Debug)]
pub struct ToolEvent {
    /// The tool's name.
    pub tool: String,
    /// Its arguments, with SQL that may hold a secret redacted.
    pub arguments: serde_json::Value,
    /// The caller, when verified in-process.
    pub identity: Option<Identity>,
    /// The connection named, if any.
    pub connection: Option<String>,
    /// Whether the call was allowed (ran, or held for review) or refused.
    pub allowed: bool,
    /// What happened: `ok`, `pending_review rv-…`, `42501 …`.
    pub decision: String,
}

/// Writes a [`ToolEvent`] somewhere durable (the gateway's audit chain).
pub type Recorder = Arc<dyn Fn(ToolEvent) -> BoxFuture<()> + Send + Sync>;

/// What the server needs to reach the gateway.
#[derive(Clone)]
pub struct Settings {
    /// The gateway's PostgreSQL listener (loopback).
    pub postgres: SocketAddr,
    /// The gateway's HTTP base URL (`http://127.0.0.1:8080`).
    pub http_base: String,
    /// Masking rules per connection, to mark masked columns in `describe` (the gateway
    /// applies them either way).
    pub masking: HashMap<String, Arc<MaskRules>>,
    /// Where tool calls are recorded, when in-process with the gateway.
    pub recorder: Option<Recorder>,
    /// Backstop for a held statement's wait: the gateway itself ends the wait at the
    /// review's timeout (at most a day, by config validation) and says so.
    pub review_timeout: Duration,
    /// Statements held at once per caller.
    pub max_held: usize,
}

impl Settings {
    /// Settings for a gateway at `postgres` / `http_base`, no masking information, no
    /// recorder, a backstop of a day and a minute on review waits and 8 held statements
    /// per caller.
    pub fn new(postgres: SocketAddr, http_base: impl Into<String>) -> Settings {
        Settings {
            postgres,
            http_base: http_base.into().trim_end_matches('/').to_owned(),
            masking: HashMap::new(),
            recorder: None,
            review_timeout: Duration::from_secs(86_400 + 60),
            max_held: 8,
        }
    }

    /// Takes the masking rules of every connection in `config` (compiled as the gateway
    /// compiles them; the key is a placeholder, as `describe` masks no values).
    pub fn with_config_masking(
        mut self,
        config: &warden_config::Config,
    ) -> anyhow::Result<Settings> {
        for c in &config.connections {
            let key =
                warden_masking::MaskKey::new(vec![0u8; 64]).map_err(|e| anyhow::anyhow!("{e}"))?;
            let rules = MaskRules::compile(&c.masking, key)
                .map_err(|e| anyhow::anyhow!("connection {:?}: masking rules: {e}", c.name))?;
            self.masking.insert(c.name.clone(), Arc::new(rules));
        }
        Ok(self)
    }
}

/// A statement held for review, or its outcome.
enum HeldState {
    Pending,
    Decided(pg::Outcome),
}

struct HeldEntry {
    owner: String,
    connection: String,
    state: HeldState,
    since: Instant,
}

/// State shared by every MCP session of this process.
pub struct Shared {
    settings: Settings,
    http: reqwest::Client,
    held: Mutex<HashMap<String, HeldEntry>>,
}

/// Decided outcomes are kept this long for `review_status`.
const KEEP_DECIDED: Duration = Duration::from_secs(60 * 60);

impl Shared {
    /// Shared state over `settings`.
    pub fn new(settings: Settings) -> anyhow::Result<Arc<Shared>> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?;
        Ok(Arc::new(Shared {
            settings,
            http,
            held: Mutex::new(HashMap::new()),
        }))
    }

    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<String, HeldEntry>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps `rest` waiting for the decision in the background, unless `owner` already has
    /// [`Settings::max_held`] statements pending: then `rest` is dropped (which withdraws
    /// the review) and the answer is `false`.
    fn keep_held(
        self: &Arc<Self>,
        owner: String,
        connection: String,
        review_id: String,
        rest: pg::Held,
    ) -> bool {
        {
            let mut held = self.held();
            held.retain(|_, e| {
                matches!(e.state, HeldState::Pending) || e.since.elapsed() < KEEP_DECIDED
            });
            let pending = held
                .values()
                .filter(|e| e.owner == owner && matches!(e.state, HeldState::Pending))
                .count();
            if pending >= self.settings.max_held {
                return false;
            }
            held.insert(
                review_id.clone(),
                HeldEntry {
                    owner,
                    connection,
                    state: HeldState::Pending,
                    since: Instant::now(),
                },
            );
        }
        let me = self.clone();
        let timeout = self.settings.review_timeout;
        tokio::spawn(async move {
            let outcome = match tokio::time::timeout(timeout, rest.finish()).await {
                Ok(Ok(o)) => o,
                Ok(Err(e)) => pg::Outcome::Refused(pg::PgError {
                    sqlstate: "08006".into(),
                    message: format!("the gateway connection for review {review_id} broke: {e}"),
                    detail: None,
                    hint: None,
                }),
                // Dropping the connection withdraws the review at the gateway.
                Err(_) => pg::Outcome::Refused(pg::PgError {
                    sqlstate: "57014".into(),
                    message: format!(
                        "Warden: review {review_id} timed out after {}s: nobody approved it",
                        timeout.as_secs()
                    ),
                    detail: None,
                    hint: None,
                }),
            };
            if let Some(e) = me.held().get_mut(&review_id) {
                e.state = HeldState::Decided(outcome);
                e.since = Instant::now();
            }
        });
        true
    }
}
