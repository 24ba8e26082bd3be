//! `warden gateway`: build every stage from the configuration and serve.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use warden_config::Config;
use warden_identity::{Authenticator, BuiltinIssuer, BuiltinSettings, OidcSettings};
use warden_store::Store;

use crate::Overrides;

/// Runs the gateway from a configuration file.
pub async fn run(path: &Path, overrides: Overrides) -> anyhow::Result<ExitCode> {
    let mut config = super::load_config(path)?;
    apply(&mut config, &overrides);
    init_tracing();
    let gw = Gateway::build(&config).await?;
    gw.serve(|pg, http| {
        eprintln!("warden: PostgreSQL listener on {pg}, HTTP on http://{http}");
    })
    .await?;
    Ok(ExitCode::SUCCESS)
}

/// Applies command-line overrides to a configuration.
pub fn apply(config: &mut Config, o: &Overrides) {
    if let Some(d) = &o.data_dir {
        config.gateway.data_dir = d.clone();
    }
    if let Some(a) = o.postgres_listen {
        config.gateway.postgres_listen = a;
    }
    if let Some(a) = o.http_listen {
        config.gateway.http_listen = a;
    }
}

/// Logs go to stderr; `RUST_LOG` picks the level (default `info`).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// The built-in issuer's settings for a configuration.
pub fn builtin_settings(config: &Config) -> BuiltinSettings {
    BuiltinSettings {
        issuer: config.identity.builtin.issuer.clone(),
        audience: config.identity.builtin.audience.clone(),
        key_path: config.gateway.data_dir.join("issuer").join("ed25519.pk8"),
    }
}

/// Every stage, built and ready to serve.
pub struct Gateway {
    config: Config,
    runtime: Arc<warden_pg::Runtime>,
    metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    /// The store.
    pub store: Store,
}

impl Gateway {
    /// Builds identity, policy, store and TLS from `config`.
    pub async fn build(config: &Config) -> anyhow::Result<Gateway> {
        let metrics = warden_api::install_metrics();
        let data_dir = &config.gateway.data_dir;
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("cannot create data directory {}", data_dir.display()))?;
        let store = Store::open(&config.store_url()).await?;
        let issuer = if config.identity.builtin.enabled {
            Some(BuiltinIssuer::load_or_create(builtin_settings(config))?)
        } else {
            None
        };
        let oidc = config
            .identity
            .oidc
            .iter()
            .map(|o| {
                let mut s = OidcSettings::new(&o.issuer, o.audience.to_vec());
                s.groups_claim = o.groups_claim.clone();
                if let Some(a) = &o.algorithms {
                    s.algorithms = a.clone();
                }
                s.leeway = o.leeway;
                s.jwks_min_refresh = o.jwks_min_refresh;
                s.jwks_max_age = o.jwks_max_age;
                s.discovery_url = o.discovery_url.clone();
                s
            })
            .collect();
        let mut auth = Authenticator::new(oidc, issuer, Arc::new(store.clone()))?;
        if !config.identity.api_keys.enabled {
            auth = auth.without_api_keys();
        }
        let tls = warden_pg::tls::server_config(
            config.gateway.tls_cert.as_deref(),
            config.gateway.tls_key.as_deref(),
            data_dir,
        )?;
        let instance = instance_id(data_dir)?;
        let runtime =
            warden_pg::Runtime::new(config, Arc::new(auth), store.clone(), tls, &instance)?;
        Ok(Gateway {
            config: config.clone(),
            runtime: Arc::new(runtime),
            metrics,
            store,
        })
    }

    /// The built-in issuer, when enabled.
    pub fn issuer(&self) -> Option<&BuiltinIssuer> {
        self.runtime.auth.builtin()
    }

    /// Binds both listeners, calls `on_ready` with their addresses, and serves until
    /// Ctrl-C or SIGTERM.
    pub async fn serve(
        self,
        on_ready: impl FnOnce(std::net::SocketAddr, std::net::SocketAddr),
    ) -> anyhow::Result<()> {
        let g = &self.config.gateway;
        let pg = tokio::net::TcpListener::bind(g.postgres_listen)
            .await
            .with_context(|| format!("cannot listen on {} (postgres_listen)", g.postgres_listen))?;
        let http = tokio::net::TcpListener::bind(g.http_listen)
            .await
            .with_context(|| format!("cannot listen on {} (http_listen)", g.http_listen))?;
        let (pg_addr, http_addr) = (pg.local_addr()?, http.local_addr()?);
        tracing::info!(postgres = %pg_addr, http = %http_addr, "warden gateway listening");
        // One session thread per CPU unless configured; up before the listener is announced.
        let threads = g.session_threads.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        });
        let session_threads = warden_pg::SessionThreads::start(threads).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "could not start session threads; sessions share the runtime");
            warden_pg::SessionThreads::default()
        });
        on_ready(pg_addr, http_addr);
        let registry = self.runtime.sessions.clone();
        let api = warden_api::Api::new(
            &self.config,
            self.runtime.auth.clone(),
            self.store.clone(),
            self.runtime.hub.clone(),
            self.runtime.recordings.clone(),
            std::sync::Arc::new(move |id: &str, by: &str| {
                registry.stop(id, warden_pg::error::Ended::Killed(by.to_owned()))
            }),
            pg_addr,
        );
        let router = warden_api::router(self.metrics.clone(), Some(api))
            .merge(self.mcp_router(pg_addr, http_addr)?);
        // Statement reviews of a previous run died with its connections.
        match self.runtime.hub.recover().await {
            Ok(n) if n > 0 => tracing::warn!(
                reviews = n,
                "withdrew statement reviews left pending by an earlier run"
            ),
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "could not withdraw stale statement reviews"),
        }
        // Where CLI commands on this data directory (`warden reviews approve`) reach the API.
        write_address_file(&self.config.gateway.data_dir, http_addr);
        // Orphans of an earlier run of this instance go first, then every sweep_interval.
        let jit = self.runtime.jit_managers();
        let mut tasks: Vec<_> = jit.iter().map(|m| m.spawn_sweeper()).collect();
        // Sessions a killed predecessor left `live` are incomplete: say so, chained.
        match self.store.mark_live_incomplete().await {
            Ok(ids) if !ids.is_empty() => {
                tracing::warn!(sessions = ?ids, "sessions of a gateway that stopped without ending them are marked incomplete");
                // Their recordings still end in the writer's preallocated zeros.
                if let Some(dir) = &self.runtime.recordings {
                    for id in &ids {
                        if let Err(e) = warden_recording::writer::trim_preallocated(dir, id) {
                            if e.kind() != std::io::ErrorKind::NotFound {
                                tracing::warn!(session = %id, error = %e, "could not trim an incomplete recording");
                            }
                        }
                    }
                }
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "could not mark incomplete sessions"),
        }
        tasks.push(tokio::spawn(self.runtime.sessions.clone().control_loop(
            self.store.clone(),
            std::time::Duration::from_millis(250),
        )));
        if let (Some(dir), Some(retention)) = (
            self.runtime.recordings.clone(),
            self.config.recording.retention,
        ) {
            tasks.push(tokio::spawn(super::sessions::purge_loop(
                self.store.clone(),
                dir,
                retention,
                self.config.recording.purge_interval,
                self.runtime.sessions.clone(),
            )));
        }
        let res = tokio::select! {
            _ = warden_pg::serve(pg, self.runtime.clone(), session_threads) => Ok(()),
            r = warden_api::serve(http, router) => r.context("HTTP listener failed"),
            _ = shutdown_signal() => {
                tracing::info!("shutting down");
                Ok(())
            }
        };
        for t in tasks {
            t.abort();
        }
        // Live sessions end with a 57P01 that says why, and finish their recordings.
        self.runtime
            .sessions
            .stop_all(warden_pg::error::Ended::Shutdown);
        let wait_until = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !self.runtime.sessions.is_empty() && std::time::Instant::now() < wait_until {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        // Session roles go with the gateway: their backends are terminated, their sessions
        // end. Bounded, so a target that is down cannot stall the exit; the next start's
        // sweeper finishes what is left.
        let drops = futures::future::join_all(jit.iter().map(|m| m.shutdown()));
        if tokio::time::timeout(std::time::Duration::from_secs(10), drops)
            .await
            .is_err()
        {
            tracing::warn!("some session roles were not dropped at shutdown; the sweeper will");
        }
        res
    }
}

impl Gateway {
    /// `/mcp` (streamable HTTP) and its protected-resource metadata. The MCP tools reach
    /// this gateway's own listeners on loopback, so every control applies; each tool call
    /// is also appended to the audit chain.
    fn mcp_router(
        &self,
        pg: std::net::SocketAddr,
        http: std::net::SocketAddr,
    ) -> anyhow::Result<axum::Router> {
        let local = |mut a: std::net::SocketAddr| {
            if a.ip().is_unspecified() {
                a.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
            }
            a
        };
        let mut settings = warden_mcp::Settings::new(local(pg), format!("http://{}", local(http)))
            .with_config_masking(&self.config)?;
        let store = self.store.clone();
        settings.recorder = Some(Arc::new(move |ev: warden_mcp::ToolEvent| {
            let store = store.clone();
            Box::pin(async move {
                if let Err(e) = store.record_auth(&mcp_audit_event(&ev)).await {
                    tracing::error!(error = %e, "could not write the MCP tool call to the audit");
                }
            })
        }));
        let issuers = self
            .config
            .identity
            .oidc
            .iter()
            .map(|o| o.issuer.clone())
            .collect();
        Ok(warden_mcp::http::router(
            warden_mcp::Shared::new(settings)?,
            self.runtime.auth.clone(),
            issuers,
            http,
        ))
    }
}

/// An MCP tool call as an audit row: `client_addr` is `mcp`, the reason names the tool,
/// its arguments (SQL that may hold a secret already redacted; tokens are never
/// arguments), the agent's actor when the token names one, and the decision.
fn mcp_audit_event(ev: &warden_mcp::ToolEvent) -> warden_store::AuthEvent {
    let id = ev.identity.as_ref();
    let actor = id
        .and_then(|i| i.actor.as_deref())
        .map(|a| format!(" actor={a}"))
        .unwrap_or_default();
    warden_store::AuthEvent {
        at: 0,
        subject: id.map(|i| i.subject.0.clone()),
        issuer: id.map(|i| i.issuer.clone()),
        credential_kind: id.map(|i| i.kind.as_str().to_owned()),
        connection: ev.connection.clone(),
        client_addr: "mcp".into(),
        result: if ev.allowed {
            warden_store::AuthResult::Allowed
        } else {
            warden_store::AuthResult::Denied
        },
        reason: format!(
            "mcp tool {} {}{actor}: {}",
            ev.tool, ev.arguments, ev.decision
        ),
        session_id: None,
    }
}

/// The running gateway's HTTP address, for CLI commands on the same data directory.
pub const ADDRESS_FILE: &str = "gateway.json";

fn write_address_file(data_dir: &Path, http: std::net::SocketAddr) {
    let mut addr = http;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let body = serde_json::json!({ "http": format!("http://{addr}"), "pid": std::process::id() });
    let path = data_dir.join(ADDRESS_FILE);
    if let Err(e) = std::fs::write(&path, body.to_string()) {
        tracing::warn!(path = %path.display(), error = %e, "could not write the address file; CLI commands need --gateway");
    }
}

/// This gateway's identity for the session-role sweeper: made once per data directory, so
/// a restarted gateway recognises the roles its killed predecessor left.
fn instance_id(data_dir: &Path) -> anyhow::Result<String> {
    let path = data_dir.join("instance_id");
    match std::fs::read_to_string(&path) {
        Ok(s) if !s.trim().is_empty() => Ok(s.trim().to_owned()),
        _ => {
            let id = uuid::Uuid::new_v4().simple().to_string();
            std::fs::write(&path, &id)
                .with_context(|| format!("cannot write {}", path.display()))?;
            Ok(id)
        }
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
