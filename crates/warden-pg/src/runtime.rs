//! Everything a session needs, built once from the configuration and shared by all sessions.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use warden_config::{Config, CredentialsMode, RequireTls, SecretSource};
use warden_credentials::{JitManager, JitSettings};
use warden_identity::Authenticator;
use warden_policy::access::{AccessPolicy, ConnectionRules, RoleMapping};
use warden_policy::rules::{Action, Rule, StatementRules};
use warden_policy::statement::{Analyzer, StatementClass};
use warden_store::Store;
use warden_types::Secret;

use warden_approvals::hub::{AccessSpec, Hub, HubConfig, ReviewSpec};
use warden_approvals::webhook::{Webhook, WebhookSettings};

use crate::cancel::CancelRegistry;
use crate::hold::Reviews;
use crate::mask::catalog::CatalogHandle;
use crate::mask::rules::MaskRules;
use crate::mask::ConnectionMasking;
use crate::proxy::{Guard, RateLimiter};
use crate::record::RecordLimits;
use crate::registry::Registry;

/// A target role and its password (never logged: [`Secret`]).
#[derive(Clone, Debug)]
pub struct TargetCredential {
    /// Target role.
    pub user: String,
    /// Its password, when the target needs one.
    pub password: Option<Secret>,
}

/// One connection's target address and credentials.
#[derive(Clone, Debug)]
pub struct TargetRuntime {
    /// Host.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Database on the target.
    pub database: String,
    /// Credential for the connection's default role.
    pub default: Option<TargetCredential>,
    /// Credentials for `[[connections.roles]]`, by rule index (static credentials).
    pub roles: Vec<TargetCredential>,
    /// Per-session roles, when the connection uses `credentials = "jit"`.
    pub jit: Option<Arc<JitManager>>,
    /// For just-in-time roles: the role each `[[connections.roles]]` rule grants.
    pub jit_rule_roles: Vec<String>,
    /// `max_session`: the longest a session may last.
    pub max_session: Option<Duration>,
}

impl TargetRuntime {
    /// The credential for a policy grant's rule index.
    pub fn credential(&self, rule: Option<usize>) -> Option<&TargetCredential> {
        match rule {
            Some(i) => self.roles.get(i),
            None => self.default.as_ref(),
        }
    }
}

/// Errors building the runtime.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// A connection's secret or target could not be loaded.
    #[error("connection {connection}: {message}")]
    Connection {
        /// The connection.
        connection: String,
        /// What is wrong (never the secret).
        message: String,
    },
}

/// Shared state of the PostgreSQL listener.
pub struct Runtime {
    /// Token and API key checks.
    pub auth: Arc<Authenticator>,
    /// Who may open which connection.
    pub policy: AccessPolicy,
    /// Targets by connection name.
    pub targets: HashMap<String, TargetRuntime>,
    /// Statement analysis cache.
    pub analyzer: Arc<Analyzer>,
    /// Audit and key store.
    pub store: Store,
    /// TLS for clients.
    pub tls: Arc<rustls::ServerConfig>,
    /// When TLS is mandatory.
    pub require_tls: RequireTls,
    /// Largest message accepted.
    pub max_message: usize,
    /// Time allowed for client startup.
    pub handshake_timeout: Duration,
    /// Time allowed for target login.
    pub connect_timeout: Duration,
    /// Cancel keys of live sessions.
    pub cancels: CancelRegistry,
    /// Bounds concurrent clients.
    pub conn_limit: Arc<Semaphore>,
    /// Live sessions (kill, revocation, shutdown).
    pub sessions: Registry,
    /// Where session recordings go; `None` when recording is off.
    pub recordings: Option<PathBuf>,
    /// What is recorded of each result.
    pub record_limits: RecordLimits,
    /// How long a session may outlive its token.
    pub token_grace: Duration,
    /// `idle_timeout` by connection.
    pub idle_timeouts: HashMap<String, Duration>,
    /// Statement rules by connection (only connections that have some).
    pub rules: HashMap<String, Arc<StatementRules>>,
    /// Reviews and access requests.
    pub hub: Arc<Hub>,
    /// Review settings by connection (only connections with review rules).
    pub reviews: HashMap<String, Arc<Reviews>>,
    /// Masking by connection (only connections with masking rules).
    pub masking: HashMap<String, Arc<ConnectionMasking>>,
    /// Guardrails by connection (only connections with some).
    pub guardrails: HashMap<String, Guardrails>,
}

/// A connection's `[connections.guardrails]`, with its shared rate limiter.
pub struct Guardrails {
    /// Rows of one result forwarded before it is cut off.
    pub max_rows: Option<u64>,
    /// Statements per minute per identity.
    pub rate: Option<Arc<RateLimiter>>,
    /// Groups the guardrails do not apply to.
    pub exempt_groups: Vec<String>,
}

impl Guardrails {
    /// The session's guard, unless `identity` is exempt.
    pub fn for_identity(&self, identity: &warden_types::Identity) -> Option<Guard> {
        if self.exempt_groups.iter().any(|g| identity.in_group(g)) {
            return None;
        }
        Some(Guard {
            max_rows: self.max_rows,
            rate: self.rate.clone(),
        })
    }
}

impl Runtime {
    /// The just-in-time role managers of every connection that has one.
    pub fn jit_managers(&self) -> Vec<Arc<JitManager>> {
        self.targets
            .values()
            .filter_map(|t| t.jit.clone())
            .collect()
    }
}

impl Runtime {
    /// Builds the runtime; secrets are read here, once, from their environment variables
    /// or files. `instance` identifies this gateway to the session-role sweeper and must
    /// stay the same across restarts on the same data directory.
    pub fn new(
        config: &Config,
        auth: Arc<Authenticator>,
        store: Store,
        tls: Arc<rustls::ServerConfig>,
        instance: &str,
    ) -> Result<Runtime, RuntimeError> {
        let mut targets = HashMap::new();
        let mut rules = Vec::new();
        let mut hub_config = HubConfig {
            admin_groups: config.api.admin_groups.clone(),
            ..HubConfig::default()
        };
        let mut review_specs = HashMap::new();
        let mut masking = HashMap::new();
        // Keys of connections without a configured one: random per gateway start.
        let mut gateway_key = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut gateway_key);
        for c in &config.connections {
            let err = |message: String| RuntimeError::Connection {
                connection: c.name.clone(),
                message,
            };
            let url = c.target_url().map_err(&err)?;
            let load = |src: SecretSource| src.load().map_err(&err);
            let jit = match (&c.jit, c.credentials) {
                (Some(j), CredentialsMode::Jit) => {
                    let admin = load(j.admin_password_source())?;
                    Some(JitManager::new(JitSettings::from_config(
                        c,
                        j,
                        &url,
                        admin,
                        instance,
                        config.gateway.connect_timeout,
                    )))
                }
                (None, CredentialsMode::Jit) => {
                    return Err(err("credentials = \"jit\" needs [connections.jit]".into()))
                }
                _ => None,
            };
            let default_user = match &c.jit {
                // Policy's "role" for a just-in-time session names what it is granted.
                Some(j) if jit.is_some() => Some(j.grant_roles.join(",")),
                _ => c.username.clone().or_else(|| url.user.clone()),
            };
            let default = match default_user {
                Some(user) => Some(TargetCredential {
                    user,
                    password: if jit.is_some() {
                        None
                    } else {
                        load(c.password_source())?
                    },
                }),
                None => None,
            };
            let mut roles = Vec::new();
            for r in c.roles.iter().filter(|_| jit.is_none()) {
                roles.push(TargetCredential {
                    user: r.username.clone(),
                    password: load(r.password_source())?,
                });
            }
            if let Some(w) = &c.webhook {
                let secret = load(w.secret_source())?
                    .ok_or_else(|| err("the webhook has no signing secret".into()))?;
                let hook = Webhook::new(WebhookSettings {
                    url: w.url.clone(),
                    secret: secret.expose().as_bytes().to_vec(),
                    timeout: w.timeout,
                    max_attempts: w.max_attempts,
                    initial_backoff: Duration::from_millis(500),
                })
                .map_err(|e| err(format!("webhook: {e}")))?;
                hub_config.webhooks.insert(c.name.clone(), hook);
            }
            if let Some(a) = &c.access_requests {
                hub_config.access.insert(
                    c.name.clone(),
                    AccessSpec {
                        approver_groups: a.approver_groups.clone(),
                        approvals: a.approvals,
                        max_duration: a.max_duration,
                        timeout: a.timeout,
                    },
                );
            }
            if c.rules
                .iter()
                .any(|r| r.action == warden_config::RuleAction::Review)
            {
                let specs = c
                    .rules
                    .iter()
                    .map(|r| {
                        (r.action == warden_config::RuleAction::Review).then(|| ReviewSpec {
                            approver_groups: r.approver_groups.clone(),
                            approvals: r.approvals,
                            timeout: r.timeout,
                        })
                    })
                    .collect::<Vec<_>>();
                review_specs.insert(c.name.clone(), specs);
            }
            if !c.masking.is_empty() {
                let key = match load(c.masking_key_source())? {
                    Some(k) => k.expose().as_bytes().to_vec(),
                    None => {
                        use hmac::Mac;
                        let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(&gateway_key)
                            .map_err(|e| err(e.to_string()))?;
                        m.update(c.name.as_bytes());
                        m.finalize().into_bytes().to_vec()
                    }
                };
                let key = warden_masking::MaskKey::new(key).map_err(|e| err(e.to_string()))?;
                let compiled = MaskRules::compile(&c.masking, key).map_err(&err)?;
                // The catalog is read as the role-management role, or the default role.
                let (user, password) = match (&jit, &default) {
                    (Some(j), _) => (
                        j.settings().admin_username.clone(),
                        j.settings().admin_password.as_ref().map(|p| p.expose().to_owned()),
                    ),
                    (None, Some(d)) => (
                        d.user.clone(),
                        d.password.as_ref().map(|p| p.expose().to_owned()),
                    ),
                    (None, None) => {
                        return Err(err(
                            "masking needs a role to read the catalog: set username or [connections.jit]".into(),
                        ))
                    }
                };
                let handle = CatalogHandle::new(
                    &url.host,
                    url.port,
                    &url.database,
                    &user,
                    password.as_deref(),
                    Arc::new(compiled),
                    config.gateway.connect_timeout,
                );
                masking.insert(
                    c.name.clone(),
                    Arc::new(ConnectionMasking {
                        handle: Arc::new(handle),
                    }),
                );
            }
            rules.push(ConnectionRules {
                name: c.name.clone(),
                allow_groups: c.allow_groups.clone(),
                roles: c
                    .roles
                    .iter()
                    .map(|r| RoleMapping {
                        groups: r.groups.clone(),
                        role: r.username.clone(),
                    })
                    .collect(),
                default_role: default.as_ref().map(|d| d.user.clone()),
            });
            targets.insert(
                c.name.clone(),
                TargetRuntime {
                    host: url.host,
                    port: url.port,
                    database: url.database,
                    default,
                    roles,
                    jit,
                    jit_rule_roles: c.roles.iter().map(|r| r.username.clone()).collect(),
                    max_session: c.max_session,
                },
            );
        }
        let g = &config.gateway;
        let hub = Hub::new(store.clone(), hub_config);
        let reviews = review_specs
            .into_iter()
            .map(|(name, specs)| {
                (
                    name,
                    Arc::new(Reviews {
                        hub: hub.clone(),
                        specs,
                    }),
                )
            })
            .collect();
        Ok(Runtime {
            guardrails: config
                .connections
                .iter()
                .filter_map(|c| {
                    let g = c.guardrails.as_ref()?;
                    Some((
                        c.name.clone(),
                        Guardrails {
                            max_rows: g.max_rows,
                            rate: g
                                .max_statements_per_minute
                                .map(|n| Arc::new(RateLimiter::new(n))),
                            exempt_groups: g.exempt_groups.clone(),
                        },
                    ))
                })
                .collect(),
            masking,
            hub,
            reviews,
            auth,
            policy: AccessPolicy::new(rules),
            targets,
            analyzer: Arc::new(Analyzer::new(g.statement_cache)),
            store,
            tls,
            require_tls: g.require_tls,
            max_message: g.max_message_bytes,
            handshake_timeout: g.handshake_timeout,
            connect_timeout: g.connect_timeout,
            cancels: CancelRegistry::default(),
            conn_limit: Arc::new(Semaphore::new(g.max_connections)),
            sessions: Registry::default(),
            recordings: config.recording.enabled.then(|| config.recordings_dir()),
            record_limits: RecordLimits {
                max_rows: config.recording.max_rows_per_statement,
                max_bytes: config.recording.max_bytes_per_statement,
            },
            token_grace: g.token_grace,
            idle_timeouts: config
                .connections
                .iter()
                .filter_map(|c| c.idle_timeout.map(|d| (c.name.clone(), d)))
                .collect(),
            rules: config
                .connections
                .iter()
                .filter(|c| !c.rules.is_empty())
                .map(|c| (c.name.clone(), Arc::new(statement_rules(&c.rules))))
                .collect(),
        })
    }
}

/// The policy form of `[[connections.rules]]` (validated by the config loader).
fn statement_rules(rules: &[warden_config::StatementRuleConfig]) -> StatementRules {
    StatementRules::new(
        rules
            .iter()
            .map(|r| Rule {
                action: match r.action {
                    warden_config::RuleAction::Allow => Action::Allow,
                    warden_config::RuleAction::Deny => Action::Deny,
                    warden_config::RuleAction::Review => Action::Review,
                },
                classes: r
                    .classes
                    .iter()
                    .filter_map(|c| StatementClass::from_name(c))
                    .collect(),
                kinds: r.kinds.clone(),
                tables: r.tables.clone(),
                functions: r.functions.clone(),
                groups: r.groups.clone(),
                except_groups: r.except_groups.clone(),
                message: r.message.clone(),
            })
            .collect(),
    )
}
