//! The REST API under `/api/v1`, end to end against a real gateway, PostgreSQL and (for
//! sign-in settings and OIDC bearer tokens) the real OIDC provider: every route refuses a
//! missing credential (401) and the wrong group (403), does its job, and answers bad input
//! with a 400 problem; the OpenAPI document lists exactly the routes served; the review
//! stream delivers a held statement live; no response but the issuing one carries a secret.

mod common;

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{bail, Result};
use bytes::BytesMut;
use common::{raw_login, read_frame, Gateway, Login};
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use warden_testkit::{OidcProvider, PgCluster};
use warden_wire::{ErrorResponse, Message, NoticeResponse};

const PW_ENV: &str = "WARDEN_TEST_API_PW";

/// Who needs what: the contract's route table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Need {
    Public,
    /// Any identity; what it sees depends on its groups.
    User,
    Auditor,
    Admin,
}

/// Every route under `/api/v1` (method, path as documented, who may call it, a concrete
/// path to call, a body).
const ROUTES: &[(&str, &str, Need, &str, &str)] = &[
    ("GET", "/api/v1/health", Need::Public, "/api/v1/health", ""),
    (
        "GET",
        "/api/v1/auth/config",
        Need::Public,
        "/api/v1/auth/config",
        "",
    ),
    (
        "GET",
        "/api/v1/openapi.json",
        Need::Public,
        "/api/v1/openapi.json",
        "",
    ),
    ("GET", "/api/v1/me", Need::User, "/api/v1/me", ""),
    (
        "GET",
        "/api/v1/connections",
        Need::User,
        "/api/v1/connections",
        "",
    ),
    (
        "GET",
        "/api/v1/connections/{name}",
        Need::User,
        "/api/v1/connections/app",
        "",
    ),
    (
        "GET",
        "/api/v1/sessions",
        Need::Auditor,
        "/api/v1/sessions",
        "",
    ),
    (
        "GET",
        "/api/v1/sessions/{id}",
        Need::Auditor,
        "/api/v1/sessions/00000000-0000-0000-0000-000000000000",
        "",
    ),
    (
        "GET",
        "/api/v1/sessions/{id}/events",
        Need::Auditor,
        "/api/v1/sessions/00000000-0000-0000-0000-000000000000/events",
        "",
    ),
    (
        "GET",
        "/api/v1/sessions/{id}/replay",
        Need::Auditor,
        "/api/v1/sessions/00000000-0000-0000-0000-000000000000/replay",
        "",
    ),
    (
        "GET",
        "/api/v1/sessions/{id}/export",
        Need::Auditor,
        "/api/v1/sessions/00000000-0000-0000-0000-000000000000/export",
        "",
    ),
    (
        "GET",
        "/api/v1/sessions/{id}/verify",
        Need::Auditor,
        "/api/v1/sessions/00000000-0000-0000-0000-000000000000/verify",
        "",
    ),
    (
        "POST",
        "/api/v1/sessions/{id}/kill",
        Need::Admin,
        "/api/v1/sessions/00000000-0000-0000-0000-000000000000/kill",
        "",
    ),
    ("GET", "/api/v1/reviews", Need::User, "/api/v1/reviews", ""),
    (
        "GET",
        "/api/v1/reviews/stream",
        Need::User,
        "/api/v1/reviews/stream",
        "",
    ),
    (
        "GET",
        "/api/v1/reviews/{id}",
        Need::User,
        "/api/v1/reviews/rv-0000000000000000",
        "",
    ),
    (
        "POST",
        "/api/v1/reviews/{id}/approve",
        Need::User,
        "/api/v1/reviews/rv-0000000000000000/approve",
        "",
    ),
    (
        "POST",
        "/api/v1/reviews/{id}/reject",
        Need::User,
        "/api/v1/reviews/rv-0000000000000000/reject",
        "",
    ),
    (
        "GET",
        "/api/v1/access-requests",
        Need::User,
        "/api/v1/access-requests",
        "",
    ),
    (
        "POST",
        "/api/v1/access-requests",
        Need::User,
        "/api/v1/access-requests",
        r#"{"connection":"nowhere","duration":"1h"}"#,
    ),
    (
        "GET",
        "/api/v1/access-requests/{id}",
        Need::User,
        "/api/v1/access-requests/ar-0000000000000000",
        "",
    ),
    (
        "POST",
        "/api/v1/access-requests/{id}/approve",
        Need::User,
        "/api/v1/access-requests/ar-0000000000000000/approve",
        "",
    ),
    (
        "POST",
        "/api/v1/access-requests/{id}/reject",
        Need::User,
        "/api/v1/access-requests/ar-0000000000000000/reject",
        "",
    ),
    ("GET", "/api/v1/audit", Need::Auditor, "/api/v1/audit", ""),
    (
        "GET",
        "/api/v1/audit/export",
        Need::Auditor,
        "/api/v1/audit/export",
        "",
    ),
    (
        "GET",
        "/api/v1/audit/verify",
        Need::Auditor,
        "/api/v1/audit/verify",
        "",
    ),
    ("GET", "/api/v1/tokens", Need::Admin, "/api/v1/tokens", ""),
    (
        "POST",
        "/api/v1/tokens",
        Need::Admin,
        "/api/v1/tokens",
        r#"{"name":"probe","groups":[]}"#,
    ),
    (
        "DELETE",
        "/api/v1/tokens/{id}",
        Need::Admin,
        "/api/v1/tokens/nonexistent0",
        "",
    ),
];

/// One HTTP answer.
#[derive(Debug)]
struct Resp {
    status: u16,
    ctype: String,
    disposition: String,
    body: String,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.body))
    }

    /// Asserts an RFC 9457 problem with `status` and `code`.
    #[track_caller]
    fn problem(&self, status: u16, code: &str) -> &Self {
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(self.ctype, "application/problem+json", "{}", self.body);
        let p = self.json();
        assert_eq!(p["code"], code, "{p}");
        assert_eq!(p["status"], status, "{p}");
        assert_eq!(
            p["type"],
            format!("https://warden.dev/problems/{code}"),
            "{p}"
        );
        assert!(p["title"].as_str().is_some_and(|t| !t.is_empty()), "{p}");
        assert!(p["detail"].as_str().is_some_and(|t| !t.is_empty()), "{p}");
        self
    }

    #[track_caller]
    fn ok(&self, status: u16) -> Value {
        assert_eq!(self.status, status, "{}", self.body);
        self.json()
    }
}

/// An HTTP client that keeps every answer, to check later that no secret leaked.
struct Client {
    base: String,
    http: reqwest::Client,
    seen: Mutex<Vec<(String, String)>>,
}

impl Client {
    fn new(gw: &Gateway) -> Client {
        Client {
            base: format!("http://{}", gw.http),
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            seen: Mutex::new(Vec::new()),
        }
    }

    async fn call(&self, method: &str, path: &str, token: Option<&str>, body: &str) -> Resp {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if !body.is_empty() {
            req = req
                .header("content-type", "application/json")
                .body(body.to_owned());
        }
        let r = req.send().await.unwrap();
        let header = |n: &str| {
            r.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned()
        };
        let (status, ctype, disposition) = (
            r.status().as_u16(),
            header("content-type"),
            header("content-disposition"),
        );
        let body = r.text().await.unwrap();
        self.seen
            .lock()
            .unwrap()
            .push((format!("{method} {path}"), body.clone()));
        Resp {
            status,
            ctype,
            disposition,
            body,
        }
    }

    async fn get(&self, path: &str, token: &str) -> Resp {
        self.call("GET", path, Some(token), "").await
    }

    async fn post(&self, path: &str, token: &str, body: &str) -> Resp {
        self.call("POST", path, Some(token), body).await
    }

    /// Opens the review stream and returns the response (headers read).
    async fn stream(&self, token: &str) -> reqwest::Response {
        let r = self
            .http
            .get(format!("{}/api/v1/reviews/stream", self.base))
            .bearer_auth(token)
            .timeout(Duration::from_secs(120))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        r
    }
}

/// Server-sent events read from a stream: (event name, data) pairs and comments.
struct Sse {
    resp: reqwest::Response,
    buf: String,
}

impl Sse {
    /// The next event (comments are returned as `(":", text)`), or None after `wait`.
    async fn next(&mut self, wait: Duration) -> Option<(String, String)> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(at) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..at + 2).collect();
                let (mut event, mut data) = (String::from("message"), String::new());
                for line in block.lines() {
                    if let Some(c) = line.strip_prefix(':') {
                        return Some((":".into(), c.trim().to_owned()));
                    } else if let Some(e) = line.strip_prefix("event:") {
                        event = e.trim().to_owned();
                    } else if let Some(d) = line.strip_prefix("data:") {
                        data.push_str(d.trim_start());
                    }
                }
                return Some((event, data));
            }
            let chunk = tokio::time::timeout_at(deadline, self.resp.chunk()).await;
            match chunk {
                Ok(Ok(Some(c))) => self.buf.push_str(&String::from_utf8_lossy(&c)),
                _ => return None,
            }
        }
    }

    /// Skips to the next `review` event whose JSON satisfies `want`.
    async fn review(&mut self, want: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                Some((e, d)) if e == "review" => {
                    let v: Value = serde_json::from_str(&d).unwrap();
                    if want(&v) {
                        return v;
                    }
                }
                Some(_) => {}
                None => panic!("no matching review event arrived"),
            }
        }
    }
}

struct Setup {
    pg: PgCluster,
    gw: Gateway,
    c: Client,
    admin: String,
    auditor: String,
    dba: String,
    user: String,
    nobody: String,
}

fn config(pg: &PgCluster, oidc: Option<&OidcProvider>) -> String {
    let oidc = oidc
        .map(|o| {
            format!(
                "[[identity.oidc]]\nissuer = \"{}\"\naudience = \"urn:warden\"\n",
                o.issuer()
            )
        })
        .unwrap_or_default();
    format!(
        r#"
[api]
console_client_id = "warden-console"
cli_client_id = "warden-cli"

{oidc}
[[connections]]
name = "app"
target = "postgres://127.0.0.1:{port}/postgres"
allow_groups = ["agents", "dba"]
username = "postgres"
password_env = "{PW_ENV}"

[[connections.rules]]
action = "review"
classes = ["destructive"]
approver_groups = ["dba"]
timeout = "60s"
message = "destructive statements need a DBA"

[[connections]]
name = "restricted"
target = "postgres://127.0.0.1:{port}/postgres"
allow_groups = ["dba"]
username = "postgres"
password_env = "{PW_ENV}"

[connections.access_requests]
approver_groups = ["dba"]
max_duration = "1h"

[[connections]]
name = "hidden"
target = "postgres://127.0.0.1:{port}/postgres"
allow_groups = ["dba"]
username = "postgres"
password_env = "{PW_ENV}"
"#,
        port = pg.port()
    )
}

async fn setup(oidc: Option<&OidcProvider>) -> Setup {
    let pg = PgCluster::start_scram().await.expect("cluster");
    pg.psql("CREATE TABLE drop_me (id int); CREATE TABLE keep_me (id int); CREATE TABLE also_keep (id int)")
        .await
        .unwrap();
    let gw = Gateway::start(&config(&pg, oidc), &[(PW_ENV, pg.superuser_password())])
        .await
        .expect("gateway");
    let c = Client::new(&gw);
    let t = |name: &str, groups: &str| gw.issue_token(name, groups, "1h").unwrap();
    Setup {
        admin: t("alice", "warden-admins"),
        auditor: t("audrey", "warden-auditors"),
        dba: t("dave", "dba"),
        user: t("bob", "agents"),
        nobody: t("nemo", "outsiders"),
        c,
        gw,
        pg,
    }
}

/// A raw PostgreSQL session through the gateway.
struct Pg {
    s: TcpStream,
    buf: BytesMut,
}

impl Pg {
    async fn open(gw: &Gateway, db: &str, token: &str) -> Pg {
        match raw_login(gw.pg, db, token).await.unwrap() {
            Login::Ok(s) => Pg {
                s,
                buf: BytesMut::new(),
            },
            Login::Error { code, message } => panic!("login refused: {code} {message}"),
        }
    }

    async fn send(&mut self, sql: &str) {
        self.s.write_all(&common::query_frame(sql)).await.unwrap();
    }

    /// Reads until the hold notice; returns the review id.
    async fn held(&mut self) -> String {
        loop {
            let f = read_frame(&mut self.s, &mut self.buf).await.unwrap();
            match f.tag() {
                b'N' => {
                    let n = NoticeResponse::from_frame(&f).unwrap();
                    let msg = n.fields.message().unwrap_or("").to_owned();
                    if let Some(at) = msg.find("review rv-") {
                        return msg[at + 7..at + 26].to_owned();
                    }
                }
                b'E' | b'C' | b'Z' => panic!("expected a hold, got {:?}", f.tag() as char),
                _ => {}
            }
        }
    }

    /// Reads up to ReadyForQuery: command tags, or the error (also when the gateway
    /// closes the connection after it).
    async fn result(&mut self) -> Result<Vec<String>> {
        let mut tags = Vec::new();
        let mut err = None;
        loop {
            let f = match read_frame(&mut self.s, &mut self.buf).await {
                Ok(f) => f,
                Err(e) => bail!("{}", err.unwrap_or_else(|| e.to_string())),
            };
            match f.tag() {
                b'C' => tags.push(
                    String::from_utf8_lossy(f.body())
                        .trim_end_matches('\0')
                        .to_owned(),
                ),
                b'E' => {
                    let e = ErrorResponse::from_frame(&f)?;
                    err = Some(format!(
                        "{} {}",
                        e.fields.code().unwrap_or(""),
                        e.fields.message().unwrap_or("")
                    ));
                }
                b'Z' => {
                    return match err {
                        Some(e) => bail!("{e}"),
                        None => Ok(tags),
                    }
                }
                _ => {}
            }
        }
    }
}

async fn table_exists(pg: &PgCluster, name: &str) -> bool {
    pg.psql(&format!("SELECT to_regclass('public.{name}') IS NOT NULL"))
        .await
        .unwrap()
        == "t"
}

/// Every route: no credential → 401, a bad one → 401, the wrong group → 403 (routes open
/// to any identity instead show it nothing of others').
#[tokio::test(flavor = "multi_thread")]
async fn every_route_refuses_a_missing_credential_and_the_wrong_group() {
    let s = setup(None).await;
    let c = &s.c;
    for &(method, _, need, path, body) in ROUTES {
        if need == Need::Public {
            let r = c.call(method, path, None, body).await;
            assert_eq!(r.status, 200, "{method} {path} is public: {}", r.body);
            continue;
        }
        c.call(method, path, None, body)
            .await
            .problem(401, "unauthenticated");
        c.call(method, path, Some("not-a-token"), body)
            .await
            .problem(401, "unauthenticated");
        match need {
            Need::Auditor => {
                c.call(method, path, Some(&s.user), body)
                    .await
                    .problem(403, "forbidden");
                c.call(method, path, Some(&s.dba), body)
                    .await
                    .problem(403, "forbidden");
            }
            Need::Admin => {
                c.call(method, path, Some(&s.auditor), body)
                    .await
                    .problem(403, "forbidden");
                c.call(method, path, Some(&s.user), body)
                    .await
                    .problem(403, "forbidden");
            }
            _ => {}
        }
    }
    // The role is checked before the input: no probing by malformed requests.
    c.get("/api/v1/sessions?limit=0", &s.user)
        .await
        .problem(403, "forbidden");
    c.post("/api/v1/tokens", &s.auditor, "{bad")
        .await
        .problem(403, "forbidden");
    // An expired or revoked credential is as good as none.
    let doomed = s.gw.issue_token("doomed", "warden-admins", "1h").unwrap();
    let me = c.get("/api/v1/me", &doomed).await.ok(200);
    assert_eq!(me["subject"], "doomed");
    let listed = c.get("/api/v1/tokens", &s.admin).await.ok(200);
    let id = listed["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["identity"] == "doomed")
        .unwrap()["jti"]
        .as_str()
        .unwrap()
        .to_owned();
    c.call(
        "DELETE",
        &format!("/api/v1/tokens/{id}"),
        Some(&s.admin),
        "",
    )
    .await
    .ok(200);
    c.get("/api/v1/me", &doomed)
        .await
        .problem(401, "unauthenticated");

    // Routes open to any identity: the wrong group decides nothing and sees nothing of others'.
    let ar = c
        .post(
            "/api/v1/access-requests",
            &s.user,
            r#"{"connection":"restricted","duration":"10m","reason":"triage"}"#,
        )
        .await
        .ok(201);
    let id = ar["id"].as_str().unwrap();
    for who in [&s.nobody, &s.user] {
        for verb in ["approve", "reject"] {
            for base in ["/api/v1/access-requests", "/api/v1/reviews"] {
                let r = c.post(&format!("{base}/{id}/{verb}"), who, "").await;
                assert_eq!(r.status, 403, "{}", r.body);
                let code = r.json()["code"].as_str().unwrap().to_owned();
                assert!(
                    code == "not_an_approver" || code == "self_approval",
                    "{code}"
                );
                r.problem(403, &code);
            }
        }
    }
    let none = c.get("/api/v1/access-requests", &s.nobody).await.ok(200);
    assert_eq!(none, serde_json::json!([]));
    let none = c.get("/api/v1/reviews?status=all", &s.nobody).await.ok(200);
    assert_eq!(none, serde_json::json!([]));
    c.get(&format!("/api/v1/access-requests/{id}"), &s.nobody)
        .await
        .problem(404, "no_such_request");
    c.get(&format!("/api/v1/reviews/{id}"), &s.nobody)
        .await
        .problem(404, "no_such_request");
    // The requester and the approver see it.
    let own = c.get("/api/v1/access-requests", &s.user).await.ok(200);
    assert_eq!(own[0]["id"], id);
    let theirs = c.get("/api/v1/reviews", &s.dba).await.ok(200);
    assert_eq!(theirs[0]["id"], id);
    // Connections: outsiders see none; a user sees what it may open or ask for.
    assert_eq!(
        c.get("/api/v1/connections", &s.nobody).await.ok(200),
        serde_json::json!([c
            .get("/api/v1/connections/restricted", &s.nobody)
            .await
            .ok(200)])
    );
    c.get("/api/v1/connections/app", &s.nobody)
        .await
        .problem(404, "no_such_connection");
    c.get("/api/v1/connections/hidden", &s.user)
        .await
        .problem(404, "no_such_connection");
    drop(s.pg);
}

/// Whether `path` (query ignored) is an instance of the documented `template`.
fn matches_template(template: &str, path: &str) -> bool {
    let path = path.split('?').next().unwrap();
    let (t, p): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    t.len() == p.len()
        && t.iter()
            .zip(&p)
            .all(|(t, p)| t == p || (t.starts_with('{') && !p.is_empty()))
}

/// Every route with bad input answers a 400 problem (413 for an oversized body), never a
/// crash or a plain-text error; unknown routes and wrong methods answer problems too.
#[tokio::test(flavor = "multi_thread")]
async fn bad_input_gets_a_problem() {
    let s = setup(None).await;
    let c = &s.c;
    let a = &s.admin;
    let sid = "00000000-0000-0000-0000-000000000000";
    let cases: &[(&str, &str, &str, &str)] = &[
        ("GET", "/api/v1/health?verbose=1", "", "bad_query"),
        ("GET", "/api/v1/auth/config?x=1", "", "bad_query"),
        ("GET", "/api/v1/openapi.json?x=1", "", "bad_query"),
        ("GET", "/api/v1/me?x=1", "", "bad_query"),
        ("GET", "/api/v1/connections?x=1", "", "bad_query"),
        (
            "GET",
            "/api/v1/connections/a%0Ab",
            "",
            "bad_connection_name",
        ),
        ("GET", "/api/v1/connections/%FF", "", "bad_path"),
        ("GET", "/api/v1/sessions?limit=0", "", "bad_query"),
        ("GET", "/api/v1/sessions?limit=ten", "", "bad_query"),
        ("GET", "/api/v1/sessions?status=asleep", "", "bad_query"),
        ("GET", "/api/v1/sessions/not_a_uuid!", "", "bad_session_id"),
        (
            "GET",
            "/api/v1/sessions/..%2f..%2fetc",
            "",
            "bad_session_id",
        ),
        (
            "GET",
            &format!("/api/v1/sessions/{sid}/events?format=xml"),
            "",
            "bad_format",
        ),
        ("GET", "/api/v1/sessions/zz/replay", "", "bad_session_id"),
        (
            "GET",
            &format!("/api/v1/sessions/{sid}/export?format=asciicast"),
            "",
            "bad_format",
        ),
        ("GET", "/api/v1/sessions/zz/verify", "", "bad_session_id"),
        ("POST", "/api/v1/sessions/zz/kill", "", "bad_session_id"),
        ("GET", "/api/v1/reviews?status=sleeping", "", "bad_query"),
        ("GET", "/api/v1/reviews?kind=other", "", "bad_query"),
        ("GET", "/api/v1/reviews?limit=5000", "", "bad_query"),
        ("GET", "/api/v1/reviews/stream?since=1", "", "bad_query"),
        (
            "GET",
            "/api/v1/reviews/rv-zzzzzzzzzzzzzzzz",
            "",
            "bad_request_id",
        ),
        (
            "POST",
            "/api/v1/reviews/rv-0000000000000000/approve",
            "{bad",
            "bad_body",
        ),
        (
            "POST",
            "/api/v1/reviews/rv-0000000000000000/reject",
            r#"{"reason":5}"#,
            "bad_body",
        ),
        (
            "GET",
            "/api/v1/access-requests?kind=statement",
            "",
            "bad_query",
        ),
        (
            "POST",
            "/api/v1/access-requests",
            r#"{"connection":"restricted","duration":"forever"}"#,
            "bad_body",
        ),
        (
            "POST",
            "/api/v1/access-requests",
            r#"{"connection":"restricted","duration":"1h","x":1}"#,
            "bad_body",
        ),
        (
            "POST",
            "/api/v1/access-requests",
            r#"{"connection":"restricted","duration":"9h"}"#,
            "bad_body",
        ),
        ("POST", "/api/v1/access-requests", "", "bad_body"),
        (
            "GET",
            "/api/v1/access-requests/rv-0000000000000000",
            "",
            "bad_request_id",
        ),
        (
            "POST",
            "/api/v1/access-requests/ar-00/approve",
            "",
            "bad_request_id",
        ),
        (
            "POST",
            "/api/v1/access-requests/ar-0000000000000000/reject",
            "[1]",
            "bad_body",
        ),
        ("GET", "/api/v1/audit?limit=0", "", "bad_query"),
        ("GET", "/api/v1/audit?since=5&until=1", "", "bad_query"),
        ("GET", "/api/v1/audit/export?format=xml", "", "bad_format"),
        ("GET", "/api/v1/audit/verify?deep=1", "", "bad_query"),
        ("GET", "/api/v1/tokens?all=1", "", "bad_query"),
        (
            "POST",
            "/api/v1/tokens",
            r#"{"name":"bad name!"}"#,
            "bad_body",
        ),
        (
            "POST",
            "/api/v1/tokens",
            r#"{"name":"x","ttl":"forever"}"#,
            "bad_body",
        ),
        (
            "POST",
            "/api/v1/tokens",
            r#"{"name":"x","ttl":"100d"}"#,
            "bad_body",
        ),
        (
            "POST",
            "/api/v1/tokens",
            r#"{"name":"x","kind":"password"}"#,
            "bad_body",
        ),
        (
            "POST",
            "/api/v1/tokens",
            r#"{"name":"x","kind":"api_key","actor":"y"}"#,
            "bad_body",
        ),
        ("DELETE", "/api/v1/tokens/wdk_abc_def", "", "bad_token_id"),
    ];
    for &(method, path, body, code) in cases {
        c.call(method, path, Some(a), body).await.problem(400, code);
    }
    // Every route of the table appears above at least once.
    for &(method, doc, _, _, _) in ROUTES {
        assert!(
            cases
                .iter()
                .any(|(m, p, _, _)| *m == method && matches_template(doc, p)),
            "no bad-input case for {method} {doc}"
        );
    }
    let huge = format!(r#"{{"name":"x","groups":["{}"]}}"#, "g".repeat(200_000));
    // On its own connection: the gateway answers before reading the body, then closes.
    Client::new(&s.gw)
        .post("/api/v1/tokens", a, &huge)
        .await
        .problem(413, "body_too_large");
    c.get("/api/v1/nope", a).await.problem(404, "no_such_route");
    c.get("/api/v1", a).await.problem(404, "no_such_route");
    c.get("/api/v1/sessions/x/y/z", a)
        .await
        .problem(404, "no_such_route");
    c.call("DELETE", "/api/v1/me", Some(a), "")
        .await
        .problem(405, "method_not_allowed");
    c.call("PUT", "/api/v1/sessions", Some(a), "")
        .await
        .problem(405, "method_not_allowed");
    // The gateway is still healthy, and counts the problems by kind.
    c.get("/api/v1/health", a).await.ok(200);
    let metrics = c.call("GET", "/metrics", None, "").await;
    assert_eq!(metrics.status, 200);
    for code in [
        "bad_query",
        "bad_body",
        "no_such_route",
        "method_not_allowed",
    ] {
        assert!(
            metrics
                .body
                .lines()
                .any(|l| l.starts_with("warden_api_problems_total{")
                    && l.contains(&format!("code=\"{code}\""))),
            "no problem count for {code}:\n{}",
            metrics.body
        );
    }
    drop(s.pg);
}

/// The happy path of every route, asserting what it returns; and no response other than
/// the one that issues it carries a token or an API key.
#[tokio::test(flavor = "multi_thread")]
async fn every_route_does_its_job_and_no_response_leaks_a_secret() {
    let oidc = OidcProvider::start().await.expect("oidc provider");
    let s = setup(Some(&oidc)).await;
    let c = &s.c;
    let (admin, auditor, dba, user) = (&s.admin, &s.auditor, &s.dba, &s.user);

    // Meta.
    let h = c.call("GET", "/api/v1/health", None, "").await.ok(200);
    assert_eq!(h["status"], "ok");
    assert!(h["version"].as_str().is_some_and(|v| !v.is_empty()));
    let ac = c.call("GET", "/api/v1/auth/config", None, "").await.ok(200);
    assert_eq!(ac["builtin"], true);
    assert_eq!(ac["postgres_listen"], s.gw.pg.to_string());
    assert_eq!(ac["oidc"]["issuer"], oidc.issuer());
    assert_eq!(ac["oidc"]["audience"], "urn:warden");
    assert_eq!(ac["oidc"]["console_client_id"], "warden-console");
    assert_eq!(ac["oidc"]["cli_client_id"], "warden-cli");
    assert!(ac["oidc"]["scopes"]
        .as_array()
        .unwrap()
        .contains(&Value::from("openid")));
    let me = c.get("/api/v1/me", admin).await.ok(200);
    assert_eq!(me["subject"], "alice");
    assert_eq!(me["roles"], serde_json::json!(["admin", "user"]));
    assert_eq!(me["credential_kind"], "builtin");
    let me = c.get("/api/v1/me", dba).await.ok(200);
    assert_eq!(me["roles"], serde_json::json!(["approver", "user"]));
    let me = c.get("/api/v1/me", auditor).await.ok(200);
    assert_eq!(me["roles"], serde_json::json!(["auditor", "user"]));
    // An OIDC access token works as a bearer token too.
    let otok = oidc
        .client_credentials_token_for("olivia", &["warden-auditors"])
        .await
        .unwrap();
    let me = c.get("/api/v1/me", &otok).await.ok(200);
    assert_eq!(me["subject"], "olivia");
    assert_eq!(me["credential_kind"], "oidc");
    assert_eq!(me["roles"], serde_json::json!(["auditor", "user"]));
    let doc = c
        .call("GET", "/api/v1/openapi.json", None, "")
        .await
        .ok(200);
    assert_eq!(doc["openapi"], "3.1.0");

    // Connections.
    let conns = c.get("/api/v1/connections", admin).await.ok(200);
    let names: Vec<&str> = conns
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["app", "restricted", "hidden"]);
    assert!(conns[0]["target"]
        .as_str()
        .unwrap()
        .starts_with("postgres://"));
    assert_eq!(
        conns[0]["review_approver_groups"],
        serde_json::json!(["dba"])
    );
    let mine = c.get("/api/v1/connections", user).await.ok(200);
    assert_eq!(mine.as_array().unwrap().len(), 2, "{mine}");
    assert_eq!(mine[0]["allowed"], true);
    assert_eq!(mine[0]["target"], Value::Null);
    assert_eq!(mine[1]["name"], "restricted");
    assert_eq!(mine[1]["allowed"], false);
    assert_eq!(
        mine[1]["access_requests"]["approver_groups"],
        serde_json::json!(["dba"])
    );
    assert_eq!(mine[1]["access_requests"]["max_duration_secs"], 3600);
    let one = c.get("/api/v1/connections/app", user).await.ok(200);
    assert_eq!(one, mine[0]);

    // Access requests: ask, list, show, approve (then the connection is open), reject.
    let ar = c
        .post(
            "/api/v1/access-requests",
            user,
            r#"{"connection":"restricted","duration":"30m","reason":"incident 42"}"#,
        )
        .await
        .ok(201);
    let ar_id = ar["id"].as_str().unwrap().to_owned();
    assert!(ar_id.starts_with("ar-"));
    assert_eq!(ar["status"], "pending");
    assert_eq!(ar["requester"], "bob");
    assert_eq!(ar["duration_ms"], 1_800_000);
    let listed = c.get("/api/v1/access-requests", dba).await.ok(200);
    assert_eq!(listed[0]["id"], ar_id.as_str());
    let shown = c
        .get(&format!("/api/v1/access-requests/{ar_id}"), user)
        .await
        .ok(200);
    assert_eq!(shown["reason"], "incident 42");
    let done = c
        .post(
            &format!("/api/v1/access-requests/{ar_id}/approve"),
            dba,
            r#"{"reason":"go ahead"}"#,
        )
        .await
        .ok(200);
    assert_eq!(done["status"], "approved");
    assert_eq!(done["decided_by"], "dave");
    assert!(done["grant_expires_at"].as_i64().is_some());
    let granted = c.get("/api/v1/connections/restricted", user).await.ok(200);
    assert_eq!(granted["allowed"], true);
    assert!(granted["access_until"].as_i64().is_some());
    let ar2 = c
        .post(
            "/api/v1/access-requests",
            user,
            r#"{"connection":"restricted","duration":"5m"}"#,
        )
        .await
        .ok(201);
    let ar2_id = ar2["id"].as_str().unwrap();
    let no = c
        .post(&format!("/api/v1/access-requests/{ar2_id}/reject"), dba, "")
        .await
        .ok(200);
    assert_eq!(no["status"], "rejected");
    c.post(
        &format!("/api/v1/access-requests/{ar2_id}/approve"),
        dba,
        "",
    )
    .await
    .problem(409, "not_pending");
    let all = c
        .get("/api/v1/access-requests?status=all", user)
        .await
        .ok(200);
    assert_eq!(all.as_array().unwrap().len(), 2);

    // Reviews: a held DROP is listed, shown with its statement, approved, and runs; a
    // second is rejected and does not.
    let mut held = Pg::open(&s.gw, "app", user).await;
    held.send("DROP TABLE drop_me").await;
    let rv = held.held().await;
    let pending = c.get("/api/v1/reviews", dba).await.ok(200);
    assert!(pending
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["id"] == rv.as_str()));
    let statements = c.get("/api/v1/reviews?kind=statement", dba).await.ok(200);
    assert!(statements
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["kind"] == "statement"));
    let shown = c.get(&format!("/api/v1/reviews/{rv}"), dba).await.ok(200);
    assert_eq!(shown["statement"], "DROP TABLE drop_me");
    assert_eq!(shown["rule_message"], "destructive statements need a DBA");
    assert_eq!(shown["params"], serde_json::json!([]));
    let ok = c
        .post(&format!("/api/v1/reviews/{rv}/approve"), dba, "")
        .await
        .ok(200);
    assert_eq!(ok["status"], "approved");
    assert_eq!(held.result().await.unwrap(), ["DROP TABLE"]);
    assert!(!table_exists(&s.pg, "drop_me").await);
    held.send("DROP TABLE keep_me").await;
    let rv2 = held.held().await;
    let no = c
        .post(
            &format!("/api/v1/reviews/{rv2}/reject"),
            dba,
            r#"{"reason":"not today"}"#,
        )
        .await
        .ok(200);
    assert_eq!(no["status"], "rejected");
    assert_eq!(no["decision_reason"], "not today");
    assert!(held.result().await.is_err());
    assert!(table_exists(&s.pg, "keep_me").await);
    drop(held);

    // Sessions: the session above is recorded; list, show, events, export, replay, verify.
    let mut sid = String::new();
    for _ in 0..100 {
        let rows = c
            .get("/api/v1/sessions?identity=bob&status=complete", auditor)
            .await
            .ok(200);
        if let Some(r) = rows.as_array().unwrap().first() {
            sid = r["id"].as_str().unwrap().to_owned();
            assert_eq!(r["connection"], "app");
            assert_eq!(r["subject"], "bob");
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!sid.is_empty(), "the session was not listed as complete");
    let row = c
        .get(&format!("/api/v1/sessions/{sid}"), auditor)
        .await
        .ok(200);
    assert_eq!(row["id"], sid.as_str());
    assert!(row["statements"].as_i64().unwrap() >= 1, "{row}");
    let events = c
        .get(&format!("/api/v1/sessions/{sid}/events"), auditor)
        .await
        .ok(200);
    let text = events.to_string();
    assert!(text.contains("DROP TABLE drop_me"), "{text}");
    let jsonl = c
        .get(&format!("/api/v1/sessions/{sid}/export"), auditor)
        .await;
    assert_eq!(jsonl.status, 200);
    assert_eq!(jsonl.ctype, "application/x-ndjson");
    assert_eq!(
        jsonl.disposition,
        format!("attachment; filename=\"session-{sid}.jsonl\"")
    );
    assert_eq!(jsonl.body.lines().count(), events.as_array().unwrap().len());
    for line in jsonl.body.lines() {
        serde_json::from_str::<Value>(line).unwrap();
    }
    let csv = c
        .get(
            &format!("/api/v1/sessions/{sid}/export?format=csv"),
            auditor,
        )
        .await;
    assert_eq!(csv.status, 200);
    assert!(csv.ctype.starts_with("text/csv"));
    assert!(csv.body.contains("DROP TABLE drop_me"), "{}", csv.body);
    let replay = c
        .get(&format!("/api/v1/sessions/{sid}/replay"), auditor)
        .await;
    assert_eq!(replay.status, 200);
    assert!(replay.ctype.starts_with("text/plain"));
    assert!(
        replay.body.contains("DROP TABLE drop_me"),
        "{}",
        replay.body
    );
    let v = c
        .get(&format!("/api/v1/sessions/{sid}/verify"), auditor)
        .await
        .ok(200);
    assert_eq!(v["clean"], true, "{v}");
    assert_eq!(v["session"], sid.as_str());

    // Kill: a live session ends.
    let mut live = Pg::open(&s.gw, "app", user).await;
    let mut live_id = String::new();
    for _ in 0..100 {
        let rows = c
            .get("/api/v1/sessions?status=live&identity=bob", admin)
            .await
            .ok(200);
        if let Some(r) = rows.as_array().unwrap().first() {
            live_id = r["id"].as_str().unwrap().to_owned();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!live_id.is_empty());
    let k = c
        .post(&format!("/api/v1/sessions/{live_id}/kill"), admin, "")
        .await
        .ok(202);
    assert_eq!(k["ending"], true);
    assert_eq!(k["local"], true);
    let err = live.result().await.unwrap_err().to_string();
    assert!(err.contains("57P01"), "{err}");
    // Once it has ended, there is nothing left to kill.
    for _ in 0..100 {
        let row = c
            .get(&format!("/api/v1/sessions/{live_id}"), admin)
            .await
            .ok(200);
        if row["status"] != "live" {
            assert_eq!(row["end_reason"], "killed", "{row}");
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    c.post(&format!("/api/v1/sessions/{live_id}/kill"), admin, "")
        .await
        .problem(404, "no_live_session");

    // Audit: the decisions are there, chained; paging, export and verify.
    let audit = c.get("/api/v1/audit", auditor).await.ok(200);
    let rows = audit.as_array().unwrap();
    assert!(rows.iter().any(|r| r["reason"]
        .as_str()
        .unwrap()
        .contains(&format!("access {ar_id} approved"))));
    assert!(rows.iter().any(|r| r["reason"]
        .as_str()
        .unwrap()
        .contains(&format!("statement {rv} approved"))));
    for w in rows.windows(2) {
        assert_eq!(w[1]["prev_hash"], w[0]["hash"]);
        assert!(w[1]["id"].as_i64() > w[0]["id"].as_i64());
    }
    let first = rows[0]["id"].as_i64().unwrap();
    let page = c
        .get(&format!("/api/v1/audit?after={first}&limit=1"), auditor)
        .await
        .ok(200);
    assert_eq!(page.as_array().unwrap().len(), 1);
    assert_eq!(page[0], rows[1]);
    let by = c.get("/api/v1/audit?subject=dave", auditor).await.ok(200);
    assert!(by
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["subject"] == "dave"));
    assert!(!by.as_array().unwrap().is_empty());
    let ex = c.get("/api/v1/audit/export", auditor).await;
    assert_eq!(ex.status, 200);
    assert_eq!(ex.disposition, "attachment; filename=\"audit.jsonl\"");
    assert!(ex.body.lines().count() >= rows.len());
    let ex = c.get("/api/v1/audit/export?format=csv", auditor).await;
    assert!(ex.body.starts_with("id,at,subject,"));
    assert!(ex.body.contains(&ar_id));
    let v = c.get("/api/v1/audit/verify", auditor).await.ok(200);
    assert_eq!(v["clean"], true, "{v}");
    assert!(v["audit_rows"].as_i64().unwrap() >= rows.len() as i64);

    // Tokens: issue a token and an API key (secrets once), use them, list, revoke.
    let issued_tok = c
        .post(
            "/api/v1/tokens",
            admin,
            r#"{"name":"report-agent","groups":["agents"],"ttl":"10m","actor":"carol"}"#,
        )
        .await
        .ok(201);
    assert_eq!(issued_tok["kind"], "token");
    let tok_secret = issued_tok["secret"].as_str().unwrap().to_owned();
    let tok_id = issued_tok["id"].as_str().unwrap().to_owned();
    let issued_key = c
        .post(
            "/api/v1/tokens",
            admin,
            r#"{"name":"ci-bot","groups":["warden-auditors"],"kind":"api_key"}"#,
        )
        .await
        .ok(201);
    assert_eq!(issued_key["kind"], "api_key");
    assert_eq!(issued_key["expires_at"], Value::Null);
    let key_secret = issued_key["secret"].as_str().unwrap().to_owned();
    let key_id = issued_key["id"].as_str().unwrap().to_owned();
    assert!(key_secret.starts_with(&format!("wdk_{key_id}_")));
    let me = c.get("/api/v1/me", &tok_secret).await.ok(200);
    assert_eq!(me["subject"], "report-agent");
    assert_eq!(me["actor"], "carol");
    let me = c.get("/api/v1/me", &key_secret).await.ok(200);
    assert_eq!(me["credential_kind"], "api_key");
    c.get("/api/v1/sessions", &key_secret).await.ok(200);
    let list = c.get("/api/v1/tokens", admin).await.ok(200);
    assert!(list["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["jti"] == tok_id.as_str() && t["identity"] == "report-agent"));
    assert!(list["api_keys"]
        .as_array()
        .unwrap()
        .iter()
        .any(|k| k["id"] == key_id.as_str() && k["revoked_at"].is_null()));
    for id in [&tok_id, &key_id] {
        let r = c
            .call("DELETE", &format!("/api/v1/tokens/{id}"), Some(admin), "")
            .await
            .ok(200);
        assert_eq!(r["revoked"], true);
        c.call("DELETE", &format!("/api/v1/tokens/{id}"), Some(admin), "")
            .await
            .problem(404, "no_such_token");
    }
    c.get("/api/v1/me", &tok_secret)
        .await
        .problem(401, "unauthenticated");
    c.get("/api/v1/me", &key_secret)
        .await
        .problem(401, "unauthenticated");
    let audit = c.get("/api/v1/audit", auditor).await.ok(200).to_string();
    assert!(audit.contains(&format!("issued API key {key_id} for ci-bot")));
    assert!(audit.contains(&format!("revoked {tok_id}")));

    // No response carried a secret, except the POST that issued it; nor did the log.
    let secrets = [
        admin.as_str(),
        auditor,
        dba,
        user,
        &s.nobody,
        &otok,
        &tok_secret,
        &key_secret,
    ];
    let key_part = key_secret.rsplit('_').next().unwrap();
    let seen = c.seen.lock().unwrap();
    for (what, body) in seen.iter() {
        for secret in secrets.iter().copied().chain([key_part]) {
            let issuing = what == "POST /api/v1/tokens"
                && (body.contains(&tok_id) && secret == tok_secret
                    || body.contains(&key_id) && (secret == key_secret || secret == key_part));
            if !issuing {
                assert!(!body.contains(secret), "{what} leaked a secret: {body}");
            }
        }
    }
    let logs = s.gw.logs();
    for secret in secrets.iter().copied().chain([key_part]) {
        assert!(!logs.contains(secret), "the gateway log holds a secret");
    }
}

/// The review stream: a held DROP reaches an approver's open stream as it happens, and
/// its approval too; an outsider's stream sees neither.
#[tokio::test(flavor = "multi_thread")]
async fn the_review_stream_delivers_a_held_statement_live() {
    let s = setup(None).await;
    let c = &s.c;
    let mut approver = Sse {
        resp: c.stream(&s.dba).await,
        buf: String::new(),
    };
    let mut outsider = Sse {
        resp: c.stream(&s.nobody).await,
        buf: String::new(),
    };
    // The stream says it is open before anything happens.
    assert_eq!(
        approver.next(Duration::from_secs(5)).await,
        Some((":".into(), "connected".into()))
    );
    assert_eq!(
        outsider.next(Duration::from_secs(5)).await,
        Some((":".into(), "connected".into()))
    );

    let mut held = Pg::open(&s.gw, "app", &s.user).await;
    held.send("DROP TABLE also_keep").await;
    let rv = held.held().await;
    let ev = approver.review(|v| v["id"] == rv.as_str()).await;
    assert_eq!(ev["status"], "pending");
    assert_eq!(ev["statement"], "DROP TABLE also_keep");
    assert_eq!(ev["requester"], "bob");

    c.post(&format!("/api/v1/reviews/{rv}/approve"), &s.dba, "")
        .await
        .ok(200);
    let ev = approver
        .review(|v| v["id"] == rv.as_str() && v["status"] != "pending")
        .await;
    assert_eq!(ev["status"], "approved");
    assert_eq!(ev["decided_by"], "dave");
    assert_eq!(held.result().await.unwrap(), ["DROP TABLE"]);

    // The outsider saw nothing but the opening comment.
    assert_eq!(outsider.next(Duration::from_secs(1)).await, None);

    // A stream ends soon after its credential is revoked.
    let watcher = s.gw.issue_token("walter", "dba", "1h").unwrap();
    let mut watching = Sse {
        resp: c.stream(&watcher).await,
        buf: String::new(),
    };
    assert!(watching.next(Duration::from_secs(5)).await.is_some());
    let jti = c.get("/api/v1/tokens", &s.admin).await.ok(200)["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["identity"] == "walter")
        .unwrap()["jti"]
        .as_str()
        .unwrap()
        .to_owned();
    c.call(
        "DELETE",
        &format!("/api/v1/tokens/{jti}"),
        Some(&s.admin),
        "",
    )
    .await
    .ok(200);
    let t0 = std::time::Instant::now();
    assert_eq!(watching.next(Duration::from_secs(14)).await, None);
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "the stream outlived its revoked credential"
    );
    // A quiet stream still shows it is alive: a ping comment every 15 s.
    assert_eq!(
        outsider.next(Duration::from_secs(16)).await,
        Some((":".into(), "ping".into()))
    );
    drop(s.pg);
}

/// The OpenAPI document lists exactly the contract's routes, each answering (never 404
/// "no such route" or 405), secured ones refusing no credential and public ones not;
/// methods it does not list answer 405.
#[tokio::test(flavor = "multi_thread")]
async fn the_openapi_document_matches_the_served_routes() {
    let s = setup(None).await;
    let c = &s.c;
    let doc = c
        .call("GET", "/api/v1/openapi.json", None, "")
        .await
        .ok(200);
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    assert!(doc["components"]["schemas"]["ProblemDetails"].is_object());
    // A valid OpenAPI 3.1 document, by an independent validator (unique operation ids,
    // resolvable references, well-formed schemas).
    let file = s.gw.dir.path().join("openapi.json");
    std::fs::write(&file, doc.to_string()).unwrap();
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg("import json,sys; from openapi_spec_validator import validate; validate(json.load(open(sys.argv[1]))); print('valid')")
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the OpenAPI document is invalid (or openapi-spec-validator is missing):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let paths = doc["paths"].as_object().unwrap();
    let mut documented = BTreeSet::new();
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            let method = method.to_uppercase();
            documented.insert((method.clone(), path.clone()));
            let (_, _, need, concrete, body) = ROUTES
                .iter()
                .find(|r| r.0 == method && r.1 == path)
                .unwrap_or_else(|| panic!("{method} {path} is documented but not in the contract"));
            let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
            assert_eq!(secured, *need != Need::Public, "{method} {path}");
            let responses = op["responses"].as_object().unwrap();
            assert!(
                responses.keys().any(|k| k.starts_with('2')),
                "{method} {path}"
            );
            for code in ["400", "500"] {
                assert!(responses.contains_key(code), "{method} {path} lacks {code}");
            }
            if secured {
                for code in ["401", "403"] {
                    assert!(responses.contains_key(code), "{method} {path} lacks {code}");
                    assert!(
                        responses[code]["content"]["application/problem+json"].is_object(),
                        "{method} {path} {code}"
                    );
                }
            }
            if *concrete == "/api/v1/reviews/stream" {
                c.stream(&s.admin).await;
                continue;
            }
            let r = c.call(&method, concrete, Some(&s.admin), body).await;
            assert_ne!(r.status, 405, "{method} {path}: {}", r.body);
            if r.status == 404 {
                assert_ne!(r.json()["code"], "no_such_route", "{method} {path}");
            }
            let anon = c.call(&method, concrete, None, body).await;
            assert_eq!(
                anon.status == 401,
                secured,
                "{method} {path}: {}",
                anon.status
            );
            // Methods the document does not list for this path are refused.
            for other in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
                if item.get(other.to_lowercase()).is_none() {
                    c.call(other, concrete, Some(&s.admin), "")
                        .await
                        .problem(405, "method_not_allowed");
                }
            }
        }
    }
    let contract: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|r| (r.0.to_owned(), r.1.to_owned()))
        .collect();
    assert_eq!(documented, contract, "the document and the contract differ");
    drop(s.pg);
}
