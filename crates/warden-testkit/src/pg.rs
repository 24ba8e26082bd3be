//! A private, throw-away PostgreSQL cluster for tests: `initdb` into a temp dir with a
//! random superuser password and the chosen host authentication, started on a loopback
//! port, stopped (`-m immediate`) and deleted on drop.
//!
//! initdb and postgres refuse to run as root, and tests here run as root; in that case the
//! directory is given to the `postgres` OS user and the server tools run via `runuser`.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use md5::{Digest, Md5};
use tempfile::TempDir;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::free_port;

/// Authentication methods [`PgCluster::start_with_auth`] accepts (pg_hba.conf names).
const AUTH_METHODS: [&str; 4] = ["scram-sha-256", "md5", "password", "trust"];

/// The OS user that owns the cluster when the tests run as root.
const OS_USER: &str = "postgres";

/// Options for [`PgCluster::start_with`].
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// pg_hba method for every connection: `scram-sha-256`, `md5`, `password` or `trust`.
    pub auth: String,
    /// Extra server settings, passed as `-c name=value`.
    pub settings: Vec<(String, String)>,
}

impl Default for PgOptions {
    fn default() -> Self {
        Self {
            auth: "scram-sha-256".to_owned(),
            settings: Vec::new(),
        }
    }
}

/// A running private PostgreSQL cluster listening on 127.0.0.1.
pub struct PgCluster {
    /// Holds `data/`, `sock/` and `postgres.log`; removed on drop after the server stops.
    dir: TempDir,
    bin: PathBuf,
    port: u16,
    password: String,
    auth: String,
    run_as_postgres: bool,
}

impl std::fmt::Debug for PgCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgCluster")
            .field("port", &self.port)
            .field("auth", &self.auth)
            .field("dir", &self.dir.path())
            .field("superuser_password", &"***")
            .finish()
    }
}

impl PgCluster {
    /// Starts a cluster that requires SCRAM-SHA-256 for every connection.
    pub async fn start_scram() -> Result<Self> {
        Self::start_with_auth("scram-sha-256").await
    }

    /// Starts a cluster with `method` (`scram-sha-256`, `md5`, `password` or `trust`) for
    /// every connection. For `md5` the superuser's password is stored as an MD5 hash, so
    /// the server really runs the MD5 exchange rather than falling back to SCRAM.
    pub async fn start_with_auth(method: &str) -> Result<Self> {
        Self::start_with(PgOptions {
            auth: method.to_owned(),
            ..PgOptions::default()
        })
        .await
    }

    /// Starts a cluster with `options`.
    pub async fn start_with(options: PgOptions) -> Result<Self> {
        ensure!(
            AUTH_METHODS.contains(&options.auth.as_str()),
            "unsupported auth method {:?} (expected one of {AUTH_METHODS:?})",
            options.auth
        );
        let bin = pg_bin_dir()?;
        let run_as_postgres = is_root().await?;
        let dir = tempfile::Builder::new().prefix("warden-pg-").tempdir()?;
        std::fs::create_dir(dir.path().join("sock"))?;
        let password = random_hex(16)?;

        // initdb hashes whatever the pwfile holds with password_encryption (SCRAM), except
        // a value already in MD5 form, which it stores as is: that is how md5 gets md5.
        let stored = if options.auth == "md5" {
            md5_password(&password, "postgres")
        } else {
            password.clone()
        };
        let pwfile = dir.path().join("pwfile");
        std::fs::write(&pwfile, format!("{stored}\n"))?;
        if run_as_postgres {
            run_checked(Command::new("chown").arg("-R").arg(OS_USER).arg(dir.path())).await?;
        }

        let mut cluster = Self {
            dir,
            bin,
            port: 0,
            password,
            auth: options.auth.clone(),
            run_as_postgres,
        };
        let initdb = cluster
            .tool("initdb")
            .arg("-D")
            .arg(cluster.data_dir())
            .args(["-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync"])
            .arg(format!("--pwfile={}", pwfile.display()))
            .arg(format!("--auth={}", options.auth))
            .output()
            .await
            .context("running initdb")?;
        std::fs::remove_file(&pwfile)?;
        ensure_success("initdb", &initdb)?;

        // A free port can be taken between our probe and postgres' bind: retry a few times.
        let mut last_error = None;
        for _ in 0..5 {
            cluster.port = free_port();
            match cluster.pg_ctl_start(&options.settings).await {
                Ok(()) => {
                    cluster.wait_ready().await?;
                    return Ok(cluster);
                }
                Err(e) if cluster.log_contents().contains("Address already in use") => {
                    last_error = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("could not start postgres")))
    }

    async fn pg_ctl_start(&self, settings: &[(String, String)]) -> Result<()> {
        let mut opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c log_statement=all \
             -c logging_collector=off -c fsync=off -c synchronous_commit=off \
             -c full_page_writes=off",
            self.port,
            self.socket_dir().display()
        );
        for (name, value) in settings {
            // pg_ctl hands -o to /bin/sh: quote values.
            opts.push_str(&format!(" -c {name}={}", shell_quote(value)));
        }
        let out = self
            .tool("pg_ctl")
            .arg("-D")
            .arg(self.data_dir())
            .arg("-l")
            .arg(self.log_file())
            .args(["-w", "-t", "60", "-o"])
            .arg(opts)
            .arg("start")
            .output()
            .await
            .context("running pg_ctl start")?;
        if !out.status.success() {
            bail!(
                "pg_ctl start failed ({}):\n{}{}\nserver log:\n{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                self.log_contents()
            );
        }
        Ok(())
    }

    /// pg_ctl -w already waited on the socket; also wait for TCP, which is what tests use.
    async fn wait_ready(&self) -> Result<()> {
        let isready = self.bin.join("pg_isready");
        for _ in 0..100 {
            let ok = Command::new(&isready)
                .args(["-q", "-h", "127.0.0.1", "-p", &self.port.to_string()])
                .status()
                .await
                .map(|s| s.success())
                .unwrap_or(false);
            if ok {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!(
            "postgres on port {} not ready:\n{}",
            self.port,
            self.log_contents()
        )
    }

    /// A server tool from the bin dir, run as the `postgres` OS user when we are root.
    fn tool(&self, name: &str) -> Command {
        let path = self.bin.join(name);
        let mut cmd = if self.run_as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", OS_USER, "--"]).arg(path);
            c
        } else {
            Command::new(path)
        };
        // Our cwd may be unreadable for the postgres user; initdb fails on that.
        cmd.current_dir(self.dir.path());
        cmd
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The superuser (`postgres`) password, random per cluster.
    pub fn superuser_password(&self) -> &str {
        &self.password
    }

    /// The pg_hba method the cluster was started with.
    pub fn auth_method(&self) -> &str {
        &self.auth
    }

    /// The directory holding the Unix socket.
    pub fn socket_dir(&self) -> PathBuf {
        self.dir.path().join("sock")
    }

    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The PostgreSQL bin directory in use (psql, pgbench, … of the same version).
    pub fn bin_dir(&self) -> &Path {
        &self.bin
    }

    fn log_file(&self) -> PathBuf {
        self.dir.path().join("postgres.log")
    }

    /// The server log so far (every statement is logged: `log_statement=all`).
    pub fn log_contents(&self) -> String {
        std::fs::read(self.log_file())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub fn url_without_password(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// `postgres://postgres:PASSWORD@127.0.0.1:PORT/postgres` (the password is hex).
    pub fn url_with_password(&self) -> String {
        format!(
            "postgres://postgres:{}@127.0.0.1:{}/postgres",
            self.password, self.port
        )
    }

    /// Runs `sql` with psql as the superuser over TCP (`-X -A -t -v ON_ERROR_STOP=1`) and
    /// returns its stdout without the final newline. Fails, with psql's stderr, on any
    /// error.
    pub async fn psql(&self, sql: &str) -> Result<String> {
        let password = self.password.clone();
        self.psql_as("postgres", Some(&password), "postgres", sql)
            .await
    }

    /// Like [`Self::psql`] as another role and database; `password` `None` sends none.
    pub async fn psql_as(
        &self,
        user: &str,
        password: Option<&str>,
        dbname: &str,
        sql: &str,
    ) -> Result<String> {
        let psql = self.bin.join("psql");
        let mut cmd = Command::new(if psql.is_file() { psql } else { "psql".into() });
        cmd.args(["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-w"])
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", user, "-d", dbname, "-f", "-"])
            // A ~/.pgpass or service file must not answer for the test.
            .env("PGPASSFILE", "/dev/null")
            .env("PGCONNECT_TIMEOUT", "10")
            .env_remove("PGSERVICE")
            .env_remove("PGPASSWORD")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        if let Some(p) = password {
            cmd.env("PGPASSWORD", p);
        }
        let mut child = cmd.spawn().context("spawning psql")?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(sql.as_bytes()).await?;
            stdin.write_all(b"\n").await?;
        }
        let out = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
            .await
            .context("psql timed out")??;
        if !out.status.success() {
            bail!(
                "psql as {user} on {dbname} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let mut stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if stdout.ends_with('\n') {
            stdout.pop();
        }
        Ok(stdout)
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        // Synchronous on purpose: Drop cannot await, and the directory must outlive the
        // server. Immediate mode: tests do not need a clean shutdown.
        let pg_ctl = self.bin.join("pg_ctl");
        let mut cmd = if self.run_as_postgres {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", OS_USER, "--"]).arg(pg_ctl);
            c
        } else {
            std::process::Command::new(pg_ctl)
        };
        let _ = cmd
            .current_dir(self.dir.path())
            .arg("-D")
            .arg(self.data_dir())
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// The bin dir of the highest PostgreSQL version under /usr/lib/postgresql, or
/// `$WARDEN_TEST_PG_BIN`.
fn pg_bin_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("WARDEN_TEST_PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let root = Path::new("/usr/lib/postgresql");
    let mut best: Option<(Vec<u32>, PathBuf)> = None;
    for entry in std::fs::read_dir(root).with_context(|| format!("reading {}", root.display()))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(version) = name
            .split('.')
            .map(str::parse::<u32>)
            .collect::<Result<Vec<_>, _>>()
        else {
            continue;
        };
        let bin = entry.path().join("bin");
        if bin.join("initdb").is_file() && best.as_ref().is_none_or(|(v, _)| version > *v) {
            best = Some((version, bin));
        }
    }
    best.map(|(_, bin)| bin)
        .with_context(|| format!("no PostgreSQL with initdb under {}", root.display()))
}

async fn is_root() -> Result<bool> {
    let out = Command::new("id")
        .arg("-u")
        .output()
        .await
        .context("running id -u")?;
    ensure_success("id -u", &out)?;
    Ok(String::from_utf8_lossy(&out.stdout).trim() == "0")
}

async fn run_checked(cmd: &mut Command) -> Result<()> {
    let out = cmd.output().await?;
    ensure_success(&format!("{:?}", cmd.as_std()), &out)
}

fn ensure_success(what: &str, out: &Output) -> Result<()> {
    ensure!(
        out.status.success(),
        "{what} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

fn random_hex(bytes: usize) -> Result<String> {
    use std::io::Read as _;
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut buf)?;
    Ok(hex::encode(buf))
}

/// PostgreSQL's stored MD5 form: `"md5" + hex(md5(password || username))`.
fn md5_password(password: &str, user: &str) -> String {
    let mut h = Md5::new();
    h.update(password.as_bytes());
    h.update(user.as_bytes());
    format!("md5{}", hex::encode(h.finalize()))
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_password_matches_postgres() {
        // From PostgreSQL: SELECT 'md5' || md5('secret' || 'postgres')
        assert_eq!(
            md5_password("secret", "postgres"),
            "md553f48b7c4b76a86ce72276c5755f217d"
        );
    }

    #[test]
    fn shell_quote_survives_quotes() {
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn random_hex_is_random() -> Result<()> {
        let a = random_hex(16)?;
        assert_eq!(a.len(), 32);
        assert_ne!(a, random_hex(16)?);
        Ok(())
    }

    #[tokio::test]
    async fn rejects_unknown_auth_method() {
        let err = PgCluster::start_with_auth("ident").await.err();
        assert!(err.is_some_and(|e| e.to_string().contains("unsupported auth method")));
    }
}
