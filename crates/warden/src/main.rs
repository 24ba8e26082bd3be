//! `warden`: the command-line entry point. Wiring only; the work lives in the library crates.
#![forbid(unsafe_code)]

mod cmd;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// Warden: an identity-aware gateway for AI agents and people in front of PostgreSQL.
///
/// Clients connect with any PostgreSQL driver: dbname = a Warden connection name,
/// password = an OIDC access token or a Warden API key. Warden checks who they are, what
/// they may open, logs in to the target with its own credential and inspects every statement.
#[derive(Parser)]
#[command(name = "warden", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway from a configuration file (all listeners).
    Gateway {
        /// The TOML configuration file.
        #[arg(long, short, value_name = "FILE")]
        config: PathBuf,
        #[command(flatten)]
        overrides: Overrides,
    },
    /// Zero-configuration quickstart: the gateway on embedded defaults, with a ready-to-paste
    /// psql line carrying a short-lived token.
    ///
    /// Uses a SQLite store under ./.warden, a self-signed certificate, the built-in token
    /// issuer, and a connection named `local` to $DATABASE_URL (default
    /// postgres://127.0.0.1:5432/postgres).
    Up {
        #[command(flatten)]
        overrides: Overrides,
        /// Lifetime of the token printed for you.
        #[arg(long, default_value = "8h", value_parser = humantime::parse_duration)]
        token_ttl: std::time::Duration,
    },
    /// Work with configuration files.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Issue, list and revoke machine credentials (built-in tokens and API keys).
    ///
    /// Works on the local data directory (the gateway sees changes at once).
    Tokens {
        #[command(subcommand)]
        command: TokensCommand,
        #[command(flatten)]
        local: LocalStore,
    },
    /// Recorded sessions: list, show, replay, export, verify; end a live one.
    Sessions {
        #[command(subcommand)]
        command: SessionsCommand,
        #[command(flatten)]
        local: LocalStore,
    },
    /// The tamper-evident audit trail.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
        #[command(flatten)]
        local: LocalStore,
    },
    /// Statements held for review, and access requests: list, show, approve, reject.
    ///
    /// Talks to the running gateway's API, so a decision releases the held statement at
    /// once. The credential is --token, else $WARDEN_TOKEN, else your `warden login`; without
    /// any, acts as a local operator: a one-minute built-in token for `--as` (default
    /// `os:$USER`) in the `[api] admin_groups`.
    Reviews {
        #[command(subcommand)]
        command: ReviewsCommand,
        #[command(flatten)]
        api: ApiClient,
    },
    /// Ask for time-bound access to a connection your groups do not allow.
    Access {
        #[command(subcommand)]
        command: AccessCommand,
        #[command(flatten)]
        api: ApiClient,
    },
    /// Sign in through your identity provider (OIDC device flow) and cache the tokens.
    ///
    /// Prints a URL and a code on stderr; approve them in a browser. The tokens are kept
    /// per user and per gateway in $XDG_CONFIG_HOME/warden/tokens/ (mode 0600) and
    /// refreshed when they near expiry; `connect`, `exec`, `reviews` and `access` use them.
    Login(LoginArgs),
    /// Delete the cached tokens for a gateway (and revoke them at the identity provider).
    Logout {
        /// Gateway API URL [env: WARDEN_GATEWAY] [default: http://127.0.0.1:8080].
        #[arg(long, value_name = "URL", env = "WARDEN_GATEWAY", hide_env = true)]
        gateway: Option<String>,
    },
    /// Open a local PostgreSQL listener that signs in to a connection as you.
    ///
    /// Point psql, DBeaver or any driver at 127.0.0.1:PORT with no password; each client
    /// connection reaches the gateway with your cached (refreshed) token.
    Connect(ConnectArgs),
    /// Run SQL on a connection through the gateway and print the result.
    ///
    /// Command tags and notices go to stderr; a statement held for review shows a
    /// spinner until an approver decides. Exits 1 with the SQLSTATE on an error.
    Exec(ExecArgs),
    /// Serve MCP tools for AI agents on stdin/stdout, as you, through the running gateway.
    ///
    /// The token is --token, else $WARDEN_TOKEN, else your `warden login`. This is a relay
    /// to the gateway's MCP endpoint (/mcp, streamable HTTP): the tools run in the gateway,
    /// so its policy, masking, approvals, recording and audit apply to every call.
    Mcp(McpArgs),
}

/// `warden login` options.
#[derive(Args, Clone)]
struct LoginArgs {
    /// Gateway API URL [env: WARDEN_GATEWAY] [default: http://127.0.0.1:8080].
    #[arg(long, value_name = "URL", env = "WARDEN_GATEWAY", hide_env = true)]
    gateway: Option<String>,
    /// OIDC issuer (overrides the gateway's /api/v1/auth/config).
    #[arg(long, value_name = "URL")]
    issuer: Option<String>,
    /// Public OIDC client for the device flow (overrides the gateway's `cli_client_id`).
    #[arg(long, value_name = "ID")]
    client_id: Option<String>,
    /// Resource indicator / audience to ask tokens for (overrides the gateway's).
    #[arg(long, value_name = "URI")]
    audience: Option<String>,
}

/// How to reach the gateway's PostgreSQL listener.
#[derive(Args, Clone)]
struct PgTarget {
    /// The gateway's PostgreSQL listener [default: what the gateway's auth config says].
    #[arg(long, value_name = "HOST:PORT")]
    postgres: Option<String>,
    /// TLS to the gateway: auto (when it is not on loopback), require, or disable
    /// (loopback only).
    #[arg(long, value_enum, default_value_t = TlsMode::Auto)]
    postgres_tls: TlsMode,
    /// PEM roots to trust for the gateway's certificate [default: the system's].
    #[arg(long, value_name = "FILE")]
    ca_file: Option<PathBuf>,
}

/// TLS towards the gateway's PostgreSQL listener.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum TlsMode {
    /// TLS unless the listener is on loopback.
    Auto,
    /// Always TLS.
    Require,
    /// Never TLS (refused off loopback).
    Disable,
}

/// `warden connect` options.
#[derive(Args, Clone)]
struct ConnectArgs {
    /// The Warden connection to open.
    connection: String,
    /// Local port on 127.0.0.1 (0 picks a free one and prints it).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Gateway API URL [env: WARDEN_GATEWAY] [default: http://127.0.0.1:8080].
    #[arg(long, value_name = "URL", env = "WARDEN_GATEWAY", hide_env = true)]
    gateway: Option<String>,
    /// Bearer credential instead of the login cache.
    #[arg(long, env = "WARDEN_TOKEN", hide_env_values = true)]
    token: Option<String>,
    #[command(flatten)]
    target: PgTarget,
}

/// Output formats of `warden exec`.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum OutputFormat {
    /// A table.
    Table,
    /// A JSON array of row objects per result.
    Json,
    /// CSV with a header line per result.
    Csv,
}

/// `warden exec` options.
#[derive(Args, Clone)]
struct ExecArgs {
    /// The Warden connection to run on.
    connection: String,
    /// The SQL to run (several statements separated by `;` run in one simple query).
    #[arg(short = 'c', long = "command", value_name = "SQL")]
    command: String,
    /// How to print rows.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    format: OutputFormat,
    /// Gateway API URL [env: WARDEN_GATEWAY] [default: http://127.0.0.1:8080].
    #[arg(long, value_name = "URL", env = "WARDEN_GATEWAY", hide_env = true)]
    gateway: Option<String>,
    /// Bearer credential instead of the login cache.
    #[arg(long, env = "WARDEN_TOKEN", hide_env_values = true)]
    token: Option<String>,
    #[command(flatten)]
    target: PgTarget,
}

#[derive(Args)]
struct McpArgs {
    /// Gateway API URL [env: WARDEN_GATEWAY] [default: the running gateway's, from the data
    /// directory].
    #[arg(long, value_name = "URL", env = "WARDEN_GATEWAY", hide_env = true)]
    gateway: Option<String>,
    /// Bearer credential instead of the login cache.
    #[arg(long, env = "WARDEN_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Configuration file, to find the data directory (and the running gateway's address).
    #[arg(long, short, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data directory (overrides the configuration) [default: ./.warden].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

/// How a CLI command reaches the gateway's API.
#[derive(Args, Clone, Default)]
struct ApiClient {
    /// Configuration file (data directory, built-in issuer, API groups).
    #[arg(long, short, value_name = "FILE", global = true)]
    config: Option<PathBuf>,
    /// Data directory (overrides the configuration) [default: ./.warden].
    #[arg(long, value_name = "DIR", global = true)]
    data_dir: Option<PathBuf>,
    /// Gateway API URL [env: WARDEN_GATEWAY] [default: the running gateway's, from the data
    /// directory].
    #[arg(
        long,
        value_name = "URL",
        env = "WARDEN_GATEWAY",
        hide_env = true,
        global = true
    )]
    gateway: Option<String>,
    /// Bearer credential: OIDC token, built-in token or API key [default: the `warden
    /// login` cache for this gateway].
    #[arg(long, env = "WARDEN_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,
    /// Without a token: the local operator's name [default: os:$USER].
    #[arg(long = "as", value_name = "NAME", global = true)]
    as_name: Option<String>,
}

#[derive(Subcommand)]
enum ReviewsCommand {
    /// Requests waiting for a decision (or all of them).
    List {
        /// Every status, not only pending.
        #[arg(long)]
        all: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// One request, as JSON.
    Show {
        /// Request id (rv-… or ar-…).
        id: String,
    },
    /// Approve a request; the held statement runs at once.
    Approve {
        /// Request id.
        id: String,
        /// Why (recorded).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Reject a request; the client gets SQLSTATE 57014 with the reason.
    Reject {
        /// Request id.
        id: String,
        /// Why (shown to the client, recorded).
        #[arg(long)]
        reason: Option<String>,
    },
}

#[derive(Subcommand)]
enum AccessCommand {
    /// Ask for access; prints the request id. Needs your own credential (--token).
    Request {
        /// Connection name.
        connection: String,
        /// How long, from approval (e.g. 30m, 2h).
        #[arg(long = "for", value_name = "DURATION")]
        duration: String,
        /// Why (shown to approvers).
        #[arg(long)]
        reason: Option<String>,
    },
}

#[derive(Subcommand)]
enum SessionsCommand {
    /// List sessions, newest first.
    List {
        /// Only this identity (subject).
        #[arg(long)]
        identity: Option<String>,
        /// Only this connection.
        #[arg(long)]
        connection: Option<String>,
        /// Started at or after (a time, or a duration ago: 2h).
        #[arg(long)]
        since: Option<String>,
        /// Started before (a time, or a duration ago).
        #[arg(long)]
        until: Option<String>,
        /// Only this status: live, complete, incomplete, purged.
        #[arg(long)]
        status: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: i64,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one session's summary.
    Show {
        /// Session id.
        id: String,
    },
    /// Replay a session as a timeline of statements, results and outcomes.
    Replay {
        /// Session id.
        id: String,
        /// Play it at the pace it happened (gaps capped at 5 s).
        #[arg(long)]
        pace: bool,
    },
    /// Export a session's events.
    Export {
        /// Session id.
        id: String,
        /// json, csv or ndjson.
        #[arg(long, default_value = "json")]
        format: String,
    },
    /// Verify a session's recording: every edited, dropped or reordered event is named.
    Verify {
        /// Session id.
        id: String,
    },
    /// End a live session (within a second).
    Kill {
        /// Session id.
        id: String,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Verify the authentication audit and the session chain.
    Verify,
}

/// Settings that override the configuration file.
#[derive(Args, Clone, Default)]
struct Overrides {
    /// Directory for the store, keys and certificates.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Address of the PostgreSQL listener [default: 127.0.0.1:15432].
    #[arg(long, value_name = "ADDR")]
    postgres_listen: Option<SocketAddr>,
    /// Address of the HTTP listener (health, metrics) [default: 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR")]
    http_listen: Option<SocketAddr>,
}

/// Where the local store is.
#[derive(Args, Clone, Default)]
struct LocalStore {
    /// Configuration file to read the data directory and issuer settings from.
    #[arg(long, short, value_name = "FILE", global = true)]
    config: Option<PathBuf>,
    /// Data directory (overrides the configuration) [default: ./.warden].
    #[arg(long, value_name = "DIR", global = true)]
    data_dir: Option<PathBuf>,
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate a configuration file and print every error with its location.
    Check {
        /// The TOML configuration file.
        file: PathBuf,
    },
}

#[derive(Subcommand)]
enum TokensCommand {
    /// Issue a built-in token (default) or an API key; prints it alone on stdout.
    Issue {
        /// Identity name (the token's subject).
        #[arg(long)]
        name: String,
        /// Groups, comma-separated.
        #[arg(long, value_delimiter = ',', num_args = 1..)]
        groups: Vec<String>,
        /// Lifetime (e.g. 30m, 1h, 7d). API keys without --ttl never expire.
        #[arg(long, value_parser = humantime::parse_duration)]
        ttl: Option<std::time::Duration>,
        /// Issue an API key (`wdk_…`) instead of a token.
        #[arg(long)]
        api_key: bool,
        /// The human or service acting through this identity (recorded as `act`).
        #[arg(long)]
        actor: Option<String>,
    },
    /// List issued tokens and API keys (never their secrets).
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token (by id) or an API key (by id or the key itself).
    Revoke {
        /// Token id (jti) or API key id.
        id: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = rt.block_on(async move {
        match cli.command {
            Command::Gateway { config, overrides } => cmd::gateway::run(&config, overrides).await,
            Command::Up {
                overrides,
                token_ttl,
            } => cmd::up::run(overrides, token_ttl).await,
            Command::Config {
                command: ConfigCommand::Check { file },
            } => cmd::config::check(&file),
            Command::Tokens { command, local } => cmd::tokens::run(command, local).await,
            Command::Sessions { command, local } => cmd::sessions::run(command, local).await,
            Command::Audit { command, local } => cmd::sessions::audit(command, local).await,
            Command::Reviews { command, api } => cmd::reviews::run(command, api).await,
            Command::Access { command, api } => cmd::reviews::access(command, api).await,
            Command::Login(args) => cmd::login::login(args).await,
            Command::Logout { gateway } => cmd::login::logout(gateway).await,
            Command::Connect(args) => cmd::connect::run(args).await,
            Command::Exec(args) => cmd::exec::run(args).await,
            Command::Mcp(args) => cmd::mcp::run(args).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
