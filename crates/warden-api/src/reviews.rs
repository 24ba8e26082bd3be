//! `/api/v1/reviews` (statements held for review and access requests: list, show,
//! approve, reject) and `/api/v1/access-requests` (ask for time-bound access).
//!
//! Any authenticated identity may call these; what it sees and may decide depends on its
//! groups: approvers see and decide the requests whose approver groups they are in,
//! requesters see their own, administrators and auditors see everything.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use warden_approvals::hub::{DecideError, Decided, Hub};
use warden_identity::Authenticator;
use warden_store::approvals::{ApprovalFilter, ApprovalRequest};
use warden_types::Identity;

use crate::sessions::{bearer_identity, internal, Problem};

/// What the review routes need.
#[derive(Clone)]
pub struct ReviewsApi {
    /// Checks bearer tokens.
    pub auth: Arc<Authenticator>,
    /// The approvals hub (decisions wake held sessions in this process).
    pub hub: Arc<Hub>,
    /// May see every request.
    pub auditor_groups: Vec<String>,
    /// May see and decide every request.
    pub admin_groups: Vec<String>,
}

/// The routes, to merge into the gateway's router.
pub fn routes(api: ReviewsApi) -> Router {
    Router::new()
        .route("/api/v1/reviews", get(list))
        .route("/api/v1/reviews/{id}", get(show))
        .route("/api/v1/reviews/{id}/approve", post(approve))
        .route("/api/v1/reviews/{id}/reject", post(reject))
        .route("/api/v1/access-requests", post(request_access))
        .with_state(api)
}

impl ReviewsApi {
    async fn caller(&self, headers: &HeaderMap) -> Result<Identity, Problem> {
        bearer_identity(&self.auth, headers).await
    }

    fn sees_all(&self, who: &Identity) -> bool {
        self.admin_groups
            .iter()
            .chain(self.auditor_groups.iter())
            .any(|g| who.in_group(g))
    }

    fn may_see(&self, who: &Identity, r: &ApprovalRequest) -> bool {
        self.sees_all(who) || r.requester == who.subject.0 || self.hub.may_decide(who, r)
    }
}

fn check_id(id: &str) -> Result<(), Problem> {
    let ok = id.len() == 19
        && (id.starts_with("rv-") || id.starts_with("ar-"))
        && id[3..].chars().all(|c| c.is_ascii_hexdigit());
    if ok {
        Ok(())
    } else {
        Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "bad_request_id",
            "a request id looks like rv-0123456789abcdef or ar-0123456789abcdef",
        ))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    status: Option<String>,
    kind: Option<String>,
    connection: Option<String>,
    limit: Option<i64>,
}

async fn list(
    State(api): State<ReviewsApi>,
    headers: HeaderMap,
    q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, Problem> {
    let who = api.caller(&headers).await?;
    let Query(q) =
        q.map_err(|e| Problem::new(StatusCode::BAD_REQUEST, "bad_query", e.body_text()))?;
    let bad = |m: &str| Problem::new(StatusCode::BAD_REQUEST, "bad_query", m.to_owned());
    if let Some(s) = &q.status {
        if ![
            "pending",
            "approved",
            "rejected",
            "expired",
            "withdrawn",
            "all",
        ]
        .contains(&s.as_str())
        {
            return Err(bad(
                "status is pending, approved, rejected, expired, withdrawn or all",
            ));
        }
    }
    if q.kind
        .as_deref()
        .is_some_and(|k| k != "statement" && k != "access")
    {
        return Err(bad("kind is statement or access"));
    }
    if q.limit.is_some_and(|l| !(1..=1000).contains(&l)) {
        return Err(bad("limit must be between 1 and 1000"));
    }
    let status = match q.status.as_deref() {
        None => Some("pending".to_owned()),
        Some("all") => None,
        Some(s) => Some(s.to_owned()),
    };
    let rows = api
        .hub
        .list(&ApprovalFilter {
            status,
            kind: q.kind,
            requester: None,
            connection: q.connection,
            limit: q.limit,
        })
        .await
        .map_err(internal)?;
    let visible: Vec<ApprovalRequest> = rows.into_iter().filter(|r| api.may_see(&who, r)).collect();
    Ok(Json(visible).into_response())
}

async fn show(
    State(api): State<ReviewsApi>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let who = api.caller(&headers).await?;
    check_id(&id)?;
    match api.hub.get(&id).await.map_err(internal)? {
        Some(r) if api.may_see(&who, &r) => Ok(Json(r).into_response()),
        _ => Err(Problem::new(
            StatusCode::NOT_FOUND,
            "no_such_request",
            "no such review or access request",
        )),
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct DecisionBody {
    reason: Option<String>,
}

fn json_body<T: for<'de> Deserialize<'de> + Default>(
    body: &Bytes,
    empty_ok: bool,
) -> Result<T, Problem> {
    if body.is_empty() && empty_ok {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "bad_body",
            format!("the body is not the expected JSON: {e}"),
        )
    })
}

async fn approve(
    State(api): State<ReviewsApi>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, Problem> {
    decide(api, headers, id, body, true).await
}

async fn reject(
    State(api): State<ReviewsApi>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, Problem> {
    decide(api, headers, id, body, false).await
}

async fn decide(
    api: ReviewsApi,
    headers: HeaderMap,
    id: String,
    body: Bytes,
    approve: bool,
) -> Result<Response, Problem> {
    let who = api.caller(&headers).await?;
    check_id(&id)?;
    let body: DecisionBody = json_body(&body, true)?;
    let decided = api
        .hub
        .decide(&id, &who, approve, body.reason.as_deref())
        .await
        .map_err(|e| {
            let (status, code) = match &e {
                DecideError::NotFound(_) => (StatusCode::NOT_FOUND, "no_such_request"),
                DecideError::NotApprover(_) => (StatusCode::FORBIDDEN, "not_an_approver"),
                DecideError::SelfApproval => (StatusCode::FORBIDDEN, "self_approval"),
                DecideError::NotPending { .. } => (StatusCode::CONFLICT, "not_pending"),
                DecideError::Expired(_) => (StatusCode::CONFLICT, "expired"),
                DecideError::Invalid(_) => (StatusCode::BAD_REQUEST, "bad_body"),
                DecideError::Store(e) => return internal(e),
            };
            Problem::new(status, code, e.to_string())
        })?;
    Ok(match decided {
        Decided::Final(r) => Json(r).into_response(),
        Decided::Counted {
            request,
            votes,
            required,
        } => (
            StatusCode::ACCEPTED,
            Json(serde_json::json!({
                "request": request,
                "approvals": votes,
                "approvals_required": required,
            })),
        )
            .into_response(),
    })
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct AccessBody {
    connection: String,
    /// `30m`, `2h`, …
    duration: String,
    reason: Option<String>,
}

async fn request_access(
    State(api): State<ReviewsApi>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    let who = api.caller(&headers).await?;
    let body: AccessBody = json_body(&body, false)?;
    let duration: Duration = humantime::parse_duration(&body.duration).map_err(|_| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "bad_body",
            "duration is a length like 30m or 2h",
        )
    })?;
    let r = api
        .hub
        .request_access(&who, &body.connection, duration, body.reason.as_deref())
        .await
        .map_err(|e| match e {
            warden_approvals::hub::AccessError::NotOffered(_) => {
                Problem::new(StatusCode::NOT_FOUND, "no_access_requests", e.to_string())
            }
            warden_approvals::hub::AccessError::Invalid(_) => {
                Problem::new(StatusCode::BAD_REQUEST, "bad_body", e.to_string())
            }
            warden_approvals::hub::AccessError::Store(e) => internal(e),
        })?;
    Ok((StatusCode::CREATED, Json(r)).into_response())
}
