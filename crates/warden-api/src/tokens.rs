//! `/api/v1/tokens`: built-in tokens and API keys (admin) — issue, list, revoke, as
//! `warden tokens` does on the local store. A new secret appears once, in the response
//! that issues it; the store keeps only API key hashes and token ids. Issues and
//! revocations are audited.

use std::time::{Duration, SystemTime};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use warden_identity::generate_api_key;
use warden_store::{ApiKeyRow, AuthEvent, AuthResult, TokenRow};

use crate::auth::{Admin, Caller};
use crate::extract::{JsonBody, NoQuery, P, Q};
use crate::problem::{internal, Problem};
use crate::Api;

pub(crate) fn routes() -> OpenApiRouter<Api> {
    OpenApiRouter::new()
        .routes(routes!(list, issue))
        .routes(routes!(revoke))
}

/// Every token and API key (metadata only, never a secret).
#[derive(Serialize, ToSchema)]
pub struct TokenList {
    /// API keys, newest first.
    pub api_keys: Vec<ApiKeyRow>,
    /// Built-in tokens, newest first.
    pub tokens: Vec<TokenRow>,
}

/// Lists tokens and API keys (admin).
#[utoipa::path(get, operation_id = "list_tokens", path = "/api/v1/tokens", tag = "tokens", security(("bearer" = [])),
    responses((status = 200, description = "Tokens and API keys, without secrets", body = TokenList)))]
async fn list(
    State(api): State<Api>,
    Admin(_): Admin,
    Q(_): Q<NoQuery>,
) -> Result<Json<TokenList>, Problem> {
    Ok(Json(TokenList {
        api_keys: api.store.list_api_keys().await.map_err(internal)?,
        tokens: api.store.list_tokens().await.map_err(internal)?,
    }))
}

/// What to issue.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueBody {
    /// The identity it authenticates as (letters, digits, `-_.@`, 1-128).
    #[schema(example = "report-agent")]
    pub name: String,
    /// Groups it carries.
    #[serde(default)]
    pub groups: Vec<String>,
    /// `token` (a built-in JWT, default) or `api_key`.
    #[serde(default)]
    pub kind: IssueKind,
    /// Lifetime as `30m`, `8h`, …: tokens default to 1h and may not exceed
    /// `[identity.builtin] max_ttl`; API keys default to no expiry.
    pub ttl: Option<String>,
    /// Tokens only: the human or service acting through it (`act.sub`).
    pub actor: Option<String>,
}

/// Kind of credential.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IssueKind {
    /// A built-in JWT.
    #[default]
    Token,
    /// An API key `wdk_<id>_<secret>`.
    ApiKey,
}

/// A credential just issued; `secret` is shown this once.
#[derive(Serialize, ToSchema)]
pub struct Issued {
    /// `token` or `api_key`.
    pub kind: IssueKind,
    /// Token id (`jti`) or API key id: what `DELETE /api/v1/tokens/{id}` takes.
    pub id: String,
    /// The identity.
    pub name: String,
    /// Its groups.
    pub groups: Vec<String>,
    /// Expiry (unix ms), if any.
    pub expires_at: Option<i64>,
    /// The token or API key itself. Not stored, not shown again.
    pub secret: String,
}

fn check_name(name: &str) -> Result<(), Problem> {
    if name.is_empty()
        || name.len() > 128
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c))
    {
        return Err(Problem::bad_request(
            "bad_body",
            "name must be 1-128 characters of letters, digits, '-', '_', '.' or '@'",
        ));
    }
    Ok(())
}

fn check_groups(groups: &[String]) -> Result<Vec<String>, Problem> {
    let groups: Vec<String> = groups.iter().map(|g| g.trim().to_owned()).collect();
    if groups.len() > 64
        || groups
            .iter()
            .any(|g| g.is_empty() || g.len() > 256 || g.contains(char::is_control))
    {
        return Err(Problem::bad_request(
            "bad_body",
            "groups are at most 64 non-empty names of 1-256 printable characters",
        ));
    }
    Ok(groups)
}

/// Issues a built-in token or an API key (admin); the secret is in this response only.
#[utoipa::path(post, operation_id = "issue_token", path = "/api/v1/tokens", tag = "tokens", security(("bearer" = [])),
    request_body = IssueBody,
    responses((status = 201, description = "Issued; `secret` is shown this once", body = Issued)))]
async fn issue(
    State(api): State<Api>,
    Admin(caller): Admin,
    Q(_): Q<NoQuery>,
    JsonBody(body): JsonBody<IssueBody>,
) -> Result<Response, Problem> {
    check_name(&body.name)?;
    let groups = check_groups(&body.groups)?;
    let ttl: Option<Duration> = body
        .ttl
        .as_deref()
        .map(|t| {
            humantime::parse_duration(t)
                .ok()
                .filter(|d| *d >= Duration::from_secs(1))
                .ok_or_else(|| Problem::bad_request("bad_body", "ttl is a length like 30m or 8h"))
        })
        .transpose()?;
    let issued = match body.kind {
        IssueKind::ApiKey => {
            if body.actor.is_some() {
                return Err(Problem::bad_request(
                    "bad_body",
                    "actor applies to tokens, not API keys",
                ));
            }
            if !api.config.identity.api_keys.enabled {
                return Err(Problem::new(
                    StatusCode::CONFLICT,
                    "api_keys_disabled",
                    "API keys are disabled in the configuration",
                ));
            }
            let key = generate_api_key();
            let expires = ttl.map(|t| SystemTime::now() + t);
            api.store
                .insert_api_key(&key.id, &body.name, &groups, &key.secret_hash, expires)
                .await
                .map_err(internal)?;
            Issued {
                kind: IssueKind::ApiKey,
                id: key.id.clone(),
                name: body.name,
                groups,
                expires_at: expires.map(warden_store::to_ms),
                secret: key.plaintext.expose().to_owned(),
            }
        }
        IssueKind::Token => {
            let issuer = api.auth.builtin().ok_or_else(|| {
                Problem::new(
                    StatusCode::CONFLICT,
                    "builtin_disabled",
                    "the built-in issuer is disabled in the configuration",
                )
            })?;
            let ttl = ttl.unwrap_or(Duration::from_secs(3600));
            let max = api.config.identity.builtin.max_ttl;
            if ttl > max {
                return Err(Problem::bad_request(
                    "bad_body",
                    format!(
                        "ttl exceeds identity.builtin.max_ttl ({})",
                        humantime::format_duration(max)
                    ),
                ));
            }
            let token = issuer
                .issue(&body.name, &groups, ttl, body.actor.as_deref())
                .map_err(|e| Problem::bad_request("bad_body", e.to_string()))?;
            api.store
                .insert_token(&token.jti, &body.name, &groups, token.expires_at)
                .await
                .map_err(internal)?;
            Issued {
                kind: IssueKind::Token,
                id: token.jti.clone(),
                name: body.name,
                groups,
                expires_at: Some(warden_store::to_ms(token.expires_at)),
                secret: token.token.expose().to_owned(),
            }
        }
    };
    let what = match issued.kind {
        IssueKind::Token => "token",
        IssueKind::ApiKey => "API key",
    };
    audit(
        &api,
        &caller,
        format!(
            "issued {what} {} for {} with groups {:?} through the API",
            issued.id, issued.name, issued.groups
        ),
    )
    .await;
    Ok((StatusCode::CREATED, Json(issued)).into_response())
}

async fn audit(api: &Api, caller: &Caller, reason: String) {
    let ev = AuthEvent {
        at: 0,
        subject: Some(caller.who.subject.0.clone()),
        issuer: Some(caller.who.issuer.clone()),
        credential_kind: Some(caller.who.kind.as_str().to_owned()),
        connection: None,
        client_addr: String::new(),
        result: AuthResult::Allowed,
        reason,
        session_id: None,
    };
    if let Err(e) = api.store.record_auth(&ev).await {
        tracing::error!(error = %e, "could not audit a token change");
    }
}

/// A revocation done.
#[derive(Serialize, ToSchema)]
pub struct Revoked {
    /// The id revoked.
    pub id: String,
    /// Always true.
    pub revoked: bool,
}

/// Revokes a token (by `jti`) or an API key (by id); live sessions opened with it end.
#[utoipa::path(delete, operation_id = "revoke_token", path = "/api/v1/tokens/{id}", tag = "tokens", security(("bearer" = [])),
    params(("id" = String, Path, description = "Token id (jti) or API key id")),
    responses((status = 200, description = "Revoked", body = Revoked)))]
async fn revoke(
    State(api): State<Api>,
    Admin(caller): Admin,
    P(id): P<String>,
    Q(_): Q<NoQuery>,
) -> Result<Json<Revoked>, Problem> {
    // Ids only: a full API key in a URL would put its secret in logs.
    if id.is_empty()
        || id.len() > 64
        || id.starts_with("wdk_")
        || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return Err(Problem::bad_request(
            "bad_token_id",
            "a token id is its jti or the API key's id (not the key itself)",
        ));
    }
    if !api.store.revoke(&id).await.map_err(internal)? {
        return Err(Problem::not_found(
            "no_such_token",
            "no active token or API key with that id",
        ));
    }
    audit(&api, &caller, format!("revoked {id} through the API")).await;
    Ok(Json(Revoked { id, revoked: true }))
}
