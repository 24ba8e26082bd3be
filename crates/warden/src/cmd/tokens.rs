//! `warden tokens`: built-in tokens and API keys, on the local store.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use warden_config::Config;
use warden_identity::{generate_api_key, BuiltinIssuer};
use warden_store::Store;

use super::gateway::builtin_settings;
use crate::{LocalStore, TokensCommand};

/// The configuration for commands that work on the local data directory.
pub fn local_config(local: &LocalStore) -> anyhow::Result<Config> {
    let mut config = match &local.config {
        Some(p) => Config::load_without_secrets(p).map_err(|errs| {
            anyhow::anyhow!("{} problem(s) in the configuration:\n{errs}", errs.0.len())
        })?,
        None => Config::default(),
    };
    if let Some(d) = &local.data_dir {
        config.gateway.data_dir = d.clone();
    }
    Ok(config)
}

/// Runs a tokens subcommand.
pub async fn run(cmd: TokensCommand, local: LocalStore) -> anyhow::Result<ExitCode> {
    let config = local_config(&local)?;
    std::fs::create_dir_all(&config.gateway.data_dir)?;
    let store = Store::open(&config.store_url()).await?;
    match cmd {
        TokensCommand::Issue {
            name,
            groups,
            ttl,
            api_key,
            actor,
        } => {
            validate_name(&name)?;
            let groups: Vec<String> = groups
                .into_iter()
                .map(|g| g.trim().to_owned())
                .filter(|g| !g.is_empty())
                .collect();
            if api_key {
                let key = generate_api_key();
                let expires = ttl.map(|t| SystemTime::now() + t);
                store
                    .insert_api_key(&key.id, &name, &groups, &key.secret_hash, expires)
                    .await?;
                println!("{}", key.plaintext.expose());
            } else {
                if !config.identity.builtin.enabled {
                    anyhow::bail!("the built-in issuer is disabled in the configuration");
                }
                let ttl = ttl.unwrap_or(Duration::from_secs(3600));
                let max = config.identity.builtin.max_ttl;
                if ttl > max {
                    anyhow::bail!(
                        "--ttl {} exceeds identity.builtin.max_ttl ({})",
                        humantime::format_duration(ttl),
                        humantime::format_duration(max)
                    );
                }
                let issuer = Arc::new(BuiltinIssuer::load_or_create(builtin_settings(&config))?);
                let token = issuer.issue(&name, &groups, ttl, actor.as_deref())?;
                store
                    .insert_token(&token.jti, &name, &groups, token.expires_at)
                    .await?;
                println!("{}", token.token.expose());
            }
        }
        TokensCommand::List { json } => {
            let keys = store.list_api_keys().await?;
            let tokens = store.list_tokens().await?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({ "api_keys": keys, "tokens": tokens })
                );
            } else {
                println!(
                    "{:<8} {:<38} {:<20} {:<24} {:<10}",
                    "KIND", "ID", "IDENTITY", "GROUPS", "STATUS"
                );
                let now = warden_store::now_ms();
                for k in keys {
                    let status = status(k.revoked_at, k.expires_at, now);
                    println!(
                        "{:<8} {:<38} {:<20} {:<24} {:<10}",
                        "api_key",
                        k.id,
                        k.identity,
                        k.groups.join(","),
                        status
                    );
                }
                for t in tokens {
                    let status = status(t.revoked_at, Some(t.expires_at), now);
                    println!(
                        "{:<8} {:<38} {:<20} {:<24} {:<10}",
                        "token",
                        t.jti,
                        t.identity,
                        t.groups.join(","),
                        status
                    );
                }
            }
        }
        TokensCommand::Revoke { id } => {
            if store.revoke(&id).await? {
                eprintln!("revoked");
            } else {
                eprintln!("no active token or API key with that id");
                return Ok(ExitCode::from(1));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn status(revoked: Option<i64>, expires: Option<i64>, now: i64) -> &'static str {
    if revoked.is_some() {
        "revoked"
    } else if expires.is_some_and(|e| e <= now) {
        "expired"
    } else {
        "active"
    }
}

fn validate_name(name: &str) -> anyhow::Result<()> {
    if name.is_empty()
        || name.len() > 128
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c))
    {
        anyhow::bail!("--name must be 1-128 characters of letters, digits, '-', '_', '.' or '@'");
    }
    Ok(())
}
