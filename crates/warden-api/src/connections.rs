//! `/api/v1/connections`: the connections this gateway serves, and whether the caller may
//! open each. Admins and auditors see every connection and its target; others see those
//! they may open or ask access to.

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use warden_config::{ConnectionConfig, CredentialsMode, RuleAction};

use crate::auth::Caller;
use crate::extract::{NoQuery, P, Q};
use crate::problem::{internal, Problem};
use crate::Api;

pub(crate) fn routes() -> OpenApiRouter<Api> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(show))
}

/// A connection as the caller sees it.
#[derive(Serialize, ToSchema)]
pub struct Connection {
    /// The name clients use as `dbname`.
    #[schema(example = "app")]
    pub name: String,
    /// The target's protocol (`postgres`).
    pub kind: String,
    /// `static` or `jit`.
    pub credentials: String,
    /// Whether the caller may open it now (by group or an approved access request).
    pub allowed: bool,
    /// Groups allowed to open it.
    pub allow_groups: Vec<String>,
    /// When the caller's approved access ends (unix ms), if it holds a grant.
    pub access_until: Option<i64>,
    /// How to ask for access, when the connection takes access requests.
    pub access_requests: Option<AccessOffer>,
    /// Groups that approve its held statements (from its `review` rules).
    pub review_approver_groups: Vec<String>,
    /// `postgres://host:port/db` (no password); admins and auditors only.
    pub target: Option<String>,
}

/// A connection's access-request settings.
#[derive(Serialize, ToSchema)]
pub struct AccessOffer {
    /// Groups whose members approve.
    pub approver_groups: Vec<String>,
    /// Distinct approvals needed.
    pub approvals: u32,
    /// Longest grant (seconds).
    pub max_duration_secs: u64,
}

async fn view(api: &Api, caller: &Caller, c: &ConnectionConfig) -> Result<Connection, Problem> {
    let by_group = c.allow_groups.iter().any(|g| caller.who.in_group(g));
    let access_until = if c.access_requests.is_some() {
        api.hub
            .access_grant(&caller.who.subject.0, &c.name)
            .await
            .map_err(internal)?
    } else {
        None
    };
    let mut review_approver_groups: Vec<String> = Vec::new();
    for r in c.rules.iter().filter(|r| r.action == RuleAction::Review) {
        for g in &r.approver_groups {
            if !review_approver_groups.contains(g) {
                review_approver_groups.push(g.clone());
            }
        }
    }
    Ok(Connection {
        name: c.name.clone(),
        kind: "postgres".into(),
        credentials: match c.credentials {
            CredentialsMode::Static => "static",
            CredentialsMode::Jit => "jit",
        }
        .into(),
        allowed: by_group || access_until.is_some(),
        allow_groups: c.allow_groups.clone(),
        access_until,
        access_requests: c.access_requests.as_ref().map(|a| AccessOffer {
            approver_groups: a.approver_groups.clone(),
            approvals: a.approvals,
            max_duration_secs: a.max_duration.as_secs(),
        }),
        review_approver_groups,
        target: caller.reads_all().then(|| c.target.clone()),
    })
}

fn visible(caller: &Caller, c: &Connection) -> bool {
    caller.reads_all() || c.allowed || c.access_requests.is_some()
}

/// Connections the caller may open or ask access to (all, for admins and auditors).
#[utoipa::path(get, operation_id = "list_connections", path = "/api/v1/connections", tag = "connections", security(("bearer" = [])),
    responses((status = 200, description = "Connections, in configuration order", body = [Connection])))]
async fn list(
    State(api): State<Api>,
    caller: Caller,
    Q(_): Q<NoQuery>,
) -> Result<Json<Vec<Connection>>, Problem> {
    let mut out = Vec::new();
    for c in &api.config.connections {
        let v = view(&api, &caller, c).await?;
        if visible(&caller, &v) {
            out.push(v);
        }
    }
    Ok(Json(out))
}

/// One connection.
#[utoipa::path(get, operation_id = "get_connection", path = "/api/v1/connections/{name}", tag = "connections", security(("bearer" = [])),
    params(("name" = String, Path, description = "Connection name")),
    responses((status = 200, description = "The connection", body = Connection)))]
async fn show(
    State(api): State<Api>,
    caller: Caller,
    P(name): P<String>,
    Q(_): Q<NoQuery>,
) -> Result<Json<Connection>, Problem> {
    if name.is_empty() || name.len() > 256 || name.chars().any(char::is_control) {
        return Err(Problem::bad_request(
            "bad_connection_name",
            "a connection name is 1-256 printable characters",
        ));
    }
    let missing = || Problem::not_found("no_such_connection", "no such connection");
    let c = api
        .config
        .connections
        .iter()
        .find(|c| c.name == name)
        .ok_or_else(missing)?;
    let v = view(&api, &caller, c).await?;
    if !visible(&caller, &v) {
        return Err(missing());
    }
    Ok(Json(v))
}
