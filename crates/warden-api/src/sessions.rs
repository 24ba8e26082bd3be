//! `/api/v1/sessions`: recorded sessions, for auditors (list, show, replay data, text
//! timeline, export, verify) and administrators (kill).

use std::path::PathBuf;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use warden_recording::export::{export as export_events, ExportFormat};
use warden_recording::reader::{path_for, read_file};
use warden_recording::replay::render_timeline;
use warden_recording::verify::{verify_file_with, VerifyOptions};
use warden_store::{SessionFilter, SessionRow};

use crate::auth::{Admin, Auditor};
use crate::extract::{NoQuery, P, Q};
use crate::problem::{internal, Problem};
use crate::Api;

pub(crate) fn routes() -> OpenApiRouter<Api> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(show))
        .routes(routes!(events))
        .routes(routes!(replay))
        .routes(routes!(export))
        .routes(routes!(verify))
        .routes(routes!(kill))
}

/// Filters for the session list.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Exact subject.
    identity: Option<String>,
    /// Same as `identity`.
    subject: Option<String>,
    /// Exact connection name.
    connection: Option<String>,
    /// Started at or after (unix ms).
    since: Option<i64>,
    /// Started before (unix ms).
    until: Option<i64>,
    /// `live`, `complete`, `incomplete` or `purged`.
    status: Option<String>,
    /// At most this many, newest first (1-10000).
    limit: Option<i64>,
}

/// Sessions, newest first (auditor).
#[utoipa::path(get, operation_id = "list_sessions", path = "/api/v1/sessions", tag = "sessions", security(("bearer" = [])),
    params(ListQuery),
    responses((status = 200, description = "Sessions, newest first", body = [SessionRow])))]
async fn list(
    State(api): State<Api>,
    Auditor(_): Auditor,
    Q(q): Q<ListQuery>,
) -> Result<Json<Vec<SessionRow>>, Problem> {
    if q.limit.is_some_and(|l| !(1..=10_000).contains(&l)) {
        return Err(Problem::bad_request(
            "bad_query",
            "limit must be between 1 and 10000",
        ));
    }
    if q.status
        .as_deref()
        .is_some_and(|s| !["live", "complete", "incomplete", "purged"].contains(&s))
    {
        return Err(Problem::bad_request(
            "bad_query",
            "status is live, complete, incomplete or purged",
        ));
    }
    let rows = api
        .store
        .list_sessions(&SessionFilter {
            subject: q.identity.or(q.subject),
            connection: q.connection,
            since: q.since,
            until: q.until,
            status: q.status,
            limit: q.limit,
        })
        .await
        .map_err(internal)?;
    Ok(Json(rows))
}

/// Session ids are UUIDs; anything else is refused before it reaches a path or a query.
fn check_id(id: &str) -> Result<(), Problem> {
    if id.len() <= 64 && !id.is_empty() && id.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
        Ok(())
    } else {
        Err(Problem::bad_request(
            "bad_session_id",
            "a session id is a UUID",
        ))
    }
}

async fn found(api: &Api, id: &str) -> Result<SessionRow, Problem> {
    check_id(id)?;
    api.store
        .get_session(id)
        .await
        .map_err(internal)?
        .ok_or_else(|| Problem::not_found("no_such_session", "no such session"))
}

fn recording_path(api: &Api, id: &str) -> Result<PathBuf, Problem> {
    let dir = api
        .recordings
        .as_ref()
        .ok_or_else(|| Problem::not_found("no_recording", "recording is off on this gateway"))?;
    path_for(dir, id).map_err(internal)
}

fn read_events(api: &Api, id: &str) -> Result<Vec<warden_recording::event::Event>, Problem> {
    let path = recording_path(api, id)?;
    if !path.exists() {
        return Err(Problem::not_found(
            "no_recording",
            "this session's recording is gone (purged or never written)",
        ));
    }
    Ok(read_file(&path).map_err(internal)?.events)
}

/// One session (auditor).
#[utoipa::path(get, operation_id = "get_session", path = "/api/v1/sessions/{id}", tag = "sessions", security(("bearer" = [])),
    params(("id" = String, Path, description = "Session id (UUID)")),
    responses((status = 200, description = "The session", body = SessionRow)))]
async fn show(
    State(api): State<Api>,
    Auditor(_): Auditor,
    P(id): P<String>,
    Q(_): Q<NoQuery>,
) -> Result<Json<SessionRow>, Problem> {
    Ok(Json(found(&api, &id).await?))
}

/// Export and replay-data formats.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct FormatQuery {
    /// `json` (default for events), `jsonl`/`ndjson` (default for export) or `csv`.
    format: Option<String>,
}

fn parse_format(name: &str) -> Result<(ExportFormat, &'static str, &'static str), Problem> {
    Ok(match name {
        "json" => (ExportFormat::Json, "application/json", "json"),
        "jsonl" | "ndjson" => (ExportFormat::Ndjson, "application/x-ndjson", "jsonl"),
        "csv" => (ExportFormat::Csv, "text/csv; charset=utf-8", "csv"),
        _ => {
            return Err(Problem::bad_request(
                "bad_format",
                "format is json, jsonl (ndjson) or csv",
            ))
        }
    })
}

fn render(api: &Api, id: &str, format: ExportFormat) -> Result<Vec<u8>, Problem> {
    let events = read_events(api, id)?;
    let mut out = Vec::new();
    export_events(&events, format, &mut out).map_err(internal)?;
    Ok(out)
}

/// The recorded events, for replay (auditor): statements, results, timing, masking and
/// approval decisions.
#[utoipa::path(get, operation_id = "get_session_events", path = "/api/v1/sessions/{id}/events", tag = "sessions", security(("bearer" = [])),
    params(("id" = String, Path, description = "Session id (UUID)"), FormatQuery),
    responses((status = 200, description = "The events: a JSON array (json), one per line (jsonl) or one row per statement (csv)",
        content((Object = "application/json"), (String = "application/x-ndjson"), (String = "text/csv")))))]
async fn events(
    State(api): State<Api>,
    Auditor(_): Auditor,
    P(id): P<String>,
    Q(q): Q<FormatQuery>,
) -> Result<Response, Problem> {
    let (format, ctype, _) = parse_format(q.format.as_deref().unwrap_or("json"))?;
    found(&api, &id).await?;
    let out = render(&api, &id, format)?;
    Ok(([(header::CONTENT_TYPE, ctype)], out).into_response())
}

/// The recording as a download (auditor).
#[utoipa::path(get, operation_id = "export_session", path = "/api/v1/sessions/{id}/export", tag = "sessions", security(("bearer" = [])),
    params(("id" = String, Path, description = "Session id (UUID)"), FormatQuery),
    responses((status = 200, description = "An attachment `session-<id>.<jsonl|json|csv>`",
        content((String = "application/x-ndjson"), (Object = "application/json"), (String = "text/csv")))))]
async fn export(
    State(api): State<Api>,
    Auditor(_): Auditor,
    P(id): P<String>,
    Q(q): Q<FormatQuery>,
) -> Result<Response, Problem> {
    let (format, ctype, ext) = parse_format(q.format.as_deref().unwrap_or("jsonl"))?;
    found(&api, &id).await?;
    let out = render(&api, &id, format)?;
    let disposition = format!("attachment; filename=\"session-{id}.{ext}\"");
    Ok((
        [
            (header::CONTENT_TYPE, ctype.to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        out,
    )
        .into_response())
}

/// A text timeline of the session (auditor).
#[utoipa::path(get, operation_id = "get_session_replay", path = "/api/v1/sessions/{id}/replay", tag = "sessions", security(("bearer" = [])),
    params(("id" = String, Path, description = "Session id (UUID)")),
    responses((status = 200, description = "One line per event", content_type = "text/plain", body = String)))]
async fn replay(
    State(api): State<Api>,
    Auditor(_): Auditor,
    P(id): P<String>,
    Q(_): Q<NoQuery>,
) -> Result<Response, Problem> {
    found(&api, &id).await?;
    let events = read_events(&api, &id)?;
    let mut out = Vec::new();
    render_timeline(&events, &mut out).map_err(internal)?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], out).into_response())
}

/// A recording's verification.
#[derive(Serialize, ToSchema)]
pub struct SessionVerify {
    /// Session id.
    pub session: String,
    /// Its status.
    pub status: String,
    /// Events checked.
    pub events: u64,
    /// Hash of the last event.
    pub final_hash: Option<String>,
    /// No problems.
    pub clean: bool,
    /// What is wrong.
    pub problems: Vec<String>,
}

/// Checks the recording's hash chain against the store (auditor).
#[utoipa::path(get, operation_id = "verify_session", path = "/api/v1/sessions/{id}/verify", tag = "sessions", security(("bearer" = [])),
    params(("id" = String, Path, description = "Session id (UUID)")),
    responses((status = 200, description = "The verification", body = SessionVerify)))]
async fn verify(
    State(api): State<Api>,
    Auditor(_): Auditor,
    P(id): P<String>,
    Q(_): Q<NoQuery>,
) -> Result<Json<SessionVerify>, Problem> {
    let row = found(&api, &id).await?;
    let path = recording_path(&api, &id)?;
    let report = verify_file_with(
        &path,
        &id,
        &VerifyOptions::for_status(&row.status, row.final_hash.as_deref()),
    )
    .map_err(internal)?;
    let problems: Vec<String> = report.problems.iter().map(|p| p.to_string()).collect();
    Ok(Json(SessionVerify {
        session: id,
        status: row.status,
        events: report.events,
        final_hash: report.final_hash,
        clean: problems.is_empty(),
        problems,
    }))
}

/// A kill accepted.
#[derive(Serialize, ToSchema)]
pub struct KillAccepted {
    /// Session id.
    pub session: String,
    /// Always true: the session is ending.
    pub ending: bool,
    /// Whether this gateway process held it (others end it within a second).
    pub local: bool,
}

/// Ends a live session (admin).
#[utoipa::path(post, operation_id = "kill_session", path = "/api/v1/sessions/{id}/kill", tag = "sessions", security(("bearer" = [])),
    params(("id" = String, Path, description = "Session id (UUID)")),
    responses((status = 202, description = "The session is ending", body = KillAccepted)))]
async fn kill(
    State(api): State<Api>,
    Admin(caller): Admin,
    P(id): P<String>,
    Q(_): Q<NoQuery>,
) -> Result<Response, Problem> {
    check_id(&id)?;
    let by = format!("API request by {}", caller.who.subject);
    if !api.store.request_kill(&id, &by).await.map_err(internal)? {
        return Err(Problem::not_found(
            "no_live_session",
            "no live session with that id",
        ));
    }
    let local = (api.stop)(&id, &by);
    Ok((
        StatusCode::ACCEPTED,
        Json(KillAccepted {
            session: id,
            ending: true,
            local,
        }),
    )
        .into_response())
}
