//! `/api/v1/reviews` (statements held for review: list, live stream, show, approve,
//! reject) and `/api/v1/access-requests` (ask for time-bound access; list, show, approve,
//! reject).
//!
//! Any authenticated identity may call these; what it sees and may decide depends on its
//! groups: approvers see and decide the requests whose approver groups they are in,
//! requesters see their own, administrators and auditors see everything (administrators
//! may decide everything). A request the caller may not see answers 404, as if absent.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::stream::{self, Stream, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::error::RecvError;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use warden_approvals::hub::{AccessError, DecideError, Decided};
use warden_store::approvals::{ApprovalFilter, ApprovalRequest};

use crate::auth::Caller;
use crate::extract::{JsonBody, NoQuery, P, Q};
use crate::problem::{internal, Problem};
use crate::Api;

/// How often the stream sends a comment, so proxies and clients see it alive.
pub const PING_EVERY: Duration = Duration::from_secs(15);

pub(crate) fn routes() -> OpenApiRouter<Api> {
    OpenApiRouter::new()
        .routes(routes!(list_reviews))
        .routes(routes!(stream_reviews))
        .routes(routes!(show_review))
        .routes(routes!(approve_review))
        .routes(routes!(reject_review))
        .routes(routes!(list_access, request_access))
        .routes(routes!(show_access))
        .routes(routes!(approve_access))
        .routes(routes!(reject_access))
}

/// Narrows a route to one kind of request (the review routes take both).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Access,
}

impl Kind {
    fn prefix(self) -> &'static str {
        match self {
            Kind::Access => "ar-",
        }
    }
    fn name(self) -> &'static str {
        match self {
            Kind::Access => "access",
        }
    }
}

fn may_see(api: &Api, caller: &Caller, r: &ApprovalRequest) -> bool {
    caller.reads_all() || r.requester == caller.who.subject.0 || api.hub.may_decide(&caller.who, r)
}

/// Request ids are `rv-` or `ar-` and 16 hex digits. On the review routes both kinds are
/// accepted (the CLI decides access requests there too); on the access-request routes only
/// `ar-`.
fn check_id(id: &str, kind: Option<Kind>) -> Result<(), Problem> {
    let prefix_ok = match kind {
        Some(k) => id.starts_with(k.prefix()),
        None => id.starts_with("rv-") || id.starts_with("ar-"),
    };
    let ok = id.len() == 19 && prefix_ok && id[3..].chars().all(|c| c.is_ascii_hexdigit());
    if ok {
        Ok(())
    } else {
        Err(Problem::bad_request(
            "bad_request_id",
            match kind {
                Some(Kind::Access) => "an access request id looks like ar-0123456789abcdef",
                None => "a request id looks like rv-0123456789abcdef or ar-0123456789abcdef",
            },
        ))
    }
}

/// Filters for request lists.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// `pending` (default), `approved`, `rejected`, `expired`, `withdrawn` or `all`.
    status: Option<String>,
    /// On `/reviews` only: `statement` or `access` (default: both).
    kind: Option<String>,
    /// Exact connection name.
    connection: Option<String>,
    /// At most this many, newest first (1-1000).
    limit: Option<i64>,
}

async fn list(
    api: &Api,
    caller: &Caller,
    q: ListQuery,
    kind: Option<Kind>,
) -> Result<Vec<ApprovalRequest>, Problem> {
    let bad = |m: &str| Problem::bad_request("bad_query", m.to_owned());
    if let Some(s) = &q.status {
        let known = [
            "pending",
            "approved",
            "rejected",
            "expired",
            "withdrawn",
            "all",
        ];
        if !known.contains(&s.as_str()) {
            return Err(bad(
                "status is pending, approved, rejected, expired, withdrawn or all",
            ));
        }
    }
    let kind = match (kind, q.kind.as_deref()) {
        (Some(k), None) => Some(k.name().to_owned()),
        (Some(_), Some(_)) => return Err(bad("kind is not a filter here")),
        (None, None) => None,
        (None, Some(k @ ("statement" | "access"))) => Some(k.to_owned()),
        (None, Some(_)) => return Err(bad("kind is statement or access")),
    };
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
            kind,
            requester: None,
            connection: q.connection,
            limit: q.limit,
        })
        .await
        .map_err(internal)?;
    Ok(rows
        .into_iter()
        .filter(|r| may_see(api, caller, r))
        .collect())
}

/// Reviews and access requests the caller may see, newest first (pending by default).
#[utoipa::path(get, operation_id = "list_reviews", path = "/api/v1/reviews", tag = "reviews", security(("bearer" = [])),
    params(ListQuery),
    responses((status = 200, description = "Requests the caller may see", body = [ApprovalRequest])))]
async fn list_reviews(
    State(api): State<Api>,
    caller: Caller,
    Q(q): Q<ListQuery>,
) -> Result<Json<Vec<ApprovalRequest>>, Problem> {
    Ok(Json(list(&api, &caller, q, None).await?))
}

/// Access requests the caller may see, newest first (pending by default).
#[utoipa::path(get, operation_id = "list_access_requests", path = "/api/v1/access-requests", tag = "access-requests", security(("bearer" = [])),
    params(ListQuery),
    responses((status = 200, description = "Access requests the caller may see", body = [ApprovalRequest])))]
async fn list_access(
    State(api): State<Api>,
    caller: Caller,
    Q(q): Q<ListQuery>,
) -> Result<Json<Vec<ApprovalRequest>>, Problem> {
    Ok(Json(list(&api, &caller, q, Some(Kind::Access)).await?))
}

/// Live review events: `event: review` with the request as JSON (as in
/// `GET /api/v1/reviews/{id}`) whenever one the caller may see opens, gains an approval,
/// is decided, expires or is withdrawn; a `: ping` comment every 15 s. `event: lagged`
/// (data: how many were missed) tells a slow reader to re-list. The stream ends when the
/// credential expires or is revoked.
#[utoipa::path(get, operation_id = "stream_reviews", path = "/api/v1/reviews/stream", tag = "reviews", security(("bearer" = [])),
    responses((status = 200, description = "Server-sent events", content_type = "text/event-stream", body = String)))]
async fn stream_reviews(
    State(api): State<Api>,
    caller: Caller,
    Q(_): Q<NoQuery>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = api.hub.subscribe();
    let ends = credential_ends(api.clone(), &caller);
    let events = stream::unfold((rx, api, caller), |(mut rx, api, caller)| async move {
        loop {
            let ev = match rx.recv().await {
                Ok(r) if may_see(&api, &caller, &r) => Event::default()
                    .event("review")
                    .json_data(&r)
                    .unwrap_or_else(|_| Event::default().comment("unserialisable review")),
                Ok(_) => continue,
                Err(RecvError::Lagged(n)) => Event::default().event("lagged").data(n.to_string()),
                Err(RecvError::Closed) => return None,
            };
            return Some((Ok(ev), (rx, api, caller)));
        }
    });
    let opened = stream::once(async { Ok(Event::default().comment("connected")) });
    let body = opened.chain(events).take_until(ends);
    Sse::new(body).keep_alive(KeepAlive::new().interval(PING_EVERY).text("ping"))
}

/// How often an open stream checks that its credential was not revoked.
const REVOCATION_CHECK: Duration = Duration::from_secs(5);

/// Completes when the caller's credential expires or is revoked (checked every few
/// seconds), or when the store cannot say: a stream outlives neither.
fn credential_ends(api: Api, caller: &Caller) -> impl std::future::Future<Output = ()> {
    let expires = caller.who.expires_at.map(|t| {
        let left = t
            .duration_since(std::time::SystemTime::now())
            .unwrap_or_default();
        tokio::time::Instant::now() + left
    });
    let token_id = caller.who.token_id.clone();
    async move {
        let expiry = async {
            match expires {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let revocation = async {
            let Some(id) = token_id else {
                return std::future::pending().await;
            };
            let ids = [id];
            loop {
                tokio::time::sleep(REVOCATION_CHECK).await;
                match api.store.revoked_among(&ids).await {
                    Ok(r) if r.is_empty() => {}
                    _ => return,
                }
            }
        };
        tokio::select! {
            _ = expiry => {}
            _ = revocation => {}
        }
    }
}

async fn show(
    api: &Api,
    caller: &Caller,
    id: &str,
    kind: Option<Kind>,
) -> Result<ApprovalRequest, Problem> {
    check_id(id, kind)?;
    match api.hub.get(id).await.map_err(internal)? {
        Some(r) if may_see(api, caller, &r) => Ok(r),
        _ => Err(Problem::not_found(
            "no_such_request",
            "no such review or access request",
        )),
    }
}

/// One review (or access request): the exact statement and its parameters, who asked,
/// who may decide, and the outcome.
#[utoipa::path(get, operation_id = "get_review", path = "/api/v1/reviews/{id}", tag = "reviews", security(("bearer" = [])),
    params(("id" = String, Path, description = "Request id (rv-… or ar-…)")),
    responses((status = 200, description = "The request", body = ApprovalRequest)))]
async fn show_review(
    State(api): State<Api>,
    caller: Caller,
    P(id): P<String>,
    Q(_): Q<NoQuery>,
) -> Result<Json<ApprovalRequest>, Problem> {
    Ok(Json(show(&api, &caller, &id, None).await?))
}

/// One access request.
#[utoipa::path(get, operation_id = "get_access_request", path = "/api/v1/access-requests/{id}", tag = "access-requests", security(("bearer" = [])),
    params(("id" = String, Path, description = "Access request id (ar-…)")),
    responses((status = 200, description = "The access request", body = ApprovalRequest)))]
async fn show_access(
    State(api): State<Api>,
    caller: Caller,
    P(id): P<String>,
    Q(_): Q<NoQuery>,
) -> Result<Json<ApprovalRequest>, Problem> {
    Ok(Json(show(&api, &caller, &id, Some(Kind::Access)).await?))
}

/// An approver's decision; the body may be empty.
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionBody {
    /// Why (under 1000 bytes, no control characters but newlines).
    pub reason: Option<String>,
}

/// An approval counted; more are needed before the request is final.
#[derive(Serialize, ToSchema)]
pub struct Counted {
    /// The request, still pending.
    pub request: ApprovalRequest,
    /// Distinct approvals so far.
    pub approvals: i64,
    /// Needed.
    pub approvals_required: i64,
}

async fn decide(
    api: Api,
    caller: Caller,
    id: String,
    body: DecisionBody,
    approve: bool,
    kind: Option<Kind>,
) -> Result<Response, Problem> {
    check_id(&id, kind)?;
    let decided = api
        .hub
        .decide(&id, &caller.who, approve, body.reason.as_deref())
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
            Json(Counted {
                request,
                approvals: votes,
                approvals_required: required,
            }),
        )
            .into_response(),
    })
}

/// Approves a review (or access request). Final once enough distinct approvers agreed;
/// never by the requester.
#[utoipa::path(post, operation_id = "approve_review", path = "/api/v1/reviews/{id}/approve", tag = "reviews", security(("bearer" = [])),
    params(("id" = String, Path, description = "Request id (rv-… or ar-…)")),
    request_body(content = Option<DecisionBody>, description = "Optional; may be empty"),
    responses(
        (status = 200, description = "Approved: the request as stored", body = ApprovalRequest),
        (status = 202, description = "Counted; more approvals needed", body = Counted),
        (status = 409, description = "Already decided or expired (`not_pending`, `expired`)", body = crate::problem::ProblemDetails, content_type = "application/problem+json")))]
async fn approve_review(
    State(api): State<Api>,
    caller: Caller,
    P(id): P<String>,
    Q(_): Q<NoQuery>,
    JsonBody(body): JsonBody<DecisionBody>,
) -> Result<Response, Problem> {
    decide(api, caller, id, body, true, None).await
}

/// Rejects a review (or access request); final at once.
#[utoipa::path(post, operation_id = "reject_review", path = "/api/v1/reviews/{id}/reject", tag = "reviews", security(("bearer" = [])),
    params(("id" = String, Path, description = "Request id (rv-… or ar-…)")),
    request_body(content = Option<DecisionBody>, description = "Optional; may be empty"),
    responses(
        (status = 200, description = "Rejected: the request as stored", body = ApprovalRequest),
        (status = 409, description = "Already decided or expired (`not_pending`, `expired`)", body = crate::problem::ProblemDetails, content_type = "application/problem+json")))]
async fn reject_review(
    State(api): State<Api>,
    caller: Caller,
    P(id): P<String>,
    Q(_): Q<NoQuery>,
    JsonBody(body): JsonBody<DecisionBody>,
) -> Result<Response, Problem> {
    decide(api, caller, id, body, false, None).await
}

/// Approves an access request.
#[utoipa::path(post, operation_id = "approve_access_request", path = "/api/v1/access-requests/{id}/approve", tag = "access-requests", security(("bearer" = [])),
    params(("id" = String, Path, description = "Access request id (ar-…)")),
    request_body(content = Option<DecisionBody>, description = "Optional; may be empty"),
    responses(
        (status = 200, description = "Approved: the request as stored, with `grant_expires_at`", body = ApprovalRequest),
        (status = 202, description = "Counted; more approvals needed", body = Counted),
        (status = 409, description = "Already decided or expired", body = crate::problem::ProblemDetails, content_type = "application/problem+json")))]
async fn approve_access(
    State(api): State<Api>,
    caller: Caller,
    P(id): P<String>,
    Q(_): Q<NoQuery>,
    JsonBody(body): JsonBody<DecisionBody>,
) -> Result<Response, Problem> {
    decide(api, caller, id, body, true, Some(Kind::Access)).await
}

/// Rejects an access request.
#[utoipa::path(post, operation_id = "reject_access_request", path = "/api/v1/access-requests/{id}/reject", tag = "access-requests", security(("bearer" = [])),
    params(("id" = String, Path, description = "Access request id (ar-…)")),
    request_body(content = Option<DecisionBody>, description = "Optional; may be empty"),
    responses(
        (status = 200, description = "Rejected: the request as stored", body = ApprovalRequest),
        (status = 409, description = "Already decided or expired", body = crate::problem::ProblemDetails, content_type = "application/problem+json")))]
async fn reject_access(
    State(api): State<Api>,
    caller: Caller,
    P(id): P<String>,
    Q(_): Q<NoQuery>,
    JsonBody(body): JsonBody<DecisionBody>,
) -> Result<Response, Problem> {
    decide(api, caller, id, body, false, Some(Kind::Access)).await
}

/// Asks for time-bound access to a connection.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccessBody {
    /// The connection.
    #[schema(example = "restricted")]
    pub connection: String,
    /// How long, as `30m`, `2h`, … (at most the connection's `max_duration`).
    #[schema(example = "1h")]
    pub duration: String,
    /// Why (shown to approvers).
    pub reason: Option<String>,
}

/// Asks for time-bound access to a connection that takes access requests.
#[utoipa::path(post, operation_id = "create_access_request", path = "/api/v1/access-requests", tag = "access-requests", security(("bearer" = [])),
    request_body = AccessBody,
    responses((status = 201, description = "The request, pending", body = ApprovalRequest)))]
async fn request_access(
    State(api): State<Api>,
    caller: Caller,
    Q(_): Q<NoQuery>,
    JsonBody(body): JsonBody<AccessBody>,
) -> Result<Response, Problem> {
    let duration: Duration = humantime::parse_duration(&body.duration)
        .map_err(|_| Problem::bad_request("bad_body", "duration is a length like 30m or 2h"))?;
    let r = api
        .hub
        .request_access(
            &caller.who,
            &body.connection,
            duration,
            body.reason.as_deref(),
        )
        .await
        .map_err(|e| match e {
            AccessError::NotOffered(_) => Problem::not_found("no_access_requests", e.to_string()),
            AccessError::Invalid(_) => Problem::bad_request("bad_body", e.to_string()),
            AccessError::Store(e) => internal(e),
        })?;
    Ok((StatusCode::CREATED, Json(r)).into_response())
}
