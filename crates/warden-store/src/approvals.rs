//! Approval requests and their votes: statements held for review and time-bound access
//! requests, in one table.
//!
//! The store decides nothing about who may approve (the caller checks group membership);
//! it enforces, as a backstop, that a request is decided once, only while pending and
//! unexpired, and never by its own requester. Every status change is an
//! `UPDATE ... WHERE status = 'pending'`, and a vote runs in one `BEGIN IMMEDIATE`
//! transaction, so two approvers (in this process or another) cannot both decide.

use serde::Serialize;
use sqlx::Row;

use crate::{groups_json, now_ms, parse_groups, Store, StoreError};

/// One approval request, as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ApprovalRequest {
    /// Request id (`rv-…` for statements, `ar-…` for access), chosen by the caller.
    pub id: String,
    /// `statement` | `access`.
    pub kind: String,
    /// `pending` | `approved` | `rejected` | `expired` | `withdrawn`.
    pub status: String,
    /// Connection name.
    pub connection: String,
    /// The requester's subject.
    pub requester: String,
    /// The requester's groups when the request was made.
    pub requester_groups: Vec<String>,
    /// Statement reviews: the session holding the statement.
    pub session_id: Option<String>,
    /// Statement reviews: the (already redacted) SQL shown to approvers.
    pub statement: Option<String>,
    /// Statement reviews: Bind parameters (`None` entries are SQL NULLs).
    pub params: Option<Vec<Option<String>>>,
    /// Hex SHA-256 binding an approval to the statement text and parameters.
    pub statement_hash: Option<String>,
    /// The message of the rule that asked for review.
    pub rule_message: Option<String>,
    /// Access requests: the requester's reason.
    pub reason: Option<String>,
    /// Groups whose members may approve.
    pub approver_groups: Vec<String>,
    /// Distinct approvals needed.
    pub approvals_required: i64,
    /// Access requests: how long the grant lasts once approved (ms).
    pub duration_ms: Option<i64>,
    /// Creation time (unix ms).
    pub created_at: i64,
    /// A pending request expires at this time (unix ms).
    pub expires_at: i64,
    /// When it left `pending` (unix ms).
    pub decided_at: Option<i64>,
    /// The last approver, or who rejected or withdrew it.
    pub decided_by: Option<String>,
    /// The decider's reason.
    pub decision_reason: Option<String>,
    /// Approved access requests: the end of the grant (`decided_at + duration_ms`, unix ms).
    pub grant_expires_at: Option<i64>,
}

/// A request to insert; it starts `pending` with no votes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NewApprovalRequest {
    /// Request id (`rv-…` / `ar-…`).
    pub id: String,
    /// `statement` | `access`.
    pub kind: String,
    /// Connection name.
    pub connection: String,
    /// The requester's subject.
    pub requester: String,
    /// The requester's groups.
    pub requester_groups: Vec<String>,
    /// Statement reviews: the session holding the statement.
    pub session_id: Option<String>,
    /// Statement reviews: the (already redacted) SQL shown to approvers.
    pub statement: Option<String>,
    /// Statement reviews: Bind parameters (`None` entries are SQL NULLs).
    pub params: Option<Vec<Option<String>>>,
    /// Hex SHA-256 binding an approval to the statement text and parameters.
    pub statement_hash: Option<String>,
    /// The message of the rule that asked for review.
    pub rule_message: Option<String>,
    /// Access requests: the requester's reason.
    pub reason: Option<String>,
    /// Groups whose members may approve.
    pub approver_groups: Vec<String>,
    /// Distinct approvals needed (at least 1).
    pub approvals_required: i64,
    /// Access requests: grant length (ms, positive; required for `access`).
    pub duration_ms: Option<i64>,
    /// Creation time (unix ms).
    pub created_at: i64,
    /// When the pending request expires (unix ms).
    pub expires_at: i64,
}

/// Filters for [`Store::list_approval_requests`]; `None` matches anything.
#[derive(Clone, Debug, Default)]
pub struct ApprovalFilter {
    /// Exact status.
    pub status: Option<String>,
    /// Exact kind.
    pub kind: Option<String>,
    /// Exact requester subject.
    pub requester: Option<String>,
    /// Exact connection.
    pub connection: Option<String>,
    /// At most this many, newest first (default 1000).
    pub limit: Option<i64>,
}

/// One approver's vote on a request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ApprovalVote {
    /// The request voted on.
    pub request_id: String,
    /// The approver's subject.
    pub approver: String,
    /// When (unix ms).
    pub at: i64,
    /// The approver's reason.
    pub reason: Option<String>,
}

/// What [`Store::add_approval_vote`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VoteOutcome {
    /// This vote completed the approvals; the request as now stored.
    Approved(ApprovalRequest),
    /// The vote is recorded (or was already); more are needed.
    Counted {
        /// Distinct approvers so far.
        votes: i64,
        /// Distinct approvers needed.
        required: i64,
    },
    /// The request was already decided; its current state. Nothing was recorded.
    NotPending(ApprovalRequest),
    /// The request is pending but past its expiry. Nothing was recorded; the expiry sweep
    /// ([`Store::expire_overdue_approval_requests`]) marks it.
    Expired,
    /// The approver is the requester. Nothing was recorded.
    SelfApproval,
    /// No such request.
    NotFound,
}

/// The statuses [`Store::close_approval_request`] accepts.
const CLOSING_STATUSES: [&str; 3] = ["rejected", "expired", "withdrawn"];

fn json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

fn request_from_row(r: &sqlx::sqlite::SqliteRow) -> Result<ApprovalRequest, StoreError> {
    let params: Option<String> = r.try_get("params")?;
    let params = params
        .map(|p| {
            serde_json::from_str::<Vec<Option<String>>>(&p)
                .map_err(|e| StoreError::Corrupt(format!("approval params: {e}")))
        })
        .transpose()?;
    Ok(ApprovalRequest {
        id: r.try_get("id")?,
        kind: r.try_get("kind")?,
        status: r.try_get("status")?,
        connection: r.try_get("connection")?,
        requester: r.try_get("requester")?,
        requester_groups: parse_groups(r.try_get("requester_groups")?)?,
        session_id: r.try_get("session_id")?,
        statement: r.try_get("statement")?,
        params,
        statement_hash: r.try_get("statement_hash")?,
        rule_message: r.try_get("rule_message")?,
        reason: r.try_get("reason")?,
        approver_groups: parse_groups(r.try_get("approver_groups")?)?,
        approvals_required: r.try_get("approvals_required")?,
        duration_ms: r.try_get("duration_ms")?,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
        decided_at: r.try_get("decided_at")?,
        decided_by: r.try_get("decided_by")?,
        decision_reason: r.try_get("decision_reason")?,
        grant_expires_at: r.try_get("grant_expires_at")?,
    })
}

impl Store {
    /// Stores a new request as `pending`. Fails if the id exists, the kind is unknown,
    /// `approvals_required < 1`, or an access request has no positive duration.
    pub async fn insert_approval_request(&self, n: &NewApprovalRequest) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO approval_requests (id, kind, status, connection, requester,
                requester_groups, session_id, statement, params, statement_hash, rule_message,
                reason, approver_groups, approvals_required, duration_ms, created_at, expires_at)
             VALUES (?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&n.id)
        .bind(&n.kind)
        .bind(&n.connection)
        .bind(&n.requester)
        .bind(groups_json(&n.requester_groups))
        .bind(&n.session_id)
        .bind(&n.statement)
        .bind(n.params.as_ref().map(json))
        .bind(&n.statement_hash)
        .bind(&n.rule_message)
        .bind(&n.reason)
        .bind(groups_json(&n.approver_groups))
        .bind(n.approvals_required)
        .bind(n.duration_ms)
        .bind(n.created_at)
        .bind(n.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// One request.
    pub async fn get_approval_request(
        &self,
        id: &str,
    ) -> Result<Option<ApprovalRequest>, StoreError> {
        let row = sqlx::query("SELECT * FROM approval_requests WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(request_from_row).transpose()
    }

    /// Requests matching `f`, newest first.
    pub async fn list_approval_requests(
        &self,
        f: &ApprovalFilter,
    ) -> Result<Vec<ApprovalRequest>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM approval_requests
             WHERE (?1 IS NULL OR status = ?1) AND (?2 IS NULL OR kind = ?2)
               AND (?3 IS NULL OR requester = ?3) AND (?4 IS NULL OR connection = ?4)
             ORDER BY created_at DESC, id DESC LIMIT ?5",
        )
        .bind(&f.status)
        .bind(&f.kind)
        .bind(&f.requester)
        .bind(&f.connection)
        .bind(f.limit.unwrap_or(1000))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(request_from_row).collect()
    }

    /// The votes on a request, oldest first.
    pub async fn approval_votes(&self, id: &str) -> Result<Vec<ApprovalVote>, StoreError> {
        let rows = sqlx::query(
            "SELECT request_id, approver, at, reason FROM approval_votes
             WHERE request_id = ? ORDER BY at, approver",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ApprovalVote {
                    request_id: r.try_get("request_id")?,
                    approver: r.try_get("approver")?,
                    at: r.try_get("at")?,
                    reason: r.try_get("reason")?,
                })
            })
            .collect()
    }

    /// Records `approver`'s vote, in one transaction, if the request is pending, unexpired
    /// and not the approver's own. A repeated vote by the same approver is not counted
    /// again. When the distinct votes reach `approvals_required` the request becomes
    /// `approved` (decided by this approver, with this reason); an access request's grant
    /// then runs from now for `duration_ms`. Group membership is the caller's to check.
    pub async fn add_approval_vote(
        &self,
        id: &str,
        approver: &str,
        reason: Option<&str>,
    ) -> Result<VoteOutcome, StoreError> {
        self.add_approval_vote_at(id, approver, reason, now_ms())
            .await
    }

    async fn add_approval_vote_at(
        &self,
        id: &str,
        approver: &str,
        reason: Option<&str>,
        now: i64,
    ) -> Result<VoteOutcome, StoreError> {
        // IMMEDIATE takes the write lock before the read, so the state checked is the
        // state written over (a deferred transaction would fail to upgrade instead).
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let row = sqlx::query("SELECT * FROM approval_requests WHERE id = ?")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            return Ok(VoteOutcome::NotFound);
        };
        let req = request_from_row(&row)?;
        if req.status != "pending" {
            return Ok(VoteOutcome::NotPending(req));
        }
        if now >= req.expires_at {
            return Ok(VoteOutcome::Expired);
        }
        if approver == req.requester {
            return Ok(VoteOutcome::SelfApproval);
        }
        sqlx::query(
            "INSERT INTO approval_votes (request_id, approver, at, reason) VALUES (?, ?, ?, ?)
             ON CONFLICT (request_id, approver) DO NOTHING",
        )
        .bind(id)
        .bind(approver)
        .bind(now)
        .bind(reason)
        .execute(&mut *tx)
        .await?;
        let votes: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM approval_votes WHERE request_id = ?")
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
        if votes < req.approvals_required {
            tx.commit().await?;
            return Ok(VoteOutcome::Counted {
                votes,
                required: req.approvals_required,
            });
        }
        let row = sqlx::query(
            "UPDATE approval_requests SET status = 'approved', decided_at = ?1, decided_by = ?2,
                decision_reason = ?3,
                grant_expires_at = CASE WHEN kind = 'access' THEN ?1 + duration_ms END
             WHERE id = ?4 AND status = 'pending'
             RETURNING *",
        )
        .bind(now)
        .bind(approver)
        .bind(reason)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        // Cannot be None while the transaction holds the write lock; checked regardless.
        let Some(row) = row else {
            return Err(StoreError::Corrupt(format!(
                "approval request {id} changed during its vote"
            )));
        };
        let approved = request_from_row(&row)?;
        tx.commit().await?;
        Ok(VoteOutcome::Approved(approved))
    }

    /// Closes a pending request as `rejected`, `expired` or `withdrawn` (any other status
    /// is an error). Compare-and-set: returns the updated request, or `None` when it was
    /// not pending (someone decided first) or does not exist.
    pub async fn close_approval_request(
        &self,
        id: &str,
        status: &str,
        by: Option<&str>,
        reason: Option<&str>,
    ) -> Result<Option<ApprovalRequest>, StoreError> {
        if !CLOSING_STATUSES.contains(&status) {
            return Err(StoreError::Query(sqlx::Error::InvalidArgument(format!(
                "an approval request cannot be closed as {status:?}; \
                 expected rejected, expired or withdrawn"
            ))));
        }
        let row = sqlx::query(
            "UPDATE approval_requests SET status = ?, decided_at = ?, decided_by = ?,
                decision_reason = ?
             WHERE id = ? AND status = 'pending'
             RETURNING *",
        )
        .bind(status)
        .bind(now_ms())
        .bind(by)
        .bind(reason)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(request_from_row).transpose()
    }

    /// Marks every pending request whose `expires_at <= now` as `expired` (decided at
    /// `now`, by no one) and returns them, oldest first.
    pub async fn expire_overdue_approval_requests(
        &self,
        now: i64,
    ) -> Result<Vec<ApprovalRequest>, StoreError> {
        let rows = sqlx::query(
            "UPDATE approval_requests SET status = 'expired', decided_at = ?1
             WHERE status = 'pending' AND expires_at <= ?1
             RETURNING *",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        let mut expired = rows
            .iter()
            .map(request_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        expired.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(expired)
    }

    /// The approved access grant for `subject` on `connection` still running at `now`
    /// (`grant_expires_at > now`); of several, the one that ends last.
    pub async fn active_access_grant(
        &self,
        subject: &str,
        connection: &str,
        now: i64,
    ) -> Result<Option<ApprovalRequest>, StoreError> {
        let row = sqlx::query(
            "SELECT * FROM approval_requests
             WHERE requester = ? AND connection = ? AND kind = 'access' AND status = 'approved'
               AND grant_expires_at > ?
             ORDER BY grant_expires_at DESC, id LIMIT 1",
        )
        .bind(subject)
        .bind(connection)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(request_from_row).transpose()
    }

    /// Withdraws the pending statement reviews held by a session that ended (or died)
    /// without a decision. Returns how many.
    pub async fn withdraw_pending_for_session(&self, session_id: &str) -> Result<u64, StoreError> {
        let n = sqlx::query(
            "UPDATE approval_requests SET status = 'withdrawn', decided_at = ?,
                decision_reason = 'the session holding the statement ended'
             WHERE session_id = ? AND kind = 'statement' AND status = 'pending'",
        )
        .bind(now_ms())
        .bind(session_id)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n)
    }

    /// At gateway start-up: withdraws every pending statement review, since none can
    /// outlive the gateway process that held its connection. Returns how many.
    pub async fn withdraw_all_pending_statement_reviews(&self) -> Result<u64, StoreError> {
        let n = sqlx::query(
            "UPDATE approval_requests SET status = 'withdrawn', decided_at = ?,
                decision_reason = 'the gateway stopped while the statement was held'
             WHERE kind = 'statement' AND status = 'pending'",
        )
        .bind(now_ms())
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn temp_store() -> (Store, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!(
            "warden-store-approvals-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4()
        ));
        let url = format!("sqlite://{}/warden.db", dir.display());
        (Store::open(&url).await.expect("open"), dir)
    }

    const HOUR: i64 = 3_600_000;

    fn statement_review(id: &str, created_at: i64) -> NewApprovalRequest {
        NewApprovalRequest {
            id: id.into(),
            kind: "statement".into(),
            connection: "app".into(),
            requester: "alice".into(),
            requester_groups: vec!["devs".into()],
            session_id: Some("s-1".into()),
            statement: Some("DELETE FROM users WHERE id = $1".into()),
            params: Some(vec![Some("42".into())]),
            statement_hash: Some("ab".repeat(32)),
            rule_message: Some("deletes need review".into()),
            reason: None,
            approver_groups: vec!["dba".into(), "leads".into()],
            approvals_required: 1,
            duration_ms: None,
            created_at,
            expires_at: created_at + HOUR,
        }
    }

    fn access_request(id: &str, requester: &str, duration_ms: i64) -> NewApprovalRequest {
        let now = now_ms();
        NewApprovalRequest {
            id: id.into(),
            kind: "access".into(),
            connection: "prod".into(),
            requester: requester.into(),
            requester_groups: vec!["oncall".into()],
            reason: Some("incident 123".into()),
            approver_groups: vec!["leads".into()],
            approvals_required: 1,
            duration_ms: Some(duration_ms),
            created_at: now,
            expires_at: now + HOUR,
            ..Default::default()
        }
    }

    fn approved(o: VoteOutcome) -> ApprovalRequest {
        match o {
            VoteOutcome::Approved(r) => r,
            other => panic!("expected Approved, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn insert_get_and_list_with_filters() {
        let (store, dir) = temp_store().await;
        let now = now_ms();
        let a = statement_review("rv-000000000001", now - 3);
        let mut b = statement_review("rv-000000000002", now - 2);
        b.requester = "bob".into();
        b.connection = "billing".into();
        let c = access_request("ar-000000000003", "alice", HOUR);
        for n in [&a, &b, &c] {
            store.insert_approval_request(n).await.unwrap();
        }

        let got = store
            .get_approval_request("rv-000000000001")
            .await
            .unwrap()
            .expect("found");
        let want = ApprovalRequest {
            id: a.id.clone(),
            kind: "statement".into(),
            status: "pending".into(),
            connection: "app".into(),
            requester: "alice".into(),
            requester_groups: vec!["devs".into()],
            session_id: Some("s-1".into()),
            statement: a.statement.clone(),
            params: Some(vec![Some("42".into())]),
            statement_hash: a.statement_hash.clone(),
            rule_message: Some("deletes need review".into()),
            reason: None,
            approver_groups: vec!["dba".into(), "leads".into()],
            approvals_required: 1,
            duration_ms: None,
            created_at: now - 3,
            expires_at: now - 3 + HOUR,
            decided_at: None,
            decided_by: None,
            decision_reason: None,
            grant_expires_at: None,
        };
        assert_eq!(got, want);
        assert!(store
            .get_approval_request("rv-nope")
            .await
            .unwrap()
            .is_none());

        let ids = |v: Vec<ApprovalRequest>| v.into_iter().map(|r| r.id).collect::<Vec<_>>();
        let all = store
            .list_approval_requests(&ApprovalFilter::default())
            .await
            .unwrap();
        assert_eq!(
            ids(all),
            ["ar-000000000003", "rv-000000000002", "rv-000000000001"],
            "newest first"
        );
        let f =
            |status: Option<&str>, kind: Option<&str>, req: Option<&str>, conn: Option<&str>| {
                ApprovalFilter {
                    status: status.map(Into::into),
                    kind: kind.map(Into::into),
                    requester: req.map(Into::into),
                    connection: conn.map(Into::into),
                    limit: None,
                }
            };
        let list = |f: ApprovalFilter| {
            let store = store.clone();
            async move { ids(store.list_approval_requests(&f).await.unwrap()) }
        };
        assert_eq!(
            list(f(None, Some("access"), None, None)).await,
            ["ar-000000000003"]
        );
        assert_eq!(
            list(f(None, None, Some("alice"), None)).await,
            ["ar-000000000003", "rv-000000000001"]
        );
        assert_eq!(
            list(f(None, None, None, Some("billing"))).await,
            ["rv-000000000002"]
        );
        assert_eq!(
            list(f(None, Some("statement"), Some("alice"), Some("app"))).await,
            ["rv-000000000001"]
        );
        assert!(list(f(Some("approved"), None, None, None)).await.is_empty());
        assert_eq!(list(f(Some("pending"), None, None, None)).await.len(), 3);
        let limited = ApprovalFilter {
            limit: Some(1),
            ..Default::default()
        };
        assert_eq!(list(limited).await, ["ar-000000000003"]);

        assert!(
            store.insert_approval_request(&a).await.is_err(),
            "ids are unique"
        );
        std::fs::remove_dir_all(dir).ok();
    }

    #[tokio::test]
    async fn inserts_the_schema_cannot_honour_are_refused() {
        let (store, dir) = temp_store().await;
        let mut bad_kind = statement_review("rv-bad-kind", now_ms());
        bad_kind.kind = "other".into();
        let mut no_votes = statement_review("rv-no-votes", now_ms());
        no_votes.approvals_required = 0;
        let mut no_duration = access_request("ar-no-duration", "alice", HOUR);
        no_duration.duration_ms = None;
        let zero_duration = access_request("ar-zero-duration", "alice", 0);
        for n in [&bad_kind, &no_votes, &no_duration, &zero_duration] {
            assert!(
                store.insert_approval_request(n).await.is_err(),
                "{} was stored",
                n.id
            );
        }
        std::fs::remove_dir_all(dir).ok();
    }

    #[tokio::test]
    async fn two_approvals_need_two_distinct_approvers() {
        let (store, dir) = temp_store().await;
        let mut n = statement_review("rv-two", now_ms());
        n.approvals_required = 2;
        store.insert_approval_request(&n).await.unwrap();

        let first = store
            .add_approval_vote("rv-two", "dana", Some("looks fine"))
            .await
            .unwrap();
        assert_eq!(
            first,
            VoteOutcome::Counted {
                votes: 1,
                required: 2
            }
        );
        let again = store
            .add_approval_vote("rv-two", "dana", Some("still fine"))
            .await
            .unwrap();
        assert_eq!(
            again,
            VoteOutcome::Counted {
                votes: 1,
                required: 2
            },
            "the same approver counts once"
        );
        let votes = store.approval_votes("rv-two").await.unwrap();
        assert_eq!(votes.len(), 1);
        assert_eq!(votes[0].approver, "dana");
        assert_eq!(
            votes[0].reason.as_deref(),
            Some("looks fine"),
            "a repeated vote changes nothing"
        );
        assert_eq!(
            store
                .get_approval_request("rv-two")
                .await
                .unwrap()
                .unwrap()
                .status,
            "pending"
        );

        let before = now_ms();
        let r = approved(
            store
                .add_approval_vote("rv-two", "erin", Some("ok by me"))
                .await
                .unwrap(),
        );
        assert_eq!(r.status, "approved");
        assert_eq!(r.decided_by.as_deref(), Some("erin"));
        assert_eq!(r.decision_reason.as_deref(), Some("ok by me"));
        assert!(r.decided_at.unwrap() >= before);
        assert_eq!(r.grant_expires_at, None, "statements get no grant window");
        assert_eq!(
            store.get_approval_request("rv-two").await.unwrap().unwrap(),
            r
        );

        match store
            .add_approval_vote("rv-two", "frank", None)
            .await
            .unwrap()
        {
            VoteOutcome::NotPending(cur) => assert_eq!(cur, r),
            other => panic!("expected NotPending, got {other:?}"),
        }
        assert_eq!(store.approval_votes("rv-two").await.unwrap().len(), 2);
        std::fs::remove_dir_all(dir).ok();
    }

    #[tokio::test]
    async fn self_approval_expiry_and_unknown_ids_are_refused() {
        let (store, dir) = temp_store().await;
        store
            .insert_approval_request(&statement_review("rv-self", now_ms()))
            .await
            .unwrap();
        assert_eq!(
            store
                .add_approval_vote("rv-self", "alice", None)
                .await
                .unwrap(),
            VoteOutcome::SelfApproval
        );
        assert!(store.approval_votes("rv-self").await.unwrap().is_empty());

        let mut old = statement_review("rv-old", now_ms() - 2 * HOUR);
        old.expires_at = now_ms() - 1;
        store.insert_approval_request(&old).await.unwrap();
        assert_eq!(
            store
                .add_approval_vote("rv-old", "dana", None)
                .await
                .unwrap(),
            VoteOutcome::Expired
        );
        assert!(store.approval_votes("rv-old").await.unwrap().is_empty());
        assert_eq!(
            store
                .get_approval_request("rv-old")
                .await
                .unwrap()
                .unwrap()
                .status,
            "pending",
            "left for the expiry sweep"
        );

        // Expiry is exclusive: at expires_at the request no longer takes votes.
        let at = statement_review("rv-edge", 1_000);
        store.insert_approval_request(&at).await.unwrap();
        assert_eq!(
            store
                .add_approval_vote_at("rv-edge", "dana", None, at.expires_at)
                .await
                .unwrap(),
            VoteOutcome::Expired
        );
        approved(
            store
                .add_approval_vote_at("rv-edge", "dana", None, at.expires_at - 1)
                .await
                .unwrap(),
        );

        assert_eq!(
            store
                .add_approval_vote("rv-missing", "dana", None)
                .await
                .unwrap(),
            VoteOutcome::NotFound
        );
        std::fs::remove_dir_all(dir).ok();
    }

    #[tokio::test]
    async fn close_is_compare_and_set_from_pending() {
        let (store, dir) = temp_store().await;
        store
            .insert_approval_request(&statement_review("rv-close", now_ms()))
            .await
            .unwrap();
        let before = now_ms();
        let closed = store
            .close_approval_request("rv-close", "rejected", Some("dana"), Some("too broad"))
            .await
            .unwrap()
            .expect("was pending");
        assert_eq!(closed.status, "rejected");
        assert_eq!(closed.decided_by.as_deref(), Some("dana"));
        assert_eq!(closed.decision_reason.as_deref(), Some("too broad"));
        assert!(closed.decided_at.unwrap() >= before);

        assert_eq!(
            store
                .close_approval_request("rv-close", "withdrawn", Some("alice"), None)
                .await
                .unwrap(),
            None,
            "second close loses"
        );
        match store
            .add_approval_vote("rv-close", "erin", None)
            .await
            .unwrap()
        {
            VoteOutcome::NotPending(cur) => assert_eq!(cur, closed),
            other => panic!("expected NotPending, got {other:?}"),
        }
        assert_eq!(
            store
                .get_approval_request("rv-close")
                .await
                .unwrap()
                .unwrap(),
            closed
        );
        assert_eq!(
            store
                .close_approval_request("rv-missing", "rejected", None, None)
                .await
                .unwrap(),
            None
        );

        store
            .insert_approval_request(&statement_review("rv-status", now_ms()))
            .await
            .unwrap();
        for bad in ["approved", "pending", "REJECTED", ""] {
            assert!(
                store
                    .close_approval_request("rv-status", bad, None, None)
                    .await
                    .is_err(),
                "{bad:?} accepted"
            );
        }
        assert_eq!(
            store
                .get_approval_request("rv-status")
                .await
                .unwrap()
                .unwrap()
                .status,
            "pending"
        );
        for (id, status) in [("rv-w", "withdrawn"), ("rv-e", "expired")] {
            store
                .insert_approval_request(&statement_review(id, now_ms()))
                .await
                .unwrap();
            let r = store
                .close_approval_request(id, status, None, None)
                .await
                .unwrap()
                .expect("was pending");
            assert_eq!(r.status, status);
        }
        std::fs::remove_dir_all(dir).ok();
    }

    #[tokio::test]
    async fn concurrent_approvers_decide_once() {
        let (store, dir) = temp_store().await;
        for i in 0..10 {
            let id = format!("rv-race-{i}");
            store
                .insert_approval_request(&statement_review(&id, now_ms()))
                .await
                .unwrap();
            let vote = |who: &'static str| {
                let (store, id) = (store.clone(), id.clone());
                tokio::spawn(async move { store.add_approval_vote(&id, who, Some(who)).await })
            };
            let close = {
                let (store, id) = (store.clone(), id.clone());
                tokio::spawn(async move {
                    store
                        .close_approval_request(&id, "rejected", Some("gina"), None)
                        .await
                })
            };
            let (a, b) = (vote("dana"), vote("erin"));
            let a = a.await.unwrap().unwrap();
            let b = b.await.unwrap().unwrap();
            let closed = close.await.unwrap().unwrap();
            let final_state = store.get_approval_request(&id).await.unwrap().unwrap();
            let wins = [&a, &b]
                .iter()
                .filter(|o| matches!(o, VoteOutcome::Approved(_)))
                .count()
                + usize::from(closed.is_some());
            assert_eq!(wins, 1, "exactly one decision: {a:?} {b:?} {closed:?}");
            match final_state.status.as_str() {
                "approved" => {
                    let who = final_state.decided_by.clone().unwrap();
                    assert_eq!(final_state.decision_reason.as_deref(), Some(who.as_str()));
                }
                "rejected" => assert_eq!(final_state.decided_by.as_deref(), Some("gina")),
                other => panic!("unexpected status {other}"),
            }
        }
        std::fs::remove_dir_all(dir).ok();
    }

    #[tokio::test]
    async fn access_grant_runs_from_approval_for_its_duration() {
        let (store, dir) = temp_store().await;
        let duration = 30 * 60_000;
        store
            .insert_approval_request(&access_request("ar-grant", "alice", duration))
            .await
            .unwrap();
        let now = now_ms();
        assert_eq!(
            store
                .active_access_grant("alice", "prod", now)
                .await
                .unwrap(),
            None,
            "pending grants nothing"
        );
        let r = approved(
            store
                .add_approval_vote("ar-grant", "dana", Some("go"))
                .await
                .unwrap(),
        );
        let decided = r.decided_at.expect("decided");
        assert_eq!(r.grant_expires_at, Some(decided + duration));

        let active = |subject: &'static str, conn: &'static str, at: i64| {
            let store = store.clone();
            async move {
                store
                    .active_access_grant(subject, conn, at)
                    .await
                    .unwrap()
                    .map(|r| r.id)
            }
        };
        assert_eq!(
            active("alice", "prod", decided).await.as_deref(),
            Some("ar-grant")
        );
        assert_eq!(
            active("alice", "prod", decided + duration - 1)
                .await
                .as_deref(),
            Some("ar-grant")
        );
        assert_eq!(active("alice", "prod", decided + duration).await, None);
        assert_eq!(active("bob", "prod", decided).await, None, "other subject");
        assert_eq!(
            active("alice", "app", decided).await,
            None,
            "other connection"
        );

        // Of two running grants, the one ending last.
        store
            .insert_approval_request(&access_request("ar-longer", "alice", 2 * duration))
            .await
            .unwrap();
        let longer = approved(
            store
                .add_approval_vote("ar-longer", "dana", None)
                .await
                .unwrap(),
        );
        let end = longer.grant_expires_at.unwrap();
        assert_eq!(end, longer.decided_at.unwrap() + 2 * duration);
        assert_eq!(
            active("alice", "prod", decided).await.as_deref(),
            Some("ar-longer")
        );
        assert_eq!(
            active("alice", "prod", end - 1).await.as_deref(),
            Some("ar-longer")
        );
        assert_eq!(active("alice", "prod", end).await, None);

        // Rejected and still-pending requests grant nothing.
        store
            .insert_approval_request(&access_request("ar-rejected", "bob", duration))
            .await
            .unwrap();
        store
            .close_approval_request("ar-rejected", "rejected", Some("dana"), None)
            .await
            .unwrap()
            .expect("was pending");
        store
            .insert_approval_request(&access_request("ar-pending", "bob", duration))
            .await
            .unwrap();
        assert_eq!(active("bob", "prod", now_ms()).await, None);
        std::fs::remove_dir_all(dir).ok();
    }

    #[tokio::test]
    async fn expire_overdue_marks_only_pending_past_expiry() {
        let (store, dir) = temp_store().await;
        let base = 1_000_000;
        let mk = |id: &str, created: i64, expires: i64| {
            let mut n = statement_review(id, created);
            n.expires_at = expires;
            n
        };
        for n in [
            mk("rv-due-b", base + 2, base + 100),
            mk("rv-due-a", base + 1, base + 50),
            mk("rv-later", base + 3, base + 101),
            mk("rv-decided", base, base + 10),
        ] {
            store.insert_approval_request(&n).await.unwrap();
        }
        store
            .close_approval_request("rv-decided", "rejected", Some("dana"), None)
            .await
            .unwrap()
            .expect("was pending");

        let expired = store
            .expire_overdue_approval_requests(base + 100)
            .await
            .unwrap();
        let ids: Vec<_> = expired.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(
            ids,
            ["rv-due-a", "rv-due-b"],
            "oldest first, expiry inclusive"
        );
        for r in &expired {
            assert_eq!(r.status, "expired");
            assert_eq!(r.decided_at, Some(base + 100));
            assert_eq!(r.decided_by, None);
        }
        let get = |id: &'static str| {
            let store = store.clone();
            async move { store.get_approval_request(id).await.unwrap().unwrap() }
        };
        assert_eq!(get("rv-later").await.status, "pending");
        assert_eq!(get("rv-decided").await.status, "rejected");
        assert_eq!(get("rv-due-a").await, expired[0]);
        assert!(store
            .expire_overdue_approval_requests(base + 100)
            .await
            .unwrap()
            .is_empty());
        std::fs::remove_dir_all(dir).ok();
    }

    #[tokio::test]
    async fn withdrawals_touch_only_pending_statement_reviews() {
        let (store, dir) = temp_store().await;
        let now = now_ms();
        let mut other_session = statement_review("rv-s2", now);
        other_session.session_id = Some("s-2".into());
        let mut s1_access = access_request("ar-s1", "alice", HOUR);
        s1_access.session_id = Some("s-1".into());
        for n in [
            statement_review("rv-s1-a", now),
            statement_review("rv-s1-b", now),
            statement_review("rv-s1-done", now),
            other_session,
            s1_access,
        ] {
            store.insert_approval_request(&n).await.unwrap();
        }
        approved(
            store
                .add_approval_vote("rv-s1-done", "dana", None)
                .await
                .unwrap(),
        );

        assert_eq!(store.withdraw_pending_for_session("s-1").await.unwrap(), 2);
        let status = |id: &'static str| {
            let store = store.clone();
            async move {
                store
                    .get_approval_request(id)
                    .await
                    .unwrap()
                    .unwrap()
                    .status
            }
        };
        assert_eq!(status("rv-s1-a").await, "withdrawn");
        assert_eq!(status("rv-s1-b").await, "withdrawn");
        assert_eq!(status("rv-s1-done").await, "approved");
        assert_eq!(status("rv-s2").await, "pending");
        assert_eq!(
            status("ar-s1").await,
            "pending",
            "access requests are not held"
        );
        assert_eq!(store.withdraw_pending_for_session("s-1").await.unwrap(), 0);

        assert_eq!(
            store
                .withdraw_all_pending_statement_reviews()
                .await
                .unwrap(),
            1
        );
        assert_eq!(status("rv-s2").await, "withdrawn");
        assert_eq!(status("ar-s1").await, "pending");
        assert_eq!(status("rv-s1-done").await, "approved");
        assert!(store
            .get_approval_request("rv-s2")
            .await
            .unwrap()
            .unwrap()
            .decided_at
            .is_some());
        assert_eq!(
            store
                .withdraw_all_pending_statement_reviews()
                .await
                .unwrap(),
            0
        );
        std::fs::remove_dir_all(dir).ok();
    }

    #[tokio::test]
    async fn hostile_statements_and_params_round_trip() {
        let (store, dir) = temp_store().await;
        let statement = "SELECT '\"; DROP TABLE x; --', $1, $2 /* ' \\ \u{1F600} 名前 \u{202E} */";
        let params = vec![
            None,
            Some(String::new()),
            Some("null".into()),
            Some("[\"nested\", null]".into()),
            Some("it's \"quoted\" \\ back\\slash".into()),
            Some("tab\tnew\nline\r\u{7f}\u{1}".into()),
            Some("ünïcödé 🚀 \u{FEFF}".into()),
            None,
        ];
        let mut n = statement_review("rv-hostile", now_ms());
        n.statement = Some(statement.into());
        n.params = Some(params.clone());
        n.requester_groups = vec!["a\"b".into(), "ü,]".into(), String::new()];
        n.rule_message = Some("x'); --".into());
        store.insert_approval_request(&n).await.unwrap();
        let got = store
            .get_approval_request("rv-hostile")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.statement.as_deref(), Some(statement));
        assert_eq!(got.params, Some(params));
        assert_eq!(got.requester_groups, n.requester_groups);
        assert_eq!(got.rule_message, n.rule_message);

        let mut empty = statement_review("rv-empty", now_ms());
        empty.params = Some(vec![]);
        store.insert_approval_request(&empty).await.unwrap();
        let got = store
            .get_approval_request("rv-empty")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            got.params,
            Some(vec![]),
            "no parameters is not absent parameters"
        );
        std::fs::remove_dir_all(dir).ok();
    }
}
