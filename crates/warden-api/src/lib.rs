//! Warden's HTTP surface: `/healthz`, Prometheus `/metrics`, and the REST API under
//! `/api/v1` — connections ([`connections`]), recorded sessions ([`sessions`]), reviews
//! and access requests with a live SSE stream ([`reviews`]), the audit ([`audit`]),
//! tokens and API keys ([`tokens`]), and health, sign-in settings, the caller and the
//! OpenAPI document ([`meta`]).
//!
//! Every route is declared once, with `#[utoipa::path]`, and mounted through
//! `utoipa_axum`'s `routes!`, so the OpenAPI 3.1 document at `/api/v1/openapi.json` and
//! the router come from the same declarations. Every error is an RFC 9457 problem
//! ([`problem`]), including unknown routes, wrong methods and unparsable input.
#![forbid(unsafe_code)]

pub mod audit;
pub mod auth;
pub mod connections;
pub mod console;
mod extract;
pub mod meta;
pub mod problem;
pub mod reviews;
pub mod sessions;
pub mod tokens;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{any, get};
use axum::Router;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{Content, Ref, ResponseBuilder};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use warden_approvals::hub::Hub;
use warden_config::Config;
use warden_identity::Authenticator;
use warden_store::Store;

use crate::auth::RoleGroups;

/// Largest request body accepted under `/api/v1` (bytes); more is a 413 problem.
pub const MAX_BODY: usize = 64 * 1024;

/// Ends a session live in this process; true if it was.
pub type LocalStop = Arc<dyn Fn(&str, &str) -> bool + Send + Sync>;

/// What the `/api/v1` routes share. Cheap to clone.
#[derive(Clone)]
pub struct Api {
    /// Checks bearer tokens and API keys.
    pub auth: Arc<Authenticator>,
    /// The store.
    pub store: Store,
    /// The approvals hub (decisions wake held sessions in this process).
    pub hub: Arc<Hub>,
    /// Recordings directory; `None` when recording is off.
    pub recordings: Option<PathBuf>,
    /// Ends a session held by this gateway at once (others see the store request).
    pub stop: LocalStop,
    /// Which groups hold which role.
    pub roles: Arc<RoleGroups>,
    /// The gateway's configuration (connections, sign-in settings, token limits).
    pub config: Arc<Config>,
    /// Where the PostgreSQL listener is bound.
    pub postgres_listen: SocketAddr,
}

impl Api {
    /// The API over a running gateway's parts; roles come from `config`'s `[api]` and the
    /// approver groups of its rules and access requests.
    pub fn new(
        config: &Config,
        auth: Arc<Authenticator>,
        store: Store,
        hub: Arc<Hub>,
        recordings: Option<PathBuf>,
        stop: LocalStop,
        postgres_listen: SocketAddr,
    ) -> Api {
        let mut approver = config.api.approver_groups.clone();
        for c in &config.connections {
            let rules = c.rules.iter().map(|r| &r.approver_groups);
            let access = c.access_requests.iter().map(|a| &a.approver_groups);
            for g in rules.chain(access).flatten() {
                if !approver.contains(g) {
                    approver.push(g.clone());
                }
            }
        }
        Api {
            auth,
            store,
            hub,
            recordings,
            stop,
            roles: Arc::new(RoleGroups {
                admin: config.api.admin_groups.clone(),
                auditor: config.api.auditor_groups.clone(),
                approver,
            }),
            config: Arc::new(config.clone()),
            postgres_listen,
        }
    }
}

/// Shared state of the routes outside `/api/v1`.
#[derive(Clone)]
struct ApiState {
    metrics: Option<PrometheusHandle>,
}

/// Installs the process-wide Prometheus recorder. Call once, before any metric is recorded;
/// a second call returns `None`.
pub fn install_metrics() -> Option<PrometheusHandle> {
    PrometheusBuilder::new().install_recorder().ok()
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Warden API",
        description = "Warden's REST API: connections, recorded sessions, reviews and access requests, the audit, tokens and API keys. Every route but health, auth/config and this document needs `Authorization: Bearer <OIDC token | built-in token | API key>`; errors are RFC 9457 problem details (`application/problem+json`) with a stable `code`."
    ),
    components(schemas(problem::ProblemDetails)),
    tags(
        (name = "meta", description = "Health, sign-in settings, the caller, this document"),
        (name = "connections", description = "Connections the gateway serves"),
        (name = "sessions", description = "Recorded sessions: list, show, replay, export, verify, kill"),
        (name = "reviews", description = "Statements held for review, and the live stream of review events"),
        (name = "access-requests", description = "Time-bound access to a connection"),
        (name = "audit", description = "The hash-chained audit"),
        (name = "tokens", description = "Built-in tokens and API keys (admin)"),
    )
)]
struct ApiDoc;

/// What every operation shares, added in one place rather than on each route: the
/// bearer scheme, and the problem responses (400 always; 401 and 403 where a credential
/// is needed; 404 where the path names something; 413 where there is a body; 500).
struct Conventions;

impl Modify for Conventions {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        let problem = |what: &str| {
            ResponseBuilder::new()
                .description(what)
                .content(
                    "application/problem+json",
                    Content::new(Some(Ref::from_schema_name("ProblemDetails"))),
                )
                .build()
        };
        for (path, item) in doc.paths.paths.iter_mut() {
            let ops = [
                item.get.as_mut(),
                item.post.as_mut(),
                item.put.as_mut(),
                item.delete.as_mut(),
                item.patch.as_mut(),
            ];
            for op in ops.into_iter().flatten() {
                let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
                let mut add = |code: &str, what: &str| {
                    op.responses
                        .responses
                        .entry(code.to_owned())
                        .or_insert_with(|| problem(what).into());
                };
                add("400", "Bad input (`bad_query`, `bad_path`, `bad_body`, …)");
                if secured {
                    add("401", "No valid credential (`unauthenticated`)");
                    add(
                        "403",
                        "The caller's groups do not allow this (`forbidden`, …)",
                    );
                }
                if path.contains('{') {
                    add("404", "Nothing by that name or id");
                }
                if op.request_body.is_some() {
                    add("413", "The body is too large (`body_too_large`)");
                }
                add(
                    "500",
                    "The gateway could not complete the request (`internal`)",
                );
            }
        }
    }
}

/// Every documented `/api/v1` route, with its handler; the document and the served routes
/// both come from here.
fn v1_routes() -> OpenApiRouter<Api> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(meta::routes())
        .merge(connections::routes())
        .merge(sessions::routes())
        .merge(reviews::routes())
        .merge(audit::routes())
        .merge(tokens::routes())
}

/// The OpenAPI 3.1 document of `/api/v1`, as JSON. It depends on the code only, so it is
/// built once.
pub fn openapi_json() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        let (_, mut doc) = v1_routes().split_for_parts();
        // After the merge: a modifier in the derive would run before any path exists.
        Conventions.modify(&mut doc);
        doc.to_pretty_json().unwrap_or_default()
    })
}

/// The gateway's HTTP router: `/healthz`, `/metrics` and, with `api`, everything under
/// `/api/v1` (bodies limited to [`MAX_BODY`]; unknown routes and wrong methods answer
/// problems).
pub fn router(metrics: Option<PrometheusHandle>, api: Option<Api>) -> Router {
    // The console may call the OIDC issuers (discovery, token endpoint): its CSP says so.
    let console = console::ConsoleOptions::from_config(api.as_ref().map(|a| &*a.config));
    let mut base = Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(render_metrics))
        .with_state(ApiState { metrics });
    if let Some(api) = api {
        let (v1, _) = v1_routes().split_for_parts();
        let v1 = v1
            .route("/api/v1", any(problem::no_such_route))
            .route("/api/v1/", any(problem::no_such_route))
            .route("/api/v1/{*rest}", any(problem::no_such_route))
            .method_not_allowed_fallback(problem::method_not_allowed)
            .layer(DefaultBodyLimit::max(MAX_BODY))
            .with_state(api);
        base = base.merge(v1);
    }
    // Last: the console owns the fallback (its own paths, and index.html for the rest).
    base.merge(console::routes(console))
}

async fn healthz() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"status":"ok"}"#,
    )
}

async fn render_metrics(State(state): State<ApiState>) -> impl IntoResponse {
    match state.metrics {
        Some(h) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            h.render(),
        ),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            "metrics recorder not installed\n".to_owned(),
        ),
    }
}

/// Serves the router on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, router: Router) -> std::io::Result<()> {
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
}
