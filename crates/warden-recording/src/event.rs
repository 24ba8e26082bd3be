//! What a recording holds: one [`Event`] per line, in the order things happened.
//!
//! Result rows are recorded as the client saw them (after masking, once masking exists),
//! capped per statement; values are text (binary-format values as `\x` hex).

use std::borrow::Cow;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// One recorded event. `seq` starts at 0 (`SessionStart`) and has no gaps.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Position in the session, from 0.
    pub seq: u64,
    /// Wall-clock time, unix microseconds.
    pub at_us: i64,
    /// What happened.
    #[serde(flatten)]
    pub body: EventBody,
}

/// The kinds of event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventBody {
    /// Always the first event.
    SessionStart(SessionStart),
    /// A statement sent by the client (simple Query, or an extended-protocol Execute),
    /// usually with its completion.
    Statement(Statement),
    /// Rows returned for statement `statement`, in recordings written before rows moved
    /// into [`Completion::result`]; read, never written.
    Result(ResultRows),
    /// How statement `statement` ended, when its statement event was written without
    /// it (still running at a flush, or more statements in one simple Query).
    Completion(Completion),
    /// A bound or guardrail decision not tied to a statement (idle timeout, kill, …).
    Notice(Notice),
    /// Always the last event of a complete session.
    SessionEnd(SessionEnd),
}

/// Who, where, as whom.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SessionStart {
    /// Warden session id.
    pub session_id: String,
    /// Connection name.
    pub connection: String,
    /// Identity subject.
    pub subject: String,
    /// Identity display name.
    pub display_name: String,
    /// Token issuer.
    pub issuer: String,
    /// `oidc` | `builtin` | `api_key`.
    pub credential_kind: String,
    /// The human or service behind an agent (`act`/`azp`), when the token says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// Groups at login.
    pub groups: Vec<String>,
    /// Client address.
    pub client_addr: String,
    /// Target role (the JIT role's name for just-in-time sessions).
    pub target_role: String,
    /// Whether the role is a just-in-time role.
    pub jit: bool,
    /// Client's application_name, if sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_name: Option<String>,
}

/// A statement and the decision on it.
///
/// The text fields are shared or static rather than owned: one is built for every
/// statement on the proxy's hot path, where a copy of the SQL and three small allocations
/// per statement were measurable.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Statement {
    /// Statement number in the session, from 1.
    pub id: u64,
    /// `simple` or `extended`.
    pub protocol: Cow<'static, str>,
    /// SQL text (secrets replaced by `$n` placeholders when `redacted`).
    pub sql: Arc<str>,
    /// Bind parameters as text (`None` = NULL); empty for simple protocol.
    #[serde(default, skip_serializing_if = "is_empty")]
    pub params: Arc<[Option<String>]>,
    /// Whether secrets were removed from `sql`/`params`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub redacted: bool,
    /// Statement class (`read`, `write`, `ddl`, `destructive`, `utility`, `unknown`).
    pub class: Cow<'static, str>,
    /// `allowed`, `denied`, `held`, `approved`, `rejected`.
    pub decision: Cow<'static, str>,
    /// Who approved or why denied, when there is a reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// How the statement ended, when that was known by the time the statement was
    /// written (the usual case: both reach the file at the same ReadyForQuery, and one
    /// line costs less than two). Otherwise, and in older recordings, an
    /// [`EventBody::Completion`] follows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion: Option<Box<Completion>>,
}

fn is_empty<T>(v: &Arc<[T]>) -> bool {
    v.is_empty()
}

/// Result rows as the client received them, as a separate event (older recordings; see
/// [`EventBody::Result`]).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ResultRows {
    /// The statement these rows belong to.
    pub statement: u64,
    /// Column names from RowDescription (shared: a prepared statement's repeat).
    pub columns: Arc<[String]>,
    /// Recorded rows (at most the configured cap).
    pub rows: Vec<Vec<Option<String>>>,
    /// True when rows were left out by the row or byte cap.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

impl ResultRows {
    /// The rows without the statement number, as a [`Completion`] now carries them.
    pub fn to_set(&self) -> ResultSet {
        ResultSet {
            columns: self.columns.clone(),
            rows: self.rows.clone(),
            truncated: self.truncated,
        }
    }
}

/// The rows a statement returned, as the client received them (capped).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ResultSet {
    /// Column names from RowDescription (shared: a prepared statement's repeat).
    pub columns: Arc<[String]>,
    /// Recorded rows (at most the configured cap).
    pub rows: Vec<Vec<Option<String>>>,
    /// True when rows were left out by the row or byte cap.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

/// A statement's outcome, and the rows it returned.
///
/// The rows travel in the completion rather than in an event of their own: one line,
/// one hash and one serialisation fewer per statement on the proxy's hot path.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Completion {
    /// The statement.
    pub statement: u64,
    /// Command tag (`SELECT 3`, `INSERT 0 1`), when it succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// Rows returned to the client (all of them, not only the recorded ones).
    pub rows: u64,
    /// SQLSTATE and message, when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorInfo>,
    /// From forwarding the statement to its completion, microseconds.
    pub duration_us: u64,
    /// Values masked in this statement's result, per masking rule (never the values).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub masked: std::collections::BTreeMap<String, u64>,
    /// The rows returned, when the statement described any (a RowDescription) or sent
    /// rows. Older recordings carry them in a separate [`EventBody::Result`] instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<ResultSet>,
}

/// An error as the client saw it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ErrorInfo {
    /// SQLSTATE.
    pub code: String,
    /// Message.
    pub message: String,
}

/// A session-level decision.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Notice {
    /// What kind (`idle_timeout`, `max_session`, `killed`, `token_expired`, `revoked`, …).
    pub kind: String,
    /// Human-readable detail.
    pub message: String,
}

/// How the session ended.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SessionEnd {
    /// `client_quit`, `client_gone`, `idle_timeout`, `max_session`, `killed`, `error`, …
    pub reason: String,
    /// Error detail, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Statements recorded.
    pub statements: u64,
}
