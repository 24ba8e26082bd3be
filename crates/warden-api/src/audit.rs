//! `/api/v1/audit`: the hash-chained audit of sign-ins, approvals and token changes, for
//! auditors: list, export (JSON lines or CSV) and verify.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use warden_store::{AuditFilter, AuditRow, AuthResult, ChainProblem};

use crate::auth::Auditor;
use crate::extract::{NoQuery, Q};
use crate::problem::{internal, Problem};
use crate::Api;

pub(crate) fn routes() -> OpenApiRouter<Api> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(export))
        .routes(routes!(verify))
}

/// Filters for the audit.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct AuditQuery {
    /// At or after (unix ms).
    since: Option<i64>,
    /// Before (unix ms).
    until: Option<i64>,
    /// Exact subject.
    subject: Option<String>,
    /// Rows after this id (to page forward: pass the last id seen).
    after: Option<i64>,
    /// At most this many (1-10000, default 1000), in chain order.
    limit: Option<i64>,
    /// Export only: `jsonl` (default) or `csv`.
    format: Option<String>,
}

impl AuditQuery {
    fn filter(&self) -> Result<AuditFilter, Problem> {
        if self.limit.is_some_and(|l| !(1..=10_000).contains(&l)) {
            return Err(Problem::bad_request(
                "bad_query",
                "limit must be between 1 and 10000",
            ));
        }
        if let (Some(s), Some(u)) = (self.since, self.until) {
            if s > u {
                return Err(Problem::bad_request("bad_query", "since is after until"));
            }
        }
        Ok(AuditFilter {
            since: self.since,
            until: self.until,
            subject: self.subject.clone(),
            after_id: self.after,
            limit: self.limit,
        })
    }
}

/// Audit rows in chain order (auditor).
#[utoipa::path(get, operation_id = "list_audit", path = "/api/v1/audit", tag = "audit", security(("bearer" = [])),
    params(AuditQuery),
    responses((status = 200, description = "Audit rows, oldest first", body = [AuditRow])))]
async fn list(
    State(api): State<Api>,
    Auditor(_): Auditor,
    Q(q): Q<AuditQuery>,
) -> Result<Json<Vec<AuditRow>>, Problem> {
    if q.format.is_some() {
        return Err(Problem::bad_request(
            "bad_query",
            "format belongs to /api/v1/audit/export",
        ));
    }
    let rows = api.store.list_audit(&q.filter()?).await.map_err(internal)?;
    Ok(Json(rows))
}

/// RFC 4180 field quoting.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// The audit as a download (auditor): one JSON object per line, or CSV with a header.
#[utoipa::path(get, operation_id = "export_audit", path = "/api/v1/audit/export", tag = "audit", security(("bearer" = [])),
    params(AuditQuery),
    responses((status = 200, description = "An attachment `audit.jsonl` or `audit.csv`",
        content((String = "application/x-ndjson"), (String = "text/csv")))))]
async fn export(
    State(api): State<Api>,
    Auditor(_): Auditor,
    Q(q): Q<AuditQuery>,
) -> Result<Response, Problem> {
    let csv = match q.format.as_deref().unwrap_or("jsonl") {
        "jsonl" | "ndjson" => false,
        "csv" => true,
        _ => return Err(Problem::bad_request("bad_format", "format is jsonl or csv")),
    };
    let rows = api.store.list_audit(&q.filter()?).await.map_err(internal)?;
    let mut out = String::new();
    if csv {
        out.push_str("id,at,subject,issuer,credential_kind,connection,client_addr,result,reason,session_id,prev_hash,hash\r\n");
        for r in &rows {
            let e = &r.event;
            let o = |v: &Option<String>| csv_field(v.as_deref().unwrap_or(""));
            let result = match e.result {
                AuthResult::Allowed => "allowed",
                AuthResult::Denied => "denied",
            };
            out.push_str(&format!(
                "{},{},{},{},{},{},{},{},{},{},{},{}\r\n",
                r.id,
                e.at,
                o(&e.subject),
                o(&e.issuer),
                o(&e.credential_kind),
                o(&e.connection),
                csv_field(&e.client_addr),
                result,
                csv_field(&e.reason),
                o(&e.session_id),
                o(&r.prev_hash),
                o(&r.hash),
            ));
        }
    } else {
        for r in &rows {
            out.push_str(&serde_json::to_string(r).map_err(internal)?);
            out.push('\n');
        }
    }
    let (ctype, name) = if csv {
        ("text/csv; charset=utf-8", "audit.csv")
    } else {
        ("application/x-ndjson", "audit.jsonl")
    };
    Ok((
        [
            (header::CONTENT_TYPE, ctype.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        out,
    )
        .into_response())
}

/// The audit's and the session index's hash chains, checked.
#[derive(Serialize, ToSchema)]
pub struct AuditVerify {
    /// No problems.
    pub clean: bool,
    /// Audit rows checked.
    pub audit_rows: i64,
    /// Session-chain rows checked.
    pub session_rows: i64,
    /// What is wrong.
    pub problems: Vec<ChainProblem>,
}

/// Verifies the audit and session chains (auditor).
#[utoipa::path(get, operation_id = "verify_audit", path = "/api/v1/audit/verify", tag = "audit", security(("bearer" = [])),
    responses((status = 200, description = "The verification", body = AuditVerify)))]
async fn verify(
    State(api): State<Api>,
    Auditor(_): Auditor,
    Q(_): Q<NoQuery>,
) -> Result<Json<AuditVerify>, Problem> {
    let report = api.store.verify_chains().await.map_err(internal)?;
    Ok(Json(AuditVerify {
        clean: report.problems.is_empty(),
        audit_rows: report.audit_rows,
        session_rows: report.session_rows,
        problems: report.problems,
    }))
}
