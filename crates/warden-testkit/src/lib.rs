//! Test harness for Warden: a real OIDC provider, a private SCRAM PostgreSQL, the gateway.
//!
//! Everything here listens on 127.0.0.1 only and cleans up on `Drop`:
//! - [`OidcProvider`]: `tests/oidc/server.mjs` (npm `oidc-provider`) with admin endpoints
//!   to rotate keys and mint arbitrary tokens;
//! - [`PgCluster`]: a throw-away PostgreSQL cluster with password authentication;
//! - [`LoggedProcess`]: a child whose output is captured, for readiness lines and for
//!   asserting that secrets never reach the logs;
//! - [`run_client_script`]: the psycopg / asyncpg smoke scripts of `tests/clients/`.
#![forbid(unsafe_code)]

mod clients;
mod oidc;
mod pg;
mod process;

use std::net::{Ipv4Addr, TcpListener};
use std::path::PathBuf;

pub use clients::run_client_script;
pub use oidc::{decode_jwt_unverified, unix_now, KeyInfo, OidcOptions, OidcProvider};
pub use pg::{PgCluster, PgOptions};
pub use process::LoggedProcess;

/// A TCP port that was free on 127.0.0.1 a moment ago (bind to port 0, read it, close).
///
/// Another process may take it before the caller binds; callers that can should retry.
pub fn free_port() -> u16 {
    // Binding 127.0.0.1:0 only fails when the machine is out of ports or has no loopback,
    // in which case no test can run: a panic with a clear message is the right outcome.
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding 127.0.0.1:0 for a free port")
}

/// The workspace root (the directory holding the top-level `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    // This crate lives at <root>/crates/warden-testkit.
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("..")
        .canonicalize()
        .unwrap_or_else(|_| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_port_is_bindable() -> std::io::Result<()> {
        let port = free_port();
        assert_ne!(port, 0);
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port))?;
        assert_eq!(listener.local_addr()?.port(), port);
        Ok(())
    }

    #[test]
    fn workspace_root_holds_the_workspace() {
        let root = workspace_root();
        assert!(root.join("Cargo.toml").is_file(), "{}", root.display());
        assert!(root.join("crates/warden-testkit").is_dir());
        assert!(root.join("tests/oidc/server.mjs").is_file());
    }
}
