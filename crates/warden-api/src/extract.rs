//! Extractors whose rejections are problems: query strings, path segments and JSON
//! bodies that do not parse answer 400 (413 when too large) with a stable code, never
//! axum's plain-text defaults.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::problem::Problem;

/// A query string, `bad_query` when it does not parse (unknown keys included).
pub struct Q<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Q<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        let Query(v) = Query::<T>::from_request_parts(parts, state).await?;
        Ok(Q(v))
    }
}

/// A path parameter, `bad_path` when it does not decode.
pub struct P<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for P<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        let Path(v) = Path::<T>::from_request_parts(parts, state).await?;
        Ok(P(v))
    }
}

/// A JSON body, `bad_body` when it does not parse. The content type is not checked (the
/// CLI and scripts send bare bodies) and an empty body reads as `{}`, so a body whose
/// fields are all optional may be left out.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        let bytes = Bytes::from_request(req, state).await?;
        let text: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &bytes
        };
        serde_json::from_slice(text).map(JsonBody).map_err(|e| {
            Problem::bad_request(
                "bad_body",
                format!("the body is not the expected JSON: {e}"),
            )
        })
    }
}

/// For routes without query parameters: any is refused (`bad_query`), so a typo in a
/// filter never passes silently as "no filter".
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoQuery {}
