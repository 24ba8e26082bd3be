//! One module per subcommand.

pub mod auth;
pub mod config;
pub mod connect;
pub mod exec;
pub mod gateway;
pub mod login;
pub mod mcp;
pub mod reviews;
pub mod sessions;
pub mod tokens;
pub mod up;

use std::path::Path;

use warden_config::Config;

/// Loads a configuration file, printing every problem on failure.
pub fn load_config(path: &Path) -> anyhow::Result<Config> {
    Config::load(path).map_err(|errs| {
        anyhow::anyhow!("{} problem(s) in the configuration:\n{errs}", errs.0.len())
    })
}
