//! `warden mcp`: Warden's MCP tools on stdin/stdout for an agent, signed in with the
//! person's or service's token: a relay to the running gateway's `/mcp`, where the tools
//! run, so every call is audited there and reviews are shared with other sessions.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::anyhow;
use warden_config::Config;

use super::auth;
use super::connect::TokenSource;
use super::gateway::ADDRESS_FILE;
use crate::McpArgs;

/// Runs `warden mcp`.
pub async fn run(args: McpArgs) -> anyhow::Result<ExitCode> {
    // stdout carries the protocol; stderr is the user's terminal under an agent framework,
    // so only warnings unless RUST_LOG asks for more.
    init_tracing();
    let gateway = auth::gateway_url(Some(&gateway_base(&args)?))?;
    let tokens = Arc::new(TokenSource::new(args.token.as_deref(), &gateway));
    // Fail now, with the login hint, rather than on the first tool call.
    tokens.token().await.map_err(|e| anyhow!("{e}"))?;
    let provider: warden_mcp::TokenProvider = Arc::new(move || {
        let tokens = tokens.clone();
        Box::pin(async move { tokens.token().await.map_err(|e| e.to_string()) })
    });
    warden_mcp::serve_stdio(&gateway, provider).await?;
    Ok(ExitCode::SUCCESS)
}

/// Logs to stderr at `warn` unless `RUST_LOG` says otherwise; colours only on a terminal
/// (agent frameworks capture stderr into their own logs).
fn init_tracing() {
    use std::io::IsTerminal as _;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

/// The gateway's base URL as the other CLI commands find it: `--gateway` /
/// `$WARDEN_GATEWAY`, else the address the running gateway wrote in its data directory,
/// else the configured `http_listen`.
fn gateway_base(args: &McpArgs) -> anyhow::Result<String> {
    if let Some(g) = &args.gateway {
        return Ok(g.clone());
    }
    let mut config = match &args.config {
        Some(path) => super::load_config(path)?,
        None => Config::default(),
    };
    if let Some(d) = &args.data_dir {
        config.gateway.data_dir = d.clone();
    }
    let file = config.gateway.data_dir.join(ADDRESS_FILE);
    if let Some(url) = std::fs::read_to_string(&file)
        .ok()
        .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
        .and_then(|v| v.get("http").and_then(|h| h.as_str()).map(str::to_owned))
    {
        return Ok(url);
    }
    let mut addr = config.gateway.http_listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    Ok(format!("http://{addr}"))
}
