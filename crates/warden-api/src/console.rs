//! The web console: the static files under `console/` at the repository root, embedded in
//! the binary (`rust-embed` with `debug-embed`, so debug builds and tests serve exactly what
//! ships), served at `/` with a strict Content-Security-Policy.
//!
//! `GET /assets/…` serves a file; any other GET that is not an API path (`/api/…`,
//! `/metrics`, `/healthz`, `/mcp`) serves `index.html`, so the console's own paths
//! (`/sessions/ID`, `/console/callback`) survive a reload. Unknown `/api/…` paths get a
//! problem+json 404. The console router owns the application's fallback: merge it last, and
//! no other router may set one (axum allows only one).
//!
//! Adding a file to `console/` needs a rebuild of this crate (touch this file): the
//! embedding macro tracks the files it saw, not the folder.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use rust_embed::Embed;

use crate::problem::Problem;

#[derive(Embed)]
#[folder = "../../console/"]
struct Files;

/// What the console's responses need from the configuration.
#[derive(Clone, Debug, Default)]
pub struct ConsoleOptions {
    /// Origins (`https://idp.example`) the console may call besides its own: the OIDC
    /// issuers, for discovery and the token endpoint.
    connect_origins: Vec<String>,
}

impl ConsoleOptions {
    /// Options allowing the origins of `oidc_urls` (issuer and discovery URLs of every
    /// `[[identity.oidc]]`). URLs that are not plain http(s) are skipped with a warning:
    /// anything else could smuggle a CSP directive.
    pub fn new<'a>(oidc_urls: impl IntoIterator<Item = &'a str>) -> Self {
        let mut connect_origins: Vec<String> = Vec::new();
        for raw in oidc_urls {
            match origin_of(raw) {
                Some(o) if !connect_origins.contains(&o) => connect_origins.push(o),
                Some(_) => {}
                None => tracing::warn!(url = raw, "OIDC URL left out of the console's CSP"),
            }
        }
        ConsoleOptions { connect_origins }
    }

    /// Options for `config` (none: only the gateway's own origin): the issuer and discovery
    /// URL of every `[[identity.oidc]]`.
    pub fn from_config(config: Option<&warden_config::Config>) -> Self {
        let urls = config
            .into_iter()
            .flat_map(|c| c.identity.oidc.iter())
            .flat_map(|o| std::iter::once(o.issuer.as_str()).chain(o.discovery_url.as_deref()));
        Self::new(urls)
    }

    /// The Content-Security-Policy of every console response: scripts, styles and images
    /// only from the gateway itself (no inline scripts or styles), fetches to the gateway
    /// and the OIDC issuers, no framing, no plugins, no `<base>`.
    pub fn content_security_policy(&self) -> String {
        let mut connect = String::from("'self'");
        for o in &self.connect_origins {
            connect.push(' ');
            connect.push_str(o);
        }
        format!(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
             font-src 'self'; connect-src {connect}; manifest-src 'self'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
        )
    }
}

/// `scheme://host[:port]` of an http(s) URL, or `None`.
fn origin_of(raw: &str) -> Option<String> {
    let url = url::Url::parse(raw).ok()?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return None;
    }
    let origin = url.origin().ascii_serialization();
    // ascii_serialization of a tuple origin has no spaces, quotes or semicolons; check anyway.
    origin
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-.:/[]".contains(&b))
        .then_some(origin)
}

#[derive(Clone)]
struct ConsoleState {
    csp: HeaderValue,
}

/// The console's routes: `/assets/…`, and everything else as the application fallback.
pub fn routes(options: ConsoleOptions) -> Router {
    let csp = HeaderValue::from_str(&options.content_security_policy())
        .unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'"));
    Router::new()
        .fallback(serve)
        .with_state(ConsoleState { csp })
}

/// Paths that belong to the API side: never answered with the console's index.
fn is_api_path(path: &str) -> bool {
    let under = |prefix: &str| {
        path == prefix
            || path
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with('/'))
    };
    under("/api") || under("/metrics") || under("/healthz") || under("/mcp")
}

async fn serve(State(state): State<ConsoleState>, req: Request) -> Response {
    let path = req.uri().path();
    if is_api_path(path) {
        return Problem::new(
            StatusCode::NOT_FOUND,
            "no_such_route",
            format!("no API route {path}; see /api/v1/openapi.json"),
        )
        .into_response();
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = (
            StatusCode::METHOD_NOT_ALLOWED,
            "the console only answers GET\n",
        )
            .into_response();
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let (name, file) = match path.strip_prefix("/assets/") {
        // An asset that is missing is a 404, not the index: a script URL answered with
        // HTML would fail in a confusing way.
        Some(rest) => {
            let name = format!("assets/{rest}");
            match Files::get(&name) {
                Some(f) => (name, f),
                None => return not_found(&state),
            }
        }
        None => match Files::get("index.html") {
            Some(f) => ("index.html".to_owned(), f),
            None => return not_found(&state),
        },
    };
    let etag = format!("\"{}\"", hex_lower(&file.metadata.sha256_hash()));
    let mut resp = if if_none_match(req.headers(), &etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut r = file.data.into_owned().into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(content_type(&name)),
        );
        r
    };
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    // File names carry no content hash (there is no build step), so browsers revalidate
    // every time; the ETag makes that a 304 when nothing changed.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    security_headers(h, &state);
    resp
}

fn not_found(state: &ConsoleState) -> Response {
    let mut r = (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "not found\n",
    )
        .into_response();
    security_headers(r.headers_mut(), state);
    r
}

fn security_headers(h: &mut HeaderMap, state: &ConsoleState) {
    h.insert(header::CONTENT_SECURITY_POLICY, state.csp.clone());
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // The sign-in callback URL carries an authorization code: never send it onwards.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
}

fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == etag || t == "*")
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("json") => "application/json",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("txt") => "text/plain; charset=utf-8",
        Some("woff2") => "font/woff2",
        _ => "application/octet-stream",
    }
}

fn hex_lower(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use tower::ServiceExt;

    fn app() -> Router {
        routes(ConsoleOptions::new([
            "http://127.0.0.1:4444",
            "https://idp.example/realms/x/.well-known/openid-configuration",
            "javascript:alert(1)",
            "http://evil.example; script-src *",
        ]))
    }

    async fn get(path: &str, headers: &[(&str, &str)]) -> Response {
        let mut req = Request::builder().uri(path);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        app()
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    async fn body(r: Response) -> String {
        let b = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
        String::from_utf8(b.to_vec()).unwrap()
    }

    #[test]
    fn csp_lists_only_http_origins() {
        let o = ConsoleOptions::new([
            "http://127.0.0.1:4444/",
            "http://127.0.0.1:4444/other",
            "https://idp.example/realms/x",
            "javascript:alert(1)",
            "http://evil.example; script-src *",
            "not a url",
        ]);
        assert_eq!(
            o.connect_origins,
            vec!["http://127.0.0.1:4444", "https://idp.example"]
        );
        let csp = o.content_security_policy();
        assert!(csp.contains("connect-src 'self' http://127.0.0.1:4444 https://idp.example;"));
        assert!(csp.contains("script-src 'self';"));
        assert!(!csp.contains("unsafe"));
        assert!(!csp.contains('*'));
    }

    #[tokio::test]
    async fn index_and_spa_paths_serve_the_console_with_its_headers() {
        for path in [
            "/",
            "/index.html",
            "/sessions/abc",
            "/console/callback?code=x",
        ] {
            let r = get(path, &[]).await;
            assert_eq!(r.status(), StatusCode::OK, "{path}");
            let h = r.headers();
            assert_eq!(h[header::CONTENT_TYPE], "text/html; charset=utf-8");
            assert_eq!(h[header::CACHE_CONTROL], "no-cache");
            assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
            assert_eq!(h[header::REFERRER_POLICY], "no-referrer");
            let csp = h[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
            assert!(
                csp.starts_with("default-src 'none'; script-src 'self';"),
                "{csp}"
            );
            assert!(!csp.contains("evil"), "{csp}");
            let text = body(r).await;
            assert!(text.contains("<script type=\"module\""), "{text}");
            // No inline script: every <script> has a src.
            assert!(!text.contains("<script>"), "{text}");
        }
    }

    #[tokio::test]
    async fn assets_have_their_content_types_and_revalidate_with_etags() {
        let r = get("/assets/js/main.js", &[]).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(
            r.headers()[header::CONTENT_TYPE],
            "text/javascript; charset=utf-8"
        );
        let etag = r.headers()[header::ETAG].to_str().unwrap().to_owned();
        assert!(etag.starts_with('"') && etag.len() == 66, "{etag}");
        let r = get("/assets/console.css", &[]).await;
        assert_eq!(r.headers()[header::CONTENT_TYPE], "text/css; charset=utf-8");
        let r = get("/assets/js/main.js", &[("if-none-match", &etag)]).await;
        assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
        assert!(body(r).await.is_empty());
        let r = get("/assets/js/main.js", &[("if-none-match", "\"other\"")]).await;
        assert_eq!(r.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn missing_assets_and_api_paths_are_404s_not_the_index() {
        let r = get("/assets/nope.js", &[]).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        assert!(r.headers().contains_key(header::CONTENT_SECURITY_POLICY));
        // Traversal out of the embedded folder finds nothing.
        let r = get("/assets/../../Cargo.toml", &[]).await;
        assert_ne!(r.status(), StatusCode::OK);
        let r = get("/assets/%2e%2e/%2e%2e/Cargo.toml", &[]).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        for path in ["/api/v1/nope", "/api", "/healthz/x", "/mcp"] {
            let r = get(path, &[]).await;
            assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
            assert_eq!(
                r.headers()[header::CONTENT_TYPE],
                "application/problem+json",
                "{path}"
            );
            assert!(body(r).await.contains("\"no_such_route\""), "{path}");
        }
        // Not an API path, only a lookalike.
        assert_eq!(get("/apix", &[]).await.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn other_methods_are_refused() {
        let req = Request::builder()
            .method("POST")
            .uri("/")
            .body(Body::empty())
            .unwrap();
        let r = app().oneshot(req).await.unwrap();
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(r.headers()[header::ALLOW], "GET, HEAD");
    }
}
