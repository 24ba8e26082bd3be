//! `warden mcp`: Warden's MCP tools on stdin/stdout for an agent, signed in with the
//! person's or service's token, every call going through the running gateway.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context};

use super::auth;
use super::connect::TokenSource;
use crate::McpArgs;

/// Runs `warden mcp`.
pub async fn run(args: McpArgs) -> anyhow::Result<ExitCode> {
    // stdout carries the protocol: logs go to stderr only.
    super::gateway::init_tracing();
    let gateway = auth::gateway_url(args.gateway.as_deref())?;
    let tokens = Arc::new(TokenSource::new(args.token.as_deref(), &gateway));
    // Fail now, with the login hint, rather than on the first tool call.
    tokens.token().await.map_err(|e| anyhow!("{e}"))?;
    let postgres = match &args.postgres {
        Some(p) => p.clone(),
        None => auth::fetch_auth_config(&auth::http_client()?, &gateway)
            .await?
            .postgres_listen
            .ok_or_else(|| {
                anyhow!("the gateway at {gateway} did not say where its PostgreSQL listener is; pass --postgres HOST:PORT")
            })?,
    };
    let postgres = loopback(&postgres).await?;
    let mut settings = warden_mcp::Settings::new(postgres, gateway.clone());
    if let Some(path) = &args.config {
        settings = settings.with_config_masking(&super::load_config(path)?)?;
    }
    let shared = warden_mcp::Shared::new(settings)?;
    let provider: warden_mcp::TokenProvider = Arc::new(move || {
        let tokens = tokens.clone();
        Box::pin(async move { tokens.token().await.map_err(|e| e.to_string()) })
    });
    warden_mcp::serve_stdio(shared, provider).await?;
    Ok(ExitCode::SUCCESS)
}

/// `HOST:PORT` resolved to a loopback address: the MCP server sends tokens in clear only
/// over loopback (use `warden connect` semantics for a remote gateway).
async fn loopback(addr: &str) -> anyhow::Result<SocketAddr> {
    let mut addrs = tokio::net::lookup_host(addr)
        .await
        .with_context(|| format!("cannot resolve the PostgreSQL listener {addr:?}"))?;
    match addrs.find(|a| a.ip().is_loopback() || a.ip().is_unspecified()) {
        Some(mut a) => {
            if a.ip().is_unspecified() {
                a.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
            }
            Ok(a)
        }
        None => bail!(
            "the gateway's PostgreSQL listener {addr} is not on loopback; run `warden mcp` on the gateway's host"
        ),
    }
}
