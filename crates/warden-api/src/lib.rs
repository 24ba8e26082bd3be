//! Warden's HTTP surface: `/healthz`, Prometheus `/metrics`, and under `/api/v1` the
//! recorded sessions and the audit ([`sessions`]), reviews and access requests
//! ([`reviews`]). The rest of the REST API and the console come later.
#![forbid(unsafe_code)]

pub mod reviews;
pub mod sessions;

use std::net::SocketAddr;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Shared state of the HTTP listener.
#[derive(Clone)]
pub struct ApiState {
    metrics: Option<PrometheusHandle>,
}

/// Installs the process-wide Prometheus recorder. Call once, before any metric is recorded;
/// a second call returns `None`.
pub fn install_metrics() -> Option<PrometheusHandle> {
    PrometheusBuilder::new().install_recorder().ok()
}

/// The router; `sessions` adds the session and audit routes, `reviews` the review and
/// access-request routes.
pub fn router(
    metrics: Option<PrometheusHandle>,
    sessions: Option<sessions::SessionsApi>,
    reviews: Option<reviews::ReviewsApi>,
) -> Router {
    let mut base = Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(render_metrics))
        .with_state(ApiState { metrics });
    if let Some(api) = sessions {
        base = base.merge(sessions::routes(api));
    }
    if let Some(api) = reviews {
        base = base.merge(reviews::routes(api));
    }
    base
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
