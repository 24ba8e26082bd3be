//! `warden sessions` and `warden audit`: the recorded sessions and the audit chains, on
//! the local data directory; and the retention purge the gateway runs.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use warden_recording::export::{export, ExportFormat};
use warden_recording::reader::{path_for, read_file};
use warden_recording::replay::{delays, render_timeline, Timeline};
use warden_recording::verify::{verify_file_with, VerifyOptions};
use warden_store::{SessionFilter, SessionRow, Store};

use super::tokens::local_config;
use crate::{AuditCommand, LocalStore, SessionsCommand};

async fn open(local: &LocalStore) -> anyhow::Result<(Store, PathBuf)> {
    let config = local_config(local)?;
    std::fs::create_dir_all(&config.gateway.data_dir)?;
    let store = Store::open(&config.store_url()).await?;
    Ok((store, config.recordings_dir()))
}

fn parse_time(s: &str) -> anyhow::Result<i64> {
    if let Ok(d) = humantime::parse_duration(s) {
        return Ok(warden_store::now_ms() - d.as_millis() as i64);
    }
    let t = humantime::parse_rfc3339_weak(s)
        .map_err(|_| anyhow::anyhow!("{s:?} is neither a duration (\"2h\") nor a time"))?;
    Ok(warden_store::to_ms(t))
}

fn when(ms: i64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + Duration::from_millis(ms as u64))
        .to_string()
}

async fn session(store: &Store, id: &str) -> anyhow::Result<SessionRow> {
    store
        .get_session(id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no session {id:?}"))
}

/// Runs a sessions subcommand.
pub async fn run(cmd: SessionsCommand, local: LocalStore) -> anyhow::Result<ExitCode> {
    let (store, dir) = open(&local).await?;
    match cmd {
        SessionsCommand::List {
            identity,
            connection,
            since,
            until,
            status,
            limit,
            json,
        } => {
            let filter = SessionFilter {
                subject: identity,
                connection,
                since: since.as_deref().map(parse_time).transpose()?,
                until: until.as_deref().map(parse_time).transpose()?,
                status,
                limit: Some(limit),
            };
            let rows = store.list_sessions(&filter).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                println!(
                    "{:<36} {:<20} {:<16} {:<20} {:<11} {:>5}  END",
                    "SESSION", "STARTED", "CONNECTION", "IDENTITY", "STATUS", "STMTS"
                );
                for r in rows {
                    println!(
                        "{:<36} {:<20} {:<16} {:<20} {:<11} {:>5}  {}",
                        r.id,
                        when(r.started_at),
                        r.connection,
                        r.subject,
                        r.status,
                        r.statements,
                        r.end_reason.unwrap_or_default()
                    );
                }
            }
        }
        SessionsCommand::Show { id } => {
            let row = session(&store, &id).await?;
            println!("{}", serde_json::to_string_pretty(&row)?);
        }
        SessionsCommand::Replay { id, pace } => {
            session(&store, &id).await?;
            let rec = read_file(&path_for(&dir, &id)?)?;
            if pace {
                let gaps = delays(&rec.events);
                let mut timeline = Timeline::new(std::io::stdout());
                for (ev, gap) in rec.events.iter().zip(gaps) {
                    tokio::time::sleep(gap.min(Duration::from_secs(5))).await;
                    timeline.event(ev)?;
                    timeline.flush()?;
                }
            } else {
                render_timeline(&rec.events, std::io::stdout().lock())?;
            }
            if rec.torn_tail {
                eprintln!("(the recording ends mid-event: the gateway stopped during the session)");
            }
        }
        SessionsCommand::Export { id, format } => {
            session(&store, &id).await?;
            let format: ExportFormat = format.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
            let rec = read_file(&path_for(&dir, &id)?)?;
            export(&rec.events, format, std::io::stdout().lock())?;
        }
        SessionsCommand::Verify { id } => {
            let row = session(&store, &id).await?;
            return verify_session(&store, &dir, &row).await;
        }
        SessionsCommand::Kill { id } => {
            let by = format!(
                "warden sessions kill by {}",
                std::env::var("USER").unwrap_or_else(|_| "an operator".into())
            );
            if store.request_kill(&id, &by).await? {
                eprintln!("kill requested; the gateway ends the session within a second");
            } else {
                eprintln!("no live session {id:?}");
                return Ok(ExitCode::from(1));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Verifies one recording against itself, the index and the session chain.
async fn verify_session(store: &Store, dir: &Path, row: &SessionRow) -> anyhow::Result<ExitCode> {
    let chained = store.chain_entries(&row.id).await?;
    if row.status == "purged" {
        // The recording is gone by retention; what is left to check is the chain entry.
        return Ok(match chained.iter().find(|(k, _)| k == "purge") {
            Some((_, hash)) => {
                println!(
                    "session {}: purged by retention; its final hash {} is in the session chain",
                    row.id,
                    hash.as_deref().unwrap_or("(none)")
                );
                ExitCode::SUCCESS
            }
            None => {
                println!(
                    "session {}: purged, but the purge is not in the session chain",
                    row.id
                );
                ExitCode::from(1)
            }
        });
    }
    let complete = row.status == "complete";
    // A complete session is checked against the final hash indexed (and chained) at its
    // end, which also catches events cut from or appended to the end of the file.
    let report = verify_file_with(
        &path_for(dir, &row.id)?,
        &row.id,
        &VerifyOptions::for_status(&row.status, row.final_hash.as_deref()),
    )?;
    let mut problems: Vec<String> = report.problems.iter().map(|p| p.to_string()).collect();
    if complete
        && !chained
            .iter()
            .any(|(k, h)| k == "end" && h.as_deref() == row.final_hash.as_deref())
    {
        problems.push("the session's end is not in the session chain as indexed".into());
    }
    if problems.is_empty() {
        println!(
            "session {}: {} events verified, {}; final hash {}",
            row.id,
            report.events,
            row.status,
            report.final_hash.as_deref().unwrap_or("(none)")
        );
        Ok(ExitCode::SUCCESS)
    } else {
        println!("session {}: {} problem(s):", row.id, problems.len());
        for p in problems {
            println!("  {p}");
        }
        Ok(ExitCode::from(1))
    }
}

/// Runs an audit subcommand.
pub async fn audit(cmd: AuditCommand, local: LocalStore) -> anyhow::Result<ExitCode> {
    let (store, _) = open(&local).await?;
    match cmd {
        AuditCommand::Verify => {
            let report = store.verify_chains().await?;
            if report.problems.is_empty() {
                println!(
                    "audit chain: {} rows verified; session chain: {} rows verified",
                    report.audit_rows, report.session_rows
                );
                Ok(ExitCode::SUCCESS)
            } else {
                for p in &report.problems {
                    println!("{} row {}: {}", p.table, p.row, p.detail);
                }
                Ok(ExitCode::from(1))
            }
        }
    }
}

/// Deletes recordings older than `retention` every `period`, recording each purge in the
/// session chain so verification still accounts for every session.
pub async fn purge_loop(
    store: Store,
    dir: PathBuf,
    retention: Duration,
    period: Duration,
    live: warden_pg::registry::Registry,
) {
    loop {
        let cutoff_us = (warden_store::now_ms() - retention.as_millis() as i64) * 1000;
        let keep = |id: &str| live.contains(id);
        match warden_recording::purge::purge_older_than(&dir, cutoff_us, &keep) {
            Ok(purged) => {
                for p in purged {
                    if let Err(e) = store
                        .record_purge(&p.session_id, p.final_hash.as_deref())
                        .await
                    {
                        tracing::error!(error = %e, "could not record a purge");
                    }
                    tracing::info!(session = p.session_id, bytes = p.bytes, "recording purged");
                }
            }
            Err(e) => tracing::warn!(error = %e, "recording purge failed"),
        }
        tokio::time::sleep(period).await;
    }
}
