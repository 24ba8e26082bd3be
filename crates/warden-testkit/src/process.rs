//! Child processes whose stdout and stderr are captured into one shared buffer, so tests
//! can wait for a readiness line and later assert what the process did (not) log.

use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::Notify;

/// What the reader tasks share with the handle.
#[derive(Default)]
struct Shared {
    /// stdout and stderr interleaved, line by line, as received.
    output: Mutex<String>,
    /// Number of streams (stdout, stderr) that reached end of file.
    closed: Mutex<u8>,
    /// Woken on every new line and on every stream's end.
    changed: Notify,
}

impl Shared {
    fn output(&self) -> MutexGuard<'_, String> {
        // A reader task cannot panic while holding the lock, but a poisoned buffer is still
        // the best evidence a test has, so use it anyway.
        self.output.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn closed(&self) -> u8 {
        *self.closed.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A spawned process whose stdout and stderr are captured; killed when dropped.
pub struct LoggedProcess {
    child: Child,
    shared: Arc<Shared>,
    program: String,
}

impl std::fmt::Debug for LoggedProcess {
    // The output may hold secrets the test is checking for; never print it here.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoggedProcess")
            .field("program", &self.program)
            .field("pid", &self.child.id())
            .finish_non_exhaustive()
    }
}

impl LoggedProcess {
    /// Spawns `cmd` with stdout and stderr piped into the shared buffer and stdin closed.
    /// Must be called inside a Tokio runtime (reader tasks are spawned on it).
    pub fn spawn(cmd: impl Into<Command>) -> Result<Self> {
        let mut cmd: Command = cmd.into();
        let program = cmd.as_std().get_program().to_string_lossy().into_owned();
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().with_context(|| format!("spawning {program}"))?;
        let shared = Arc::new(Shared::default());
        if let Some(out) = child.stdout.take() {
            tokio::spawn(pump(out, Arc::clone(&shared)));
        }
        if let Some(err) = child.stderr.take() {
            tokio::spawn(pump(err, Arc::clone(&shared)));
        }
        Ok(Self {
            child,
            shared,
            program,
        })
    }

    /// Everything the process wrote to stdout and stderr so far.
    pub fn output(&self) -> String {
        self.shared.output().clone()
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Waits until a line containing `needle` has been printed and returns that line
    /// (without its newline). Fails on timeout or when the process closes its output first;
    /// the error carries the output so far.
    pub async fn wait_for_line(&self, needle: &str, timeout: Duration) -> Result<String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Register interest before looking, so a line arriving in between still wakes us.
            let changed = self.shared.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if let Some(line) = self.output().lines().find(|l| l.contains(needle)) {
                return Ok(line.to_owned());
            }
            if self.shared.closed() >= 2 {
                bail!(
                    "{} closed its output before printing {needle:?}; output:\n{}",
                    self.program,
                    self.output()
                );
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                bail!(
                    "timed out after {timeout:?} waiting for {needle:?} from {}; output:\n{}",
                    self.program,
                    self.output()
                );
            }
        }
    }

    /// Returns the exit status if the process has exited, without waiting.
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>> {
        Ok(self.child.try_wait()?)
    }

    /// Waits for the process to exit on its own.
    pub async fn wait(&mut self) -> Result<ExitStatus> {
        Ok(self.child.wait().await?)
    }

    /// Kills the process (SIGKILL) and waits for it to be reaped.
    pub async fn kill(&mut self) -> Result<()> {
        if self.child.try_wait()?.is_none() {
            self.child.kill().await?;
        }
        Ok(())
    }
}

impl Drop for LoggedProcess {
    fn drop(&mut self) {
        // kill_on_drop does this too; doing it explicitly documents the intent and covers
        // a Child moved out of tokio's reaper.
        let _ = self.child.start_kill();
    }
}

async fn pump(stream: impl AsyncRead + Unpin, shared: Arc<Shared>) {
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                let mut text = String::from_utf8_lossy(&line).into_owned();
                if !text.ends_with('\n') {
                    text.push('\n');
                }
                shared.output().push_str(&text);
                shared.changed.notify_waiters();
            }
        }
    }
    *shared.closed.lock().unwrap_or_else(|p| p.into_inner()) += 1;
    shared.changed.notify_waiters();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(script);
        cmd
    }

    #[tokio::test]
    async fn captures_stdout_and_stderr_and_finds_lines() -> Result<()> {
        let p = LoggedProcess::spawn(sh(
            "echo out-1; echo err-1 >&2; sleep 0.2; echo 'READY at x'; sleep 30",
        ))?;
        let line = p.wait_for_line("READY", Duration::from_secs(5)).await?;
        assert_eq!(line, "READY at x");
        let out = p.output();
        assert!(out.contains("out-1\n"), "{out}");
        assert!(out.contains("err-1\n"), "{out}");
        Ok(())
    }

    #[tokio::test]
    async fn times_out_when_line_never_comes() -> Result<()> {
        let p = LoggedProcess::spawn(sh("echo started; sleep 30"))?;
        let start = std::time::Instant::now();
        let err = p
            .wait_for_line("never", Duration::from_millis(300))
            .await
            .err()
            .context("expected a timeout")?;
        assert!(start.elapsed() < Duration::from_secs(5));
        let msg = err.to_string();
        assert!(msg.contains("timed out"), "{msg}");
        assert!(
            msg.contains("started"),
            "error should carry the output: {msg}"
        );
        Ok(())
    }

    #[tokio::test]
    async fn fails_fast_when_process_exits() -> Result<()> {
        let p = LoggedProcess::spawn(sh("echo bye; exit 3"))?;
        let start = std::time::Instant::now();
        let err = p
            .wait_for_line("never", Duration::from_secs(20))
            .await
            .err()
            .context("expected an error")?;
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "did not fail fast"
        );
        assert!(err.to_string().contains("closed its output"), "{err}");
        Ok(())
    }

    #[tokio::test]
    async fn drop_kills_the_process() -> Result<()> {
        let p = LoggedProcess::spawn(sh("sleep 30"))?;
        let pid = p.pid().context("no pid")?;
        drop(p);
        // The reaper is asynchronous; poll /proc until the pid is gone (or a zombie).
        for _ in 0..50 {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            if status.is_empty() || status.contains("State:\tZ") {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("process {pid} still running after drop")
    }

    #[tokio::test]
    async fn kill_and_wait_report_status() -> Result<()> {
        let mut p = LoggedProcess::spawn(sh("sleep 30"))?;
        assert!(p.try_wait()?.is_none());
        p.kill().await?;
        assert!(p.try_wait()?.is_some());

        let mut q = LoggedProcess::spawn(sh("exit 7"))?;
        assert_eq!(q.wait().await?.code(), Some(7));
        Ok(())
    }
}
