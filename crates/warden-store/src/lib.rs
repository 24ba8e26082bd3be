//! Warden's store: identities, API keys, issued tokens and the authentication audit, in
//! SQLite through sqlx (one set of migrations under `migrations/`).
//!
//! Only hashes of API key secrets are stored; tokens themselves are never stored.
#![forbid(unsafe_code)]

use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
use warden_identity::{ApiKeyRecord, CredentialStore, StoreUnavailable};

pub mod approvals;
pub mod sessions;
pub use approvals::{
    ApprovalFilter, ApprovalRequest, ApprovalVote, NewApprovalRequest, VoteOutcome,
};
pub use sessions::{ChainProblem, ChainReport, SessionFilter, SessionRow};

/// Store errors. Messages never contain secrets (none are stored).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL is not one this store understands.
    #[error("unsupported store URL: {0}")]
    UnsupportedUrl(String),
    /// The database could not be opened or created.
    #[error("cannot open store {url}: {source}")]
    Open {
        /// The store URL.
        url: String,
        /// Why.
        source: sqlx::Error,
    },
    /// Migrations failed.
    #[error("store migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A query failed.
    #[error("store query failed: {0}")]
    Query(#[from] sqlx::Error),
    /// A row held data this version cannot read.
    #[error("corrupt store row: {0}")]
    Corrupt(String),
}

/// Handle to the store; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
    /// Serialises chained appends (the audit and the session chain) in this process;
    /// only the gateway appends.
    chain_lock: std::sync::Arc<tokio::sync::Mutex<()>>,
}

/// An API key's stored metadata (never the secret).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct ApiKeyRow {
    /// Key id (the part after `wdk_`).
    pub id: String,
    /// Owning identity.
    pub identity: String,
    /// Groups granted.
    pub groups: Vec<String>,
    /// Creation time (unix ms).
    pub created_at: i64,
    /// Expiry (unix ms), if any.
    pub expires_at: Option<i64>,
    /// Revocation time (unix ms), if revoked.
    pub revoked_at: Option<i64>,
}

/// A built-in token's stored metadata (never the token).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct TokenRow {
    /// Token id (`jti`).
    pub jti: String,
    /// Subject.
    pub identity: String,
    /// Groups granted.
    pub groups: Vec<String>,
    /// Issue time (unix ms).
    pub issued_at: i64,
    /// Expiry (unix ms).
    pub expires_at: i64,
    /// Revocation time (unix ms), if revoked.
    pub revoked_at: Option<i64>,
}

/// Outcome of an authentication attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuthResult {
    /// The caller was let through.
    Allowed,
    /// The caller was refused.
    Denied,
}

/// One row of the authentication audit.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct AuthEvent {
    /// When (unix ms); filled by the store on insert when zero.
    pub at: i64,
    /// Who, when known.
    pub subject: Option<String>,
    /// Which issuer vouched, when known.
    pub issuer: Option<String>,
    /// `oidc`, `builtin` or `api_key`, when known.
    pub credential_kind: Option<String>,
    /// The connection asked for.
    pub connection: Option<String>,
    /// The client's address.
    pub client_addr: String,
    /// Allowed or denied.
    pub result: AuthResult,
    /// Why (never a secret).
    pub reason: String,
    /// The session opened, when allowed.
    pub session_id: Option<String>,
}

/// One row of the audit as listed: the event, its place in the chain and its hashes.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct AuditRow {
    /// Position in the chain (ascending with time).
    pub id: i64,
    /// The event.
    #[serde(flatten)]
    pub event: AuthEvent,
    /// Hash of the row before (the chain link).
    pub prev_hash: Option<String>,
    /// This row's hash.
    pub hash: Option<String>,
}

/// Filters for [`Store::list_audit`]; `None` matches anything.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    /// At or after (unix ms).
    pub since: Option<i64>,
    /// Before (unix ms).
    pub until: Option<i64>,
    /// Exact subject.
    pub subject: Option<String>,
    /// Rows after this id (paging forward).
    pub after_id: Option<i64>,
    /// At most this many, oldest first (default 1000).
    pub limit: Option<i64>,
}

/// Current time in unix milliseconds.
pub fn now_ms() -> i64 {
    to_ms(SystemTime::now())
}

/// A time in unix milliseconds.
pub fn to_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn from_ms(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

fn groups_json(groups: &[String]) -> String {
    serde_json::to_string(groups).unwrap_or_else(|_| "[]".into())
}

fn parse_groups(s: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("groups: {e}")))
}

impl Store {
    /// Opens (creating file and directories if needed) and migrates the store.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .ok_or_else(|| StoreError::UnsupportedUrl(url.to_owned()))?;
        if path != ":memory:" {
            if let Some(parent) = Path::new(path).parent() {
                if !parent.as_os_str().is_empty() {
                    std::fs::create_dir_all(parent).map_err(|e| StoreError::Open {
                        url: url.to_owned(),
                        source: sqlx::Error::Io(e),
                    })?;
                }
            }
        }
        let opts = SqliteConnectOptions::from_str(&format!("sqlite:{path}"))
            .map_err(|source| StoreError::Open {
                url: url.to_owned(),
                source,
            })?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // WAL with NORMAL survives a process crash; only an OS crash can lose the tail.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(if path == ":memory:" { 1 } else { 4 })
            .connect_with(opts)
            .await
            .map_err(|source| StoreError::Open {
                url: url.to_owned(),
                source,
            })?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Store {
            pool,
            chain_lock: Default::default(),
        })
    }

    /// Creates or updates an identity.
    pub async fn upsert_identity(
        &self,
        name: &str,
        kind: &str,
        groups: &[String],
    ) -> Result<(), StoreError> {
        let now = now_ms();
        sqlx::query(
            "INSERT INTO identities (name, kind, groups, created_at, updated_at) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT(name) DO UPDATE SET kind = excluded.kind, groups = excluded.groups, updated_at = excluded.updated_at",
        )
        .bind(name)
        .bind(kind)
        .bind(groups_json(groups))
        .bind(now)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records a new API key (its hash only).
    pub async fn insert_api_key(
        &self,
        id: &str,
        identity: &str,
        groups: &[String],
        secret_hash: &str,
        expires_at: Option<SystemTime>,
    ) -> Result<(), StoreError> {
        self.upsert_identity(identity, "api_key", groups).await?;
        sqlx::query(
            "INSERT INTO api_keys (id, identity, groups, secret_hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(id)
        .bind(identity)
        .bind(groups_json(groups))
        .bind(secret_hash)
        .bind(now_ms())
        .bind(expires_at.map(to_ms))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records a token issued by the built-in issuer.
    pub async fn insert_token(
        &self,
        jti: &str,
        identity: &str,
        groups: &[String],
        expires_at: SystemTime,
    ) -> Result<(), StoreError> {
        self.upsert_identity(identity, "builtin", groups).await?;
        sqlx::query(
            "INSERT INTO issued_tokens (jti, identity, groups, issued_at, expires_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(jti)
        .bind(identity)
        .bind(groups_json(groups))
        .bind(now_ms())
        .bind(to_ms(expires_at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// All API keys, newest first.
    pub async fn list_api_keys(&self) -> Result<Vec<ApiKeyRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, identity, groups, created_at, expires_at, revoked_at FROM api_keys ORDER BY created_at DESC, id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ApiKeyRow {
                    id: r.try_get("id")?,
                    identity: r.try_get("identity")?,
                    groups: parse_groups(r.try_get("groups")?)?,
                    created_at: r.try_get("created_at")?,
                    expires_at: r.try_get("expires_at")?,
                    revoked_at: r.try_get("revoked_at")?,
                })
            })
            .collect()
    }

    /// All built-in tokens, newest first.
    pub async fn list_tokens(&self) -> Result<Vec<TokenRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT jti, identity, groups, issued_at, expires_at, revoked_at FROM issued_tokens ORDER BY issued_at DESC, jti",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(TokenRow {
                    jti: r.try_get("jti")?,
                    identity: r.try_get("identity")?,
                    groups: parse_groups(r.try_get("groups")?)?,
                    issued_at: r.try_get("issued_at")?,
                    expires_at: r.try_get("expires_at")?,
                    revoked_at: r.try_get("revoked_at")?,
                })
            })
            .collect()
    }

    /// Revokes an API key (by id or full `wdk_` key prefix) or a built-in token (by jti).
    /// Returns false when nothing matched or it was already revoked.
    pub async fn revoke(&self, id: &str) -> Result<bool, StoreError> {
        let key_id = id
            .strip_prefix("wdk_")
            .map(|rest| rest.split('_').next().unwrap_or(rest))
            .unwrap_or(id);
        let now = now_ms();
        let a =
            sqlx::query("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
                .bind(now)
                .bind(key_id)
                .execute(&self.pool)
                .await?
                .rows_affected();
        let t = sqlx::query(
            "UPDATE issued_tokens SET revoked_at = ? WHERE jti = ? AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(a + t > 0)
    }

    /// Appends an authentication attempt to the audit, chained to the row before it.
    pub async fn record_auth(&self, ev: &AuthEvent) -> Result<(), StoreError> {
        let at = if ev.at == 0 { now_ms() } else { ev.at };
        let result = match ev.result {
            AuthResult::Allowed => "allowed",
            AuthResult::Denied => "denied",
        };
        let item = sessions::audit_item(
            at,
            ev.subject.as_deref(),
            ev.issuer.as_deref(),
            ev.credential_kind.as_deref(),
            ev.connection.as_deref(),
            &ev.client_addr,
            result,
            &ev.reason,
            ev.session_id.as_deref(),
        );
        let _g = self.chain_lock.lock().await;
        let mut tx = self.pool.begin().await?;
        let prev: Option<String> =
            sqlx::query_scalar("SELECT hash FROM auth_audit ORDER BY id DESC LIMIT 1")
                .fetch_optional(&mut *tx)
                .await?
                .flatten();
        let prev = prev.unwrap_or_else(|| warden_recording::chain::GENESIS.to_owned());
        let hash = warden_recording::chain::link(&prev, &item);
        sqlx::query(
            "INSERT INTO auth_audit (at, subject, issuer, credential_kind, connection, client_addr, result, reason, session_id, prev_hash, hash)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(at)
        .bind(&ev.subject)
        .bind(&ev.issuer)
        .bind(&ev.credential_kind)
        .bind(&ev.connection)
        .bind(&ev.client_addr)
        .bind(result)
        .bind(&ev.reason)
        .bind(&ev.session_id)
        .bind(&prev)
        .bind(&hash)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Audit rows matching `f`, in chain order (oldest first).
    pub async fn list_audit(&self, f: &AuditFilter) -> Result<Vec<AuditRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, at, subject, issuer, credential_kind, connection, client_addr, result, reason, session_id, prev_hash, hash
             FROM auth_audit
             WHERE (?1 IS NULL OR at >= ?1) AND (?2 IS NULL OR at < ?2)
               AND (?3 IS NULL OR subject = ?3) AND (?4 IS NULL OR id > ?4)
             ORDER BY id LIMIT ?5",
        )
        .bind(f.since)
        .bind(f.until)
        .bind(&f.subject)
        .bind(f.after_id)
        .bind(f.limit.unwrap_or(1000))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditRow {
                    id: r.try_get("id")?,
                    event: auth_event(r)?,
                    prev_hash: r.try_get("prev_hash")?,
                    hash: r.try_get("hash")?,
                })
            })
            .collect()
    }

    /// The latest `limit` authentication attempts, newest first.
    pub async fn auth_events(&self, limit: i64) -> Result<Vec<AuthEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT at, subject, issuer, credential_kind, connection, client_addr, result, reason, session_id
             FROM auth_audit ORDER BY id DESC LIMIT ?",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(auth_event).collect()
    }
}

fn auth_event(r: &sqlx::sqlite::SqliteRow) -> Result<AuthEvent, StoreError> {
    let result: String = r.try_get("result")?;
    Ok(AuthEvent {
        at: r.try_get("at")?,
        subject: r.try_get("subject")?,
        issuer: r.try_get("issuer")?,
        credential_kind: r.try_get("credential_kind")?,
        connection: r.try_get("connection")?,
        client_addr: r.try_get("client_addr")?,
        result: match result.as_str() {
            "allowed" => AuthResult::Allowed,
            "denied" => AuthResult::Denied,
            other => return Err(StoreError::Corrupt(format!("result {other:?}"))),
        },
        reason: r.try_get("reason")?,
        session_id: r.try_get("session_id")?,
    })
}

#[async_trait]
impl CredentialStore for Store {
    async fn api_key(&self, key_id: &str) -> Result<Option<ApiKeyRecord>, StoreUnavailable> {
        let row = sqlx::query(
            "SELECT id, identity, groups, secret_hash, expires_at, revoked_at FROM api_keys WHERE id = ?",
        )
        .bind(key_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| StoreUnavailable(e.to_string()))?;
        let Some(r) = row else { return Ok(None) };
        let get = || -> Result<ApiKeyRecord, StoreError> {
            let expires: Option<i64> = r.try_get("expires_at")?;
            let revoked: Option<i64> = r.try_get("revoked_at")?;
            Ok(ApiKeyRecord {
                id: r.try_get("id")?,
                name: r.try_get("identity")?,
                groups: parse_groups(r.try_get("groups")?)?,
                secret_hash: r.try_get("secret_hash")?,
                expires_at: expires.map(from_ms),
                revoked: revoked.is_some(),
            })
        };
        get().map(Some).map_err(|e| StoreUnavailable(e.to_string()))
    }

    async fn token_revoked(&self, jti: &str) -> Result<bool, StoreUnavailable> {
        let row = sqlx::query("SELECT revoked_at FROM issued_tokens WHERE jti = ?")
            .bind(jti)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| StoreUnavailable(e.to_string()))?;
        match row {
            // A token the store never saw was not issued by this deployment: refuse it.
            None => Ok(true),
            Some(r) => {
                let revoked: Option<i64> = r
                    .try_get("revoked_at")
                    .map_err(|e| StoreUnavailable(e.to_string()))?;
                Ok(revoked.is_some())
            }
        }
    }
}

#[cfg(test)]
mod tests;
