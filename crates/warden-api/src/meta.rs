//! `/api/v1/health`, `/api/v1/auth/config` (what a console or the CLI needs to sign in),
//! `/api/v1/me` (the caller and its roles) and `/api/v1/openapi.json`. Only `/me` needs a
//! credential.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Caller, Role};
use crate::extract::{NoQuery, Q};
use crate::Api;

pub(crate) fn routes() -> OpenApiRouter<Api> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(auth_config))
        .routes(routes!(me))
        .routes(routes!(openapi))
}

/// The gateway is up.
#[derive(Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    #[schema(example = "ok")]
    pub status: &'static str,
    /// Warden's version.
    #[schema(example = "0.1.0")]
    pub version: &'static str,
}

/// Liveness and version.
#[utoipa::path(get, operation_id = "get_health", path = "/api/v1/health", tag = "meta",
    responses((status = 200, description = "The gateway is up", body = Health)))]
async fn health(Q(_): Q<NoQuery>) -> Json<Health> {
    Json(Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
    })
}

/// How to sign in.
#[derive(Serialize, ToSchema)]
pub struct AuthConfig {
    /// The first configured OIDC provider, when there is one.
    pub oidc: Option<OidcSignIn>,
    /// Whether the built-in token issuer is on (`warden tokens issue`).
    pub builtin: bool,
    /// Whether API keys are accepted.
    pub api_keys: bool,
    /// Where PostgreSQL clients connect (`host:port`).
    #[schema(example = "127.0.0.1:15432")]
    pub postgres_listen: String,
}

/// An OIDC provider's sign-in settings.
#[derive(Serialize, ToSchema)]
pub struct OidcSignIn {
    /// Issuer URL (discovery at `<issuer>/.well-known/openid-configuration`).
    pub issuer: String,
    /// The audience tokens must carry (the first accepted one).
    pub audience: String,
    /// Every accepted audience.
    pub audiences: Vec<String>,
    /// Discovery document URL, when not the issuer's well-known one.
    pub discovery_url: Option<String>,
    /// `[api] console_client_id`: the console's client (authorization code with PKCE).
    pub console_client_id: Option<String>,
    /// `[api] cli_client_id`: `warden login`'s client (device authorization).
    pub cli_client_id: Option<String>,
    /// Scopes to ask for.
    pub scopes: Vec<String>,
    /// The claim holding groups.
    pub groups_claim: String,
}

/// Sign-in settings for the console and the CLI (public).
#[utoipa::path(get, operation_id = "get_auth_config", path = "/api/v1/auth/config", tag = "meta",
    responses((status = 200, description = "Sign-in settings", body = AuthConfig)))]
async fn auth_config(State(api): State<Api>, Q(_): Q<NoQuery>) -> Json<AuthConfig> {
    let c = &api.config;
    let oidc = c.identity.oidc.first().map(|o| {
        let audiences = o.audience.to_vec();
        OidcSignIn {
            issuer: o.issuer.clone(),
            audience: audiences.first().cloned().unwrap_or_default(),
            audiences,
            discovery_url: o.discovery_url.clone(),
            console_client_id: c.api.console_client_id.clone(),
            cli_client_id: c.api.cli_client_id.clone(),
            scopes: ["openid", "profile", "email", "offline_access"]
                .map(str::to_owned)
                .to_vec(),
            groups_claim: o.groups_claim.clone(),
        }
    });
    Json(AuthConfig {
        oidc,
        builtin: c.identity.builtin.enabled,
        api_keys: c.identity.api_keys.enabled,
        postgres_listen: api.postgres_listen.to_string(),
    })
}

/// The caller.
#[derive(Serialize, ToSchema)]
pub struct Me {
    /// Stable subject.
    pub subject: String,
    /// Human-readable name.
    pub display_name: String,
    /// Who vouched (`warden` for built-in tokens and API keys).
    pub issuer: String,
    /// `oidc`, `builtin` or `api_key`.
    pub credential_kind: String,
    /// Groups.
    pub groups: Vec<String>,
    /// Roles under `/api/v1`, strongest first; always ends with `user`.
    pub roles: Vec<Role>,
    /// The party acting through this identity, if any.
    pub actor: Option<String>,
    /// When the credential expires (unix ms), if it does.
    pub expires_at: Option<i64>,
}

/// Who the credential belongs to and what it may do.
#[utoipa::path(get, operation_id = "get_me", path = "/api/v1/me", tag = "meta", security(("bearer" = [])),
    responses((status = 200, description = "The caller", body = Me)))]
async fn me(caller: Caller, Q(_): Q<NoQuery>) -> Json<Me> {
    let w = caller.who;
    Json(Me {
        subject: w.subject.0.clone(),
        display_name: w.display_name,
        issuer: w.issuer,
        credential_kind: w.kind.as_str().to_owned(),
        groups: w.groups,
        roles: caller.roles,
        actor: w.actor,
        expires_at: w.expires_at.map(warden_store::to_ms),
    })
}

/// This document (public).
#[utoipa::path(get, operation_id = "get_openapi", path = "/api/v1/openapi.json", tag = "meta",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json", body = Object)))]
async fn openapi(Q(_): Q<NoQuery>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        crate::openapi_json(),
    )
}
