//! `warden mcp` on stdio: a thin relay to the gateway's streamable HTTP endpoint `/mcp`.
//! The tools run in the gateway, never in this process, so every call is in the gateway's
//! audit chain, reviews are shared with every other session of the same caller, and
//! `describe` knows the gateway's masking rules.
//!
//! The upstream session is opened with the caller's current token; when the token changes
//! (a refreshed login) or the upstream session is lost, the next request opens a new one.

use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, Implementation,
    InitializeRequestParams, ListToolsResult, PaginatedRequestParams, ServerCapabilities,
    ServerConfig, ServerPeerInfo,
};
use rmcp::service::{RequestContext, RunningService, ServiceError};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::{ErrorData as McpError, RoleClient, RoleServer, ServerHandler, ServiceExt as _};
use serde_json::json;
use tokio::sync::Mutex;
use warden_types::Secret;

use crate::futures_lite::BoxFuture;

/// Gives the caller's current token (refreshing a cached login as needed), or why there
/// is none.
pub type TokenProvider = Arc<dyn Fn() -> BoxFuture<Result<Secret, String>> + Send + Sync>;

/// An open upstream session and the token it was opened with.
struct Upstream {
    token: Secret,
    client: RunningService<RoleClient, InitializeRequestParams>,
}

/// Why the gateway could not be used, as the model and the person should read it.
struct Failure {
    code: &'static str,
    message: String,
}

impl Failure {
    fn mcp(&self) -> McpError {
        McpError::internal_error(self.message.clone(), Some(json!({"code": self.code})))
    }

    fn tool(&self) -> CallToolResult {
        CallToolResult::structured_error(
            json!({"error": {"code": self.code, "message": self.message}}),
        )
    }
}

/// The stdio MCP server relaying to `{gateway}/mcp`.
#[derive(Clone)]
pub struct Relay {
    url: Arc<str>,
    tokens: TokenProvider,
    client_info: InitializeRequestParams,
    server_info: Arc<std::sync::Mutex<Option<Arc<ServerPeerInfo>>>>,
    upstream: Arc<Mutex<Option<Upstream>>>,
}

impl Relay {
    /// A relay to the gateway at `gateway` (`http://127.0.0.1:8080`).
    pub fn new(gateway: &str, tokens: TokenProvider) -> Relay {
        let mut info = Implementation::from_build_env();
        info.name = "warden-mcp-stdio".into();
        Relay {
            url: format!("{}/mcp", gateway.trim_end_matches('/')).into(),
            tokens,
            client_info: InitializeRequestParams::new(Default::default(), info),
            server_info: Arc::new(std::sync::Mutex::new(None)),
            upstream: Arc::new(Mutex::new(None)),
        }
    }

    /// Opens (or reuses) the upstream session for the caller's current token and gives a
    /// handle to it.
    async fn session(&self) -> Result<rmcp::service::Peer<RoleClient>, Failure> {
        let token = (self.tokens)().await.map_err(|message| Failure {
            code: "unauthenticated",
            message,
        })?;
        let mut up = self.upstream.lock().await;
        if let Some(u) = up.as_ref() {
            if u.token.expose() == token.expose() && !u.client.is_closed() {
                return Ok(u.client.peer().clone());
            }
        }
        if let Some(old) = up.take() {
            let _ = old.client.cancel().await;
        }
        let config = StreamableHttpClientTransportConfig::with_uri(self.url.clone())
            .auth_header(token.expose());
        let transport = StreamableHttpClientTransport::from_config(config);
        let client = self
            .client_info
            .clone()
            .serve(transport)
            .await
            .map_err(|e| {
                if e.auth_challenge().is_some() {
                    self.refused()
                } else {
                    self.unreachable(&e)
                }
            })?;
        if let Some(info) = client.peer_info() {
            *self.server_info.lock().unwrap_or_else(|p| p.into_inner()) = Some(info);
        }
        let peer = client.peer().clone();
        *up = Some(Upstream { token, client });
        Ok(peer)
    }

    fn refused(&self) -> Failure {
        Failure {
            code: "unauthenticated",
            message: format!(
                "the gateway at {} refused the token (401): sign in again with `warden login`, or pass a valid --token / WARDEN_TOKEN",
                self.url
            ),
        }
    }

    fn unreachable(&self, e: &dyn std::fmt::Display) -> Failure {
        Failure {
            code: "gateway_unavailable",
            message: format!("cannot reach the Warden gateway at {}: {e}", self.url),
        }
    }

    /// A request failed upstream: a 401 means the token went bad; anything else drops the
    /// session so the next request opens a new one.
    async fn failed(&self, e: ServiceError) -> Failure {
        match e {
            ServiceError::McpError(e) => Failure {
                code: "gateway_error",
                message: e.message.to_string(),
            },
            e => {
                let refused = e.auth_challenge().is_some();
                if let Some(old) = self.upstream.lock().await.take() {
                    let _ = old.client.cancel().await;
                }
                if refused {
                    self.refused()
                } else {
                    self.unreachable(&e)
                }
            }
        }
    }

    /// Calls `f` on the upstream session; a lost session (gateway restarted, session
    /// expired) is reopened once.
    async fn with_session<T, F, Fut>(&self, f: F) -> Result<T, Failure>
    where
        F: Fn(rmcp::service::Peer<RoleClient>) -> Fut,
        Fut: std::future::Future<Output = Result<T, ServiceError>>,
    {
        let peer = self.session().await?;
        let e = match f(peer).await {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        let lost = matches!(
            e,
            ServiceError::TransportClosed | ServiceError::TransportSend(_)
        ) && e.auth_challenge().is_none();
        if !lost {
            return Err(self.failed(e).await);
        }
        tracing::debug!(error = %e, "upstream MCP session lost; reopening");
        let _ = self.failed(e).await;
        let peer = self.session().await?;
        match f(peer).await {
            Ok(v) => Ok(v),
            Err(e) => Err(self.failed(e).await),
        }
    }

    /// What `initialize` answers: the gateway's own server info and instructions once a
    /// session is open. Only tools are relayed, whatever else the gateway offers.
    fn info(&self) -> ServerConfig {
        let upstream = self
            .server_info
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let info = upstream
            .as_ref()
            .and_then(|u| u.server_info.clone())
            .unwrap_or_else(|| {
                let mut info = Implementation::from_build_env();
                info.name = "warden".into();
                info.title = Some("Warden".into());
                info
            });
        let config = ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(info);
        match upstream.and_then(|u| u.instructions.clone()) {
            Some(i) => config.with_instructions(i),
            None => config,
        }
    }
}

impl ServerHandler for Relay {
    fn get_info(&self) -> ServerConfig {
        self.info()
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        self.with_session(|peer| {
            let request = request.clone();
            async move { peer.list_tools(request).await }
        })
        .await
        .map_err(|f| f.mcp())
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        // Tool calls are not retried after a lost session: the gateway may have run the
        // statement already.
        let peer = match self.session().await {
            Ok(p) => p,
            Err(f) => return Ok(f.tool().into()),
        };
        match peer.call_tool_once(request).await {
            Ok(r) => Ok(r),
            Err(e) => Ok(self.failed(e).await.tool().into()),
        }
    }
}

/// Serves the relay on stdin/stdout until the client closes the stream. The upstream
/// session is opened first, so `initialize` answers with the gateway's own server info; a
/// refused token or an unreachable gateway is reported on stderr and then on every
/// request, as a clear MCP error.
pub async fn serve_stdio(gateway: &str, tokens: TokenProvider) -> anyhow::Result<()> {
    let relay = Relay::new(gateway, tokens);
    if let Err(f) = relay.session().await {
        tracing::warn!(code = f.code, "{}", f.message);
    }
    let running = relay
        .clone()
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| anyhow::anyhow!("MCP initialization failed: {e}"))?;
    running.waiting().await?;
    if let Some(up) = relay.upstream.lock().await.take() {
        // Ends the upstream session (DELETE /mcp).
        let _ = up.client.cancel().await;
    }
    Ok(())
}
