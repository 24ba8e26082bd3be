//! The session index, the hash chains (session ends and the authentication audit), kill
//! requests and revocation lookups for live sessions.

use serde::Serialize;
use sqlx::Row;
use warden_recording::chain::{link, GENESIS};

use crate::{now_ms, Store, StoreError};

/// One session's index row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SessionRow {
    /// Session id.
    pub id: String,
    /// Connection name.
    pub connection: String,
    /// Identity subject.
    pub subject: String,
    /// The human or service behind an agent.
    pub actor: Option<String>,
    /// `oidc` | `builtin` | `api_key`.
    pub credential_kind: String,
    /// Token id (jti) or API key id that opened the session.
    pub token_id: Option<String>,
    /// Client address.
    pub client_addr: String,
    /// Target role.
    pub target_role: String,
    /// Start, unix ms.
    pub started_at: i64,
    /// End, unix ms.
    pub ended_at: Option<i64>,
    /// `live`, `complete`, `incomplete` or `purged`.
    pub status: String,
    /// Why it ended.
    pub end_reason: Option<String>,
    /// Statements recorded.
    pub statements: i64,
    /// Hash of the recording's last event.
    pub final_hash: Option<String>,
}

/// Filters for [`Store::list_sessions`]; `None` matches anything.
#[derive(Clone, Debug, Default)]
pub struct SessionFilter {
    /// Exact subject.
    pub subject: Option<String>,
    /// Exact connection.
    pub connection: Option<String>,
    /// Started at or after (unix ms).
    pub since: Option<i64>,
    /// Started before (unix ms).
    pub until: Option<i64>,
    /// Exact status.
    pub status: Option<String>,
    /// At most this many, newest first.
    pub limit: Option<i64>,
}

/// One problem found by [`Store::verify_chains`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ChainProblem {
    /// `auth_audit` or `session_chain`.
    pub table: &'static str,
    /// Row id (`id` or `seq`).
    pub row: i64,
    /// What is wrong.
    pub detail: String,
}

/// The result of verifying both chains.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ChainReport {
    /// Audit rows checked.
    pub audit_rows: i64,
    /// Session-chain rows checked.
    pub session_rows: i64,
    /// Every problem, in table order.
    pub problems: Vec<ChainProblem>,
}

fn session_from_row(r: &sqlx::sqlite::SqliteRow) -> Result<SessionRow, StoreError> {
    Ok(SessionRow {
        id: r.try_get("id")?,
        connection: r.try_get("connection")?,
        subject: r.try_get("subject")?,
        actor: r.try_get("actor")?,
        credential_kind: r.try_get("credential_kind")?,
        token_id: r.try_get("token_id")?,
        client_addr: r.try_get("client_addr")?,
        target_role: r.try_get("target_role")?,
        started_at: r.try_get("started_at")?,
        ended_at: r.try_get("ended_at")?,
        status: r.try_get("status")?,
        end_reason: r.try_get("end_reason")?,
        statements: r.try_get("statements")?,
        final_hash: r.try_get("final_hash")?,
    })
}

/// What a session-chain row's hash covers.
fn chain_item(at: i64, kind: &str, session_id: &str, final_hash: Option<&str>) -> Vec<u8> {
    serde_json::to_vec(&(at, kind, session_id, final_hash)).unwrap_or_default()
}

/// What an audit row's hash covers.
#[allow(clippy::too_many_arguments)]
pub(crate) fn audit_item(
    at: i64,
    subject: Option<&str>,
    issuer: Option<&str>,
    kind: Option<&str>,
    connection: Option<&str>,
    client: &str,
    result: &str,
    reason: &str,
    session: Option<&str>,
) -> Vec<u8> {
    serde_json::to_vec(&(
        at, subject, issuer, kind, connection, client, result, reason, session,
    ))
    .unwrap_or_default()
}

impl Store {
    /// Adds a live session to the index.
    pub async fn insert_session(&self, s: &SessionRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sessions (id, connection, subject, actor, credential_kind, token_id,
                client_addr, target_role, started_at, status, statements)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'live', 0)",
        )
        .bind(&s.id)
        .bind(&s.connection)
        .bind(&s.subject)
        .bind(&s.actor)
        .bind(&s.credential_kind)
        .bind(&s.token_id)
        .bind(&s.client_addr)
        .bind(&s.target_role)
        .bind(s.started_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Marks a session complete and chains its final hash.
    pub async fn end_session(
        &self,
        id: &str,
        reason: &str,
        statements: i64,
        final_hash: Option<&str>,
    ) -> Result<(), StoreError> {
        let _g = self.chain_lock.lock().await;
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE sessions SET status = 'complete', ended_at = ?, end_reason = ?,
                statements = ?, final_hash = ? WHERE id = ?",
        )
        .bind(now)
        .bind(reason)
        .bind(statements)
        .bind(final_hash)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        append_chain(&mut tx, now, "end", id, final_hash).await?;
        sqlx::query(
            "UPDATE session_kills SET handled_at = ? WHERE session_id = ? AND handled_at IS NULL",
        )
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// At start-up: sessions still `live` belonged to a gateway that died; they become
    /// `incomplete` (chained). Returns their ids.
    pub async fn mark_live_incomplete(&self) -> Result<Vec<String>, StoreError> {
        let _g = self.chain_lock.lock().await;
        let ids: Vec<String> =
            sqlx::query_scalar("SELECT id FROM sessions WHERE status = 'live' ORDER BY started_at")
                .fetch_all(&self.pool)
                .await?;
        for id in &ids {
            let now = now_ms();
            let mut tx = self.pool.begin().await?;
            sqlx::query(
                "UPDATE sessions SET status = 'incomplete', ended_at = ?,
                    end_reason = 'gateway stopped without ending the session' WHERE id = ?",
            )
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            append_chain(&mut tx, now, "incomplete", id, None).await?;
            tx.commit().await?;
        }
        Ok(ids)
    }

    /// Records that a session's recording was purged (retention), keeping its final hash
    /// in the chain.
    pub async fn record_purge(&self, id: &str, final_hash: Option<&str>) -> Result<(), StoreError> {
        let _g = self.chain_lock.lock().await;
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE sessions SET status = 'purged' WHERE id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        append_chain(&mut tx, now, "purge", id, final_hash).await?;
        tx.commit().await?;
        Ok(())
    }

    /// One session's row.
    pub async fn get_session(&self, id: &str) -> Result<Option<SessionRow>, StoreError> {
        let row = sqlx::query("SELECT * FROM sessions WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(session_from_row).transpose()
    }

    /// Sessions matching `f`, newest first.
    pub async fn list_sessions(&self, f: &SessionFilter) -> Result<Vec<SessionRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM sessions
             WHERE (?1 IS NULL OR subject = ?1) AND (?2 IS NULL OR connection = ?2)
               AND (?3 IS NULL OR started_at >= ?3) AND (?4 IS NULL OR started_at < ?4)
               AND (?5 IS NULL OR status = ?5)
             ORDER BY started_at DESC LIMIT ?6",
        )
        .bind(&f.subject)
        .bind(&f.connection)
        .bind(f.since)
        .bind(f.until)
        .bind(&f.status)
        .bind(f.limit.unwrap_or(1000))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(session_from_row).collect()
    }

    /// The session-chain entries for one session: (kind, final hash).
    pub async fn chain_entries(
        &self,
        id: &str,
    ) -> Result<Vec<(String, Option<String>)>, StoreError> {
        let rows = sqlx::query(
            "SELECT kind, final_hash FROM session_chain WHERE session_id = ? ORDER BY seq",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("kind")?, r.try_get("final_hash")?)))
            .collect()
    }

    /// Asks the gateway to end a live session. False when it is not live.
    pub async fn request_kill(&self, id: &str, by: &str) -> Result<bool, StoreError> {
        let live: Option<String> =
            sqlx::query_scalar("SELECT id FROM sessions WHERE id = ? AND status = 'live'")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        if live.is_none() {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO session_kills (session_id, requested_at, requested_by) VALUES (?, ?, ?)
             ON CONFLICT (session_id) DO NOTHING",
        )
        .bind(id)
        .bind(now_ms())
        .bind(by)
        .execute(&self.pool)
        .await?;
        Ok(true)
    }

    /// Kill requests not yet handled: (session id, requested by).
    pub async fn pending_kills(&self) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT session_id, requested_by FROM session_kills WHERE handled_at IS NULL",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("session_id")?, r.try_get("requested_by")?)))
            .collect()
    }

    /// Marks a kill request handled.
    pub async fn kill_handled(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE session_kills SET handled_at = ? WHERE session_id = ?")
            .bind(now_ms())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Which of `ids` (token jtis or API key ids) are revoked.
    pub async fn revoked_among(&self, ids: &[String]) -> Result<Vec<String>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let list = serde_json::to_string(ids).unwrap_or_else(|_| "[]".into());
        let revoked = sqlx::query_scalar(
            "SELECT jti FROM issued_tokens WHERE revoked_at IS NOT NULL
                AND jti IN (SELECT value FROM json_each(?1))
             UNION SELECT id FROM api_keys WHERE revoked_at IS NOT NULL
                AND id IN (SELECT value FROM json_each(?1))",
        )
        .bind(list)
        .fetch_all(&self.pool)
        .await?;
        Ok(revoked)
    }

    /// Recomputes both chains from the first row and reports every row that does not
    /// follow from the one before it (edited, dropped, reordered or inserted rows).
    pub async fn verify_chains(&self) -> Result<ChainReport, StoreError> {
        let mut report = ChainReport::default();
        let rows = sqlx::query("SELECT * FROM auth_audit ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        let mut prev = GENESIS.to_owned();
        for r in &rows {
            let id: i64 = r.try_get("id")?;
            let stored_prev: Option<String> = r.try_get("prev_hash")?;
            let stored: Option<String> = r.try_get("hash")?;
            let item = audit_item(
                r.try_get("at")?,
                r.try_get::<Option<String>, _>("subject")?.as_deref(),
                r.try_get::<Option<String>, _>("issuer")?.as_deref(),
                r.try_get::<Option<String>, _>("credential_kind")?
                    .as_deref(),
                r.try_get::<Option<String>, _>("connection")?.as_deref(),
                &r.try_get::<String, _>("client_addr")?,
                &r.try_get::<String, _>("result")?,
                &r.try_get::<String, _>("reason")?,
                r.try_get::<Option<String>, _>("session_id")?.as_deref(),
            );
            report.audit_rows += 1;
            let problem = |detail: String| ChainProblem {
                table: "auth_audit",
                row: id,
                detail,
            };
            match (stored_prev, stored) {
                (Some(p), Some(h)) => {
                    if p != prev {
                        report.problems.push(problem(
                            "does not follow the row before it (a row was removed, \
                             inserted or reordered)"
                                .into(),
                        ));
                    }
                    if link(&p, &item) != h {
                        report
                            .problems
                            .push(problem("content does not match its hash (edited)".into()));
                    }
                    prev = h;
                }
                _ => report
                    .problems
                    .push(problem("row has no hash (written outside Warden)".into())),
            }
        }
        let rows = sqlx::query("SELECT * FROM session_chain ORDER BY seq")
            .fetch_all(&self.pool)
            .await?;
        let mut prev = GENESIS.to_owned();
        for r in &rows {
            let seq: i64 = r.try_get("seq")?;
            let stored_prev: String = r.try_get("prev")?;
            let stored: String = r.try_get("hash")?;
            let item = chain_item(
                r.try_get("at")?,
                &r.try_get::<String, _>("kind")?,
                &r.try_get::<String, _>("session_id")?,
                r.try_get::<Option<String>, _>("final_hash")?.as_deref(),
            );
            report.session_rows += 1;
            let problem = |detail: String| ChainProblem {
                table: "session_chain",
                row: seq,
                detail,
            };
            if stored_prev != prev {
                report.problems.push(problem(
                    "does not follow the row before it (a row was removed, inserted or \
                     reordered)"
                        .into(),
                ));
            }
            if link(&stored_prev, &item) != stored {
                report
                    .problems
                    .push(problem("content does not match its hash (edited)".into()));
            }
            prev = stored;
        }
        Ok(report)
    }
}

async fn append_chain(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    at: i64,
    kind: &str,
    session_id: &str,
    final_hash: Option<&str>,
) -> Result<(), StoreError> {
    let prev: Option<String> =
        sqlx::query_scalar("SELECT hash FROM session_chain ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut **tx)
            .await?;
    let prev = prev.unwrap_or_else(|| GENESIS.to_owned());
    let hash = link(&prev, &chain_item(at, kind, session_id, final_hash));
    sqlx::query(
        "INSERT INTO session_chain (at, kind, session_id, final_hash, prev, hash)
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(at)
    .bind(kind)
    .bind(session_id)
    .bind(final_hash)
    .bind(&prev)
    .bind(&hash)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
