//! Streamable HTTP at `/mcp`: every request carries `Authorization: Bearer`, verified with
//! the gateway's [`Authenticator`] before rmcp sees it (401 with a `WWW-Authenticate` that
//! points at the RFC 9728 metadata otherwise); `/.well-known/oauth-protected-resource`
//! names the configured OIDC issuers as authorization servers.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::json;
use warden_identity::Authenticator;
use warden_types::Secret;

use crate::{Caller, Shared, WardenMcp};

/// The path of the RFC 9728 metadata.
pub const METADATA_PATH: &str = "/.well-known/oauth-protected-resource";

#[derive(Clone)]
struct Gate {
    auth: Arc<Authenticator>,
    issuers: Arc<Vec<String>>,
}

/// `/mcp` and the protected-resource metadata, for merging into the gateway's router.
/// `issuers` are the configured OIDC issuers (the authorization servers); `listen` is the
/// HTTP listener's address, accepted in `Host` besides the loopback names (rmcp refuses
/// other hosts, against DNS rebinding).
pub fn router(
    shared: Arc<Shared>,
    auth: Arc<Authenticator>,
    issuers: Vec<String>,
    listen: std::net::SocketAddr,
) -> Router {
    let gate = Gate {
        auth,
        issuers: Arc::new(issuers),
    };
    let mut config = StreamableHttpServerConfig::default();
    if !listen.ip().is_unspecified() && !listen.ip().is_loopback() {
        config.allowed_hosts.push(listen.ip().to_string());
    }
    let service = StreamableHttpService::new(
        move || Ok(WardenMcp::new(shared.clone())),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let mcp = Router::new()
        .nest_service("/mcp", service)
        .layer(axum::middleware::from_fn(session_closed))
        .layer(axum::middleware::from_fn_with_state(gate.clone(), verify));
    Router::new()
        .route(METADATA_PATH, get(metadata))
        .route(&format!("{METADATA_PATH}/mcp"), get(metadata))
        .with_state(gate)
        .merge(mcp)
}

/// `http://host` as the client addressed us (loopback listener; no proxy in between).
fn origin(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_graphic()))
        .unwrap_or("localhost");
    format!("http://{host}")
}

async fn metadata(State(gate): State<Gate>, headers: HeaderMap) -> Response {
    let base = origin(&headers);
    Json(json!({
        "resource": format!("{base}/mcp"),
        "authorization_servers": *gate.issuers,
        "bearer_methods_supported": ["header"],
        "resource_name": "Warden MCP server",
    }))
    .into_response()
}

/// Verifies the bearer on every request and hands the caller to the tools.
async fn verify(State(gate): State<Gate>, mut req: Request, next: Next) -> Response {
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| {
            h.strip_prefix("Bearer ")
                .or_else(|| h.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(Secret::new);
    let Some(token) = token else {
        return unauthorized(
            req.headers(),
            "send Authorization: Bearer <token or API key>",
        );
    };
    match gate.auth.authenticate(token.expose()).await {
        Ok(identity) => {
            req.extensions_mut().insert(Caller { token, identity });
            next.run(req).await
        }
        Err(e) => unauthorized(req.headers(), &e.reason()),
    }
}

/// rmcp answers a session's DELETE with 202; clients (the Python `mcp` SDK) expect 200 or
/// 204 and log a failure on every close otherwise. The session is closed either way.
async fn session_closed(req: Request, next: Next) -> Response {
    let delete = req.method() == http::Method::DELETE;
    let resp = next.run(req).await;
    if delete && resp.status() == StatusCode::ACCEPTED {
        return StatusCode::NO_CONTENT.into_response();
    }
    resp
}

fn unauthorized(headers: &HeaderMap, detail: &str) -> Response {
    let challenge = format!(
        "Bearer resource_metadata=\"{}{METADATA_PATH}\"",
        origin(headers)
    );
    (
        StatusCode::UNAUTHORIZED,
        [
            (header::WWW_AUTHENTICATE, challenge),
            (header::CONTENT_TYPE, "application/problem+json".to_owned()),
        ],
        json!({
            "type": "about:blank",
            "title": "Unauthorized",
            "status": 401,
            "code": "unauthenticated",
            "detail": detail,
        })
        .to_string(),
    )
        .into_response()
}
