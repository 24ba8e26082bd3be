//! Per-session roles on a PostgreSQL target: create, renew, tear down, sweep.
//!
//! Life of a role:
//! 1. [`JitManager::create`] runs one implicit transaction as the admin role: `CREATE ROLE`
//!    with the SCRAM verifier, `VALID UNTIL` now + `ttl` (capped by the session's hard end),
//!    `CONNECTION LIMIT`, membership of the granted roles, a comment that marks it as
//!    Warden's (instance, session, subject), then the configured extra grants. Either all
//!    of it happens or none.
//! 2. While the session lives, a renewer moves `VALID UNTIL` forward, never past the hard
//!    end, so a role whose gateway died expires within `ttl`.
//! 3. Dropping the [`JitLease`] (every way a session can end) starts the teardown:
//!    terminate the role's backends, `REASSIGN OWNED`/`DROP OWNED`, `DROP ROLE`; idempotent
//!    and retried with back-off.
//! 4. The sweeper, at start-up and every `sweep_interval`, drops roles with the prefix and
//!    Warden's marker that have expired, or that this gateway instance made and no longer
//!    tracks (it was killed). Roles without the prefix and marker are never touched.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgSslMode};
use sqlx::Row;
use tokio::task::JoinHandle;
use warden_config::{ConnectionConfig, JitConfig, OwnedObjects, TargetUrl};
use warden_types::Secret;

use crate::scram::ScramKey;
use crate::sql::{ident, literal};

/// Marks a role comment as Warden's; the sweeper only touches roles whose comment starts
/// with it (and whose name starts with the prefix).
const MARKER: &str = "warden-jit v1";
/// Attempts at creating a session role when the target reports a catalog conflict.
const CREATE_ATTEMPTS: u32 = 4;

/// Whether a failed creation may succeed when simply run again.
fn transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => match db.code().as_deref() {
            Some("40001" | "40P01") => true,
            Some("XX000") => db.message().contains("concurrently"),
            _ => false,
        },
        _ => false,
    }
}

/// Teardown attempts before the role is left to the sweeper.
const TEARDOWN_ATTEMPTS: u32 = 5;

/// Everything the manager needs for one connection.
#[derive(Clone, Debug)]
pub struct JitSettings {
    /// Connection name (for messages and metrics).
    pub connection: String,
    /// Target host.
    pub host: String,
    /// Target port.
    pub port: u16,
    /// Target database; owned objects are handled here.
    pub database: String,
    /// Role-management role.
    pub admin_username: String,
    /// Its password (none for trust).
    pub admin_password: Option<Secret>,
    /// Roles granted when no role rule applies.
    pub grant_roles: Vec<String>,
    /// Extra statements with `{role}`.
    pub grants: Vec<String>,
    /// Validity without renewal.
    pub ttl: Duration,
    /// Longest life.
    pub max_ttl: Duration,
    /// Role name prefix.
    pub prefix: String,
    /// `CONNECTION LIMIT`.
    pub connection_limit: u32,
    /// Owned objects policy.
    pub owned_objects: OwnedObjects,
    /// Who receives reassigned objects.
    pub reassign_to: String,
    /// Admin pool size.
    pub pool_size: u32,
    /// Sweeper period.
    pub sweep_interval: Duration,
    /// Time allowed to connect as the admin.
    pub connect_timeout: Duration,
    /// This gateway's instance id (stable across restarts of the same data directory).
    pub instance: String,
}

impl JitSettings {
    /// Settings for `conn`, whose `[connections.jit]` is `jit`.
    pub fn from_config(
        conn: &ConnectionConfig,
        jit: &JitConfig,
        url: &TargetUrl,
        admin_password: Option<Secret>,
        instance: &str,
        connect_timeout: Duration,
    ) -> JitSettings {
        JitSettings {
            connection: conn.name.clone(),
            host: url.host.clone(),
            port: url.port,
            database: url.database.clone(),
            admin_username: jit.admin_username.clone(),
            admin_password,
            grant_roles: jit.grant_roles.clone(),
            grants: jit.grants.clone(),
            ttl: jit.ttl,
            max_ttl: jit.max_ttl,
            prefix: jit.role_prefix.clone(),
            connection_limit: jit.connection_limit,
            owned_objects: jit.owned_objects,
            reassign_to: jit.reassign_target().to_owned(),
            pool_size: jit.admin_pool_size,
            sweep_interval: jit.sweep_interval,
            connect_timeout,
            instance: instance.to_owned(),
        }
    }
}

/// Why a role could not be made or removed. Never contains a secret.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct JitError {
    /// What went wrong, naming the connection and the target's own message.
    pub message: String,
    /// What the administrator should change.
    pub hint: Option<String>,
    /// The target's SQLSTATE, when it sent one.
    pub sqlstate: Option<String>,
}

/// Who a role is for.
#[derive(Clone, Debug)]
pub struct SessionInfo<'a> {
    /// Warden session id (a UUID); its first 12 hex digits name the role.
    pub session_id: &'a str,
    /// The identity's subject, written into the role's comment.
    pub subject: &'a str,
    /// Longest the session may last on other grounds (`max_session`).
    pub max_session: Option<Duration>,
}

/// Creates and removes session roles for one connection.
pub struct JitManager {
    s: JitSettings,
    /// Admin connections for creating and renewing roles.
    pool: PgPool,
    /// Separate admin connections for teardown and sweeps, so a burst of session ends
    /// (or a DROP OWNED waiting on a lock) never delays a session's start.
    reaper: PgPool,
    /// Roles this process created (or is creating) and has not yet dropped.
    live: Mutex<HashSet<String>>,
    live_gauge: metrics::Gauge,
}

impl std::fmt::Debug for JitManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JitManager")
            .field("connection", &self.s.connection)
            .finish_non_exhaustive()
    }
}

/// A live session role. Dropping it tears the role down in the background.
pub struct JitLease {
    manager: Arc<JitManager>,
    /// The role's name.
    pub role: String,
    /// Its SCRAM key (the only copy); take it for the login and drop it after.
    pub key: Option<ScramKey>,
    /// When the session must end at the latest.
    pub hard_end: SystemTime,
    renewer: JoinHandle<()>,
}

impl std::fmt::Debug for JitLease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JitLease")
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

impl Drop for JitLease {
    fn drop(&mut self) {
        self.renewer.abort();
        let manager = self.manager.clone();
        let role = std::mem::take(&mut self.role);
        match tokio::runtime::Handle::try_current() {
            Ok(h) => {
                h.spawn(async move { manager.teardown(&role).await });
            }
            // No runtime (process exit): the sweeper of the next start removes it.
            Err(_) => tracing::warn!(role, "session role left for the sweeper"),
        }
    }
}

fn rfc3339(t: SystemTime) -> String {
    let t = time::OffsetDateTime::from(t);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "infinity".into())
}

impl JitManager {
    /// Builds the manager; admin connections are opened lazily, so a target that is down
    /// at start-up does not stop the gateway.
    pub fn new(s: JitSettings) -> Arc<JitManager> {
        let mut opts = PgConnectOptions::new_without_pgpass()
            .host(&s.host)
            .port(s.port)
            .database(&s.database)
            .username(&s.admin_username)
            .ssl_mode(PgSslMode::Disable)
            .application_name("warden-admin")
            // Role DDL need not wait for WAL flush: a role lost in a target crash is one
            // the session never used, and one resurrected is expired and swept.
            .options([
                ("synchronous_commit", "off"),
                ("statement_timeout", "30s"),
                ("lock_timeout", "10s"),
                ("standard_conforming_strings", "on"),
                // pg_terminate_backend warns about backends that exited on their own.
                ("client_min_messages", "error"),
            ]);
        if let Some(pw) = &s.admin_password {
            opts = opts.password(pw.expose());
        }
        let opts = sqlx::ConnectOptions::disable_statement_logging(opts);
        let pool_of = |size: u32| {
            PgPoolOptions::new()
                .max_connections(size)
                .min_connections(0)
                .acquire_timeout(s.connect_timeout)
                .idle_timeout(Some(Duration::from_secs(300)))
                .test_before_acquire(false)
                .connect_lazy_with(opts.clone())
        };
        let pool = pool_of(s.pool_size);
        let reaper = pool_of(s.pool_size.div_ceil(2));
        let live_gauge =
            metrics::gauge!("warden_jit_roles_live", "connection" => s.connection.clone());
        Arc::new(JitManager {
            s,
            pool,
            reaper,
            live: Mutex::new(HashSet::new()),
            live_gauge,
        })
    }

    /// The settings.
    pub fn settings(&self) -> &JitSettings {
        &self.s
    }

    fn track(&self, role: &str, on: bool) {
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        let changed = if on {
            live.insert(role.to_owned())
        } else {
            live.remove(role)
        };
        if changed {
            self.live_gauge.set(live.len() as f64);
        }
    }

    fn is_live(&self, role: &str) -> bool {
        self.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(role)
    }

    /// Names of the roles this process holds.
    pub fn live_roles(&self) -> Vec<String> {
        let live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        live.iter().cloned().collect()
    }

    /// The start of the comment of every role this manager makes: marker, instance and
    /// connection (names without spaces), so two connections to one target never take
    /// each other's live roles for orphans.
    fn owner_tag(&self) -> String {
        format!(
            "{MARKER} instance={} connection={}",
            self.s.instance, self.s.connection
        )
    }

    /// The role name for a session id: the prefix and the id's first 12 hex digits.
    pub fn role_name(&self, session_id: &str) -> String {
        let hex: String = session_id
            .chars()
            .filter(char::is_ascii_hexdigit)
            .take(warden_config::JIT_ROLE_SUFFIX_LEN)
            .map(|c| c.to_ascii_lowercase())
            .collect();
        format!("{}{hex}", self.s.prefix)
    }

    /// Creates the session's role, member of `grant_roles` (the policy's choice, or the
    /// connection's `grant_roles` when empty).
    pub async fn create(
        self: &Arc<Self>,
        info: &SessionInfo<'_>,
        grant_roles: &[String],
    ) -> Result<JitLease, JitError> {
        let started = std::time::Instant::now();
        let role = self.role_name(info.session_id);
        let key = ScramKey::generate();
        let now = SystemTime::now();
        let life = info
            .max_session
            .map_or(self.s.max_ttl, |m| m.min(self.s.max_ttl));
        let hard_end = now + life;
        let valid_until = (now + self.s.ttl).min(hard_end);
        let grants = if grant_roles.is_empty() {
            &self.s.grant_roles
        } else {
            grant_roles
        };

        let q = ident(&role);
        let mut sql = format!(
            "CREATE ROLE {q} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE INHERIT \
             NOREPLICATION NOBYPASSRLS CONNECTION LIMIT {} VALID UNTIL {} PASSWORD {}",
            self.s.connection_limit,
            literal(&rfc3339(valid_until)),
            literal(&key.verifier()),
        );
        if !grants.is_empty() {
            let list: Vec<String> = grants.iter().map(|g| ident(g)).collect();
            sql.push_str(" IN ROLE ");
            sql.push_str(&list.join(", "));
        }
        // The admin becomes a member so it may terminate the role's backends and
        // reassign or drop what it owns, without needing superuser.
        sql.push_str(" ROLE ");
        sql.push_str(&ident(&self.s.admin_username));
        sql.push_str(";\n");
        let subject: String = info.subject.chars().take(200).collect();
        sql.push_str(&format!(
            "COMMENT ON ROLE {q} IS {};\n",
            literal(&format!(
                "{} session={} subject={subject}",
                self.owner_tag(),
                info.session_id
            ))
        ));
        for g in &self.s.grants {
            sql.push_str(&g.replace("{role}", &q));
            sql.push_str(";\n");
        }

        // Tracked before it exists, so a concurrent sweep never takes it for an orphan.
        self.track(&role, true);
        // A multi-statement simple query is one implicit transaction: all or nothing, so
        // it can be retried. Concurrent sessions granting on the same object (a schema's
        // ACL, say) can collide in the catalog: PostgreSQL then fails one of them with
        // "tuple concurrently updated" (XX000), a deadlock or a serialization failure.
        let mut attempt = 0u32;
        let res = loop {
            let res = sqlx::raw_sql(&sql).execute(&self.pool).await;
            match &res {
                Err(e) if attempt < CREATE_ATTEMPTS && transient(e) => {
                    attempt += 1;
                    let ms = 5u64 * (1 << attempt) + rand::random::<u64>() % 20;
                    tracing::debug!(connection = %self.s.connection, attempt, "retrying a session role after a catalog conflict");
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                }
                _ => break res,
            }
        };
        drop(sql);
        if let Err(e) = res {
            self.track(&role, false);
            metrics::counter!("warden_jit_role_creations_total", "result" => "error").increment(1);
            return Err(self.create_error(e));
        }
        metrics::counter!("warden_jit_role_creations_total", "result" => "ok").increment(1);
        metrics::histogram!("warden_jit_role_create_seconds")
            .record(started.elapsed().as_secs_f64());
        tracing::info!(connection = %self.s.connection, role, session = info.session_id,
            "session role created");

        let renewer = tokio::spawn(renew(self.clone(), role.clone(), hard_end));
        Ok(JitLease {
            manager: self.clone(),
            role,
            key: Some(key),
            hard_end,
            renewer,
        })
    }

    fn create_error(&self, e: sqlx::Error) -> JitError {
        let conn = &self.s.connection;
        let admin = &self.s.admin_username;
        match &e {
            sqlx::Error::Database(db) => {
                let code = db.code().map(|c| c.into_owned());
                let hint = match code.as_deref() {
                    Some("42501") if !db.message().contains("role") => Some(format!(
                        "the admin role \"{admin}\" must hold what grants give away, \
                         WITH GRANT OPTION"
                    )),
                    Some("42501") => Some(format!(
                        "the admin role \"{admin}\" needs CREATEROLE on the target (and, on \
                         PostgreSQL 16 and later, ADMIN OPTION on every granted role)"
                    )),
                    Some("42704") => Some(
                        "every role in grant_roles, [[connections.roles]] and grants must \
                         exist on the target"
                            .into(),
                    ),
                    Some("42P01" | "3F000" | "42883") => Some(
                        "an object named in [connections.jit] grants does not exist on the target"
                            .into(),
                    ),
                    Some(c) if c.starts_with("28") => Some(format!(
                        "check admin_username \"{admin}\" and its password \
                         (admin_password_env or admin_password_file)"
                    )),
                    _ => None,
                };
                let what = if code.as_deref().is_some_and(|c| c.starts_with("28")) {
                    "cannot log in to the target as the admin role"
                } else {
                    "cannot create a session role on the target"
                };
                JitError {
                    message: format!(
                        "connection \"{conn}\": {what}: {} (SQLSTATE {})",
                        db.message(),
                        code.as_deref().unwrap_or("?")
                    ),
                    hint,
                    sqlstate: code,
                }
            }
            other => JitError {
                message: format!(
                    "connection \"{conn}\": cannot reach the target as the admin role: {}",
                    describe(other)
                ),
                hint: Some("check the target address and that the target is up".into()),
                sqlstate: None,
            },
        }
    }

    /// Terminates the role's backends and drops it, retrying with back-off; a role that
    /// still cannot be dropped is left to the sweeper.
    pub async fn teardown(&self, role: &str) {
        let mut delay = Duration::from_millis(100);
        for attempt in 1..=TEARDOWN_ATTEMPTS {
            match self.drop_role(role).await {
                Ok(()) => {
                    self.track(role, false);
                    metrics::counter!("warden_jit_teardowns_total", "result" => "ok").increment(1);
                    tracing::info!(connection = %self.s.connection, role, "session role dropped");
                    return;
                }
                Err(e) => {
                    tracing::warn!(connection = %self.s.connection, role, attempt,
                        error = %e, "could not drop session role");
                    if attempt < TEARDOWN_ATTEMPTS {
                        tokio::time::sleep(delay).await;
                        delay *= 4;
                    }
                }
            }
        }
        // Untracked, so the sweeper sees an orphan of this instance and retries.
        self.track(role, false);
        metrics::counter!("warden_jit_teardowns_total", "result" => "error").increment(1);
    }

    /// One teardown attempt. Succeeds if the role is already gone.
    pub async fn drop_role(&self, role: &str) -> Result<(), JitError> {
        let err = |e: sqlx::Error| JitError {
            message: format!(
                "connection \"{}\": cannot drop session role {role}: {}",
                self.s.connection,
                describe(&e)
            ),
            hint: None,
            sqlstate: None,
        };
        // Not the waiting form pg_terminate_backend(pid, timeout): it polls in 100 ms steps.
        // A terminated backend releases its locks as it exits, and the DROP OWNED below
        // waits for those (bounded by lock_timeout), which is the only wait that matters.
        let exists: bool = sqlx::query_scalar(
            "SELECT count(pg_terminate_backend(a.pid)) >= 0 \
                    AND EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1) \
             FROM pg_stat_activity a WHERE a.usename = $1 AND a.pid <> pg_backend_pid()",
        )
        .bind(role)
        .fetch_one(&self.reaper)
        .await
        .map_err(err)?;
        if !exists {
            return Ok(());
        }
        let q = ident(role);
        let sql = match self.s.owned_objects {
            OwnedObjects::Reassign => format!(
                "REASSIGN OWNED BY {q} TO {}; DROP OWNED BY {q}; DROP ROLE IF EXISTS {q}",
                ident(&self.s.reassign_to)
            ),
            OwnedObjects::Drop => format!("DROP OWNED BY {q}; DROP ROLE IF EXISTS {q}"),
        };
        match sqlx::raw_sql(&sql).execute(&self.reaper).await {
            Ok(_) => Ok(()),
            // Dropped concurrently (by the sweeper or another teardown).
            Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some("42704") => Ok(()),
            Err(e) => Err(err(e)),
        }
    }

    /// Drops expired and orphaned roles with the prefix and Warden's marker; returns the
    /// names dropped.
    pub async fn sweep(&self) -> Result<Vec<String>, JitError> {
        let rows = sqlx::query(
            "SELECT r.rolname::text AS name, \
                    coalesce(r.rolvaliduntil < now(), false) AS expired, \
                    coalesce(shobj_description(r.oid, 'pg_authid'), '') AS comment \
             FROM pg_roles r WHERE starts_with(r.rolname::text, $1)",
        )
        .bind(&self.s.prefix)
        .fetch_all(&self.reaper)
        .await
        .map_err(|e| JitError {
            message: format!(
                "connection \"{}\": sweeper cannot list roles: {}",
                self.s.connection,
                describe(&e)
            ),
            hint: None,
            sqlstate: None,
        })?;
        let ours = format!("{} ", self.owner_tag());
        let mut dropped = Vec::new();
        for row in rows {
            let name: String = row.try_get("name").unwrap_or_default();
            let expired: bool = row.try_get("expired").unwrap_or(false);
            let comment: String = row.try_get("comment").unwrap_or_default();
            if name.is_empty() || !comment.starts_with(MARKER) {
                continue;
            }
            let orphan = comment.starts_with(&ours) && !self.is_live(&name);
            if !(expired || orphan) {
                continue;
            }
            match self.drop_role(&name).await {
                Ok(()) => {
                    tracing::info!(connection = %self.s.connection, role = name, expired,
                        "sweeper dropped a session role");
                    metrics::counter!("warden_jit_swept_total").increment(1);
                    dropped.push(name);
                }
                Err(e) => tracing::warn!(error = %e, "sweeper could not drop a session role"),
            }
        }
        Ok(dropped)
    }

    /// Sweeps now and then every `sweep_interval`, forever.
    pub fn spawn_sweeper(self: &Arc<Self>) -> JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = me.sweep().await {
                    tracing::warn!(error = %e, "session role sweep failed");
                }
                tokio::time::sleep(me.s.sweep_interval).await;
            }
        })
    }

    /// Drops every role this process holds (gateway shutdown): their sessions end.
    pub async fn shutdown(&self) {
        let roles = self.live_roles();
        futures::future::join_all(roles.iter().map(|r| self.teardown(r))).await;
        self.pool.close().await;
        self.reaper.close().await;
    }
}

/// Moves `VALID UNTIL` forward every third of the TTL, never past `hard_end`.
async fn renew(m: Arc<JitManager>, role: String, hard_end: SystemTime) {
    let period = (m.s.ttl / 3).max(Duration::from_secs(1));
    loop {
        tokio::time::sleep(period).await;
        let until = (SystemTime::now() + m.s.ttl).min(hard_end);
        let sql = format!(
            "ALTER ROLE {} VALID UNTIL {}",
            ident(&role),
            literal(&rfc3339(until))
        );
        if let Err(e) = sqlx::raw_sql(&sql).execute(&m.pool).await {
            tracing::warn!(role, error = %describe(&e), "could not renew session role");
        }
        if until >= hard_end {
            return;
        }
    }
}

/// An sqlx error in words, without anything that could hold a secret.
fn describe(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(db) => format!(
            "{} (SQLSTATE {})",
            db.message(),
            db.code().as_deref().unwrap_or("?")
        ),
        sqlx::Error::PoolTimedOut => "timed out waiting for an admin connection".into(),
        sqlx::Error::Io(io) => format!("I/O error: {io}"),
        sqlx::Error::Tls(_) => "TLS error".into(),
        sqlx::Error::Protocol(p) => format!("protocol error: {p}"),
        _ => "database error".into(),
    }
}

#[cfg(test)]
mod tests;
