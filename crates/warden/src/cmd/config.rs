//! `warden config check`.

use std::path::Path;
use std::process::ExitCode;

use warden_config::Config;

/// Validates `file`, printing every error with file, position and key.
pub fn check(file: &Path) -> anyhow::Result<ExitCode> {
    match Config::load(file) {
        Ok(c) => {
            println!(
                "{}: OK ({} connection(s), {} OIDC issuer(s), built-in issuer {})",
                file.display(),
                c.connections.len(),
                c.identity.oidc.len(),
                if c.identity.builtin.enabled {
                    "on"
                } else {
                    "off"
                }
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(errs) => {
            for e in &errs.0 {
                eprintln!("{e}");
            }
            eprintln!("{} problem(s) found", errs.0.len());
            Ok(ExitCode::from(1))
        }
    }
}
