//! The approvals hub: opens reviews for held statements and access requests, takes
//! approvers' decisions, and wakes the held session the moment a decision is final.
//!
//! Release is push-based: a session holding a statement waits on a oneshot channel that
//! [`Hub::decide`] completes in the same process, after the decision is committed to the
//! store. Nothing polls. Each review also has a timer task that expires it at its deadline,
//! so a review nobody decides is rejected on time even if the session's own wait is gone.
//! Every change to a request is also broadcast ([`Hub::subscribe`]) for live views such as
//! the API's review stream.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::sync::{broadcast, oneshot};
use warden_store::approvals::{ApprovalFilter, ApprovalRequest, NewApprovalRequest, VoteOutcome};
use warden_store::{now_ms, AuthEvent, AuthResult, Store, StoreError};
use warden_types::Identity;

use crate::webhook::Webhook;

/// How one review rule holds statements.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReviewSpec {
    /// Groups whose members may approve.
    pub approver_groups: Vec<String>,
    /// Distinct approvals needed.
    pub approvals: u32,
    /// Held this long at most, then rejected.
    pub timeout: Duration,
}

/// How a connection takes access requests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessSpec {
    /// Groups whose members may approve.
    pub approver_groups: Vec<String>,
    /// Distinct approvals needed.
    pub approvals: u32,
    /// Longest grant.
    pub max_duration: Duration,
    /// Undecided requests expire after this long.
    pub timeout: Duration,
}

/// The hub's configuration.
#[derive(Clone, Default)]
pub struct HubConfig {
    /// `[api] admin_groups`: may decide any request.
    pub admin_groups: Vec<String>,
    /// Webhooks by connection.
    pub webhooks: HashMap<String, Webhook>,
    /// Access-request settings by connection.
    pub access: HashMap<String, AccessSpec>,
}

/// A statement to hold.
pub struct NewReview<'a> {
    /// Connection name.
    pub connection: &'a str,
    /// The holding session.
    pub session_id: &'a str,
    /// Who sent it.
    pub requester: &'a Identity,
    /// The statement as approvers see it (already redacted where it may hold a secret).
    pub statement: String,
    /// Bind parameters, as text.
    pub params: Vec<Option<String>>,
    /// The rule's message.
    pub rule_message: String,
    /// The rule's approval settings.
    pub spec: &'a ReviewSpec,
}

/// How a review ended, as the holding session learns it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Run it. `statement_hash` is what was approved.
    Approved {
        /// Last approver.
        by: String,
        /// Their reason.
        reason: Option<String>,
        /// The approved statement's hash.
        statement_hash: String,
    },
    /// Refused by an approver.
    Rejected {
        /// Who.
        by: String,
        /// Why.
        reason: Option<String>,
    },
    /// Nobody decided in time.
    Expired,
    /// Withdrawn (cancel request, client gone, gateway stopping).
    Withdrawn(String),
}

impl Outcome {
    fn from_row(r: &ApprovalRequest) -> Option<Outcome> {
        Some(match r.status.as_str() {
            "approved" => Outcome::Approved {
                by: r.decided_by.clone().unwrap_or_default(),
                reason: r.decision_reason.clone(),
                statement_hash: r.statement_hash.clone().unwrap_or_default(),
            },
            "rejected" => Outcome::Rejected {
                by: r.decided_by.clone().unwrap_or_default(),
                reason: r.decision_reason.clone(),
            },
            "expired" => Outcome::Expired,
            "withdrawn" => Outcome::Withdrawn(r.decision_reason.clone().unwrap_or_default()),
            _ => return None,
        })
    }
}

/// Why a decision was refused.
#[derive(Debug, thiserror::Error)]
pub enum DecideError {
    /// No such request.
    #[error("no review or access request {0:?}")]
    NotFound(String),
    /// The caller is not an approver for it.
    #[error("only members of {0:?} may decide this request")]
    NotApprover(Vec<String>),
    /// The caller asked for it.
    #[error("you may not approve your own request")]
    SelfApproval,
    /// Already decided, expired or withdrawn.
    #[error("request {id} is already {status}")]
    NotPending {
        /// Request id.
        id: String,
        /// Its status.
        status: String,
    },
    /// Past its deadline.
    #[error("request {0} has expired")]
    Expired(String),
    /// A reason was malformed.
    #[error("{0}")]
    Invalid(String),
    /// The store failed.
    #[error("the store is unavailable")]
    Store(#[from] StoreError),
}

/// Why an access request was refused.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// The connection takes no access requests.
    #[error("connection {0:?} does not take access requests")]
    NotOffered(String),
    /// Too long, too short, or a bad reason.
    #[error("{0}")]
    Invalid(String),
    /// The store failed.
    #[error("the store is unavailable")]
    Store(#[from] StoreError),
}

/// What [`Hub::decide`] did.
#[derive(Clone, Debug)]
pub enum Decided {
    /// The request is final (approved or rejected); the row as stored.
    Final(ApprovalRequest),
    /// An approval was counted; more are needed.
    Counted {
        /// The request.
        request: ApprovalRequest,
        /// Distinct approvals so far.
        votes: i64,
        /// Needed.
        required: i64,
    },
}

/// The approvals hub; one per gateway process.
pub struct Hub {
    store: Store,
    config: HubConfig,
    waiters: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    events: broadcast::Sender<ApprovalRequest>,
}

/// Events a slow subscriber may fall behind by before it misses some (it is told).
const EVENT_BACKLOG: usize = 256;

/// A statement held for review. Dropping it before the outcome withdraws the review.
pub struct Hold {
    /// Review id.
    pub id: String,
    /// Hash binding the approval to the statement and its parameters.
    pub statement_hash: String,
    rx: oneshot::Receiver<Outcome>,
    hub: Arc<Hub>,
    settled: bool,
}

impl Hold {
    /// Waits for the outcome.
    pub async fn outcome(&mut self) -> Outcome {
        let out = match (&mut self.rx).await {
            Ok(o) => o,
            // The hub dropped the sender without an outcome: read what the store says.
            Err(_) => match self.hub.store.get_approval_request(&self.id).await {
                Ok(Some(r)) => Outcome::from_row(&r)
                    .unwrap_or_else(|| Outcome::Withdrawn("the review was lost".into())),
                _ => Outcome::Withdrawn("the review was lost".into()),
            },
        };
        self.settled = true;
        out
    }

    /// Withdraws the review now (cancel request, client gone).
    pub async fn withdraw(mut self, why: &str) -> Outcome {
        self.settled = true;
        self.hub
            .close(&self.id, "withdrawn", None, Some(why))
            .await
            .unwrap_or_else(|_| Outcome::Withdrawn(why.to_owned()))
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        if !self.settled {
            let hub = self.hub.clone();
            let id = std::mem::take(&mut self.id);
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    let _ = hub
                        .close(&id, "withdrawn", None, Some("the session ended"))
                        .await;
                });
            }
        }
    }
}

/// Hash binding an approval to a statement's text and parameters: SHA-256 over
/// length-prefixed parts, so no two different (text, params) pairs share an input.
pub fn statement_hash(statement: &str, params: &[Option<String>]) -> String {
    let mut h = Sha256::new();
    h.update(b"warden-review v1\n");
    h.update((statement.len() as u64).to_be_bytes());
    h.update(statement.as_bytes());
    h.update((params.len() as u64).to_be_bytes());
    for p in params {
        match p {
            None => h.update([0u8]),
            Some(v) => {
                h.update([1u8]);
                h.update((v.len() as u64).to_be_bytes());
                h.update(v.as_bytes());
            }
        }
    }
    hex::encode(h.finalize())
}

fn new_id(prefix: &str) -> String {
    let bytes: [u8; 8] = rand::random();
    format!("{prefix}-{}", hex::encode(bytes))
}

fn check_reason(reason: Option<&str>) -> Result<(), String> {
    match reason {
        Some(r) if r.len() > 1000 || r.chars().any(|c| c.is_control() && c != '\n') => {
            Err("the reason must be under 1000 bytes, without control characters".into())
        }
        _ => Ok(()),
    }
}

fn rfc3339(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

impl Hub {
    /// A hub over `store`.
    pub fn new(store: Store, config: HubConfig) -> Arc<Hub> {
        Arc::new(Hub {
            store,
            config,
            waiters: Mutex::new(HashMap::new()),
            events: broadcast::channel(EVENT_BACKLOG).0,
        })
    }

    /// Every request as it is opened, gains an approval, or closes (decided, expired,
    /// withdrawn): the row as stored after the change. For live views (the API's SSE
    /// stream); subscribers filter what their caller may see.
    pub fn subscribe(&self) -> broadcast::Receiver<ApprovalRequest> {
        self.events.subscribe()
    }

    fn publish(&self, row: &ApprovalRequest) {
        // No subscriber is not an error: nobody is watching.
        let _ = self.events.send(row.clone());
    }

    fn waiters(&self) -> std::sync::MutexGuard<'_, HashMap<String, oneshot::Sender<Outcome>>> {
        self.waiters.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Statement reviews left pending by an earlier gateway process are withdrawn: the
    /// connection that held them is gone.
    pub async fn recover(&self) -> Result<u64, StoreError> {
        self.store.withdraw_all_pending_statement_reviews().await
    }

    /// The access-request settings of `connection`, if it takes requests.
    pub fn access_spec(&self, connection: &str) -> Option<&AccessSpec> {
        self.config.access.get(connection)
    }

    /// Opens a review and returns the hold to wait on. Fails closed: if the review cannot
    /// be stored the caller must refuse the statement.
    pub async fn open_review(self: &Arc<Hub>, r: NewReview<'_>) -> Result<Hold, StoreError> {
        let id = new_id("rv");
        let hash = statement_hash(&r.statement, &r.params);
        let now = now_ms();
        let expires = now + r.spec.timeout.as_millis() as i64;
        let (tx, rx) = oneshot::channel();
        // Registered before the row exists so no decision can slip between the two.
        self.waiters().insert(id.clone(), tx);
        let row = NewApprovalRequest {
            id: id.clone(),
            kind: "statement".into(),
            connection: r.connection.to_owned(),
            requester: r.requester.subject.to_string(),
            requester_groups: r.requester.groups.clone(),
            session_id: Some(r.session_id.to_owned()),
            statement: Some(r.statement),
            params: Some(r.params),
            statement_hash: Some(hash.clone()),
            rule_message: Some(r.rule_message),
            reason: None,
            approver_groups: r.spec.approver_groups.clone(),
            approvals_required: i64::from(r.spec.approvals),
            duration_ms: None,
            created_at: now,
            expires_at: expires,
        };
        if let Err(e) = self.store.insert_approval_request(&row).await {
            self.waiters().remove(&id);
            return Err(e);
        }
        metrics::counter!("warden_reviews_total", "event" => "opened").increment(1);
        self.expire_at(id.clone(), r.spec.timeout);
        self.notify_opened(&id).await;
        Ok(Hold {
            id,
            statement_hash: hash,
            rx,
            hub: self.clone(),
            settled: false,
        })
    }

    /// Asks for time-bound access to `connection`.
    pub async fn request_access(
        self: &Arc<Hub>,
        who: &Identity,
        connection: &str,
        duration: Duration,
        reason: Option<&str>,
    ) -> Result<ApprovalRequest, AccessError> {
        let spec = self
            .config
            .access
            .get(connection)
            .ok_or_else(|| AccessError::NotOffered(connection.to_owned()))?;
        if duration < Duration::from_secs(1) || duration > spec.max_duration {
            return Err(AccessError::Invalid(format!(
                "the duration must be between 1s and {}",
                humantime::format_duration(spec.max_duration)
            )));
        }
        check_reason(reason).map_err(AccessError::Invalid)?;
        let id = new_id("ar");
        let now = now_ms();
        let row = NewApprovalRequest {
            id: id.clone(),
            kind: "access".into(),
            connection: connection.to_owned(),
            requester: who.subject.to_string(),
            requester_groups: who.groups.clone(),
            session_id: None,
            statement: None,
            params: None,
            statement_hash: None,
            rule_message: None,
            reason: reason.map(str::to_owned),
            approver_groups: spec.approver_groups.clone(),
            approvals_required: i64::from(spec.approvals),
            duration_ms: Some(duration.as_millis() as i64),
            created_at: now,
            expires_at: now + spec.timeout.as_millis() as i64,
        };
        self.store.insert_approval_request(&row).await?;
        self.expire_at(id.clone(), spec.timeout);
        self.notify_opened(&id).await;
        self.store
            .get_approval_request(&id)
            .await?
            .ok_or_else(|| AccessError::Store(StoreError::Corrupt("request vanished".into())))
    }

    /// When `subject`'s approved access to `connection` ends (unix ms), if it has one.
    pub async fn access_grant(
        &self,
        subject: &str,
        connection: &str,
    ) -> Result<Option<i64>, StoreError> {
        Ok(self
            .store
            .active_access_grant(subject, connection, now_ms())
            .await?
            .and_then(|r| r.grant_expires_at))
    }

    /// Requests, newest first.
    pub async fn list(&self, filter: &ApprovalFilter) -> Result<Vec<ApprovalRequest>, StoreError> {
        self.store.list_approval_requests(filter).await
    }

    /// One request.
    pub async fn get(&self, id: &str) -> Result<Option<ApprovalRequest>, StoreError> {
        self.store.get_approval_request(id).await
    }

    /// Whether `who` may decide `r`.
    pub fn may_decide(&self, who: &Identity, r: &ApprovalRequest) -> bool {
        r.approver_groups
            .iter()
            .chain(self.config.admin_groups.iter())
            .any(|g| who.in_group(g))
    }

    /// An approver's decision. Approval needs `approvals_required` distinct approvers,
    /// none of them the requester; a rejection is final at once.
    pub async fn decide(
        &self,
        id: &str,
        who: &Identity,
        approve: bool,
        reason: Option<&str>,
    ) -> Result<Decided, DecideError> {
        check_reason(reason).map_err(DecideError::Invalid)?;
        let r = self
            .store
            .get_approval_request(id)
            .await?
            .ok_or_else(|| DecideError::NotFound(id.to_owned()))?;
        if !self.may_decide(who, &r) {
            return Err(DecideError::NotApprover(r.approver_groups.clone()));
        }
        let subject = who.subject.to_string();
        if subject == r.requester {
            self.audit(&r, who, false, "refused: self-approval").await;
            return Err(DecideError::SelfApproval);
        }
        if r.status != "pending" {
            return Err(DecideError::NotPending {
                id: id.to_owned(),
                status: r.status,
            });
        }
        if !approve {
            self.close(id, "rejected", Some(&subject), reason).await?;
            // Someone else may have decided first: the stored row says who won.
            let row = self.store.get_approval_request(id).await?.unwrap_or(r);
            if row.status != "rejected" {
                return Err(DecideError::NotPending {
                    id: id.to_owned(),
                    status: row.status,
                });
            }
            return Ok(Decided::Final(row));
        }
        match self.store.add_approval_vote(id, &subject, reason).await? {
            VoteOutcome::Approved(row) => {
                self.finish(&row).await;
                Ok(Decided::Final(row))
            }
            VoteOutcome::Counted { votes, required } => {
                self.audit(&r, who, true, &format!("approval {votes} of {required}"))
                    .await;
                self.publish(&r);
                Ok(Decided::Counted {
                    request: r,
                    votes,
                    required,
                })
            }
            VoteOutcome::NotPending(row) => Err(DecideError::NotPending {
                id: id.to_owned(),
                status: row.status,
            }),
            VoteOutcome::Expired => Err(DecideError::Expired(id.to_owned())),
            VoteOutcome::SelfApproval => Err(DecideError::SelfApproval),
            VoteOutcome::NotFound => Err(DecideError::NotFound(id.to_owned())),
        }
    }

    /// Closes a pending request as `status` (rejected, expired, withdrawn); the outcome
    /// as it stands afterwards (someone else may have decided first).
    pub async fn close(
        &self,
        id: &str,
        status: &str,
        by: Option<&str>,
        reason: Option<&str>,
    ) -> Result<Outcome, StoreError> {
        match self
            .store
            .close_approval_request(id, status, by, reason)
            .await?
        {
            Some(row) => {
                self.finish(&row).await;
                Ok(Outcome::from_row(&row).unwrap_or(Outcome::Expired))
            }
            None => {
                let row = self.store.get_approval_request(id).await?;
                Ok(row
                    .as_ref()
                    .and_then(Outcome::from_row)
                    .unwrap_or_else(|| Outcome::Withdrawn("no such review".into())))
            }
        }
    }

    /// A request became final: wake its session, audit, notify.
    async fn finish(&self, row: &ApprovalRequest) {
        if let Some(outcome) = Outcome::from_row(row) {
            if let Some(tx) = self.waiters().remove(&row.id) {
                let _ = tx.send(outcome);
            }
        }
        metrics::counter!("warden_reviews_total", "event" => row.status.clone()).increment(1);
        let by = row.decided_by.clone();
        let detail = row.decision_reason.clone().unwrap_or_default();
        self.audit_row(row, by.as_deref(), row.status == "approved", &detail)
            .await;
        self.publish(row);
        self.notify(row, "closed");
    }

    fn expire_at(self: &Arc<Hub>, id: String, after: Duration) {
        let hub = Arc::downgrade(self);
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            if let Some(hub) = hub.upgrade() {
                if let Err(e) = hub
                    .close(&id, "expired", None, Some("nobody decided in time"))
                    .await
                {
                    tracing::warn!(review = %id, error = %e, "could not expire a review");
                }
            }
        });
    }

    async fn audit(&self, r: &ApprovalRequest, who: &Identity, allowed: bool, what: &str) {
        self.audit_as(r, Some(&who.subject.0), Some(&who.issuer), allowed, what)
            .await
    }

    async fn audit_row(&self, r: &ApprovalRequest, by: Option<&str>, allowed: bool, what: &str) {
        self.audit_as(r, by, None, allowed, what).await
    }

    /// One audit row for a request's event; the audit chain makes it tamper-evident.
    async fn audit_as(
        &self,
        r: &ApprovalRequest,
        by: Option<&str>,
        issuer: Option<&str>,
        allowed: bool,
        what: &str,
    ) {
        let ev = AuthEvent {
            at: 0,
            subject: by.map(str::to_owned),
            issuer: issuer.map(str::to_owned),
            credential_kind: Some("approval".into()),
            connection: Some(r.connection.clone()),
            client_addr: String::new(),
            result: if allowed {
                AuthResult::Allowed
            } else {
                AuthResult::Denied
            },
            reason: format!(
                "{} {} {} (requested by {}): {what}",
                r.kind, r.id, r.status, r.requester
            ),
            session_id: r.session_id.clone(),
        };
        if let Err(e) = self.store.record_auth(&ev).await {
            tracing::error!(error = %e, "could not audit an approval decision");
        }
    }

    async fn notify_opened(&self, id: &str) {
        if self.config.webhooks.is_empty() && self.events.receiver_count() == 0 {
            return;
        }
        if let Ok(Some(row)) = self.store.get_approval_request(id).await {
            self.publish(&row);
            self.notify(&row, "opened");
        }
    }

    fn notify(&self, r: &ApprovalRequest, what: &str) {
        let Some(hook) = self.config.webhooks.get(&r.connection) else {
            return;
        };
        let event = format!(
            "{}.{what}",
            if r.kind == "access" {
                "access_request"
            } else {
                "review"
            }
        );
        hook.send(event, webhook_body(r, what));
    }
}

/// The JSON a webhook receives; `text` makes it a valid Slack incoming-webhook message.
pub fn webhook_body(r: &ApprovalRequest, what: &str) -> serde_json::Value {
    let subject = match r.kind.as_str() {
        "access" => format!(
            "access to `{}` for {}",
            r.connection,
            humantime::format_duration(Duration::from_millis(
                r.duration_ms.unwrap_or(0).max(0) as u64
            ))
        ),
        _ => format!(
            "`{}` on `{}`",
            r.statement.as_deref().unwrap_or(""),
            r.connection
        ),
    };
    let text = match what {
        "opened" => format!(
            "Warden: {} asks for {subject} (request {}). Approve: `warden reviews approve {}` or reject: `warden reviews reject {} --reason …`",
            r.requester, r.id, r.id, r.id
        ),
        _ => format!(
            "Warden: request {} from {} for {subject} is {}{}{}",
            r.id,
            r.requester,
            r.status,
            r.decided_by
                .as_deref()
                .map(|b| format!(" by {b}"))
                .unwrap_or_default(),
            r.decision_reason
                .as_deref()
                .map(|x| format!(": {x}"))
                .unwrap_or_default(),
        ),
    };
    serde_json::json!({
        "event": what,
        "text": text,
        "request": {
            "id": r.id,
            "kind": r.kind,
            "status": r.status,
            "connection": r.connection,
            "requester": r.requester,
            "session_id": r.session_id,
            "statement": r.statement,
            "params": r.params,
            "rule": r.rule_message,
            "reason": r.reason,
            "approver_groups": r.approver_groups,
            "approvals_required": r.approvals_required,
            "created_at": rfc3339(r.created_at),
            "expires_at": rfc3339(r.expires_at),
            "decided_by": r.decided_by,
            "decision_reason": r.decision_reason,
            "grant_expires_at": r.grant_expires_at.map(rfc3339),
        }
    })
}

/// Keeps a list query to pending requests.
pub fn pending_filter() -> ApprovalFilter {
    ApprovalFilter {
        status: Some("pending".into()),
        ..ApprovalFilter::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use tokio::time::timeout;
    use warden_types::{CredentialKind, Subject};

    const DBA: &str = "dba";

    /// Removes the store's directory when the test ends.
    struct TempDir(PathBuf);
    impl Drop for TempDir {
        fn drop(&mut self) {
            std::fs::remove_dir_all(&self.0).ok();
        }
    }

    fn who(subject: &str, groups: &[&str]) -> Identity {
        Identity {
            subject: Subject(subject.into()),
            display_name: subject.into(),
            issuer: "https://issuer.test".into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            kind: CredentialKind::Oidc,
            actor: None,
            token_id: None,
            expires_at: None,
        }
    }

    fn spec(approvals: u32, timeout: Duration) -> ReviewSpec {
        ReviewSpec {
            approver_groups: vec![DBA.into()],
            approvals,
            timeout,
        }
    }

    async fn setup(config: HubConfig) -> (Arc<Hub>, Store, TempDir) {
        let dir = std::env::temp_dir().join(format!("warden-hub-test-{}", uuid::Uuid::new_v4()));
        let store = Store::open(&format!("sqlite://{}/warden.db", dir.display()))
            .await
            .expect("open store");
        (Hub::new(store.clone(), config), store, TempDir(dir))
    }

    async fn open(hub: &Arc<Hub>, requester: &Identity, spec: &ReviewSpec) -> Hold {
        hub.open_review(NewReview {
            connection: "prod",
            session_id: "s-1",
            requester,
            statement: "DELETE FROM t WHERE id = $1".into(),
            params: vec![Some("42".into())],
            rule_message: "deletes need review".into(),
            spec,
        })
        .await
        .expect("open review")
    }

    async fn status(store: &Store, id: &str) -> String {
        store
            .get_approval_request(id)
            .await
            .unwrap()
            .unwrap()
            .status
    }

    /// Waits (up to 2s) for the row to reach `want`.
    async fn wait_status(store: &Store, id: &str, want: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        loop {
            let got = status(store, id).await;
            if got == want {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{id} is {got}, expected {want}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn outcome_now(hold: &mut Hold) -> Outcome {
        timeout(Duration::from_millis(500), hold.outcome())
            .await
            .expect("the hold should be woken promptly")
    }

    fn not_pending(r: Result<Decided, DecideError>, want: &str) {
        match r {
            Err(DecideError::NotPending { status, .. }) => assert_eq!(status, want),
            other => panic!("expected NotPending({want}), got {other:?}"),
        }
    }

    #[tokio::test]
    async fn two_approvals_release_the_hold_only_on_the_second() {
        let (hub, store, _dir) = setup(HubConfig::default()).await;
        let alice = who("alice", &["dev"]);
        let (a, b) = (who("A", &[DBA]), who("B", &[DBA]));
        let mut hold = open(&hub, &alice, &spec(2, Duration::from_secs(60))).await;

        for _ in 0..2 {
            // A repeated vote by the same approver is not counted twice.
            match hub.decide(&hold.id, &a, true, Some("ok")).await.unwrap() {
                Decided::Counted {
                    votes, required, ..
                } => assert_eq!((votes, required), (1, 2)),
                other => panic!("expected Counted, got {other:?}"),
            }
        }
        assert!(
            timeout(Duration::from_millis(50), hold.outcome())
                .await
                .is_err(),
            "one approval of two must not release the statement"
        );
        assert_eq!(status(&store, &hold.id).await, "pending");

        match hub.decide(&hold.id, &b, true, Some("lgtm")).await.unwrap() {
            Decided::Final(row) => assert_eq!(row.status, "approved"),
            other => panic!("expected Final, got {other:?}"),
        }
        let expected_hash = statement_hash("DELETE FROM t WHERE id = $1", &[Some("42".into())]);
        assert_eq!(hold.statement_hash, expected_hash);
        // Pushed by `decide` itself, not read back from the store.
        assert_eq!(
            hold.rx.try_recv().expect("woken by the decision"),
            Outcome::Approved {
                by: "B".into(),
                reason: Some("lgtm".into()),
                statement_hash: expected_hash,
            }
        );
        assert_eq!(status(&store, &hold.id).await, "approved");
        assert!(hub.waiters().is_empty(), "the waiter is released");
    }

    #[tokio::test]
    async fn subscribers_see_every_request_open_progress_and_close() {
        let (hub, _store, _dir) = setup(HubConfig::default()).await;
        let mut rx = hub.subscribe();
        let alice = who("alice", &["dev"]);
        let (a, b) = (who("A", &[DBA]), who("B", &[DBA]));
        let mut next = || {
            let ev = rx.try_recv().expect("an event was published");
            (ev.id, ev.status)
        };
        let hold = open(&hub, &alice, &spec(2, Duration::from_secs(60))).await;
        assert_eq!(next(), (hold.id.clone(), "pending".into()));
        hub.decide(&hold.id, &a, true, None).await.unwrap();
        assert_eq!(next(), (hold.id.clone(), "pending".into()));
        hub.decide(&hold.id, &b, true, None).await.unwrap();
        assert_eq!(next(), (hold.id.clone(), "approved".into()));
        let short = open(&hub, &alice, &spec(1, Duration::from_millis(50))).await;
        assert_eq!(next(), (short.id.clone(), "pending".into()));
        let ev = timeout(Duration::from_secs(2), rx.recv())
            .await
            .expect("the expiry is published")
            .unwrap();
        assert_eq!((ev.id, ev.status.as_str()), (short.id.clone(), "expired"));
        drop(hold);
    }

    #[tokio::test]
    async fn who_may_decide() {
        let config = HubConfig {
            admin_groups: vec!["admins".into()],
            ..HubConfig::default()
        };
        let (hub, store, _dir) = setup(config).await;
        let alice = who("alice", &[DBA]);
        let mut hold = open(&hub, &alice, &spec(1, Duration::from_secs(60))).await;

        for approve in [true, false] {
            assert!(matches!(
                hub.decide(&hold.id, &alice, approve, None).await,
                Err(DecideError::SelfApproval)
            ));
        }
        match hub
            .decide(&hold.id, &who("mallory", &["dev"]), true, None)
            .await
        {
            Err(DecideError::NotApprover(groups)) => assert_eq!(groups, [DBA]),
            other => panic!("expected NotApprover, got {other:?}"),
        }
        assert!(matches!(
            hub.decide("rv-nope", &who("bob", &[DBA]), true, None).await,
            Err(DecideError::NotFound(_))
        ));
        assert_eq!(status(&store, &hold.id).await, "pending");

        let root = who("root", &["admins"]);
        assert!(matches!(
            hub.decide(&hold.id, &root, true, None).await.unwrap(),
            Decided::Final(_)
        ));
        assert!(matches!(
            outcome_now(&mut hold).await,
            Outcome::Approved { by, .. } if by == "root"
        ));
    }

    #[tokio::test]
    async fn reject_wakes_the_hold_and_is_final() {
        let (hub, store, _dir) = setup(HubConfig::default()).await;
        let mut hold = open(&hub, &who("alice", &[]), &spec(2, Duration::from_secs(60))).await;
        let bob = who("bob", &[DBA]);
        match hub.decide(&hold.id, &bob, false, Some("no")).await.unwrap() {
            Decided::Final(row) => assert_eq!(row.status, "rejected"),
            other => panic!("expected Final, got {other:?}"),
        }
        assert_eq!(
            hold.rx.try_recv().expect("woken by the decision"),
            Outcome::Rejected {
                by: "bob".into(),
                reason: Some("no".into())
            }
        );
        let carol = who("carol", &[DBA]);
        not_pending(hub.decide(&hold.id, &carol, true, None).await, "rejected");
        not_pending(hub.decide(&hold.id, &carol, false, None).await, "rejected");
        assert_eq!(status(&store, &hold.id).await, "rejected");
    }

    #[tokio::test]
    async fn an_undecided_review_expires_by_itself() {
        let (hub, store, _dir) = setup(HubConfig::default()).await;
        let started = std::time::Instant::now();
        let mut hold = open(
            &hub,
            &who("alice", &[]),
            &spec(1, Duration::from_millis(300)),
        )
        .await;
        let out = timeout(Duration::from_secs(3), hold.outcome())
            .await
            .expect("the review should expire");
        assert_eq!(out, Outcome::Expired);
        assert!(started.elapsed() >= Duration::from_millis(290));
        assert_eq!(status(&store, &hold.id).await, "expired");
        not_pending(
            hub.decide(&hold.id, &who("bob", &[DBA]), true, None).await,
            "expired",
        );
    }

    #[tokio::test]
    async fn dropping_a_hold_withdraws_the_review() {
        let (hub, store, _dir) = setup(HubConfig::default()).await;
        let hold = open(&hub, &who("alice", &[]), &spec(1, Duration::from_secs(60))).await;
        let id = hold.id.clone();
        drop(hold);
        wait_status(&store, &id, "withdrawn").await;
        let row = store.get_approval_request(&id).await.unwrap().unwrap();
        assert_eq!(row.decision_reason.as_deref(), Some("the session ended"));
        assert!(hub.waiters().is_empty(), "the waiter is released");
    }

    #[tokio::test]
    async fn withdraw_settles_the_review() {
        let (hub, store, _dir) = setup(HubConfig::default()).await;
        let hold = open(&hub, &who("alice", &[]), &spec(1, Duration::from_secs(60))).await;
        let id = hold.id.clone();
        assert_eq!(
            hold.withdraw("cancel request").await,
            Outcome::Withdrawn("cancel request".into())
        );
        assert_eq!(status(&store, &id).await, "withdrawn");
        not_pending(
            hub.decide(&id, &who("bob", &[DBA]), true, None).await,
            "withdrawn",
        );
    }

    #[test]
    fn statement_hash_binds_text_and_params() {
        let h = |s: &str, p: &[Option<&str>]| {
            let p: Vec<Option<String>> = p.iter().map(|x| x.map(str::to_owned)).collect();
            statement_hash(s, &p)
        };
        let base = h("SELECT $1", &[Some("1")]);
        assert_eq!(base, h("SELECT $1", &[Some("1")]), "deterministic");
        assert_eq!(base.len(), 64);
        let others = [
            h("SELECT $1", &[Some("2")]),
            h("SELECT  $1", &[Some("1")]),
            h("SELECT $1", &[Some("1"), None]),
            h("SELECT $1", &[]),
        ];
        for o in &others {
            assert_ne!(&base, o);
        }
        assert_ne!(h("a", &[Some("bc")]), h("ab", &[Some("c")]));
        assert_ne!(h("a", &[Some("b"), Some("c")]), h("a", &[Some("bc")]));
        assert_ne!(h("a", &[None]), h("a", &[Some("")]));
        // Tag and length bytes inside a value cannot forge a different split.
        assert_ne!(
            h("a", &[Some("x\u{1}y"), None]),
            h("a", &[Some("x"), Some("y\0")])
        );
        assert_ne!(h("a", &[]), h("a", &[None]));
        assert_ne!(h("a", &[]), h("a", &[Some("")]));
    }

    fn access_config() -> HubConfig {
        let mut access = HashMap::new();
        access.insert(
            "prod".to_string(),
            AccessSpec {
                approver_groups: vec![DBA.into()],
                approvals: 1,
                max_duration: Duration::from_secs(3600),
                timeout: Duration::from_secs(60),
            },
        );
        HubConfig {
            access,
            ..HubConfig::default()
        }
    }

    #[tokio::test]
    async fn access_requests_grant_time_bound_access() {
        let (hub, _store, _dir) = setup(access_config()).await;
        // An approver herself, yet she may not approve her own request.
        let alice = who("alice", &["dev", DBA]);
        let half_hour = Duration::from_secs(1800);
        assert!(matches!(
            hub.request_access(&alice, "app", half_hour, None).await,
            Err(AccessError::NotOffered(c)) if c == "app"
        ));
        for bad in [Duration::from_secs(3601), Duration::from_millis(500)] {
            assert!(matches!(
                hub.request_access(&alice, "prod", bad, None).await,
                Err(AccessError::Invalid(_))
            ));
        }
        let req = hub
            .request_access(&alice, "prod", half_hour, Some("incident 42"))
            .await
            .unwrap();
        assert_eq!(
            (req.kind.as_str(), req.status.as_str()),
            ("access", "pending")
        );
        assert_eq!(hub.access_grant("alice", "prod").await.unwrap(), None);

        assert!(matches!(
            hub.decide(&req.id, &alice, true, None).await,
            Err(DecideError::SelfApproval)
        ));
        assert!(matches!(
            hub.decide(&req.id, &who("bob", &[DBA]), true, None)
                .await
                .unwrap(),
            Decided::Final(_)
        ));
        let end = hub
            .access_grant("alice", "prod")
            .await
            .unwrap()
            .expect("granted");
        let want = now_ms() + half_hour.as_millis() as i64;
        assert!(
            (end - want).abs() < 5_000,
            "grant ends at {end}, not about {want}"
        );
        assert_eq!(hub.access_grant("bob", "prod").await.unwrap(), None);
        assert_eq!(hub.access_grant("alice", "app").await.unwrap(), None);
    }

    #[tokio::test]
    async fn every_decision_is_audited() {
        let (hub, store, _dir) = setup(HubConfig::default()).await;
        let alice = who("alice", &[]);
        let bob = who("bob", &[DBA]);
        let s = spec(1, Duration::from_secs(60));
        let mut approved = open(&hub, &alice, &s).await;
        let mut rejected = open(&hub, &alice, &s).await;
        hub.decide(&approved.id, &bob, true, Some("fine"))
            .await
            .unwrap();
        hub.decide(&rejected.id, &bob, false, Some("nope"))
            .await
            .unwrap();
        outcome_now(&mut approved).await;
        outcome_now(&mut rejected).await;

        let events = store.auth_events(100).await.unwrap();
        let audited = |id: &str, status: &str| {
            events.iter().any(|e| {
                e.credential_kind.as_deref() == Some("approval")
                    && e.subject.as_deref() == Some("bob")
                    && e.connection.as_deref() == Some("prod")
                    && e.reason.contains(id)
                    && e.reason.contains(status)
            })
        };
        assert!(audited(&approved.id, "approved"), "{events:#?}");
        assert!(audited(&rejected.id, "rejected"), "{events:#?}");
        let report = store.verify_chains().await.unwrap();
        assert!(report.audit_rows >= 2);
        assert!(report.problems.is_empty(), "{:?}", report.problems);
    }

    #[tokio::test]
    async fn malformed_reasons_are_refused() {
        let (hub, store, _dir) = setup(access_config()).await;
        let mut hold = open(&hub, &who("alice", &[]), &spec(1, Duration::from_secs(60))).await;
        let bob = who("bob", &[DBA]);
        let long = "x".repeat(1001);
        for bad in [long.as_str(), "bell\u{7}", "carriage\rreturn", "nul\0"] {
            for approve in [true, false] {
                assert!(matches!(
                    hub.decide(&hold.id, &bob, approve, Some(bad)).await,
                    Err(DecideError::Invalid(_))
                ));
            }
            assert!(matches!(
                hub.request_access(&bob, "prod", Duration::from_secs(60), Some(bad))
                    .await,
                Err(AccessError::Invalid(_))
            ));
        }
        assert_eq!(status(&store, &hold.id).await, "pending");
        // A multi-line reason of exactly 1000 bytes is fine.
        let ok = format!("{}\n{}", "y".repeat(500), "z".repeat(499));
        assert_eq!(ok.len(), 1000);
        hub.decide(&hold.id, &bob, false, Some(&ok)).await.unwrap();
        assert!(matches!(
            outcome_now(&mut hold).await,
            Outcome::Rejected { reason: Some(r), .. } if r == ok
        ));
    }
}
