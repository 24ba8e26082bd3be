//! RFC 9457 problem details: the one place API errors become responses. Every error
//! carries a stable `code` string clients may branch on; `detail` is for people and never
//! holds internals or secrets.

use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// Where problem types are documented; `type` is this plus the code.
pub const TYPE_BASE: &str = "https://warden.dev/problems/";

/// An RFC 9457 problem, as an error value.
#[derive(Debug)]
pub struct Problem {
    status: StatusCode,
    code: &'static str,
    detail: String,
}

/// The JSON body of every error (`application/problem+json`).
#[derive(Serialize, ToSchema)]
pub struct ProblemDetails {
    /// `https://warden.dev/problems/<code>`.
    #[serde(rename = "type")]
    #[schema(example = "https://warden.dev/problems/forbidden")]
    pub kind: String,
    /// The HTTP status's reason phrase.
    #[schema(example = "Forbidden")]
    pub title: String,
    /// The HTTP status.
    #[schema(example = 403)]
    pub status: u16,
    /// Stable machine-readable code: `unauthenticated`, `forbidden`, `bad_query`,
    /// `bad_body`, `bad_path`, `body_too_large`, `no_such_route`, `method_not_allowed`,
    /// `not_found` variants (`no_such_session`, `no_such_request`, …), `internal`, ….
    #[schema(example = "forbidden")]
    pub code: String,
    /// What went wrong, for people.
    pub detail: String,
}

impl Problem {
    /// A problem with `status`, a stable `code` and a human `detail`.
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Problem {
            status,
            code,
            detail: detail.into(),
        }
    }

    /// 400 with `code`.
    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::BAD_REQUEST, code, detail)
    }

    /// 404 with `code`.
    pub fn not_found(code: &'static str, detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::NOT_FOUND, code, detail)
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The stable code.
    pub fn code(&self) -> &'static str {
        self.code
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        // Errors by kind, for /metrics: the stable code is the kind.
        metrics::counter!(
            "warden_api_problems_total",
            "status" => self.status.as_str().to_owned(),
            "code" => self.code,
        )
        .increment(1);
        let body = ProblemDetails {
            kind: format!("{TYPE_BASE}{}", self.code),
            title: self.status.canonical_reason().unwrap_or("").to_owned(),
            status: self.status.as_u16(),
            code: self.code.to_owned(),
            detail: self.detail,
        };
        (
            self.status,
            [(header::CONTENT_TYPE, "application/problem+json")],
            serde_json::to_string(&body).unwrap_or_default(),
        )
            .into_response()
    }
}

/// A failure the caller cannot fix: logged here, reported without internals.
pub(crate) fn internal(e: impl std::fmt::Display) -> Problem {
    tracing::error!(error = %e, "API request failed");
    Problem::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "the request could not be completed; see the gateway log",
    )
}

impl From<QueryRejection> for Problem {
    fn from(e: QueryRejection) -> Self {
        Problem::bad_request("bad_query", e.body_text())
    }
}

impl From<PathRejection> for Problem {
    fn from(e: PathRejection) -> Self {
        Problem::bad_request("bad_path", e.body_text())
    }
}

impl From<BytesRejection> for Problem {
    fn from(e: BytesRejection) -> Self {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("the body is larger than {} bytes", crate::MAX_BODY),
            )
        } else {
            Problem::bad_request("bad_body", "the body could not be read")
        }
    }
}

/// Unknown routes under `/api/v1`.
pub(crate) async fn no_such_route() -> Problem {
    Problem::not_found(
        "no_such_route",
        "no such API route; see /api/v1/openapi.json",
    )
}

/// A known route called with a method it does not take.
pub(crate) async fn method_not_allowed() -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not take that method; see /api/v1/openapi.json",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_problem_is_rfc9457_json_with_its_code() {
        let r =
            Problem::new(StatusCode::CONFLICT, "not_pending", "already approved").into_response();
        assert_eq!(r.status(), StatusCode::CONFLICT);
        assert_eq!(
            r.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        let body = axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "type": "https://warden.dev/problems/not_pending",
                "title": "Conflict",
                "status": 409,
                "code": "not_pending",
                "detail": "already approved",
            })
        );
    }
}
