//! `/api/v1/sessions` and `/api/v1/audit`: recorded sessions and the audit chains, for
//! auditors (read) and administrators (kill). Every route needs a bearer token (OIDC,
//! built-in or API key) whose groups include an allowed group; errors are RFC 9457
//! problem details.

use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use warden_identity::Authenticator;
use warden_recording::export::{export, ExportFormat};
use warden_recording::reader::{path_for, read_file};
use warden_recording::replay::render_timeline;
use warden_recording::verify::{verify_file_with, VerifyOptions};
use warden_store::{SessionFilter, Store};
use warden_types::Identity;

/// Ends a session live in this process; true if it was.
pub type LocalStop = Arc<dyn Fn(&str, &str) -> bool + Send + Sync>;

/// What the session routes need.
#[derive(Clone)]
pub struct SessionsApi {
    /// Checks bearer tokens.
    pub auth: Arc<Authenticator>,
    /// The store.
    pub store: Store,
    /// Recordings directory.
    pub recordings: PathBuf,
    /// Groups that may read sessions and the audit.
    pub auditor_groups: Vec<String>,
    /// Groups that may also kill sessions.
    pub admin_groups: Vec<String>,
    /// Ends a session held by this gateway at once (others see the store request).
    pub stop: LocalStop,
}

/// An RFC 9457 problem.
pub struct Problem {
    status: StatusCode,
    code: &'static str,
    detail: String,
}

impl Problem {
    pub(crate) fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Problem {
            status,
            code,
            detail: detail.into(),
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "type": format!("https://warden.dev/problems/{}", self.code),
            "title": self.status.canonical_reason().unwrap_or(""),
            "status": self.status.as_u16(),
            "code": self.code,
            "detail": self.detail,
        });
        (
            self.status,
            [(header::CONTENT_TYPE, "application/problem+json")],
            body.to_string(),
        )
            .into_response()
    }
}

pub(crate) fn internal(e: impl std::fmt::Display) -> Problem {
    tracing::error!(error = %e, "API request failed");
    Problem::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "the request could not be completed; see the gateway log",
    )
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Need {
    Auditor,
    Admin,
}

impl SessionsApi {
    async fn caller(&self, headers: &HeaderMap, need: Need) -> Result<Identity, Problem> {
        let who = bearer_identity(&self.auth, headers).await?;
        let admin = self.admin_groups.iter().any(|g| who.in_group(g));
        let auditor = admin || self.auditor_groups.iter().any(|g| who.in_group(g));
        let ok = match need {
            Need::Admin => admin,
            Need::Auditor => auditor,
        };
        if !ok {
            let groups = match need {
                Need::Admin => &self.admin_groups,
                Need::Auditor => &self.auditor_groups,
            };
            return Err(Problem::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("this needs membership in one of {groups:?}"),
            ));
        }
        Ok(who)
    }
}

/// Who sent the request: its `Authorization: Bearer` token or API key, checked.
pub(crate) async fn bearer_identity(
    auth: &Authenticator,
    headers: &HeaderMap,
) -> Result<Identity, Problem> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| {
            Problem::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "send Authorization: Bearer <token or API key>",
            )
        })?;
    auth.authenticate(token.trim())
        .await
        .map_err(|e| Problem::new(StatusCode::UNAUTHORIZED, "unauthenticated", e.reason()))
}

/// The routes, to merge into the gateway's router.
pub fn routes(api: SessionsApi) -> Router {
    Router::new()
        .route("/api/v1/sessions", get(list))
        .route("/api/v1/sessions/{id}", get(show))
        .route("/api/v1/sessions/{id}/events", get(events))
        .route("/api/v1/sessions/{id}/replay", get(replay))
        .route("/api/v1/sessions/{id}/verify", get(verify))
        .route("/api/v1/sessions/{id}/kill", post(kill))
        .route("/api/v1/audit/verify", get(audit_verify))
        .with_state(api)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    identity: Option<String>,
    connection: Option<String>,
    since: Option<i64>,
    until: Option<i64>,
    status: Option<String>,
    limit: Option<i64>,
}

async fn list(
    State(api): State<SessionsApi>,
    headers: HeaderMap,
    q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, Problem> {
    api.caller(&headers, Need::Auditor).await?;
    let Query(q) =
        q.map_err(|e| Problem::new(StatusCode::BAD_REQUEST, "bad_query", e.body_text()))?;
    if q.limit.is_some_and(|l| !(1..=10_000).contains(&l)) {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "bad_query",
            "limit must be between 1 and 10000",
        ));
    }
    let rows = api
        .store
        .list_sessions(&SessionFilter {
            subject: q.identity,
            connection: q.connection,
            since: q.since,
            until: q.until,
            status: q.status,
            limit: q.limit,
        })
        .await
        .map_err(internal)?;
    Ok(Json(rows).into_response())
}

/// Session ids are UUIDs; anything else is refused before it reaches a path or a query.
fn check_id(id: &str) -> Result<(), Problem> {
    if id.len() <= 64 && !id.is_empty() && id.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
        Ok(())
    } else {
        Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "bad_session_id",
            "a session id is a UUID",
        ))
    }
}

async fn found(api: &SessionsApi, id: &str) -> Result<warden_store::SessionRow, Problem> {
    check_id(id)?;
    api.store
        .get_session(id)
        .await
        .map_err(internal)?
        .ok_or_else(|| Problem::new(StatusCode::NOT_FOUND, "no_such_session", "no such session"))
}

async fn show(
    State(api): State<SessionsApi>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    api.caller(&headers, Need::Auditor).await?;
    Ok(Json(found(&api, &id).await?).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventsQuery {
    format: Option<String>,
}

async fn events(
    State(api): State<SessionsApi>,
    headers: HeaderMap,
    Path(id): Path<String>,
    q: Result<Query<EventsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, Problem> {
    api.caller(&headers, Need::Auditor).await?;
    let Query(q) =
        q.map_err(|e| Problem::new(StatusCode::BAD_REQUEST, "bad_query", e.body_text()))?;
    let name = q.format.unwrap_or_else(|| "json".into());
    let format: ExportFormat = name.parse().map_err(|_| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "bad_format",
            "format is json, ndjson or csv",
        )
    })?;
    found(&api, &id).await?;
    let path = path_for(&api.recordings, &id).map_err(internal)?;
    let rec = read_file(&path).map_err(internal)?;
    let mut out = Vec::new();
    export(&rec.events, format, &mut out).map_err(internal)?;
    let ctype = match name.as_str() {
        "csv" => "text/csv",
        "ndjson" => "application/x-ndjson",
        _ => "application/json",
    };
    Ok(([(header::CONTENT_TYPE, ctype)], out).into_response())
}

async fn replay(
    State(api): State<SessionsApi>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    api.caller(&headers, Need::Auditor).await?;
    found(&api, &id).await?;
    let path = path_for(&api.recordings, &id).map_err(internal)?;
    let rec = read_file(&path).map_err(internal)?;
    let mut out = Vec::new();
    render_timeline(&rec.events, &mut out).map_err(internal)?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], out).into_response())
}

async fn verify(
    State(api): State<SessionsApi>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    api.caller(&headers, Need::Auditor).await?;
    let row = found(&api, &id).await?;
    let path = path_for(&api.recordings, &id).map_err(internal)?;
    let report = verify_file_with(
        &path,
        &id,
        &VerifyOptions::for_status(&row.status, row.final_hash.as_deref()),
    )
    .map_err(internal)?;
    let problems: Vec<String> = report.problems.iter().map(|p| p.to_string()).collect();
    Ok(Json(serde_json::json!({
        "session": id,
        "status": row.status,
        "events": report.events,
        "final_hash": report.final_hash,
        "clean": problems.is_empty(),
        "problems": problems,
    }))
    .into_response())
}

async fn kill(
    State(api): State<SessionsApi>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let who = api.caller(&headers, Need::Admin).await?;
    check_id(&id)?;
    let by = format!("API request by {}", who.subject);
    if !api.store.request_kill(&id, &by).await.map_err(internal)? {
        return Err(Problem::new(
            StatusCode::NOT_FOUND,
            "no_live_session",
            "no live session with that id",
        ));
    }
    let here = (api.stop)(&id, &by);
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({ "session": id, "ending": true, "local": here })),
    )
        .into_response())
}

async fn audit_verify(
    State(api): State<SessionsApi>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    api.caller(&headers, Need::Auditor).await?;
    let report = api.store.verify_chains().await.map_err(internal)?;
    Ok(Json(serde_json::json!({
        "clean": report.problems.is_empty(),
        "audit_rows": report.audit_rows,
        "session_rows": report.session_rows,
        "problems": report.problems,
    }))
    .into_response())
}
