//! `warden reviews` and `warden access`: clients of the running gateway's API, so a
//! decision reaches the held session in the same moment (the gateway wakes it; nothing
//! polls).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use warden_config::Config;
use warden_identity::BuiltinIssuer;
use warden_store::Store;

use super::gateway::{builtin_settings, ADDRESS_FILE};
use crate::{AccessCommand, ApiClient, ReviewsCommand};

fn config(api: &ApiClient) -> anyhow::Result<Config> {
    let mut config = match &api.config {
        Some(p) => Config::load_without_secrets(p).map_err(|errs| {
            anyhow::anyhow!("{} problem(s) in the configuration:\n{errs}", errs.0.len())
        })?,
        None => Config::default(),
    };
    if let Some(d) = &api.data_dir {
        config.gateway.data_dir = d.clone();
    }
    Ok(config)
}

/// The gateway's API base URL: `--gateway`, else the address file the running gateway
/// wrote, else the configured `http_listen`.
fn base_url(api: &ApiClient, config: &Config) -> String {
    if let Some(g) = &api.gateway {
        return g.trim_end_matches('/').to_owned();
    }
    let file = config.gateway.data_dir.join(ADDRESS_FILE);
    if let Some(url) = std::fs::read_to_string(&file)
        .ok()
        .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
        .and_then(|v| v.get("http").and_then(|h| h.as_str()).map(str::to_owned))
    {
        return url;
    }
    let mut addr = config.gateway.http_listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    format!("http://{addr}")
}

/// The bearer credential: `--token`/`$WARDEN_TOKEN`, else the `warden login` cache for
/// `base` (refreshed if near expiry), else (when `local_ok`) a one-minute built-in token for
/// the local operator in the API admin groups. Whoever can read the data directory holds
/// the issuer's key already, so this grants nothing new.
async fn bearer(
    api: &ApiClient,
    config: &Config,
    base: &str,
    local_ok: bool,
) -> anyhow::Result<String> {
    if let Some(t) = &api.token {
        return Ok(t.trim().to_owned());
    }
    // `--as` asks for the local operator explicitly; otherwise a login comes first.
    if api.as_name.is_none() {
        let key = super::auth::gateway_url(Some(base)).unwrap_or_else(|_| base.to_owned());
        match super::auth::cached_token(&key).await {
            Ok((token, _)) => return Ok(token.expose().to_owned()),
            Err(super::auth::LoginNeeded::NotLoggedIn(_)) => {}
            // No usable cache (no HOME, a damaged file): the local operator may still act.
            Err(e @ super::auth::LoginNeeded::Other(_)) if local_ok => {
                eprintln!("warning: ignoring the login cache: {e}")
            }
            Err(e) => return Err(anyhow::anyhow!("{e}")),
        }
    }
    if !local_ok {
        anyhow::bail!(
            "this needs your own credential: run `warden login`, pass --token or set WARDEN_TOKEN"
        );
    }
    if !config.identity.builtin.enabled {
        anyhow::bail!(
            "the built-in issuer is disabled: pass --token or set WARDEN_TOKEN (an approver's token)"
        );
    }
    let name = match &api.as_name {
        Some(n) => n.clone(),
        None => format!(
            "os:{}",
            std::env::var("USER")
                .or_else(|_| std::env::var("LOGNAME"))
                .unwrap_or_else(|_| "operator".into())
        ),
    };
    if name.is_empty()
        || name.len() > 128
        || name.chars().any(|c| c.is_control() || c.is_whitespace())
    {
        anyhow::bail!("--as must be 1-128 printable characters without spaces");
    }
    let issuer = Arc::new(
        BuiltinIssuer::load_or_create(builtin_settings(config)).context(
            "cannot load the built-in issuer's key (is this the gateway's data directory?)",
        )?,
    );
    let groups = config.api.admin_groups.clone();
    let token = issuer.issue(&name, &groups, Duration::from_secs(60), None)?;
    // Listed like any issued token, so it can be audited and revoked.
    let store = Store::open(&config.store_url()).await?;
    store
        .insert_token(&token.jti, &name, &groups, token.expires_at)
        .await?;
    Ok(token.token.expose().to_owned())
}

fn client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .redirect(reqwest::redirect::Policy::none())
        .build()?)
}

/// Sends a request and returns the JSON answer, or an error carrying the problem's detail.
async fn call(req: reqwest::RequestBuilder, url: &str) -> anyhow::Result<serde_json::Value> {
    let resp = req.send().await.with_context(|| {
        format!("cannot reach the gateway at {url} (is it running? see --gateway)")
    })?;
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    let json: serde_json::Value = serde_json::from_str(&body).unwrap_or(serde_json::Value::Null);
    if !status.is_success() {
        let detail = json
            .get("detail")
            .and_then(|d| d.as_str())
            .unwrap_or(body.as_str());
        anyhow::bail!("{} ({})", detail, status.as_u16());
    }
    Ok(json)
}

fn str_field<'a>(v: &'a serde_json::Value, k: &str) -> &'a str {
    v.get(k).and_then(|x| x.as_str()).unwrap_or("")
}

/// Runs a reviews subcommand.
pub async fn run(cmd: ReviewsCommand, api: ApiClient) -> anyhow::Result<ExitCode> {
    let config = config(&api)?;
    let base = base_url(&api, &config);
    let token = bearer(&api, &config, &base, true).await?;
    let http = client()?;
    match cmd {
        ReviewsCommand::List { all, json } => {
            let url = format!("{base}/api/v1/reviews");
            let status = if all { "all" } else { "pending" };
            let rows = call(
                http.get(&url)
                    .bearer_auth(&token)
                    .query(&[("status", status)]),
                &base,
            )
            .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
                return Ok(ExitCode::SUCCESS);
            }
            println!(
                "{:<19} {:<9} {:<10} {:<14} {:<20} WHAT",
                "ID", "KIND", "STATUS", "CONNECTION", "REQUESTER"
            );
            for r in rows.as_array().into_iter().flatten() {
                let what = match str_field(r, "kind") {
                    "access" => format!(
                        "access for {}",
                        humantime::format_duration(Duration::from_millis(
                            r.get("duration_ms").and_then(|d| d.as_u64()).unwrap_or(0)
                        ))
                    ),
                    _ => {
                        let mut s = str_field(r, "statement").replace('\n', " ");
                        if let Some(p) = r.get("params").and_then(|p| p.as_array()) {
                            if !p.is_empty() {
                                s.push_str(&format!(
                                    "  params: {}",
                                    serde_json::Value::from(p.clone())
                                ));
                            }
                        }
                        s
                    }
                };
                println!(
                    "{:<19} {:<9} {:<10} {:<14} {:<20} {}",
                    str_field(r, "id"),
                    str_field(r, "kind"),
                    str_field(r, "status"),
                    str_field(r, "connection"),
                    str_field(r, "requester"),
                    what
                );
            }
        }
        ReviewsCommand::Show { id } => {
            let url = format!("{base}/api/v1/reviews/{id}");
            let r = call(http.get(&url).bearer_auth(&token), &base).await?;
            println!("{}", serde_json::to_string_pretty(&r)?);
        }
        ReviewsCommand::Approve { id, reason } => {
            decide(&http, &base, &token, &id, "approve", reason).await?
        }
        ReviewsCommand::Reject { id, reason } => {
            decide(&http, &base, &token, &id, "reject", reason).await?
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn decide(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    id: &str,
    verb: &str,
    reason: Option<String>,
) -> anyhow::Result<()> {
    let url = format!("{base}/api/v1/reviews/{id}/{verb}");
    let r = call(
        http.post(&url)
            .bearer_auth(token)
            .json(&serde_json::json!({ "reason": reason })),
        base,
    )
    .await?;
    // A counted vote answers {request, approvals, approvals_required}; a final decision
    // answers the request itself (which also carries approvals_required).
    match (r.get("approvals"), r.get("request")) {
        (Some(n), Some(_)) => eprintln!(
            "approval counted: {n} of {}",
            r.get("approvals_required").cloned().unwrap_or_default()
        ),
        _ => eprintln!("{id} is {}", str_field(&r, "status")),
    }
    Ok(())
}

/// Runs an access subcommand.
pub async fn access(cmd: AccessCommand, api: ApiClient) -> anyhow::Result<ExitCode> {
    let config = config(&api)?;
    let base = base_url(&api, &config);
    let token = bearer(&api, &config, &base, false).await?;
    let http = client()?;
    match cmd {
        AccessCommand::Request {
            connection,
            duration,
            reason,
        } => {
            let url = format!("{base}/api/v1/access-requests");
            let r = call(
                http.post(&url)
                    .bearer_auth(&token)
                    .json(&serde_json::json!({
                        "connection": connection,
                        "duration": duration,
                        "reason": reason,
                    })),
                &base,
            )
            .await?;
            println!("{}", str_field(&r, "id"));
            eprintln!(
                "access request {} is pending; an approver runs: warden reviews approve {}",
                str_field(&r, "id"),
                str_field(&r, "id")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
